"""The per-point outputs in data units, shared by the model and the exporter.

`predict` standardises rows, runs a family's posterior predictive on row
chunks and adds the standardisation's log-Jacobian; `compiled_predict` is
the same traced once per output, family and dtype. The exporter builds its
serving functions from `predict` alone, so a SavedModel computes exactly
what the model does, with core TensorFlow ops only.
"""

import functools
import math
from typing import Any, NamedTuple

import tensorflow as tf

from tfgmm._engine import inference
from tfgmm._engine import loops


class ServingState(NamedTuple):
  """A fitted model's inputs to `predict` (see `BayesianGMM.serving_state`).

  Attributes:
    family: the `Family`.
    posterior: q in standardised units, the model's dtype.
    log_mean_weights: log E[pi], [K], the model's dtype.
    feature_loc, feature_scale: the standardisation, float64 [D] each.
    chunk: rows per chunk of the predictive, an int.
    n_features: D.
  """
  family: Any
  posterior: Any
  log_mean_weights: tf.Tensor
  feature_loc: tf.Tensor
  feature_scale: tf.Tensor
  chunk: int
  n_features: int


def row_log_det(z, scale):
  """log |dz/dx| of each row, [B]: -sum over its observed features of log s.

  Densities in data units add it; without missing values (NaN) it is the
  same for every row.
  """
  observed = tf.cast(tf.logical_not(tf.math.is_nan(z)), z.dtype)  # [B, D]
  log_scale = tf.cast(tf.math.log(scale), z.dtype)                # [D]
  return -tf.linalg.matvec(observed, log_scale)                   # [B]


def mean_row_log_det(z, scale, sample_weight=None, chunk=1 << 16):
  """The (weighted) mean of `row_log_det` over z's rows, a float.

  Row chunks of `chunk` bound the NaN mask's [C, D] temporaries (a full
  [N, D] mask would match the standardised data's own size), in one
  compiled call (`_compiled_log_det_sum`).
  """
  if z.shape[0] == 0:
    return math.nan
  weights = (() if sample_weight is None
             else (tf.cast(sample_weight, tf.float64),))
  total, weight = _compiled_log_det_sum(z.dtype, bool(weights))(
      z, tf.cast(scale, tf.float64), tf.constant(chunk, tf.int32),
      *weights)
  return float(total / weight)


@functools.lru_cache(maxsize=None)
def _compiled_log_det_sum(dtype, weighted):
  """(sum_n w_n row_log_det_n, sum_n w_n) over row chunks, traced once per
  dtype and weighting (w = 1 unweighted)."""

  def run(z, scale, chunk, *w):
    log_det = tf.cast(inference.map_chunks(
        lambda rows: row_log_det(rows, scale), z, chunk), tf.float64)  # [N]
    if weighted:
      return tf.reduce_sum(w[0] * log_det), tf.reduce_sum(w[0])
    return tf.reduce_sum(log_det), tf.cast(tf.size(log_det), tf.float64)

  specs = (tf.TensorSpec([None, None], dtype),
           tf.TensorSpec([None], tf.float64), tf.TensorSpec([], tf.int32))
  if weighted:
    specs += (tf.TensorSpec([None], tf.float64),)
  return tf.function(run, autograph=False, input_signature=specs)


def standardize(x, loc, scale, dtype):
  """(x - loc) / scale computed in float64, then cast to `dtype`, [N, D].

  A float32 model still removes the offset at float64 precision: casting
  x = 1e6 + z to float32 first would round z to float32's spacing at 1e6
  (0.0625) before the subtraction.

  Args:
    x: data in data units, [N, D], any float dtype.
    loc, scale: the standardisation, float64 [D].
    dtype: the model's dtype.
  """
  z = (tf.cast(x, tf.float64) - loc) / scale                      # [N, D]
  return tf.cast(z, dtype)


@functools.lru_cache(maxsize=None)
def compiled_predict(family, name, dtype):
  """`predict(family, name, ...)` traced once per output, family and dtype."""
  _, q, _ = loops.shape_free_signature(family, dtype, batched=False)
  features = tf.TensorSpec([None], tf.float64)
  return tf.function(
      functools.partial(predict, family, name), autograph=False,
      input_signature=(tf.TensorSpec([None, None], tf.float64), q,
                       tf.TensorSpec([None], tf.float64), features,
                       features, tf.TensorSpec([], tf.int32)))


def predict(family, name, x, q, log_mean_weights, loc, scale, chunk):
  """The per-point outputs in data units, shared by the model and the export.

  Args:
    family: the model's `Family`.
    name: "log_prob" ([N]) or "log_responsibilities" ([N, K]).
    x: data in data units, [N, D], any float dtype.
    q: `Posterior` in standardised units.
    log_mean_weights: log E[pi], [K] (any float dtype).
    loc, scale: the standardisation, float64 [D] each.
    chunk: rows per chunk.
  """
  z = standardize(x, loc, scale, q.mean_loc.dtype)               # [N, D]
  if name == "log_prob":
    return inference.map_chunks(
        lambda rows: (family.predictive_log_prob(rows, q, log_mean_weights)
                      + row_log_det(rows, scale)),
        z, chunk)                                                 # [N]
  if name == "log_responsibilities":
    def fn(rows):
      joint = family.predictive_joint_log_prob(
          rows, q, log_mean_weights)                              # [C, K]
      return joint - tf.reduce_logsumexp(joint, -1, keepdims=True)
    return inference.map_chunks(fn, z, chunk)                         # [N, K]
  raise ValueError(f"Unknown output {name!r}.")
