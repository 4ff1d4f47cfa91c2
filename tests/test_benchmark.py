"""The benchmark script: its true-mixture helpers and a smoke run."""

import importlib.util
import pathlib
import subprocess
import sys

import numpy as np
import scipy.stats

_SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "scripts" / "benchmark.py"


def load_benchmark():
  spec = importlib.util.spec_from_file_location("benchmark", _SCRIPT)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_true_log_prob_matches_scipy():
  benchmark = load_benchmark()
  data = benchmark.make_blobs("t", 500, 3, 4, 3.0, seed=0)
  mixture = data.mixture
  x = data.x_test[:50]
  want = np.log(sum(
      w * scipy.stats.multivariate_normal(m, np.diag(v)).pdf(x)
      for w, m, v in zip(mixture.weights, mixture.means, mixture.variances)))
  np.testing.assert_allclose(benchmark.true_log_prob(x, mixture), want,
                             rtol=1e-10)
  labels = benchmark.true_posterior_labels(x, mixture)
  assert labels.shape == (50,)


def test_quick_benchmark_runs_and_reports_targets():
  done = subprocess.run(
      [sys.executable, str(_SCRIPT), "--quick", "--datasets", "blog", "far",
       "--sampled-epochs", "3"],
      capture_output=True, text=True, timeout=600, check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  assert "tfgmm" in done.stdout and "GM(n_init=1)" in done.stdout
  assert "far" in done.stdout and "PASS" in done.stdout
  assert "nan" not in done.stdout.lower().replace("no nan", "")
