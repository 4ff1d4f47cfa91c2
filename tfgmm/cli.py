"""The `tfgmm` command: fits a Bayesian Gaussian mixture to a CSV or .npy file.

`tfgmm_command.py` (outside the package, so that `--help` and usage errors
need no TensorFlow) defines and parses the arguments; `run` does the rest:
reads the data, calls `tfgmm.fit`, prints the posterior and writes the
requested export, plots and TensorBoard logs. `--resume DIR` is
`tfgmm.fit(..., backup_dir=DIR)` (`tfgmm.callbacks.AtomicBackupAndRestore`):
after a crash or kill, the same command line resumes from the last
completed epoch and ends with the same parameters, bit for bit, as a run
never interrupted; a finished run deletes DIR.

  tfgmm --demo --export saved_models/demo --plots plots
  tfgmm data.csv -k 4 --columns height,weight --plots out

Exit status: 0 on success; 2 on bad arguments or unreadable data; 1 when
training or writing results fails; 130 when interrupted. Errors are one line
`tfgmm: error: ...` on stderr (`--debug` shows tracebacks of unexpected
ones).
"""

import contextlib
import glob
import importlib.util
import math
import os
import sys
import traceback

import keras
import numpy as np

import tfgmm_command
from tfgmm import api
from tfgmm import callbacks as callbacks_lib
from tfgmm import files as files_lib

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


