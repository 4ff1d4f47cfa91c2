"""MAP point estimates of the diagonal Gaussian mixture: EM with restarts.

`fit(x, K, n_init=100)` (or `tfgmm.fit(x, K, method="map")`) finds the mode of
the posterior over (pi, mu, tau) of `BayesianGMM`'s diagonal model, under the
same priors, with the assignments summed out: the answer of Pyro's Gaussian
mixture tutorial (an `AutoDelta` guide on the enumerated model, best of 100
seeds). All restarts run as one vectorised EM, parameters [R, K, D], with the
E-step in row chunks; the restart with the highest log posterior is kept.

#### Mathematical Details

The model, in the units it works in (standardised when `standardize=True`):

```none
pi         ~ Dirichlet(alpha0 * ones(K))
tau[k, d]  ~ Gamma(a0, b0)                                    # rate b0
mu[k, d]   ~ Normal(m0[d], 1 / (beta0 tau[k, d]))   (mean_prior="conjugate")
mu[k, d]   ~ Normal(m0[d], 1 / lambda0)             (mean_prior="independent")
x[n]       ~ sum_k pi_k prod_d Normal(x[n, d] | mu[k, d], 1 / tau[k, d])
```

The objective is the unnormalised log posterior, the log joint with the
assignments summed out,

```none
L(theta) = log p(pi) + sum_kd log p(mu_kd, tau_kd)
           + sum_n w_n logsumexp_k (log pi_k
                                    + sum_d log N(x_nd | mu_kd, 1 / tau_kd))
```

a density in constrained space (no Jacobian of a reparametrisation: Pyro's
`AutoDelta` scores the point itself). EM for MAP (Dempster, Laird and Rubin
1977, sec. 3) alternates responsibilities r_nk with an M-step that maximises
sum_nk r_nk log p(x_n, z_n = k | theta) + log p(theta). With N_k = sum_n w_n
r_nk, S1 = sum_n w_n r_nk x_n, the scatter Q_kd = sum_n w_n r_nk (x_nd -
xbar_kd)^2 and xbar = S1 / N_k:

```none
pi_k  = (N_k + alpha0 - 1) / sum_{j live} (N_j + alpha0 - 1)
conjugate (the mode of the Normal-Gamma posterior, Bishop 2.154-2.155):
  mu    = (beta0 m0 + S1) / (beta0 + N_k)
  tau   = (a0 - 1/2 + N_k / 2)
          / (b0 + (Q + beta0 N_k (xbar - m0)^2 / (beta0 + N_k)) / 2)
independent (ECM, Meng and Rubin 1993: mu given tau, then tau given mu):
  mu    = (lambda0 m0 + tau S1) / (lambda0 + tau N_k)
  tau   = (a0 - 1 + N_k / 2) / (b0 + (Q + N_k (xbar - mu)^2) / 2)
```

Each step raises L (EM's and ECM's monotonicity), so the history of L of a
restart never decreases while its set of components stays the same.

Interior modes only. pi_k^(alpha0 - 1) is unbounded at every edge of the
simplex when alpha0 < 1 (the default 1 / K), and tau's factor
tau^(a_N - 1/2) is unbounded at tau -> 0 when its exponent is negative: the
interior fixed point EM finds is a local mode. A component has one only while
N_k > `min_count`, the largest of 1 - alpha0 (the weight) and 1 - 2 a0
(conjugate) or 2 - 2 a0 (independent) for the precision. A component whose
count falls to `min_count` or below is dropped: its weight becomes 0
(log weight -inf) and its parameters freeze; the log posterior is then that
of the mixture of the live components (Dirichlet over K' live weights).
Restarts are compared among those that kept the most components, interior
fixed points of the full model first.

#### Examples

```python
x = np.array([[0.0], [1.0], [10.0], [11.0], [12.0]])
# Pyro's priors: Dirichlet(0.5) weights; its locs ~ Normal(0, 10) as
# mu | tau ~ Normal(0, 1 / (0.01 tau)); raw units.
result = tfgmm.fit(x, 2, method="map", weight_concentration=0.5,
                   mean_precision=0.01, standardize=False, dtype="float64",
                   seed=0)
result.weights                     # [0.625, 0.375], Pyro's MAP weights
result.means[:, 0]                 # [10.96, 0.498]
result.assign(x)                   # [1, 1, 0, 0, 0]
```

#### References

[1] Dempster, Laird, Rubin. Maximum likelihood from incomplete data via the
    EM algorithm. JRSS B 1977 (sec. 3: posterior modes).
[2] Meng, Rubin. Maximum likelihood estimation via the ECM algorithm: a
    general framework. Biometrika 1993.
[3] Bishop, C. M. Pattern Recognition and Machine Learning, 2006, sec. 2.3.6
    (Normal-Gamma), 9.2 (EM for Gaussian mixtures).
[4] Pyro's Gaussian mixture model tutorial: TraceEnum_ELBO with an AutoDelta
    guide, best of 100 random initialisations.
"""

