#!/usr/bin/env python3
"""Fits a Bayesian Gaussian mixture to a CSV or .npy file: a thin CLI over `tfgmm.fit`.

Examples:

  python scripts/train.py --demo --export saved_models/demo --plots plots
  python scripts/train.py data.csv -k 4 --columns height,weight --plots out
  python scripts/train.py data.npy -k 3 --method gradient --batch-size 1024
  python scripts/train.py data.npy -k 3 --seed 0 --resume backups/run1

Input: a `.npy` file holding a numeric [N, D] (or [N]) array, or a delimited
text file (CSV) of numbers. A CSV's first row is taken as a header when it
does not parse as numbers (force either way with `--header` / `--no-header`);
blank lines and lines starting with "#" are skipped. `--columns` picks columns
by header name or 0-based index.

Training: full-data CAVI in tfgmm's compiled loop (fast; no progress bar) for
the default `--method natural` without `--batch-size`, `--tensorboard` or
`--resume`; otherwise minibatch `model.fit`, with Keras' progress bar.

Crash and resume: `--resume DIR` backs the training state up in DIR at the
end of every epoch (a `keras.callbacks.BackupAndRestore` whose backups are
committed atomically). After a crash or kill, the same command line resumes
from the last completed epoch and ends with the same parameters, bit for bit,
as a run never interrupted; a finished run deletes DIR. See `_fit_resumable`.

Exit status: 0 on success; 2 on bad arguments or unreadable data; 1 when
training or writing results fails; 130 when interrupted. Errors are one line
`train.py: error: ...` on stderr (`--debug` shows tracebacks of unexpected
ones).
"""

import argparse
import hashlib
import importlib.util
import inspect
import json
import math
import os
import re
import shutil
import sys
import tempfile
import traceback

import numpy as np

PROG = "train.py"
_METHODS = ("natural", "gradient", "sampled")
_NPY_SUFFIXES = (".npy",)


class UsageError(ValueError):
  """A problem with the command line or the data, reported as exit status 2."""


# ------------------------------------------------------------------- data

def demo_data():
  """The seed blog's data: 3 well-separated 2-D Gaussian blobs.

  Returns:
    float32 array [3000, 2]: N(0, I) draws (numpy seed 12345), the first 1000
    shifted by (2, 0), the next 1000 by (-2, -4), the last 1000 by (-2, 4).
  """
  x = np.random.RandomState(12345).randn(3000, 2).astype(np.float32)
  x[:1000] += [2, 0]
  x[1000:2000] += [-2, -4]
  x[2000:] += [-2, 4]
  return x


def load_data(path, columns=None, header=None, delimiter=None):
  """Reads a data matrix from a `.npy` or delimited text file.

  Args:
    path: the file.
    columns: None (all columns) or a list of column names or 0-based indices
      (strings as typed on the command line, or ints).
    header: None to detect (a first row that does not parse as numbers is a
      header), True or False to force. CSV only.
    delimiter: None to detect (",", tab, ";" or else runs of whitespace), a
      single character, or "whitespace". CSV only.

  Returns:
    (x, names): float64 array [N, D] and a list of D column names.

  Raises:
    UsageError: malformed, empty or non-numeric data, or unknown columns.
    OSError: the file cannot be opened.
  """
  path = os.fspath(path)
  if path.lower().endswith(_NPY_SUFFIXES):
    if header is not None or delimiter is not None:
      raise UsageError("--header, --no-header and --delimiter apply to CSV "
                       "files, not .npy")
    return _load_npy(path, columns)
  return _load_csv(path, columns, header, delimiter)


def _load_npy(path, columns):
  try:
    array = np.load(path, allow_pickle=False)
  except ValueError as e:
    raise UsageError(f"cannot read {path!r} as a .npy array: {e}") from None
  if not isinstance(array, np.ndarray):
    raise UsageError(f"{path!r} is not a single .npy array")
  if array.dtype.kind not in "biuf":
    raise UsageError(f"{path!r} holds a non-numeric array (dtype "
                     f"{array.dtype}); expected numbers")
  if array.ndim == 1:
    array = array[:, None]
  if array.ndim != 2:
    raise UsageError(f"{path!r} holds an array of shape {array.shape}; "
                     "expected [N, D] (or [N] for one feature)")
  if array.shape[0] == 0 or array.shape[1] == 0:
    raise UsageError(f"{path!r} holds no data (shape {array.shape})")
  names = [f"x{i}" for i in range(array.shape[1])]
  index = _column_indices(columns, names, has_header=False,
                          source=f"{path!r}")
  array = np.asarray(array[:, index], dtype=np.float64)
  bad = np.argwhere(~np.isfinite(array))
  if bad.size:
    row, col = bad[0]
    raise UsageError(f"non-finite value {array[row, col]!r} in column "
                     f"{names[index[col]]!r}, row {row} of {path!r}")
  return array, [names[i] for i in index]


