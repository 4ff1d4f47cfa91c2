"""Keras callbacks used by `BayesianGMM.fit` and `tfgmm.fit`.

- `BoundConvergence`: stops training when the bound settles.
- `ResumableBoundConvergence`: the same test, continued over the epochs a
  restored model has already recorded.
- `AtomicBackupAndRestore`: backs the training state up atomically after
  every epoch and restores it before `fit` resumes (`tfgmm.fit`'s
  `backup_dir`); `BackupMismatchError` when a backup belongs to another fit.
- `EpochSeed`: tells a `make_dataset` dataset which epoch begins.
"""

import json
import math
import os
import statistics
import re
import shutil
import tempfile

import keras


# Epochs per window of the noise-aware test (minibatch training).
DEFAULT_WINDOW = 5


def window_for_steps(steps):
  """`BoundConvergence`'s default window for epochs of `steps` steps.

  One step per epoch (a full batch) makes the epoch's loss the exact bound
  of the epoch's start: window 1. Minibatch epochs average a moving,
  noisy bound: `DEFAULT_WINDOW` (also for an unknown number of steps).
  """
  return 1 if steps == 1 else DEFAULT_WINDOW


class BoundConvergence(keras.callbacks.Callback):
  """Stops training when the epoch's loss (negative bound per point) settles.

  With `window` w = 1 (full-batch epochs, where the loss is the exact bound)
  an epoch is calm when its loss moved by less than `tol` nats per point.
  With w > 1 (minibatch epochs, whose loss jitters with the batches by more
  than a useful `tol`) it compares the mean loss of the last w epochs with
  that of the w before, and the epoch is calm when

  ```none
  |mean(new) - mean(old)| < tol + 2 sqrt((var(old) + var(new)) / w)
  ```

  (var: the sample variance of the windows' epoch losses): the bound has
  stopped moving by more than `tol` plus twice the standard error of the
  difference, i.e. by more than the minibatch noise can resolve. The test
  uses the logged epoch losses only (no extra pass over the data). Training
  stops once `patience` consecutive epochs are calm; the model's
  `converged` is then True.

  Args:
    tol: nats per data point, > 0.
    patience: consecutive calm epochs needed, int >= 1.
    monitor: the logged metric to watch.
    window: epochs per window, int >= 1, or None: 1 when every epoch is one
      step, else `DEFAULT_WINDOW` (`window_for_steps`, from Keras'
      `params["steps"]`).
  """

  def __init__(self, tol=1e-4, patience=2, monitor="loss", window=None):
    super().__init__()
    if not tol > 0:
      raise ValueError(f"Expected `tol` > 0. Received: tol={tol!r}.")
    if window is not None and not (isinstance(window, int) and window >= 1):
      raise ValueError("Expected `window` to be None or an int >= 1. "
                       f"Received: window={window!r}.")
    self.tol = float(tol)
    self.patience = int(patience)
    self.monitor = monitor
    self.window = window
    self._values = []
    self._calm = 0

  def reset(self):
    """Forgets the epochs seen so far."""
    self._values = []
    self._calm = 0

  def _window(self):
    if self.window is not None:
      return self.window
    return window_for_steps((self.params or {}).get("steps"))

  def _is_calm(self):
    w = self._window()
    values = self._values
    if len(values) < 2 * w:
      return False
    old, new = values[-2 * w:-w], values[-w:]
    change = abs(sum(new) / w - sum(old) / w)
    if w == 1:
      return change < self.tol
    noise = math.sqrt((statistics.variance(old) + statistics.variance(new))
                      / w)
    return change < self.tol + 2.0 * noise

  def update(self, value):
    """Feeds one epoch's value of the monitored metric.

    Args:
      value: the epoch's loss (float).

    Returns:
      Whether the test has converged: `patience` calm epochs in a row.
    """
    self._values.append(float(value))
    self._calm = self._calm + 1 if self._is_calm() else 0
    return self._calm >= self.patience

  def on_train_begin(self, logs=None):
    self.reset()

  def on_epoch_end(self, epoch, logs=None):
    value = (logs or {}).get(self.monitor)
    if value is None:
      return
    if self.update(value):
      self.model.stop_training = True
      self.model.converged = True


