"""Helpers shared by several test modules (no test module imports another).

Fixtures live in tests/conftest.py; the plain functions and constants the
tests call live here, imported as `from tests.helpers import ...` (setup.cfg
puts the repository root on pytest's path).
"""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import tensorflow as tf

from tfgmm.families import diag

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPTS = REPO_ROOT / "scripts"


def subprocess_env(**extra):
  """The environment for a fresh Python process that imports this checkout.

  The repository root comes first on PYTHONPATH, so `tfgmm` and
  `tfgmm_command` are this tree's even where an installed copy exists;
  TensorFlow's C++ start-up notices are silenced.

  Args:
    **extra: further variables to set.

  Returns:
    A dict for `subprocess`'s `env`.
  """
  path = os.environ.get("PYTHONPATH")
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
             PYTHONPATH=os.pathsep.join([str(REPO_ROOT)]
                                        + ([path] if path else [])))
  env.update(extra)
  return env

# ------------------------------------------- fresh plain-TensorFlow clients


def run_client(source, args, tmp_path):
  """Runs the Python `source` in a fresh interpreter, in `tmp_path`.

  Args:
    source: the client's code; it prints a JSON line last.
    args: its command-line arguments (paths), a list.
    tmp_path: a directory for the client's file, and its working directory.

  Returns:
    The last line the client printed, decoded from JSON.
  """
  script = tmp_path / "client.py"
  script.write_text(source)
  done = subprocess.run([sys.executable, str(script)] + [str(a) for a in args],
                        capture_output=True, text=True, timeout=300,
                        env=subprocess_env(), cwd=tmp_path, check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  return json.loads(done.stdout.strip().splitlines()[-1])


# Runs in a fresh interpreter where importing tfgmm or TFP fails, so the
# SavedModel must stand on core TensorFlow alone.
_PLAIN_TF_CLIENT = textwrap.dedent("""
    import json, sys
    sys.modules["tfgmm"] = None
    sys.modules["tensorflow_probability"] = None
    import numpy as np
    import tensorflow as tf

    path, x_path = sys.argv[1], sys.argv[2]
    x = tf.constant(np.load(x_path), tf.float32)
    loaded = tf.saved_model.load(path)
    out = {}
    for name in ("serving_default", "responsibilities", "assign"):
      fn = loaded.signatures[name]
      out[name] = {k: v.numpy().tolist() for k, v in fn(x=x).items()}
      out[name + "_spec"] = {k: [v.dtype.name, v.shape.as_list()]
                             for k, v in fn.structured_outputs.items()}
    result = loaded.signatures["sample"](n=tf.constant(4, tf.int32),
                                         seed=tf.constant(7, tf.int64))
    out["sample"] = {k: v.numpy().tolist() for k, v in result.items()}
    print(json.dumps(out))
""")


def run_plain_tf(path, x, tmp_path):
  """A tfgmm export's signatures on x, run by plain TensorFlow (a dict)."""
  x_path = tmp_path / "x.npy"
  np.save(x_path, x.astype(np.float32))
  return run_client(_PLAIN_TF_CLIENT, [path, x_path], tmp_path)


# ----------------------------------------- the diagonal family's posteriors


def make_prior(d, dtype=tf.float64, alpha0=0.5, m0=0.3, beta0=0.7, a0=1.5,
               b0=0.8):
  return diag.Posterior(tf.constant(alpha0, dtype),
                         tf.constant(np.full(d, m0), dtype),
                         tf.constant(beta0, dtype), tf.constant(a0, dtype),
                         tf.constant(np.full(d, b0), dtype))


def random_posterior(rng, k, d, dtype=tf.float64):
  return diag.Posterior(
      tf.constant(rng.uniform(1.0, 20.0, k), dtype),
      tf.constant(rng.normal(0, 2, (k, d)), dtype),
      tf.constant(rng.uniform(0.5, 30.0, (k, d)), dtype),
      tf.constant(rng.uniform(2.0, 15.0, (k, d)), dtype),
      tf.constant(rng.uniform(0.5, 10.0, (k, d)), dtype))


def mixture_data(rng, n, d, k=3, spread=4.0):
  means = rng.normal(0, spread, (k, d))
  labels = rng.integers(k, size=n)
  return means[labels] + rng.normal(size=(n, d)) * rng.uniform(0.5, 1.5, d)


# ----------------------------------------------------------- the benchmark

# scripts/benchmark.py stays a script: `make benchmark` runs it by path and
# it re-runs its own file for its worker processes
# ([sys.executable, __file__, "--cold-worker", ...]), and scripts/ is not a
# package (it holds the command-line shims, not library code). So the tests
# load it from its path, here and nowhere else.
BENCHMARK_SCRIPT = SCRIPTS / "benchmark.py"


def load_benchmark():
  """scripts/benchmark.py as a fresh module."""
  spec = importlib.util.spec_from_file_location("benchmark", BENCHMARK_SCRIPT)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module