def load_data(path, columns=None, header=None, delimiter=None,
              allow_missing=False):
  """Reads a data matrix from a `.npy` or delimited text file.

  Args:
    path: the file.
    columns: None (all columns) or a list of column names or 0-based indices
      (strings as typed on the command line, or ints).
    header: None to detect (a first row that does not parse as numbers is a
      header), True or False to force. CSV only.
    delimiter: None to detect (",", tab, ";" or else runs of whitespace), a
      single character, or "whitespace". CSV only.
    allow_missing: empty and NaN cells are missing values (NaN in x), as
      `--missing marginalize` asks; else they are errors.

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
    return _load_npy(path, columns, allow_missing)
  return _load_csv(path, columns, header, delimiter, allow_missing)


def _load_npy(path, columns, allow_missing=False):
  """`load_data` of a .npy file."""
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
  index = files_lib.column_indices(columns, names, has_header=False,
                                   source=f"{path!r}")
  array = np.asarray(array[:, index], dtype=np.float64)
  finite = np.isfinite(array) | (allow_missing & np.isnan(array))
  bad = np.argwhere(~finite)
  if bad.size:
    row, col = bad[0]
    raise UsageError(f"non-finite value {array[row, col]!r} in column "
                     f"{names[index[col]]!r}, row {row} of {path!r}"
                     + _MISSING_HINT * (bool(np.isnan(array[row, col]))
                                        and not allow_missing))
  return array, [names[i] for i in index]


def _load_csv(path, columns, header, delimiter, allow_missing=False):
  """`load_data` of a delimited text file."""
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
    header = not all(files_lib.is_number(field) for field in rows[0][1])
  if header:
    names = [field or f"x{i}" for i, field in enumerate(rows[0][1])]
    rows = rows[1:]
  else:
    names = [f"x{i}" for i in range(width)]
  if not rows:
    raise UsageError(f"{path!r} holds a header but no data rows")
  index = files_lib.column_indices(columns, names, has_header=header,
                                   source=f"{path!r}")
  cells = [[fields[i] or ("nan" if allow_missing else "")
            for i in index] for _, fields in rows]                # [N, D] str
  try:
    x = np.array(cells, dtype=np.float64)
  except ValueError:
    x = None
  if x is None or not np.all(np.isfinite(x) | (allow_missing & np.isnan(x))):
    _raise_bad_cell(path, rows, index, names, columns is None, allow_missing)
  return x, [names[i] for i in index]


def _splitter(delimiter, first_line):
  """A line -> fields function; delimiter None: detected from `first_line`."""
  if delimiter is None:
    delimiter = next((d for d in (",", "\t", ";") if d in first_line),
                     "whitespace")
  if delimiter == "whitespace":
    return lambda line: line.split()
  return lambda line: [field.strip() for field in line.split(delimiter)]


_MISSING_HINT = ("; to treat empty and NaN cells as missing values, "
                 "pass --missing marginalize")


def _raise_bad_cell(path, rows, index, names, all_columns,
                    allow_missing=False):
  """Raises a UsageError naming the first missing or non-numeric cell."""
  for n, fields in rows:
    for i in index:
      text = fields[i]
      where = f"column {names[i]!r} on line {n} of {path!r}"
      missing = not text or (files_lib.is_number(text)
                             and math.isnan(float(text)))
      if missing:
        if allow_missing:
          continue
        raise UsageError(f"missing value in {where}{_MISSING_HINT}")
      if not files_lib.is_number(text):
        hint = ("; pick numeric columns with --columns" if all_columns
                else "")
        raise UsageError(f"non-numeric value {text!r} in {where}{hint}")
      if not math.isfinite(float(text)):
        raise UsageError(f"non-finite value {text!r} in {where}")
  raise UsageError(f"cannot parse the numbers in {path!r}")  # not reached


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
                   _format_pm(summary["means"][k, d],
                              summary["means_sd"][k, d]),
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


def _error(prog, message, status=2):
  """Prints "PROG: error: MESSAGE" on stderr; returns the exit `status`."""
  print(f"{prog}: error: {message}", file=sys.stderr)
  return status


def _first_line(error):
  """An error's message in one line (a traced function's: its cause)."""
  lines = [line.strip() for line in str(error).splitlines() if line.strip()]
  if not lines:
    return type(error).__name__
  if lines[0].startswith("in user code"):
    # TensorFlow's traced-function error: the cause is on the last line.
    prefix = f"{type(error).__name__}: "
    return lines[-1][len(prefix):] if lines[-1].startswith(prefix) else (
        lines[-1])
  return lines[0]


def _raised_by_tfgmm_checks(error):
  """Whether `error` was raised by tfgmm's own Python code (argument checks).

  Errors raised inside TensorFlow (e.g. while tracing a tf.function) have
  their innermost frame outside the tfgmm package.
  """
  frames = traceback.extract_tb(error.__traceback__)
  package = os.path.dirname(os.path.abspath(__file__))
  return bool(frames) and os.path.abspath(frames[-1].filename).startswith(
      package + os.sep)


def _tensorboard_available():
  """Whether the tensorboard package is installed (--tensorboard needs it)."""
  return importlib.util.find_spec("tensorboard") is not None


# --------------------------------------------------------------- outputs

def _inside(path, directory):
  """Whether `path` is `directory` or lies under it (symlinks resolved)."""
  path, directory = os.path.realpath(path), os.path.realpath(directory)
  return os.path.commonpath([path, directory]) == directory


def _check_outputs(args):
  """Fails early, before training, on output paths that cannot work.

  Raises:
    UsageError: an export target that is not ours to replace, a plots path
      that is a file, --tensorboard without tensorboard, or an output inside
      the --resume directory (a finished run deletes it).
  """
  if args.resume is not None:
    for flag, other in (("--export", args.export), ("--plots", args.plots),
                        ("--tensorboard", args.tensorboard)):
      if other is not None and _inside(other, args.resume):
        raise UsageError(f"{flag} {other!r} is inside --resume "
                         f"{args.resume!r}, which a finished run deletes")
    if args.export is not None and _inside(args.resume, args.export):
      raise UsageError(f"--resume {args.resume!r} is inside --export "
                       f"{args.export!r}, which the export replaces")
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


# `tfgmm.fit`'s names of what a backup must match, as the flags say them.
_FLAG_NAMES = {"n_components": "components", "max_epochs": "epochs",
               "batch_size": "batch size", "x": "data"}


def _mismatch_message(args, error):
  """A `BackupMismatchError` in the command's terms."""
  names = []
  for name in error.differences:
    name = _FLAG_NAMES.get(name, name)
    if name not in names:
      names.append(name)
  return (f"--resume {args.resume!r} holds the backup of a different run "
          f"(its {', '.join(names)} differ); rerun that run's command, or "
          "delete the directory to start over")


# ------------------------------------------------------------------ main

def main(argv=None, prog=tfgmm_command.PROG):
  """Runs the command in this process (as `tfgmm_command.main` does).

  Args:
    argv: the arguments without the program name; None reads sys.argv.
    prog: the program name in messages.

  Returns:
    The exit status: 0 success, 1 training or writing results failed, 2
    usage or data error, 130 interrupted.
  """
  args = tfgmm_command.parse_args(argv, prog)
  return args if isinstance(args, int) else RUNNERS[args.command](args, prog)


