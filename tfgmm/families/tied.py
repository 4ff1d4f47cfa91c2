"""The tied covariance family: one Wishart precision matrix shared by every
component (Normal-Wishart with a common Lambda).

The same contracts as `full` (E-step, sufficient statistics, natural-gradient
global step, KL, posterior predictive), with one [D, D] Cholesky factor and
one degrees of freedom in place of `full`'s [K, D, D] and [K]. Only core
TensorFlow ops are used (no TFP), so an exported graph loads with plain
TensorFlow; matrices are never inverted (triangular solves against the
Cholesky factor).

#### Mathematical Details

Model, k = 1..K, n = 1..N, x[n] in R^D:

```none
pi         ~ Dirichlet(alpha0 * ones(K))
Lambda     ~ Wishart(W0, nu0)                 # E[Lambda] = nu0 W0, nu0 > D - 1
mu[k]      ~ Normal(m0, (beta0 Lambda)^-1)
z[n]       ~ Categorical(pi)
x[n]       ~ Normal(mu[z[n]], Lambda^-1)
```

Mean-field posterior q(pi) q(mu, Lambda) prod_n q(z[n]); the optimal
q(mu, Lambda) keeps the means conditionally independent given Lambda:

```none
q(pi)          = Dirichlet(alpha)                                  # [K]
q(mu, Lambda)  = Wishart(Lambda | W, nu) prod_k Normal(mu_k | m_k, (beta_k Lambda)^-1)
q(z[n])        = Categorical(r[n])                                 # [N, K]
```

The exact conjugate (CAVI) global step, with N_k = sum_n r_nk, N = sum_k N_k,
xbar_k = sum_n r_nk x_n / N_k and S_k = sum_n r_nk (x_n - xbar_k)(x_n - xbar_k)^T:

```none
alpha_k = alpha0 + N_k,   beta_k = beta0 + N_k
m_k     = (beta0 m0 + N_k xbar_k) / beta_k
nu      = nu0 + N
W^-1    = W0^-1 + sum_k [S_k + beta0 N_k / beta_k (xbar_k - m0)(xbar_k - m0)^T]
```

Every point adds one to nu and the prior scale W0^-1 is counted once: the K
means' Normal factors each carry |Lambda|^(1/2) in the prior and in q, and
those cancel. (scikit-learn's tied `BayesianGaussianMixture` counts the data
1 / K times instead, nu0 + N / K, a heuristic; see `tfgmm.sklearn`.)

W is stored through L = cholesky(W^-1) (`scale_tril`, [D, D]), as in `full`.
Every function also accepts a q with a leading restart dimension R ([R, K],
[R, K, D], [R] and [R, D, D] fields). The prior is a `TiedPosterior` whose
fields broadcast against q's: alpha0, beta0 and nu0 scalars, m0 [D],
cholesky(W0^-1) [D, D].

#### References

[1] Bishop, C. M. Pattern Recognition and Machine Learning, 2006, sec. 10.2
    (the Normal-Wishart updates, here with one Lambda for all components).
[2] Hoffman, Blei, Wang, Paisley. Stochastic Variational Inference. JMLR 2013.
"""

import math
from typing import NamedTuple

import numpy as np
import scipy.linalg
import tensorflow as tf

from tfgmm._engine import inference
from tfgmm._engine import weight_priors
from tfgmm.families import base
from tfgmm.families import diag
from tfgmm.families import full

_LOG_2PI = math.log(2.0 * math.pi)
_LOG_PI = math.log(math.pi)


class TiedPosterior(NamedTuple):
  """Parameters of q (or of the prior, broadcastable to the same shapes).

  Attributes:
    weight_concentration: Dirichlet concentration alpha, [K].
    mean_loc: Normal location m of the means, [K, D].
    mean_precision: precision multiplier beta of the means, [K].
    dof: the shared Wishart's degrees of freedom nu > D - 1, [].
    scale_tril: L, lower triangular with a positive diagonal, [D, D], such
      that L L^T = W^-1 for the shared Wishart's scale matrix W.
  """
  weight_concentration: tf.Tensor
  mean_loc: tf.Tensor
  mean_precision: tf.Tensor
  dof: tf.Tensor
  scale_tril: tf.Tensor


