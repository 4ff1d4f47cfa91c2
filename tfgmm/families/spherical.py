"""The spherical covariance family: one Gamma precision per component, shared
by its features (Normal-Gamma components with isotropic covariances).

The same contracts as `diag` (E-step, sufficient statistics, natural-gradient
global step, KL, posterior predictive), with a [K] precision in place of
`diag`'s [K, D]. Every function takes and returns tensors, with core
TensorFlow ops only (no TFP), so an exported graph loads with plain
TensorFlow. Parameter-only terms are computed in float64.

#### Mathematical Details

Model, k = 1..K, n = 1..N, x[n] in R^D:

```none
pi         ~ Dirichlet(alpha0 * ones(K))
tau[k]     ~ Gamma(a0, b0)                          # precision, rate b0
mu[k]      ~ Normal(m0, I / (beta0 * tau[k]))
z[n]       ~ Categorical(pi)
x[n]       ~ Normal(mu[z[n]], I / tau[z[n]])
```

Mean-field posterior q(pi) q(mu, tau) prod_n q(z[n]) with

```none
q(pi)        = Dirichlet(alpha)                                  # [K]
q(mu, tau)   = Normal(mu_k | m_k, I / (beta_k tau_k)) Gamma(tau_k | a_k, b_k)
q(z[n])      = Categorical(r[n])                                 # [N, K]
```

The exact conjugate (CAVI) global step, with N_k = sum_n r_nk,
xbar_k = sum_n r_nk x_n / N_k and S_kd = sum_n r_nk (x_nd - xbar_kd)^2:

```none
alpha_k = alpha0 + N_k,   beta_k = beta0 + N_k
m_k     = (beta0 m0 + N_k xbar_k) / beta_k
a_k     = a0 + N_k D / 2
b_k     = b0 + 0.5 sum_d [S_kd + beta0 N_k / beta_k (xbar_kd - m0_d)^2]
```

Each point adds D / 2 to its component's shape: all D features measure the
one precision. (scikit-learn's spherical `BayesianGaussianMixture` adds 1 per
point instead, a heuristic; see `tfgmm.sklearn`.)

Every function also accepts a q with a leading restart dimension R ([R, K]
and [R, K, D] fields). The prior is a `SphericalPosterior` whose fields
broadcast against q's: alpha0, beta0, a0 and b0 scalars, m0 [D].

#### References

[1] Bishop, C. M. Pattern Recognition and Machine Learning, 2006, sec. 10.2
    (the Normal-Gamma updates, here with one precision per component).
[2] Hoffman, Blei, Wang, Paisley. Stochastic Variational Inference. JMLR 2013.
"""

import math
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tfgmm._engine import inference
from tfgmm._engine import weight_priors
from tfgmm.families import base
from tfgmm.families import diag

_LOG_2PI = math.log(2.0 * math.pi)


class SphericalPosterior(NamedTuple):
  """Parameters of q (or of the prior, broadcastable to the same shapes).

  Attributes:
    weight_concentration: Dirichlet concentration alpha, [K].
    mean_loc: Normal location m of the means, [K, D].
    mean_precision: precision multiplier beta of the means, [K].
    precision_concentration: Gamma shape a of the precisions, [K].
    precision_rate: Gamma rate b of the precisions, [K].
  """
  weight_concentration: tf.Tensor
  mean_loc: tf.Tensor
  mean_precision: tf.Tensor
  precision_concentration: tf.Tensor
  precision_rate: tf.Tensor


class SphericalStatistics(NamedTuple):
  """Weighted sufficient statistics of a batch under responsibilities r.

  Attributes:
    counts: N_k = sum_n w_n r_nk, [K].
    sum_x: S1_k = sum_n w_n r_nk x_n, [K, D].
    sum_xx: S2_k = sum_n w_n r_nk ||x_n||^2, [K].
  """
  counts: tf.Tensor
  sum_x: tf.Tensor
  sum_xx: tf.Tensor