def run(args, prog=tfgmm_command.PROG):
  """Runs the command on parsed arguments (`tfgmm_command.parse_args`).

  Args:
    args: the `argparse.Namespace`.
    prog: the program name in messages.

  Returns:
    The exit status, as `main`'s.
  """
  if not args.demo and is_streamed(args.data, args.delimiter):
    return _fit_files_and_report(args, prog)
  try:
    if args.demo:
      x, names = demo_data(), ["x0", "x1"]
      if args.columns is not None:
        index = files_lib.column_indices(args.columns, names,
                                         has_header=False,
                                         source="the demo data")
        x, names = x[:, index], [names[i] for i in index]
      source = "demo data"
    else:
      x, names = load_data(args.data, args.columns, args.header,
                           args.delimiter,
                           allow_missing=args.missing == "marginalize")
      source = args.data
    _check_outputs(args)
  except OSError as e:
    where = e.filename if e.filename is not None else args.data
    return _error(prog, f"cannot read {where!r}: {e.strerror or e}")
  except (ValueError, TypeError) as e:
    return _error(prog, _first_line(e))

  try:
    return _fit_and_report(args, x, names, source, prog)
  except KeyboardInterrupt:
    print(file=sys.stderr)
    if args.resume is not None and os.path.isdir(args.resume):
      return _error(prog, "interrupted; the training state is backed up in "
                    f"{args.resume!r}: run the same command again to resume",
                    130)
    return _error(prog, "interrupted", 130)
  except Exception as e:  # pylint: disable=broad-exception-caught
    if args.debug:
      raise
    return _error(prog, f"unexpected error: {type(e).__name__}: "
                  f"{_first_line(e)} (rerun with --debug for the traceback)",
                  1)


def _fit_and_report(args, x, names, source, prog):
  """Fits, prints the posterior, writes the outputs; returns the status."""
  from tfgmm import plotting  # pylint: disable=import-outside-toplevel

  n, d = x.shape
  use_keras = (args.batch_size is not None or args.tensorboard is not None
               or args.method != "natural" or args.resume is not None)
  callbacks = None
  if args.tensorboard is not None:
    callbacks = [keras.callbacks.TensorBoard(log_dir=args.tensorboard)]
  how = (f"minibatch model.fit (batch size "
         f"{args.batch_size or min(n, api.MAX_BATCH)})" if use_keras
         else "full-data CAVI")
  print(f"Fitting {args.components} components to {source}: {n} points x "
        f"{d} feature{'s' if d != 1 else ''} ({', '.join(names)}), method "
        f"{args.method!r}, {how}.", flush=True)
  try:
    model = api.fit(x, args.components, method=args.method,
                    batch_size=args.batch_size, max_epochs=args.epochs,
                    seed=args.seed, callbacks=callbacks,
                    verbose=1 if use_keras else 0, backup_dir=args.resume,
                    **_model_options(args))
  except callbacks_lib.BackupMismatchError as e:
    return _error(prog, _mismatch_message(args, e))
  except (ValueError, TypeError) as e:
    if args.debug:
      raise
    if _raised_by_tfgmm_checks(e):
      return _error(prog, _first_line(e))
    # Not an argument check: a failure inside TensorFlow or a tfgmm bug.
    return _error(prog, f"training failed: {type(e).__name__}: "
                  f"{_first_line(e)} (rerun with --debug for the traceback)",
                  1)

  _print_fit(model, names, f"seed {model.seed}",
             f"{float(model.elbo(x)) / n:.6f} nats")

  if args.tensorboard is not None:
    print(f"TensorBoard logs: {args.tensorboard}")
  try:
    if args.export is not None:
      model.export(args.export)
      print(f"SavedModel: {args.export}")
    if args.plots is not None:
      written = _write_plots(plotting, model, x, names, args.plots)
      print("Plots: " + ", ".join(written))
      if d > 2:
        print(f"Note: no density plot for {d} features (only 1-D or 2-D "
              "data); pick two with --columns to get one.")
  except OSError as e:
    return _error(prog, f"cannot write results: {e.strerror or e}"
                  + (f": {e.filename!r}" if e.filename else ""), 1)
  return 0


