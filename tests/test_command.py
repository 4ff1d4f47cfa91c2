"""The `tfgmm` command's entry points: tfgmm_command.py, `python -m tfgmm`,
scripts/train.py, and the console script declared in setup.cfg.

`--help` and argument errors must answer without importing TensorFlow (it
takes seconds), so those run in fresh processes under `python -X importtime`,
which lists every module imported. What the command does once the
arguments parse is tested in tests/test_train_cli.py.
"""

import configparser
import importlib
import runpy
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import tfgmm
import tfgmm_command
from tests.helpers import REPO_ROOT
from tests.helpers import SCRIPTS
from tests.helpers import run_client
from tests.helpers import subprocess_env
from tfgmm import model as model_lib


def imported_modules(importtime_log):
  """The top-level names of the modules a `-X importtime` log lists."""
  names = set()
  for line in importtime_log.splitlines():
    if line.startswith("import time:") and "|" in line:
      names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
  return names


@pytest.mark.parametrize("command, status, expected", [
    (["-m", "tfgmm_command", "--help"], 0, "usage: tfgmm "),
    (["-m", "tfgmm_command", "--demo", "-k", "0"], 2,
     "tfgmm: error: argument -k/--components: expected an integer >= 1, "
     "got 0"),
    (["-m", "tfgmm_command", "data.csv", "--demo"], 2,
     "tfgmm: error: --demo makes its own data"),
    ([str(SCRIPTS / "train.py"), "--demo", "--method", "newton"], 2,
     "train.py: error: argument --method: invalid choice: 'newton'"),
], ids=["help", "bad value", "bad combination", "script"])
def test_help_and_usage_errors_need_no_tensorflow(tmp_path, command, status,
                                                 expected):
  done = subprocess.run([sys.executable, "-X", "importtime", *command],
                        cwd=tmp_path, env=subprocess_env(), timeout=60,
                        capture_output=True, text=True, check=False)
  assert done.returncode == status, done.stderr[-2000:]
  output = done.stdout if status == 0 else done.stderr
  assert expected in output
  modules = imported_modules(done.stderr)
  assert "argparse" in modules                         # the log is there
  assert not modules & {"tensorflow", "keras", "numpy", "tfgmm"}, modules


def test_the_command_runs_a_fit(tmp_path, capsys):
  rng = np.random.default_rng(0)
  path = tmp_path / "x.npy"
  np.save(path, np.concatenate([rng.normal(-3, 1, (100, 2)),
                                rng.normal(3, 1, (100, 2))]))
  assert tfgmm_command.main([str(path), "-k", "2", "--seed", "0"]) == 0
  out = capsys.readouterr().out
  assert "Fitting 2 components to" in out and "200 points x 2 features" in out
  assert "(converged)" in out


def test_python_m_tfgmm_is_the_command(capsys, monkeypatch):
  monkeypatch.setattr(sys, "argv", ["tfgmm", "--help"])
  with pytest.raises(SystemExit) as exited:
    runpy.run_module("tfgmm", run_name="__main__")
  assert exited.value.code == 0
  assert "usage: tfgmm " in capsys.readouterr().out


def test_setup_cfg_installs_the_console_script(capsys, monkeypatch):
  config = configparser.ConfigParser()
  config.read(REPO_ROOT / "setup.cfg")
  assert config["options"]["py_modules"].split() == ["tfgmm_command"]
  scripts = [line.split("=") for line in
             config["options.entry_points"]["console_scripts"].split("\n")
             if line.strip()]
  assert [[name.strip(), target.strip()] for name, target in scripts] == [
      ["tfgmm", "tfgmm_command:main"]]
  # A console script calls the target with no arguments: it reads sys.argv.
  module, function = scripts[0][1].strip().split(":")
  main = getattr(importlib.import_module(module), function)
  monkeypatch.setattr(sys, "argv", ["tfgmm", "--help"])
  assert main() == 0
  assert "--resume DIR" in capsys.readouterr().out


def test_the_methods_are_the_models():
  # tfgmm_command copies the tuple so that parsing needs no TensorFlow.
  assert tfgmm_command.METHODS == model_lib.METHODS


def test_keras_files_load_after_a_plain_import_tfgmm(tmp_path):
  # The command's entry point keeps TensorFlow out of `--help`; the package
  # still registers its Keras classes on `import tfgmm`.
  rng = np.random.default_rng(0)
  x = rng.normal(size=(100, 2))
  model = tfgmm.fit(x, 2, seed=0, n_init=1)
  path = tmp_path / "gmm.keras"
  model.save(path)
  assert isinstance(keras.saving.load_model(path), tfgmm.BayesianGMM)
  np.save(tmp_path / "x.npy", x)
  client = textwrap.dedent("""
      import json, sys
      import keras, numpy as np
      import tfgmm
      loaded = keras.saving.load_model(sys.argv[1])
      print(json.dumps({"type": type(loaded).__name__,
                        "log_prob": loaded.log_prob(
                            np.load(sys.argv[2])).numpy().tolist()}))
  """)
  result = run_client(client, [path, tmp_path / "x.npy"], tmp_path)
  assert result["type"] == "BayesianGMM"
  np.testing.assert_allclose(result["log_prob"], model.log_prob(x),
                             rtol=1e-6)