def cast_posterior(q, dtype):
  """Casts every field of a `SphericalPosterior` to `dtype`."""
  return SphericalPosterior(*[tf.cast(t, dtype) for t in q])


def _num_features(q, dtype):
  """D as a scalar of `dtype`, from the last dimension of q.mean_loc."""
  return tf.cast(tf.shape(q.mean_loc)[-1], dtype)


def log_rho(x, q, log_weights=None):
  """Unnormalised log responsibilities of the CAVI local step, [B, K].

  ```none
  log_rho[n, k] = E[log pi_k] + (D / 2) (E[log tau_k] - log 2 pi)
                  - 0.5 E[tau_k] ||x_n - m_k||^2 - 0.5 D / beta_k
  E[tau_k] = a_k / b_k,   E[log tau_k] = digamma(a_k) - log b_k
  ```
  The square is expanded so the [B, K] term is two matmuls, as in
  `diag.log_rho`; no [B, K, D] tensor is formed.

  Args:
    x: data, [B, D].
    q: `SphericalPosterior` (optionally with a leading restart axis R).
    log_weights: E[log pi], [K] (or [R, K]); None computes the Dirichlet
      one from q.

  Returns:
    log_rho: [B, K] (or [R, B, K]), in x's dtype.
  """
  dtype = x.dtype
  q64 = cast_posterior(q, tf.float64)
  d64 = _num_features(q64, tf.float64)
  a, b = q64.precision_concentration, q64.precision_rate          # [K]
  precision64 = a / b                                             # [K]
  log_precision = tf.math.digamma(a) - tf.math.log(b)             # [K]
  if log_weights is None:
    log_weights = weight_priors.expected_log_weights(q64.weight_concentration)
  const = tf.cast(
      tf.cast(log_weights, tf.float64)
      + 0.5 * d64 * (log_precision - _LOG_2PI)
      - 0.5 * precision64 * tf.reduce_sum(tf.square(q64.mean_loc), -1)
      - 0.5 * d64 / q64.mean_precision, dtype)                    # [K]
  precision = tf.cast(precision64, dtype)                         # [K]
  weighted_loc = tf.cast(precision64[..., None] * q64.mean_loc,
                         dtype)                                   # [K, D]
  squared_norm = tf.reduce_sum(tf.square(x), -1, keepdims=True)  # [B, 1]
  quad = (squared_norm * tf.expand_dims(precision, -2)
          - 2.0 * tf.matmul(x, weighted_loc, transpose_b=True))   # [B, K]
  return tf.expand_dims(const, -2) - 0.5 * quad                  # [B, K]


def sufficient_statistics(x, responsibilities, sample_weight=None):
  """Soft counts, first moments and squared norms; see `SphericalStatistics`.

  Args:
    x: data, [B, D].
    responsibilities: r, [B, K] (or [R, B, K]).
    sample_weight: optional w, [B].

  Returns:
    `SphericalStatistics` with counts [K], sum_x [K, D], sum_xx [K].
  """
  r = responsibilities
  if sample_weight is not None:
    r = r * tf.cast(sample_weight, r.dtype)[:, None]              # [B, K]
  counts = tf.reduce_sum(r, -2)                                   # [K]
  sum_x = tf.matmul(r, x, transpose_a=True)                       # [K, D]
  sum_xx = tf.linalg.matvec(r, tf.reduce_sum(tf.square(x), -1),
                            transpose_a=True)                     # [K]
  return SphericalStatistics(counts, sum_x, sum_xx)


def add_statistics(s, t):
  """Elementwise sum of two `SphericalStatistics`."""
  return SphericalStatistics(*[u + v for u, v in zip(s, t)])


def zero_statistics(q):
  """float64 zero `SphericalStatistics` shaped like q's fields."""
  zeros_k = tf.zeros_like(q.weight_concentration, tf.float64)     # [K]
  return SphericalStatistics(zeros_k, tf.zeros_like(q.mean_loc, tf.float64),
                             zeros_k)