class TiedStatistics(NamedTuple):
  """Weighted sufficient statistics of a batch under responsibilities r.

  Attributes:
    counts: N_k = sum_n w_n r_nk, [K].
    sum_x: S1_k = sum_n w_n r_nk x_n, [K, D].
    sum_xx: S2 = sum_k sum_n w_n r_nk x_n x_n^T, [D, D] (every component's
      second moments pooled: the shared precision needs only their sum).
  """
  counts: tf.Tensor
  sum_x: tf.Tensor
  sum_xx: tf.Tensor


def cast_posterior(q, dtype):
  """Casts every field of a `TiedPosterior` to `dtype`."""
  return TiedPosterior(*[tf.cast(t, dtype) for t in q])


def _num_features(q, dtype):
  """D as a scalar of `dtype`, from the last dimension of q.mean_loc."""
  return tf.cast(tf.shape(q.mean_loc)[-1], dtype)


def _whiten(scale_tril, rows):
  """L^-1 u for each row u of `rows`, [..., M, D] (rows [M, D] or
  [..., M, D], L [..., D, D])."""
  batch = tf.shape(scale_tril)[:-2]
  columns = tf.linalg.matrix_transpose(rows)                      # [D, M]
  columns = tf.broadcast_to(columns, tf.concat(
      [batch, tf.shape(columns)[-2:]], 0))                        # [..., D, M]
  return tf.linalg.matrix_transpose(tf.linalg.triangular_solve(
      scale_tril, columns, lower=True))                           # [..., M, D]


def _mahalanobis(x, loc, scale_tril):
  """||L^-1 (x_n - m_k)||^2 = (x_n - m_k)^T W (x_n - m_k), [B, K].

  x and the means are whitened once each (one shared L), and the square is
  expanded:

  ```none
  ||u_n - v_k||^2 = ||u_n||^2 - 2 u_n . v_k + ||v_k||^2,   u = L^-1 x, v = L^-1 m
  ```
  one triangular solve of the rows and one matmul, as the diagonal family's
  E-step: no [B, K, D] tensor.

  Args:
    x: [B, D].
    loc: m, [K, D] (or [R, K, D]).
    scale_tril: L, [D, D] (or [R, D, D]).

  Returns:
    [B, K] (or [R, B, K]).
  """
  u = _whiten(scale_tril, x)                                      # [B, D]
  v = _whiten(scale_tril, loc)                                    # [K, D]
  cross = tf.matmul(u, v, transpose_b=True)                       # [B, K]
  return (tf.reduce_sum(tf.square(u), -1)[..., :, None] - 2.0 * cross
          + tf.reduce_sum(tf.square(v), -1)[..., None, :])        # [B, K]


def log_rho(x, q, log_weights=None):
  """Unnormalised log responsibilities of the CAVI local step, [B, K].

  ```none
  log_rho[n, k] = E[ln pi_k] + 0.5 E[ln|Lambda|] - D/2 ln(2 pi)
                  - 0.5 (D / beta_k + nu ||L^-1 (x_n - m_k)||^2)
  ```
  (Bishop 10.46 with 10.64-10.66 and one Lambda). Parameter-only terms in
  float64.

  Args:
    x: data, [B, D].
    q: `TiedPosterior` (optionally with a leading restart axis R).
    log_weights: optional E[ln pi], [K] (or [R, K]); None for q's Dirichlet.

  Returns:
    log_rho: [B, K] (or [R, B, K]), in x's dtype.
  """
  dtype = x.dtype
  q64 = cast_posterior(q, tf.float64)
  d64 = _num_features(q64, tf.float64)
  if log_weights is None:
    log_weights = weight_priors.expected_log_weights(q64.weight_concentration)
  log_det = full.expected_log_det_precision(q64.dof, q64.scale_tril)  # []
  const = tf.cast(tf.cast(log_weights, tf.float64)
                  + 0.5 * log_det[..., None] - 0.5 * d64 * _LOG_2PI
                  - 0.5 * d64 / q64.mean_precision, dtype)        # [K]
  maha = _mahalanobis(x, tf.cast(q.mean_loc, dtype),
                      tf.cast(q.scale_tril, dtype))               # [B, K]
  dof = tf.cast(q.dof, dtype)[..., None, None]                    # [1, 1]
  return tf.expand_dims(const, -2) - 0.5 * dof * maha            # [B, K]


