"""MCMC on the collapsed Bayesian Gaussian mixture: NUTS, HMC, random walk.

`sample(model, x)` draws (pi, mu, tau) from the exact posterior of a fitted
`BayesianGMM`'s diagonal mixture, with the assignments summed out, by
`tfp.mcmc` kernels in unconstrained coordinates. Chains run as one batch and
start from draws of the variational posterior q. Draws come back in data
units with a summary table (mean, sd, 3% and 97% quantiles, MCSE, ESS,
R-hat) and posterior-averaged assignment probabilities.

This is a training-time module: it imports TensorFlow Probability, which
`tfgmm`'s exported graphs never need.

#### Mathematical Details

The target is the collapsed log joint in the model's standardised units z,

```none
log p(z, pi, mu, tau) = log p(pi) + sum_kd log p(mu_kd, tau_kd)
    + sum_n w_n logsumexp_k (log pi_k + sum_d log N(z_nd | mu_kd, 1 / tau_kd))
```

with the model's prior: pi ~ Dirichlet(alpha0) (or truncated stick-breaking,
v_k ~ Beta(1, gamma0)), tau_kd ~ Gamma(a0, b0), and mu_kd | tau_kd ~
Normal(m0_d, 1 / (beta0 tau_kd)) (conjugate) or mu_kd ~ Normal(m0_d,
1 / lambda0) (independent). Missing entries (NaN, with
`missing="marginalize"`) drop out of the inner sum; w_n are sample weights.

The samplers move on unconstrained coordinates theta = (eta, mu, s):

```none
Dirichlet:  pi = SoftmaxCentered(eta) = softmax([eta, 0]),  eta in R^(K-1)
            log |det d pi_{1:K-1} / d eta| = sum_{k=1..K} log pi_k
DP sticks:  v_k = Sigmoid(eta_k), k < K, v_K = 1
            log |dv_k / d eta_k| = log v_k + log(1 - v_k)
precisions: tau = Exp(s),  log |d tau / d s| = s
```

and the kernels target log p(z, T(theta)) + log |det dT / d theta|: the
Jacobian is written out in the target (no `TransformedTransitionKernel`), so
`log_prob_fn` is the exact, normalised-prior density of theta, and a chain
without data reproduces the prior's moments (`tests/test_mcmc.py` checks
both). `tfb.Exp` and `tfb.Sigmoid` supply their log-dets. The softmax-
centred map is written out in log space instead of `tfb.SoftmaxCentered`:
TFP 0.25's constructor fails under NumPy >= 2.4 (its `Pad` bijector calls
`np.reshape(..., newshape=)`), and TFP's log-det adds 0.5 log K, the area of
the simplex as a surface in R^K, where the Dirichlet density is one on the
first K - 1 weights. The draws are transformed back (pi = T(eta),
tau = exp(s)) before any summary, so nothing is reported in the
unconstrained space by mistake (the PyMC3 ADVI notebook's stick-breaking
pitfall). `target_log_prob` is the density of theta in standardised units:
densities of the data-unit parameters differ from it by the Jacobians of T
and of the standardisation.

Label switching: chains start from q, which sits in one labelling, and
rarely leave it when the components are separated. Nothing is relabelled:
check `r_hat` in `summary()` (a chain in another labelling shows as R-hat
well above 1).

#### Examples

```python
model = tfgmm.fit(x, 2, seed=0)
from tfgmm import mcmc
result = mcmc.sample(model, x, num_results=1000, seed=0)
print(result.summary_text())
result.means.shape                       # [1000, 4, 2, D], data units
result.assignment_probabilities(x)       # [N, 2]
```

#### References

[1] Hoffman, M. D. and Gelman, A. The No-U-Turn Sampler. JMLR 2014
    (NUTS; dual-averaging step size, sec. 3.2).
[2] Neal, R. M. MCMC using Hamiltonian dynamics. Handbook of Markov Chain
    Monte Carlo, 2011 (sec. 5.4.2.2: randomised step sizes).
[3] Roberts, Gelman, Gilks. Weak convergence and optimal scaling of random
    walk Metropolis algorithms. Ann. Appl. Probab. 1997 (acceptance 0.234).
[4] Gelman et al. Bayesian Data Analysis, 3rd ed., 2013, sec. 11.4-11.5
    (split R-hat; ESS by Geyer's initial positive sequence).
[5] Vehtari, Gelman, Simpson, Carpenter, Buerkner. Rank-normalization,
    folding, and localization: an improved R-hat. Bayesian Analysis 2021
    (the cross-chain ESS that `tfp.mcmc.effective_sample_size` computes).
"""

import contextlib
import dataclasses
import functools
import logging
import math
import time
from typing import NamedTuple, Optional

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp

from tfgmm._engine import weight_priors
from tfgmm import families
from tfgmm.families import diag
from tfgmm import _validation

tfb = tfp.bijectors

KERNELS = ("nuts", "hmc", "rwm")
INITS = ("vi", "prior")
SUMMARY_STATISTICS = ("mean", "sd", "mcse", "3%", "97%", "ess", "r_hat")
PARAMETERS = ("weights", "means", "precisions", "stddevs")
_DEFAULT_TARGET_ACCEPT = {"nuts": 0.8, "hmc": 0.8, "rwm": 0.234}
_LOG_2PI = math.log(2.0 * math.pi)
# The preconditioner's per-coordinate spread; see `_desynchronized`.
_SCALE_SPREAD = 0.3
_GOLDEN_RATIO_CONJUGATE = (math.sqrt(5.0) - 1.0) / 2.0
# Elements of the [draws, N, K] temporaries of `assignment_probabilities`.
_CHUNK_ELEMENTS = 1 << 22


class UnconstrainedState(NamedTuple):
  """The sampler's coordinates, standardised units, [..., C] leading dims.

  Attributes:
    weight_logits: eta, [..., K - 1]: SoftmaxCentered logits (Dirichlet) or
      stick logits logit(v_k) (Dirichlet process). None when K = 1 (the
      weight is 1 and nothing is sampled).
    means: mu, [..., K, D].
    log_precisions: s = log tau, [..., K, D].
  """
  weight_logits: Optional[np.ndarray]
  means: np.ndarray
  log_precisions: np.ndarray


