"""The diagonal Normal-Gamma mixture with values missing at random (NaN).

`diag`'s model (Bishop 2006, section 10.2, diagonal precisions) fitted to
data whose missing entries are NaN. Each point's likelihood is that of its
observed features only, which is exact for this model: given its component
the features of a point are independent, so integrating the missing ones out
of the product density leaves the product over the observed ones. Values are
assumed missing at random (Rubin 1976): whether an entry is missing may
depend on the observed values but not on the missing one, and the missingness
mechanism is then ignorable for inference on (pi, mu, tau).

Same calling conventions and names as `diag`, so the model swaps this
module in when the user asks for `missing="marginalize"`: tensors in, tensors
out; only core TensorFlow ops at module level (TFP is imported lazily by the
training-only sampled estimator), so exported graphs load with plain
TensorFlow; parameter-only terms in float64. With no NaN in x every function
gives `diag`'s result (tests/test_missing.py checks each to 1e-12).

#### Mathematical Details

With o_nd = 1 if x_nd is observed, else 0 (d = 1..D, k = 1..K):

```none
log p(x_n | z_n = k, mu, tau) = sum_d o_nd log Normal(x_nd | mu_kd, 1 / tau_kd)

log_rho[n, k] = E[log pi_k]
                + sum_d o_nd (0.5 (E[log tau_kd] - log 2 pi - 1 / beta_kd)
                              - 0.5 E[tau_kd] (x_nd - m_kd)^2)

N_k   = sum_n w_n r_nk              (the weights' counts: every row)
N_kd  = sum_n w_n r_nk o_nd         (feature d's counts: its observed rows)
S1_kd = sum_n w_n r_nk o_nd x_nd,   S2_kd = sum_n w_n r_nk o_nd x_nd^2

alpha_k  = alpha0 + N_k                      (DP sticks: c_k = N_k)
beta_kd  = beta0 + N_kd,    a_kd = a0 + N_kd / 2
m_kd     = (beta0 m0_d + S1_kd) / beta_kd
b_kd     = b0 + 0.5 (S2_kd + beta0 m0_d^2 - beta_kd m_kd^2)
```

so q's `mean_precision` and `precision_concentration` differ across
features (the [K, D] fields `diag` already stores), and a feature never
observed in a component keeps the prior's (m0, beta0, a0, b0) there. The KL
of q from the prior is `diag`'s, unchanged.

The posterior predictive of a partly observed point is the marginal of
`diag`'s over the observed features:

```none
p(x_obs | data) = sum_k E[pi_k] prod_{d observed}
                  StudentT(x_d | df = 2 a_kd, loc = m_kd, scale = s_kd)
```

A row with every feature missing observes nothing: its log density is 0
(the marginal over no features is the empty product), its predictive
responsibilities are the weights E[pi], and in the E-step it contributes
logsumexp_k E[log pi_k] to the bound, its responsibilities
softmax(E[log pi]) to the weight counts N_k, and nothing to any feature's
statistics.

Every function also accepts a `Posterior` with a leading restart dimension R
([R, K] and [R, K, D] fields); per-point outputs then gain a leading R
([R, B, K], [R, B]), like `diag.log_rho`'s.

#### References

[1] Bishop, C. M. Pattern Recognition and Machine Learning, 2006, sec. 10.2.
[2] Rubin, D. B. Inference and missing data. Biometrika 63(3), 1976.
[3] Ghahramani, Z. and Jordan, M. I. Supervised learning from incomplete
    data via an EM approach. NIPS 1994 (mixtures with missing features).
[4] Hoffman, Blei, Wang, Paisley. Stochastic Variational Inference. JMLR 2013.
"""

import dataclasses
import math
from typing import NamedTuple

import tensorflow as tf

from tfgmm._engine import inference
from tfgmm._engine import weight_priors
from tfgmm.families import diag
from tfgmm.families.diag import Posterior

_LOG_2PI = math.log(2.0 * math.pi)


