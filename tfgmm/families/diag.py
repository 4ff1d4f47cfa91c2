"""The diagonal covariance family: Normal-Gamma components, one precision per
feature.

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
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tfgmm._engine import inference
from tfgmm._engine import weight_priors
from tfgmm.families import base

_LOG_2PI = math.log(2.0 * math.pi)



_CHUNK_ELEMENTS = 1 << 21



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
    log_weights = weight_priors.expected_log_weights(q64.weight_concentration)
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
  s = inference.as_float64(scale)
  rho = inference.as_float64(step_size)
  shape = tf.shape(q64.mean_loc)

  def mix(old, new):
    return (1.0 - rho) * old + rho * new

  alpha = mix(q64.weight_concentration,
              weight_priors.weight_offset(p64.weight_concentration, weight_prior)
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
  counts = q64.weight_concentration - weight_priors.weight_offset(
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


def unconstrained_from_posterior(q):
  """The inverse of `posterior_from_unconstrained`, a tuple of tensors."""
  return (weight_priors.log_weight_field(q.weight_concentration), q.mean_loc,
          tf.math.log(q.mean_precision),
          tf.math.log(q.precision_concentration),
          tf.math.log(q.precision_rate))


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


def kl_divergence(q, prior, weight_prior="dirichlet"):
  """KL(q(pi) q(mu, tau) || p(pi) p(mu, tau)) summed over components, scalar."""
  return (weight_priors.weights_kl(q.weight_concentration, prior.weight_concentration,
                     weight_prior)
          + tf.reduce_sum(normal_gamma_kl(q, prior), [-2, -1]))


def student_t_scale(q):
  """Per-feature scale of the predictive Student-t, [K, D].

  scale = sqrt(b (beta + 1) / (a beta))  (Bishop 10.81-10.82, diagonal).
  """
  return tf.sqrt(q.precision_rate * (q.mean_precision + 1.0)
                 / (q.precision_concentration * q.mean_precision))


def predictive_parameters(q):
  """(df [K, D], loc [K, D], scale [K, D]) of the predictive Student-t's."""
  return 2.0 * q.precision_concentration, q.mean_loc, student_t_scale(q)


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
  component, seeds = weight_priors.draw_components(
      n, seed, q.weight_concentration, log_mean_weights)          # [n]
  loc = tf.gather(q.mean_loc, component)                          # [n, D]
  scale = tf.gather(student_t_scale(q), component)                # [n, D]
  half_df = tf.gather(q.precision_concentration, component)       # [n, D]
  normal = tf.random.stateless_normal(tf.shape(loc), seeds[0], dtype=dtype)
  gamma = tf.random.stateless_gamma(tf.shape(loc), seeds[1], alpha=half_df,
                                    dtype=dtype)                  # [n, D]
  return loc + scale * normal * tf.math.rsqrt(gamma / half_df)


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
    independent: q(mu) has its own precision lambda (`diag_independent`).

  Returns:
    [B] (or [R, B]) log-likelihoods.
  """
  seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int32), 3)
  rows = tf.shape(x)[0]
  lead_rank = q.weight_concentration.shape.rank - 1
  log_pi = weight_priors.sampled_log_weights(rows, q.weight_concentration, seeds[0],
                               prior_concentration, weight_prior)  # [B, R.., K]
  log_tau = (weight_priors.log_gamma_draws(rows, q.precision_concentration, seeds[1])
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


# ------------------------------------------------------------ the family


def field_shapes(n_components, n_features):
  """Shapes of q's fields: [K] and four [K, D]."""
  k, d = n_components, n_features
  return [(k,), (k, d), (k, d), (k, d), (k, d)]


def make_prior(n_features, dtype, *, weight_concentration, mean_loc,
               mean_precision, precision_concentration, precision_rate,
               **unused):
  """The Normal-Gamma prior as a `Posterior` of tensors (m0 and b0 [D])."""
  del unused
  return Posterior(
      tf.constant(weight_concentration, dtype),
      tf.constant(np.broadcast_to(mean_loc, (n_features,)), dtype),
      tf.constant(mean_precision, dtype),
      tf.constant(precision_concentration, dtype),
      tf.constant(np.broadcast_to(precision_rate, (n_features,)), dtype))


def expected_precisions(q, scale):
  """E[tau] in data units, numpy [K, D]: (a / b) / scale^2."""
  return ((q.precision_concentration / q.precision_rate).numpy()
          / np.square(scale))


def conjugate_mean_variance(a, b, mean_precision):
  """Var(mu_d) under a conjugate prior, numpy [K, D]: b / (beta (a - 1)).

  The marginal of mu_d is a Student-t with 2a degrees of freedom; its
  variance exists for a > 1 and is NaN otherwise.
  """
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(a > 1, b / (mean_precision * np.where(a > 1, a - 1, 1.0)),
                    np.nan)


def feature_marginals(q, n_features):
  """(a, b, Var(mu)), numpy [K, D] each: tau_kd ~ Gamma(a, b) itself."""
  del n_features
  a, b = q.precision_concentration.numpy(), q.precision_rate.numpy()
  return a, b, conjugate_mean_variance(a, b, q.mean_precision.numpy())


# --------------------------------------------- the scikit-learn face's layout


def sklearn_prior(degrees_of_freedom, covariance, n_features):
  """scikit-learn's (nu0, covariance_prior [D]) as the Gamma prior per
  feature: a0 = nu0 / 2, b0 = covariance_prior / 2."""
  del n_features
  return {"precision_concentration": 0.5 * degrees_of_freedom,
          "precision_rate": 0.5 * np.asarray(covariance)}


def sklearn_attributes(q):
  """scikit-learn's diag attributes: covariances_ (K, D) = b / a, ..."""
  a = np.asarray(q.precision_concentration)                       # [K, D]
  b = np.asarray(q.precision_rate)                                # [K, D]
  # Without missing values a and beta are the same for every feature.
  return {"covariances": b / a, "precisions": a / b,
          "precisions_cholesky": np.sqrt(a / b),
          "degrees_of_freedom": 2.0 * a[:, 0],
          "mean_precision": np.asarray(q.mean_precision)[:, 0]}


VARIABLE_NAMES = ("log_weight_concentration", "mean_loc",
                  "log_mean_precision", "log_precision_concentration",
                  "log_precision_rate")

FAMILY = base.Family(
    covariance_type="diag", mean_prior="conjugate", posterior_type=Posterior,
    field_shapes=field_shapes, prior_ranks=(0, 1, 0, 0, 1),
    variable_names=VARIABLE_NAMES, make_prior=make_prior,
    cast_posterior=cast_posterior, chunk_rows=chunk_rows,
    estep_chunk_rows=estep_chunk_rows, log_rho=log_rho,
    sufficient_statistics=sufficient_statistics,
    add_statistics=add_statistics, zero_statistics=zero_statistics,
    natural_update=natural_update,
    statistics_from_posterior=statistics_from_posterior,
    posterior_from_statistics=posterior_from_statistics, rescale=rescale,
    posterior_from_unconstrained=posterior_from_unconstrained,
    unconstrained_from_posterior=unconstrained_from_posterior,
    kl_divergence=kl_divergence,
    predictive_component_log_prob=predictive_component_log_prob,
    sample_predictive=sample_predictive,
    expected_precisions=expected_precisions,
    feature_marginals=feature_marginals,
    sampled_log_likelihood=sampled_log_likelihood,
    sklearn=base.SklearnLayout(1, sklearn_prior, sklearn_attributes),
    methods=("natural", "gradient", "sampled", "map", "mcmc"),
    predictive_parameters=predictive_parameters)