import functools
import importlib
import math
import warnings
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from tfgmm._engine import inference
from tfgmm._engine import weight_priors
from tfgmm import families
from tfgmm.families import diag
from tfgmm import _validation
from tfgmm import data as data_lib
from tfgmm import initialization

_LOG_2PI = math.log(2.0 * math.pi)
_TINY = np.finfo(np.float64).tiny
_SAMPLE_SIZE = 20000

COVARIANCE_TYPES = families.supporting("map")
MEAN_PRIORS = families.MEAN_PRIORS
WEIGHT_PRIORS = ("dirichlet",)
# The keyword arguments of `fit` that `tfgmm.fit` forwards from its
# **model_kwargs when method="map".
OPTIONS = ("weight_concentration", "mean_loc", "mean_precision",
           "precision_concentration", "precision_rate", "mean_prior",
           "covariance_type", "weight_prior", "missing", "standardize",
           "dtype", "sample_size")


class ComponentsDroppedWarning(UserWarning):
  """The kept restart lost components whose posterior had no interior mode."""


class Parameters(NamedTuple):
  """Point estimates of R restarts, float64, in the model's units.

  Attributes:
    log_weights: log pi, [R, K]; -inf for a dropped component.
    means: mu, [R, K, D].
    precisions: tau, [R, K, D].
  """
  log_weights: tf.Tensor
  means: tf.Tensor
  precisions: tf.Tensor


class EMResult(NamedTuple):
  """What `run_em` returns (tensors).

  Attributes:
    parameters: the final `Parameters`, [R, ...].
    log_posterior: L at the final parameters, float64 [R].
    history: L at each iterate, float64 [T + 1, R]; restart r's own history
      is history[:n_iter[r] + 1, r] (later rows repeat its last value).
    n_iter: M-steps applied to each restart, int32 [R].
    converged: whether L rose by less than tol per unit weight, bool [R].
  """
  parameters: Parameters
  log_posterior: tf.Tensor
  history: tf.Tensor
  n_iter: tf.Tensor
  converged: tf.Tensor


# ---------------------------------------------------------------- pure math


def min_count(prior, mean_prior="conjugate"):
  """The soft count at or below which a component has no interior mode.

  The weight's M-step needs N_k + alpha0 - 1 > 0; the precision's needs
  a0 - 1/2 + N_k / 2 > 0 (conjugate) or a0 - 1 + N_k / 2 > 0 (independent).

  Args:
    prior: `diag.Posterior` of the prior (scalars alpha0 and a0 used).
    mean_prior: "conjugate" or "independent".

  Returns:
    A Python float (negative when no count is too small).
  """
  alpha0 = float(prior.weight_concentration)
  a0 = float(prior.precision_concentration)
  precision = 1.0 - 2.0 * a0 if mean_prior == "conjugate" else 2.0 - 2.0 * a0
  return max(1.0 - alpha0, precision)


def live_components(parameters):
  """Whether each component is live (finite log weight), bool [R, K]."""
  return tf.math.is_finite(parameters.log_weights)


def component_log_likelihood(x, means, precisions):
  """sum_d log N(x_nd | mu_kd, 1 / tau_kd) for every restart, [B, R, K].

  The square is expanded so the data term is two matmuls against the
  [R K, D] parameters; no [B, R, K, D] tensor is formed. Parameter-only terms
  are computed in float64.

  Args:
    x: data, [B, D], float32 or float64.
    means: mu, float64 [R, K, D].
    precisions: tau, float64 [R, K, D].

  Returns:
    [B, R, K] in x's dtype.
  """
  dtype = x.dtype
  shape = tf.shape(means)
  const = 0.5 * tf.reduce_sum(
      tf.math.log(precisions) - _LOG_2PI
      - precisions * tf.square(means), -1)                        # [R, K]
  precision = tf.cast(tf.reshape(precisions, [-1, shape[2]]), dtype)  # [RK, D]
  weighted_loc = tf.cast(tf.reshape(precisions * means, [-1, shape[2]]),
                         dtype)                                   # [RK, D]
  quad = (tf.matmul(tf.square(x), precision, transpose_b=True)
          - 2.0 * tf.matmul(x, weighted_loc, transpose_b=True))   # [B, RK]
  quad = tf.reshape(quad, [-1, shape[0], shape[1]])               # [B, R, K]
  return tf.cast(const, dtype) - 0.5 * quad                       # [B, R, K]


def log_joint(x, parameters):
  """log pi_k + sum_d log N(x_nd | mu_kd, 1 / tau_kd), [B, R, K]."""
  return (tf.cast(parameters.log_weights, x.dtype)
          + component_log_likelihood(x, parameters.means,
                                     parameters.precisions))      # [B, R, K]


