"""The compiled CAVI and statistics loops, traced once per family and dtype.

`run_cavi` and `statistics` wrap `inference.cavi` and
`inference.statistics_and_log_likelihood` in `tf.function`s whose input
signatures leave every dimension unknown, so one trace serves any N, K, D and
any number of restarts R. The model's full-data fit, its initialisation
search and the scikit-learn face all run through them. `kl_divergence` and
`posterior_from_responsibilities` compile a family's KL and its global step
from responsibilities the same way: run eagerly, each is a few hundred
small ops (several milliseconds), and the search and `elbo` call them
outside any compiled loop.
"""

import functools

import numpy as np
import tensorflow as tf

from tfgmm._engine import inference
from tfgmm.families import diag


def shape_free_signature(family, dtype, batched):
  """Input specs with every dimension unknown: one trace serves any N, K, D.

  Returns:
    (x spec, q spec, prior spec) for the family; q gains a leading restart
    axis when `batched`.
  """
  lead = 1 if batched else 0
  posterior = family.posterior_type
  spec = lambda rank: tf.TensorSpec([None] * rank, dtype)  # noqa: E731
  return (spec(2), posterior(*[spec(r + lead) for r in family.field_ranks]),
          posterior(*[spec(r) for r in family.prior_ranks]))


def _weight_spec(dtype, weighted):
  return (tf.TensorSpec([None], dtype),) if weighted else ()


@functools.lru_cache(maxsize=None)
def _compiled_cavi(family, dtype, weight_prior, weighted):
  """`inference.cavi` traced once per family, dtype, weight prior and weighting.

  Restarts run with a leading restart axis R, full-data CAVI with R = 1.
  """
  x, q, prior = shape_free_signature(family, dtype, batched=True)

  def cavi(x, q, prior, max_iter, tol, chunk, drop_margin, min_iter, scale,
           *sample_weight):
    return inference.cavi(x, q, prior, max_iter, tol, chunk, weight_prior,
                      *sample_weight, family=family, drop_margin=drop_margin,
                      min_iter=min_iter, scale=scale)

  # autograph=False: the math uses tf.while_loop itself, and autograph's
  # source conversion would cost most of the first call's time.
  return tf.function(cavi, autograph=False, input_signature=(
      x, q, prior, tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.float64),
      tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.float64),
      tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.float64))
                     + _weight_spec(dtype, weighted))


@functools.lru_cache(maxsize=None)
def _compiled_statistics(family, dtype, weighted):
  """`inference.statistics_and_log_likelihood` traced once per family and dtype."""
  x, q, _ = shape_free_signature(family, dtype, batched=False)

  def statistics(x, q, chunk, log_weights, *sample_weight):
    return inference.statistics_and_log_likelihood(
        x, q, chunk, log_weights, *sample_weight, family=family)

  return tf.function(statistics, autograph=False,
                     input_signature=(x, q, tf.TensorSpec([], tf.int32),
                                      tf.TensorSpec([None], tf.float64))
                     + _weight_spec(dtype, weighted))


@functools.lru_cache(maxsize=None)
def _compiled_kl(family, dtype, weight_prior):
  """`family.kl_divergence` traced once per family, dtype and weight prior."""
  _, q, prior = shape_free_signature(family, dtype, batched=False)

  def kl(q, prior):
    return family.kl_divergence(q, prior, weight_prior)

  return tf.function(kl, autograph=False, input_signature=(q, prior))


@functools.lru_cache(maxsize=None)
def _compiled_posterior(family, dtype, weight_prior, weighted):
  """The CAVI global step from responsibilities, traced once per family,
  dtype, weight prior and weighting (responsibilities of any rank)."""
  x, _, prior = shape_free_signature(family, dtype, batched=False)

  def posterior(x, responsibilities, prior, scale, *sample_weight):
    return family.posterior_from_statistics(
        family.sufficient_statistics(x, responsibilities, *sample_weight),
        prior, scale, weight_prior)

  return tf.function(posterior, autograph=False, input_signature=(
      x, tf.TensorSpec(None, dtype), prior, tf.TensorSpec([], tf.float64))
                     + _weight_spec(dtype, weighted))


def _cast(posterior, dtype):
  """Every field of a posterior (or prior) tuple cast to `dtype`."""
  return type(posterior)(*[tf.cast(t, dtype) for t in posterior])


def _weight_args(sample_weight, dtype):
  return () if sample_weight is None else (tf.cast(sample_weight, dtype),)


def run_cavi(x, q, prior, max_iter, tol, chunk, weight_prior="dirichlet",
             sample_weight=None, family=None, drop_margin=np.inf,
             min_iter=0, scale=1.0):
  """`inference.cavi` compiled; q may be unbatched (run as one restart).

  `family`: the model's `Family` (None: the diagonal one). `drop_margin`
  and `min_iter` race restarts (see `inference.cavi`); the default
  waits for every restart to converge. `scale`: x is a sample standing in
  for `scale` times as many rows.
  """
  family = family or diag.FAMILY
  dtype = x.dtype
  batched = len(q.weight_concentration.shape) == 2
  if not batched:
    q = type(q)(*[t[None] for t in q])
  q, history, converged = _compiled_cavi(
      family, dtype, weight_prior, sample_weight is not None)(
          x, _cast(q, dtype), _cast(prior, dtype),
          tf.constant(max_iter, tf.int32), tf.constant(tol, tf.float64),
          tf.constant(chunk, tf.int32), tf.constant(drop_margin, tf.float64),
          tf.constant(min_iter, tf.int32), tf.constant(scale, tf.float64),
          *_weight_args(sample_weight, dtype))
  if not batched:
    q = type(q)(*[t[0] for t in q])
    history = history[..., 0]
  return q, history, converged


def statistics(family, x, q, chunk, log_weights, sample_weight=None):
  """`diag.FAMILY.statistics_and_log_likelihood` compiled: (statistics, total)."""
  return _compiled_statistics(family, x.dtype, sample_weight is not None)(
      x, q, tf.constant(chunk, tf.int32), tf.cast(log_weights, tf.float64),
      *_weight_args(sample_weight, x.dtype))


def kl_divergence(family, q, prior, weight_prior="dirichlet"):
  """`family.kl_divergence` compiled: KL(q || p), a scalar in q's dtype.

  Eagerly, the KL's few hundred small ops cost about 10 ms a call; a bound
  computed outside a training step (`BayesianGMM.elbo`, the streamed CAVI)
  calls it once per evaluation.
  """
  dtype = q.mean_loc.dtype
  return _compiled_kl(family, dtype, weight_prior)(_cast(q, dtype),
                                                   _cast(prior, dtype))


def posterior_from_responsibilities(family, x, responsibilities, prior,
                                    scale=1.0, weight_prior="dirichlet",
                                    sample_weight=None):
  """The CAVI global step from responsibilities, compiled: `family`'s
  `posterior_from_statistics` of x's `sufficient_statistics`.

  Args:
    x: data, [N, D], in the prior's dtype.
    responsibilities: r, [N, K] (or [R, N, K] for R restarts).
    prior: the prior `Posterior`.
    scale: the statistics count `scale` times (a sample standing in for
      more rows).
    weight_prior: "dirichlet" or "dirichlet_process".
    sample_weight: optional w, [N].

  Returns:
    The `Posterior` ([K, ...], or [R, K, ...]) in the prior's dtype.
  """
  dtype = x.dtype
  return _compiled_posterior(family, dtype, weight_prior,
                             sample_weight is not None)(
      x, tf.cast(responsibilities, dtype), _cast(prior, dtype),
      tf.constant(scale, tf.float64), *_weight_args(sample_weight, dtype))