def _print_fit(model, names, about, bound):
  """Prints a fit's posterior summary, epochs and final bound.

  Args:
    model: the fitted `BayesianGMM`.
    names: its D feature names.
    about: what the heading says after the component count.
    bound: the final bound per point, as text.
  """
  status = "converged" if model.converged else (
      "not converged; raise --epochs or check the tolerance")
  print(f"\nPosterior (mean ± sd) of {model.n_components} components, "
        f"{about}:")
  print(format_summary(model.posterior_summary(), names))
  print(f"\nEpochs: {model.n_epochs} ({status})")
  print(f"Final bound (ELBO per point): {bound}")


def _write_plots(plotting, model, x, names, directory):
  """Writes the plots of a fit; returns their paths.

  Args:
    plotting: the `tfgmm.plotting` module.
    model: the fitted `BayesianGMM`.
    x: the data, [N, D].
    names: D feature names.
    directory: where to write them (it exists).

  Returns:
    The paths written: training.png, density.png (D = 1 or 2 only),
    posterior.png and assignments.png.
  """
  d = x.shape[1]
  written = [os.path.join(directory, "training.png")]
  plotting.plot_training(model, written[0])
  if d in (1, 2):
    written.append(os.path.join(directory, "density.png"))
    plot_density = (plotting.plot_density_2d if d == 2
                    else plotting.plot_density_1d)
    plot_density(model, x, written[-1], feature_names=names)
  written.append(os.path.join(directory, "posterior.png"))
  plotting.plot_posterior(model, path=written[-1], feature_names=names)
  written.append(os.path.join(directory, "assignments.png"))
  plotting.plot_assignment_uncertainty(model, x, written[-1],
                                       feature_names=names)
  return written


def _model_options(args):
  """The model options of the fit flags, as `tfgmm.fit` keywords (the
  defaults left out, so a --resume backup of an older run still matches)."""
  options = {"covariance_type": args.covariance_type,
             "weight_prior": args.weight_prior, "missing": args.missing}
  defaults = {"covariance_type": "diag", "weight_prior": "dirichlet",
              "missing": "error"}
  return {k: v for k, v in options.items() if v != defaults[k]}


# ----------------------------------------------- score, sample, select

def _write_table(path, columns, table):
  """Writes a float table [N, C] as CSV (with a header) or .npy."""
  if os.fspath(path).lower().endswith(".npy"):
    np.save(path, table)
  else:
    np.savetxt(path, table, delimiter=",", header=",".join(columns),
               comments="", fmt="%.9g")


