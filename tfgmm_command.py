"""The `tfgmm` command's entry point: parses the arguments before TensorFlow.

`tfgmm --help` and argument errors answer at once: this module imports only
the standard library, and imports `tfgmm.cli` (and with it TensorFlow, which
takes seconds) only once the arguments parse. It lives outside the package
because `import tfgmm.anything` runs `tfgmm/__init__.py`, which imports
TensorFlow and registers the Keras classes (so `.keras` files load after a
plain `import tfgmm`).

Installed as the `tfgmm` console script (setup.cfg); also
`python -m tfgmm_command ...`, `python -m tfgmm ...` and
`scripts/train.py ...` (which names itself "train.py" in messages).
"""

import argparse
import os
import sys

PROG = "tfgmm"
# The package's choices, copied so that the flags' choices need no
# TensorFlow (tests/test_command.py checks that they agree): tfgmm.model's
# METHODS, tfgmm.families' COVARIANCE_TYPES and MISSING, and the weight
# priors of tfgmm._engine.weight_priors.
METHODS = ("natural", "gradient", "sampled")
COVARIANCE_TYPES = ("diag", "full", "spherical", "tied")
WEIGHT_PRIORS = ("dirichlet", "dirichlet_process")
MISSING = ("error", "marginalize")
CRITERIA = ("elbo", "heldout", "bic")
# The subcommands; without one, the arguments are `fit`'s.
COMMANDS = ("fit", "score", "sample", "select")

_DESCRIPTION = """\
Fit a Bayesian Gaussian mixture (tfgmm) to a CSV or .npy file and print the
posterior.

Input: a .npy file holding a numeric [N, D] (or [N]) array, a Parquet file
(with the tfgmm[parquet] extra), or a delimited text file (CSV) of numbers.
A CSV's first row is taken as a header when it does not parse as numbers
(force either way with --header / --no-header); blank lines and lines
starting with "#" are skipped. --columns picks columns by header name or
0-based index.

Subcommands (without one, the arguments are fit's; `%(prog)s CMD --help`
for each):
  fit     fit a mixture to a file and print its posterior (the default)
  score   log-density, label and responsibilities per row, from a SavedModel
  sample  draws from a SavedModel's posterior predictive
  select  fit several K and pick one (tfgmm.select_components)

Examples:
  %(prog)s --demo --export saved_models/demo --plots plots
  %(prog)s data.csv -k 4 --columns height,weight --plots out
  %(prog)s data.npy -k 3 --method gradient --batch-size 1024
  %(prog)s data.npy -k 3 --seed 0 --resume backups/run1
  %(prog)s fit data.csv -k 3 --covariance-type full --missing marginalize
  %(prog)s score saved_models/demo data.csv --out scores.csv
  %(prog)s sample saved_models/demo -n 1000 --out draws.csv
  %(prog)s select data.csv -k 1:8 --criterion elbo
"""

_EPILOG = """\
Training: full-data CAVI in tfgmm's compiled loop (fast; no progress bar) for
--method natural without --batch-size, --tensorboard or --resume; anything
else trains with minibatch model.fit and shows Keras' progress bar.

Exit status: 0 on success; 2 on bad arguments or unreadable data; 1 when
training or writing results fails; 130 when interrupted. Errors are one line
"%(prog)s: error: ..." on stderr (--debug shows tracebacks of unexpected
ones).
"""


# ------------------------------------------------------- argparse types

def _int_in(text, low, high, what):
  """An int with low <= value < high (high None: no bound), for argparse."""
  try:
    value = int(text)
  except ValueError:
    raise argparse.ArgumentTypeError(
        f"expected an integer, got {text!r}") from None
  if value < low or (high is not None and value >= high):
    raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
  return value


def _positive_int(text):
  return _int_in(text, 1, None, "an integer >= 1")


def _seed(text):
  return _int_in(text, 0, 2**31 - 1, "0 <= seed < 2^31 - 1")


def _columns(text):
  """Comma-separated column names or indices, as a list of str."""
  tokens = [token.strip() for token in text.split(",")]
  if not all(tokens):
    raise argparse.ArgumentTypeError(
        f"expected comma-separated column names or indices, got {text!r}")
  return tokens