def e_step(x, parameters, chunk, sample_weight=None):
  """Responsibilities' statistics and the log-likelihood, over x in chunks.

  Temporaries are [chunk, R, K] (and [chunk, D]).

  Args:
    x: data, [N, D].
    parameters: `Parameters` of R restarts.
    chunk: rows per chunk, int or int32 scalar tensor.
    sample_weight: optional w, [N], x's dtype.

  Returns:
    (stats, log_likelihood): float64 `diag.Statistics` with counts [R, K],
    sum_x and sum_xx [R, K, D]; and sum_n w_n logsumexp_k log_joint, [R].
  """
  n = tf.shape(x)[0]
  num_chunks = (n + chunk - 1) // chunk
  shape = tf.shape(parameters.means)                              # R, K, D

  def body(i, counts, sum_x, sum_xx, total):
    rows = x[i * chunk:(i + 1) * chunk]                           # [C, D]
    joint = log_joint(rows, parameters)                           # [C, R, K]
    ll, resp = inference.normalize(joint)              # [C, R], [C, R, K]
    if sample_weight is not None:
      w = sample_weight[i * chunk:(i + 1) * chunk]                # [C]
      resp = resp * w[:, None, None]
      ll = tf.math.multiply_no_nan(ll, w[:, None])                # [C, R]
    flat = tf.reshape(resp, [tf.shape(rows)[0], -1])              # [C, RK]
    as64 = lambda t: tf.cast(t, tf.float64)  # noqa: E731
    return (i + 1, counts + as64(tf.reduce_sum(flat, 0)),
            sum_x + as64(tf.matmul(flat, rows, transpose_a=True)),
            sum_xx + as64(tf.matmul(flat, tf.square(rows), transpose_a=True)),
            total + as64(tf.reduce_sum(ll, 0)))

  zeros_rk = tf.zeros([shape[0] * shape[1]], tf.float64)          # [RK]
  zeros_rkd = tf.zeros([shape[0] * shape[1], shape[2]], tf.float64)
  _, counts, sum_x, sum_xx, total = tf.while_loop(
      lambda i, *_: i < num_chunks, body,
      (tf.constant(0), zeros_rk, zeros_rkd, zeros_rkd,
       tf.zeros([shape[0]], tf.float64)))
  return (diag.Statistics(tf.reshape(counts, shape[:2]),
                           tf.reshape(sum_x, shape),
                           tf.reshape(sum_xx, shape)), total)


def log_prior(parameters, prior, mean_prior="conjugate"):
  """log p(theta) of the live components, float64 [R].

  ```none
  log Dirichlet(pi_live | alpha0)   (K' live weights; 0 when K' = 1)
  + sum_{k live, d} log Gamma(tau_kd | a0, b0) + log N(mu_kd | m0_d, v)
  v = 1 / (beta0 tau_kd)  (conjugate),  1 / lambda0  (independent)
  ```

  Args:
    parameters: `Parameters`, float64.
    prior: `diag.Posterior` of the prior, float64 (scalars and [D]).
    mean_prior: "conjugate" or "independent".
  """
  alpha0, m0, prec0, a0, b0 = prior
  live = live_components(parameters)                              # [R, K]
  n_live = tf.reduce_sum(tf.cast(live, tf.float64), -1)           # [R]
  log_pi = tf.where(live, parameters.log_weights, 0.0)            # [R, K]
  weights = (tf.math.lgamma(n_live * alpha0) - n_live * tf.math.lgamma(alpha0)
             + (alpha0 - 1.0) * tf.reduce_sum(log_pi, -1))        # [R]
  tau, mu = parameters.precisions, parameters.means               # [R, K, D]
  log_tau = tf.math.log(tau)
  log_gamma = (a0 * tf.math.log(b0) - tf.math.lgamma(a0)
               + (a0 - 1.0) * log_tau - b0 * tau)                 # [R, K, D]
  if mean_prior == "conjugate":
    mean_precision = prec0 * tau                                  # [R, K, D]
  else:
    mean_precision = prec0 * tf.ones_like(tau)
  log_normal = 0.5 * (tf.math.log(mean_precision) - _LOG_2PI
                      - mean_precision * tf.square(mu - m0))      # [R, K, D]
  components = tf.reduce_sum(log_gamma + log_normal, -1)          # [R, K]
  return weights + tf.reduce_sum(tf.where(live, components, 0.0), -1)