def _load_saved_model(path):
  """A SavedModel's signatures, loaded with plain TensorFlow."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  if not os.path.isdir(path):
    raise UsageError(f"no SavedModel directory at {path!r}")
  try:
    loaded = tf.saved_model.load(path)
  except (OSError, ValueError) as e:
    raise UsageError(f"cannot load a SavedModel from {path!r}: "
                     f"{_first_line(e)}") from None
  missing = {"serving_default", "responsibilities", "sample"} - set(
      loaded.signatures)
  if missing:
    raise UsageError(f"{path!r} is not a tfgmm export (no "
                     f"{', '.join(sorted(missing))} signature)")
  return tf, loaded


def _guarded(prog, args, work):
  """Runs work() and maps its failures to one-line errors and a status."""
  try:
    return work()
  except UsageError as e:
    return _error(prog, str(e))
  except OSError as e:
    where = e.filename if e.filename is not None else ""
    return _error(prog, f"cannot read or write {where!r}: {e.strerror or e}")
  except KeyboardInterrupt:
    print(file=sys.stderr)
    return _error(prog, "interrupted", 130)
  except (ValueError, TypeError) as e:
    if args.debug:
      raise
    # The library's advice names its argument; the command's, its flag.
    return _error(prog, _first_line(e).replace(
        "use missing='marginalize'", "rerun with --missing marginalize"))


def _score_batches(args, width):
  """The rows of `args.data` in batches of float64 [B, D]: streamed through
  `tfgmm.files` (a file or glob of CSV, TFRecord, .npy or Parquet), or
  loaded by `load_data` for a whitespace-separated CSV."""
  allow_missing = args.missing == "marginalize"
  if args.delimiter == "whitespace":
    x, _ = load_data(args.data, args.columns, args.header, args.delimiter,
                     allow_missing=allow_missing)
    batches = (x[i:i + args.batch_size]
               for i in range(0, x.shape[0], args.batch_size))
  else:
    dataset, _ = files_lib.file_dataset(args.data, args.batch_size,
                                        **_file_options(args))
    batches = (batch.numpy() for batch in dataset)
  seen = 0
  for batch in batches:
    if batch.shape[1] != width:
      raise UsageError(f"the model takes {width} features; {args.data!r} "
                       f"gives {batch.shape[1]} (pick them with --columns)")
    if not allow_missing and np.isnan(batch).any():
      row = seen + int(np.argwhere(np.isnan(batch))[0][0])
      raise UsageError(f"missing value in data row {row} of {args.data!r}"
                       + _MISSING_HINT)
    seen += batch.shape[0]
    yield batch


def run_score(args, prog=tfgmm_command.PROG):
  """`tfgmm score MODEL DATA --out FILE`: per-row outputs of a SavedModel,
  streamed batch by batch (a CSV output is written as it goes; a .npy one is
  assembled at the end)."""
  def work():
    tf, loaded = _load_saved_model(args.model)
    serve = loaded.signatures["serving_default"]
    width = serve.structured_input_signature[1]["x"].shape[-1]
    as_npy = os.fspath(args.out).lower().endswith(".npy")
    parts, rows, total, k = [], 0, 0.0, None
    with open(args.out, "w", encoding="utf-8") if not as_npy else (
        contextlib.nullcontext()) as out:
      for batch in _score_batches(args, width):
        x = tf.constant(batch, tf.float32)
        log_prob = serve(x=x)["log_prob"].numpy()                 # [B]
        resp = loaded.signatures["responsibilities"](x=x)[
            "responsibilities"].numpy()                           # [B, K]
        table = np.column_stack([log_prob, resp.argmax(1), resp])
        if k is None:
          k = resp.shape[1]
          if not as_npy:
            out.write(",".join(["log_prob", "label"]
                               + [f"r{j}" for j in range(k)]) + "\n")
        if as_npy:
          parts.append(table)
        else:
          np.savetxt(out, table, delimiter=",", fmt="%.9g")
        rows += table.shape[0]
        total += float(np.sum(log_prob))
    if not rows:
      raise UsageError(f"{args.data!r} holds no data rows")
    if as_npy:
      np.save(args.out, np.concatenate(parts))
    print(f"Scored {rows} rows of {args.data} with {args.model}: "
          f"{args.out} (log_prob, label, r0..r{k - 1}); mean log_prob "
          f"{total / rows:.6f}")
    return 0
  return _guarded(prog, args, work)


def run_sample(args, prog=tfgmm_command.PROG):
  """`tfgmm sample MODEL -n N --out FILE`: predictive draws of a SavedModel."""
  def work():
    tf, loaded = _load_saved_model(args.model)
    samples = loaded.signatures["sample"](
        n=tf.constant(args.num_samples, tf.int32),
        seed=tf.constant(args.seed, tf.int64))["samples"].numpy()  # [N, D]
    _write_table(args.out, [f"x{j}" for j in range(samples.shape[1])],
                 samples)
    print(f"Drew {args.num_samples} points from {args.model}: {args.out}")
    return 0
  return _guarded(prog, args, work)


def run_select(args, prog=tfgmm_command.PROG):
  """`tfgmm select DATA -k KS`: `tfgmm.select_components`, as a table."""
  def work():
    from tfgmm import selection  # pylint: disable=import-outside-toplevel
    if args.export is not None and args.criterion == "bic":
      raise UsageError("--export needs a Bayesian fit: the 'bic' "
                       "criterion's model is a MAP point estimate")
    options = dict(_model_options(args))
    if is_streamed(args.data, args.delimiter):
      # Streamed like `tfgmm fit` of files (see `selection`: "elbo" only).
      options["file_options"] = _file_options(args)
      x, names = args.data, files_lib.file_dataset(
          args.data, **options["file_options"])[1]
      about = f"streamed, {len(names)} features"
    else:
      x, _ = load_data(args.data, args.columns, args.header, args.delimiter,
                       allow_missing=args.missing == "marginalize")
      about = f"{x.shape[0]} points x {x.shape[1]} features"
    print(f"Choosing K among {args.components} for {args.data} ({about}) by "
          f"{args.criterion!r}...", flush=True)
    result = selection.select_components(
        x, args.components, criterion=args.criterion, seed=args.seed,
        **options)
    table = result.table
    print(f"\n  {'K':>3}  {'score':>14}  {'K with data':>11}  "
          f"{'time (s)':>8}")
    for k, score, used, seconds in zip(
        table["n_components"], table["score"],
        table["effective_components"], table["seconds"]):
      mark = "  <- chosen" if k == result.n_components else ""
      print(f"  {k:>3}  {score:>14.6f}  {used:>11}  {seconds:>8.2f}{mark}")
    print(f"\nChosen: K = {result.n_components}")
    if args.export is not None:
      result.model.export(args.export)
      print(f"SavedModel: {args.export}")
    return 0
  return _guarded(prog, args, work)


RUNNERS = {"fit": run, "score": run_score, "sample": run_sample,
           "select": run_select}


# ---------------------------------------------------------- streamed fit

# A single CSV or .npy file larger than this streams too (a 130 MB CSV of
# 3e6 rows x 4 columns loaded whole peaked at 2.2 GB of memory).
STREAM_BYTES = 64 << 20


def is_streamed(data, delimiter=None):
  """Whether `tfgmm fit` streams `data` through `tfgmm.fit`: several
  files, a glob pattern, TFRecord, Parquet, or one file larger than
  `STREAM_BYTES` (unless whitespace-separated: that format is only read
  whole)."""
  if isinstance(data, list):
    return True
  if glob.has_magic(data) or data.lower().endswith(
      (".tfrecord", ".tfrecords")) or files_lib.is_parquet(data):
    return True
  try:
    large = os.path.getsize(data) > STREAM_BYTES
  except OSError:
    return False                          # the loader names the error
  return large and delimiter != "whitespace"


def _file_options(args):
  """`tfgmm.files.file_dataset` options from the command's flags."""
  options = {"columns": args.columns, "header": args.header}
  if args.delimiter is not None:
    if args.delimiter == "whitespace":
      raise UsageError("--delimiter whitespace applies to one loaded file; "
                       "streamed CSV needs a one-character separator")
    options["delimiter"] = args.delimiter
  return options