def sufficient_statistics(x, responsibilities, sample_weight=None):
  """Soft counts, first moments and the pooled second moments.

  The components share one scatter matrix, so the second moments need no
  component of their own: with t_n = w_n sum_k r_nk (1 for weighted rows
  of a softmax),

  ```none
  S2 = sum_k sum_n w_n r_nk x_n x_n^T = sum_n t_n x_n x_n^T
  ```
  one [D, D] product per batch. Every sum is taken in float64 (x and r are
  cast): the global step subtracts sum_k S1_k S1_k^T / N_k from S2, and
  float32 sums would leave errors of order eps N |xbar|^2 in the pooled
  scatter (the cancellation `full.sufficient_statistics` centres against).

  Args:
    x: data, [B, D].
    responsibilities: r, [B, K] (or [R, B, K]).
    sample_weight: optional w, [B].

  Returns:
    `TiedStatistics` with counts [K], sum_x [K, D], sum_xx [D, D] (with a
    leading R if r has one), in float64.
  """
  r = responsibilities
  if sample_weight is not None:
    r = r * tf.cast(sample_weight, r.dtype)[:, None]              # [B, K]
  r64 = tf.cast(r, tf.float64)                                    # [B, K]
  x64 = tf.cast(x, tf.float64)                                    # [B, D]
  sum_x = tf.matmul(r64, x64, transpose_a=True)                   # [K, D]
  rows = tf.reduce_sum(r64, -1)                                   # [B]
  sum_xx = tf.matmul(x64 * rows[..., None], x64, transpose_a=True)  # [D, D]
  return TiedStatistics(tf.reduce_sum(r64, -2), sum_x, sum_xx)


def add_statistics(s, t):
  """Elementwise sum of two `TiedStatistics`."""
  return TiedStatistics(*[u + v for u, v in zip(s, t)])


def zero_statistics(q):
  """float64 zero `TiedStatistics` shaped like q's fields."""
  return TiedStatistics(tf.zeros_like(q.weight_concentration, tf.float64),
                        tf.zeros_like(q.mean_loc, tf.float64),    # [K, D]
                        tf.zeros_like(q.scale_tril, tf.float64))  # [D, D]


# ------------------------------------------------------------- global updates


def _outer(u, v):
  """u v^T over the last axis, [..., D, D]."""
  return u[..., :, None] * v[..., None, :]


def _sum_outer(u, v):
  """sum_k u_k v_k^T, [..., D, D] for u, v [..., K, D]."""
  return tf.matmul(u, v, transpose_a=True)


