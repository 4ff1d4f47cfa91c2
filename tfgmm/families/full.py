"""Pure tensor math of the full-covariance Normal-Wishart Bayesian mixture.

The full-covariance counterpart of `diag` (the diagonal model): the same
contracts (E-step, sufficient statistics, natural-gradient global step, KL,
posterior predictive, chunked CAVI), with [K, D, D] Cholesky factors in place
of per-feature precisions. Only core TensorFlow ops are used (no TFP), so an
exported graph loads with plain TensorFlow. Matrices are never inverted:
every W or Lambda product is a triangular solve against a Cholesky factor.

#### Mathematical Details

Model (Bishop 2006, section 10.2), k = 1..K, n = 1..N, x[n] in R^D:

```none
pi         ~ Dirichlet(alpha0 * ones(K))
Lambda[k]  ~ Wishart(W0, nu0)                 # E[Lambda] = nu0 W0, nu0 > D - 1
mu[k]      ~ Normal(m0, (beta0 Lambda[k])^-1)
z[n]       ~ Categorical(pi)
x[n]       ~ Normal(mu[z[n]], Lambda[z[n]]^-1)
```

Mean-field posterior q(pi) q(mu, Lambda) prod_n q(z[n]):

```none
q(pi)          = Dirichlet(alpha)                                  # [K]
q(mu, Lambda)  = Normal(mu | m, (beta Lambda)^-1) Wishart(Lambda | W, nu)
q(z[n])        = Categorical(r[n])                                 # [N, K]
```

W is stored through L = cholesky(W^-1) (`scale_tril`, [K, D, D], positive
diagonal), so that W^-1 = L L^T, ln|W| = -2 sum_i ln L_ii and
(x - m)^T W (x - m) = ||L^-1 (x - m)||^2. W^-1 is the scatter-like matrix the
global step produces (Bishop 10.62); scikit-learn's `covariances_` are
W^-1 / nu and its `covariance_prior` is W0^-1.

The weight field is handled as in `diag`: it holds the Dirichlet alpha, or
the stick counts c under the truncated Dirichlet-process prior
(`weight_prior="dirichlet_process"`); `log_rho` and the predictive take
E[ln pi] and log E[pi] from the caller when they are not the Dirichlet ones.

Every function also accepts a q with a leading restart dimension R ([R, K],
[R, K, D] and [R, K, D, D] fields): several initialisations then run as one
vectorised computation. The prior is a `FullPosterior` whose fields broadcast
against q's: alpha0 and beta0 and nu0 scalars, m0 [D], cholesky(W0^-1) [D, D].

#### References

[1] Bishop, C. M. Pattern Recognition and Machine Learning, 2006, sec. 10.2.
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

_LOG_2 = math.log(2.0)
_LOG_2PI = math.log(2.0 * math.pi)
_LOG_PI = math.log(math.pi)


class FullPosterior(NamedTuple):
  """Parameters of q (or of the prior, broadcastable to the same shapes).

  Attributes:
    weight_concentration: Dirichlet concentration alpha, [K].
    mean_loc: Normal location m of the means, [K, D].
    mean_precision: precision multiplier beta of the means, [K].
    dof: Wishart degrees of freedom nu > D - 1, [K].
    scale_tril: L, lower triangular with a positive diagonal, [K, D, D], such
      that L L^T = W^-1 for the Wishart scale matrix W (E[Lambda] = nu W).
  """
  weight_concentration: tf.Tensor
  mean_loc: tf.Tensor
  mean_precision: tf.Tensor
  dof: tf.Tensor
  scale_tril: tf.Tensor


class FullStatistics(NamedTuple):
  """Weighted sufficient statistics of a batch under responsibilities r.

  Attributes:
    counts: N_k = sum_n w_n r_nk, [K].
    sum_x: S1_k = sum_n w_n r_nk x_n, [K, D].
    sum_xx: S2_k = sum_n w_n r_nk x_n x_n^T, [K, D, D].
  """
  counts: tf.Tensor
  sum_x: tf.Tensor
  sum_xx: tf.Tensor


class FullUnconstrained(NamedTuple):
  """Unconstrained coordinates of a `FullPosterior` (gradient method).

  Attributes:
    raw_weight: log alpha, [K].
    mean_loc: m, [K, D].
    raw_mean_precision: log beta, [K].
    raw_dof: log(nu - (D - 1)), [K].
    raw_tril: strictly lower part of L, with log L_ii on the diagonal,
      [K, D, D]. The upper triangle is ignored.
  """
  raw_weight: tf.Tensor
  mean_loc: tf.Tensor
  raw_mean_precision: tf.Tensor
  raw_dof: tf.Tensor
  raw_tril: tf.Tensor


def cast_posterior(q, dtype):
  """Casts every field of a `FullPosterior` to `dtype`."""
  return FullPosterior(*[tf.cast(t, dtype) for t in q])


def estep_chunk_rows(n_components, n_features):
  """Rows per chunk of `statistics_and_log_likelihood` and `log_rho`.

  Unlike the diagonal model's E-step ([rows, K + D], `diag.estep_chunk_rows`)
  this one forms [rows, K, D] temporaries (a triangular solve per component
  and the centred second moments), so it is sized like the predictive:
  [rows, K, D] near 2**21 elements. `n_components` counts every restart's
  components (K R) when restarts run together.
  """
  return diag.chunk_rows(n_components, n_features)


def chunk_rows(n_components, n_features):
  """Rows per predictive chunk so that [rows, K, D] stays near 2**21."""
  return diag.chunk_rows(n_components, n_features)


def _num_features(q, dtype):
  """D as a scalar of `dtype`, from the last dimension of q.mean_loc."""
  return tf.cast(tf.shape(q.mean_loc)[-1], dtype)


def _outer(u, v):
  """u v^T over the last axis, [..., D, D]."""
  return u[..., :, None] * v[..., None, :]


def _gram(tril):
  """L L^T, [..., D, D]."""
  return tf.matmul(tril, tril, transpose_b=True)


# ---------------------------------------------------------------- expectations


def _multivariate_digamma(a, d):
  """sum_{i=0}^{d-1} digamma(a - i / 2), [...] for a of shape [...]."""
  half_steps = 0.5 * tf.range(tf.cast(d, a.dtype), dtype=a.dtype)  # [D]
  return tf.reduce_sum(tf.math.digamma(a[..., None] - half_steps), -1)


def _multivariate_lgamma(a, d):
  """log Gamma_d(a) = d (d - 1) / 4 ln pi + sum_i lgamma(a - i / 2), [...]."""
  d = tf.cast(d, a.dtype)
  half_steps = 0.5 * tf.range(d, dtype=a.dtype)                    # [D]
  return (0.25 * d * (d - 1.0) * _LOG_PI
          + tf.reduce_sum(tf.math.lgamma(a[..., None] - half_steps), -1))


def log_det_tril(scale_tril):
  """ln|L L^T| = 2 sum_i ln L_ii, [...] for L of shape [..., D, D]."""
  return 2.0 * tf.reduce_sum(
      tf.math.log(tf.linalg.diag_part(scale_tril)), -1)


def expected_log_det_precision(dof, scale_tril):
  """E_q[ln|Lambda|] under Wishart(W, nu), [K] (Bishop 10.65).

  ```none
  E[ln|Lambda|] = sum_{i=1}^D digamma((nu + 1 - i) / 2) + D ln 2 + ln|W|
  ```
  with ln|W| = -ln|L L^T|.

  Args:
    dof: nu, [K].
    scale_tril: L, [K, D, D].

  Returns:
    [K], in the inputs' dtype (call it in float64 for large nu).
  """
  d = tf.shape(scale_tril)[-1]
  return (_multivariate_digamma(0.5 * dof, d)
          + tf.cast(d, dof.dtype) * _LOG_2 - log_det_tril(scale_tril))


def _mahalanobis(x, loc, scale_tril):
  """||L_k^-1 (x_n - m_k)||^2 = (x_n - m_k)^T W_k (x_n - m_k), [B, K].

  Forms [K, D, B] temporaries (one triangular solve per component): call it
  on chunks of rows.

  Args:
    x: [B, D].
    loc: m, [K, D] (or [R, K, D]).
    scale_tril: L, [K, D, D] (or [R, K, D, D]).

  Returns:
    [B, K] (or [R, B, K]).
  """
  diff = tf.transpose(x) - loc[..., :, None]                      # [K, D, B]
  whitened = tf.linalg.triangular_solve(scale_tril, diff,
                                        lower=True)               # [K, D, B]
  return tf.linalg.matrix_transpose(
      tf.reduce_sum(tf.square(whitened), -2))                     # [B, K]


def log_rho(x, q, log_weights=None):
  """Unnormalised log responsibilities of the CAVI local step, [B, K].

  ```none
  log_rho[n, k] = E[ln pi_k] + 0.5 E[ln|Lambda_k|] - D/2 ln(2 pi)
                  - 0.5 (D / beta_k + nu_k ||L_k^-1 (x_n - m_k)||^2)
  ```
  (Bishop 10.46 with 10.64-10.66). The parameter-only terms are [K]: they are
  computed in float64, where digamma of a large count keeps its digits. The
  data term is a triangular solve per component, not an expanded square, so
  it does not cancel in float32.

  Args:
    x: data, [B, D].
    q: `FullPosterior` with [K], [K, D] and [K, D, D] fields (or with a
      leading restart axis R).
    log_weights: optional E[ln pi], [K] (or [R, K]), replacing the Dirichlet
      digamma(alpha_k) - digamma(sum_j alpha_j), e.g. for a stick-breaking
      prior on the weights.

  Returns:
    log_rho: [B, K] (or [R, B, K]), in x's dtype.
  """
  dtype = x.dtype
  q64 = cast_posterior(q, tf.float64)
  d64 = _num_features(q64, tf.float64)
  if log_weights is None:
    log_weights64 = weight_priors.expected_log_weights(q64.weight_concentration)
  else:
    log_weights64 = tf.cast(log_weights, tf.float64)              # [K]
  const = tf.cast(log_weights64
                  + 0.5 * expected_log_det_precision(q64.dof, q64.scale_tril)
                  - 0.5 * d64 * _LOG_2PI
                  - 0.5 * d64 / q64.mean_precision, dtype)        # [K]
  maha = _mahalanobis(x, tf.cast(q.mean_loc, dtype),
                      tf.cast(q.scale_tril, dtype))               # [B, K]
  return (tf.expand_dims(const, -2)
          - 0.5 * tf.expand_dims(tf.cast(q.dof, dtype), -2) * maha)  # [B, K]


def sufficient_statistics(x, responsibilities, sample_weight=None):
  """Soft counts, first and second moments of a batch; see `FullStatistics`.

  The second moments are accumulated about each component's batch mean
  xbar_k = S1_k / N_k, in x's dtype, and shifted back in float64:

  ```none
  S2_k = sum_n w_n r_nk (x_n - xbar_k)(x_n - xbar_k)^T
         + xbar_k S1_k^T + S1_k xbar_k^T - N_k xbar_k xbar_k^T
  ```
  (exact for any shift). Raw float32 sums of x x^T would carry rounding
  errors of order eps N |xbar|^2, which swamp the scatter of a tight
  component away from the origin and make W^-1 indefinite; the global step
  subtracts the same S1 again in float64, so the shift cancels exactly there.

  Args:
    x: data, [B, D].
    responsibilities: r, [B, K] (or [R, B, K]).
    sample_weight: optional w, [B].

  Returns:
    `FullStatistics` with counts [K], sum_x [K, D], sum_xx [K, D, D] (with a
    leading R if r has one), in float64 whatever x's dtype.
  """
  r = responsibilities
  if sample_weight is not None:
    r = r * tf.cast(sample_weight, r.dtype)[:, None]              # [B, K]
  counts = tf.reduce_sum(r, -2)                                   # [K]
  sum_x = tf.matmul(r, x, transpose_a=True)                       # [K, D]
  shift = tf.math.divide_no_nan(sum_x, counts[..., None])         # [K, D]
  # Built component-major, so no transpose: one batched matmul per
  # component, [K, D, B] @ [K, B, D].
  centred = x - shift[..., :, None, :]                            # [K, B, D]
  weighted = centred * tf.linalg.matrix_transpose(r)[..., None]   # [K, B, D]
  scatter = tf.matmul(weighted, centred, transpose_a=True)        # [K, D, D]
  counts, sum_x, shift, scatter = [
      tf.cast(t, tf.float64) for t in (counts, sum_x, shift, scatter)]
  sum_xx = (scatter + _outer(shift, sum_x) + _outer(sum_x, shift)
            - counts[..., None, None] * _outer(shift, shift))     # [K, D, D]
  return FullStatistics(counts, sum_x, sum_xx)


def add_statistics(s, t):
  """Elementwise sum of two `FullStatistics`."""
  return FullStatistics(*[u + v for u, v in zip(s, t)])


# ------------------------------------------------------------- global updates


def _global_target(stats, prior, scale, weight_prior):
  """The CAVI global step in float64: (alpha, beta, m, nu, W^-1).

  Bishop 10.58, 10.60-10.63 (nu = nu0 + N: the book's 10.63 has a typo), with
  the moments taken about m0:

  ```none
  c     = s (S1 - N m0)                                  # [K, D]
  T     = s (S2 - m0 S1^T - S1 m0^T + N m0 m0^T)         # [K, D, D]
  beta  = beta0 + s N,   m = m0 + c / beta
  W^-1  = W0^-1 + T - c c^T / beta
        = W0^-1 + scatter + (beta0 / (s N beta)) c c^T
  ```
  which equals W0^-1 + beta0 m0 m0^T + s S2 - beta m m^T. The last line shows
  it is the prior plus positive semi-definite terms; the subtraction in it
  loses only the digits of |mean - m0|^2 / variance, a few for standardised
  data in float64.
  """
  p64 = cast_posterior(prior, tf.float64)
  counts, sum_x, sum_xx = [tf.cast(t, tf.float64) for t in stats]
  s = inference.as_float64(scale)
  m0 = p64.mean_loc                                               # [D]
  prior_cov = _gram(p64.scale_tril)                               # [D, D]
  alpha = (weight_priors.weight_offset(p64.weight_concentration, weight_prior)
           + s * counts)                                          # [K]
  beta = p64.mean_precision + s * counts                          # [K]
  nu = p64.dof + s * counts                                       # [K]
  about_m0 = s * (sum_x - counts[..., None] * m0)                 # [K, D]
  second = s * (sum_xx - _outer(m0, sum_x) - _outer(sum_x, m0)
                + counts[..., None, None] * _outer(m0, m0))       # [K, D, D]
  m = m0 + about_m0 / beta[..., None]                             # [K, D]
  cov = (prior_cov + second
         - _outer(about_m0, about_m0) / beta[..., None, None])    # [K, D, D]
  return alpha, beta, m, nu, cov


def natural_update(q, stats, prior, scale=1.0, step_size=1.0,
                   weight_prior="dirichlet"):
  """Natural-gradient step on q's global factors (Hoffman et al. 2013, eq. 35).

  ```none
  eta      = (alpha, beta, beta m, nu, W^-1 + beta m m^T)
  eta_hat  = (alpha0 + s N, beta0 + s N, beta0 m0 + s S1, nu0 + s N,
              W0^-1 + beta0 m0 m0^T + s S2)
  eta_new  = (1 - rho) eta + rho eta_hat
  ```
  then m = (beta m) / beta, W^-1 = (W^-1 + beta m m^T) - beta m m^T and
  L = cholesky(W^-1). With s = 1 (the batch is all the data) and rho = 1 this
  is the CAVI global step (Bishop 10.58, 10.60-10.63).

  The step runs in float64 whatever q's dtype, and in an algebraically equal
  centred form: with a = (1 - rho) beta_q and b = rho beta_hat,

  ```none
  W^-1_new = (1 - rho) W^-1_q + rho W^-1_hat
             + (a b / (a + b)) (m_q - m_hat) (m_q - m_hat)^T
  ```
  a sum of positive (semi-)definite terms, so the interpolation itself cannot
  break positive definiteness (the raw form subtracts beta m m^T, of order
  N |m|^2, from a matrix of the same order). W^-1_hat is formed from moments
  about m0 (see `_global_target`).

  Args:
    q: current `FullPosterior`.
    stats: `FullStatistics` of the batch.
    prior: `FullPosterior` of the prior, broadcastable to q's shapes.
    scale: s = N_total / batch size (the minibatch scale), scalar.
    step_size: rho in (0, 1], scalar.
    weight_prior: "dirichlet" (the weight field is alpha = alpha0 + s N) or
      "dirichlet_process" (it is the stick counts c = s N; see
      `weight_priors.stick_concentrations`).

  Returns:
    The updated `FullPosterior`, in q's dtype.
  """
  q64 = cast_posterior(q, tf.float64)
  new = wishart_natural_step64(
      q64, _global_target(stats, prior, scale, weight_prior),
      inference.as_float64(step_size), _outer)
  return cast_posterior(new, q.mean_loc.dtype)


def wishart_natural_step64(q64, target, rho, scatter):
  """The natural step of a Normal-Wishart q in float64 (full and tied).

  ```none
  beta  = (1 - rho) beta_q + rho beta_hat,  m = the beta-weighted mean
  W^-1  = (1 - rho) W^-1_q + rho W^-1_hat
          + (a b / (a + b)) (m_q - m_hat)(m_q - m_hat)^T,
  a = (1 - rho) beta_q, b = rho beta_hat
  ```
  alpha and nu interpolate linearly.

  Args:
    q64: the current posterior, float64 (any Normal-Wishart record).
    target: (alpha_hat, beta_hat, m_hat, nu_hat, W^-1_hat), the CAVI
      target of the batch.
    rho: the step size, float64 scalar.
    scatter: (u [K, D], v [K, D]) -> the jump term's u v^T per component
      ([K, D, D], full) or summed over components ([D, D], tied).

  Returns:
    The new posterior, of q64's type, float64.
  """
  alpha_hat, beta_hat, m_hat, nu_hat, cov_hat = target
  old_weight = (1.0 - rho) * q64.mean_precision                   # [K]
  new_weight = rho * beta_hat                                     # [K]
  beta = old_weight + new_weight                                  # [K]
  m = (old_weight[..., None] * q64.mean_loc
       + new_weight[..., None] * m_hat) / beta[..., None]         # [K, D]
  jump = q64.mean_loc - m_hat                                     # [K, D]
  cov = ((1.0 - rho) * _gram(q64.scale_tril) + rho * cov_hat
         + scatter((old_weight * new_weight / beta)[..., None] * jump,
                   jump))                                         # like W^-1
  alpha = (1.0 - rho) * q64.weight_concentration + rho * alpha_hat  # [K]
  nu = (1.0 - rho) * q64.dof + rho * nu_hat                       # like nu
  return type(q64)(
      tf.broadcast_to(alpha, tf.shape(q64.weight_concentration)),
      tf.broadcast_to(m, tf.shape(q64.mean_loc)),
      tf.broadcast_to(beta, tf.shape(q64.mean_precision)),
      tf.broadcast_to(nu, tf.shape(q64.dof)),
      tf.linalg.cholesky(tf.broadcast_to(cov, tf.shape(q64.scale_tril))))


def statistics_from_posterior(q, prior, weight_prior="dirichlet"):
  """The statistics that q is the CAVI posterior of: inverts the global step.

  ```none
  N = alpha - alpha0 (c under the DP prior),   S1 = beta m - beta0 m0,
  S2 = W^-1 + beta m m^T - W0^-1 - beta0 m0 m0^T
  ```
  (computed and returned in float64). `posterior_from_statistics(stats,
  prior, s)` of the result rescales q's data to s times as many rows.
  """
  q64, p64 = cast_posterior(q, tf.float64), cast_posterior(prior, tf.float64)
  beta = q64.mean_precision[..., None]                            # [K, 1]
  counts = q64.weight_concentration - weight_priors.weight_offset(
      p64.weight_concentration, weight_prior)                     # [K]
  sum_x = beta * q64.mean_loc - p64.mean_precision * p64.mean_loc  # [K, D]
  sum_xx = (_gram(q64.scale_tril) - _gram(p64.scale_tril)
            + beta[..., None] * _outer(q64.mean_loc, q64.mean_loc)
            - p64.mean_precision * _outer(p64.mean_loc,
                                          p64.mean_loc))          # [K, D, D]
  return FullStatistics(counts, sum_x, sum_xx)


def posterior_from_statistics(stats, prior, scale=1.0,
                              weight_prior="dirichlet"):
  """The CAVI global step: q's globals from a batch's statistics (rho = 1).

  Computed in float64 (see `natural_update`).

  Args:
    stats: `FullStatistics` (float64, from `sufficient_statistics`).
    prior: `FullPosterior` of the prior.
    scale: s, the statistics count s times (N_total / batch size), scalar.
    weight_prior: "dirichlet" or "dirichlet_process" (see `natural_update`).

  Returns:
    `FullPosterior` in the prior's dtype (statistics are always float64).
  """
  alpha, beta, m, nu, cov = _global_target(stats, prior, scale,
                                           weight_prior)
  new = FullPosterior(alpha, m, beta, nu, tf.linalg.cholesky(cov))
  return cast_posterior(new, prior.mean_loc.dtype)


# ------------------------------------------------------------------------- KL


def wishart_kl(dof, scale_tril, prior_dof, prior_scale_tril):
  """KL(Wishart(W, nu) || Wishart(W0, nu0)), [K]; W^-1 = L L^T.

  ```none
  KL = (nu0 / 2) (ln|W0| - ln|W|) + ln Gamma_D(nu0 / 2) - ln Gamma_D(nu / 2)
       + ((nu - nu0) / 2) psi_D(nu / 2) + (nu / 2) (tr(W0^-1 W) - D)
  ```
  with psi_D(a) = sum_{i=0}^{D-1} digamma(a - i / 2) and
  tr(W0^-1 W) = ||L^-1 L0||_F^2 (Bishop B.78-B.82). Call it in float64 for
  large nu: the lgamma and digamma terms are of order nu ln nu.

  Args:
    dof: nu, [K].
    scale_tril: L = cholesky(W^-1), [K, D, D].
    prior_dof: nu0, broadcastable to [K].
    prior_scale_tril: L0 = cholesky(W0^-1), broadcastable to [K, D, D].

  Returns:
    [K].
  """
  d = tf.shape(scale_tril)[-1]
  d_float = tf.cast(d, dof.dtype)
  prior_scale_tril = tf.broadcast_to(prior_scale_tril, tf.shape(scale_tril))
  trace = tf.reduce_sum(tf.square(tf.linalg.triangular_solve(
      scale_tril, prior_scale_tril, lower=True)), [-2, -1])       # [K]
  return (0.5 * prior_dof * (log_det_tril(scale_tril)
                             - log_det_tril(prior_scale_tril))
          + _multivariate_lgamma(0.5 * prior_dof + tf.zeros_like(dof), d)
          - _multivariate_lgamma(0.5 * dof, d)
          + 0.5 * (dof - prior_dof) * _multivariate_digamma(0.5 * dof, d)
          + 0.5 * dof * (trace - d_float))


def normal_wishart_kl(q, prior):
  """KL(q(mu_k, Lambda_k) || p(mu_k, Lambda_k)) per component, [K].

  ```none
  KL = KL(Wishart(W, nu) || Wishart(W0, nu0))
       + (D / 2) (beta0 / beta - 1 - ln(beta0 / beta))
       + (beta0 nu / 2) ||L^-1 (m - m0)||^2
  ```
  (the Normal term is E_{q(Lambda)} of the Gaussian KL, with E[Lambda] = nu W).
  Computed in float64, returned in q's dtype.
  """
  dtype = q.mean_loc.dtype
  q64, p64 = cast_posterior(q, tf.float64), cast_posterior(prior, tf.float64)
  d64 = _num_features(q64, tf.float64)
  ratio = p64.mean_precision / q64.mean_precision                 # [K]
  whitened = tf.linalg.triangular_solve(
      q64.scale_tril, (q64.mean_loc - p64.mean_loc)[..., None],
      lower=True)[..., 0]                                         # [K, D]
  kl = (wishart_kl(q64.dof, q64.scale_tril, p64.dof, p64.scale_tril)
        + 0.5 * d64 * (ratio - 1.0 - tf.math.log(ratio))
        + 0.5 * p64.mean_precision * q64.dof
        * tf.reduce_sum(tf.square(whitened), -1))                 # [K]
  return tf.cast(kl, dtype)


def component_kl(q, prior):
  """sum_k KL(q(mu_k, Lambda_k) || p(mu_k, Lambda_k)), scalar (or [R])."""
  return tf.reduce_sum(normal_wishart_kl(q, prior), -1)


def kl_divergence(q, prior, weight_prior="dirichlet"):
  """KL(q(pi) q(mu, Lambda) || p(pi) p(mu, Lambda)), scalar (or [R]).

  The weights' KL is `weight_priors.weights_kl` (Dirichlet, or the stick-breaking
  Betas). Computed in float64 (lgamma of counts of order N), returned in q's
  dtype.
  """
  weights_kl = weight_priors.weights_kl(
      tf.cast(q.weight_concentration, tf.float64),
      tf.cast(prior.weight_concentration, tf.float64), weight_prior)
  return tf.cast(weights_kl, q.mean_loc.dtype) + component_kl(q, prior)


# ------------------------------------------------------- posterior predictive


def student_t_scale_tril(q):
  """Cholesky factor of each component's predictive scale matrix, [K, D, D].

  ```none
  scale matrix = (1 + beta) / ((nu + 1 - D) beta) W^-1       (Bishop 10.82)
  scale_tril   = sqrt((1 + beta) / ((nu + 1 - D) beta)) L
  ```
  """
  df = q.dof + 1.0 - _num_features(q, q.dof.dtype)                # [K]
  factor = tf.sqrt((1.0 + q.mean_precision) / (df * q.mean_precision))
  return factor[..., None, None] * q.scale_tril                   # [K, D, D]


def predictive_parameters(q):
  """(df [K], loc [K, D], scale_tril [K, D, D]) of the predictive Student-t's
  (Bishop 10.81-10.82)."""
  df = q.dof + 1.0 - _num_features(q, q.dof.dtype)                # [K]
  return df, q.mean_loc, student_t_scale_tril(q)


def predictive_component_log_prob(x, q):
  """log St_k(x_n) of each component's predictive, [B, K] (Bishop 10.81).

  ```none
  St_k(x) = StudentT(x | df = nu + 1 - D, loc = m, scale = S)
  S S^T   = (1 + beta) / ((nu + 1 - D) beta) L L^T
  log St_k(x) = lgamma((nu + 1) / 2) - lgamma((nu + 1 - D) / 2)
                - (D / 2) ln(pi (1 + beta) / beta) + 0.5 ln|W|
                - ((nu + 1) / 2) ln(1 + beta / (1 + beta) ||L^-1 (x - m)||^2)
  ```
  The normaliser is computed in float64 (lgamma differences of order nu ln nu
  lose whole hundredths of a nat in float32). Forms [K, D, B] temporaries:
  call it on chunks (see `inference.map_chunks`).

  NaN entries of x are missing values: a row's density is then the marginal
  of its observed block (`_observed_block_log_prob`).

  Args:
    x: [B, D].
    q: `FullPosterior`.

  Returns:
    [B, K] in x's dtype.
  """
  return tf.cond(tf.reduce_any(tf.math.is_nan(x)),
                 lambda: _observed_block_log_prob(x, q),
                 lambda: _complete_rows_log_prob(x, q))


def _observed_block_log_prob(x, q):
  """log St_k(x_o) of each row's observed block x_o, [B, K].

  The marginal of a multivariate Student-t over p of its D coordinates is
  the Student-t with the same df, the sub-vector of the location and the
  sub-matrix S_oo of the scale matrix (S = c W^-1, c = (1 + beta) /
  ((nu + 1 - D) beta)):

  ```none
  log St(x_o) = lgamma((df + p) / 2) - lgamma(df / 2) - (p / 2) ln(df pi c)
                - 0.5 ln|W^-1_oo| - ((df + p) / 2) ln(1 + delta^2 / (c df))
  delta^2     = (x_o - m_o)^T (W^-1_oo)^-1 (x_o - m_o)
  ```
  Per row, W^-1 is replaced by o o^T * W^-1 + diag(1 - o) (o the observed
  mask): its Cholesky factor gives ln|W^-1_oo| and delta^2 by a triangular
  solve, with the missing coordinates contributing nothing. Forms
  [B, K, D, D] temporaries: call it on chunks.
  """
  dtype = x.dtype
  observed = tf.cast(tf.logical_not(tf.math.is_nan(x)), dtype)    # [B, D]
  x0 = tf.where(observed > 0, x, tf.zeros_like(x))                # [B, D]
  q64 = cast_posterior(q, tf.float64)
  d64 = _num_features(q64, tf.float64)
  df64 = q64.dof + 1.0 - d64                                      # [K]
  c64 = (1.0 + q64.mean_precision) / (df64 * q64.mean_precision)  # [K]
  cov = tf.cast(_gram(q64.scale_tril), dtype)                     # [K, D, D]
  mask = observed[:, None, :, None] * observed[:, None, None, :]  # [B, 1, D, D]
  masked = (mask * cov
            + tf.linalg.diag(1.0 - observed)[:, None])            # [B, K, D, D]
  tril = tf.linalg.cholesky(masked)                               # [B, K, D, D]
  diff = observed[:, None, :] * (x0[:, None, :]
                                 - tf.cast(q.mean_loc, dtype))    # [B, K, D]
  whitened = tf.linalg.triangular_solve(tril, diff[..., None])    # [B, K, D, 1]
  maha = tf.reduce_sum(tf.square(whitened[..., 0]), -1)           # [B, K]
  log_det = 2.0 * tf.reduce_sum(
      tf.math.log(tf.linalg.diag_part(tril)), -1)                 # [B, K]
  p64 = tf.cast(tf.reduce_sum(observed, -1), tf.float64)[:, None]  # [B, 1]
  norm = tf.cast(tf.math.lgamma(0.5 * (df64 + p64))
                 - tf.math.lgamma(0.5 * df64)
                 - 0.5 * p64 * tf.math.log(df64 * math.pi * c64),
                 dtype)                                           # [B, K]
  power = tf.cast(0.5 * (df64 + p64), dtype)                      # [B, K]
  scale = tf.cast(c64 * df64, dtype)                              # [K]
  return norm - 0.5 * log_det - power * tf.math.log1p(maha / scale)


def _complete_rows_log_prob(x, q):
  """`predictive_component_log_prob` of rows without missing values."""
  dtype = x.dtype
  q64 = cast_posterior(q, tf.float64)
  d64 = _num_features(q64, tf.float64)
  beta64 = q64.mean_precision                                     # [K]
  norm = tf.cast(tf.math.lgamma(0.5 * (q64.dof + 1.0))
                 - tf.math.lgamma(0.5 * (q64.dof + 1.0 - d64))
                 - 0.5 * d64 * (_LOG_PI + tf.math.log1p(1.0 / beta64))
                 - 0.5 * log_det_tril(q64.scale_tril), dtype)     # [K]
  power = tf.cast(0.5 * (q64.dof + 1.0), dtype)                   # [K]
  shrink = tf.cast(beta64 / (1.0 + beta64), dtype)                # [K]
  maha = _mahalanobis(x, tf.cast(q.mean_loc, dtype),
                      tf.cast(q.scale_tril, dtype))               # [B, K]
  return (tf.expand_dims(norm, -2)
          - tf.expand_dims(power, -2)
          * tf.math.log1p(tf.expand_dims(shrink, -2) * maha))     # [B, K]


def sample_predictive(n, seed, q, log_mean_weights=None):
  """Draws n points from the posterior predictive with stateless ops, [n, D].

  A component k ~ Categorical(E[pi]), then the multivariate Student-t
  x = m_k + S_k z sqrt(df / G) with z ~ Normal(0, I_D), G ~ chi-square(df),
  df = nu_k + 1 - D and S_k = `student_t_scale_tril(q)[k]`.

  Args:
    n: number of draws, int32 scalar.
    seed: a shape [2] int seed for the stateless random ops.
    q: `FullPosterior` (with a leading R, the draws are [R, n, D]).
    log_mean_weights: log E[pi], [K]; None for the Dirichlet one of q.

  Returns:
    samples: [n, D] in q's dtype.
  """
  dtype = q.mean_loc.dtype
  batched = q.weight_concentration.shape.rank == 2
  seeds = tf.random.experimental.stateless_split(seed, 3)
  if log_mean_weights is None:
    log_mean_weights = weight_priors.log_expected_weights(
        tf.cast(q.weight_concentration, tf.float64))
  logits = tf.cast(log_mean_weights, tf.float64)                  # [K]
  if not batched:
    logits = logits[None]                                         # [1, K]
  component = tf.random.stateless_categorical(logits, n, seeds[0])  # [1, n]
  if not batched:
    component = component[0]                                      # [n]
  batch_dims = 1 if batched else 0
  loc = tf.gather(q.mean_loc, component, axis=-2,
                  batch_dims=batch_dims)                          # [n, D]
  scale_tril = tf.gather(student_t_scale_tril(q), component, axis=-3,
                         batch_dims=batch_dims)                   # [n, D, D]
  half_df = 0.5 * tf.gather(q.dof + 1.0 - _num_features(q, dtype), component,
                            axis=-1, batch_dims=batch_dims)       # [n]
  normal = tf.random.stateless_normal(tf.shape(loc), seeds[1],
                                      dtype=dtype)                # [n, D]
  gamma = tf.random.stateless_gamma(tf.shape(half_df), seeds[2],
                                    alpha=half_df, dtype=dtype)   # [n]
  return loc + (tf.linalg.matvec(scale_tril, normal)
                * tf.math.rsqrt(gamma / half_df)[..., None])      # [n, D]


# ------------------------------------------------ unconstrained coordinates


def posterior_from_unconstrained(raw_weight, mean_loc, raw_mean_precision,
                                 raw_dof, raw_tril):
  """q from unconstrained coordinates (for gradient-based fitting).

  Positive parameters are exponentials (log-space, so an optimizer's steps
  are relative), nu = (D - 1) + exp(raw_dof) > D - 1, and
  L = strictly_lower(raw_tril) + diag(exp(diag(raw_tril))), which is lower
  triangular with a positive diagonal whatever raw_tril is.

  Args:
    raw_weight: [K].
    mean_loc: [K, D].
    raw_mean_precision: [K].
    raw_dof: [K].
    raw_tril: [K, D, D]; its upper triangle is ignored.

  Returns:
    `FullPosterior`.
  """
  mean_loc = tf.convert_to_tensor(mean_loc)
  raw_tril = tf.convert_to_tensor(raw_tril)
  d = tf.cast(tf.shape(mean_loc)[-1], mean_loc.dtype)
  scale_tril = tf.linalg.set_diag(
      tf.linalg.band_part(raw_tril, -1, 0),
      tf.exp(tf.linalg.diag_part(raw_tril)))                      # [K, D, D]
  return FullPosterior(tf.exp(raw_weight), mean_loc,
                       tf.exp(raw_mean_precision),
                       (d - 1.0) + tf.exp(raw_dof), scale_tril)


def unconstrained_from_posterior(q):
  """The inverse of `posterior_from_unconstrained`: a `FullUnconstrained`."""
  d = _num_features(q, q.dof.dtype)
  raw_tril = tf.linalg.set_diag(
      tf.linalg.band_part(q.scale_tril, -1, 0),
      tf.math.log(tf.linalg.diag_part(q.scale_tril)))             # [K, D, D]
  return FullUnconstrained(weight_priors.log_weight_field(q.weight_concentration),
                           q.mean_loc,
                           tf.math.log(q.mean_precision),
                           tf.math.log(q.dof - (d - 1.0)), raw_tril)


def zero_statistics(q):
  """float64 zero `FullStatistics` shaped like q's fields."""
  return FullStatistics(tf.zeros_like(q.weight_concentration, tf.float64),
                        tf.zeros_like(q.mean_loc, tf.float64),    # [K, D]
                        tf.zeros_like(q.scale_tril, tf.float64))  # [K, D, D]