def m_step(stats, parameters, prior, mean_prior="conjugate",
           minimum_count=0.0):
  """The MAP M-step from a batch's statistics; see the module docstring.

  Components whose count N_k is at most `minimum_count` are dropped (weight
  0, parameters frozen); a dropped component stays dropped. If every live
  component of a restart would go, the largest stays (its weight is then 1).

  Args:
    stats: float64 `diag.Statistics`, [R, K] and [R, K, D].
    parameters: the current `Parameters` (their live set, and tau for the
      independent prior's conditional step).
    prior: float64 `diag.Posterior` of the prior.
    mean_prior: "conjugate" or "independent".
    minimum_count: see `min_count`.

  Returns:
    The new `Parameters`.
  """
  alpha0, m0, prec0, a0, b0 = prior
  counts, sum_x, sum_xx = stats
  was_live = live_components(parameters)                          # [R, K]
  live = tf.logical_and(was_live, counts > minimum_count)         # [R, K]
  largest = tf.one_hot(tf.argmax(tf.where(was_live, counts, -np.inf), -1),
                       tf.shape(counts)[-1], on_value=True, off_value=False)
  live = tf.where(tf.reduce_any(live, -1, keepdims=True), live, largest)
  log_numerator = tf.where(
      live, tf.math.log(tf.maximum(counts + alpha0 - 1.0, _TINY)),
      -np.inf)                                                    # [R, K]
  log_weights = log_numerator - tf.reduce_logsumexp(
      log_numerator, -1, keepdims=True)                           # [R, K]
  n_k = counts[..., None]                                         # [R, K, 1]
  mean_x = sum_x / tf.maximum(n_k, _TINY)                         # [R, K, D]
  scatter = tf.maximum(sum_xx - sum_x * mean_x, 0.0)              # [R, K, D]
  if mean_prior == "conjugate":
    beta = prec0 + n_k                                            # [R, K, 1]
    means = (prec0 * m0 + sum_x) / beta                           # [R, K, D]
    rate = b0 + 0.5 * (scatter + prec0 * n_k * tf.square(mean_x - m0) / beta)
    shape = a0 - 0.5 + 0.5 * n_k                                  # [R, K, 1]
  else:
    tau = parameters.precisions                                   # [R, K, D]
    means = (prec0 * m0 + tau * sum_x) / (prec0 + tau * n_k)      # [R, K, D]
    rate = b0 + 0.5 * (scatter + n_k * tf.square(mean_x - means))
    shape = a0 - 1.0 + 0.5 * n_k
  precisions = tf.maximum(shape, _TINY) / rate                    # [R, K, D]
  keep = live[..., None]
  return Parameters(log_weights,
                    tf.where(keep, means, parameters.means),
                    tf.where(keep, precisions, parameters.precisions))


def _select(mask, new, old):
  """Per restart: `new` where mask [R], else `old`."""
  return Parameters(*[
      tf.where(tf.reshape(mask, tf.concat(
          [tf.shape(mask), tf.ones([tf.rank(n) - 1], tf.int32)], 0)), n, o)
      for n, o in zip(new, old)])


def em(x, parameters, prior, max_iter, tol, chunk, minimum_count,
       mean_prior="conjugate", sample_weight=None):
  """MAP-EM of R restarts at once until each one's log posterior settles.

  A restart stops (its parameters freeze) at the first iteration whose log
  posterior rose by less than `tol` per unit weight with an unchanged set of
  live components: running restarts together gives each the iterates it
  would have alone. The loop ends when every restart stopped or after
  `max_iter` M-steps.

  Args:
    x: data, [N, D] (float32 or float64).
    parameters: initial float64 `Parameters`, [R, ...].
    prior: float64 `diag.Posterior` of the prior.
    max_iter: int32 scalar, at most this many M-steps.
    tol: float64 scalar, nats per unit weight.
    chunk: rows per E-step chunk.
    minimum_count: see `min_count`, float64 scalar.
    mean_prior: "conjugate" or "independent".
    sample_weight: optional w, [N], x's dtype.

  Returns:
    An `EMResult`.
  """
  total_weight = (tf.cast(tf.shape(x)[0], tf.float64) if sample_weight is None
                  else tf.reduce_sum(tf.cast(sample_weight, tf.float64)))
  restarts = tf.shape(parameters.means)[0]

  def value(params):
    stats, log_likelihood = e_step(x, params, chunk, sample_weight)
    return stats, log_likelihood + log_prior(params, prior, mean_prior)

  def n_live(params):
    return tf.reduce_sum(tf.cast(live_components(params), tf.int32), -1)

  def body(i, params, history, previous, previous_live, running, n_iter):
    stats, current = value(params)                                # [R]
    live = n_live(params)
    settled = tf.logical_and(
        tf.abs(current - previous) < tol * total_weight,
        tf.equal(live, previous_live))
    running = tf.logical_and(running, tf.logical_not(settled))
    updated = m_step(stats, params, prior, mean_prior, minimum_count)
    params = _select(running, updated, params)
    n_iter = n_iter + tf.cast(running, tf.int32)
    return (i + 1, params, history.write(i, current), current, live, running,
            n_iter)

  def cond(i, params, history, previous, previous_live, running, n_iter):
    del params, history, previous, previous_live, n_iter
    return tf.logical_and(i < max_iter, tf.reduce_any(running))

  history = tf.TensorArray(tf.float64, size=0, dynamic_size=True)
  i, parameters, history, _, _, running, n_iter = tf.while_loop(
      cond, body,
      (tf.constant(0), parameters, history,
       tf.fill([restarts], tf.constant(-np.inf, tf.float64)),
       tf.fill([restarts], -1), tf.fill([restarts], True),
       tf.zeros([restarts], tf.int32)))
  _, final = value(parameters)
  history = history.write(i, final)
  return EMResult(parameters, final, history.stack(), n_iter,
                  tf.logical_not(running))


def _specs(dtype, weighted):
  def spec(rank, dt=tf.float64):
    return tf.TensorSpec([None] * rank, dt)

  return ((spec(2, dtype), Parameters(spec(2), spec(3), spec(3)),
           diag.Posterior(spec(0), spec(1), spec(0), spec(0), spec(1)),
           tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.float64),
           tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.float64))
          + ((spec(1, dtype),) if weighted else ()))