def _candidates(text):
  """"A:B" (A to B inclusive) or comma-separated ints >= 1, as a list."""
  try:
    if ":" in text:
      low, high = (int(t) for t in text.split(":"))
      values = list(range(low, high + 1))
    else:
      values = [int(t) for t in text.split(",")]
  except ValueError:
    values = []
  if not values or min(values) < 1:
    raise argparse.ArgumentTypeError(
        f"expected A:B or comma-separated integers >= 1, got {text!r}")
  return values


def _delimiter(text):
  """One character, or "\\t" for tab, or "whitespace" (runs of blanks)."""
  aliases = {"\\t": "\t", "tab": "\t", "space": "whitespace", " ": "whitespace",
             "whitespace": "whitespace"}
  if text in aliases:
    return aliases[text]
  if len(text) != 1 or text in "\"\r\n":
    raise argparse.ArgumentTypeError(
        f"expected one character, 'tab' or 'whitespace', got {text!r}")
  return text


# --------------------------------------------------------------- parser

def build_parser(prog=PROG):
  """The command's `argparse.ArgumentParser`.

  Args:
    prog: the program name shown in usage and error messages.

  Returns:
    The parser; `parse_args` adds the checks between arguments.
  """
  parser = argparse.ArgumentParser(
      prog=prog, description=_DESCRIPTION, epilog=_EPILOG,
      formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("data", nargs="*",
                      help="a .npy array [N, D] or a CSV file of numbers "
                           "(omit with --demo); several files, a glob "
                           "pattern, TFRecord or Parquet files, or one file "
                           "over 64 MiB are streamed, never loaded whole "
                           "(tfgmm.fit of files)")
  parser.add_argument("--demo", action="store_true",
                      help="fit the seed blog's 3000-point, 3-blob 2-D data")
  parser.add_argument("-k", "--components", type=_positive_int, default=3,
                      metavar="K", help="number of mixture components "
                                        "(default: 3)")
  parser.add_argument("--method", choices=METHODS, default="natural",
                      help="training method (default: natural)")
  _add_model_flags(parser)
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
                           "epoch (tfgmm.fit's backup_dir: an atomic "
                           "keras.callbacks.BackupAndRestore); after a crash "
                           "or kill, rerunning the same command resumes from "
                           "the last completed epoch and ends with the same "
                           "parameters as an uninterrupted run. Without "
                           "--seed, the seed is kept in DIR. A finished run "
                           "deletes DIR")
  parser.add_argument("--debug", action="store_true",
                      help="show the full traceback of an unexpected error")
  _add_csv_flags(parser)
  return parser


def _add_model_flags(parser):
  parser.add_argument("--covariance-type", choices=COVARIANCE_TYPES,
                      default="diag",
                      help="the components' covariances (default: diag)")
  parser.add_argument("--weight-prior", choices=WEIGHT_PRIORS,
                      default="dirichlet",
                      help="prior of the weights (default: dirichlet)")
  parser.add_argument("--missing", choices=MISSING, default="error",
                      help="'marginalize' treats empty or NaN cells as "
                           "missing values (default: error)")


def _add_csv_flags(parser):
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


def build_subcommand_parser(command, prog=PROG):
  """The parser of `score`, `sample` or `select` (fit's is `build_parser`)."""
  parser = argparse.ArgumentParser(prog=f"{prog} {command}")
  if command in ("score", "sample"):
    parser.add_argument("model", help="a SavedModel directory (tfgmm "
                                      "--export, BayesianGMM.export)")
  if command in ("score", "select"):
    parser.add_argument("data", help="a .npy array or a CSV file of numbers")
  if command == "score":
    parser.description = (
        "Write log p(x), the label and the responsibilities of each row, "
        "computed by a SavedModel in batches, to a CSV (or .npy) file.")
    parser.add_argument("--out", required=True, metavar="FILE",
                        help="output .csv (header log_prob,label,r0,...) or "
                             ".npy ([N, 2 + K])")
    parser.add_argument("--batch-size", type=_positive_int, default=65536,
                        metavar="B", help="rows per batch (default: 65536)")
    parser.add_argument("--missing", choices=MISSING, default="error",
                        help="'marginalize' passes empty and NaN cells on "
                             "as missing values, for a model exported with "
                             "--missing marginalize (default: error)")
  elif command == "sample":
    parser.description = ("Draw points from a SavedModel's posterior "
                          "predictive and write them to a CSV or .npy file.")
    parser.add_argument("-n", "--num-samples", type=_positive_int,
                        required=True, metavar="N", help="number of draws")
    parser.add_argument("--out", required=True, metavar="FILE",
                        help="output .csv (header x0,x1,...) or .npy")
    parser.add_argument("--seed", type=_seed, default=0,
                        help="seed of the draws (default: 0)")
  else:
    parser.description = (
        "Fit each candidate number of components and pick one "
        "(tfgmm.select_components); print the table.")
    parser.add_argument("-k", "--components", type=_candidates,
                        required=True, metavar="KS",
                        help="candidates: A:B (inclusive) or a comma list")
    parser.add_argument("--criterion", choices=CRITERIA, default="elbo",
                        help="elbo (default), heldout or bic")
    parser.add_argument("--seed", type=_seed, default=0,
                        help="seed of the fits (default: 0)")
    parser.add_argument("--export", metavar="PATH",
                        help="write the chosen model's SavedModel here")
    _add_model_flags(parser)
  parser.add_argument("--debug", action="store_true",
                      help="show the full traceback of an unexpected error")
  if command != "sample":
    _add_csv_flags(parser)
  return parser


