"""Pure tensor math of the diagonal Normal-Gamma Bayesian Gaussian mixture.

Every function takes and returns tensors; the Keras model, the compiled fit
loop, the SavedModel exporter and the tests all call these, so the model's
math lives in one place. Only core TensorFlow ops are used (no TFP), so an
exported graph loads with plain TensorFlow.

#### Mathematical Details

Model (Bishop 2006, section 10.2, with diagonal precisions), k = 1..K,
d = 1..D, n = 1..N:

```none
pi         ~ Dirichlet(alpha0 * ones(K))
tau[k, d]  ~ Gamma(a0, b0)                          # precision, rate b0
mu[k, d]   ~ Normal(m0[d], 1 / (beta0 * tau[k, d]))
z[n]       ~ Categorical(pi)
x[n, d]    ~ Normal(mu[z[n], d], 1 / tau[z[n], d])
```

The E-step, the global step, the KL and `cavi` also accept a `Posterior`
with a leading restart dimension R ([R, K] and [R, K, D] fields): several
initialisations then run as one vectorised computation.

Mean-field posterior q(pi) q(mu, tau) prod_n q(z[n]):

```none
q(pi)          = Dirichlet(alpha)                              # alpha: [K]
q(mu, tau)     = Normal(mu | m, 1 / (beta tau)) Gamma(tau | a, b)  # [K, D] each
q(z[n])        = Categorical(r[n])                             # r: [N, K]
```

#### References

[1] Bishop, C. M. Pattern Recognition and Machine Learning, 2006, sec. 10.2.
[2] Hoffman, Blei, Wang, Paisley. Stochastic Variational Inference. JMLR 2013.
"""

import math
import sys
from typing import NamedTuple

import numpy as np
import tensorflow as tf

_LOG_2PI = math.log(2.0 * math.pi)

# Rows per chunk of the predictive: its [chunk, K, D] temporaries stay within
# about `_CHUNK_ELEMENTS` elements whatever N is.
_CHUNK_ELEMENTS = 1 << 21
# Rows per chunk of the matmul-form E-step, which forms only [chunk, K] and
# [chunk, D] temporaries: larger chunks mean fewer loop iterations.
_ESTEP_ELEMENTS = 1 << 20


class Posterior(NamedTuple):
  """Parameters of q (or of the prior, broadcastable to the same shapes).

  Attributes:
    weight_concentration: Dirichlet concentration alpha, [K].
    mean_loc: Normal location m of the means, [K, D].
    mean_precision: precision multiplier beta of the means, [K, D].
    precision_concentration: Gamma shape a of the precisions, [K, D].
    precision_rate: Gamma rate b of the precisions, [K, D].
  """
  weight_concentration: tf.Tensor
  mean_loc: tf.Tensor
  mean_precision: tf.Tensor
  precision_concentration: tf.Tensor
  precision_rate: tf.Tensor


class Statistics(NamedTuple):
  """Weighted sufficient statistics of a batch under responsibilities r.

  Attributes:
    counts: N_k = sum_n w_n r_nk, [K].
    sum_x: S1_kd = sum_n w_n r_nk x_nd, [K, D].
    sum_xx: S2_kd = sum_n w_n r_nk x_nd^2, [K, D].
  """
  counts: tf.Tensor
  sum_x: tf.Tensor
  sum_xx: tf.Tensor


def as_float64(value):
  """A float64 tensor of a tensor or a Python number.

  `tf.cast` of a Python float converts it to float32 first, losing digits.
  """
  if tf.is_tensor(value):
    return tf.cast(value, tf.float64)
  return tf.constant(value, tf.float64)


def cast_posterior(q, dtype):
  """Casts every field of a `Posterior` to `dtype`."""
  return Posterior(*[tf.cast(t, dtype) for t in q])