def _load_csv(path, columns, header, delimiter):
  try:
    with open(path, encoding="utf-8-sig", newline="") as f:
      lines = [(number, line.strip()) for number, line in enumerate(f, 1)]
  except UnicodeDecodeError:
    raise UsageError(f"cannot read {path!r}: not a UTF-8 text (CSV) file; "
                     "use .npy for binary arrays") from None
  lines = [(n, line) for n, line in lines if line and not line.startswith("#")]
  if not lines:
    raise UsageError(f"{path!r} holds no data")
  split = _splitter(delimiter, lines[0][1])
  rows = [(n, split(line)) for n, line in lines]                 # [(line, fields)]
  width = len(rows[0][1])
  for n, fields in rows:
    if len(fields) != width:
      raise UsageError(f"line {n} of {path!r} has {len(fields)} field"
                       f"{'s' if len(fields) != 1 else ''}, expected {width} "
                       f"like line {rows[0][0]}")
  if header is None:
    header = not all(_is_number(field) for field in rows[0][1])
  if header:
    names = [field or f"x{i}" for i, field in enumerate(rows[0][1])]
    rows = rows[1:]
  else:
    names = [f"x{i}" for i in range(width)]
  if not rows:
    raise UsageError(f"{path!r} holds a header but no data rows")
  index = _column_indices(columns, names, has_header=header,
                          source=f"{path!r}")
  cells = [[fields[i] for i in index] for _, fields in rows]     # [N, D] str
  try:
    x = np.array(cells, dtype=np.float64)
  except ValueError:
    x = None
  if x is None or not np.all(np.isfinite(x)):
    _raise_bad_cell(path, rows, index, names, columns is None)
  return x, [names[i] for i in index]


def _splitter(delimiter, first_line):
  if delimiter is None:
    delimiter = next((d for d in (",", "\t", ";") if d in first_line),
                     "whitespace")
  if delimiter == "whitespace":
    return lambda line: line.split()
  return lambda line: [field.strip() for field in line.split(delimiter)]


def _is_number(text):
  try:
    float(text)
  except ValueError:
    return False
  return True


def _raise_bad_cell(path, rows, index, names, all_columns):
  for n, fields in rows:
    for i in index:
      text = fields[i]
      where = f"column {names[i]!r} on line {n} of {path!r}"
      if not text:
        raise UsageError(f"missing value in {where}")
      if not _is_number(text):
        hint = ("; pick numeric columns with --columns" if all_columns
                else "")
        raise UsageError(f"non-numeric value {text!r} in {where}{hint}")
      if not math.isfinite(float(text)):
        raise UsageError(f"non-finite value {text!r} in {where}")
  raise UsageError(f"cannot parse the numbers in {path!r}")  # not reached


def _column_indices(columns, names, has_header, source):
  """0-based indices of the selected columns (all when `columns` is None)."""
  if columns is None:
    return list(range(len(names)))
  index = []
  for token in columns:
    token = str(token).strip()
    if has_header and token in names:
      i = names.index(token)
    elif token.lstrip("-").isdigit():
      i = int(token)
      if not 0 <= i < len(names):
        raise UsageError(f"column index {i} is out of range: {source} has "
                         f"{len(names)} columns (0 to {len(names) - 1})")
    elif has_header:
      raise UsageError(f"unknown column {token!r}; {source} has columns "
                       + ", ".join(repr(name) for name in names))
    else:
      raise UsageError(f"unknown column {token!r}: {source} has no header "
                       "row, so select columns by 0-based index")
    if i in index:
      raise UsageError(f"column {token!r} is selected twice")
    index.append(i)
  return index


# -------------------------------------------------------------- arguments

def _int_in(text, low, high, what):
  """argparse type: an int with low <= value < high (high None: no bound)."""
  try:
    value = int(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}")
  if value < low or (high is not None and value >= high):
    raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
  return value


