"""The `tfgmm` command's subcommands (fit's model flags, score, sample,
select), run in-process through `tfgmm_command.main`."""

import numpy as np
import pytest

import tfgmm
import tfgmm_command


@pytest.fixture(scope="module")
def files(tmp_path_factory):
  """(directory, csv path, x) with two clusters and one empty cell."""
  tmp = tmp_path_factory.mktemp("cli")
  rng = np.random.default_rng(0)
  x = np.concatenate([rng.normal(-4, 1, (150, 2)), rng.normal(4, 1, (150, 2))])
  x[5, 1] = np.nan
  path = tmp / "d.csv"
  lines = ["a,b"] + [",".join("" if np.isnan(v) else f"{v:.17g}" for v in row)
                     for row in x]
  path.write_text("\n".join(lines) + "\n")
  complete = tmp / "complete.csv"
  complete.write_text("\n".join(lines[:6] + lines[7:]) + "\n")
  return tmp, path, x


@pytest.fixture(scope="module")
def exported(files):
  """A model fitted by `tfgmm fit --missing marginalize --export`."""
  tmp, path, _ = files
  out = tmp / "model"
  assert tfgmm_command.main([
      "fit", str(path), "-k", "2", "--seed", "0", "--missing", "marginalize",
      "--export", str(out)]) == 0
  return out


def test_missing_value_errors_say_how_to_marginalise(files, capsys):
  _, path, _ = files
  assert tfgmm_command.main([str(path), "-k", "2", "--seed", "0"]) == 2
  err = capsys.readouterr().err
  assert err.count("\n") == 1
  assert "missing value in column 'b' on line 7" in err
  assert "--missing marginalize" in err


def test_fit_flags_reach_the_model(files, exported, capsys):
  tmp, _, x = files
  x = np.delete(x, 5, axis=0)                       # complete.csv's rows
  capsys.readouterr()
  out = tmp / "tied"
  assert tfgmm_command.main([
      "fit", str(tmp / "complete.csv"), "-k", "2", "--seed", "0",
      "--covariance-type", "tied", "--weight-prior", "dirichlet_process",
      "--export", str(out)]) == 0
  reference = tfgmm.fit(x, 2, seed=0, covariance_type="tied",
                        weight_prior="dirichlet_process")
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  loaded = tf.saved_model.load(str(out))
  rows = tf.constant(x[:10], tf.float32)
  np.testing.assert_allclose(
      loaded.signatures["serving_default"](x=rows)["log_prob"].numpy(),
      reference.log_prob(x[:10]).numpy(), rtol=1e-5)