class ResumableBoundConvergence(BoundConvergence):
  """`BoundConvergence` continued over the epochs the model already recorded.

  At the start of training it replays the model's
  `training_history[monitor]` (e.g. restored from a backup by
  `AtomicBackupAndRestore.restore`), so a fit resumed after a restart stops
  at the same epoch as a fit never interrupted: the calm epochs before the
  restart count. If the replay alone converges (the fit was stopped after
  its last backup but before it finished), `model.converged` is set;
  `replay` tells the caller so beforehand, to run no more epochs (Keras runs
  at least one epoch from `initial_epoch` unless it equals `epochs`).

  Args:
    tol, patience, monitor: as `BoundConvergence`.
  """

  def replay(self, values):
    """Restarts the test and feeds it the recorded epochs' values.

    Args:
      values: the monitored metric of the epochs already run, in order.

    Returns:
      Whether those epochs already converged.
    """
    self.reset()
    converged = False
    for value in values:
      converged = self.update(value)
    return converged

  def on_train_begin(self, logs=None):
    history = getattr(self.model, "training_history", {})
    if self.replay(history.get(self.monitor, [])):
      self.model.converged = True


class EpochSeed(keras.callbacks.Callback):
  """Tells a `make_dataset` dataset which epoch begins (for its shuffle)."""

  def __init__(self, epoch_variable):
    super().__init__()
    self._epoch_variable = epoch_variable

  def on_epoch_begin(self, epoch, logs=None):
    self._epoch_variable.assign(epoch)


# ------------------------------------------------------------------ backups
#
# Keras 3's `BackupAndRestore` writes `latest.weights.h5` in place and then
# `training_metadata.json`: a kill during the first write leaves a corrupt
# file, and a kill between the two leaves weights one epoch ahead of the
# recorded epoch (the next run trains that epoch twice). With an integer
# `save_freq` it records the batch but restores only the epoch, so a resumed
# epoch applies some batches twice. And it backs up variables only, while a
# `BayesianGMM` also keeps its loss history (`n_epochs`, `training_history`,
# the convergence test) and its seed outside them. `AtomicBackupAndRestore`
# makes each backup one directory DIR/epoch-NNNNNNNN holding the weights
# (model and optimizer variables) and `state.json`, written under a staging
# name and renamed into place in one step; older backups are deleted after
# it. A kill at any point leaves the previous backup or the new one, never a
# partial one. (This guards against the process dying, not the machine:
# nothing is fsync'ed.)

BACKUP_PREFIX = "epoch-"
_STAGING_PREFIX = ".staging-"
_WEIGHTS_FILE = "model.weights.h5"
_STATE_FILE = "state.json"
_STATE_FORMAT = 1


class BackupMismatchError(ValueError):
  """A backup directory holds the backup of a different fit.

  Resuming it would mix two fits, so it is refused rather than overwritten.

  Args:
    backup_dir: the directory.
    differences: what differs between the backup and the requested fit: the
      names of `run` entries (arguments, data digests) and "seed".

  Attributes:
    backup_dir, differences: as given (`differences` a list).
  """

  def __init__(self, backup_dir, differences):
    self.backup_dir = backup_dir
    self.differences = list(differences)
    verb = "differs" if len(self.differences) == 1 else "differ"
    super().__init__(
        "`backup_dir` holds the backup of a different fit (its "
        f"{', '.join(self.differences)} {verb}); resume that fit with the "
        "same arguments and data, or delete the directory to start over. "
        f"Received: backup_dir={backup_dir!r}.")


def is_backup_entry(name):
  """Whether `name`, an entry of a backup directory, is a backup's.

  Args:
    name: a file or directory name (not a path).

  Returns:
    True for a backup (`epoch-NNNNNNNN`) or a staging directory left by a
    killed write.
  """
  return bool(re.fullmatch(re.escape(BACKUP_PREFIX) + r"\d{8}", name)
              or name.startswith(_STAGING_PREFIX))


def latest_backup(backup_dir):
  """The newest complete backup in a directory.

  Args:
    backup_dir: a directory written by `AtomicBackupAndRestore` (it need not
      exist).

  Returns:
    (path, state) of the newest complete backup, or None. `state` is the
    backup's record: "epoch" (epochs done), "seed", "run", "history" and
    "initialization_history" (metric name -> list of floats).
  """
  if not os.path.isdir(backup_dir):
    return None
  names = sorted((name for name in os.listdir(backup_dir)
                  if name.startswith(BACKUP_PREFIX) and is_backup_entry(name)),
                 reverse=True)
  for name in names:
    path = os.path.join(backup_dir, name)
    state = _read_backup(path)
    if state is not None:
      return path, state
  return None


def _read_backup(path):
  """A backup directory's state, or None if it is not a complete backup."""
  try:
    with open(os.path.join(path, _STATE_FILE), encoding="utf-8") as f:
      state = json.load(f)
    complete = (
        state["format"] == _STATE_FORMAT
        and os.path.basename(path) == f"{BACKUP_PREFIX}{state['epoch']:08d}"
        and all(key in state for key in ("run", "seed", "history",
                                         "initialization_history"))
        and os.path.isfile(os.path.join(path, _WEIGHTS_FILE)))
  except (OSError, ValueError, KeyError, TypeError):
    return None
  return state if complete else None


