"""Crash and resume with real processes: SIGKILL mid-epoch, mid-export.

- `tfgmm --resume DIR` (the command, `python -m tfgmm_command`, which calls
  `tfgmm.fit(..., backup_dir=DIR)`) is killed with SIGKILL in the middle of
  an epoch, restarted with the same command, and must end with the same
  parameters as a run never interrupted: bit for bit (assert_array_equal),
  for the natural method and for the gradient method (Adam's state).
- An export killed while the SavedModel is being written, or while it
  replaces the previous one, never leaves a directory that loads as a partial
  model, and the previous export survives.

Processes write their output to files (a full pipe would block them) and are
killed in `finally` blocks if a test fails.
"""

import pathlib
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.helpers import subprocess_env

COMMAND = [sys.executable, "-m", "tfgmm_command"]
TIMEOUT = 240   # seconds for any one process; the file takes far less
EPOCHS = 10
STEPS = 40      # batches per epoch: 2000 rows, batches of 50
KILL_AT = 3     # SIGKILL during the epoch after the 3rd backup


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
  """2000 rows, 3 clusters, 2 features: 40 batches of 50 per epoch."""
  rng = np.random.default_rng(0)
  centres = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
  x = centres[rng.integers(3, size=2000)] + rng.standard_normal((2000, 2))
  path = tmp_path_factory.mktemp("data") / "x.npy"
  np.save(path, x)
  return path


class Run:
  """The command (or `python -c code`) in a subprocess, output to a file."""

  def __init__(self, args, log, code=None, env=None):
    self.log_path = log
    self._log = open(log, "w", encoding="utf-8")  # pylint: disable=consider-using-with
    command = [sys.executable, "-c", code] if code else COMMAND
    self.process = subprocess.Popen(  # pylint: disable=consider-using-with
        command + [str(a) for a in args], env=subprocess_env(**(env or {})),
        stdout=self._log, stderr=subprocess.STDOUT)

  def output(self):
    return pathlib.Path(self.log_path).read_text(encoding="utf-8")

  def finish(self):
    try:
      status = self.process.wait(TIMEOUT)
    finally:
      self.kill()
    assert status == 0, self.output()[-3000:]
    return self.output()

  def kill(self):
    if self.process.poll() is None:
      self.process.send_signal(signal.SIGKILL)
      self.process.wait()
    self._log.close()

  def wait_until(self, condition, what):
    deadline = time.monotonic() + TIMEOUT
    while not condition():
      if self.process.poll() is not None:
        pytest.fail(f"the process ended before {what}:\n"
                    + self.output()[-3000:])
      if time.monotonic() > deadline:
        pytest.fail(f"timed out waiting for {what}")
      time.sleep(0.005)


def backups(directory):
  """Epochs of the complete backups in a --resume directory."""
  if not directory.is_dir():
    return []
  return sorted(int(p.name[len("epoch-"):]) for p in directory.iterdir()
                if re.fullmatch(r"epoch-\d{8}", p.name))


def exported_posterior(path):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  loaded = tf.saved_model.load(str(path))
  return {name: variable.numpy()
          for name, variable in loaded.posterior_fields.items()}


def results(out):
  """The printed posterior table, epoch count and bound."""
  start = out.index("Posterior (mean ± sd)")
  return out[start:out.index("\n", out.index("Final bound", start))]


# Runs the command once per method in sys.argv[1] (comma-separated) with
# the arguments sys.argv[2:], "{method}" replaced: the uninterrupted runs
# share one process (one TensorFlow import).
REFERENCES = r"""
import sys
from tfgmm_command import main
for method in sys.argv[1].split(","):
  print(f"=== {method}", flush=True)
  if main([arg.replace("{method}", method) for arg in sys.argv[2:]]):
    sys.exit(1)
"""
METHODS = ("natural", "gradient")


def training_args(data_file, method, backup, export):
  return [data_file, "--method", method, "--batch-size", 50, "--epochs",
          EPOCHS, "--seed", 7, "--resume", backup, "--export", export]