class MaskedStatistics(NamedTuple):
  """Weighted sufficient statistics of a batch with missing entries.

  With o_nd = 1 where x_nd is observed (not NaN), else 0:

  Attributes:
    counts: N_k = sum_n w_n r_nk, [..., K]: the weights' counts (every row).
    feature_counts: N_kd = sum_n w_n r_nk o_nd, [..., K, D]: the rows that
      observe feature d.
    sum_x: S1_kd = sum_n w_n r_nk o_nd x_nd, [..., K, D].
    sum_xx: S2_kd = sum_n w_n r_nk o_nd x_nd^2, [..., K, D].
  """
  counts: tf.Tensor
  feature_counts: tf.Tensor
  sum_x: tf.Tensor
  sum_xx: tf.Tensor


def observed_and_filled(x):
  """The observed mask and x with its missing (NaN) entries set to 0.

  The zeros are chosen with `tf.where`, which passes the gradient through to
  the observed entries and gives exactly 0 at the missing ones; no NaN enters
  any later op, so none reaches a value or a gradient.

  Args:
    x: data, [B, D], missing entries NaN.

  Returns:
    (observed, x0): float 0/1 mask o in x's dtype and the filled data, [B, D]
    each.
  """
  observed = tf.logical_not(tf.math.is_nan(x))                    # [B, D]
  x0 = tf.where(observed, x, tf.zeros_like(x))                    # [B, D]
  return tf.cast(observed, x.dtype), x0


def as_masked_statistics(stats):
  """A `MaskedStatistics` from either kind: a complete-data `Statistics`
  observes every feature of every row (N_kd = N_k)."""
  if isinstance(stats, MaskedStatistics):
    return stats
  counts, sum_x, sum_xx = stats
  feature_counts = tf.broadcast_to(tf.expand_dims(counts, -1),
                                   tf.shape(sum_x))               # [K, D]
  return MaskedStatistics(counts, feature_counts, sum_x, sum_xx)


# ----------------------------------------------------------------- local step


def _per_feature_log_rho64(q64):
  """The parameter-only part of each feature's log_rho term, float64 [K, D].

  c_kd = 0.5 (E[log tau_kd] - log 2 pi - 1 / beta_kd - E[tau_kd] m_kd^2):
  what `diag.log_rho` adds for feature d besides its data terms.
  """
  a, b = q64.precision_concentration, q64.precision_rate
  return 0.5 * (tf.math.digamma(a) - tf.math.log(b) - _LOG_2PI
                - 1.0 / q64.mean_precision
                - a / b * tf.square(q64.mean_loc))                # [K, D]


def log_rho(x, q, log_weights=None):
  """Unnormalised log responsibilities of the CAVI local step, [B, K].

  ```none
  log_rho[n, k] = E[log pi_k]
                  + sum_d o_nd (0.5 (E[log tau_kd] - log 2 pi - 1 / beta_kd)
                                - 0.5 E[tau_kd] (x_nd - m_kd)^2)
  ```
  (Bishop 10.46 over the observed features). With x0 = x where observed and
  0 where missing, this is `diag.log_rho(x0, q)` minus, for each missing
  feature, its term at x_nd = 0, which is the parameter-only c_kd of
  `_per_feature_log_rho64`:

  ```none
  log_rho = E[log pi] + sum_d c_kd                        (float64, [K])
            - 0.5 (x0^2 @ prec^T - 2 x0 @ (prec m)^T)     ([B, K] matmuls)
            - (1 - o) @ c^T                               ([B, K] matmul)
  ```
  Only [B, K] and [B, D] tensors are formed. Summing c over the missing
  features rather than the observed ones keeps the complete rows' constant
  the float64 sum of `diag.log_rho`: without NaN the result is `diag`'s
  bit for bit, in float32 as well.

  Args:
    x: data, [B, D], float32 or float64; missing entries NaN.
    q: `Posterior` with [K] and [K, D] fields (or [R, K], [R, K, D]).
    log_weights: optional E[log pi_k], [K] (or [R, K]), e.g. a stick-breaking
      prior's (`weight_priors.expected_log_weights`); None uses q's Dirichlet.

  Returns:
    log_rho: [B, K] (or [R, B, K]) in x's dtype. Its gradient with respect to
    a missing x_nd is 0.
  """
  observed, x0 = observed_and_filled(x)                           # [B, D]
  constant = tf.cast(_per_feature_log_rho64(
      diag.cast_posterior(q, tf.float64)), x.dtype)              # [K, D]
  unobserved_terms = tf.matmul(1.0 - observed, constant,
                               transpose_b=True)                  # [B, K]
  return diag.log_rho(x0, q, log_weights) - unobserved_terms     # [B, K]


