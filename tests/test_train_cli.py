"""Tests of the command line, `tfgmm.cli` (`tfgmm`, scripts/train.py).

They call `tfgmm.cli.main([...])` in this process; tests/test_command.py
covers the entry points (`tfgmm_command`, the script) in fresh processes,
and tests/test_resume.py kills real ones.
"""

import importlib.util
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import tfgmm_command
from tests.helpers import PNG_SIGNATURE
from tests.helpers import SCRIPTS
from tests.helpers import subprocess_env
from tfgmm import api
from tfgmm import callbacks as callbacks_lib
from tfgmm import cli


def assert_png(path):
  path = pathlib.Path(path)
  assert path.is_file(), path
  data = path.read_bytes()
  assert len(data) > 1000, path
  assert data[:8] == PNG_SIGNATURE, path


def assert_one_line_error(capsys, *fragments, prog="tfgmm"):
  captured = capsys.readouterr()
  lines = captured.err.strip().splitlines()
  assert len(lines) == 1, captured.err
  assert lines[0].startswith(f"{prog}: error: "), lines[0]
  assert "Traceback" not in captured.err
  for fragment in fragments:
    assert fragment in lines[0], lines[0]
  return lines[0]


def write_people_csv(path, n=400, seed=0):
  """A CSV with a header, a text column and two numeric columns in 2 groups."""
  rng = np.random.RandomState(seed)
  lines = ["name,height,weight,group"]
  for i in range(n):
    g = i % 2
    lines.append(f"p{i},{160 + 20 * g + 4 * rng.randn():.3f},"
                 f"{55 + 25 * g + 3 * rng.randn():.3f},g{g}")
  path.write_text("\n".join(lines) + "\n")
  return path


# ------------------------------------------------------------- end to end

def test_demo_exports_and_plots(tmp_path, capsys):
  export = tmp_path / "saved_models" / "demo"
  plots = tmp_path / "plots"
  status = cli.main(["--demo", "--seed", "0", "--export", str(export),
                     "--plots", str(plots)])
  out = capsys.readouterr().out
  assert status == 0
  assert (export / "saved_model.pb").is_file()
  assert (export / "variables").is_dir()
  for name in ("training", "density", "posterior", "assignments"):
    assert_png(plots / f"{name}.png")
  assert "3000 points x 2 features" in out
  assert "(converged)" in out
  assert "Final bound (ELBO per point): -3.9" in out
  assert f"SavedModel: {export}" in out
  assert str(plots / "density.png") in out
  # The table: 3 components x 2 features, weights about 1/3 each.
  assert out.count("0.33") >= 3
  assert out.count(" ± ") == 1 + 3 * (1 + 2 * 2)   # header + table


def test_demo_data_matches_the_seed_blog():
  x = cli.demo_data()
  assert x.shape == (3000, 2) and x.dtype == np.float32
  expected = np.random.RandomState(12345).randn(3000, 2).astype(np.float32)
  shift = np.float32([[2, 0]] * 1000 + [[-2, -4]] * 1000 + [[-2, 4]] * 1000)
  np.testing.assert_array_equal(x, expected + shift)


def test_csv_with_header_and_named_columns(tmp_path, capsys):
  data = write_people_csv(tmp_path / "people.csv")
  status = cli.main([str(data), "-k", "2", "--columns", "height,weight",
                     "--seed", "1", "--plots", str(tmp_path / "plots")])
  out = capsys.readouterr().out
  assert status == 0
  assert "400 points x 2 features (height, weight)" in out
  assert "height" in out and "weight" in out
  assert_png(tmp_path / "plots" / "density.png")
  # The two groups' means are recovered (rounded to the sd's precision).
  means = sorted(float(line.split()[-6]) for line in out.splitlines()
                 if " height " in line)
  assert means[0] == pytest.approx(160, abs=1.5)
  assert means[1] == pytest.approx(180, abs=1.5)


def test_npy_input_one_feature(tmp_path, capsys):
  rng = np.random.RandomState(0)
  path = tmp_path / "x.npy"
  np.save(path, np.concatenate([rng.randn(300) - 3, rng.randn(300) + 3]))
  status = cli.main([str(path), "-k", "2", "--seed", "0",
                     "--plots", str(tmp_path / "plots")])
  out = capsys.readouterr().out
  assert status == 0
  assert "600 points x 1 feature (x0)" in out
  for name in ("training", "density", "posterior", "assignments"):
    assert_png(tmp_path / "plots" / f"{name}.png")