@functools.lru_cache(maxsize=None)
def _compiled_em(dtype, mean_prior, weighted):
  """`em` traced once per dtype, mean prior and weighting (any N, R, K, D)."""

  def run(x, parameters, prior, max_iter, tol, chunk, minimum_count,
          *sample_weight):
    return em(x, parameters, prior, max_iter, tol, chunk, minimum_count,
              mean_prior, *sample_weight)

  # autograph=False: the loops are tf.while_loop already (as in
  # `diag.FAMILY.cavi`).
  return tf.function(run, autograph=False,
                     input_signature=_specs(dtype, weighted))


def run_em(x, parameters, prior, max_iter=300, tol=1e-5, *,
           mean_prior="conjugate", sample_weight=None, chunk=None):
  """`em`, compiled; casts its inputs and picks the chunk size.

  Args:
    x: data tensor [N, D] in the model's units (float32 or float64).
    parameters: initial `Parameters`, [R, K, D] (any float dtype).
    prior: `diag.Posterior` of the prior (scalars and [D]).
    max_iter: at most this many M-steps per restart.
    tol: nats per unit weight.
    mean_prior: "conjugate" or "independent".
    sample_weight: optional w, [N].
    chunk: rows per E-step chunk; None bounds [chunk, R K + D] near 2**20
      elements.

  Returns:
    An `EMResult` of tensors.
  """
  x = tf.convert_to_tensor(x)
  parameters = Parameters(*[tf.cast(t, tf.float64) for t in parameters])
  prior = diag.Posterior(*[inference.as_float64(t) for t in prior])
  restarts, k, d = parameters.means.shape
  if chunk is None:
    chunk = diag.estep_chunk_rows(restarts * k, d)
  weight = (() if sample_weight is None
            else (tf.cast(sample_weight, x.dtype),))
  return _compiled_em(x.dtype, mean_prior, sample_weight is not None)(
      x, parameters, prior, tf.constant(max_iter, tf.int32),
      tf.constant(tol, tf.float64), tf.constant(chunk, tf.int32),
      tf.constant(min_count(prior, mean_prior), tf.float64), *weight)


def initial_parameters(z, n_components, n_init, rng, prior,
                       mean_prior="conjugate", sample_weight=None):
  """k-means++ starts: one M-step from each restart's hard assignments.

  Each restart seeds K centres by greedy k-means++
  (`initialization.kmeans_plusplus`), assigns every row to its nearest
  centre, and takes the M-step of those
  hard responsibilities (the independent prior's conditional step uses unit
  precisions, the standardised data's).

  Args:
    z: rows in the model's units, float64 numpy [n, D].
    n_components: K.
    n_init: R.
    rng: `numpy.random.Generator`.
    prior: float64 `diag.Posterior` of the prior.
    mean_prior: "conjugate" or "independent".
    sample_weight: optional weights of the rows [n] (they may sum to more
      than n: a sample standing in for all the data).

  Returns:
    float64 `Parameters`, [R, K, D].
  """
  n, d = z.shape
  w = np.ones(n) if sample_weight is None else sample_weight
  counts = np.empty((n_init, n_components))
  sum_x = np.empty((n_init, n_components, d))
  sum_xx = np.empty((n_init, n_components, d))
  for r in range(n_init):
    centres = initialization.kmeans_plusplus(z, n_components, rng,
                                    sample_weight=sample_weight)
    labels = initialization.nearest_centre(z, centres)                     # [n]
    hard = np.zeros((n_components, n))
    hard[labels, np.arange(n)] = w                                # [K, n]
    counts[r] = hard.sum(1)
    sum_x[r] = hard @ z
    sum_xx[r] = hard @ np.square(z)
  start = Parameters(tf.zeros((n_init, n_components), tf.float64),
                     tf.zeros((n_init, n_components, d), tf.float64),
                     tf.ones((n_init, n_components, d), tf.float64))
  stats = diag.Statistics(*[tf.constant(t) for t in (counts, sum_x, sum_xx)])
  prior = diag.Posterior(*[inference.as_float64(t) for t in prior])
  return m_step(stats, start, prior, mean_prior, min_count(prior, mean_prior))


# -------------------------------------------------------------- the result


@functools.lru_cache(maxsize=None)
def _compiled_predict(name, dtype):
  """Per-row outputs of the plug-in mixture, traced per output and dtype."""
  features = tf.TensorSpec([None], dtype)

  def predict(x, log_weights, means, precisions, loc, scale, chunk):
    z = (x - loc) / scale                                         # [N, D]
    params = Parameters(log_weights[None], means[None], precisions[None])
    log_det = -tf.reduce_sum(tf.math.log(scale))                  # []

    def joint(rows):
      return log_joint(rows, params)[:, 0]                        # [C, K]

    if name == "log_prob":
      return inference.map_chunks(
          lambda rows: tf.reduce_logsumexp(joint(rows), -1) + log_det,
          z, chunk)                                               # [N]
    return inference.map_chunks(
        lambda rows: tf.nn.log_softmax(joint(rows), -1), z, chunk)  # [N, K]

  f64 = lambda rank: tf.TensorSpec([None] * rank, tf.float64)  # noqa: E731
  return tf.function(predict, autograph=False, input_signature=(
      tf.TensorSpec([None, None], dtype), f64(1), f64(2), f64(2), features,
      features, tf.TensorSpec([], tf.int32)))