@pytest.fixture(scope="module")
def uninterrupted(data_file, tmp_path_factory):
  """method -> (its output, its export): runs alongside the first test."""
  tmp = tmp_path_factory.mktemp("uninterrupted")
  run = Run([",".join(METHODS)] + training_args(
      data_file, "{method}", tmp / "backup-{method}", tmp / "{method}"),
            tmp / "log", code=REFERENCES)
  outputs = {}

  def result(method):
    if not outputs:
      log = run.finish()
      for block in log.split("=== ")[1:]:
        name, _, text = block.partition("\n")
        outputs[name] = text
    return outputs[method], tmp / method

  try:
    yield result
  finally:
    run.kill()


@pytest.mark.parametrize("method", METHODS)
def test_sigkill_mid_epoch_then_resume_gives_identical_parameters(
    data_file, uninterrupted, tmp_path, method):
  backup = tmp_path / "backup"
  command = training_args(data_file, method, backup, tmp_path / "resumed")
  victim = Run(command, tmp_path / "killed.log")
  # Keras' progress bar shows the steps of each epoch as they run: kill as
  # soon as epoch KILL_AT + 1 is under way, after backup KILL_AT.
  header = f"Epoch {KILL_AT + 1}/{EPOCHS}"

  def steps_run(out):
    return [int(step) for step in re.findall(
        rf"(\d+)/{STEPS}\b", out.split(header)[-1])] if header in out else []

  try:
    victim.wait_until(lambda: steps_run(victim.output()),
                      f"a step of epoch {KILL_AT + 1}")
  finally:
    victim.kill()
  out = victim.output()
  # Killed mid-epoch: backup KILL_AT is the last, its next epoch half-run.
  assert backups(backup) == [KILL_AT], out[-3000:]
  assert STEPS not in steps_run(out) and "Final bound" not in out

  resumed = Run(command, tmp_path / "resumed.log").finish()
  assert (f"Resuming from the backup in {backup}: {KILL_AT} of {EPOCHS} "
          "epochs done (seed 7).") in resumed
  assert header in resumed and f"Epoch {KILL_AT}/{EPOCHS}" not in resumed
  assert not backup.exists()   # a finished run deletes its backup
  reference_output, reference_export = uninterrupted(method)
  assert results(resumed) == results(reference_output)  # incl. "Epochs: 10"
  expected = exported_posterior(reference_export)
  actual = exported_posterior(tmp_path / "resumed")
  assert sorted(actual) == sorted(expected)
  for name, value in expected.items():
    np.testing.assert_array_equal(actual[name], value, err_msg=name)


# ------------------------------------------------------------------- export

# Runs the command with the arguments sys.argv[1:] after installing a hang at
# the point $HANG_AT of the export; prints HANGING there.
HANG = r"""
import os, sys, time

def hang():
  print("HANGING", flush=True)
  time.sleep(3600)

stage = os.environ["HANG_AT"]
target = os.path.abspath(sys.argv[sys.argv.index("--export") + 1])
if stage == "writing":
  # Inside tf.saved_model.save: the variables are written, saved_model.pb
  # (written last) is not.
  from tensorflow.python.lib.io import file_io
  write = file_io.atomic_write_string_to_file
  def hanging_write(filename, *args, **kwargs):
    if os.path.basename(str(filename)) == "saved_model.pb":
      hang()
    return write(filename, *args, **kwargs)
  file_io.atomic_write_string_to_file = hanging_write
elif stage == "replacing":
  # Just after the atomic exchange of the staging directory and the target.
  import tfgmm.export
  exchange = tfgmm.export._exchange
  def hanging_exchange(first, second):
    swapped = exchange(first, second)
    if os.path.abspath(second) == target:
      hang()
    return swapped
  tfgmm.export._exchange = hanging_exchange
from tfgmm_command import main
sys.exit(main(sys.argv[1:]))
"""


