"""Reduced runs of the examples that embed a mixture in a larger model.

examples/deep_clustering.py (an autoencoder with a mixture prior on its
codes) and examples/anomaly_scores.py (the mixture's density as the
anomaly-score head of a Keras model, served as one SavedModel).
"""

import math
import re
import textwrap

import numpy as np
import pytest

pytest.importorskip("sklearn")

from examples import anomaly_scores  # noqa: E402
from examples import deep_clustering  # noqa: E402
from tests.helpers import PNG_SIGNATURE  # noqa: E402
from tests.helpers import run_client  # noqa: E402


# -------------------------------------------------------- deep clustering

def parse_ari_table(text):
  """deep_clustering.py's table as {features: (dims, ari, clusters, s)}."""
  rows = {}
  for line in text.splitlines():
    parts = re.split(r"\s{2,}", line.strip())
    if len(parts) == 5 and parts[1].isdigit():
      rows[parts[0]] = (int(parts[1]), float(parts[2]), int(parts[3]),
                        float(parts[4]))
  return rows


def test_deep_clustering_reduced_run(tmp_path, capsys):
  plots = tmp_path / "plots"
  assert deep_clustering.main(["--quick", "--plots", str(plots)]) == 0
  out = capsys.readouterr().out
  rows = parse_ari_table(out)
  assert list(rows) == ["raw pixels (61 non-blank)",
                        "PCA features (10 components)",
                        "autoencoder codes, pretrained",
                        "deep clustering (joint training)"], out
  for name, (dims, ari, clusters, seconds) in rows.items():
    assert math.isfinite(ari) and -1 <= ari <= 1, name
    assert 1 <= clusters <= 10 and seconds > 0, name
  # Measured on this reduced run (25 + 10 epochs, 2 restarts), seeds 0-4:
  # 0.65-0.75 after joint training. The same mixture on the codes of the
  # untrained encoder (--epochs 0 0) scores 0.25-0.38, on raw pixels
  # 0.23-0.45; a mixture collapsed to one cluster scores 0. 0.5 sits
  # between: it fails an autoencoder that learnt no clusters, with room for
  # seed and platform noise.
  latent = rows["deep clustering (joint training)"]
  assert latent[1] > 0.5, out
  assert latent[1] > rows["raw pixels (61 non-blank)"][1], out
  assert re.search(r"the\s+mixture's\s+-ELBO\s+of\s+z", out), out

  png = plots / "latent_space.png"
  assert png.is_file() and png.read_bytes()[:8] == PNG_SIGNATURE
  assert f"Plot: {png}" in out


def test_clusters_match_digits_one_to_one():
  labels = np.repeat(np.arange(4), 5)
  clusters = (labels + 1) % 4
  clusters[0] = 2   # one disagreement leaves the matching alone
  assert deep_clustering.match_clusters_to_digits(clusters, labels) == {
      1: 0, 2: 1, 3: 2, 0: 3}


@pytest.mark.parametrize("argv", [["--epochs", "5"], ["--epochs", "-1", "2"],
                                  ["--seed", "x"], ["--covariance", "tied"]])
def test_deep_clustering_bad_arguments_exit_2(argv, capsys):
  assert deep_clustering.main(argv) == 2
  assert "error" in capsys.readouterr().err


# --------------------------------------------------------- anomaly scores

# An independent client: a fresh interpreter where tfgmm, TFP and Keras
# cannot be imported reads the exported signature and the reference file.
_PLAIN_TF_CLIENT = textwrap.dedent("""
    import json, sys
    for name in ("tfgmm", "tensorflow_probability", "keras"):
      sys.modules[name] = None
    import numpy as np
    import tensorflow as tf

    path, reference = sys.argv[1], np.load(sys.argv[2])
    serve = tf.saved_model.load(path).signatures["serving_default"]
    scores = serve(x=tf.constant(reference["x"]))["anomaly_score"].numpy()
    print(json.dumps({
        "inputs": {k: [v.dtype.name, v.shape.as_list()]
                   for k, v in serve.structured_input_signature[1].items()},
        "outputs": {k: [v.dtype.name, v.shape.as_list()]
                    for k, v in serve.structured_outputs.items()},
        "scores": scores.tolist(),
    }))
""")


def test_anomaly_scores_reduced_run_serves_one_saved_model(tmp_path, capsys):
  export = tmp_path / "scorer"
  reference = tmp_path / "reference.npz"
  assert anomaly_scores.main(["--quick", "--export", str(export),
                              "--save-scores", str(reference)]) == 0
  out = capsys.readouterr().out

  aucs = dict(re.findall(r"ROC AUC, held-out 0-4 vs (5-9|\ds)\s+(\S+)", out))
  assert sorted(aucs) == ["5-9", "5s", "6s", "7s", "8s", "9s"], out
  assert all(0 <= float(v) <= 1 for v in aucs.values()), aucs
  # Measured: 0.980-0.991 (seeds 0-4, 2 or 5 restarts). 0.5 is chance and
  # a lost sign gives ~0.01; even a diagonal 5-component mixture on 8
  # features scores 0.86. So 0.8 fails a broken pipeline (unfitted features
  # or mixture, scores negated), not a seed's bad luck.
  assert float(aucs["5-9"]) > 0.8, out
  difference = float(re.search(
      r"max relative difference from the in-memory model: (\S+)", out)[1])
  assert difference <= 1e-5, out
  assert (export / "saved_model.pb").is_file()

  # The served model, run by a separate client, reproduces the reference
  # scores the script wrote from the in-memory model.
  served = run_client(_PLAIN_TF_CLIENT, [export, reference], tmp_path)
  assert served["inputs"] == {"x": ["float32", [None, 64]]}
  assert served["outputs"] == {"anomaly_score": ["float32", [None]]}
  expected = np.load(reference)["anomaly_score"]
  assert len(served["scores"]) == len(expected) > 1000
  np.testing.assert_allclose(served["scores"], expected, rtol=1e-5,
                             atol=1e-5)


def test_anomaly_scores_refuses_to_replace_other_files(tmp_path, capsys):
  taken = tmp_path / "taken"
  taken.mkdir()
  (taken / "notes.txt").write_text("not a SavedModel")
  assert anomaly_scores.main(["--export", str(taken)]) == 2
  assert "refusing to replace" in capsys.readouterr().err
  assert (taken / "notes.txt").read_text() == "not a SavedModel"


def test_relative_difference_has_a_floor_near_zero():
  assert anomaly_scores.relative_difference([2.0, 1e-3], [2.0, 0.0]) == 1e-3
  assert anomaly_scores.relative_difference([-10.0], [-10.001]) == (
      pytest.approx(1e-3 / 10.001))