def _positive_int(text):
  return _int_in(text, 1, None, "an integer >= 1")


def _seed(text):
  return _int_in(text, 0, 2**31 - 1, "0 <= seed < 2^31 - 1")


def _columns(text):
  tokens = [token.strip() for token in text.split(",")]
  if not all(tokens):
    raise argparse.ArgumentTypeError(
        f"expected comma-separated column names or indices, got {text!r}")
  return tokens


def _delimiter(text):
  aliases = {"\\t": "\t", "tab": "\t", "space": "whitespace", " ": "whitespace",
             "whitespace": "whitespace"}
  if text in aliases:
    return aliases[text]
  if len(text) != 1 or text in "\"\r\n":
    raise argparse.ArgumentTypeError(
        f"expected one character, 'tab' or 'whitespace', got {text!r}")
  return text


def build_parser():
  parser = argparse.ArgumentParser(
      prog=PROG,
      description="Fit a Bayesian Gaussian mixture (tfgmm) to a CSV or .npy "
                  "file and print the posterior.",
      epilog="Full-data CAVI runs for --method natural without --batch-size, "
             "--tensorboard or --resume; anything else trains with minibatch "
             "model.fit and shows Keras' progress bar.")
  parser.add_argument("data", nargs="?",
                      help="a .npy array [N, D] or a CSV file of numbers "
                           "(omit with --demo)")
  parser.add_argument("--demo", action="store_true",
                      help="fit the seed blog's 3000-point, 3-blob 2-D data")
  parser.add_argument("-k", "--components", type=_positive_int, default=3,
                      metavar="K", help="number of mixture components "
                                        "(default: 3)")
  parser.add_argument("--method", choices=_METHODS, default="natural",
                      help="training method (default: natural)")
  parser.add_argument("--batch-size", type=_positive_int, metavar="B",
                      help="minibatch rows (trains with model.fit)")
  parser.add_argument("--epochs", type=_positive_int, metavar="E",
                      help="maximum passes over the data (default: 300 for "
                           "natural, 1000 otherwise)")
  parser.add_argument("--seed", type=_seed,
                      help="seed of initialisation, shuffling and sampling "
                           "(default: random, printed)")
  parser.add_argument("--export", metavar="PATH",
                      help="write a SavedModel to this directory")
  parser.add_argument("--plots", metavar="DIR",
                      help="write training.png, density.png (1-D or 2-D "
                           "data), posterior.png (weights and means) and "
                           "assignments.png (assignment uncertainty) to this "
                           "directory")
  parser.add_argument("--tensorboard", metavar="LOGDIR",
                      help="log training to TensorBoard in LOGDIR")
  parser.add_argument("--resume", metavar="DIR",
                      help="back up the training state in DIR after every "
                           "epoch (keras.callbacks.BackupAndRestore); after "
                           "a crash or kill, rerunning the same command "
                           "resumes from the last completed epoch and ends "
                           "with the same parameters as an uninterrupted "
                           "run. Without --seed, the seed is kept in DIR. "
                           "A finished run deletes DIR")
  parser.add_argument("--debug", action="store_true",
                      help="show the full traceback of an unexpected error")
  csv = parser.add_argument_group("data file options")
  csv.add_argument("--columns", type=_columns, metavar="COLS",
                   help="comma-separated column names or 0-based indices "
                        "(default: all)")
  header = csv.add_mutually_exclusive_group()
  header.add_argument("--header", dest="header", action="store_true",
                      default=None, help="the CSV's first row is a header")
  header.add_argument("--no-header", dest="header", action="store_false",
                      help="the CSV's first row is data (default: a header "
                           "if it does not parse as numbers)")
  csv.add_argument("--delimiter", type=_delimiter, metavar="D",
                   help="CSV field separator: one character, 'tab' or "
                        "'whitespace' (default: detected)")
  return parser


# ------------------------------------------------------------------ output

def _format_pm(mean, sd):
  """(mean, sd) strings, the mean rounded to the sd's 2nd significant digit."""
  if not np.isfinite(sd):
    return f"{mean:.4g}", "n/a"
  if sd <= 0:
    return f"{mean:.4g}", "0"
  decimals = int(min(8, max(0, 1 - math.floor(math.log10(sd)))))
  mean = round(float(mean), decimals) + 0.0  # no "-0"
  return f"{mean:.{decimals}f}", f"{sd:.{decimals}f}"