def rescale(q, prior, scale, weight_prior="dirichlet"):
  """The CAVI posterior of q's data repeated `scale` times."""
  return posterior_from_statistics(
      statistics_from_posterior(q, prior, weight_prior), prior, scale,
      weight_prior)


# ------------------------------------------------------------ the family


def field_shapes(n_components, n_features):
  """Shapes of q's fields: [K], [K, D], [K], [K], [K, D, D]."""
  k, d = n_components, n_features
  return [(k,), (k, d), (k,), (k,), (k, d, d)]


def make_prior(n_features, dtype, *, weight_concentration, mean_loc,
               mean_precision, degrees_of_freedom, scale_matrix, **unused):
  """The Normal-Wishart prior as a `FullPosterior` of tensors.

  Its scale field is L0 = cholesky(W0^-1), computed once in float64
  (W0 = I when `scale_matrix` is None).
  """
  del unused
  d = n_features
  w0 = np.eye(d) if scale_matrix is None else np.asarray(scale_matrix)
  w0_inv_tril = np.linalg.cholesky(np.linalg.inv(w0))
  return FullPosterior(
      tf.constant(weight_concentration, dtype),
      tf.constant(np.broadcast_to(mean_loc, (d,)), dtype),
      tf.constant(mean_precision, dtype),
      tf.constant(degrees_of_freedom, dtype),
      tf.constant(w0_inv_tril, dtype))