def _fit_files_and_report(args, prog):
  """`tfgmm fit` of files streamed through `tfgmm.fit` (see `tfgmm.files`).

  The rows never sit in memory, so the summary's bound is the last epoch's
  and the plots are the ones that need no data (training, posterior).
  """
  from tfgmm import plotting  # pylint: disable=import-outside-toplevel
  try:
    options = _file_options(args)
    _check_outputs(args)
    _, names = files_lib.file_dataset(args.data, **options)
  except (OSError, ValueError) as e:          # UsageError is a ValueError
    return _error(prog, _first_line(e))
  source = ", ".join(args.data) if isinstance(args.data, list) else args.data
  print(f"Fitting {args.components} components to {source} (streamed): "
        f"{len(names)} feature{'s' if len(names) != 1 else ''} "
        f"({', '.join(names)}), method {args.method!r}.", flush=True)
  callbacks = (None if args.tensorboard is None
               else [keras.callbacks.TensorBoard(log_dir=args.tensorboard)])
  model = _guarded(prog, args, lambda: api.fit(
      args.data, args.components, method=args.method,
      batch_size=args.batch_size, max_epochs=args.epochs, seed=args.seed,
      callbacks=callbacks, verbose=1,
      backup_dir=args.resume, file_options=options, **_model_options(args)))
  if isinstance(model, int):                # an exit status: it failed
    return model
  _print_fit(model, names,
             f"seed {model.seed}, {int(model.num_examples.numpy())} rows",
             f"{-model.training_history['loss'][-1]:.6f} nats (last epoch)")
  try:
    if args.export is not None:
      model.export(args.export)
      print(f"SavedModel: {args.export}")
    if args.plots is not None:
      written = [os.path.join(args.plots, "training.png"),
                 os.path.join(args.plots, "posterior.png")]
      plotting.plot_training(model, written[0])
      plotting.plot_posterior(model, path=written[1], feature_names=names)
      print("Plots: " + ", ".join(written) + " (streamed data: no density "
            "or assignment plots)")
  except OSError as e:
    return _error(prog, f"cannot write results: {e.strerror or e}", 1)
  return 0