def format_summary(summary, names):
  """The posterior as a text table: one line per (component, feature).

  Args:
    summary: `BayesianGMM.posterior_summary()`: weights, weights_sd [K];
      means, means_sd, stddevs, stddevs_sd [K, D].
    names: D feature names.

  Returns:
    A multi-line string; every value reads "mean ± sd".
  """
  names = [name if len(name) <= 20 else name[:19] + "~" for name in names]
  rows = []
  for k in range(len(summary["weights"])):
    weight = _format_pm(summary["weights"][k], summary["weights_sd"][k])
    for d, name in enumerate(names):
      rows.append([str(k) if d == 0 else "", weight if d == 0 else None, name,
                   _format_pm(summary["means"][k, d], summary["means_sd"][k, d]),
                   _format_pm(summary["stddevs"][k, d],
                              summary["stddevs_sd"][k, d])])
  # Each "mean ± sd" column is aligned on its "±".
  for col in (1, 3, 4):
    pairs = [row[col] for row in rows if row[col] is not None]
    left = max(len(mean) for mean, _ in pairs)
    right = max(len(sd) for _, sd in pairs)
    for row in rows:
      row[col] = ("" if row[col] is None else
                  f"{row[col][0]:>{left}} ± {row[col][1]:<{right}}")
  rows.insert(0, ["k", "weight", "feature", "mean", "stddev"])
  widths = [max(len(row[i]) for row in rows) for i in range(5)]
  lines = []
  for row in rows:
    cells = [row[0].rjust(widths[0])] + [
        cell.ljust(w) for cell, w in zip(row[1:], widths[1:])]
    lines.append("  " + "  ".join(cells).rstrip())
  return "\n".join(lines)


def _error(message, status=2):
  print(f"{PROG}: error: {message}", file=sys.stderr)
  return status


def _first_line(error):
  lines = [line.strip() for line in str(error).splitlines() if line.strip()]
  if not lines:
    return type(error).__name__
  if lines[0].startswith("in user code"):
    # TensorFlow's traced-function error: the cause is on the last line.
    prefix = f"{type(error).__name__}: "
    return lines[-1][len(prefix):] if lines[-1].startswith(prefix) else (
        lines[-1])
  return lines[0]


def _raised_by_tfgmm_checks(error, tfgmm_module):
  """Whether `error` was raised by tfgmm's own Python code (argument checks).

  Errors raised inside TensorFlow (e.g. while tracing a tf.function) have
  their innermost frame outside the tfgmm package.
  """
  frames = traceback.extract_tb(error.__traceback__)
  package = os.path.dirname(os.path.abspath(tfgmm_module.__file__))
  return bool(frames) and os.path.abspath(frames[-1].filename).startswith(
      package + os.sep)


def _tensorboard_available():
  return importlib.util.find_spec("tensorboard") is not None


def _check_outputs(args):
  """Fails early, before training, on output paths that cannot work."""
  if args.resume is not None:
    _check_resume_dir(args)
  if args.export is not None:
    path = args.export
    if os.path.exists(path) and not os.path.isdir(path):
      raise UsageError(f"--export {path!r} exists and is not a directory")
    if (os.path.isdir(path) and os.listdir(path)
        and not os.path.exists(os.path.join(path, "saved_model.pb"))):
      # The export replaces the directory: never replace one that is not ours.
      raise UsageError(f"--export {path!r} is a non-empty directory that is "
                       "not a SavedModel; refusing to replace it")
  if args.plots is not None:
    if os.path.exists(args.plots) and not os.path.isdir(args.plots):
      raise UsageError(f"--plots {args.plots!r} exists and is not a directory")
    try:
      os.makedirs(args.plots, exist_ok=True)
    except OSError as e:
      raise UsageError(f"cannot create --plots directory {args.plots!r}: "
                       f"{e.strerror or e}") from None
  if args.tensorboard is not None and not _tensorboard_available():
    raise UsageError("--tensorboard needs the tensorboard package "
                     "(pip install tensorboard)")