def sufficient_statistics(x, responsibilities, sample_weight=None):
  """Soft counts and moments of a batch over its observed entries.

  Args:
    x: data, [B, D]; missing entries NaN.
    responsibilities: r, [B, K] (or [R, B, K]).
    sample_weight: optional w, [B].

  Returns:
    `MaskedStatistics` with counts [K], feature_counts, sum_x and sum_xx
    [K, D] (a leading R with the responsibilities'), in x's dtype.
  """
  observed, x0 = observed_and_filled(x)                           # [B, D]
  r = responsibilities
  if sample_weight is not None:
    r = r * sample_weight[:, None]                                # [B, K]
  # The missing entries are zeros of x0: they drop out of S1 and S2.
  counts, sum_x, sum_xx = diag.sufficient_statistics(x0, r)
  feature_counts = tf.matmul(r, observed, transpose_a=True)       # [K, D]
  return MaskedStatistics(counts, feature_counts, sum_x, sum_xx)


def add_statistics(s, t):
  """Elementwise sum of two `MaskedStatistics`."""
  return MaskedStatistics(*[u + v for u, v in zip(s, t)])


def zero_statistics(q):
  """float64 zero `MaskedStatistics` shaped like q's fields."""
  zeros_kd = tf.zeros_like(q.mean_loc, tf.float64)                # [K, D]
  return MaskedStatistics(tf.zeros_like(q.weight_concentration, tf.float64),
                          zeros_kd, zeros_kd, zeros_kd)


# ------------------------------------------------------------- global updates


def normal_gamma_natural_step64(q64, p64, feature_counts, sum_x, sum_xx,
                                scale, step_size):
  """The natural-gradient step of q(mu, tau) from per-feature counts; float64.

  ```none
  eta     = (beta, beta m, a, b + 0.5 beta m^2)                  # [K, D] each
  eta_hat = (beta0 + s N_kd, beta0 m0 + s S1, a0 + s N_kd / 2,
             b0 + 0.5 (s S2 + beta0 m0^2))
  eta    <- (1 - rho) eta + rho eta_hat
  ```
  `diag.natural_update`'s Normal-Gamma part with N_k[..., None] replaced by
  N_kd, written with the same operations in the same order: given
  N_kd = N_k it returns `diag`'s values bit for bit. (`diag.natural_update`
  could call this with `counts[..., None]` and keep only its weight line.)

  Args:
    q64, p64: q and the prior, float64 `Posterior`s.
    feature_counts, sum_x, sum_xx: N_kd, S1, S2, float64 [K, D] (unscaled).
    scale: s, float64 scalar.
    step_size: rho, float64 scalar.

  Returns:
    (m, beta, a, b), float64, each broadcast to q's [K, D].
  """
  shape = tf.shape(q64.mean_loc)

  def mix(old, new):
    return (1.0 - step_size) * old + step_size * new

  s = scale
  beta = mix(q64.mean_precision,
             p64.mean_precision + s * feature_counts)             # [K, D]
  loc_natural = mix(q64.mean_precision * q64.mean_loc,
                    p64.mean_precision * p64.mean_loc + s * sum_x)
  a = mix(q64.precision_concentration,
          p64.precision_concentration + 0.5 * s * feature_counts)  # [K, D]
  rate_natural = mix(
      q64.precision_rate + 0.5 * q64.mean_precision * tf.square(q64.mean_loc),
      p64.precision_rate + 0.5 * (s * sum_xx + p64.mean_precision
                                  * tf.square(p64.mean_loc)))
  m = loc_natural / beta
  b = rate_natural - 0.5 * beta * tf.square(m)
  return tuple(tf.broadcast_to(t, shape) for t in (m, beta, a, b))


