"""SavedModel exports load with plain TensorFlow and match the model."""

import os
import subprocess
import sys

import numpy as np
import pytest

import tfgmm
from tests.helpers import run_plain_tf


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_export_loads_with_plain_tensorflow_and_matches(tmp_path, blog, dtype):
  x, _ = blog
  model = tfgmm.fit(x, 3, seed=0, dtype=dtype)
  path = tmp_path / "gmm"
  assert model.export(path) == str(path)
  out = run_plain_tf(path, x[:200], tmp_path)
  assert out["serving_default_spec"] == {"log_prob": ["float32", [None]]}
  assert out["responsibilities_spec"] == {
      "responsibilities": ["float32", [None, 3]]}
  assert out["assign_spec"] == {"labels": ["int32", [None]]}
  np.testing.assert_allclose(out["serving_default"]["log_prob"],
                             model.log_prob(x[:200]), rtol=1e-5)
  np.testing.assert_allclose(out["responsibilities"]["responsibilities"],
                             model.responsibilities(x[:200]), rtol=1e-5,
                             atol=1e-7)
  np.testing.assert_array_equal(out["assign"]["labels"], model.assign(x[:200]))
  np.testing.assert_allclose(out["sample"]["samples"], model.sample(4, seed=7),
                             rtol=1e-5)


def test_export_replaces_an_existing_directory_and_lists_signatures(tmp_path,
                                                                    blog):
  x, _ = blog
  model = tfgmm.fit(x[:600], 2, seed=0)
  path = tmp_path / "gmm"
  model.export(path)
  model.export(path)
  assert sorted(p for p in os.listdir(tmp_path) if p.startswith(".")) == []
  cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
  done = subprocess.run([cli, "show", "--dir", str(path), "--all"],
                        capture_output=True, text=True, timeout=300,
                        check=False)
  assert done.returncode == 0, done.stderr[-2000:]
  for name in ("serving_default", "responsibilities", "assign", "sample"):
    assert f"signature_def['{name}']" in done.stdout


def test_export_of_an_unfitted_model_is_an_error(tmp_path):
  with pytest.raises(ValueError, match="never initialised"):
    tfgmm.BayesianGMM(2, 2).export(tmp_path / "gmm")
  assert not (tmp_path / "gmm").exists()


def test_export_refuses_to_replace_other_files(tmp_path, blog):
  x, _ = blog
  model = tfgmm.fit(x[:300], 2, seed=0)
  (tmp_path / "docs").mkdir()
  (tmp_path / "docs" / "notes.txt").write_text("keep me")
  with pytest.raises(FileExistsError, match="refusing to replace"):
    model.export(tmp_path / "docs")
  assert (tmp_path / "docs" / "notes.txt").read_text() == "keep me"
  (tmp_path / "file").write_text("x")
  with pytest.raises(FileExistsError):
    model.export(tmp_path / "file")
  (tmp_path / "empty").mkdir()
  model.export(tmp_path / "empty")
  assert (tmp_path / "empty" / "saved_model.pb").exists()


def test_versioned_export_uses_the_tf_serving_layout(tmp_path, blog):
  x, _ = blog
  model = tfgmm.fit(x, 3, seed=0, n_init=1)
  first = model.export(tmp_path / "gmm", version=1)
  second = model.export(tmp_path / "gmm", version=2)
  assert first == str(tmp_path / "gmm" / "1")
  assert sorted(os.listdir(tmp_path / "gmm")) == ["1", "2"]
  assert os.path.exists(os.path.join(second, "saved_model.pb"))
  out = run_plain_tf(second, x[:20], tmp_path)
  np.testing.assert_allclose(out["serving_default"]["log_prob"],
                             model.log_prob(x[:20]), rtol=1e-5)
  for bad, error in ((-1, ValueError), (1.5, TypeError), ("2", TypeError)):
    with pytest.raises(error, match="version"):
      model.export(tmp_path / "other", version=bad)