class _Prior(NamedTuple):
  """The diagonal prior as float64 tensors (scalars or [D])."""
  weight_concentration: tf.Tensor  # alpha0 (Dirichlet) or gamma0 (DP), []
  mean_loc: tf.Tensor              # m0, [D]
  mean_precision: tf.Tensor        # beta0 (conjugate) or lambda0, []
  precision_concentration: tf.Tensor  # a0, []
  precision_rate: tf.Tensor        # b0, [D]


# ------------------------------------------------------------------ target


def log_weights(weight_logits, weight_prior, n_components):
  """log pi from the unconstrained weight coordinates, [..., K].

  Args:
    weight_logits: eta, [..., K - 1], or None when K = 1.
    weight_prior: "dirichlet" (SoftmaxCentered) or "dirichlet_process"
      (sticks v_k = sigmoid(eta_k), pi_k = v_k prod_{j<k} (1 - v_j)).
    n_components: K.
  """
  if n_components == 1:
    return None
  if weight_prior == "dirichlet":
    # log SoftmaxCentered(eta): logits with an implicit zero for pi_K.
    padded = tf.pad(weight_logits, [[0, 0]] * (weight_logits.shape.rank - 1)
                    + [[0, 1]])                                   # [..., K]
    return tf.nn.log_softmax(padded, -1)
  log_v = -tf.math.softplus(-weight_logits)                       # [..., K-1]
  log_rest = -tf.math.softplus(weight_logits)                     # [..., K-1]
  pad = [[0, 0]] * (weight_logits.shape.rank - 1) + [[0, 1]]
  return weight_priors.stick_log_weights(tf.pad(log_v, pad), tf.pad(log_rest, pad))


def weight_log_prior(weight_logits, weight_concentration, weight_prior):
  """log p(eta) of the weight coordinates, Jacobian included, [...].

  ```none
  Dirichlet:  log Dirichlet(pi | alpha0) + sum_k log pi_k,
              pi = SoftmaxCentered(eta)
  DP:         sum_{k<K} log Beta(v_k | 1, gamma0) + log v_k + log(1 - v_k),
              v = Sigmoid(eta)
  ```

  Args:
    weight_logits: eta, [..., K - 1] float64 (K >= 2).
    weight_concentration: alpha0 or gamma0, scalar.
    weight_prior: "dirichlet" or "dirichlet_process".
  """
  k = weight_logits.shape[-1] + 1
  if weight_prior == "dirichlet":
    log_pi = log_weights(weight_logits, weight_prior, k)          # [..., K]
    alpha0 = weight_concentration
    log_normalizer = k * tf.math.lgamma(alpha0) - tf.math.lgamma(k * alpha0)
    log_density = ((alpha0 - 1.0) * tf.reduce_sum(log_pi, -1)
                   - log_normalizer)                              # [...]
    # d pi_{1:K-1} / d eta = diag(p) - p p^T with p = pi_{1:K-1}; by the
    # matrix determinant lemma its determinant is prod_{k<K} pi_k (1 - sum p)
    # = prod_{k=1..K} pi_k.
    log_det = tf.reduce_sum(log_pi, -1)                           # [...]
    return log_density + log_det
  gamma0 = weight_concentration
  log_rest = -tf.math.softplus(weight_logits)                     # log(1 - v)
  # Beta(v | 1, gamma0) = gamma0 (1 - v)^(gamma0 - 1).
  log_density = tf.math.log(gamma0) + (gamma0 - 1.0) * log_rest   # [..., K-1]
  log_det = tfb.Sigmoid().forward_log_det_jacobian(
      weight_logits, event_ndims=0)                               # [..., K-1]
  return tf.reduce_sum(log_density + log_det, -1)


def component_log_prior(means, log_precisions, prior, mean_prior):
  """log p(mu, s) of the component coordinates, Jacobian included, [...].

  ```none
  s = log tau:  log Gamma(tau | a0, b0) + s                  (Exp bijector)
  conjugate:    + log Normal(mu | m0, 1 / (beta0 tau))
  independent:  + log Normal(mu | m0, 1 / lambda0)
  ```
  summed over k and d.

  Args:
    means: mu, [..., K, D] float64.
    log_precisions: s, [..., K, D] float64.
    prior: `_Prior`.
    mean_prior: "conjugate" or "independent".
  """
  a0, b0 = prior.precision_concentration, prior.precision_rate
  tau = tfb.Exp().forward(log_precisions)                         # [..., K, D]
  log_gamma = (a0 * tf.math.log(b0) - tf.math.lgamma(a0)
               + (a0 - 1.0) * log_precisions - b0 * tau)          # [..., K, D]
  log_det = tfb.Exp().forward_log_det_jacobian(log_precisions,
                                               event_ndims=0)     # = s
  mean_log_precision = tf.math.log(prior.mean_precision)          # []
  if mean_prior == "conjugate":
    mean_log_precision = mean_log_precision + log_precisions      # [..., K, D]
  log_normal = 0.5 * (mean_log_precision - _LOG_2PI
                      - tf.exp(mean_log_precision)
                      * tf.square(means - prior.mean_loc))        # [..., K, D]
  return tf.reduce_sum(log_gamma + log_det + log_normal, [-2, -1])


def component_log_likelihood(z, observed, means, log_precisions):
  """sum_d log N(z_nd | mu_kd, 1 / tau_kd) over observed d, [C, N, K].

  The square is expanded so the [C, N, K] term is three matmuls; no
  [C, N, K, D] tensor is formed. Missing entries have `observed` 0 (and z
  filled with 0): their terms drop out.

  Args:
    z: data in standardised units, [N, D] float64, NaN replaced by 0.
    observed: 1 where z is observed, 0 where missing, [N, D].
    means: mu, [C, K, D].
    log_precisions: s = log tau, [C, K, D].
  """
  tau = tf.exp(log_precisions)                                    # [C, K, D]
  quad = (tf.matmul(observed * tf.square(z), tau, transpose_b=True)
          - 2.0 * tf.matmul(observed * z, tau * means, transpose_b=True)
          + tf.matmul(observed, tau * tf.square(means) - log_precisions
                      + _LOG_2PI, transpose_b=True))              # [C, N, K]
  return -0.5 * quad