# ------------------------------------------------------------------ resume
#
# `--resume DIR` trains through `model.fit` with a subclass of
# `keras.callbacks.BackupAndRestore` and makes three things hold that Keras
# 3.15's callback alone does not:
#
# 1. Backups are atomic. Keras writes `latest.weights.h5` in place and then
#    `training_metadata.json`: a kill during the first write leaves a corrupt
#    file (the next run fails to load it), and a kill between the two leaves
#    weights one epoch ahead of the recorded epoch (the next run silently
#    trains that epoch twice). Here each backup is a directory
#    DIR/epoch-NNNNNNNN holding the weights (model and optimizer variables)
#    and `state.json`, written under a temporary name and renamed into place
#    in one step; older backups are deleted after it.
# 2. Backups are per epoch. With an integer `save_freq`, Keras records the
#    batch but restores only the epoch: a run killed after batch b of epoch e
#    restarts epoch e from batch 0 with weights that already saw b + 1 of its
#    batches, so they are applied twice and the result differs from an
#    uninterrupted run. Per-epoch backups lose at most one epoch of work and
#    resume exactly: `make_dataset` draws each epoch's order from
#    (seed, epoch) and `fit`'s `EpochSeed` callback tells it the epoch Keras
#    resumes at.
# 3. What lives outside variables is resumed too: the loss history (so
#    `n_epochs`, `training_history`, the plots and the convergence test see
#    every epoch, not only those after the restart; the `BoundConvergence`
#    state is replayed from it) and the seed.
#
# The initialised model is backed up as epoch 0 before training, so a restart
# never re-initialises: it loads that state instead of relying on k-means++
# and the restarts' CAVI giving the same bits in a new process (they do, for
# the same seed on the same machine, but loading is exact by construction,
# and skips the initialisation's cost). Each backup also records the run
# (flags and a SHA-256 of the data): a backup of a different run is an error,
# not silently mixed in.

_CHECKPOINT_PREFIX = "epoch-"
_STAGING_PREFIX = ".staging-"
_WEIGHTS_FILE = "model.weights.h5"
_STATE_FILE = "state.json"
_STATE_FORMAT = 1


def _is_backup_entry(name):
  """Whether `name` (an entry of a --resume directory) is one of ours."""
  return bool(re.fullmatch(re.escape(_CHECKPOINT_PREFIX) + r"\d{8}", name)
              or name.startswith(_STAGING_PREFIX))


def _inside(path, directory):
  path, directory = os.path.realpath(path), os.path.realpath(directory)
  return os.path.commonpath([path, directory]) == directory


def _check_resume_dir(args):
  """--resume DIR: a new or empty directory, or one of our backups."""
  path = args.resume
  if os.path.exists(path) and not os.path.isdir(path):
    raise UsageError(f"--resume {path!r} exists and is not a directory")
  if os.path.isdir(path):
    foreign = sorted(name for name in os.listdir(path)
                     if not _is_backup_entry(name))
    if foreign:
      # A finished run deletes the directory: never one that is not ours.
      raise UsageError(f"--resume {path!r} holds files that are not a "
                       f"{PROG} backup (e.g. {foreign[0]!r}); a finished run "
                       "deletes this directory, so give a new or empty one")
  for flag, other in (("--export", args.export), ("--plots", args.plots),
                      ("--tensorboard", args.tensorboard)):
    if other is not None and _inside(other, path):
      raise UsageError(f"{flag} {other!r} is inside --resume {path!r}, "
                       "which a finished run deletes")
  if args.export is not None and _inside(path, args.export):
    raise UsageError(f"--resume {path!r} is inside --export "
                     f"{args.export!r}, which the export replaces")


def _run_identity(args, x):
  """What must match for a backup to be resumed: the flags and the data."""
  data = np.ascontiguousarray(x, dtype=np.float64)
  return {
      "components": args.components,
      "method": args.method,
      "batch_size": args.batch_size,
      "epochs": args.epochs,
      "data_shape": list(data.shape),
      "data_sha256": hashlib.sha256(data.tobytes()).hexdigest(),
  }


def _read_checkpoint(path):
  """A backup directory's state, or None if it is not a complete backup."""
  try:
    with open(os.path.join(path, _STATE_FILE), encoding="utf-8") as f:
      state = json.load(f)
    complete = (
        state["format"] == _STATE_FORMAT
        and os.path.basename(path) == f"{_CHECKPOINT_PREFIX}{state['epoch']:08d}"
        and all(key in state for key in ("run", "seed", "history",
                                         "initialization_history"))
        and os.path.isfile(os.path.join(path, _WEIGHTS_FILE)))
  except (OSError, ValueError, KeyError, TypeError):
    return None
  return state if complete else None