def test_three_features_skip_the_density_plot(tmp_path, capsys):
  path = tmp_path / "x.npy"
  np.save(path, np.random.RandomState(0).randn(200, 3))
  plots = tmp_path / "plots"
  assert cli.main([str(path), "-k", "2", "--seed", "0",
                   "--plots", str(plots)]) == 0
  out = capsys.readouterr().out
  for name in ("training", "posterior", "assignments"):
    assert_png(plots / f"{name}.png")
  assert not (plots / "density.png").exists()
  assert "no density plot for 3 features" in out


def test_minibatch_gradient_shows_keras_progress(tmp_path, capsys):
  path = tmp_path / "x.npy"
  np.save(path, cli.demo_data()[::3])
  status = cli.main([str(path), "--method", "gradient", "--batch-size",
                     "250", "--epochs", "2", "--seed", "0"])
  out = capsys.readouterr().out
  assert status == 0
  assert "minibatch model.fit (batch size 250)" in out
  assert "Epoch 1/2" in out          # Keras' progress bar ran.
  assert "Epochs: 2" in out


def test_subprocess_entry_point(tmp_path):
  # `make run`'s path: scripts/train.py in a fresh process.
  result = subprocess.run(
      [sys.executable, str(SCRIPTS / "train.py"), "--demo", "--seed", "0",
       "--plots", "plots"],
      cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True,
      timeout=300, check=False)
  assert result.returncode == 0, result.stderr[-2000:]
  assert "(converged)" in result.stdout
  # A quiet start: none of TensorFlow's C++ start-up notices (which since
  # TF 2.19 ignore TF_CPP_MIN_LOG_LEVEL), nothing else on stderr.
  assert result.stderr == "", result.stderr[-2000:]
  assert_png(tmp_path / "plots" / "density.png")


def test_error_exit_status_names_the_program(tmp_path, capsys):
  # scripts/train.py calls the command with prog="train.py"; the exit
  # status of a process is checked in tests/test_command.py.
  assert cli.main([str(tmp_path / "missing.csv")], prog="train.py") == 2
  assert_one_line_error(capsys, "cannot read", prog="train.py")


# ------------------------------------------------------------------ loading

def test_load_csv_header_detection_and_indices(tmp_path):
  path = tmp_path / "plain.csv"
  path.write_text("1,2,3\n4,5,6\n\n# a comment\n7,8,9\n")
  x, names = cli.load_data(path)
  np.testing.assert_array_equal(x, [[1, 2, 3], [4, 5, 6], [7, 8, 9]])
  assert names == ["x0", "x1", "x2"]
  x, names = cli.load_data(path, columns=["2", "0"])
  np.testing.assert_array_equal(x, [[3, 1], [6, 4], [9, 7]])
  assert names == ["x2", "x0"]
  # Forcing a header makes the first row the names.
  x, names = cli.load_data(path, header=True)
  assert names == ["1", "2", "3"] and x.shape == (2, 3)


@pytest.mark.parametrize("text, delimiter", [
    ("a;b\n1.5;2\n3;4e1\n", None),
    ("a\tb\n1.5\t2\n3\t4e1\n", None),
    ("a  b\n 1.5   2\n3 4e1\n", None),
    ("a|b\n1.5|2\n3|4e1\n", "|"),
])
def test_load_csv_delimiters(tmp_path, text, delimiter):
  path = tmp_path / "data.txt"
  path.write_text(text)
  x, names = cli.load_data(path, delimiter=delimiter)
  assert names == ["a", "b"]
  np.testing.assert_array_equal(x, [[1.5, 2.0], [3.0, 40.0]])


def test_delimiter_and_column_flags_parse():
  args = tfgmm_command.build_parser().parse_args(
      ["f.csv", "--delimiter", "tab", "--columns", "a, 2", "--no-header"])
  assert args.delimiter == "\t"
  assert args.columns == ["a", "2"]
  assert args.header is False


def test_format_summary_aligns_and_marks_missing_sd():
  summary = {
      "weights": np.array([0.75, 0.25]),
      "weights_sd": np.array([0.01, 0.01]),
      "means": np.array([[-12.3456], [0.0004]]),
      "means_sd": np.array([[0.123], [0.5]]),
      "stddevs": np.array([[1.0], [2.0]]),
      "stddevs_sd": np.array([[0.05], [np.nan]]),
  }
  lines = cli.format_summary(summary, ["length"]).splitlines()
  assert len(lines) == 3
  assert "-12.35 ± 0.12" in lines[1]     # 2 significant digits of the sd
  assert "0.750 ± 0.010" in lines[1]
  assert "0.00 ± 0.50" in lines[2] and "-0" not in lines[2]
  assert "2 ± n/a" in lines[2]
  assert lines[1].index("±") == lines[2].index("±")