def _global_target(stats, prior, scale, weight_prior):
  """The CAVI global step in float64: (alpha, beta, m, nu, W^-1).

  With the moments taken about m0 (as `full._global_target`):

  ```none
  c_k   = s (S1_k - N_k m0)                                   # [K, D]
  T     = s (S2 - m0 X^T - X m0^T + N m0 m0^T),  X = sum_k S1_k, N = sum_k N_k
  beta  = beta0 + s N_k,   m = m0 + c / beta,   nu = nu0 + s N
  W^-1  = W0^-1 + T - sum_k c_k c_k^T / beta_k
        = W0^-1 + sum_k [scatter_k + (beta0 / (s N_k beta_k)) c_k c_k^T]
  ```
  the prior's scale counted once and positive semi-definite terms added.
  """
  p64 = cast_posterior(prior, tf.float64)
  counts, sum_x, sum_xx = [tf.cast(t, tf.float64) for t in stats]
  s = inference.as_float64(scale)
  m0 = p64.mean_loc                                               # [D]
  alpha = (weight_priors.weight_offset(p64.weight_concentration, weight_prior)
           + s * counts)                                          # [K]
  beta = p64.mean_precision + s * counts                          # [K]
  total = tf.reduce_sum(counts, -1)                               # []
  nu = p64.dof + s * total                                        # []
  about_m0 = s * (sum_x - counts[..., None] * m0)                 # [K, D]
  total_x = tf.reduce_sum(sum_x, -2)                              # [D]
  second = s * (sum_xx - _outer(m0, total_x) - _outer(total_x, m0)
                + total[..., None, None] * _outer(m0, m0))        # [D, D]
  m = m0 + about_m0 / beta[..., None]                             # [K, D]
  cov = (tf.matmul(p64.scale_tril, p64.scale_tril, transpose_b=True)
         + second
         - _sum_outer(about_m0 / beta[..., None], about_m0))      # [D, D]
  return alpha, beta, m, nu, cov


def natural_update(q, stats, prior, scale=1.0, step_size=1.0,
                   weight_prior="dirichlet"):
  """Natural-gradient step on q's global factors (Hoffman et al. 2013, eq. 35).

  ```none
  eta      = (alpha, beta, beta m, nu, W^-1 + sum_k beta_k m_k m_k^T)
  eta_hat  = (alpha0 + s N_k, beta0 + s N_k, beta0 m0 + s S1, nu0 + s N,
              W0^-1 + K beta0 m0 m0^T + s S2)
  eta_new  = (1 - rho) eta + rho eta_hat
  ```
  With s = 1 and rho = 1 this is the exact CAVI global step (module
  docstring). Runs in float64, in the centred form of `full.natural_update`
  summed over the components: with a_k = (1 - rho) beta_q,k and
  b_k = rho beta_hat,k,

  ```none
  W^-1_new = (1 - rho) W^-1_q + rho W^-1_hat
             + sum_k (a_k b_k / (a_k + b_k)) (m_q,k - m_hat,k)(m_q,k - m_hat,k)^T
  ```
  a sum of positive (semi-)definite terms.

  Args:
    q: current `TiedPosterior`.
    stats: `TiedStatistics` of the batch.
    prior: `TiedPosterior` of the prior, broadcastable to q's shapes.
    scale: s = N_total / batch size (the minibatch scale), scalar.
    step_size: rho in (0, 1], scalar.
    weight_prior: "dirichlet" or "dirichlet_process" (see
      `full.natural_update`).

  Returns:
    The updated `TiedPosterior`, in q's dtype.
  """
  q64 = cast_posterior(q, tf.float64)
  new = full.wishart_natural_step64(
      q64, _global_target(stats, prior, scale, weight_prior),
      inference.as_float64(step_size), _sum_outer)
  return cast_posterior(new, q.mean_loc.dtype)


def statistics_from_posterior(q, prior, weight_prior="dirichlet"):
  """The statistics that q is the CAVI posterior of: inverts the global step.

  ```none
  N_k = alpha_k - alpha0 (c_k under the DP prior),   S1 = beta m - beta0 m0,
  S2  = W^-1 - W0^-1 + sum_k beta_k m_k m_k^T - K beta0 m0 m0^T
  ```
  (computed and returned in float64).
  """
  q64, p64 = cast_posterior(q, tf.float64), cast_posterior(prior, tf.float64)
  beta = q64.mean_precision[..., None]                            # [K, 1]
  counts = q64.weight_concentration - weight_priors.weight_offset(
      p64.weight_concentration, weight_prior)                     # [K]
  sum_x = beta * q64.mean_loc - p64.mean_precision * p64.mean_loc  # [K, D]
  k = tf.cast(tf.shape(q64.weight_concentration)[-1], tf.float64)
  sum_xx = (tf.matmul(q64.scale_tril, q64.scale_tril, transpose_b=True)
            - tf.matmul(p64.scale_tril, p64.scale_tril, transpose_b=True)
            + _sum_outer(beta * q64.mean_loc, q64.mean_loc)
            - k * p64.mean_precision * _outer(p64.mean_loc,
                                              p64.mean_loc))      # [D, D]
  return TiedStatistics(counts, sum_x, sum_xx)