def _latest_checkpoint(directory):
  """(path, state) of the newest complete backup in `directory`, or None."""
  if not os.path.isdir(directory):
    return None
  names = sorted((name for name in os.listdir(directory)
                  if name.startswith(_CHECKPOINT_PREFIX)
                  and _is_backup_entry(name)), reverse=True)
  for name in names:
    path = os.path.join(directory, name)
    state = _read_checkpoint(path)
    if state is not None:
      return path, state
  return None


def _commit_checkpoint(model, directory, state):
  """Writes a backup of `model` and `state` atomically, then drops the rest.

  The weights and state are written to a staging directory that is renamed to
  DIR/epoch-NNNNNNNN once complete: a kill at any point leaves either the
  previous backup or the new one, never a partial one. (This guards against
  the process dying, not the machine: nothing is fsync'ed.)
  """
  os.makedirs(directory, exist_ok=True)
  final = os.path.join(directory, f"{_CHECKPOINT_PREFIX}{state['epoch']:08d}")
  staging = tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=directory)
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
  for name in os.listdir(directory):
    if name != os.path.basename(final) and _is_backup_entry(name):
      shutil.rmtree(os.path.join(directory, name), ignore_errors=True)


def _resume_plan(args, x):
  """Reads --resume DIR before training; rejects another run's backup.

  Returns:
    dict: `run` (the run's identity), `latest` ((path, state) of the newest
    backup, or None) and `seed` (the seed to use: the backup's, else --seed,
    else None for a random one).

  Raises:
    UsageError: DIR holds a backup of a run with other flags, data or seed.
  """
  run = _run_identity(args, x)
  latest = _latest_checkpoint(args.resume)
  seed = args.seed
  if latest is not None:
    state = latest[1]
    different = []
    for key, value in run.items():
      name = "data" if key.startswith("data") else key
      if state["run"].get(key) != value and name not in different:
        different.append(name)
    if args.seed is not None and state["seed"] != args.seed:
      different.append("seed")
    if different:
      raise UsageError(f"--resume {args.resume!r} holds the backup of a "
                       f"different run (its {', '.join(different)} differ); "
                       "rerun that run's command, or delete the directory "
                       "to start over")
    seed = state["seed"]
  return {"run": run, "latest": latest, "seed": seed}


def _history_lists(history):
  return {key: [float(v) for v in values] for key, values in history.items()}


def _fit_resumable(args, x, plan, callbacks, keras, tfgmm):
  """`tfgmm.fit`'s minibatch path, backed up per epoch in --resume DIR.

  The same steps as `tfgmm.fit` (model, `initialize` with its `n_init`,
  `make_dataset` with the model's seed, `compile`, `fit` with
  `BoundConvergence(tol)`), so a run never interrupted ends where
  `tfgmm.fit` with the same arguments does; and a run resumed after a kill
  ends there too.
  """
  from tfgmm import api  # pylint: disable=import-outside-toplevel
  n, d = x.shape
  batch_size = args.batch_size or min(n, api.MAX_BATCH)
  epochs = args.epochs or api._MAX_EPOCHS[args.method]  # pylint: disable=protected-access
  tol = inspect.signature(tfgmm.fit).parameters["tol"].default
  n_init = api._N_INIT[args.method]  # pylint: disable=protected-access

  model = tfgmm.BayesianGMM(args.components, d, method=args.method,
                            seed=plan["seed"])
  model.compile()
  if model.optimizer is not None:
    # Its slots exist before any backup, so every backup holds them.
    model.optimizer.build(model.trainable_variables)
  if plan["latest"] is None:
    model.initialize(x, n_init=n_init)
    state = {"format": _STATE_FORMAT, "run": plan["run"], "seed": model.seed,
             "initialization_history": _history_lists(
                 model.initialization_history),
             "epoch": 0, "history": {key: [] for key in model.training_history}}
    _commit_checkpoint(model, args.resume, state)
    print(f"Backing up the training state in {args.resume} after every "
          "epoch; if interrupted, run the same command again to resume.",
          flush=True)
  else:
    path, state = plan["latest"]
    model.load_weights(os.path.join(path, _WEIGHTS_FILE))
    model.initialization_history = {
        key: list(values)
        for key, values in state["initialization_history"].items()}
    print(f"Resuming from the backup in {args.resume}: {state['epoch']} of "
          f"{epochs} epochs done (seed {model.seed}).", flush=True)
  identity = {key: state[key] for key in ("format", "run", "seed",
                                           "initialization_history")}
  dataset = tfgmm.make_dataset(x, batch_size, seed=model.seed,
                               missing=model.missing)
  model.fit(dataset, epochs=epochs, verbose=1,
            callbacks=[_backup_callback(keras, args.resume, identity),
                       _resumable_convergence(tfgmm, tol)]
            + list(callbacks or []))
  return model