def natural_update(q, stats, prior, scale=1.0, step_size=1.0,
                   weight_prior="dirichlet"):
  """Natural-gradient step on q's global factors (Hoffman et al. 2013, eq. 35).

  ```none
  eta      = (alpha, beta, beta m, a, b + 0.5 beta ||m||^2)
  eta_hat  = (alpha0 + s N, beta0 + s N, beta0 m0 + s S1, a0 + s N D / 2,
              b0 + 0.5 (s S2 + beta0 ||m0||^2))
  eta_new  = (1 - rho) eta + rho eta_hat
  ```
  then m = (beta m) / beta and b = (b + 0.5 beta ||m||^2) - 0.5 beta ||m||^2.
  With s = 1 and rho = 1 this is the exact CAVI global step (module
  docstring). Runs in float64 whatever q's dtype ([K, D] work; the
  raw-moment form of b cancels in float32).

  Args:
    q: current `SphericalPosterior`.
    stats: `SphericalStatistics` of the batch.
    prior: `SphericalPosterior` of the prior, broadcastable to q's shapes.
    scale: s = N_total / batch size (the minibatch scale), scalar.
    step_size: rho in (0, 1], scalar.
    weight_prior: "dirichlet" (the weight field is alpha = alpha0 + s N) or
      "dirichlet_process" (it is the stick counts c = s N).

  Returns:
    The updated `SphericalPosterior`, in q's dtype.
  """
  dtype = q.mean_loc.dtype
  q64, p64 = cast_posterior(q, tf.float64), cast_posterior(prior, tf.float64)
  counts, sum_x, sum_xx = [tf.cast(t, tf.float64) for t in stats]
  s = inference.as_float64(scale)
  rho = inference.as_float64(step_size)
  d64 = _num_features(q64, tf.float64)

  def mix(old, new):
    return (1.0 - rho) * old + rho * new

  def squared_norm(m):
    return tf.reduce_sum(tf.square(m), -1)

  alpha = mix(q64.weight_concentration,
              weight_priors.weight_offset(p64.weight_concentration,
                                          weight_prior) + s * counts)  # [K]
  beta = mix(q64.mean_precision, p64.mean_precision + s * counts)   # [K]
  loc_natural = mix(q64.mean_precision[..., None] * q64.mean_loc,
                    p64.mean_precision * p64.mean_loc + s * sum_x)  # [K, D]
  a = mix(q64.precision_concentration,
          p64.precision_concentration + 0.5 * d64 * s * counts)     # [K]
  rate_natural = mix(
      q64.precision_rate
      + 0.5 * q64.mean_precision * squared_norm(q64.mean_loc),
      p64.precision_rate + 0.5 * (s * sum_xx + p64.mean_precision
                                  * squared_norm(p64.mean_loc)))  # [K]
  m = loc_natural / beta[..., None]                               # [K, D]
  b = rate_natural - 0.5 * beta * squared_norm(m)                 # [K]
  shape_k = tf.shape(q64.weight_concentration)
  new = SphericalPosterior(
      tf.broadcast_to(alpha, shape_k),
      tf.broadcast_to(m, tf.shape(q64.mean_loc)),
      tf.broadcast_to(beta, shape_k), tf.broadcast_to(a, shape_k),
      tf.broadcast_to(b, shape_k))
  return cast_posterior(new, dtype)


def statistics_from_posterior(q, prior, weight_prior="dirichlet"):
  """The statistics that q is the CAVI posterior of: inverts the global step.

  ```none
  N = alpha - alpha0 (c under the DP prior),   S1 = beta m - beta0 m0,
  S2 = 2 (b - b0) + beta ||m||^2 - beta0 ||m0||^2
  ```
  (computed and returned in float64).
  """
  q64, p64 = cast_posterior(q, tf.float64), cast_posterior(prior, tf.float64)
  counts = q64.weight_concentration - weight_priors.weight_offset(
      p64.weight_concentration, weight_prior)                     # [K]
  sum_x = (q64.mean_precision[..., None] * q64.mean_loc
           - p64.mean_precision * p64.mean_loc)                   # [K, D]
  sum_xx = (2.0 * (q64.precision_rate - p64.precision_rate)
            + q64.mean_precision
            * tf.reduce_sum(tf.square(q64.mean_loc), -1)
            - p64.mean_precision
            * tf.reduce_sum(tf.square(p64.mean_loc), -1))         # [K]
  return SphericalStatistics(counts, sum_x, sum_xx)


