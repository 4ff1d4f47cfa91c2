"""Resumable fits: `tfgmm.fit(..., backup_dir=...)` and the callbacks under it.

A crash is a `KeyboardInterrupt` raised by a callback right after a backup
is committed (as Ctrl-C would); tests/test_resume.py kills real processes
(SIGKILL, mid-epoch) through the command line, which calls the same
`tfgmm.fit(backup_dir=...)`.
"""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfgmm
from tfgmm import callbacks as callbacks_lib


@pytest.fixture(scope="module")
def x():
  """300 rows of 3 well-separated 2-D clusters."""
  rng = np.random.default_rng(0)
  centres = np.array([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0]])
  return centres[rng.integers(3, size=300)] + rng.standard_normal((300, 2))


class CrashAfterEpoch(keras.callbacks.Callback):
  """Raises KeyboardInterrupt once `epochs` epochs are done (and backed up)."""

  def __init__(self, epochs):
    super().__init__()
    self.epochs = epochs

  def on_epoch_end(self, epoch, logs=None):
    if epoch + 1 == self.epochs:
      raise KeyboardInterrupt


def backups(directory):
  """The names of the entries of a backup directory (none if it is gone)."""
  return sorted(os.listdir(directory)) if os.path.isdir(directory) else []


def assert_same_fit(actual, expected):
  """Bit-for-bit the same parameters, epochs, history and convergence."""
  assert actual.seed == expected.seed
  assert actual.n_epochs == expected.n_epochs
  assert actual.converged == expected.converged
  assert actual.training_history == expected.training_history
  assert actual.initialization_history == expected.initialization_history
  assert len(actual.get_weights()) == len(expected.get_weights())
  for got, want in zip(actual.get_weights(), expected.get_weights()):
    np.testing.assert_array_equal(got, want)


# The natural method on full batches converges in a few epochs; the gradient
# method on minibatches runs all its epochs, with Adam's state to restore.
NATURAL = dict(n_components=3, seed=0)
GRADIENT = dict(n_components=3, method="gradient", batch_size=100,
                max_epochs=4, seed=0)


@pytest.fixture(scope="module")
def references(x, tmp_path_factory):
  """name -> an uninterrupted fit with a backup_dir (which it deletes)."""
  fits = {}
  for name, kwargs in (("natural", NATURAL), ("gradient", GRADIENT)):
    backup = tmp_path_factory.mktemp(name) / "backup"
    fits[name] = tfgmm.fit(x, backup_dir=backup, **kwargs)
    assert not backup.exists()
  assert fits["natural"].converged and 2 < fits["natural"].n_epochs < 300
  assert fits["gradient"].n_epochs == 4
  return fits


def test_an_uninterrupted_fit_matches_the_minibatch_fit(x, references):
  # Backups change nothing: `fit` with callbacks trains the same way.
  plain = tfgmm.fit(x, callbacks=[keras.callbacks.History()], **GRADIENT)
  assert_same_fit(references["gradient"], plain)


@pytest.mark.parametrize("name, kwargs", [("natural", NATURAL),
                                          ("gradient", GRADIENT)])
def test_a_crashed_fit_resumes_to_the_same_result(x, references, tmp_path,
                                                  capsys, name, kwargs):
  reference = references[name]
  # Natural: crash between the two calm epochs that stop training, so the
  # resumed fit must replay the convergence test's state.
  crash_at = reference.n_epochs - 1 if name == "natural" else 2
  backup = tmp_path / "backup"
  with pytest.raises(KeyboardInterrupt):
    tfgmm.fit(x, backup_dir=backup, callbacks=[CrashAfterEpoch(crash_at)],
              **kwargs)
  assert backups(backup) == [f"epoch-{crash_at:08d}"]
  capsys.readouterr()
  resumed = tfgmm.fit(x, backup_dir=backup, verbose=1, **kwargs)
  out = capsys.readouterr().out
  max_epochs = kwargs.get("max_epochs", 300)
  assert (f"Resuming from the backup in {backup}: {crash_at} of "
          f"{max_epochs} epochs done (seed 0).") in out
  assert f"Epoch {crash_at + 1}/" in out and f"Epoch {crash_at}/" not in out
  assert_same_fit(resumed, reference)
  assert not backup.exists()


