#!/usr/bin/env python3
"""The `tfgmm` command as a script, for `make run` and a source checkout.

  python scripts/train.py --demo --export saved_models/demo --plots plots
  python scripts/train.py data.csv -k 4 --columns height,weight --plots out

Same flags, output and exit statuses as `tfgmm` (see `tfgmm --help`,
tfgmm_command.py and tfgmm/cli.py); messages name the program "train.py".
It goes through `tfgmm_command.main`, which parses the arguments before
importing TensorFlow and then runs `tfgmm.cli`, so `--help` and usage
errors answer at once here too.
"""

import sys

import tfgmm_command

if __name__ == "__main__":
  sys.exit(tfgmm_command.main(prog="train.py"))