# ------------------------------------------------------------------- errors

@pytest.mark.parametrize("content, args, fragments", [
    (None, [], ["cannot read", "No such file"]),
    ("a,b\n1,2\n3,x\n", [], ["non-numeric value 'x'", "column 'b'",
                             "line 3", "--columns"]),
    ("a,b\n1,2\n3,x\n", ["--columns", "b"], ["non-numeric value 'x'"]),
    ("a,b\n1,2\n3,4\n", ["--columns", "a,c"], ["unknown column 'c'",
                                               "'a', 'b'"]),
    ("1,2\n3,4\n", ["--columns", "a"], ["unknown column 'a'", "no header"]),
    ("a,b\n1,2\n", ["--columns", "5"], ["column index 5 is out of range"]),
    ("", [], ["holds no data"]),
    ("a,b\n", [], ["a header but no data rows"]),
    ("a,b\n1,2\n3\n", [], ["line 3", "1 field, expected 2"]),
    ("a,b\n1,2\n3,\n", [], ["missing value", "column 'b'"]),
    ("a,b\n1,2\n3,inf\n", [], ["non-finite value 'inf'"]),
    ("a,b\n1,2\n3,4\n", ["--no-header"], ["non-numeric value 'a'",
                                          "line 1"]),
])
def test_data_errors_exit_2_with_one_line(tmp_path, capsys, content, args,
                                          fragments):
  path = tmp_path / "data.csv"
  if content is not None:
    path.write_text(content)
  assert cli.main([str(path), *args]) == 2
  assert_one_line_error(capsys, *fragments)
  assert capsys.readouterr().out == ""


def test_npy_errors_exit_2(tmp_path, capsys):
  strings = tmp_path / "strings.npy"
  np.save(strings, np.array([["a", "b"]]))
  assert cli.main([str(strings)]) == 2
  assert_one_line_error(capsys, "non-numeric array")
  cube = tmp_path / "cube.npy"
  np.save(cube, np.zeros((2, 2, 2)))
  assert cli.main([str(cube)]) == 2
  assert_one_line_error(capsys, "shape (2, 2, 2)")
  pickled = tmp_path / "objects.npy"
  np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
  assert cli.main([str(pickled)]) == 2
  assert_one_line_error(capsys, "cannot read")


def test_binary_file_as_csv_exits_2(tmp_path, capsys):
  path = tmp_path / "image.csv"
  path.write_bytes(PNG_SIGNATURE + bytes(range(256)))
  assert cli.main([str(path)]) == 2
  assert_one_line_error(capsys, "not a UTF-8 text")


def test_export_refuses_to_replace_a_foreign_directory(tmp_path, capsys):
  target = tmp_path / "mine"
  target.mkdir()
  (target / "notes.txt").write_text("keep me")
  assert cli.main(["--demo", "--export", str(target)]) == 2
  assert_one_line_error(capsys, "refusing to replace")
  assert (target / "notes.txt").read_text() == "keep me"


def test_tfgmm_argument_errors_are_recognised():
  recognised = cli._raised_by_tfgmm_checks  # pylint: disable=protected-access
  with pytest.raises(ValueError) as raised:
    api.fit(np.zeros((4, 2)), 0)
  assert recognised(raised.value)
  with pytest.raises(ValueError) as raised:
    np.zeros(2).reshape(3)
  assert not recognised(raised.value)


def test_training_failure_exits_1_with_one_line(capsys, monkeypatch):

  def broken_fit(*args, **kwargs):
    raise TypeError("Expected int32, but got None\n  more details")

  monkeypatch.setattr(api, "fit", broken_fit)
  assert cli.main(["--demo"]) == 1
  line = assert_one_line_error(capsys, "training failed: TypeError: "
                               "Expected int32, but got None", "--debug")
  assert "more details" not in line
  with pytest.raises(TypeError):
    cli.main(["--demo", "--debug"])


def test_tensorboard_without_the_package_exits_2(tmp_path, capsys,
                                                monkeypatch):
  monkeypatch.setattr(cli, "_tensorboard_available", lambda: False)
  assert cli.main(["--demo", "--tensorboard", str(tmp_path / "logs")]) == 2
  assert_one_line_error(capsys, "tensorboard")


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None,
                    reason="tensorboard is not installed")