def test_stopped_after_the_last_backup_trains_no_more(x, references,
                                                      tmp_path, capsys,
                                                      monkeypatch):
  reference = references["natural"]
  backup = tmp_path / "backup"

  def crash(self, logs=None):
    raise KeyboardInterrupt

  # Killed after the last backup, before the finished fit deletes it.
  monkeypatch.setattr(callbacks_lib.AtomicBackupAndRestore, "on_train_end",
                      crash)
  with pytest.raises(KeyboardInterrupt):
    tfgmm.fit(x, backup_dir=backup, **NATURAL)
  assert backups(backup) == [f"epoch-{reference.n_epochs:08d}"]
  monkeypatch.undo()
  capsys.readouterr()
  resumed = tfgmm.fit(x, backup_dir=backup, verbose=1, **NATURAL)
  out = capsys.readouterr().out
  assert f"{reference.n_epochs} of 300 epochs done" in out
  assert "Epoch " not in out
  assert_same_fit(resumed, reference)
  assert not backup.exists()


def test_partial_writes_are_ignored(x, references, tmp_path):
  backup = tmp_path / "backup"
  with pytest.raises(KeyboardInterrupt):
    tfgmm.fit(x, backup_dir=backup, callbacks=[CrashAfterEpoch(2)],
              **GRADIENT)
  # What kills mid-write leave: a staging directory, and (not written by
  # tfgmm, but possible on a broken disk) a newer backup without its state.
  (backup / ".staging-abc123").mkdir()
  (backup / ".staging-abc123" / "model.weights.h5").write_bytes(b"partial")
  (backup / "epoch-00000003").mkdir()
  (backup / "epoch-00000003" / "model.weights.h5").write_bytes(b"partial")
  assert callbacks_lib.latest_backup(backup)[1]["epoch"] == 2
  resumed = tfgmm.fit(x, backup_dir=backup, **GRADIENT)
  assert_same_fit(resumed, references["gradient"])
  assert not backup.exists()


def test_the_first_seed_is_kept_in_the_backup(x, tmp_path):
  backup = tmp_path / "backup"
  kwargs = dict(GRADIENT, seed=None, max_epochs=2)
  with pytest.raises(KeyboardInterrupt):
    tfgmm.fit(x, backup_dir=backup, callbacks=[CrashAfterEpoch(1)], **kwargs)
  seed = callbacks_lib.latest_backup(backup)[1]["seed"]
  assert tfgmm.fit(x, backup_dir=backup, **kwargs).seed == seed


@pytest.fixture(scope="module")
def crashed_backup(x, tmp_path_factory):
  """A backup directory of GRADIENT's fit, crashed after epoch 1."""
  backup = tmp_path_factory.mktemp("crashed") / "backup"
  with pytest.raises(KeyboardInterrupt):
    tfgmm.fit(x, backup_dir=backup, callbacks=[CrashAfterEpoch(1)],
              **GRADIENT)
  return backup


@pytest.mark.parametrize("change, differences", [
    (dict(n_components=2), ["n_components"]),
    (dict(max_epochs=5), ["max_epochs"]),
    (dict(batch_size=50), ["batch_size"]),
    (dict(seed=1), ["seed"]),
    (dict(method="sampled"), ["method"]),
    (dict(mean_precision=2.0), ["mean_precision"]),
    (dict(sample_weight=np.full(300, 2.0)), ["sample_weight"]),
    (dict(x="shifted"), ["x"]),
    (dict(n_components=2, x="shifted"), ["n_components", "x"]),
])
def test_another_fits_backup_is_refused(x, crashed_backup, change,
                                        differences):
  kwargs = dict(GRADIENT, x=x, backup_dir=crashed_backup)
  kwargs.update(change)
  if change.get("x") == "shifted":
    kwargs["x"] = x + 1.0
  with pytest.raises(callbacks_lib.BackupMismatchError) as raised:
    tfgmm.fit(**kwargs)
  assert isinstance(raised.value, ValueError)
  assert raised.value.differences == differences
  message = str(raised.value)
  assert "holds the backup of a different fit" in message
  assert f"backup_dir={str(crashed_backup)!r}" in message
  assert backups(crashed_backup) == ["epoch-00000001"]   # left as it was