class MAPMixture:
  """A MAP fit of the diagonal Gaussian mixture: point estimates, data units.

  Components are in decreasing order of weight; dropped ones (weight 0, see
  the module docstring) come last.

  Attributes:
    n_components, n_features: K and D.
    weights: pi, float64 numpy [K].
    means: mu, float64 numpy [K, D], data units.
    precisions: tau, float64 numpy [K, D], data units (1 / variance).
    active: whether each component is live (weight > 0), bool [K].
    log_posterior: the kept restart's final L (float): the likelihood in data
      units, the prior in the model's units (standardised with
      `standardize=True`, like `BayesianGMM`'s priors).
    history: L at each EM iterate of the final run, numpy [n_iter + 1].
    n_iter: M-steps of the final run (int).
    converged: whether the final run met `tol` (bool).
    restart_log_posteriors: every restart's final L, numpy [R] (on the
      sample when the restarts ran on one, see `fit`'s `sample_size`).
    restart_active: every restart's number of live components, int [R].
    best_restart: index of the kept restart (int).
    feature_loc, feature_scale: the standardisation, float64 [D].
    prior: the prior as a float64 `diag.Posterior`, model units.
    mean_prior: "conjugate" or "independent".
    dtype: "float32" or "float64", the dtype of outputs and E-steps.
    seed: the seed of the restarts and of `assign` / `sample` by default.
  """

  def __init__(self, parameters, *, feature_loc, feature_scale, prior,
               mean_prior, dtype, seed, log_posterior, history, n_iter,
               converged, restart_log_posteriors, restart_active,
               best_restart):
    log_weights = np.asarray(parameters.log_weights, np.float64)  # [K]
    # Canonical order: decreasing weight, dropped components (-inf) last.
    order = np.argsort(-log_weights, kind="stable")
    self._log_weights = log_weights[order]
    self._means = np.asarray(parameters.means, np.float64)[order]  # model units
    self._precisions = np.asarray(parameters.precisions, np.float64)[order]
    self.n_components, self.n_features = self._means.shape
    self.feature_loc = np.asarray(feature_loc, np.float64)
    self.feature_scale = np.asarray(feature_scale, np.float64)
    self.prior = prior
    self.mean_prior = mean_prior
    self.dtype = dtype
    self.seed = seed
    self.log_posterior = float(log_posterior)
    self.history = np.asarray(history, np.float64)
    self.n_iter = int(n_iter)
    self.converged = bool(converged)
    self.restart_log_posteriors = np.asarray(restart_log_posteriors,
                                             np.float64)
    self.restart_active = np.asarray(restart_active, np.int64)
    self.best_restart = int(best_restart)

  @property
  def weights(self):
    return np.exp(self._log_weights)

  @property
  def active(self):
    return np.isfinite(self._log_weights)

  @property
  def means(self):
    return self.feature_loc + self.feature_scale * self._means

  @property
  def precisions(self):
    return self._precisions / np.square(self.feature_scale)

  def __repr__(self):
    return (f"MAPMixture(n_components={self.n_components}, n_features="
            f"{self.n_features}, active={int(self.active.sum())}, "
            f"log_posterior={self.log_posterior:.6g}, n_iter={self.n_iter}, "
            f"converged={self.converged})")

  def distribution(self):
    """The fitted mixture as a `tfd.MixtureSameFamily` of diagonal Normals
    at the point estimates, data units (`log_prob` equals this object's;
    imports TensorFlow Probability)."""
    distributions = importlib.import_module("tfgmm.distributions")
    return distributions.normal_mixture(self._log_weights, self.means,
                                        self.precisions, self.dtype)

  def _apply(self, name, x):
    x = _validation.check_data(x, self.n_features, "x", dtype=self.dtype)
    dtype = tf.as_dtype(self.dtype)
    chunk = diag.estep_chunk_rows(self.n_components, self.n_features)
    return _compiled_predict(name, dtype)(
        tf.constant(x), tf.constant(self._log_weights),
        tf.constant(self._means), tf.constant(self._precisions),
        tf.constant(self.feature_loc, dtype),
        tf.constant(self.feature_scale, dtype), tf.constant(chunk, tf.int32))

  def log_prob(self, x):
    """Plug-in mixture log density in data units, [N].

    log sum_k pi_k prod_d N(x_d | mu_kd, 1 / tau_kd) at the point estimates
    (not a posterior predictive: `BayesianGMM.log_prob` is that).

    Args:
      x: array-like [N, D].

    Returns:
      [N] tensor in `dtype`.
    """
    return self._apply("log_prob", x)

  def responsibilities(self, x):
    """p(z = k | x, theta), [N, K] (0 for dropped components)."""
    return tf.exp(self._apply("log_responsibilities", x))

  def assign(self, x, temperature=0.0, seed=None):
    """Component labels, int32 [N].

    Args:
      x: array-like [N, D].
      temperature: 0 takes the most probable component (Pyro's
        `infer_discrete(temperature=0)`); T > 0 draws from
        softmax(log responsibilities / T), T = 1 samples p(z | x, theta).
      seed: int seed for T > 0; defaults to `self.seed`.
    """
    _validation.check_finite_number("temperature", temperature, ())
    if temperature < 0:
      raise ValueError("Expected `temperature` >= 0. "
                       f"Received: temperature={temperature!r}.")
    log_r = self._apply("log_responsibilities", x)                # [N, K]
    if temperature == 0:
      return tf.argmax(log_r, -1, output_type=tf.int32)
    seed = self.seed if seed is None else _validation.check_non_negative_int(
        "seed", seed)
    logits = tf.cast(log_r, tf.float64) / float(temperature)      # [N, K]
    return tf.cast(tf.random.stateless_categorical(
        logits, 1, tf.constant([seed, 1], tf.int64))[:, 0], tf.int32)

  def sample(self, n, seed=None):
    """n draws from the plug-in mixture in data units, [n, D] in `dtype`."""
    n = _validation.check_positive_int("n", n)
    seed = self.seed if seed is None else _validation.check_non_negative_int(
        "seed", seed)
    seeds = tf.random.experimental.stateless_split(
        tf.constant([seed, 2], tf.int64), 2)
    component = tf.random.stateless_categorical(
        tf.constant(self._log_weights[None]), n, seeds[0])[0]     # [n]
    dtype = tf.as_dtype(self.dtype)
    loc = tf.gather(tf.constant(self.means, dtype), component)    # [n, D]
    stddev = tf.gather(tf.constant(self.precisions ** -0.5, dtype),
                       component)                                 # [n, D]
    return loc + stddev * tf.random.stateless_normal(tf.shape(loc), seeds[1],
                                                     dtype=dtype)