def posterior_from_statistics(stats, prior, scale=1.0,
                              weight_prior="dirichlet"):
  """The CAVI global step: q's globals from a batch's statistics (rho = 1).

  Returns the posterior in the prior's dtype.
  """
  ones_k = tf.ones_like(stats.counts)                             # [K]
  like = SphericalPosterior(ones_k, tf.ones_like(stats.sum_x), ones_k,
                            ones_k, ones_k)
  like = cast_posterior(like, prior.mean_loc.dtype)
  return natural_update(like, stats, prior, scale, 1.0, weight_prior)


def rescale(q, prior, scale, weight_prior="dirichlet"):
  """The CAVI posterior of q's data repeated `scale` times."""
  return posterior_from_statistics(
      statistics_from_posterior(q, prior, weight_prior), prior, scale,
      weight_prior)


def posterior_from_unconstrained(*raw):
  """q from unconstrained coordinates: positive fields are exp(raw)."""
  weight, loc, mean_precision, concentration, rate = raw
  return SphericalPosterior(tf.exp(weight), tf.convert_to_tensor(loc),
                            tf.exp(mean_precision), tf.exp(concentration),
                            tf.exp(rate))


def unconstrained_from_posterior(q):
  """The inverse of `posterior_from_unconstrained`, a tuple of tensors."""
  return (weight_priors.log_weight_field(q.weight_concentration), q.mean_loc,
          tf.math.log(q.mean_precision),
          tf.math.log(q.precision_concentration),
          tf.math.log(q.precision_rate))


def normal_gamma_kl(q, prior):
  """KL(q(mu_k, tau_k) || p(mu_k, tau_k)) per component, [K].

  ```none
  KL = KL(Gamma(a, b) || Gamma(a0, b0))
       + (D / 2) (beta0 / beta - 1 - log(beta0 / beta))
       + 0.5 beta0 (a / b) ||m - m0||^2
  ```
  (the Normal term is E_{q(tau)} of the Gaussian KL given tau). Computed in
  float64, returned in q's dtype.
  """
  dtype = q.mean_loc.dtype
  q64, p64 = cast_posterior(q, tf.float64), cast_posterior(prior, tf.float64)
  d64 = _num_features(q64, tf.float64)
  ratio = p64.mean_precision / q64.mean_precision                 # [K]
  kl = (diag.gamma_kl(q64.precision_concentration, q64.precision_rate,
                      p64.precision_concentration, p64.precision_rate)
        + 0.5 * d64 * (ratio - 1.0 - tf.math.log(ratio))
        + 0.5 * p64.mean_precision * q64.precision_concentration
        / q64.precision_rate
        * tf.reduce_sum(tf.square(q64.mean_loc - p64.mean_loc), -1))  # [K]
  return tf.cast(kl, dtype)


def kl_divergence(q, prior, weight_prior="dirichlet"):
  """KL(q(pi) q(mu, tau) || p(pi) p(mu, tau)), scalar (or [R])."""
  weights_kl = weight_priors.weights_kl(
      tf.cast(q.weight_concentration, tf.float64),
      tf.cast(prior.weight_concentration, tf.float64), weight_prior)
  return (tf.cast(weights_kl, q.mean_loc.dtype)
          + tf.reduce_sum(normal_gamma_kl(q, prior), -1))


# ------------------------------------------------------- posterior predictive


def student_t_scale(q):
  """Each component's predictive scale s_k, [K]: the scale matrix is s^2 I.

  s^2 = b (beta + 1) / (a beta)   (tau integrated out of the Normal).
  """
  return tf.sqrt(q.precision_rate * (q.mean_precision + 1.0)
                 / (q.precision_concentration * q.mean_precision))