def parse_args(argv=None, prog=PROG):
  """Parses and cross-checks the command line; prints usage errors.

  Args:
    argv: the arguments without the program name; None reads sys.argv.
    prog: the program name in messages.

  Returns:
    An `argparse.Namespace` (its `command` one of `COMMANDS`), or an int
    exit status when the command is already done: 0 after --help, 2 after
    a usage error (printed on stderr as "PROG: error: ...").
  """
  argv = list(sys.argv[1:] if argv is None else argv)
  command = "fit"
  if argv and argv[0] in COMMANDS:
    command = argv.pop(0)
  parser = (build_parser(prog) if command == "fit"
            else build_subcommand_parser(command, prog))
  try:
    args = parser.parse_args(argv)
    args.command = command
    if command == "fit":
      _check_fit_args(parser, args)
  except SystemExit as e:  # argparse: --help (0) or a usage error (2)
    return e.code if isinstance(e.code, int) else 2
  return args


def _check_fit_args(parser, args):
  """fit's checks between arguments (parser.error on a conflict); one data
  file becomes a str (loaded), several a list (streamed), none None."""
  args.data = (None if not args.data
               else args.data[0] if len(args.data) == 1 else args.data)
  if args.demo and args.data is not None:
    parser.error("--demo makes its own data; do not also give a data file")
  if not args.demo and args.data is None:
    parser.error("the following arguments are required: data (or --demo)")
  if args.demo and (args.header is not None or args.delimiter is not None):
    parser.error("--header, --no-header and --delimiter apply to a data "
                 "file, not --demo")


def main(argv=None, prog=PROG):
  """Runs the command: parses `argv`, then fits with `tfgmm.cli.run`.

  Args:
    argv: the arguments without the program name; None reads sys.argv.
    prog: the program name in messages.

  Returns:
    The exit status: 0 success, 1 training or writing results failed, 2
    usage or data error, 130 interrupted.
  """
  args = parse_args(argv, prog)
  if isinstance(args, int):
    return args
  # TensorFlow's C++ start-up notices are noise on a command line.
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  cli = _import_cli(quiet=not args.debug)
  return cli.RUNNERS[args.command](args, prog)


def _import_cli(quiet):
  """Imports `tfgmm.cli`, and so TensorFlow, and initialises its devices.

  With `quiet`, file descriptor 2 points at /dev/null meanwhile: since TF
  2.19 the C++ start-up notices (absl's "All log messages before
  absl::InitializeLog()", oneDNN, cudart, cuInit) ignore
  TF_CPP_MIN_LOG_LEVEL (tensorflow/tensorflow#100442). Python's own
  errors still show: an exception raised here is printed after stderr is
  restored. `--debug` keeps everything.
  """
  # pylint: disable=import-outside-toplevel
  if not quiet:
    from tfgmm import cli
    return cli
  sys.stderr.flush()
  saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
  try:
    os.dup2(devnull, 2)
    from tfgmm import cli
    import tensorflow as tf
    tf.config.list_physical_devices()      # the CUDA probe logs here
  finally:
    sys.stderr.flush()
    os.dup2(saved, 2)
    os.close(saved)
    os.close(devnull)
  return cli


if __name__ == "__main__":
  sys.exit(main())
