"""The loops every covariance family runs on: E-step passes, CAVI, chunked maps.

A family (`tfgmm.families.base.Family`) supplies the model-specific pieces:
`log_rho`, `sufficient_statistics`, `zero_statistics`, `natural_update` and
`kl_divergence`. The functions here only move data through them: one E-step
over all rows in chunks (`statistics_and_log_likelihood`), coordinate ascent
to convergence with optional vectorised restarts (`cavi`), a row-chunked map
that bounds temporaries whatever N is (`map_chunks`), and the mixture
predictive built from a family's per-component density
(`predictive_functions`). Only core TensorFlow ops are used, so exported
graphs load with plain TensorFlow.
"""

import math

import tensorflow as tf

from tfgmm._engine import weight_priors

def as_float64(value):
  """A float64 tensor of a tensor or a Python number.

  `tf.cast` of a Python float converts it to float32 first, losing digits.
  """
  if tf.is_tensor(value):
    return tf.cast(value, tf.float64)
  return tf.constant(value, tf.float64)


def predictive_functions(component_log_prob):
  """A family's mixture predictive from its per-component log density.

  Args:
    component_log_prob: maps (x [B, D], q) to log p_k(x_n), [B, K].

  Returns:
    (joint, log_prob, responsibilities): functions of
    (x, q, log_mean_weights=None) giving log(E[pi_k] p_k(x_n)) [B, K], its
    logsumexp over k, log p(x | data) [B], and p(z = k | x, data) [B, K].
    `log_mean_weights` is log E[pi], [K]; None computes the Dirichlet one
    from q (see `log_expected_weights` for the stick-breaking prior).
  """

  def joint(x, q, log_mean_weights=None):
    if log_mean_weights is None:
      log_mean_weights = weight_priors.log_expected_weights(
          tf.cast(q.weight_concentration, tf.float64))            # [K]
    return (tf.expand_dims(tf.cast(log_mean_weights, x.dtype), -2)
            + component_log_prob(x, q))                           # [B, K]

  def log_prob(x, q, log_mean_weights=None):
    return tf.reduce_logsumexp(joint(x, q, log_mean_weights), -1)  # [B]

  def responsibilities(x, q, log_mean_weights=None):
    return tf.nn.softmax(joint(x, q, log_mean_weights), -1)       # [B, K]

  return joint, log_prob, responsibilities


def normalize(log_rho):
  """(logsumexp_k log_rho, softmax_k log_rho): log evidence, responsibilities.

  ```none
  m = max_k log_rho,  e = exp(log_rho - m),
  ll = m + log sum_k e,  r = e / sum_k e
  ```
  One exp over the [..., K] block instead of `tf.reduce_logsumexp`'s and a
  second one for r: the E-step's largest elementwise cost.

  Args:
    log_rho: [..., K].

  Returns:
    (ll [...], r [..., K]).
  """
  peak = tf.stop_gradient(
      tf.reduce_max(log_rho, -1, keepdims=True))                  # [..., 1]
  e = tf.exp(log_rho - peak)                                      # [..., K]
  total = tf.reduce_sum(e, -1, keepdims=True)                     # [..., 1]
  return tf.squeeze(peak + tf.math.log(total), -1), e / total


def map_chunks(fn, x, chunk):
  """Applies `fn` to row chunks of x and concatenates the results.

  Bounds the temporaries of `fn` to `chunk` rows whatever x's length; works
  eagerly, in tf.function and in exported graphs, and is differentiable.

  Args:
    fn: maps [C, D] to [C, ...].
    x: [N, D].
    chunk: rows per call, an int or int32 scalar tensor.

  Returns:
    [N, ...], the concatenation of fn over the chunks.
  """
  n = tf.shape(x)[0]
  num_chunks = (n + chunk - 1) // chunk
  sample = fn(x[:1])
  out = tf.TensorArray(sample.dtype, size=num_chunks, infer_shape=False,
                       element_shape=tf.TensorShape([None]).concatenate(
                           sample.shape[1:]))

  def body(i, out):
    start = i * chunk
    return i + 1, out.write(i, fn(x[start:start + chunk]))

  _, out = tf.while_loop(lambda i, _: i < num_chunks, body,
                         (tf.constant(0), out))
  result = out.concat()
  return tf.reshape(result, tf.concat([[n], tf.shape(sample)[1:]], 0))


def statistics_and_log_likelihood(x, q, chunk, log_weights=None,
                                  sample_weight=None, *, family):
  """One E-step over all rows of x, in chunks.

  Args:
    x: data, [N, D].
    q: `Posterior`.
    chunk: rows per chunk, an int or int32 scalar tensor.
    log_weights: E[log pi] for `log_rho` ([R..., K]); None for Dirichlet.
    sample_weight: optional w, [N].
    family: the model's `Family`, providing `log_rho`,
      `sufficient_statistics` and `zero_statistics`.

  Returns:
    (stats, total) where stats are the float64 statistics of x under the optimal
    responsibilities for q and total = sum_n w_n logsumexp_k log_rho[n, k]
    (shape [R] when q has a leading restart dimension, else scalar).
  """
  n = tf.shape(x)[0]
  num_chunks = (n + chunk - 1) // chunk

  def body(i, stats, total):
    rows = x[i * chunk:(i + 1) * chunk]                           # [C, D]
    lr = family.log_rho(rows, q, log_weights)                     # [C, K]
    ll, resp = normalize(lr)                                      # [C], [C, K]
    w = None
    if sample_weight is not None:
      w = sample_weight[i * chunk:(i + 1) * chunk]                # [C]
      ll = ll * w
    batch = family.sufficient_statistics(rows, resp, w)
    stats = type(stats)(*[u + tf.cast(v, tf.float64)
                          for u, v in zip(stats, batch)])
    return i + 1, stats, total + tf.reduce_sum(tf.cast(ll, tf.float64), -1)

  # Dynamic shapes (tf.function may relax static ones when retracing).
  # Two chunks in flight: each chunk's ops already use every intra-op
  # thread, and the default 10 kept up to 10 chunks' temporaries alive (a
  # 1e6 x 10 fit's peak varied 68-96 MB; with 2, 60-63 MB at the same
  # speed; with 1, 25% slower).
  zeros = family.zero_statistics(q)
  _, stats, total = tf.while_loop(
      lambda i, *_: i < num_chunks, body,
      (tf.constant(0), zeros, tf.reduce_sum(zeros.counts, -1)),
      parallel_iterations=2)
  return stats, total