def expected_precisions(q, scale):
  """E[Lambda] = nu W in data units, numpy [K, D, D]."""
  tril = q.scale_tril.numpy()                                     # [K, D, D]
  w_inv = tril @ np.swapaxes(tril, -1, -2)                        # W^-1
  return (q.dof.numpy()[:, None, None] * np.linalg.inv(w_inv)
          / np.outer(scale, scale))                               # [K, D, D]


def feature_marginals(q, n_features):
  """(a, b, Var(mu)), numpy [K, D] each, of the marginal of Sigma_dd.

  Under the inverse Wishart, Sigma_dd ~ inverse-Gamma((nu - D + 1) / 2,
  (W^-1)_dd / 2), so 1 / sigma_d^2 ~ Gamma(a, b) with those parameters;
  mu_d's marginal is the conjugate Student-t (`diag.conjugate_mean_variance`).
  """
  w_inv_diag = np.square(q.scale_tril.numpy()).sum(-1)            # [K, D]
  a = np.broadcast_to(0.5 * (q.dof.numpy() - n_features + 1)[:, None],
                      w_inv_diag.shape)
  b = 0.5 * w_inv_diag
  return a, b, diag.conjugate_mean_variance(
      a, b, q.mean_precision.numpy()[:, None])


# --------------------------------------------- the scikit-learn face's layout