def commit_backup(model, backup_dir, state):
  """Writes a backup of `model`'s variables and `state` atomically.

  The weights and `state.json` are written to a staging directory that is
  renamed to `backup_dir/epoch-NNNNNNNN` once complete; then every other
  backup is deleted.

  Args:
    model: a built Keras model (its optimizer's variables are included).
    backup_dir: the directory (created if needed).
    state: the JSON-serialisable record `latest_backup` returns, with an int
      "epoch".
  """
  os.makedirs(backup_dir, exist_ok=True)
  final = os.path.join(backup_dir, f"{BACKUP_PREFIX}{state['epoch']:08d}")
  staging = tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=backup_dir)
  try:
    model.save_weights(os.path.join(staging, _WEIGHTS_FILE))
    with open(os.path.join(staging, _STATE_FILE), "w", encoding="utf-8") as f:
      json.dump(state, f)
    if os.path.isdir(final):  # not expected: epochs only move forward
      shutil.rmtree(final)
    os.replace(staging, final)
  finally:
    if os.path.isdir(staging):
      shutil.rmtree(staging, ignore_errors=True)
  for name in os.listdir(backup_dir):
    if name != os.path.basename(final) and is_backup_entry(name):
      shutil.rmtree(os.path.join(backup_dir, name), ignore_errors=True)


def _history_lists(history):
  """metric -> list of floats (JSON-ready), from lists or arrays of numbers."""
  return {key: [float(v) for v in values] for key, values in history.items()}


def _prepare_to_back_up(model):
  """Compiles `model` if needed and creates its optimizer's slots now.

  Every backup then holds the same variables, whether it is written before
  training (epoch 0), during it, or restored into a fresh model.
  """
  if not model.compiled:
    model.compile()
  optimizer = getattr(model, "optimizer", None)
  if optimizer is not None and not optimizer.built:
    optimizer.build(model.trainable_variables)