def posterior_from_statistics(stats, prior, scale=1.0,
                              weight_prior="dirichlet"):
  """The CAVI global step: q's globals from a batch's statistics (rho = 1).

  Returns the `TiedPosterior` in the prior's dtype.
  """
  alpha, beta, m, nu, cov = _global_target(stats, prior, scale, weight_prior)
  new = TiedPosterior(alpha, m, beta, nu, tf.linalg.cholesky(cov))
  return cast_posterior(new, prior.mean_loc.dtype)


def rescale(q, prior, scale, weight_prior="dirichlet"):
  """The CAVI posterior of q's data repeated `scale` times."""
  return posterior_from_statistics(
      statistics_from_posterior(q, prior, weight_prior), prior, scale,
      weight_prior)


# ------------------------------------------------------------------------- KL


def kl_divergence(q, prior, weight_prior="dirichlet"):
  """KL(q(pi) q(mu, Lambda) || p(pi) p(mu, Lambda)), scalar (or [R]).

  ```none
  KL = KL(q(pi) || p(pi)) + KL(Wishart(W, nu) || Wishart(W0, nu0))
       + sum_k [(D / 2) (beta0 / beta_k - 1 - ln(beta0 / beta_k))
                + (beta0 nu / 2) ||L^-1 (m_k - m0)||^2]
  ```
  The Wishart term counts once (`full.wishart_kl`); each mean's Normal term
  is E_{q(Lambda)} of its Gaussian KL given Lambda, with E[Lambda] = nu W.
  Computed in float64, returned in q's dtype.
  """
  dtype = q.mean_loc.dtype
  q64, p64 = cast_posterior(q, tf.float64), cast_posterior(prior, tf.float64)
  d64 = _num_features(q64, tf.float64)
  ratio = p64.mean_precision / q64.mean_precision                 # [K]
  whitened = _whiten(q64.scale_tril, q64.mean_loc - p64.mean_loc)  # [K, D]
  means_kl = tf.reduce_sum(
      0.5 * d64 * (ratio - 1.0 - tf.math.log(ratio))
      + 0.5 * p64.mean_precision * q64.dof[..., None]
      * tf.reduce_sum(tf.square(whitened), -1), -1)               # []
  kl = (weight_priors.weights_kl(q64.weight_concentration,
                                 p64.weight_concentration, weight_prior)
        + full.wishart_kl(q64.dof, q64.scale_tril, p64.dof, p64.scale_tril)
        + means_kl)
  return tf.cast(kl, dtype)


# ------------------------------------------------------- posterior predictive


def _student_t_factor(q):
  """c_k = (1 + beta_k) / ((nu + 1 - D) beta_k), [K]: component k's
  predictive scale matrix is c_k W^-1 (Bishop 10.82)."""
  df = q.dof + 1.0 - _num_features(q, q.dof.dtype)                # []
  return (1.0 + q.mean_precision) / (df[..., None] * q.mean_precision)