def sklearn_prior(degrees_of_freedom, covariance, n_features):
  """scikit-learn's (nu0, covariance_prior = W0^-1 [D, D]) as the Wishart
  prior's keyword arguments (`BayesianGMM` takes W0 and factors W0^-1)."""
  del n_features
  scale_matrix = np.linalg.inv(covariance)
  return {"degrees_of_freedom": degrees_of_freedom,
          "scale_matrix": 0.5 * (scale_matrix + scale_matrix.T)}


def sklearn_attributes(q):
  """scikit-learn's full attributes: covariances_ (K, D, D) = W^-1 / nu, ...

  precisions_cholesky_ are upper triangular U_k with U_k U_k^T =
  precisions_[k] = nu_k W_k, as scikit-learn stores them.
  """
  dof = np.asarray(q.dof)                                         # [K]
  # W^-1 = L L^T, so cholesky(W^-1 / nu) = L / sqrt(nu).
  covariance_tril = np.asarray(q.scale_tril) / np.sqrt(dof)[:, None, None]
  eye = np.eye(covariance_tril.shape[-1])
  precisions_cholesky = np.stack([
      scipy.linalg.solve_triangular(tril, eye, lower=True).T
      for tril in covariance_tril])                               # [K, D, D]
  return {"covariances": covariance_tril @ np.swapaxes(covariance_tril,
                                                       -1, -2),
          "precisions": precisions_cholesky @ np.swapaxes(
              precisions_cholesky, -1, -2),
          "precisions_cholesky": precisions_cholesky,
          "degrees_of_freedom": dof,
          "mean_precision": np.asarray(q.mean_precision)}


FAMILY = base.Family(
    covariance_type="full", mean_prior="conjugate",
    posterior_type=FullPosterior, field_shapes=field_shapes,
    prior_ranks=(0, 1, 0, 0, 2),
    variable_names=("log_weight_concentration", "mean_loc",
                    "log_mean_precision", "raw_dof", "raw_scale_tril"),
    make_prior=make_prior, cast_posterior=cast_posterior,
    chunk_rows=chunk_rows, estep_chunk_rows=estep_chunk_rows,
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
    feature_marginals=feature_marginals, precision_prior="wishart",
    sklearn=base.SklearnLayout(2, sklearn_prior, sklearn_attributes),
    methods=("natural", "gradient"),
    predicts_missing=True, search_counts_full_data=True,
    searches_from_diagonal=True, predictive_parameters=predictive_parameters)