def collapsed_log_likelihood(z, observed, row_weights, log_pi, means,
                             log_precisions):
  """The collapsed log-likelihood of each chain's state, [C].

  ```none
  sum_n w_n logsumexp_k (log pi_k + sum_d log N(z_nd | mu_kd, 1 / tau_kd))
  ```

  Args:
    z, observed, means, log_precisions: see `component_log_likelihood`.
    row_weights: w_n, [N].
    log_pi: [C, K], or None for K = 1.
  """
  log_joint = component_log_likelihood(z, observed, means,
                                       log_precisions)            # [C, N, K]
  if log_pi is not None:
    log_joint = log_joint + log_pi[:, None, :]
  return tf.linalg.matvec(tf.reduce_logsumexp(log_joint, -1),
                          row_weights)                            # [C]


def _target(parts, data, prior, weight_prior, mean_prior, n_components):
  """log p(z, T(theta)) + log |det dT/d theta| for state parts, [C]."""
  if n_components == 1:
    weight_logits, (means, log_precisions) = None, parts
  else:
    weight_logits, means, log_precisions = parts
  z, observed, row_weights = data
  total = component_log_prior(means, log_precisions, prior, mean_prior)
  log_pi = None
  if weight_logits is not None:
    total += weight_log_prior(weight_logits, prior.weight_concentration,
                              weight_prior)
    log_pi = log_weights(weight_logits, weight_prior, n_components)
  if z.shape[0] != 0:
    total += collapsed_log_likelihood(z, observed, row_weights, log_pi,
                                      means, log_precisions)
  return total


def log_prob_fn(model, x=None, sample_weight=None):
  """The sampler's target as a function of the unconstrained state.

  Args:
    model: a `BayesianGMM` with covariance_type="diag".
    x: data in data units, [N, D] (NaN = missing with
      missing="marginalize"), or None for the prior alone.
    sample_weight: weights of x's rows, [N], or None.

  Returns:
    A function of (weight_logits [C, K-1], means [C, K, D], log_precisions
    [C, K, D]) (without weight_logits when K = 1), float64, standardised
    units, returning log p(z, T(theta)) + log |det dT/d theta|, [C]. It
    leaves out the constant log-Jacobian of the standardisation,
    N * sum_d -log(scale_d).
  """
  _check_model(model)
  data = _standardized_data(model, x, sample_weight)
  prior = _prior(model)
  return lambda *parts: _target(list(parts), data, prior, model.weight_prior,
                                model.mean_prior, model.n_components)


# ----------------------------------------------------------------- results