def _backup_callback(keras, directory, identity):
  """A `keras.callbacks.BackupAndRestore` with atomic per-epoch backups."""

  class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """Backs up weights, optimizer, epoch and loss history in one commit.

    Keras' `on_train_begin` calls `_load_model`, its `on_epoch_end` calls
    `_save_model`, and its `on_train_end` deletes the directory; those two
    methods are replaced to read and write `_commit_checkpoint`'s backups.
    """

    def __init__(self):
      super().__init__(directory, save_freq="epoch")
      self._history = {}

    def _load_model(self):
      model = self.model
      if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
      self._history = {key: [] for key in model.training_history}
      latest = _latest_checkpoint(self.backup_dir)
      if latest is None:
        return
      path, state = latest
      model.load_weights(os.path.join(path, _WEIGHTS_FILE))
      for key in self._history:
        self._history[key] = [float(v) for v in state["history"][key]]
        # `BayesianGMM.fit` appends this run's epochs to these.
        model.training_history[key] = list(self._history[key])
      model.n_epochs = state["epoch"]
      self._current_epoch = state["epoch"]
      model._initial_epoch = state["epoch"]  # pylint: disable=protected-access

    def on_epoch_end(self, epoch, logs=None):
      logs = logs or {}
      for key, values in self._history.items():
        values.append(float(logs[key]))
      super().on_epoch_end(epoch, logs)

    def _save_model(self):
      _commit_checkpoint(self.model, self.backup_dir,
                         dict(identity, epoch=self._current_epoch,
                              history=self._history))

  return AtomicBackupAndRestore()


def _resumable_convergence(tfgmm, tol):
  """`BoundConvergence(tol)` that picks up where the interrupted run was."""

  class ResumableBoundConvergence(tfgmm.BoundConvergence):
    """Replays the restored epochs' losses at the start of training.

    Must come after the backup callback, whose `on_train_begin` restores the
    history. If the replay finds the run had already converged (it was killed
    after its last backup but before cleaning up), no epoch is run.
    """

    def on_train_begin(self, logs=None):
      super().on_train_begin(logs)
      restored = list(self.model.training_history.get(self.monitor, []))
      for epoch, value in enumerate(restored):
        self.on_epoch_end(epoch, {self.monitor: value})
      if restored and self.model.stop_training:
        self.model._initial_epoch = self.params["epochs"]  # pylint: disable=protected-access

  return ResumableBoundConvergence(tol)


# -------------------------------------------------------------------- main

def main(argv=None):
  """Runs the CLI.

  Args:
    argv: the arguments (without the program name); None reads sys.argv.

  Returns:
    The exit status: 0 success, 1 training or writing results failed, 2 usage
    or data error, 130 interrupted.
  """
  parser = build_parser()
  try:
    args = parser.parse_args(argv)
    if args.demo and args.data is not None:
      parser.error("--demo makes its own data; do not also give a data file")
    if not args.demo and args.data is None:
      parser.error("the following arguments are required: data (or --demo)")
    if args.demo and (args.header is not None or args.delimiter is not None):
      parser.error("--header, --no-header and --delimiter apply to a data "
                   "file, not --demo")
  except SystemExit as e:  # argparse: --help (0) or a usage error (2)
    return e.code if isinstance(e.code, int) else 2

  try:
    if args.demo:
      x, names = demo_data(), ["x0", "x1"]
      if args.columns is not None:
        index = _column_indices(args.columns, names, has_header=False,
                                source="the demo data")
        x, names = x[:, index], [names[i] for i in index]
      source = "demo data"
    else:
      x, names = load_data(args.data, args.columns, args.header,
                           args.delimiter)
      source = args.data
    _check_outputs(args)
    plan = _resume_plan(args, x) if args.resume is not None else None
  except OSError as e:
    where = e.filename if e.filename is not None else args.data
    return _error(f"cannot read {where!r}: {e.strerror or e}")
  except (ValueError, TypeError) as e:
    return _error(_first_line(e))

  try:
    return _run(args, x, names, source, plan)
  except KeyboardInterrupt:
    print(file=sys.stderr)
    if args.resume is not None and os.path.isdir(args.resume):
      return _error(f"interrupted; the training state is backed up in "
                    f"{args.resume!r}: run the same command again to resume",
                    130)
    return _error("interrupted", 130)
  except Exception as e:  # pylint: disable=broad-exception-caught
    if args.debug:
      raise
    return _error(f"unexpected error: {type(e).__name__}: {_first_line(e)} "
                  "(rerun with --debug for the traceback)", 1)