@pytest.mark.parametrize("layout, error, match", [
    ("file", ValueError, "exists and is not a directory"),
    ("foreign", ValueError, r"not a tfgmm backup \(e.g. 'notes.txt'\)"),
    ("dataset", ValueError, "array `x`.*backup_dir="),
    ("map", ValueError, "method='map'.*backup_dir="),
    ("type", TypeError, "backup_dir=3"),
    ("seed", TypeError, "seed='0'"),
])
def test_bad_backup_dir(x, tmp_path, layout, error, match):
  backup = tmp_path / "backup"
  kwargs = dict(backup_dir=backup)
  data = x
  if layout == "file":
    backup.write_text("keep me")
  elif layout == "foreign":
    backup.mkdir()
    (backup / "notes.txt").write_text("keep me")
  elif layout == "dataset":
    data = tf.data.Dataset.from_tensor_slices(x).batch(100)
  elif layout == "map":
    kwargs["method"] = "map"
  elif layout == "type":
    kwargs["backup_dir"] = 3
  else:
    kwargs["seed"] = "0"
  with pytest.raises(error, match=match):
    tfgmm.fit(data, 2, **kwargs)
  if layout == "foreign":
    assert (backup / "notes.txt").read_text() == "keep me"
  if layout == "file":
    assert backup.read_text() == "keep me"


# ----------------------------------------------------- the callbacks by hand

def test_callbacks_by_hand_resume_through_initial_epoch(x, references,
                                                        tmp_path):
  reference = references["gradient"]
  backup_dir = tmp_path / "backup"

  def attempt(callbacks=()):
    backup = callbacks_lib.AtomicBackupAndRestore(backup_dir, seed=0)
    model = tfgmm.BayesianGMM(3, 2, method="gradient", seed=backup.seed)
    model.compile()
    if backup.restore(model) is None:
      model.initialize(x, n_init=5)                # tfgmm.fit's default
      backup.backup(model)
    model.fit(tfgmm.make_dataset(x, 100, seed=model.seed), epochs=4,
              initial_epoch=model.n_epochs, verbose=0,
              callbacks=[backup, callbacks_lib.ResumableBoundConvergence(1e-5)]
              + list(callbacks))
    return model

  with pytest.raises(KeyboardInterrupt):
    attempt([CrashAfterEpoch(3)])
  assert_same_fit(attempt(), reference)
  assert not backup_dir.exists()


def test_callbacks_by_hand_check_the_resume(x, tmp_path):
  backup_dir = tmp_path / "backup"
  backup = callbacks_lib.AtomicBackupAndRestore(backup_dir)
  model = tfgmm.BayesianGMM(2, 2, seed=0)
  model.initialize(x, n_init=1)
  backup.backup(model)
  dataset = tfgmm.make_dataset(x, 100, seed=0)
  model.fit(dataset, epochs=2, verbose=0, callbacks=[backup])
  assert not backup_dir.exists()                 # a finished fit deletes it
  # A backup not restored into the model, or a fit starting elsewhere than
  # at the restored epoch, is an error rather than a silent restart.
  backup = callbacks_lib.AtomicBackupAndRestore(backup_dir)
  backup.backup(model)                                       # epoch 2
  other = tfgmm.BayesianGMM(2, 2, seed=0)
  with pytest.raises(ValueError, match="was not restored into this model"):
    other.fit(dataset, epochs=3, verbose=0,
              callbacks=[callbacks_lib.AtomicBackupAndRestore(backup_dir)])
  fresh = callbacks_lib.AtomicBackupAndRestore(backup_dir)
  assert fresh.restore(other) == 2 and other.n_epochs == 2
  with pytest.raises(ValueError, match=r"pass initial_epoch=2.*"
                                       r"initial_epoch=0"):
    other.fit(dataset, epochs=3, verbose=0, callbacks=[fresh])
  with pytest.raises(ValueError, match="seed=0"):
    callbacks_lib.AtomicBackupAndRestore(backup_dir).restore(
        tfgmm.BayesianGMM(2, 2, seed=5))


def test_resumable_convergence_replays_the_recorded_epochs():
  # window=1: the full-batch test (unattached, the default window is the
  # minibatch one).
  convergence = callbacks_lib.ResumableBoundConvergence(tol=1e-3, window=1)
  assert not convergence.replay([5.0, 4.0, 3.9995])     # one calm epoch
  assert convergence.replay([5.0, 4.0, 3.9995, 3.9991])  # two: converged
  assert not convergence.update(3.0)                     # a jump resets it
  plain = callbacks_lib.BoundConvergence(tol=1e-3, window=1)
  assert [plain.update(v) for v in (5.0, 4.0, 3.9995, 3.9991)] == [
      False, False, False, True]