def natural_update(q, stats, prior, scale=1.0, step_size=1.0,
                   weight_prior="dirichlet"):
  """Natural-gradient step on q's global factors, from per-feature counts.

  ```none
  alpha    <- (1 - rho) alpha + rho (alpha0 + s N_k)      (sticks: s N_k)
  beta_kd  <- (1 - rho) beta_kd + rho (beta0 + s N_kd)
  a_kd     <- (1 - rho) a_kd + rho (a0 + s N_kd / 2)
  beta m   <- (1 - rho) beta m + rho (beta0 m0 + s S1)
  b + 0.5 beta m^2 <- (1 - rho) (...) + rho (b0 + 0.5 (s S2 + beta0 m0^2))
  ```
  (Hoffman et al. 2013, eq. 35; see `normal_gamma_natural_step64`). With
  s = 1 and rho = 1 it is the CAVI global step of the observed-data bound
  (Bishop 10.58, 10.60-10.63 per feature). Runs in float64 whatever q's
  dtype. Given statistics of data without NaN (N_kd = N_k) it returns
  `diag.natural_update`'s values exactly.

  Args:
    q: current `Posterior`.
    stats: `MaskedStatistics` of the batch (a `Statistics` is taken as
      complete data, N_kd = N_k).
    prior: `Posterior` of the prior, broadcastable to q's shapes.
    scale: s = N_total / batch size (the minibatch scale), scalar.
    step_size: rho in (0, 1], scalar.
    weight_prior: "dirichlet" or "dirichlet_process" (see `diag`).

  Returns:
    The updated `Posterior`, in q's dtype.
  """
  dtype = q.mean_loc.dtype
  q64 = diag.cast_posterior(q, tf.float64)
  p64 = diag.cast_posterior(prior, tf.float64)
  counts, feature_counts, sum_x, sum_xx = [
      tf.cast(t, tf.float64) for t in as_masked_statistics(stats)]
  s = inference.as_float64(scale)
  rho = inference.as_float64(step_size)
  alpha = ((1.0 - rho) * q64.weight_concentration
           + rho * (weight_priors.weight_offset(p64.weight_concentration,
                                        weight_prior) + s * counts))  # [K]
  m, beta, a, b = normal_gamma_natural_step64(q64, p64, feature_counts, sum_x,
                                              sum_xx, s, rho)
  return diag.cast_posterior(Posterior(alpha, m, beta, a, b), dtype)


def statistics_from_posterior(q, prior, weight_prior="dirichlet"):
  """The statistics that q is the CAVI posterior of: inverts the global step.

  ```none
  N_k = alpha - alpha0,   N_kd = beta - beta0,   S1 = beta m - beta0 m0,
  S2 = 2 (b - b0) + beta m^2 - beta0 m0^2
  ```
  (float64). `posterior_from_statistics(stats, prior, s)` of the result
  rescales q's data to s times as many rows.
  """
  counts, sum_x, sum_xx = diag.statistics_from_posterior(q, prior,
                                                          weight_prior)
  beta = tf.cast(q.mean_precision, tf.float64)                    # [K, D]
  feature_counts = beta - tf.cast(prior.mean_precision, tf.float64)
  return MaskedStatistics(counts, feature_counts, sum_x, sum_xx)