def predictive_component_log_prob(x, q):
  """log St_k(x_n) of each component's predictive, [B, K].

  Integrating mu_k and the shared tau_k out of Normal(x | mu_k, I / tau_k)
  gives a multivariate Student-t (not a product of per-feature ones: the
  features share tau_k):

  ```none
  St_k(x) = StudentT(x | df = 2 a_k, loc = m_k, scale = s_k^2 I)
  log St_k(x) = lgamma((df + D) / 2) - lgamma(df / 2) - (D / 2) ln(df pi)
                - D ln s_k - ((df + D) / 2) ln(1 + ||x - m_k||^2 / (df s_k^2))
  ```
  The normaliser is computed in float64. Forms a [B, K, D] tensor: call it
  on chunks (see `inference.map_chunks`).

  Args:
    x: [B, D].
    q: `SphericalPosterior`.

  Returns:
    [B, K] in x's dtype.
  """
  dtype = x.dtype
  q64 = cast_posterior(q, tf.float64)
  d64 = _num_features(q64, tf.float64)
  df64 = 2.0 * q64.precision_concentration                        # [K]
  scale64 = student_t_scale(q64)                                  # [K]
  norm = tf.cast(tf.math.lgamma(0.5 * (df64 + d64))
                 - tf.math.lgamma(0.5 * df64)
                 - 0.5 * d64 * tf.math.log(df64 * math.pi)
                 - d64 * tf.math.log(scale64), dtype)             # [K]
  power = tf.cast(0.5 * (df64 + d64), dtype)                      # [K]
  spread = tf.cast(df64 * tf.square(scale64), dtype)              # [K]
  diff = x[..., :, None, :] - tf.cast(q.mean_loc, dtype)[..., None, :, :]
  distance = tf.reduce_sum(tf.square(diff), -1)                   # [B, K]
  return norm - power * tf.math.log1p(distance / spread)          # [B, K]


def sample_predictive(n, seed, q, log_mean_weights=None):
  """Draws n points from the posterior predictive with stateless ops, [n, D].

  A component k ~ Categorical(E[pi]), then x = m_k + s_k z / sqrt(G / a_k)
  with z ~ Normal(0, I_D) and one G ~ Gamma(a_k, 1) per draw (G / a_k is a
  chi-square with 2 a_k degrees of freedom over its degrees of freedom).

  Args:
    n: number of draws, int32 scalar.
    seed: a shape [2] int seed for the stateless random ops.
    q: `SphericalPosterior`.
    log_mean_weights: log E[pi], [K]; None for the Dirichlet one of q.

  Returns:
    samples: [n, D] in q's dtype.
  """
  dtype = q.mean_loc.dtype
  component, seeds = weight_priors.draw_components(
      n, seed, tf.cast(q.weight_concentration, tf.float64),
      log_mean_weights)                                           # [n]
  loc = tf.gather(q.mean_loc, component)                          # [n, D]
  scale = tf.gather(student_t_scale(q), component)                # [n]
  half_df = tf.gather(q.precision_concentration, component)       # [n]
  normal = tf.random.stateless_normal(tf.shape(loc), seeds[0], dtype=dtype)
  gamma = tf.random.stateless_gamma(tf.shape(half_df), seeds[1],
                                    alpha=half_df, dtype=dtype)   # [n]
  return loc + (scale * tf.math.rsqrt(gamma / half_df))[:, None] * normal


# ------------------------------------------------------------ the family


def field_shapes(n_components, n_features):
  """Shapes of q's fields: [K], [K, D], [K], [K], [K]."""
  k, d = n_components, n_features
  return [(k,), (k, d), (k,), (k,), (k,)]


