"""Distributed fits for tests/test_distribute.py, each run in a fresh process.

Logical devices and TF_CONFIG must be set before TensorFlow initialises, so
the tests run this script in subprocesses:

  python scenarios.py mirrored OUT.json
      Two logical CPUs; each scenario fits once under a MirroredStrategy and
      once on one device (same data, same batches, same seed).
  python scenarios.py worker OUT-{task}.json
      One worker of a MultiWorkerMirroredStrategy (TF_CONFIG names the
      cluster) writes its result to OUT-<task index>.json; the chief (task 0)
      also fits on one device.

OUT.json maps a scenario to the posterior fields of each run (lists), its
metrics history, its `natural_steps` and the largest difference between
the replicas' copies of q.
"""

import contextlib
import json
import os
import sys
import time

ROWS = 1005        # the last global batch, 5 rows, splits unevenly (3 + 2)
GLOBAL_BATCH = 250
EPOCHS = 2


def blobs(seed=0, missing=False):
  import numpy as np  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(seed)
  x = rng.standard_normal((ROWS, 2))
  x[:300] += 3.0
  x[300:600] -= 3.0
  weights = rng.uniform(0.5, 2.0, ROWS)
  if missing:
    x[rng.random(x.shape) < 0.1] = np.nan
  return x, weights


# name -> (BayesianGMM kwargs, weighted, missing values)
SCENARIOS = {
    "natural_float64": (dict(dtype="float64"), False, False),
    "natural_float32_full": (dict(covariance_type="full"), False, False),
    "natural_float32_missing_weighted": (
        dict(missing="marginalize", weight_prior="dirichlet_process"),
        True, True),
    "gradient_float64": (dict(dtype="float64", method="gradient"), False,
                         False),
}


def fit(name, scope=None):
  """Fits scenario `name` (under `scope`, else on one device)."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  import tfgmm  # pylint: disable=import-outside-toplevel
  kwargs, weighted, missing = SCENARIOS[name]
  x, weights = blobs(missing=missing)
  weights = weights if weighted else None
  with scope or contextlib.nullcontext():
    model = tfgmm.BayesianGMM(3, 2, seed=1, **kwargs)
    model.compile()
  model.initialize(x, sample_weight=weights)
  if weights is None:
    data = dict(x=tfgmm.make_dataset(x, GLOBAL_BATCH, shuffle=False,
                                     missing=kwargs.get("missing", "error")))
  else:
    # Keras 3.15 cannot distribute (x, None, w) dataset elements (its first
    # batch's reduction meets the None): weighted arrays go to fit itself.
    data = dict(x=x, sample_weight=weights, batch_size=GLOBAL_BATCH,
                shuffle=False)
  history = model.fit(epochs=EPOCHS, verbose=0, **data).history
  copies = [[np.asarray(t) for t in getattr(v.value, "values", [v.value])]
            for v in model._raw_variables]  # pylint: disable=protected-access
  return {
      "posterior": [t.numpy().tolist() for t in model.posterior()],
      "history": {k: [float(np.ravel(v)[0]) for v in vs]
                  for k, vs in history.items()},
      "natural_steps": int(model.natural_steps.numpy()),
      "replica_spread": max(float(np.max(np.abs(c - c[0])))
                            for c in (np.stack(cs) for cs in copies)),
  }


def mirrored(out):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  cpu = tf.config.list_physical_devices("CPU")[0]
  tf.config.set_logical_device_configuration(
      cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
  from tfgmm import model as model_lib  # pylint: disable=import-outside-toplevel
  strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
  results = {"replicas": strategy.num_replicas_in_sync, "seconds": {}}
  for name in SCENARIOS:
    start = time.time()
    results[name] = {"single": fit(name),
                     "distributed": fit(name, strategy.scope())}
    results["seconds"][name] = time.time() - start
  # The same fit without the all-reduce: each replica steps on its own
  # slice (only the first replica's q is kept), as before the fix.
  summed = model_lib.BayesianGMM._replica_sum  # pylint: disable=protected-access
  model_lib.BayesianGMM._replica_sum = lambda self, values: values  # pylint: disable=protected-access
  try:
    results["natural_float64"]["unreduced"] = fit("natural_float64",
                                                  strategy.scope())
  finally:
    model_lib.BayesianGMM._replica_sum = summed  # pylint: disable=protected-access
  with open(out, "w", encoding="utf-8") as f:
    json.dump(results, f)


def worker(out):
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  strategy = tf.distribute.MultiWorkerMirroredStrategy(
      communication_options=tf.distribute.experimental.CommunicationOptions(
          timeout_seconds=120))
  task = strategy.cluster_resolver.task_id
  result = {"replicas": strategy.num_replicas_in_sync,
            "distributed": fit("natural_float64", strategy.scope())}
  if task == 0:
    result["single"] = fit("natural_float64")
  with open(out.format(task=task), "w", encoding="utf-8") as f:
    json.dump({"natural_float64": result}, f)


if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  {"mirrored": mirrored, "worker": worker}[sys.argv[1]](sys.argv[2])