def predictive_component_log_prob(x, q):
  """log St_k(x_n) of each component's predictive, [B, K] (Bishop 10.81).

  Lambda and mu_k integrated out of Normal(x | mu_k, Lambda^-1): a
  multivariate Student-t for each component, sharing df and L:

  ```none
  St_k(x) = StudentT(x | df = nu + 1 - D, loc = m_k, scale = c_k L L^T)
  log St_k(x) = lgamma((nu + 1) / 2) - lgamma((nu + 1 - D) / 2)
                - (D / 2) ln(pi (1 + beta_k) / beta_k) + 0.5 ln|W|
                - ((nu + 1) / 2) ln(1 + beta_k / (1 + beta_k) ||L^-1 (x - m_k)||^2)
  ```
  The normaliser is computed in float64. Forms [B, K, D] temporaries: call
  it on chunks (see `inference.map_chunks`).

  Args:
    x: [B, D].
    q: `TiedPosterior`.

  Returns:
    [B, K] in x's dtype.
  """
  dtype = x.dtype
  q64 = cast_posterior(q, tf.float64)
  d64 = _num_features(q64, tf.float64)
  beta64 = q64.mean_precision                                     # [K]
  norm = tf.cast(tf.math.lgamma(0.5 * (q64.dof + 1.0))
                 - tf.math.lgamma(0.5 * (q64.dof + 1.0 - d64))
                 - 0.5 * d64 * (_LOG_PI + tf.math.log1p(1.0 / beta64))
                 - 0.5 * full.log_det_tril(q64.scale_tril), dtype)  # [K]
  power = tf.cast(0.5 * (q64.dof + 1.0), dtype)                   # []
  shrink = tf.cast(beta64 / (1.0 + beta64), dtype)                # [K]
  maha = _mahalanobis(x, tf.cast(q.mean_loc, dtype),
                      tf.cast(q.scale_tril, dtype))               # [B, K]
  return norm - power * tf.math.log1p(shrink * maha)              # [B, K]


def sample_predictive(n, seed, q, log_mean_weights=None):
  """Draws n points from the posterior predictive with stateless ops, [n, D].

  A component k ~ Categorical(E[pi]), then x = m_k + sqrt(c_k) L z
  sqrt(df / G) with z ~ Normal(0, I_D), G ~ chi-square(df), df = nu + 1 - D.

  Args:
    n: number of draws, int32 scalar.
    seed: a shape [2] int seed for the stateless random ops.
    q: `TiedPosterior`.
    log_mean_weights: log E[pi], [K]; None for the Dirichlet one of q.

  Returns:
    samples: [n, D] in q's dtype.
  """
  dtype = q.mean_loc.dtype
  component, seeds = weight_priors.draw_components(
      n, seed, tf.cast(q.weight_concentration, tf.float64),
      log_mean_weights)                                           # [n]
  loc = tf.gather(q.mean_loc, component)                          # [n, D]
  factor = tf.sqrt(tf.gather(_student_t_factor(q), component))    # [n]
  half_df = 0.5 * (q.dof + 1.0 - _num_features(q, dtype))         # []
  normal = tf.random.stateless_normal(tf.shape(loc), seeds[0],
                                      dtype=dtype)                # [n, D]
  gamma = tf.random.stateless_gamma(tf.shape(factor), seeds[1],
                                    alpha=half_df, dtype=dtype)   # [n]
  correlated = tf.matmul(normal, q.scale_tril, transpose_b=True)  # [n, D]
  return loc + (factor * tf.math.rsqrt(gamma / half_df))[:, None] * correlated


# ------------------------------------------------ unconstrained coordinates


def posterior_from_unconstrained(raw_weight, mean_loc, raw_mean_precision,
                                 raw_dof, raw_tril):
  """q from unconstrained coordinates, as `full.posterior_from_unconstrained`
  (nu = D - 1 + exp(raw_dof), L with an exponentiated diagonal)."""
  return TiedPosterior(*full.posterior_from_unconstrained(
      raw_weight, mean_loc, raw_mean_precision, raw_dof, raw_tril))


def unconstrained_from_posterior(q):
  """The inverse of `posterior_from_unconstrained`, a tuple of tensors."""
  return tuple(full.unconstrained_from_posterior(q))


# ------------------------------------------------------------ the family