def test_score_writes_each_rows_outputs(files, exported, capsys):
  tmp, path, x = files
  out = tmp / "scores.csv"
  assert tfgmm_command.main(["score", str(exported), str(path), "--out",
                             str(out), "--missing", "marginalize",
                             "--batch-size", "64"]) == 0
  assert "Scored 300 rows" in capsys.readouterr().out
  assert out.read_text().splitlines()[0] == "log_prob,label,r0,r1"
  table = np.loadtxt(out, delimiter=",", skiprows=1)              # [N, 4]
  reference = tfgmm.fit(x, 2, seed=0, missing="marginalize")
  np.testing.assert_allclose(table[:, 0], reference.log_prob(x).numpy(),
                             rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(table[:, 2:].sum(1), 1.0, atol=1e-6)
  np.testing.assert_array_equal(table[:, 1], table[:, 2:].argmax(1))
  # .npy output, and the width check.
  assert tfgmm_command.main(["score", str(exported), str(path), "--out",
                             str(tmp / "scores.npy"), "--missing",
                             "marginalize"]) == 0
  np.testing.assert_allclose(np.load(tmp / "scores.npy"), table, rtol=1e-6)
  assert tfgmm_command.main(["score", str(exported), str(path), "--out",
                             str(out), "--columns", "a"]) == 2
  assert "takes 2 features" in capsys.readouterr().err
  # The empty cell, without --missing marginalize: one line naming the fix.
  assert tfgmm_command.main(["score", str(exported), str(path), "--out",
                             str(out)]) == 2
  err = capsys.readouterr().err
  assert "missing value in data row 5" in err
  assert "--missing marginalize" in err
  # A glob of .npy shards streams too.
  for i, part in enumerate(np.array_split(np.nan_to_num(x), 2)):
    np.save(tmp / f"rows-{i}.npy", part)
  assert tfgmm_command.main(["score", str(exported), str(tmp / "rows-*.npy"),
                             "--out", str(out)]) == 0
  assert "Scored 300 rows" in capsys.readouterr().out


def test_sample_draws_from_the_predictive(files, exported, capsys):
  tmp, _, _ = files
  out = tmp / "draws.csv"
  assert tfgmm_command.main(["sample", str(exported), "-n", "4000", "--out",
                             str(out), "--seed", "3"]) == 0
  draws = np.loadtxt(out, delimiter=",", skiprows=1)
  assert draws.shape == (4000, 2)
  # Two clusters at -4 and +4, equally weighted.
  assert abs(np.mean(draws[:, 0] > 0) - 0.5) < 0.05
  assert "Drew 4000 points" in capsys.readouterr().out


def test_select_prints_the_table_and_exports(files, capsys):
  tmp, path, _ = files
  assert tfgmm_command.main(["select", str(path), "-k", "1:4", "--missing",
                             "marginalize", "--export",
                             str(tmp / "chosen")]) == 0
  out = capsys.readouterr().out
  assert "Chosen: K = 2" in out and "<- chosen" in out
  assert (tmp / "chosen" / "saved_model.pb").is_file()


@pytest.mark.parametrize("argv, message", [
    (["score", "nowhere", "d.csv", "--out", "s.csv"], "no SavedModel"),
    (["sample", "nowhere", "-n", "3", "--out", "s.csv"], "no SavedModel"),
    (["sample", "m", "-n", "0", "--out", "s.csv"], "expected an integer >= 1"),
    (["select", "d.csv", "-k", "0:3"], "expected A:B or comma-separated"),
    (["select", "d.csv", "-k", "2", "--criterion", "aic"], "invalid choice"),
    (["select", "d.csv", "-k", "2", "--criterion", "bic", "--export", "m"],
     "--export needs a Bayesian fit"),
    (["score", "m", "d.csv"], "the following arguments are required: --out"),
])
def test_errors_are_one_line_with_status_2(files, argv, message, capsys,
                                           monkeypatch):
  monkeypatch.chdir(files[0])
  assert tfgmm_command.main(argv) == 2
  err = capsys.readouterr().err
  assert message in err and err.startswith(("tfgmm", "usage: tfgmm"))


def test_the_copied_choices_are_the_packages():
  from tfgmm import families  # pylint: disable=import-outside-toplevel
  from tfgmm import selection  # pylint: disable=import-outside-toplevel
  from tfgmm._engine import weight_priors  # pylint: disable=import-outside-toplevel
  assert tfgmm_command.COVARIANCE_TYPES == families.COVARIANCE_TYPES
  assert tfgmm_command.MISSING == families.MISSING
  assert tfgmm_command.WEIGHT_PRIORS == tuple(weight_priors.WEIGHT_PRIORS)
  assert tfgmm_command.CRITERIA == selection.CRITERIA


def test_fit_streams_several_files_and_patterns(files, capsys):
  """Several files or a pattern: `tfgmm.fit` of the files, streamed."""
  tmp, _, x = files
  x = np.delete(x, 5, axis=0)
  for i, part in enumerate(np.array_split(x, 3)):
    np.savetxt(tmp / f"shard-{i}.csv", part, delimiter=",", header="a,b",
               comments="")
  capsys.readouterr()
  assert tfgmm_command.main([str(tmp / "shard-*.csv"), "-k", "2", "--seed",
                             "0", "--export", str(tmp / "streamed"),
                             "--plots", str(tmp / "plots")]) == 0
  out = capsys.readouterr().out
  assert "(streamed)" in out and "299 rows" in out and "(converged)" in out
  assert (tmp / "plots" / "posterior.png").is_file()
  reference = tfgmm.fit(x, 2, seed=0)
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  loaded = tf.saved_model.load(str(tmp / "streamed"))
  np.testing.assert_allclose(
      loaded.signatures["serving_default"](
          x=tf.constant(x[:10], tf.float32))["log_prob"].numpy(),
      reference.log_prob(x[:10]).numpy(), rtol=1e-4)
  # Two files named one by one stream too; --resume does not apply.
  assert tfgmm_command.main([str(tmp / "shard-0.csv"), str(tmp / "shard-1.csv"),
                             "-k", "2", "--resume", str(tmp / "r")]) == 2
  assert "backup_dir" in capsys.readouterr().err


def test_fit_streams_one_large_file(files, capsys, monkeypatch):
  """One file larger than `cli.STREAM_BYTES` streams (the threshold set to
  0 here), with a row counter per pass on stderr; the same fit as loading
  it whole."""
  from tfgmm import cli  # pylint: disable=import-outside-toplevel
  tmp, _, x = files
  monkeypatch.setattr(cli, "STREAM_BYTES", 0)
  capsys.readouterr()
  assert tfgmm_command.main([str(tmp / "complete.csv"), "-k", "2", "--seed",
                             "0", "--export", str(tmp / "one-large")]) == 0
  captured = capsys.readouterr()
  assert "(streamed)" in captured.out and "299 rows" in captured.out
  assert "reading the files: 299 rows in" in captured.err, captured.err
  assert "CAVI pass 1: 299 rows in" in captured.err, captured.err
  monkeypatch.setattr(cli, "STREAM_BYTES", 64 << 20)
  assert not cli.is_streamed(str(tmp / "complete.csv"))
  assert not cli.is_streamed(str(tmp / "no-such-file.csv"))
  monkeypatch.setattr(cli, "STREAM_BYTES", 0)
  assert not cli.is_streamed(str(tmp / "complete.csv"), "whitespace")
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  loaded = tf.saved_model.load(str(tmp / "one-large"))
  reference = tfgmm.fit(np.delete(x, 5, axis=0), 2, seed=0)
  np.testing.assert_allclose(
      loaded.signatures["serving_default"](
          x=tf.constant(x[:4], tf.float32))["log_prob"].numpy(),
      reference.log_prob(x[:4]).numpy(), rtol=1e-4)


def test_fit_and_select_stream_parquet(files, capsys):
  """A Parquet file: `tfgmm fit` and `tfgmm select` stream it; its NaN
  needs --missing marginalize, and the error says so."""
  import pyarrow as pa  # pylint: disable=import-outside-toplevel
  import pyarrow.parquet as pq  # pylint: disable=import-outside-toplevel
  tmp, _, x = files
  path = tmp / "d.parquet"
  pq.write_table(pa.table({"a": x[:, 0], "b": x[:, 1]}), path)
  capsys.readouterr()
  assert tfgmm_command.main([str(path), "-k", "2", "--seed", "0"]) == 2
  assert "--missing marginalize" in capsys.readouterr().err
  assert tfgmm_command.main([str(path), "-k", "2", "--seed", "0",
                             "--missing", "marginalize"]) == 0
  assert "(streamed)" in capsys.readouterr().out
  assert tfgmm_command.main(["select", str(path), "-k", "1:3", "--seed", "0",
                             "--missing", "marginalize"]) == 0
  out = capsys.readouterr().out
  assert "(streamed, 2 features)" in out and "Chosen: K = 2" in out, out
  assert tfgmm_command.main(["select", str(path), "-k", "1:3"]) == 2
  assert "rerun with --missing marginalize" in capsys.readouterr().err
  assert tfgmm_command.main(["select", str(path), "-k", "1:3",
                             "--criterion", "heldout"]) == 2
  assert "criterion 'elbo' only" in capsys.readouterr().err