class AtomicBackupAndRestore(keras.callbacks.Callback):
  """Backs a `BayesianGMM`'s training state up after every epoch, atomically.

  Like `keras.callbacks.BackupAndRestore` with `save_freq="epoch"`, but
  each backup is committed in one step (see `commit_backup`), holds what the
  model keeps outside its variables (loss history, epoch count, seed,
  initialisation history), and is checked against the fit that resumes it.
  After a crash or kill, the same fit resumes from the last completed epoch
  and, with `make_dataset`'s per-epoch order and `ResumableBoundConvergence`,
  ends with the same parameters, bit for bit, as a fit never interrupted.
  `tfgmm.fit(..., backup_dir=...)` does all of this; by hand:

  ```python
  backup = AtomicBackupAndRestore("backups/run1", run={"K": 3}, seed=0)
  model = tfgmm.BayesianGMM(3, 2, seed=backup.seed)
  model.compile()
  if backup.restore(model) is None:   # no backup yet: a new fit
    model.initialize(x)
    backup.backup(model)              # epoch 0: never initialise twice
  model.fit(tfgmm.make_dataset(x, 500, seed=model.seed), epochs=20,
            initial_epoch=model.n_epochs, callbacks=[backup])
  ```

  Resuming goes through `fit`'s public `initial_epoch`: `restore` returns
  the epochs done, and the first epoch `fit` runs must be that one (else a
  `ValueError`). A finished `fit` deletes the directory.

  Args:
    backup_dir: a directory that does not exist, is empty, or holds only
      backups (a finished fit deletes it, so it must not hold anything
      else).
    run: a JSON-serialisable dict that identifies the fit (its arguments,
      digests of its data); a backup written with another `run` raises
      `BackupMismatchError`.
    seed: None, or the model seed the fit asks for; a backup with another
      seed raises `BackupMismatchError`.

  Attributes:
    backup_dir: the directory, a str.
    seed: the seed to build the model with: the backup's if there is one,
      else `seed` (None: pick one; it is kept in the backups).
    epoch: the epochs done in the latest backup, or None if there is none.

  Raises:
    ValueError: `backup_dir` is a file, or holds files that are not backups.
    BackupMismatchError: the latest backup belongs to a different fit.
  """

  def __init__(self, backup_dir, run=None, seed=None):
    super().__init__()
    self.backup_dir = _check_backup_dir(backup_dir)
    # A JSON round trip, so it compares equal to what a backup reads back.
    self.run = json.loads(json.dumps(run or {}))
    self._latest = latest_backup(self.backup_dir)
    self.seed = seed
    self.epoch = None
    self._restored = None
    self._history = {}
    self._identity = None
    if self._latest is not None:
      state = self._latest[1]
      differences = [key for key in sorted(set(self.run) | set(state["run"]))
                     if self.run.get(key) != state["run"].get(key)]
      if seed is not None and state["seed"] != seed:
        differences.append("seed")
      if differences:
        raise BackupMismatchError(self.backup_dir, differences)
      self.seed = state["seed"]
      self.epoch = state["epoch"]

  def restore(self, model):
    """Loads the latest backup into `model`, if there is one.

    Sets the model's variables (and its optimizer's), `n_epochs`,
    `training_history` and `initialization_history`. The model must be
    built as the one backed up (same class and arguments); it is compiled
    with its defaults first if it is not compiled.

    Args:
      model: a `BayesianGMM` built with `seed=self.seed`.

    Returns:
      The epochs done (pass them to `model.fit` as `initial_epoch`), or None
      when there is no backup: nothing is loaded; initialise the model and
      call `backup(model)` before training.
    """
    if self._latest is None:
      return None
    if model.seed != self.seed:
      raise ValueError(f"Expected a model built with seed={self.seed} (the "
                       f"backup's). Received a model with seed={model.seed}.")
    _prepare_to_back_up(model)
    path, state = self._latest
    model.load_weights(os.path.join(path, _WEIGHTS_FILE))
    model.initialization_history = {
        key: list(values)
        for key, values in state["initialization_history"].items()}
    model.training_history = {key: list(values)
                              for key, values in state["history"].items()}
    model.n_epochs = state["epoch"]
    model.converged = False
    self._restored = model
    return state["epoch"]

  def backup(self, model):
    """Commits `model`'s current state as a backup of `model.n_epochs` epochs.

    Before training, this backs up the initialised model (epoch 0), so a
    restart loads it rather than initialising again.

    Args:
      model: an initialised `BayesianGMM`; compiled with its defaults if it
        is not compiled yet, so the optimizer's variables are backed up.
    """
    self._commit(model, model.n_epochs, model.training_history)
    self._restored = model

  def _commit(self, model, epoch, history):
    _prepare_to_back_up(model)
    state = {"format": _STATE_FORMAT, "run": self.run, "seed": model.seed,
             "initialization_history": _history_lists(
                 model.initialization_history),
             "epoch": int(epoch), "history": _history_lists(history)}
    commit_backup(model, self.backup_dir, state)
    self._latest = (os.path.join(self.backup_dir,
                                 f"{BACKUP_PREFIX}{int(epoch):08d}"), state)
    self.seed, self.epoch = model.seed, int(epoch)

  def on_train_begin(self, logs=None):
    if self._latest is not None and self._restored is not self.model:
      raise ValueError(
          f"`backup_dir` {self.backup_dir!r} holds a backup of "
          f"{self._latest[1]['epoch']} epochs that was not restored into this "
          "model: call `restore(model)` and pass its result to `fit` as "
          "`initial_epoch`.")
    # `BayesianGMM.fit` extends `training_history` only when `fit` returns.
    self._history = _history_lists(self.model.training_history)

  def on_epoch_begin(self, epoch, logs=None):
    done = len(next(iter(self._history.values()), []))
    if epoch != done:
      raise ValueError(
          f"Expected training to resume at epoch {done} (the epochs the "
          f"model has done): pass initial_epoch={done} to `fit`. Received: "
          f"initial_epoch={epoch}.")

  def on_epoch_end(self, epoch, logs=None):
    logs = logs or {}
    for key, values in self._history.items():
      values.append(float(logs[key]))
    self._commit(self.model, epoch + 1, self._history)

  def on_train_end(self, logs=None):
    shutil.rmtree(self.backup_dir, ignore_errors=True)
    self._latest, self.epoch = None, None


def _check_backup_dir(backup_dir):
  """`backup_dir` as a str: new, empty, or holding only backups."""
  try:
    path = os.fspath(backup_dir)
  except TypeError:
    raise TypeError("Expected `backup_dir` to be a path (str or "
                    "os.PathLike). Received: "
                    f"backup_dir={backup_dir!r}.") from None
  if not isinstance(path, str) or not path:
    raise ValueError("Expected `backup_dir` to be a non-empty path. "
                     f"Received: backup_dir={backup_dir!r}.")
  if os.path.exists(path) and not os.path.isdir(path):
    raise ValueError("Expected `backup_dir` to be a directory; it exists and "
                     f"is not a directory. Received: backup_dir={path!r}.")
  if os.path.isdir(path):
    foreign = sorted(name for name in os.listdir(path)
                     if not is_backup_entry(name))
    if foreign:
      raise ValueError(
          f"Expected `backup_dir` to be new, empty or to hold only backups: "
          f"it holds files that are not a tfgmm backup (e.g. "
          f"{foreign[0]!r}), and a finished fit deletes it. Give a new or "
          f"empty directory. Received: backup_dir={path!r}.")
  return path