def test_tensorboard_logs(tmp_path, capsys):
  logs = tmp_path / "logs"
  assert cli.main(["--demo", "--epochs", "2", "--seed", "0",
                   "--tensorboard", str(logs)]) == 0
  assert "Epoch 1/" in capsys.readouterr().out
  assert any(logs.rglob("events.out.tfevents.*"))


@pytest.mark.parametrize("args", [
    [],                                    # neither data nor --demo
    ["--demo", "data.csv"],                # both
    ["--demo", "-k", "0"],
    ["--demo", "--method", "newton"],
    ["--demo", "--epochs", "x"],
    ["--demo", "--no-header"],
    ["--demo", "--columns", "a"],
])
def test_usage_errors_exit_2(capsys, args):
  assert cli.main(args) == 2
  err = capsys.readouterr().err
  assert "tfgmm: error: " in err
  assert "Traceback" not in err


def test_help_exits_0(capsys):
  assert cli.main(["--help"]) == 0
  assert "--components" in capsys.readouterr().out


# ------------------------------------------------------------------- resume
# In-process: a crash is a KeyboardInterrupt raised right after a backup is
# committed (as Ctrl-C would); tests/test_resume.py kills real processes.

def exported_posterior(path):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  loaded = tf.saved_model.load(str(path))
  return {name: variable.numpy()
          for name, variable in loaded.posterior_fields.items()}


def assert_same_posterior(path_a, path_b):
  a, b = exported_posterior(path_a), exported_posterior(path_b)
  assert sorted(a) == sorted(b)
  for name in a:
    np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def summary_lines(out):
  """The printed results: the posterior table, epochs and bound."""
  start = out.index("Posterior (mean ± sd)")
  end = out.index("\n", out.index("Final bound", start))
  return out[start:end].splitlines()


def crash_after_backup(monkeypatch, epoch):
  """Makes the next run stop (KeyboardInterrupt) once backup `epoch` is in."""
  commit = callbacks_lib.commit_backup

  def commit_then_crash(model, directory, state):
    commit(model, directory, state)
    if state["epoch"] == epoch:
      raise KeyboardInterrupt

  monkeypatch.setattr(callbacks_lib, "commit_backup", commit_then_crash)


class _Tee:
  """A stdout that also keeps what is written (capsys is per test)."""

  def __init__(self, stream, sink):
    self.stream, self.sink = stream, sink

  def write(self, text):
    self.sink.append(text)
    return self.stream.write(text)

  def flush(self):
    self.stream.flush()

  def isatty(self):
    return False

  def __getattr__(self, name):
    return getattr(self.stream, name)


# Full-batch CAVI through model.fit (--resume), converging in a few epochs.
CONVERGING = ["--demo", "--seed", "0"]


@pytest.fixture(scope="module")
def converging_run(tmp_path_factory):
  """(export, output, epochs) of an uninterrupted converging --resume run."""
  tmp = tmp_path_factory.mktemp("converging")
  captured = []
  with pytest.MonkeyPatch.context() as patch:
    patch.setattr(sys, "stdout", _Tee(sys.stdout, captured))
    assert cli.main(CONVERGING + ["--resume", str(tmp / "backup"),
                                  "--export", str(tmp / "export")]) == 0
  out = "".join(captured)
  epochs = int(out.split("Epochs: ")[1].split()[0])
  # BoundConvergence stops after two calm epochs: epoch 1 is never calm.
  assert "(converged)" in out and 2 < epochs < 300
  assert not (tmp / "backup").exists()          # deleted when finished
  return tmp / "export", out, epochs


def test_help_documents_resume(capsys):
  assert cli.main(["--help"]) == 0
  out = capsys.readouterr().out
  assert "--resume DIR" in out and "BackupAndRestore" in out


def test_resume_without_interruption_matches_a_plain_run(tmp_path,
                                                         capsys):
  common = ["--demo", "--method", "gradient", "--batch-size", "500",
            "--epochs", "3", "--seed", "0"]
  assert cli.main(common + ["--export", str(tmp_path / "plain")]) == 0
  plain = capsys.readouterr().out
  backup = tmp_path / "backup"
  assert cli.main(common + ["--export", str(tmp_path / "resumable"),
                            "--resume", str(backup)]) == 0
  resumable = capsys.readouterr().out
  assert f"Backing up the training state in {backup}" in resumable
  assert summary_lines(plain) == summary_lines(resumable)
  assert_same_posterior(tmp_path / "plain", tmp_path / "resumable")
  assert not backup.exists()