def field_shapes(n_components, n_features):
  """Shapes of q's fields: [K], [K, D], [K], [], [D, D]."""
  k, d = n_components, n_features
  return [(k,), (k, d), (k,), (), (d, d)]


def make_prior(n_features, dtype, **settings):
  """The Normal-Wishart prior as a `TiedPosterior` (see `full.make_prior`)."""
  return TiedPosterior(*full.make_prior(n_features, dtype, **settings))


def _scale_matrix_inverse(q):
  """W^-1 = L L^T, numpy [D, D] (float64)."""
  tril = np.asarray(q.scale_tril, np.float64)
  return tril @ tril.T


def expected_precisions(q, scale):
  """E[Lambda] = nu W in data units, numpy [K, D, D] (the same matrix for
  every component)."""
  precision = (float(q.dof) * np.linalg.inv(_scale_matrix_inverse(q))
               / np.outer(scale, scale))                          # [D, D]
  k = int(q.mean_loc.shape[0])
  return np.broadcast_to(precision, (k,) + precision.shape).copy()


def feature_marginals(q, n_features):
  """(a, b, Var(mu)), numpy [K, D] each, of the marginal of Sigma_dd.

  As `full.feature_marginals`, with the shared Wishart: 1 / sigma_d^2 ~
  Gamma((nu - D + 1) / 2, (W^-1)_dd / 2) for every component.
  """
  shape = (int(q.mean_loc.shape[0]), n_features)
  a = np.full(shape, 0.5 * (float(q.dof) - n_features + 1))
  b = np.broadcast_to(0.5 * np.diag(_scale_matrix_inverse(q)), shape)
  return a, b, diag.conjugate_mean_variance(
      a, b, q.mean_precision.numpy()[:, None])


# --------------------------------------------- the scikit-learn face's layout


def sklearn_attributes(q):
  """scikit-learn's tied attributes: covariances_ (D, D) = W^-1 / nu, ...

  precisions_cholesky_ is upper triangular U with U U^T = precisions_ = nu W,
  as scikit-learn stores it; degrees_of_freedom_ is nu (a float).
  """
  dof = float(q.dof)
  covariance_tril = np.asarray(q.scale_tril, np.float64) / np.sqrt(dof)
  precisions_cholesky = scipy.linalg.solve_triangular(
      covariance_tril, np.eye(covariance_tril.shape[-1]), lower=True).T
  return {"covariances": covariance_tril @ covariance_tril.T,
          "precisions": precisions_cholesky @ precisions_cholesky.T,
          "precisions_cholesky": precisions_cholesky,
          "degrees_of_freedom": dof,
          "mean_precision": np.asarray(q.mean_precision)}


def predictive_parameters(q):
  """(df [K], loc [K, D], scale_tril [K, D, D]) of the multivariate
  Student-t predictives: df = nu + 1 - D and sqrt(c_k) L (Bishop 10.82)."""
  factor = tf.sqrt(_student_t_factor(q))                          # [K]
  df = q.dof + 1.0 - _num_features(q, q.dof.dtype)                # []
  return (tf.broadcast_to(df, tf.shape(factor)), q.mean_loc,
          factor[..., None, None] * q.scale_tril)


FAMILY = base.Family(
    covariance_type="tied", mean_prior="conjugate",
    posterior_type=TiedPosterior, field_shapes=field_shapes,
    prior_ranks=(0, 1, 0, 0, 2), component_axes=(0, 0, 0, None, None),
    variable_names=("log_weight_concentration", "mean_loc",
                    "log_mean_precision", "raw_dof", "raw_scale_tril"),
    make_prior=make_prior, cast_posterior=cast_posterior,
    chunk_rows=diag.chunk_rows, estep_chunk_rows=diag.chunk_rows,
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
    sklearn=base.SklearnLayout(2, full.sklearn_prior, sklearn_attributes),
    predictive_parameters=predictive_parameters,
    precision_prior="wishart", methods=("natural", "gradient"),
    free_variances=False)