def posterior_from_statistics(stats, prior, scale=1.0,
                              weight_prior="dirichlet"):
  """The CAVI global step: q's globals from a batch's statistics (rho = 1)."""
  stats = as_masked_statistics(stats)
  ones = tf.ones_like(stats.sum_x)                                # [K, D]
  like = Posterior(tf.ones_like(stats.counts), ones, ones, ones, ones)
  return natural_update(like, stats, prior, scale, 1.0, weight_prior)


def rescale(q, prior, scale, weight_prior="dirichlet"):
  """The CAVI posterior of q's data repeated `scale` times (a sample's fit
  scaled to the full data): the global step at s = scale of q's statistics.
  Each feature's count N_kd scales with the rest, so the fraction missing
  is kept."""
  return posterior_from_statistics(
      statistics_from_posterior(q, prior, weight_prior), prior, scale,
      weight_prior)


# ------------------------------------------------------- posterior predictive


def predictive_component_log_prob(x, q):
  """log of each component's predictive density of the observed features.

  ```none
  log p_k(x_obs) = sum_{d observed} log StudentT(x_d | df = 2 a_kd,
                                                 loc = m_kd, scale = s_kd)
  ```
  The marginal of `diag`'s product density over the observed features.
  The normalisers are summed in float64 over all features and the missing
  ones' taken off, so complete rows get `diag`'s value bit for bit. A row
  with no observed feature gets 0. Forms a [B, K, D] tensor: call it on
  chunks (`inference.map_chunks`).

  Args:
    x: [B, D]; missing entries NaN.
    q: `Posterior` (or with a leading R).

  Returns:
    [B, K] (or [R, B, K]) in x's dtype.
  """
  dtype = x.dtype
  observed, x0 = observed_and_filled(x)                           # [B, D]
  q64 = diag.cast_posterior(q, tf.float64)
  df64 = 2.0 * q64.precision_concentration                        # [K, D]
  scale64 = diag.student_t_scale(q64)                                  # [K, D]
  # lgamma((df + 1) / 2) - lgamma(df / 2) cancels in float32 at large df.
  norm64 = (tf.math.lgamma(0.5 * (df64 + 1.0)) - tf.math.lgamma(0.5 * df64)
            - 0.5 * tf.math.log(df64 * math.pi)
            - tf.math.log(scale64))                               # [K, D]
  norm = (tf.expand_dims(tf.cast(tf.reduce_sum(norm64, -1), dtype), -2)
          - tf.matmul(1.0 - observed, tf.cast(norm64, dtype),
                      transpose_b=True))                          # [B, K]
  df = tf.expand_dims(tf.cast(df64, dtype), -3)                   # [1, K, D]
  scale = tf.expand_dims(tf.cast(scale64, dtype), -3)             # [1, K, D]
  loc = tf.expand_dims(tf.cast(q.mean_loc, dtype), -3)            # [1, K, D]
  y = (x0[:, None, :] - loc) / scale                              # [B, K, D]
  kernel = -0.5 * (df + 1.0) * tf.math.log1p(tf.square(y) / df)   # [B, K, D]
  return norm + tf.reduce_sum(kernel * observed[:, None, :], -1)  # [B, K]


# ------------------------------------------------------------ the family

# What missing values leave unchanged: q's parameterisation, the KL of the
# global factors, the chunk sizes, the sampler (which draws complete points)
# and the seed blog's estimator (`diag.sampled_log_likelihood` leaves out the
# terms of missing entries). The predictive of a row is the exact marginal
# of its observed features (0 for a row with every feature missing).
FAMILY = dataclasses.replace(
    diag.FAMILY, log_rho=log_rho,
    sufficient_statistics=sufficient_statistics,
    add_statistics=add_statistics, zero_statistics=zero_statistics,
    natural_update=natural_update,
    statistics_from_posterior=statistics_from_posterior,
    posterior_from_statistics=posterior_from_statistics, rescale=rescale,
    predictive_component_log_prob=predictive_component_log_prob,
    trains_on_missing=True, predicts_missing=True)