def make_prior(n_features, dtype, *, weight_concentration, mean_loc,
               mean_precision, precision_concentration, precision_rate,
               **unused):
  """The Normal-Gamma prior as a `SphericalPosterior` of tensors (m0 [D]).

  Raises:
    ValueError: `precision_rate` is not a scalar (the one precision of a
      component has one rate).
  """
  del unused
  if np.ndim(precision_rate) != 0:
    raise ValueError(
        "Expected a scalar `precision_rate` with covariance_type="
        "'spherical' (one Gamma precision per component, shared by its "
        "features). Received: precision_rate with shape "
        f"{np.shape(precision_rate)}.")
  return SphericalPosterior(
      tf.constant(weight_concentration, dtype),
      tf.constant(np.broadcast_to(mean_loc, (n_features,)), dtype),
      tf.constant(mean_precision, dtype),
      tf.constant(precision_concentration, dtype),
      tf.constant(precision_rate, dtype))


def expected_precisions(q, scale):
  """E[tau] in data units, numpy [K, D]: (a / b) / scale_d^2.

  Isotropic in standardised units; per feature in data units when the
  features were scaled differently.
  """
  precision = (q.precision_concentration / q.precision_rate).numpy()  # [K]
  return precision[:, None] / np.square(scale)                    # [K, D]


def feature_marginals(q, n_features):
  """(a, b, Var(mu)), numpy [K, D] each: every 1 / sigma_d^2 is tau_k ~
  Gamma(a_k, b_k); mu_d's marginal is the conjugate Student-t."""
  shape = (int(q.mean_loc.shape[0]), n_features)
  a = np.broadcast_to(q.precision_concentration.numpy()[:, None], shape)
  b = np.broadcast_to(q.precision_rate.numpy()[:, None], shape)
  return a, b, diag.conjugate_mean_variance(
      a, b, q.mean_precision.numpy()[:, None])


# --------------------------------------------- the scikit-learn face's layout


def sklearn_prior(degrees_of_freedom, covariance, n_features):
  """scikit-learn's (nu0, covariance_prior) as the Gamma prior (a0, b0).

  scikit-learn counts nu0 pseudo-points of the shared variance; each point
  carries D / 2 of the Gamma's shape here, so a0 = D nu0 / 2 and
  b0 = D covariance_prior / 2: the prior's E[tau] is 1 / covariance_prior
  and the global step's b / a is scikit-learn's `covariances_` update.
  """
  return {"precision_concentration": 0.5 * n_features * degrees_of_freedom,
          "precision_rate": 0.5 * n_features * float(covariance)}


def sklearn_attributes(q):
  """scikit-learn's spherical attributes: covariances_ (K,) = b / a, ..."""
  a = np.asarray(q.precision_concentration)                       # [K]
  b = np.asarray(q.precision_rate)                                # [K]
  d = np.shape(q.mean_loc)[-1]
  return {"covariances": b / a, "precisions": a / b,
          "precisions_cholesky": np.sqrt(a / b),
          "degrees_of_freedom": 2.0 * a / d,
          "mean_precision": np.asarray(q.mean_precision)}


def predictive_parameters(q):
  """(df [K], loc [K, D], scale_tril [K, D, D]): each component's
  multivariate Student-t predictive, scale matrix s_k^2 I (one precision
  shared by the features makes them dependent: not a product of
  per-feature Student-t's)."""
  eye = tf.eye(tf.shape(q.mean_loc)[-1], dtype=q.mean_loc.dtype)
  return (2.0 * q.precision_concentration, q.mean_loc,
          student_t_scale(q)[..., None, None] * eye)


FAMILY = base.Family(
    covariance_type="spherical", mean_prior="conjugate",
    posterior_type=SphericalPosterior, field_shapes=field_shapes,
    prior_ranks=(0, 1, 0, 0, 0),
    variable_names=("log_weight_concentration", "mean_loc",
                    "log_mean_precision", "log_precision_concentration",
                    "log_precision_rate"),
    make_prior=make_prior, cast_posterior=cast_posterior,
    chunk_rows=diag.chunk_rows, estep_chunk_rows=diag.estep_chunk_rows,
    log_rho=log_rho, sufficient_statistics=sufficient_statistics,
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
    sklearn=base.SklearnLayout(0, sklearn_prior, sklearn_attributes),
    predictive_parameters=predictive_parameters, isotropic_scale=True,
    methods=("natural", "gradient"),
    free_variances=False)