def test_crash_then_resume_converges_at_the_same_epoch(converging_run,
                                                       tmp_path, capsys,
                                                       monkeypatch):
  # Crash one epoch before the end: between the two calm epochs that stop
  # training, so the resumed run must replay the convergence test's state.
  reference, reference_out, epochs = converging_run
  args = CONVERGING + ["--resume", str(tmp_path / "backup")]
  export = ["--export", str(tmp_path / "export"), "--plots",
            str(tmp_path / "plots")]
  crash_after_backup(monkeypatch, epochs - 1)
  assert cli.main(args + export) == 130
  captured = capsys.readouterr()
  assert "run the same command again to resume" in captured.err
  assert os.listdir(tmp_path / "backup") == [f"epoch-{epochs - 1:08d}"]
  monkeypatch.undo()
  assert cli.main(args + export) == 0
  out = capsys.readouterr().out
  assert f"Resuming from the backup in {tmp_path / 'backup'}: {epochs - 1} " \
         "of 300 epochs done (seed 0)." in out
  assert f"Epoch {epochs}/300" in out and f"Epoch {epochs - 1}/300" not in out
  assert summary_lines(out) == summary_lines(reference_out)   # same n_epochs
  assert_same_posterior(reference, tmp_path / "export")
  assert_png(tmp_path / "plots" / "training.png")
  assert not (tmp_path / "backup").exists()


def test_killed_after_the_last_backup_trains_no_more(converging_run,
                                                     tmp_path, capsys,
                                                     monkeypatch):
  reference, reference_out, epochs = converging_run
  args = CONVERGING + ["--resume", str(tmp_path / "backup")]

  def crash(self, logs=None):
    raise KeyboardInterrupt

  monkeypatch.setattr(callbacks_lib.AtomicBackupAndRestore, "on_train_end",
                      crash)
  assert cli.main(args) == 130
  assert os.listdir(tmp_path / "backup") == [f"epoch-{epochs:08d}"]
  monkeypatch.undo()
  capsys.readouterr()
  assert cli.main(args + ["--export", str(tmp_path / "export")]) == 0
  out = capsys.readouterr().out
  assert f"{epochs} of 300 epochs done" in out and "Epoch " not in out
  assert summary_lines(out) == summary_lines(reference_out)
  assert_same_posterior(reference, tmp_path / "export")
  assert not (tmp_path / "backup").exists()


def test_resume_refuses_another_runs_backup(tmp_path, capsys,
                                            monkeypatch):
  backup = tmp_path / "backup"
  args = ["--demo", "--seed", "3", "--epochs", "5", "--resume", str(backup)]
  crash_after_backup(monkeypatch, 1)
  assert cli.main(args) == 130
  monkeypatch.undo()
  capsys.readouterr()
  for changed, fragment in [
      (["--demo", "--seed", "3", "--epochs", "6"], "its epochs differ"),
      (["--demo", "--seed", "4", "--epochs", "5"], "its seed differ"),
      (["--demo", "--seed", "3", "--epochs", "5", "-k", "2"],
       "its components differ"),
      (["--demo", "--seed", "3", "--epochs", "5", "--columns", "1,0"],
       "its data differ"),
  ]:
    assert cli.main(changed + ["--resume", str(backup)]) == 2
    assert_one_line_error(capsys, "holds the backup of a different run",
                          fragment)
  assert os.listdir(backup) == ["epoch-00000001"]
  # Without --seed, the backup's seed is used.
  assert cli.main(["--demo", "--epochs", "5", "--resume", str(backup)]) == 0
  assert "1 of 5 epochs done (seed 3)" in capsys.readouterr().out


@pytest.mark.parametrize("layout, fragment", [
    ("foreign", "not a tfgmm backup"),
    ("file", "not a directory"),
    ("plots-inside", "inside --resume"),
    ("inside-export", "inside --export"),
])
def test_resume_directory_errors_exit_2(tmp_path, capsys, layout,
                                        fragment):
  backup = tmp_path / "backup"
  args = ["--demo", "--resume", str(backup)]
  if layout == "foreign":
    backup.mkdir()
    (backup / "notes.txt").write_text("keep me")
  elif layout == "file":
    backup.write_text("keep me")
  elif layout == "plots-inside":
    args += ["--plots", str(backup / "plots")]
  else:
    args = ["--demo", "--export", str(tmp_path), "--resume",
            str(tmp_path / "backup")]
  assert cli.main(args) == 2
  assert_one_line_error(capsys, fragment)
  if layout == "foreign":
    assert (backup / "notes.txt").read_text() == "keep me"