def chunk_rows(n_components, n_features):
  """Rows per predictive chunk so that [rows, K, D] stays near 2**21 elements."""
  per_row = max(1, n_components * max(1, n_features))
  return max(256, _CHUNK_ELEMENTS // per_row)


def estep_chunk_rows(n_components, n_features):
  """Rows per chunk of `statistics_and_log_likelihood`, [rows, K + D] ~ 2**20.

  `n_components` counts every restart's components (K R) when restarts run
  together. At D = 50, K R = 100, chunks of `chunk_rows`' 419 rows made the
  loop overhead half of each CAVI iteration.
  """
  return max(256, _ESTEP_ELEMENTS // max(1, n_components + n_features))


# ---------------------------------------------------------------- expectations


WEIGHT_PRIORS = ("dirichlet", "dirichlet_process")


def stick_concentrations(weight_counts, prior_concentration):
  """The Beta posteriors of the truncated stick-breaking weights, [K] each.

  Under the Dirichlet-process prior the weight field of a `Posterior` holds
  c_k, the (scaled, interpolated) soft count of component k, and

  ```none
  q(v_k) = Beta(g1_k, g2_k),  g1_k = 1 + c_k,  g2_k = gamma0 + sum_{j>k} c_j
  ```
  (vb-math.md; Blei and Jordan 2006, eq. 18). The natural-gradient step is
  linear in c, so interpolating c interpolates (g1, g2) exactly; c >= 0 keeps
  both positive by construction. The last stick is v_K = 1 (its g's unused).

  Args:
    weight_counts: c, [..., K], non-negative.
    prior_concentration: gamma0 > 0, the DP concentration, scalar.

  Returns:
    (g1, g2), [..., K] each.
  """
  weight_counts = tf.convert_to_tensor(weight_counts)
  tail = tf.cumsum(weight_counts, -1, exclusive=True, reverse=True)  # [K]
  return 1.0 + weight_counts, prior_concentration + tail


def stick_log_weights(log_v, log_rest):
  """log pi_k = log v_k + sum_{j<k} log(1 - v_j), with v_K = 1, [..., K]."""
  log_v = tf.concat([log_v[..., :-1], tf.zeros_like(log_v[..., -1:])], -1)
  return log_v + tf.cumsum(log_rest, -1, exclusive=True)


def expected_log_weights(weight_concentration, prior_concentration=None,
                         weight_prior="dirichlet"):
  """E_q[log pi_k], [..., K].

  ```none
  Dirichlet:  digamma(alpha_k) - digamma(sum_j alpha_j)
  DP sticks:  E[log v_k] + sum_{j<k} E[log(1 - v_j)],
              E[log v] = digamma(g1) - digamma(g1 + g2),
              E[log(1 - v)] = digamma(g2) - digamma(g1 + g2)
  ```

  Args:
    weight_concentration: the weight field of a `Posterior` [..., K]: alpha
      (Dirichlet) or the stick counts c (see `stick_concentrations`).
    prior_concentration: gamma0 (DP only), scalar.
    weight_prior: "dirichlet" or "dirichlet_process".
  """
  if weight_prior == "dirichlet":
    return (tf.math.digamma(weight_concentration)
            - tf.math.digamma(tf.reduce_sum(weight_concentration, -1,
                                            keepdims=True)))
  g1, g2 = stick_concentrations(weight_concentration, prior_concentration)
  total = tf.math.digamma(g1 + g2)                                # [..., K]
  return stick_log_weights(tf.math.digamma(g1) - total,
                            tf.math.digamma(g2) - total)


def posterior_log_weights(q, prior, weight_prior="dirichlet"):
  """E_q[log pi] of a posterior under its prior, float64 [K] (or [R, K])."""
  return expected_log_weights(
      tf.cast(q.weight_concentration, tf.float64),
      tf.cast(prior.weight_concentration, tf.float64), weight_prior)


def log_expected_weights(weight_concentration, prior_concentration=None,
                         weight_prior="dirichlet"):
  """log E_q[pi_k], [..., K]: the predictive's mixing weights.

  Dirichlet: log(alpha_k / sum alpha). DP: E[pi_k] = E[v_k] prod_{j<k}
  E[1 - v_j] exactly (the sticks are independent under q), E[v] = g1/(g1+g2).
  """
  if weight_prior == "dirichlet":
    return (tf.math.log(weight_concentration)
            - tf.math.log(tf.reduce_sum(weight_concentration, -1,
                                        keepdims=True)))
  g1, g2 = stick_concentrations(weight_concentration, prior_concentration)
  log_total = tf.math.log(g1 + g2)                                # [..., K]
  return stick_log_weights(tf.math.log(g1) - log_total,
                            tf.math.log(g2) - log_total)


def expected_weights(weight_concentration, prior_concentration=None,
                     weight_prior="dirichlet"):
  """E_q[pi_k], [..., K]; see `log_expected_weights`."""
  return tf.exp(log_expected_weights(weight_concentration,
                                     prior_concentration, weight_prior))


def weight_offset(prior_concentration, weight_prior):
  """What the global step adds to the scaled counts in the weight field.

  alpha = alpha0 + s N (Dirichlet); c = 0 + s N (DP sticks).
  """
  return prior_concentration if weight_prior == "dirichlet" else 0.0


def log_rho(x, q, log_weights=None):
  """Unnormalised log responsibilities of the CAVI local step, [B, K].

  ```none
  log_rho[n, k] = E[log pi_k] + 0.5 sum_d (E[log tau_kd] - log 2 pi)
                  - 0.5 sum_d E[tau_kd] (x_nd - m_kd)^2 - 0.5 sum_d 1 / beta_kd
  ```
  (Bishop 10.46 with diagonal precisions). The square is expanded so the
  [B, K] term is two matmuls; no [B, K, D] tensor is formed.

  Args:
    x: data, [B, D].
    q: `Posterior` with [K] and [K, D] fields.
    log_weights: E[log pi], [K]; None computes the Dirichlet one from q (see
      `expected_log_weights` for the stick-breaking prior).

  Returns:
    log_rho: [B, K].
  """
  dtype = x.dtype
  q64 = cast_posterior(q, tf.float64)
  a, b = q64.precision_concentration, q64.precision_rate
  # Parameter-only terms are [K, D]: computed in float64, where digamma of a
  # large count minus log b keeps its digits.
  precision64 = a / b                                             # [K, D]
  log_precision = tf.math.digamma(a) - tf.math.log(b)             # [K, D]
  if log_weights is None:
    log_weights = expected_log_weights(q64.weight_concentration)
  const = tf.cast(tf.cast(log_weights, tf.float64)
                  + 0.5 * tf.reduce_sum(log_precision - _LOG_2PI, -1)
                  - 0.5 * tf.reduce_sum(precision64 * tf.square(q64.mean_loc),
                                        -1)
                  - 0.5 * tf.reduce_sum(1.0 / q64.mean_precision, -1),
                  dtype)                                          # [K]
  precision = tf.cast(precision64, dtype)                         # [K, D]
  weighted_loc = tf.cast(precision64 * q64.mean_loc, dtype)       # [K, D]
  quad = (tf.matmul(tf.square(x), precision, transpose_b=True)
          - 2.0 * tf.matmul(x, weighted_loc, transpose_b=True))    # [B, K]
  return tf.expand_dims(const, -2) - 0.5 * quad                  # [B, K]


def sufficient_statistics(x, responsibilities, sample_weight=None):
  """Soft counts, first and second moments of a batch; see `Statistics`.

  Args:
    x: data, [B, D].
    responsibilities: r, [B, K].
    sample_weight: optional w, [B].

  Returns:
    `Statistics` with counts [K], sum_x [K, D], sum_xx [K, D].
  """
  r = responsibilities
  if sample_weight is not None:
    r = r * sample_weight[:, None]                                # [B, K]
  counts = tf.reduce_sum(r, -2)                                   # [K]
  sum_x = tf.matmul(r, x, transpose_a=True)                       # [K, D]
  sum_xx = tf.matmul(r, tf.square(x), transpose_a=True)           # [K, D]
  return Statistics(counts, sum_x, sum_xx)


def add_statistics(s, t):
  """Elementwise sum of two `Statistics`."""
  return Statistics(*[u + v for u, v in zip(s, t)])


def zero_statistics(q):
  """float64 zero `Statistics` shaped like q's fields ([R..., K], [R..., K, D])."""
  zeros_kd = tf.zeros_like(q.mean_loc, tf.float64)
  return Statistics(tf.zeros_like(q.weight_concentration, tf.float64),
                    zeros_kd, zeros_kd)


# ------------------------------------------------------------- global updates


def natural_update(q, stats, prior, scale=1.0, step_size=1.0,
                   weight_prior="dirichlet"):
  """Natural-gradient step on q's global factors (Hoffman et al. 2013, eq. 35).

  ```none
  eta      = (alpha, beta, beta m, a, b + 0.5 beta m^2)
  eta_hat  = (alpha0 + s N, beta0 + s N, beta0 m0 + s S1, a0 + s N / 2,
              b0 + 0.5 (s S2 + beta0 m0^2))
  eta_new  = (1 - rho) eta + rho eta_hat
  ```
  With s = 1 (the batch is all the data) and rho = 1 this is the CAVI global
  step (Bishop 10.58, 10.60-10.63 with diagonal precisions). The step runs in
  float64 whatever q's dtype: it is [K, D] work, and the raw-moment form of b
  cancels in float32.

  Args:
    q: current `Posterior`.
    stats: `Statistics` of the batch.
    prior: `Posterior` of the prior, broadcastable to q's shapes.
    scale: s = N_total / batch size (the minibatch scale), scalar.
    step_size: rho in (0, 1], scalar.
    weight_prior: "dirichlet" (the weight field is alpha = alpha0 + s N) or
      "dirichlet_process" (it is the stick counts c = s N; see
      `stick_concentrations`).

  Returns:
    The updated `Posterior`, in q's dtype.
  """
  dtype = q.mean_loc.dtype
  q64, p64 = cast_posterior(q, tf.float64), cast_posterior(prior, tf.float64)
  counts, sum_x, sum_xx = [tf.cast(t, tf.float64) for t in stats]
  s = as_float64(scale)
  rho = as_float64(step_size)
  shape = tf.shape(q64.mean_loc)

  def mix(old, new):
    return (1.0 - rho) * old + rho * new

  alpha = mix(q64.weight_concentration,
              weight_offset(p64.weight_concentration, weight_prior)
              + s * counts)
  beta_hat = p64.mean_precision + s * counts[..., None]           # [K, D]
  beta = mix(q64.mean_precision, beta_hat)
  loc_natural = mix(q64.mean_precision * q64.mean_loc,
                    p64.mean_precision * p64.mean_loc + s * sum_x)
  a = mix(q64.precision_concentration,
          p64.precision_concentration + 0.5 * s * counts[..., None])
  rate_natural = mix(
      q64.precision_rate + 0.5 * q64.mean_precision * tf.square(q64.mean_loc),
      p64.precision_rate + 0.5 * (s * sum_xx + p64.mean_precision
                                  * tf.square(p64.mean_loc)))
  m = loc_natural / beta
  b = rate_natural - 0.5 * beta * tf.square(m)
  new = Posterior(alpha, tf.broadcast_to(m, shape), tf.broadcast_to(beta, shape),
                  tf.broadcast_to(a, shape), tf.broadcast_to(b, shape))
  return cast_posterior(new, dtype)


def statistics_from_posterior(q, prior, weight_prior="dirichlet"):
  """The statistics that q is the CAVI posterior of: inverts the global step.

  ```none
  N = alpha - alpha0,   S1 = beta m - beta0 m0,
  S2 = 2 (b - b0) + beta m^2 - beta0 m0^2
  ```
  (computed in float64). `posterior_from_statistics(stats, prior, s)` of the
  result rescales q's data to s times as many rows.
  """
  q64, p64 = cast_posterior(q, tf.float64), cast_posterior(prior, tf.float64)
  counts = q64.weight_concentration - weight_offset(
      p64.weight_concentration, weight_prior)                     # [K]
  sum_x = (q64.mean_precision * q64.mean_loc
           - p64.mean_precision * p64.mean_loc)                   # [K, D]
  sum_xx = (2.0 * (q64.precision_rate - p64.precision_rate)
            + q64.mean_precision * tf.square(q64.mean_loc)
            - p64.mean_precision * tf.square(p64.mean_loc))       # [K, D]
  return Statistics(counts, sum_x, sum_xx)


def posterior_from_statistics(stats, prior, scale=1.0,
                              weight_prior="dirichlet"):
  """The CAVI global step: q's globals from a batch's statistics (rho = 1)."""
  ones = tf.ones_like(stats.sum_x)                                # [K, D]
  like = Posterior(tf.ones_like(stats.counts), ones, ones, ones, ones)
  return natural_update(like, stats, prior, scale, 1.0, weight_prior)


def rescale(q, prior, scale, weight_prior="dirichlet"):
  """The CAVI posterior of q's data repeated `scale` times (a sample's fit
  scaled to the full data): the global step at s = scale of q's statistics.
  """
  return posterior_from_statistics(
      statistics_from_posterior(q, prior, weight_prior), prior, scale,
      weight_prior)


def posterior_from_unconstrained(*raw):
  """q from unconstrained coordinates: positive fields are exp(raw)."""
  weight, loc, mean_precision, concentration, rate = raw
  return Posterior(tf.exp(weight), tf.convert_to_tensor(loc),
                   tf.exp(mean_precision), tf.exp(concentration), tf.exp(rate))


def log_weight_field(weight_concentration):
  """log of q's weight field, [K], finite where the field is 0.

  Under the Dirichlet-process prior the field holds stick counts c_k, and an
  empty component's count is 0 (or rounds to 0 in float32): its logarithm
  would be -inf in an unconstrained variable, whose gradient steps then make
  NaN. The smallest normal number stands in for 0; exp maps it back to a
  count no computation can tell from 0.
  """
  tiny = np.finfo(weight_concentration.dtype.as_numpy_dtype).tiny
  return tf.math.log(tf.maximum(weight_concentration, tiny))      # [K]


def unconstrained_from_posterior(q):
  """The inverse of `posterior_from_unconstrained`, a tuple of tensors."""
  return (log_weight_field(q.weight_concentration), q.mean_loc,
          tf.math.log(q.mean_precision),
          tf.math.log(q.precision_concentration),
          tf.math.log(q.precision_rate))


# ------------------------------------------------------------------------- KL


def dirichlet_kl(concentration, prior_concentration):
  """KL(Dirichlet(c) || Dirichlet(c0)), scalar; c [K], c0 broadcastable."""
  c0 = tf.broadcast_to(prior_concentration, tf.shape(concentration))
  total = tf.reduce_sum(concentration, -1)
  total0 = tf.reduce_sum(c0, -1)
  return (tf.math.lgamma(total)
          - tf.reduce_sum(tf.math.lgamma(concentration), -1)
          - tf.math.lgamma(total0) + tf.reduce_sum(tf.math.lgamma(c0), -1)
          + tf.reduce_sum((concentration - c0)
                          * (tf.math.digamma(concentration)
                             - tf.math.digamma(total[..., None])), -1))


def gamma_kl(concentration, rate, prior_concentration, prior_rate):
  """Elementwise KL(Gamma(a, b) || Gamma(a0, b0)), rates b and b0."""
  a, b, a0, b0 = concentration, rate, prior_concentration, prior_rate
  return ((a - a0) * tf.math.digamma(a) - tf.math.lgamma(a)
          + tf.math.lgamma(a0) + a0 * (tf.math.log(b) - tf.math.log(b0))
          + a * (b0 - b) / b)


def normal_gamma_kl(q, prior):
  """Elementwise KL(q(mu, tau) || p(mu, tau)) of Normal-Gamma factors, [K, D].

  ```none
  KL = KL(Gamma(a, b) || Gamma(a0, b0))
       + 0.5 (beta0 / beta - 1 - log(beta0 / beta) + beta0 (a / b) (m - m0)^2)
  ```
  """
  ratio = prior.mean_precision / q.mean_precision
  return (gamma_kl(q.precision_concentration, q.precision_rate,
                   prior.precision_concentration, prior.precision_rate)
          + 0.5 * (ratio - 1.0 - tf.math.log(ratio)
                   + prior.mean_precision * q.precision_concentration
                   / q.precision_rate * tf.square(q.mean_loc - prior.mean_loc)))


def beta_kl(concentration1, concentration0, prior_concentration1,
            prior_concentration0):
  """Elementwise KL(Beta(a, b) || Beta(a0, b0)).

  ```none
  KL = log B(a0, b0) - log B(a, b) + (a - a0) digamma(a) + (b - b0) digamma(b)
       + (a0 - a + b0 - b) digamma(a + b)
  ```
  """
  a, b = concentration1, concentration0
  a0, b0 = prior_concentration1, prior_concentration0
  log_beta = lambda u, v: (tf.math.lgamma(u) + tf.math.lgamma(v)  # noqa: E731
                           - tf.math.lgamma(u + v))
  return (log_beta(a0, b0) - log_beta(a, b) + (a - a0) * tf.math.digamma(a)
          + (b - b0) * tf.math.digamma(b)
          + (a0 - a + b0 - b) * tf.math.digamma(a + b))


def weights_kl(weight_concentration, prior_concentration,
               weight_prior="dirichlet"):
  """KL(q(pi) || p(pi)), [...]: Dirichlet, or the K - 1 Beta sticks."""
  if weight_prior == "dirichlet":
    return dirichlet_kl(weight_concentration, prior_concentration)
  g1, g2 = stick_concentrations(weight_concentration, prior_concentration)
  ones = tf.ones_like(g1)
  kl = beta_kl(g1, g2, ones,
               tf.cast(prior_concentration, g1.dtype) * ones)     # [..., K]
  return tf.reduce_sum(kl[..., :-1], -1)                          # v_K = 1


def kl_divergence(q, prior, weight_prior="dirichlet"):
  """KL(q(pi) q(mu, tau) || p(pi) p(mu, tau)) summed over components, scalar."""
  return (weights_kl(q.weight_concentration, prior.weight_concentration,
                     weight_prior)
          + tf.reduce_sum(normal_gamma_kl(q, prior), [-2, -1]))


# ------------------------------------------------------- posterior predictive


def student_t_scale(q):
  """Per-feature scale of the predictive Student-t, [K, D].

  scale = sqrt(b (beta + 1) / (a beta))  (Bishop 10.81-10.82, diagonal).
  """
  return tf.sqrt(q.precision_rate * (q.mean_precision + 1.0)
                 / (q.precision_concentration * q.mean_precision))


def predictive_component_log_prob(x, q):
  """log StudentT_k(x_n) of each component's predictive, [B, K].

  ```none
  p_k(x) = prod_d StudentT(x_d | df = 2 a_kd, loc = m_kd, scale = s_kd)
  ```
  Forms a [B, K, D] tensor: call it on chunks (see `map_chunks`).
  """
  dtype = x.dtype
  q64 = cast_posterior(q, tf.float64)
  df64 = 2.0 * q64.precision_concentration                        # [K, D]
  scale64 = student_t_scale(q64)                                  # [K, D]
  # lgamma((df + 1) / 2) - lgamma(df / 2) subtracts two numbers of order
  # df log df: float32 would lose whole hundredths of a nat at df ~ 1e4.
  norm = tf.cast(tf.reduce_sum(
      tf.math.lgamma(0.5 * (df64 + 1.0)) - tf.math.lgamma(0.5 * df64)
      - 0.5 * tf.math.log(df64 * math.pi) - tf.math.log(scale64), -1),
                 dtype)                                           # [K]
  df, scale = tf.cast(df64, dtype), tf.cast(scale64, dtype)       # [K, D]
  y = (x[:, None, :] - tf.cast(q.mean_loc, dtype)) / scale        # [B, K, D]
  kernel = -0.5 * (df + 1.0) * tf.math.log1p(tf.square(y) / df)   # [B, K, D]
  return norm + tf.reduce_sum(kernel, -1)                         # [B, K]


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
      log_mean_weights = log_expected_weights(
          tf.cast(q.weight_concentration, tf.float64))            # [K]
    return (tf.expand_dims(tf.cast(log_mean_weights, x.dtype), -2)
            + component_log_prob(x, q))                           # [B, K]

  def log_prob(x, q, log_mean_weights=None):
    return tf.reduce_logsumexp(joint(x, q, log_mean_weights), -1)  # [B]

  def responsibilities(x, q, log_mean_weights=None):
    return tf.nn.softmax(joint(x, q, log_mean_weights), -1)       # [B, K]

  return joint, log_prob, responsibilities


# The exact posterior predictive of this model: a Student-t mixture.
(predictive_joint_log_prob, predictive_log_prob,
 predictive_responsibilities) = predictive_functions(
     predictive_component_log_prob)


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


def sample_predictive(n, seed, q, log_mean_weights=None):
  """Draws n points from the posterior predictive with stateless ops, [n, D].

  A component k ~ Categorical(E[pi]), then per feature
  x_d = m_kd + s_kd * Z / sqrt(G / nu) with Z ~ Normal(0, 1),
  G ~ Gamma(nu / 2, 1) * 2 (a chi-square with nu = 2 a_kd degrees of freedom).

  Args:
    n: number of draws, int32 scalar.
    seed: a shape [2] int seed for the stateless random ops.
    q: `Posterior`.
    log_mean_weights: log E[pi], [K]; None for the Dirichlet one of q.

  Returns:
    samples: [n, D] in q's dtype.
  """
  dtype = q.mean_loc.dtype
  seeds = tf.random.experimental.stateless_split(seed, 3)
  if log_mean_weights is None:
    log_mean_weights = log_expected_weights(q.weight_concentration)
  logits = log_mean_weights[None, :]                              # [1, K]
  component = tf.random.stateless_categorical(
      tf.cast(logits, tf.float64), n, seeds[0])[0]                # [n]
  loc = tf.gather(q.mean_loc, component)                          # [n, D]
  scale = tf.gather(student_t_scale(q), component)                # [n, D]
  half_df = tf.gather(q.precision_concentration, component)       # [n, D]
  normal = tf.random.stateless_normal(tf.shape(loc), seeds[1], dtype=dtype)
  gamma = tf.random.stateless_gamma(tf.shape(loc), seeds[2], alpha=half_df,
                                    dtype=dtype)                  # [n, D]
  return loc + scale * normal * tf.math.rsqrt(gamma / half_df)


# ------------------------------------------------------------- full-data CAVI


def statistics_and_log_likelihood(x, q, chunk, log_weights=None,
                                  sample_weight=None, family=None):
  """One E-step over all rows of x, in chunks.

  Args:
    x: data, [N, D].
    q: `Posterior`.
    chunk: rows per chunk, an int or int32 scalar tensor.
    log_weights: E[log pi] for `log_rho` ([R..., K]); None for Dirichlet.
    sample_weight: optional w, [N].
    family: the model's math module (this one, `_independent` or `_full`),
      providing `log_rho`, `sufficient_statistics` and `zero_statistics`;
      None for this module.

  Returns:
    (stats, total) where stats are the float64 statistics of x under the optimal
    responsibilities for q and total = sum_n w_n logsumexp_k log_rho[n, k]
    (shape [R] when q has a leading restart dimension, else scalar).
  """
  family = family or sys.modules[__name__]
  n = tf.shape(x)[0]
  num_chunks = (n + chunk - 1) // chunk

  def body(i, stats, total):
    rows = x[i * chunk:(i + 1) * chunk]                           # [C, D]
    lr = family.log_rho(rows, q, log_weights)                     # [C, K]
    ll = tf.reduce_logsumexp(lr, -1)                              # [C]
    resp = tf.exp(lr - ll[..., None])                             # [C, K]
    w = None
    if sample_weight is not None:
      w = sample_weight[i * chunk:(i + 1) * chunk]                # [C]
      ll = ll * w
    batch = family.sufficient_statistics(rows, resp, w)
    stats = type(stats)(*[u + tf.cast(v, tf.float64)
                          for u, v in zip(stats, batch)])
    return i + 1, stats, total + tf.reduce_sum(tf.cast(ll, tf.float64), -1)

  # Dynamic shapes (tf.function may relax static ones when retracing).
  zeros = family.zero_statistics(q)
  _, stats, total = tf.while_loop(
      lambda i, *_: i < num_chunks, body,
      (tf.constant(0), zeros, tf.reduce_sum(zeros.counts, -1)))
  return stats, total


def cavi(x, q, prior, max_iter, tol, chunk, weight_prior="dirichlet",
         sample_weight=None, family=None, drop_margin=None, min_iter=0,
         scale=1.0):
  """Coordinate-ascent VI on all of x until the bound per point settles.

  Each iteration is one E-step over x (in chunks) and the closed-form global
  step (Bishop 10.46-10.63; for `_independent`, q(mu) then q(tau)). One loop
  serves every model family: it calls the family's `log_rho`,
  `sufficient_statistics`, `natural_update` and `kl_divergence`. Stops after `max_iter` iterations or when the
  bound per point rose by less than `tol` nats.

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
    family: the model's math module; None for this one (the diagonal
      conjugate model).
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
  family = family or sys.modules[__name__]
  n = (tf.cast(tf.shape(x)[0], tf.float64) if sample_weight is None
       else tf.reduce_sum(tf.cast(sample_weight, tf.float64)))
  scale = as_float64(scale)
  history = tf.TensorArray(tf.float64, size=0, dynamic_size=True)
  tol = tf.cast(tol, tf.float64)
  as64 = lambda p: type(p)(*[tf.cast(t, tf.float64) for t in p])  # noqa: E731

  def body(i, q, history, previous, done):
    log_weights = expected_log_weights(
        tf.cast(q.weight_concentration, tf.float64),
        tf.cast(prior.weight_concentration, tf.float64), weight_prior)
    stats, total = statistics_and_log_likelihood(
        x, q, chunk, log_weights, sample_weight, family)
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


# ------------------------------------------------- the seed blog's estimator


def log_gamma_draws(rows, concentration, seed):
  """Reparameterised draws of log G, G ~ Gamma(a, 1), [B, *a.shape].

  ```none
  log G(a) = log G(a + 1) + log(U) / a,   U ~ Uniform(0, 1)
  ```

  (Marsaglia and Tsang 2000, section 6). TFP's ExpGamma(a) is drawn directly
  only at a + 1 >= 1: at small a its draws reach below log of the smallest
  float (a = 1 / 20 gives log G < -87 often), where its reparameterised
  gradient is NaN. The boost keeps every term finite and differentiable:
  d/da of log(U) / a is -log(U) / a^2. Needs TFP.

  Args:
    rows: B, the number of draws.
    concentration: a > 0, any shape.
    seed: shape [2] int seed.
  """
  import tensorflow_probability as tfp  # pylint: disable=import-outside-toplevel
  gamma_seed, uniform_seed = tf.unstack(
      tf.random.experimental.stateless_split(seed, 2))
  boosted = tfp.distributions.ExpGamma(concentration + 1.0, rate=1.0).sample(
      rows, seed=gamma_seed)                                      # [B, ...]
  uniform = tf.random.stateless_uniform(
      tf.shape(boosted), uniform_seed, dtype=boosted.dtype)       # [0, 1)
  return boosted + tf.math.log1p(-uniform) / concentration        # [B, ...]


def sampled_log_weights(rows, weight_concentration, seed,
                        prior_concentration=None, weight_prior="dirichlet"):
  """One reparameterised draw of log pi from q per row, [B, R..., K].

  Dirichlet: log pi = g - logsumexp(g), g_k ~ ExpGamma(alpha_k) (a Dirichlet
  draw in log space). Sticks: log v = h1 - logsumexp(h1, h2) with
  h ~ ExpGamma(g1), ExpGamma(g2), then `stick_log_weights`. The log-Gamma
  draws come from `log_gamma_draws`. Needs TFP.

  Args:
    rows: B, the number of draws.
    weight_concentration: q's weight field, [R..., K].
    seed: shape [2] int seed.
    prior_concentration: gamma0 (stick-breaking prior only).
    weight_prior: "dirichlet" or "dirichlet_process".
  """
  if weight_prior == "dirichlet":
    log_gamma = log_gamma_draws(rows, weight_concentration,
                                seed)                             # [B, R.., K]
    return log_gamma - tf.reduce_logsumexp(log_gamma, -1, keepdims=True)
  g1, g2 = stick_concentrations(weight_concentration, prior_concentration)
  log_gamma = log_gamma_draws(rows, tf.stack([g1, g2]),
                              seed)                               # [B, 2, R.., K]
  log_total = tf.reduce_logsumexp(log_gamma, 1)                   # [B, R.., K]
  return stick_log_weights(log_gamma[:, 0] - log_total,
                           log_gamma[:, 1] - log_total)


def sampled_log_likelihood(x, q, seed, prior_concentration=None,
                           weight_prior="dirichlet", independent=False):
  """log sum_k pi_k N(x_n | mu_k, 1 / tau_k) at one draw from q per row, [B].

  The TFP blog's estimator of E_q[log p(x_n | pi, mu, tau)], on this model's
  q: per row, log pi from `sampled_log_weights`, log tau ~ ExpGamma(a, b) and
  mu = m + eps / sqrt(beta tau) (conjugate) or m + eps / sqrt(lambda)
  (`independent`: the blog's own q(mu) q(tau)). All draws are
  reparameterised, so the gradient flows to q's parameters; by Jensen its
  mean is at least the analytic `log_rho` bound term. NaN entries of x are
  missing values: their per-feature terms are left out. Imports TensorFlow
  Probability lazily: training only.

  Args:
    x: [B, D].
    q: `Posterior` (optionally with a leading restart axis R).
    seed: shape [2] int seed.
    prior_concentration: gamma0 (stick-breaking prior only).
    weight_prior: "dirichlet" or "dirichlet_process".
    independent: q(mu) has its own precision lambda (`_independent`).

  Returns:
    [B] (or [R, B]) log-likelihoods.
  """
  seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int32), 3)
  rows = tf.shape(x)[0]
  lead_rank = q.weight_concentration.shape.rank - 1
  log_pi = sampled_log_weights(rows, q.weight_concentration, seeds[0],
                               prior_concentration, weight_prior)  # [B, R.., K]
  log_tau = (log_gamma_draws(rows, q.precision_concentration, seeds[1])
             - tf.math.log(q.precision_rate))                     # [B, K, D]
  eps = tf.random.stateless_normal(tf.shape(log_tau), seeds[2],
                                   dtype=x.dtype)                 # [B, K, D]
  log_mean_precision = tf.math.log(q.mean_precision)
  if not independent:
    log_mean_precision = log_mean_precision + log_tau
  mu = q.mean_loc + eps * tf.exp(-0.5 * log_mean_precision)       # [B, K, D]
  observed = tf.cast(tf.logical_not(tf.math.is_nan(x)), x.dtype)  # [B, D]
  filled = tf.where(observed > 0, x, tf.zeros_like(x))            # [B, D]
  row_shape = tf.concat([[rows], tf.ones([lead_rank + 1], tf.int32),
                         tf.shape(x)[-1:]], 0)
  filled = tf.reshape(filled, row_shape)                          # [B, 1, D]
  observed = tf.reshape(observed, row_shape)                      # [B, 1, D]
  component = 0.5 * tf.reduce_sum(
      observed * (log_tau - _LOG_2PI
                  - tf.exp(log_tau) * tf.square(filled - mu)), -1)  # [B, K]
  ll = tf.reduce_logsumexp(log_pi + component, -1)                # [B]
  if lead_rank:
    ll = tf.transpose(ll, list(range(1, lead_rank + 1)) + [0])    # [R, B]
  return ll