# -------------------------------------------------------------------- fit


def _best(log_posterior, n_live):
  """The kept restart: the most live components first, then the highest L."""
  candidates = n_live == n_live.max()
  return int(np.argmax(np.where(candidates, log_posterior, -np.inf)))


def _check_options(covariance_type, weight_prior, missing, mean_prior):
  covariance_type = _validation.check_choice(
      "covariance_type", covariance_type, families.COVARIANCE_TYPES)
  if covariance_type not in COVARIANCE_TYPES:
    raise ValueError(
        f"method='map' is not supported for covariance_type="
        f"{covariance_type!r}: MAP-EM is implemented for "
        f"{families.describe_types(COVARIANCE_TYPES)}. Received: "
        f"covariance_type={covariance_type!r}.")
  weight_prior = _validation.check_choice(
      "weight_prior", weight_prior, weight_priors.WEIGHT_PRIORS)
  if weight_prior not in WEIGHT_PRIORS:
    raise ValueError(
        "Expected weight_prior='dirichlet' with method='map': MAP-EM is "
        "implemented for the Dirichlet weight prior. Received: weight_prior="
        f"{weight_prior!r}.")
  missing = _validation.check_choice("missing", missing,
                                     ("error", "marginalize"))
  if missing != "error":
    raise ValueError(
        "Expected missing='error' with method='map': MAP-EM does not "
        f"marginalise missing values. Received: missing={missing!r}.")
  return _validation.check_choice("mean_prior", mean_prior, MEAN_PRIORS)


