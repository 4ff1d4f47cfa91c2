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
# tfgmm.model.METHODS, copied so that --method's choices need no TensorFlow
# (tests/test_command.py checks that the two agree).
METHODS = ("natural", "gradient", "sampled")

_DESCRIPTION = """\
Fit a Bayesian Gaussian mixture (tfgmm) to a CSV or .npy file and print the
posterior.

Input: a .npy file holding a numeric [N, D] (or [N]) array, or a delimited
text file (CSV) of numbers. A CSV's first row is taken as a header when it
does not parse as numbers (force either way with --header / --no-header);
blank lines and lines starting with "#" are skipped. --columns picks columns
by header name or 0-based index.

Examples:
  %(prog)s --demo --export saved_models/demo --plots plots
  %(prog)s data.csv -k 4 --columns height,weight --plots out
  %(prog)s data.npy -k 3 --method gradient --batch-size 1024
  %(prog)s data.npy -k 3 --seed 0 --resume backups/run1
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
  parser.add_argument("data", nargs="?",
                      help="a .npy array [N, D] or a CSV file of numbers "
                           "(omit with --demo)")
  parser.add_argument("--demo", action="store_true",
                      help="fit the seed blog's 3000-point, 3-blob 2-D data")
  parser.add_argument("-k", "--components", type=_positive_int, default=3,
                      metavar="K", help="number of mixture components "
                                        "(default: 3)")
  parser.add_argument("--method", choices=METHODS, default="natural",
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
                           "epoch (tfgmm.fit's backup_dir: an atomic "
                           "keras.callbacks.BackupAndRestore); after a crash "
                           "or kill, rerunning the same command resumes from "
                           "the last completed epoch and ends with the same "
                           "parameters as an uninterrupted run. Without "
                           "--seed, the seed is kept in DIR. A finished run "
                           "deletes DIR")
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


def parse_args(argv=None, prog=PROG):
  """Parses and cross-checks the command line; prints usage errors.

  Args:
    argv: the arguments without the program name; None reads sys.argv.
    prog: the program name in messages.

  Returns:
    An `argparse.Namespace`, or an int exit status when the command is
    already done: 0 after --help, 2 after a usage error (printed on
    stderr as "PROG: error: ...").
  """
  parser = build_parser(prog)
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
  return args


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
  return cli.run(args, prog)


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