def _run(args, x, names, source, plan=None):
  import keras  # pylint: disable=import-outside-toplevel
  import tfgmm  # pylint: disable=import-outside-toplevel
  from tfgmm import plotting  # pylint: disable=import-outside-toplevel

  n, d = x.shape
  use_keras = (args.batch_size is not None or args.tensorboard is not None
               or args.method != "natural" or args.resume is not None)
  callbacks = None
  if args.tensorboard is not None:
    callbacks = [keras.callbacks.TensorBoard(log_dir=args.tensorboard)]
  how = (f"minibatch model.fit (batch size "
         f"{args.batch_size or min(n, 1 << 16)})" if use_keras
         else "full-data CAVI")
  print(f"Fitting {args.components} components to {source}: {n} points x "
        f"{d} feature{'s' if d != 1 else ''} ({', '.join(names)}), method "
        f"{args.method!r}, {how}.", flush=True)
  try:
    if args.resume is not None:
      model = _fit_resumable(args, x, plan, callbacks, keras, tfgmm)
    else:
      model = tfgmm.fit(x, args.components, method=args.method,
                        batch_size=args.batch_size, max_epochs=args.epochs,
                        seed=args.seed, callbacks=callbacks,
                        verbose=1 if use_keras else 0)
  except (ValueError, TypeError) as e:
    if args.debug:
      raise
    if _raised_by_tfgmm_checks(e, tfgmm):
      return _error(_first_line(e))
    # Not an argument check: a failure inside TensorFlow or a tfgmm bug.
    return _error(f"training failed: {type(e).__name__}: {_first_line(e)} "
                  "(rerun with --debug for the traceback)", 1)

  bound = float(model.elbo(x)) / n
  status = "converged" if model.converged else (
      "not converged; raise --epochs or check the tolerance")
  print(f"\nPosterior (mean ± sd) of {args.components} components, seed "
        f"{model.seed}:")
  print(format_summary(model.posterior_summary(), names))
  print(f"\nEpochs: {model.n_epochs} ({status})")
  print(f"Final bound (ELBO per point): {bound:.6f} nats")

  if args.tensorboard is not None:
    print(f"TensorBoard logs: {args.tensorboard}")
  try:
    if args.export is not None:
      model.export(args.export)
      print(f"SavedModel: {args.export}")
    if args.plots is not None:
      written = [os.path.join(args.plots, "training.png")]
      plotting.plot_training(model, written[0])
      density = os.path.join(args.plots, "density.png")
      if d == 2:
        plotting.plot_density_2d(model, x, density, feature_names=names)
        written.append(density)
      elif d == 1:
        plotting.plot_density_1d(model, x, density, feature_names=names)
        written.append(density)
      for name, plot in (("posterior.png", plotting.plot_posterior),
                         ("assignments.png",
                          plotting.plot_assignment_uncertainty)):
        written.append(os.path.join(args.plots, name))
        if plot is plotting.plot_posterior:
          plot(model, path=written[-1], feature_names=names)
        else:
          plot(model, x, written[-1], feature_names=names)
      print("Plots: " + ", ".join(written))
      if d > 2:
        print(f"Note: no density plot for {d} features (only 1-D or 2-D "
              "data); pick two with --columns to get one.")
  except OSError as e:
    return _error(f"cannot write results: {e.strerror or e}"
                  + (f": {e.filename!r}" if e.filename else ""), 1)
  return 0


if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  sys.exit(main())