def serve(path):
  """The outputs of a SavedModel's signatures on fixed rows (loads it all)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  loaded = tf.saved_model.load(str(path))
  x = tf.constant(np.random.default_rng(1).normal(size=(50, 2)), tf.float32)
  return {name: {key: value.numpy()
                 for key, value in loaded.signatures[name](x=x).items()}
          for name in ("serving_default", "responsibilities", "assign")}


def assert_same_outputs(actual, expected):
  assert actual.keys() == expected.keys()
  for signature, outputs in expected.items():
    for key, value in outputs.items():
      np.testing.assert_array_equal(actual[signature][key], value,
                                    err_msg=f"{signature}: {key}")


@pytest.fixture(scope="module", autouse=True)
def hanging_exports(tmp_path_factory):
  """Starts the exports to be killed, before any test: they run alongside.

  For each hang point, a previous export (written here, of other data) is
  at the target, and a run of the command (seed 1) exporting to the same
  target will hang at that point.

  Yields:
    stage -> (target, what the previous export served, the run).
  """
  import tfgmm  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(3)
  x = np.concatenate([rng.normal(-3, 1, (200, 2)), rng.normal(3, 1, (200, 2))])
  data = tmp_path_factory.mktemp("export-data") / "x.npy"
  np.save(data, x)
  model = tfgmm.fit(x + 1.0, 3, seed=0, n_init=1)   # unlike the new one
  runs = {}
  try:
    for stage in ("writing", "replacing"):
      target = tmp_path_factory.mktemp(stage) / "models" / "gmm"
      model.export(str(target))
      runs[stage] = (target, serve(target), Run(
          [data, "--seed", 1, "--export", target], target.parent / "log",
          code=HANG, env={"HANG_AT": stage}))
    yield runs
  finally:
    for _, _, run in runs.values():
      run.kill()


@pytest.fixture(scope="module")
def killed_exports(hanging_exports):
  """stage -> (target, what the previous export served), once killed."""
  for stage, (_, _, run) in hanging_exports.items():
    run.wait_until(lambda run=run: "HANGING" in run.output(),
                   f"the export to hang while {stage}")
    run.kill()
  return {stage: (target, previous)
          for stage, (target, previous, _) in hanging_exports.items()}


def test_kill_while_writing_leaves_the_previous_export(killed_exports):
  target, previous = killed_exports["writing"]
  staging = [p for p in target.parent.iterdir()
             if p.name.startswith(".tfgmm-export-")]
  # The kill hit mid-save: variables written, saved_model.pb not.
  assert len(staging) == 1 and (staging[0] / "variables").is_dir()
  assert not (staging[0] / "saved_model.pb").exists()
  # The target is still the previous export, complete.
  assert_same_outputs(serve(target), previous)


def test_kill_just_after_the_swap_leaves_the_new_export(killed_exports):
  target, previous = killed_exports["replacing"]
  # One atomic exchange: the target holds the new export, complete ...
  new = serve(target)
  assert not np.array_equal(new["serving_default"]["log_prob"],
                            previous["serving_default"]["log_prob"])
  # ... and the staging directory the previous one, also complete.
  staging = [p for p in target.parent.iterdir()
             if p.name.startswith(".tfgmm-export-")]
  assert len(staging) == 1
  assert_same_outputs(serve(staging[0]), previous)


def test_the_next_export_removes_what_killed_exports_left(killed_exports):
  import tfgmm  # pylint: disable=import-outside-toplevel
  model = tfgmm.fit(np.random.default_rng(4).normal(size=(100, 2)), 2,
                    seed=0, n_init=1)
  for target, _ in killed_exports.values():
    left = [p.name for p in target.parent.iterdir()
            if p.name.startswith(".tfgmm-")]
    assert len(left) == 1, left
    model.export(str(target))
    assert not [p.name for p in target.parent.iterdir()
                if p.name.startswith(".tfgmm-")]
    np.testing.assert_allclose(
        serve(target)["serving_default"]["log_prob"],
        model.log_prob(np.random.default_rng(1).normal(size=(50, 2))),
        rtol=1e-5)
