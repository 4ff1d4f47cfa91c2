"""`python -m tfgmm ...`: the `tfgmm` command (see tfgmm_command.py).

The package, and so TensorFlow, is imported before the arguments are
parsed; the `tfgmm` console script answers `--help` without it.
"""

import sys

from tfgmm import cli

if __name__ == "__main__":
  sys.exit(cli.main())
