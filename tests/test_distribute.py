"""Training under `tf.distribute` equals single-device training on the same batches.

Each replica sees a slice of every global batch. The natural step sums the
slices' statistics and rows over the replicas (`BayesianGMM._replica_sum`),
so every replica takes the global batch's step; without that, each replica
would learn from its slice alone.

Logical devices and TF_CONFIG must be set before TensorFlow initialises, so
the fits run in fresh processes (tests/distribute/scenarios.py), started at
once: one with two logical CPUs under a MirroredStrategy, and two local
workers of a MultiWorkerMirroredStrategy on 127.0.0.1. They fit 1005 rows in
global batches of 250 (the last, 5 rows, splits 3 + 2) for two epochs.

Tolerance: the largest difference of a posterior field, relative to the
field's largest magnitude (the metrics: relative to each value). Measured:
about 3e-15 in float64 and 2e-6 in float32.
"""

import json
import os
import pathlib
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

SCRIPT = pathlib.Path(__file__).parent / "distribute" / "scenarios.py"
ROOT = pathlib.Path(__file__).parent.parent
TIMEOUT = 300  # seconds for all the processes (a loaded machine)
TOLERANCE = {"float64": 1e-10, "float32": 1e-5}
NATURAL = {
    "natural_float64": "float64",
    "natural_float32_full": "float32",
    "natural_float32_missing_weighted": "float32",
}


def _env(**extra):
  env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
  env.update(TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="",
             PYTHONPATH=os.pathsep.join(
                 filter(None, [str(ROOT), env.get("PYTHONPATH")])))
  env.update(extra)
  return env


def _free_ports(n):
  sockets = [socket.socket() for _ in range(n)]
  try:
    for s in sockets:
      s.bind(("127.0.0.1", 0))
    return [s.getsockname()[1] for s in sockets]
  finally:
    for s in sockets:
      s.close()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """Runs the mirrored process and the two workers concurrently.

  Returns:
    dict: name -> (return code or None on timeout, output, result path).
  """
  tmp = tmp_path_factory.mktemp("distribute")
  # name -> (script arguments, result file, environment)
  jobs = {"mirrored": (["mirrored", str(tmp / "mirrored.json")],
                       tmp / "mirrored.json", _env())}
  cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
  for index in range(2):
    config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
    jobs[f"worker {index}"] = (["worker", str(tmp / "worker-{task}.json")],
                               tmp / f"worker-{index}.json",
                               _env(TF_CONFIG=json.dumps(config)))
  logs = {name: tmp / f"{name.replace(' ', '-')}.log" for name in jobs}
  processes = {}
  for name, (args, _, env) in jobs.items():
    with open(logs[name], "w", encoding="utf-8") as log:
      processes[name] = subprocess.Popen(
          [sys.executable, str(SCRIPT), *args], env=env, stdout=log,
          stderr=subprocess.STDOUT)
  deadline = time.monotonic() + TIMEOUT
  done = {}
  for name, process in processes.items():
    try:
      code = process.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
      process.kill()
      process.wait()
      code = None
    done[name] = (code, logs[name].read_text(encoding="utf-8"),
                  jobs[name][1])
  return done


def _results(runs, name):
  code, output, path = runs[name]
  if code != 0:
    status = f"timed out after {TIMEOUT} s" if code is None else (
        f"exited with {code}")
    pytest.fail(f"{name} {status}:\n{output[-4000:]}")
  return json.loads(path.read_text(encoding="utf-8"))


def _field_errors(run, reference):
  """Largest difference of each posterior field over its largest magnitude."""
  return [float(np.max(np.abs(np.subtract(a, b))) / np.max(np.abs(b)))
          for a, b in zip(run["posterior"], reference["posterior"])]


def _assert_matches(run, reference, tol):
  errors = _field_errors(run, reference)
  assert max(errors) < tol, errors
  for key, values in reference["history"].items():
    np.testing.assert_allclose(run["history"][key], values, rtol=tol,
                               err_msg=key)
  assert run["natural_steps"] == reference["natural_steps"]
  # Every replica holds the same q.
  assert run["replica_spread"] == 0.0


@pytest.fixture(scope="module")
def mirrored(runs):
  results = _results(runs, "mirrored")
  assert results["replicas"] == 2
  return results


@pytest.mark.parametrize("scenario", sorted(NATURAL))
def test_mirrored_natural_matches_single_device(mirrored, scenario):
  run = mirrored[scenario]
  _assert_matches(run["distributed"], run["single"],
                  TOLERANCE[NATURAL[scenario]])
  assert run["single"]["natural_steps"] == 10  # 5 batches, 2 epochs


def test_mirrored_natural_without_all_reduce_differs(mirrored):
  # The same fit with `_replica_sum` switched off: each replica steps on its
  # slice alone. The tolerance above would catch it many times over.
  run = mirrored["natural_float64"]
  errors = _field_errors(run["unreduced"], run["single"])
  assert max(errors) > 1e4 * TOLERANCE["float64"], errors
  assert min(errors) > 1e-3, errors


def test_mirrored_gradient_matches_single_device(mirrored):
  run = mirrored["gradient_float64"]
  _assert_matches(run["distributed"], run["single"], TOLERANCE["float64"])


def test_multi_worker_natural_matches_single_device(runs):
  # Two worker processes, one CPU replica each, collectives over loopback.
  run, other = [_results(runs, f"worker {i}")["natural_float64"]
                for i in range(2)]
  assert run["replicas"] == other["replicas"] == 2
  _assert_matches(run["distributed"], run["single"], TOLERANCE["float64"])
  # Both workers hold the same q.
  assert other["distributed"]["posterior"] == run["distributed"]["posterior"]