def fit(x, n_components, *, n_init=100, max_iter=300, tol=1e-5, seed=None,
        sample_weight=None, weight_concentration=None, mean_loc=0.0,
        mean_precision=1.0, precision_concentration=1.0, precision_rate=1.0,
        mean_prior="conjugate", covariance_type="diag",
        weight_prior="dirichlet", missing="error", standardize=True,
        dtype="float32", sample_size=_SAMPLE_SIZE):
  """MAP point estimates by EM from `n_init` k-means++ starts, best kept.

  All restarts run as one vectorised EM. With more than `sample_size` rows
  they run on a random sample of that many rows, weighted to stand for all
  of them, and the best one then continues on all the data.

  Args:
    x: array [N, D].
    n_components: K.
    n_init: restarts R, int >= 1 (Pyro's tutorial keeps the best of 100).
    max_iter: at most this many EM iterations per restart (and again for the
      final run on all rows, when the restarts ran on a sample).
    tol: stop a restart when its log posterior rises by less than this,
      nats per unit weight.
    seed: int seed of the sample and the k-means++ draws; None draws one.
    sample_weight: non-negative weight per row, [N], or None.
    weight_concentration, mean_loc, mean_precision, precision_concentration,
      precision_rate, mean_prior, standardize, dtype: the prior and settings
      of `BayesianGMM` (same meanings and defaults; priors in standardised
      units when `standardize=True`).
    covariance_type, weight_prior, missing: only `COVARIANCE_TYPES` (the
      families listing "map": "diag"), "dirichlet" and "error" are
      supported; other values raise ValueError.
    sample_size: rows the restarts run on, int >= 1.

  Returns:
    A `MAPMixture`.

  Warns:
    ComponentsDroppedWarning: when no restart kept all K components (see the
      module docstring): the result has weight 0 on the dropped ones.
  """
  n_components = _validation.check_positive_int("n_components", n_components)
  n_init = _validation.check_positive_int("n_init", n_init)
  max_iter = _validation.check_positive_int("max_iter", max_iter)
  sample_size = _validation.check_positive_int("sample_size", sample_size)
  _validation.check_positive("tol", tol, ())
  mean_prior = _check_options(covariance_type, weight_prior, missing,
                              mean_prior)
  dtype = _validation.check_choice("dtype", dtype, ("float32", "float64"))
  if not isinstance(standardize, (bool, np.bool_)):
    raise TypeError("Expected `standardize` to be a bool. "
                    f"Received: standardize={standardize!r}.")
  standardize = bool(standardize)
  if isinstance(x, tf.data.Dataset):
    raise ValueError("Expected `x` to be an array with method='map' (EM "
                     "takes several passes over the rows). Received: a "
                     "tf.data.Dataset.")
  x = _validation.check_data(x, dtype=None)
  n, d = x.shape
  weight_concentration = _validation.check_prior(
      n_components, d, weight_concentration, mean_loc, mean_precision,
      precision_concentration, precision_rate)
  sample_weight = _validation.check_sample_weight(sample_weight, n)
  seed = (int(np.random.default_rng().integers(2**31 - 1)) if seed is None
          else _validation.check_non_negative_int("seed", seed))

  summary = data_lib.summarize(x, d, sample_size, seed,
                               sample_weight=sample_weight)
  loc, scale = np.zeros(d), np.ones(d)
  if standardize:
    std = np.sqrt(summary.variance)
    loc, scale = summary.mean, np.where(std > 0, std, 1.0)
  prior = diag.Posterior(
      tf.constant(float(weight_concentration), tf.float64),
      tf.constant(np.broadcast_to(mean_loc, (d,)), tf.float64),
      tf.constant(float(mean_precision), tf.float64),
      tf.constant(float(precision_concentration), tf.float64),
      tf.constant(np.broadcast_to(precision_rate, (d,)), tf.float64))
  z_sample = (summary.sample - loc) / scale                       # [n_s, D]
  on_sample = z_sample.shape[0] < n
  w_sample = summary.sample_weight
  if on_sample:
    # The sample stands for all the rows: its weights sum to their total.
    w_sample = np.ones(z_sample.shape[0]) if w_sample is None else w_sample
    w_sample = w_sample * (summary.total_weight / w_sample.sum())
  rng = np.random.default_rng(seed)
  start = initial_parameters(z_sample, n_components, n_init, rng, prior,
                             mean_prior, w_sample)
  restarts = run_em(tf.constant(z_sample, dtype), start, prior, max_iter, tol,
                    mean_prior=mean_prior, sample_weight=w_sample)
  log_det = -summary.total_weight * float(np.log(scale).sum())
  restart_values = restarts.log_posterior.numpy() + log_det       # [R]
  restart_live = live_components(restarts.parameters).numpy().sum(-1)
  best = _best(restart_values, restart_live)
  final = restarts
  pick = lambda result, r: Parameters(  # noqa: E731
      *[t[r:r + 1] for t in result.parameters])
  kept = pick(restarts, best)
  index = best
  if on_sample:
    z = data_lib.standardized_tensor(x, loc, scale, dtype)
    final = run_em(z, kept, prior, max_iter, tol, mean_prior=mean_prior,
                   sample_weight=sample_weight)
    kept, index = pick(final, 0), 0
  n_iter = int(final.n_iter[index])
  parameters = Parameters(*[t[0].numpy() for t in kept])
  live = np.isfinite(parameters.log_weights)
  if not live.all():
    warnings.warn(
        f"No restart kept all {n_components} components: {int((~live).sum())}"
        f" of {n_components} components were dropped in the kept restart "
        f"(restart {best} of {n_init}), their soft counts having fallen to "
        f"N_k <= {min_count(prior, mean_prior):.4g}, where the posterior "
        "has no interior mode (N_k + weight_concentration <= 1 for a weight, "
        "or too little data for a precision under precision_concentration). "
        "They have weight 0. Fit fewer components, or raise "
        "weight_concentration to 1 or more.", ComponentsDroppedWarning,
        stacklevel=2)
  return MAPMixture(
      parameters, feature_loc=loc, feature_scale=scale, prior=prior,
      mean_prior=mean_prior, dtype=dtype, seed=seed,
      log_posterior=float(final.log_posterior[index]) + log_det,
      history=final.history.numpy()[:n_iter + 1, index] + log_det,
      n_iter=n_iter, converged=bool(final.converged[index]),
      restart_log_posteriors=restart_values, restart_active=restart_live,
      best_restart=best)