def cavi(x, q, prior, max_iter, tol, chunk, weight_prior="dirichlet",
         sample_weight=None, *, family, drop_margin=None, min_iter=0,
         scale=1.0):
  """Coordinate-ascent VI on all of x until the bound per point settles.

  Each iteration is one E-step over x (in chunks) and the closed-form global
  step (Bishop 10.46-10.63; for `diag_independent`, q(mu) then q(tau)). One
  loop serves every model family: it calls the family's `log_rho`,
  `sufficient_statistics`, `natural_update` and `kl_divergence`. Stops after
  `max_iter` iterations or when the bound per point rose by less than `tol`
  nats.

  Args:
    x: data, [N, D].
    q: initial `Posterior`.
    prior: prior `Posterior`.
    max_iter: int32 scalar.
    tol: scalar, nats per data point.
    chunk: rows per E-step chunk, an int or int32 scalar tensor.
    weight_prior: "dirichlet" or "dirichlet_process".
    sample_weight: optional w, [N]; "per point" then means per unit of
      weight (N = sum w).
    family: the model's `Family`.
    drop_margin: None, or a float64 scalar (nats per point): with restarts,
      a restart whose bound trails the best restart's by more than this
      after `min_iter` iterations counts as done (it is still updated, but
      the loop no longer waits for it to converge). inf turns it off.
    min_iter: int32 scalar, the iterations before `drop_margin` applies.
    scale: s, a float64 scalar: x stands in for s times as many rows (a
      sample of the data), so each global step counts the statistics s
      times (`natural_update`'s s) and the bound is per represented point,
      mean logsumexp log_rho - KL / (s N).

  Returns:
    (q, history, converged): the final `Posterior`; float64 [iterations, 2]
    (or [iterations, 2, R] with R restarts) holding, at each iteration's
    E-step, the mean of logsumexp_k log_rho and KL / N (their difference is
    the bound per point, which never decreases); and whether every restart
    met tol (at some iteration) or was dropped. A restart stops counting
    once it has met tol: the loop ends when every restart has.
  """
  n = (tf.cast(tf.shape(x)[0], tf.float64) if sample_weight is None
       else tf.reduce_sum(tf.cast(sample_weight, tf.float64)))
  scale = as_float64(scale)
  history = tf.TensorArray(tf.float64, size=0, dynamic_size=True)
  tol = tf.cast(tol, tf.float64)
  as64 = lambda p: type(p)(*[tf.cast(t, tf.float64) for t in p])  # noqa: E731

  def body(i, q, history, previous, done):
    log_weights = weight_priors.expected_log_weights(
        tf.cast(q.weight_concentration, tf.float64),
        tf.cast(prior.weight_concentration, tf.float64), weight_prior)
    stats, total = statistics_and_log_likelihood(
        x, q, chunk, log_weights, sample_weight, family=family)
    # The KL of float64 parameters: in float32 its rounding alone can
    # exceed a converged iteration's gain in the bound.
    kl = family.kl_divergence(as64(q), as64(prior), weight_prior) / (
        n * scale)
    bound = total / n - kl
    q = family.natural_update(q, stats, prior, scale, 1.0, weight_prior)
    done = tf.logical_or(done, tf.abs(bound - previous) < tol)
    if drop_margin is not None:
      # Racing: a restart far behind the leader is not waited for.
      trailing = bound < tf.reduce_max(bound) - tf.cast(drop_margin,
                                                        tf.float64)
      done = tf.logical_or(done, tf.logical_and(i + 1 >= min_iter, trailing))
    return i + 1, q, history.write(i, tf.stack([total / n, kl])), bound, done

  def cond(i, q, history, previous, done):
    del q, history, previous
    return tf.logical_and(i < max_iter,
                          tf.logical_not(tf.reduce_all(done)))

  shape = tf.shape(q.weight_concentration)[:-1]                   # [R] or []
  _, q, history, _, done = tf.while_loop(
      cond, body,
      (tf.constant(0), q, history,
       tf.fill(shape, tf.constant(-math.inf, tf.float64)),
       tf.fill(shape, False)))
  return q, history.stack(), tf.reduce_all(done)


def history_dict(history, log_det):
  """Per-iteration metrics in data units from `inference.cavi`'s [T, 2] history.

  Args:
    history: float [T, 2]: mean logsumexp log_rho and KL / N per iteration,
      in standardised units.
    log_det: log |dz/dx| of the standardisation (its mean over the rows
      when missing values make it vary).

  Returns:
    dict of lists: `loss`, `expected_log_likelihood`, `kl`.
  """
  log_likelihood = history[:, 0] + log_det
  return {"loss": (history[:, 1] - log_likelihood).tolist(),
          "expected_log_likelihood": log_likelihood.tolist(),
          "kl": history[:, 1].tolist()}