@dataclasses.dataclass(frozen=True)
class MCMCResult:
  """Posterior draws of the collapsed mixture, in data units.

  S draws per chain, C chains, K components, D features.

  Attributes:
    weights: pi, [S, C, K].
    means: mu, [S, C, K, D].
    precisions: tau, [S, C, K, D] (1 / variance of each feature).
    stddevs: 1 / sqrt(tau), [S, C, K, D].
    state: `UnconstrainedState` of the chains, standardised units.
    target_log_prob: the target at each draw, [S, C] (density of the
      unconstrained state, standardised units; see `log_prob_fn`).
    kernel: "nuts", "hmc" or "rwm".
    step_size: the (adapted) step size of each chain, [C], in units of the
      preconditioner (see `sample`): the leapfrog step for NUTS and HMC, the
      proposal's standard deviation for RWM.
    acceptance_rate: mean acceptance probability min(1, exp(log accept
      ratio)) over the draws, per chain, [C] (for NUTS the tree-averaged
      statistic its adaptation targets).
    num_leapfrog_steps: leapfrog steps of each draw, [S, C] (NUTS, HMC);
      None for RWM.
    num_divergences: divergent transitions among the draws per chain, [C]
      (NUTS); None otherwise.
    num_burnin_steps: steps discarded before the draws (step size adapted
      during the first 80%).
    seconds: wall time of the sampling (tracing included).
    feature_loc, feature_scale: the model's standardisation, [D].
    allow_missing: NaN entries of x are missing values.
  """
  weights: np.ndarray
  means: np.ndarray
  precisions: np.ndarray
  stddevs: np.ndarray
  state: UnconstrainedState
  target_log_prob: np.ndarray
  kernel: str
  step_size: np.ndarray
  acceptance_rate: np.ndarray
  num_leapfrog_steps: Optional[np.ndarray]
  num_divergences: Optional[np.ndarray]
  num_burnin_steps: int
  seconds: float
  feature_loc: np.ndarray
  feature_scale: np.ndarray
  allow_missing: bool = False

  @property
  def num_draws(self):
    """S, draws per chain."""
    return self.weights.shape[0]

  @property
  def num_chains(self):
    """C."""
    return self.weights.shape[1]

  def draws(self):
    """The data-unit draws by name: weights, means, precisions, stddevs."""
    return {name: getattr(self, name) for name in PARAMETERS}

  def summary(self):
    """Posterior summary of every parameter, in data units.

    Returns:
      dict: parameter name ("weights" [K], "means", "precisions", "stddevs"
      [K, D]) -> dict of statistic -> numpy array of the parameter's shape:
      - `mean`, `sd`: over all S * C draws.
      - `3%`, `97%`: equal-tailed quantiles.
      - `ess`: effective sample size over all chains
        (`tfp.mcmc.effective_sample_size`, Geyer's initial positive
        sequence, cross-chain variance when C > 1).
      - `mcse`: Monte Carlo standard error of the mean, sd / sqrt(ess).
      - `r_hat`: split-chain potential scale reduction
        (`tfp.mcmc.potential_scale_reduction(split_chains=True)`, the
        classic split R-hat, not rank-normalised); near 1 when the chains
        agree.
      A parameter that never moves (the weight when K = 1) has sd 0 and NaN
      ess, mcse and r_hat.
    """
    return {name: _summarize(getattr(self, name)) for name in PARAMETERS}

  def summary_text(self, digits=3):
    """`summary()` as a printable table, one row per scalar parameter."""
    table = self.summary()
    header = ["parameter"] + list(SUMMARY_STATISTICS)
    rows = []
    for name, stats in table.items():
      for index in np.ndindex(stats["mean"].shape):
        label = f"{name}[{', '.join(str(i) for i in index)}]"
        rows.append([label] + [_format(stats[s][index], digits)
                               for s in SUMMARY_STATISTICS])
    widths = [max(len(r[i]) for r in rows + [header])
              for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w)
                       for i, (c, w) in enumerate(zip(r, widths)))
             for r in [header] + rows]
    return "\n".join(lines)

  def assignment_probabilities(self, x, chains=None):
    """p(z = k | x, draw) averaged over the draws, [N, K].

    ```none
    E[p(z_n = k | x_n, pi, mu, tau)] ~ (1 / S') sum_draws
        pi_k prod_d N(x_nd | mu_kd, 1/tau_kd) / sum_j (same for j)
    ```
    in the sampler's labelling. Nothing is relabelled: averaged over chains
    in different labellings the answer is meaningless (R-hat in `summary()`
    shows it); pass `chains` to average over some only. Missing entries
    (NaN) drop out when the model had missing="marginalize".

    Args:
      x: array-like [N, D], data units.
      chains: None (all chains) or a list of chain indices to average over.

    Returns:
      numpy float64 [N, K]; rows sum to 1.
    """
    array = _validation.check_data(x, self.means.shape[-1], "x",
                                   dtype=np.float64,
                                   allow_nan=self.allow_missing)
    select = (slice(None) if chains is None
              else _check_chains(chains, self.num_chains))
    z = (array - self.feature_loc) / self.feature_scale           # [N, D]
    observed = (~np.isnan(z)).astype(np.float64)
    data = (tf.constant(np.nan_to_num(z)), tf.constant(observed))
    k = self.weights.shape[-1]
    flat = lambda a: a[:, select].reshape((-1,) + a.shape[2:])    # noqa: E731
    with np.errstate(divide="ignore"):  # A weight may underflow to 0.
      log_pi = np.log(flat(self.weights))                         # [S', K]
    means, log_tau = flat(self.state.means), flat(self.state.log_precisions)
    draws = log_pi.shape[0]
    chunk = max(1, _CHUNK_ELEMENTS // max(1, array.shape[0] * k))
    total = tf.zeros([array.shape[0], k], tf.float64)
    for start in range(0, draws, chunk):
      stop = min(draws, start + chunk)
      total += _sum_responsibilities(
          data, tf.constant(log_pi[start:stop]),
          tf.constant(means[start:stop]), tf.constant(log_tau[start:stop]))
    return (total / draws).numpy()


def _sum_responsibilities(data, log_pi, means, log_precisions):
  """sum over draws of p(z = k | z_n, draw), [N, K]."""
  log_joint = (log_pi[:, None, :]
               + component_log_likelihood(*data, means,
                                          log_precisions))        # [s, N, K]
  return tf.reduce_sum(tf.nn.softmax(log_joint, -1), 0)           # [N, K]


def _summarize(draws):
  """The statistics of `summary()` for draws [S, C, ...]."""
  draws = np.asarray(draws, np.float64)
  flat = draws.reshape((-1,) + draws.shape[2:])
  sd = flat.std(0, ddof=1) if flat.shape[0] > 1 else np.zeros(flat.shape[1:])
  quantiles = np.quantile(flat, [0.03, 0.97], axis=0)
  ess = np.full(draws.shape[2:], np.nan)
  r_hat = np.full(draws.shape[2:], np.nan)
  moves = sd > 0
  if moves.any() and draws.shape[0] >= 4:
    tensor = tf.constant(draws)
    with _quiet_complex_cast():
      if draws.shape[1] > 1:
        ess_all = tfp.mcmc.effective_sample_size(
            tensor, filter_beyond_positive_pairs=True,
            cross_chain_dims=1).numpy()
      else:
        ess_all = tfp.mcmc.effective_sample_size(
            tensor, filter_beyond_positive_pairs=True).numpy().sum(0)
    r_hat_all = tfp.mcmc.potential_scale_reduction(
        tensor, independent_chain_ndims=1, split_chains=True).numpy()
    ess = np.where(moves, ess_all, np.nan)
    r_hat = np.where(moves, r_hat_all, np.nan)
  with np.errstate(invalid="ignore", divide="ignore"):
    mcse = np.where(moves, sd / np.sqrt(ess), np.nan)
  return {"mean": flat.mean(0), "sd": sd, "mcse": mcse,
          "3%": quantiles[0], "97%": quantiles[1], "ess": ess,
          "r_hat": r_hat}


class _ComplexCastFilter(logging.Filter):
  """Drops TF's warning about the real part of an FFT product: the
  autocorrelation in `tfp.stats.auto_correlation` casts it on purpose."""

  def filter(self, record):
    return "casting an input of type complex" not in record.getMessage()


@contextlib.contextmanager
def _quiet_complex_cast():
  logger = tf.get_logger()
  quiet = _ComplexCastFilter()
  logger.addFilter(quiet)
  try:
    yield
  finally:
    logger.removeFilter(quiet)


def _format(value, digits):
  value = float(value)
  if np.isnan(value):
    return "nan"
  return f"{value:.{digits}g}" if abs(value) >= 1e4 else f"{value:.{digits}f}"


# ----------------------------------------------------------------- sampling


def sample(model, x, *, num_results=1000, num_burnin_steps=500, num_chains=4,
           kernel="nuts", step_size=None, seed=None, init=None,
           sample_weight=None, target_accept_prob=None, max_tree_depth=10,
           num_leapfrog_steps=4):
  """Draws from the posterior of a fitted diagonal `BayesianGMM` by MCMC.

  The target is the collapsed model (assignments summed out) with the
  model's prior, in its standardised units and unconstrained coordinates
  (see the module docstring for the bijectors and Jacobians). All chains
  run as one batch in one `tf.function` (autograph, `jit_compile=False`).

  Each chain starts at its own draw from q (`init="vi"`), which keeps the
  chains in q's labelling. The kernels move u = theta / sigma, where sigma
  holds the standard deviations of each coordinate under the initialising
  distribution (q, or the prior for `init="prior"`), spread by fixed
  factors within e^+-0.3 (see `_desynchronized`): a diagonal mass matrix
  from the VI fit. Step sizes are in units of sigma.

  Kernels:
  - "nuts": `tfp.mcmc.NoUTurnSampler`, step size adapted per chain by dual
    averaging (`DualAveragingStepSizeAdaptation`) during the first 80% of
    the burn-in, toward `target_accept_prob` (default 0.8).
  - "hmc": `tfp.mcmc.HamiltonianMonteCarlo` with `num_leapfrog_steps`, the
    same adaptation, and each transition's step size drawn uniformly within
    +-20% of the adapted one (Neal 2011).
  - "rwm": `tfp.mcmc.RandomWalkMetropolis` with Normal(0, step_size^2)
    proposals on every coordinate of u; the scale is adapted per chain
    during the first 80% of the burn-in by Robbins-Monro on its logarithm
    toward acceptance 0.234 (Roberts, Gelman, Gilks 1997), then fixed. It
    mixes much worse than NUTS (the PyMC3 notebook's Metropolis vs NUTS).

  Supported models: covariance_type="diag" with mean_prior "conjugate" or
  "independent", weight_prior "dirichlet" or "dirichlet_process", and
  missing values (NaN) with missing="marginalize".

  Args:
    model: a fitted `BayesianGMM` (an unfitted one only for `x=None`, the
      prior alone).
    x: data in data units, array-like [N, D]; None or zero rows samples
      the prior (the likelihood is left out).
    num_results: S, draws kept per chain, int >= 1.
    num_burnin_steps: steps discarded first, int >= 0.
    num_chains: C, int >= 1 (>= 2 for R-hat to mean anything).
    kernel: "nuts", "hmc" or "rwm".
    step_size: initial step size (NUTS, HMC) or proposal scale (RWM) in
      units of sigma (see above), float > 0; None picks 0.5 (NUTS, HMC) or
      2.38 / sqrt(dim) (RWM), dim = K - 1 + 2 K D.
    seed: int seed of the initial draws and the chains; None uses the
      model's.
    init: "vi" (each chain starts at a draw from q) or "prior" (a draw from
      the prior); None picks "vi" with data and "prior" without.
    sample_weight: non-negative weights of x's rows, [N], or None.
    target_accept_prob: acceptance probability the step-size adaptation
      aims at, in (0, 1); None is 0.8 (NUTS, HMC) or 0.234 (RWM).
    max_tree_depth: NUTS's maximum tree depth (2^depth leapfrog steps).
    num_leapfrog_steps: HMC's leapfrog steps per transition. The default
      suits the preconditioned target (posterior sds near 1): at the usual
      adapted step of about 0.7 the trajectory is about 3 long, close to
      antithetic. Long fixed trajectories return near their start: on the
      2-D two-component test problem, 4 x 500 draws, the smallest ESS was
      3600-3900 with 4 steps, 400-500 with 6, 200-340 with 10.

  Returns:
    `MCMCResult`.

  Raises:
    NotImplementedError: a covariance type whose family does not list
      "mcmc" (full, spherical, tied).
    ValueError, TypeError: bad arguments, or data with a model that was
      never fitted.
  """
  _check_model(model)
  num_results = _validation.check_positive_int("num_results", num_results)
  num_burnin_steps = _validation.check_non_negative_int("num_burnin_steps",
                                                        num_burnin_steps)
  num_chains = _validation.check_positive_int("num_chains", num_chains)
  kernel = _validation.check_choice("kernel", kernel, KERNELS)
  max_tree_depth = _validation.check_positive_int("max_tree_depth",
                                                  max_tree_depth)
  num_leapfrog_steps = _validation.check_positive_int("num_leapfrog_steps",
                                                      num_leapfrog_steps)
  if step_size is not None:
    step_size = float(_validation.check_positive("step_size", step_size, ()))
  if target_accept_prob is None:
    target_accept_prob = _DEFAULT_TARGET_ACCEPT[kernel]
  target_accept_prob = float(_validation.check_finite_number(
      "target_accept_prob", target_accept_prob, ()))
  if not 0 < target_accept_prob < 1:
    raise ValueError("Expected `target_accept_prob` in (0, 1). Received: "
                     f"target_accept_prob={target_accept_prob!r}.")
  seed = (model.seed if seed is None
          else _validation.check_non_negative_int("seed", seed))
  data = _standardized_data(model, x, sample_weight)
  has_data = data[0].shape[0] > 0
  if init is None:
    init = "vi" if has_data else "prior"
  init = _validation.check_choice("init", init, INITS)
  if (has_data or init == "vi") and not model.initialized:
    raise ValueError(
        "`tfgmm.mcmc.sample` needs a fitted model: the chains start from its "
        "variational posterior and the data are standardised with its "
        "feature_loc and feature_scale. Call `model.fit(...)`, "
        "`model.initialize(x)` or `tfgmm.fit(...)` first (or pass x=None "
        "with init='prior' to sample the prior).")

  prior = _prior(model)
  k, d = model.n_components, model.n_features
  init_seed, chain_seed = tf.unstack(tfp.random.split_seed(
      tf.constant([seed, 7], tf.int32), 2))
  start, scales = _initial_state(model, prior, init, num_chains, init_seed)
  if step_size is None:
    dim = (k - 1) + 2 * k * d
    step_size = 0.5 if kernel != "rwm" else 2.38 / math.sqrt(dim)
  run = _compiled_sampler(kernel, model.weight_prior, model.mean_prior, k,
                          num_results, num_burnin_steps,
                          int(0.8 * num_burnin_steps), max_tree_depth,
                          num_leapfrog_steps)
  began = time.perf_counter()
  parts, trace = run(
      start, scales, data, prior,
      tf.fill([num_chains], tf.constant(step_size, tf.float64)),
      tf.constant(target_accept_prob, tf.float64), chain_seed)
  parts = [p.numpy() for p in parts]
  trace = {name: value.numpy() for name, value in trace.items()}
  seconds = time.perf_counter() - began
  return _result(model, kernel, parts, trace, num_burnin_steps, seconds)


def _result(model, kernel, parts, trace, num_burnin_steps, seconds):
  """An `MCMCResult` in data units from standardised draws."""
  k = model.n_components
  weight_logits = None if k == 1 else parts[0]
  means, log_tau = parts[-2], parts[-1]                           # [S, C, K, D]
  if k == 1:
    weights = np.ones(means.shape[:3])                            # [S, C, 1]
  else:
    weights = tf.exp(log_weights(tf.constant(weight_logits),
                                 model.weight_prior, k)).numpy()  # [S, C, K]
  loc = model.feature_loc.numpy().astype(np.float64)              # [D]
  scale = model.feature_scale.numpy().astype(np.float64)          # [D]
  accept = np.exp(np.minimum(trace["log_accept_ratio"], 0.0))     # [S, C]
  return MCMCResult(
      weights=weights,
      means=loc + scale * means,
      precisions=np.exp(log_tau) / np.square(scale),
      stddevs=scale * np.exp(-0.5 * log_tau),
      state=UnconstrainedState(weight_logits, means, log_tau),
      target_log_prob=trace["target_log_prob"],
      kernel=kernel,
      step_size=trace["step_size"][-1],
      acceptance_rate=accept.mean(0),
      num_leapfrog_steps=trace.get("leapfrogs"),
      num_divergences=(trace["divergent"].sum(0) if "divergent" in trace
                       else None),
      num_burnin_steps=num_burnin_steps,
      seconds=seconds,
      feature_loc=loc,
      feature_scale=scale,
      allow_missing=model.missing == "marginalize")


@functools.lru_cache(maxsize=None)
def _compiled_sampler(kernel, weight_prior, mean_prior, n_components,
                      num_results, num_burnin_steps, num_adaptation_steps,
                      max_tree_depth, num_leapfrog_steps):
  """The whole run (burn-in, adaptation, draws) as one `tf.function`.

  Traced once per static configuration (and per shape of the data and
  chains); data, prior, initial state, step size and seed are arguments.
  """

  def run(start, scales, data, prior, step_size, target_accept_prob, seed):
    # The kernels move u = theta / scales (a diagonal preconditioner: a
    # constant Jacobian, left out of the target).
    def target(*u):
      return _target([p * s for p, s in zip(u, scales)], data, prior,
                     weight_prior, mean_prior, n_components)

    start = [p / s for p, s in zip(start, scales)]
    states, trace = _sample(kernel, target, start, step_size,
                            target_accept_prob, seed, num_results,
                            num_burnin_steps, num_adaptation_steps,
                            max_tree_depth, num_leapfrog_steps)
    return [p * s for p, s in zip(states, scales)], trace

  return tf.function(run, jit_compile=False, autograph=True)


def _sample(kernel, target, start, step_size, target_accept_prob, seed,
            num_results, num_burnin_steps, num_adaptation_steps,
            max_tree_depth, num_leapfrog_steps):
  """Burn-in, adaptation and draws of one kernel: (states, trace)."""
  # One step size per chain, broadcast over each part's event dims.
  per_chain = lambda s: [  # noqa: E731
      tf.reshape(s, [-1] + [1] * (p.shape.rank - 1)) for p in start]
  if kernel == "rwm":
    return _run_rwm(target, start, per_chain, step_size,
                    target_accept_prob, seed, num_results,
                    num_burnin_steps, num_adaptation_steps)
  if kernel == "nuts":
    inner = tfp.mcmc.NoUTurnSampler(target, per_chain(step_size),
                                    max_tree_depth=max_tree_depth)
  else:
    inner = _JitteredHMC(tfp.mcmc.HamiltonianMonteCarlo(
        target, per_chain(step_size), num_leapfrog_steps=num_leapfrog_steps))
  if num_adaptation_steps > 0:
    sampler = tfp.mcmc.DualAveragingStepSizeAdaptation(
        inner, num_adaptation_steps=num_adaptation_steps,
        target_accept_prob=target_accept_prob)
  else:
    sampler = inner

  def trace_fn(_, results):
    if num_adaptation_steps > 0:
      results = results.inner_results
    if kernel == "nuts":
      trace = {"step_size": tf.reshape(results.step_size[0], [-1])}
      trace.update(
          target_log_prob=results.target_log_prob,
          log_accept_ratio=results.log_accept_ratio,
          leapfrogs=results.leapfrogs_taken,
          divergent=results.has_divergence)
    else:
      trace = {"step_size": tf.reshape(
          results.accepted_results.step_size[0], [-1])}
      trace.update(
          target_log_prob=results.accepted_results.target_log_prob,
          log_accept_ratio=results.log_accept_ratio,
          leapfrogs=tf.fill(tf.shape(results.log_accept_ratio),
                            num_leapfrog_steps))
    return trace

  return tfp.mcmc.sample_chain(
      num_results, start, kernel=sampler,
      num_burnin_steps=num_burnin_steps, trace_fn=trace_fn, seed=seed)


class _JitteredHMC(tfp.mcmc.TransitionKernel):
  """HMC whose step size is drawn per transition and chain in [0.8, 1.2] eps.

  A fixed trajectory length L eps near a multiple of a half period of some
  direction of the target makes HMC return near its start (Neal 2011,
  sec. 5.4.2.2, who recommends this randomisation). Measured on a 2-D
  two-component problem with 10 leapfrog steps, 4 x 1000 draws: the
  smallest ESS was 54 without it, 668 with it. The adapted step size eps
  stays in the results, where the adaptation reads and sets it.
  """

  def __init__(self, inner_kernel, jitter=0.2):
    self._inner_kernel = inner_kernel
    self._jitter = jitter
    self._parameters = dict(inner_kernel=inner_kernel, jitter=jitter)

  @property
  def parameters(self):
    return self._parameters

  @property
  def is_calibrated(self):
    return True

  def bootstrap_results(self, init_state):
    return self._inner_kernel.bootstrap_results(init_state)

  def one_step(self, current_state, previous_kernel_results, seed=None):
    jitter_seed, step_seed = tfp.random.split_seed(seed)
    accepted = previous_kernel_results.accepted_results
    base = accepted.step_size
    chains = tf.shape(accepted.target_log_prob)                   # [C]
    factor = tf.random.stateless_uniform(
        chains, jitter_seed, 1.0 - self._jitter, 1.0 + self._jitter,
        dtype=accepted.target_log_prob.dtype)                     # [C]
    jittered = [s * tf.reshape(factor, [-1] + [1] * (len(s.shape) - 1))
                for s in base]
    state, results = self._inner_kernel.one_step(
        current_state, previous_kernel_results._replace(
            accepted_results=accepted._replace(step_size=jittered)),
        seed=step_seed)
    return state, results._replace(
        accepted_results=results.accepted_results._replace(step_size=base))


def _run_rwm(target, start, per_chain, step_size, target_accept_prob, seed,
             num_results, num_burnin_steps, num_adaptation_steps):
  """Random-walk Metropolis: adapt the per-chain scale, then draw."""

  def kernel(log_scale):
    return tfp.mcmc.RandomWalkMetropolis(
        target, new_state_fn=tfp.mcmc.random_walk_normal_fn(
            per_chain(tf.exp(log_scale))))

  burnin_seed, draw_seed = tf.unstack(tfp.random.split_seed(seed, 2))
  log_scale = tf.math.log(step_size)                              # [C]
  state = list(start)
  results = kernel(log_scale).bootstrap_results(state)

  def body(t, state, results, log_scale, seed):
    step_seed, seed = tf.unstack(tfp.random.split_seed(seed, 2))
    state, results = kernel(log_scale).one_step(state, results,
                                                seed=step_seed)
    accept = tf.exp(tf.minimum(results.log_accept_ratio, 0.0))    # [C]
    # Robbins-Monro on log scale with gain (t + 1)^-0.6 while adapting.
    gain = tf.where(t < num_adaptation_steps,
                    tf.pow(tf.cast(t, tf.float64) + 1.0, -0.6), 0.0)
    log_scale = log_scale + gain * (accept - target_accept_prob)
    return t + 1, state, results, log_scale, seed

  _, state, results, log_scale, _ = tf.while_loop(
      lambda t, *_: t < num_burnin_steps, body,
      (tf.constant(0), state, results, log_scale, burnin_seed))

  def trace_fn(_, results):
    return {"step_size": tf.exp(log_scale),
            "target_log_prob": results.accepted_results.target_log_prob,
            "log_accept_ratio": results.log_accept_ratio}

  return tfp.mcmc.sample_chain(
      num_results, state, previous_kernel_results=results,
      kernel=kernel(log_scale), trace_fn=trace_fn, seed=draw_seed)


# --------------------------------------------------------- model and data


def _check_model(model):
  covariance_type = getattr(model, "covariance_type", None)
  if covariance_type is None or not hasattr(model, "posterior"):
    raise TypeError("Expected `model` to be a tfgmm.BayesianGMM. "
                    f"Received: model of type {type(model).__name__}.")
  if covariance_type not in families.supporting("mcmc"):
    raise NotImplementedError(
        f"tfgmm.mcmc is not supported for covariance_type="
        f"{covariance_type!r}: it supports "
        f"{families.describe_types(families.supporting('mcmc'))} (mean_prior "
        "'conjugate' or 'independent', weight_prior 'dirichlet' or "
        "'dirichlet_process', missing values with missing='marginalize'). "
        f"Received: covariance_type={covariance_type!r}.")
  if model.mean_prior not in ("conjugate", "independent"):
    raise NotImplementedError(
        "tfgmm.mcmc supports mean_prior 'conjugate' or 'independent'. "
        f"Received: mean_prior={model.mean_prior!r}.")
  if model.weight_prior not in weight_priors.WEIGHT_PRIORS:
    raise NotImplementedError(
        f"tfgmm.mcmc supports weight_prior in {list(weight_priors.WEIGHT_PRIORS)}. "
        f"Received: weight_prior={model.weight_prior!r}.")


def _prior(model):
  """The model's prior in float64 from its config values (exact, where
  `model.prior()` holds them in the model's dtype)."""
  d = model.n_features
  constant = lambda value, shape: tf.constant(  # noqa: E731
      np.broadcast_to(np.asarray(value, np.float64), shape))
  return _Prior(constant(model.weight_concentration, ()),
                constant(model.mean_loc, (d,)),
                constant(model.mean_precision, ()),
                constant(model.precision_concentration, ()),
                constant(model.precision_rate, (d,)))


def _standardized_data(model, x, sample_weight):
  """(z with NaN -> 0 [N, D], observed [N, D], row weights [N]), float64."""
  d = model.n_features
  empty = x is None or (hasattr(x, "shape") and len(x.shape) == 2
                        and x.shape[0] == 0)
  if empty:
    if sample_weight is not None:
      raise ValueError("`sample_weight` needs data: received x with no rows.")
    if x is not None and x.shape[1] != d:
      raise ValueError(f"Expected `x` with {d} features (columns). "
                       f"Received: x.shape={tuple(x.shape)}.")
    zeros = tf.zeros([0, d], tf.float64)
    return zeros, zeros, tf.zeros([0], tf.float64)
  array = _validation.check_data(x, d, "x", dtype=np.float64,
                                 allow_nan=model.missing == "marginalize")
  weights = _validation.check_sample_weight(sample_weight, array.shape[0])
  if weights is None:
    weights = np.ones(array.shape[0])
  loc = model.feature_loc.numpy().astype(np.float64)
  scale = model.feature_scale.numpy().astype(np.float64)
  z = (array - loc) / scale                                       # [N, D]
  observed = ~np.isnan(z)
  return (tf.constant(np.where(observed, z, 0.0)),
          tf.constant(observed.astype(np.float64)), tf.constant(weights))


def _initial_state(model, prior, init, num_chains, seed):
  """One draw per chain from q ("vi") or the prior, and the preconditioner.

  Draws are made in log space (ExpGamma), so small concentrations do not
  underflow to weights or precisions of exactly 0.

  Returns:
    (parts, scales): the state parts [C, K-1] (K > 1 only), [C, K, D],
    [C, K, D], and per-coordinate scales [K-1], [K, D], [K, D].
  """
  k, d = model.n_components, model.n_features
  if init == "vi":
    q = diag.cast_posterior(model.posterior(), tf.float64)
  else:
    counts = (prior.weight_concentration if model.weight_prior == "dirichlet"
              else 0.0)  # The DP weight field holds counts c = 0: the prior.
    q = diag.Posterior(*[
        tf.broadcast_to(tf.cast(t, tf.float64), shape) for t, shape in zip(
            (counts, prior.mean_loc, prior.mean_precision,
             prior.precision_concentration, prior.precision_rate),
            [(k,), (k, d), (k, d), (k, d), (k, d)])])
  weight_seed, tau_seed, mean_seed = tf.unstack(
      tfp.random.split_seed(seed, 3))
  exp_gamma = tfp.distributions.ExpGamma
  a, b = q.precision_concentration, q.precision_rate              # [K, D]
  log_tau = exp_gamma(a, rate=b).sample(num_chains, seed=tau_seed)  # [C, K, D]
  log_mean_precision = tf.math.log(q.mean_precision)              # [K, D]
  if model.mean_prior == "conjugate":
    log_mean_precision = log_mean_precision + log_tau             # [C, K, D]
  eps = tf.random.stateless_normal(tf.shape(log_tau), mean_seed,
                                   dtype=tf.float64)              # [C, K, D]
  means = q.mean_loc + eps * tf.exp(-0.5 * log_mean_precision)    # [C, K, D]
  # The preconditioner: q's marginal standard deviations of each
  # coordinate. sd(log tau) = sqrt(trigamma(a)); sd(mu) at E[tau] = a / b.
  mean_precision = q.mean_precision
  if model.mean_prior == "conjugate":
    mean_precision = mean_precision * a / b
  parts = [means, log_tau]
  scales = [tf.math.rsqrt(mean_precision),
            tf.sqrt(tf.math.polygamma(tf.constant(1.0, tf.float64), a))]
  if k > 1:
    trigamma = lambda c: tf.math.polygamma(  # noqa: E731
        tf.constant(1.0, tf.float64), c)
    if model.weight_prior == "dirichlet":
      # pi = g / sum g with g_k ~ Gamma(alpha_k); SoftmaxCentered^-1 is
      # eta_k = log g_k - log g_K.
      alpha = q.weight_concentration                              # [K]
      log_gamma = exp_gamma(alpha, rate=1.0).sample(
          num_chains, seed=weight_seed)                           # [C, K]
      logits = log_gamma[:, :-1] - log_gamma[:, -1:]              # [C, K-1]
      variance = trigamma(alpha[:-1]) + trigamma(alpha[-1:])      # [K-1]
    else:
      # v = g1 / (g1 + g2) with g1 ~ Gamma(g1_k), g2 ~ Gamma(g2_k);
      # logit v = log g1 - log g2.
      g1, g2 = weight_priors.stick_concentrations(q.weight_concentration,
                                          prior.weight_concentration)
      log_gamma = exp_gamma(tf.stack([g1[:-1], g2[:-1]]), rate=1.0).sample(
          num_chains, seed=weight_seed)                           # [C, 2, K-1]
      logits = log_gamma[:, 0] - log_gamma[:, 1]                  # [C, K-1]
      variance = trigamma(g1[:-1]) + trigamma(g2[:-1])            # [K-1]
    parts = [logits] + parts
    scales = [tf.sqrt(variance)] + scales
  return parts, _desynchronized(scales)


def _desynchronized(scales):
  """Scales times fixed factors in [e^-0.3, e^0.3], one per coordinate.

  With q's standard deviations as the preconditioner the target is close to
  isotropic: every coordinate then oscillates with one period, and at step
  sizes where that period is near a power of two leapfrog steps TFP's NUTS
  misses the U-turn and runs trajectories to the maximum depth (measured: a
  9-D standard normal at step 0.8 averages 50 leapfrogs per transition
  instead of 7; the 2-D two-component test problem 18-29 instead of 7.5).
  Spreading the scales by +-30% (a low-discrepancy sequence, so the
  factors are fixed) desynchronises the periods; the sampler stays exact.
  """
  out, start = [], 0
  for scale in scales:
    size = int(np.prod(scale.shape))
    index = np.arange(start, start + size, dtype=np.float64)
    fraction = (index * _GOLDEN_RATIO_CONJUGATE) % 1.0
    factors = np.exp(_SCALE_SPREAD * (2.0 * fraction - 1.0))
    out.append(scale * tf.constant(factors.reshape(scale.shape), tf.float64))
    start += size
  return out


def _check_chains(chains, num_chains):
  indices = np.asarray(chains)
  if (indices.ndim != 1 or indices.size == 0 or indices.dtype.kind not in "iu"
      or np.any(indices < 0) or np.any(indices >= num_chains)):
    raise ValueError(f"Expected `chains` to be a non-empty list of chain "
                     f"indices in [0, {num_chains}). Received: "
                     f"chains={chains!r}.")
  return indices
