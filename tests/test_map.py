"""MAP-EM with restarts: `tfgmm.map` and `tfgmm.fit(..., method="map")`.

Checked against closed forms (Pyro's five-point tutorial), scipy densities,
scikit-learn's maximum-likelihood EM in the flat-prior limit, and the
stationarity of the M-step.
"""

import numpy as np
import pytest
import scipy.special
import scipy.stats
import tensorflow as tf
from sklearn.mixture import GaussianMixture

import tfgmm
from tfgmm.families import diag
from tfgmm import map as map_lib

# Pyro's Gaussian mixture tutorial: five points, K = 2, weights ~
# Dirichlet(0.5), locs ~ Normal(0, 10), one shared scale ~ LogNormal(0, 2).
# Its MAP (AutoDelta, best of 100 seeds): weights [0.375, 0.625], locs
# [0.49887404, 10.984463], scale 0.6514337.
PYRO_X = np.array([[0.0], [1.0], [10.0], [11.0], [12.0]])
PYRO_LOCS = np.array([0.49887404, 10.984463])
# The hard assignments of the MAP: {0, 1} and {10, 11, 12}.
PYRO_CLUSTERS = (np.array([0.0, 1.0]), np.array([10.0, 11.0, 12.0]))


def make_prior(d, alpha0=0.5, m0=0.0, prec0=1.0, a0=1.0, b0=1.0):
  return diag.Posterior(*[tf.constant(v, tf.float64) for v in (
      alpha0, np.full(d, m0), prec0, a0, np.full(d, b0))])


def clusters(n_per_cluster=200, separation=4.0, seed=0):
  """Five 2-D unit-variance clusters on a circle, [5 n, 2]."""
  rng = np.random.default_rng(seed)
  angles = 2 * np.pi * np.arange(5) / 5
  centres = separation * np.stack([np.cos(angles), np.sin(angles)], -1)
  return (np.repeat(centres, n_per_cluster, 0)
          + rng.standard_normal((5 * n_per_cluster, 2)))


def start(x, k, n_init, prior, mean_prior="conjugate", seed=0):
  return map_lib.initial_parameters(x, k, n_init, np.random.default_rng(seed),
                                    prior, mean_prior)


# ------------------------------------------------------- Pyro's five points


def conjugate_mode(points, n, k, alpha0, m0, beta0, a0, b0):
  """Closed-form MAP of one hard cluster under the Normal-Gamma prior."""
  count, mean = points.size, points.mean()
  beta = beta0 + count
  rate = b0 + 0.5 * (np.square(points - mean).sum()
                     + beta0 * count * (mean - m0) ** 2 / beta)
  return ((count + alpha0 - 1) / (n + k * (alpha0 - 1)),
          (beta0 * m0 + points.sum()) / beta, (a0 - 0.5 + 0.5 * count) / rate)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_pyro_five_points_conjugate_prior(dtype):
  # Pyro's priors on this model's conjugate family, raw units: Dirichlet(0.5)
  # weights exactly; locs ~ Normal(0, 10) becomes mu | tau ~ Normal(0,
  # 1 / (0.01 tau)) (Pyro's precision 0.01 at tau = 1); the shared
  # LogNormal(0, 2) scale has no analogue here (one Gamma(1, 1) precision
  # per component). The weights do not depend on the scale prior:
  # (2 + 0.5 - 1) / (5 + 2 (0.5 - 1)) = 1.5 / 4 = 0.375.
  prior = dict(weight_concentration=0.5, mean_loc=0.0, mean_precision=0.01,
               precision_concentration=1.0, precision_rate=1.0)
  result = tfgmm.fit(PYRO_X, 2, method="map", seed=0, standardize=False,
                     dtype=dtype, **prior)
  assert isinstance(result, map_lib.MAPMixture)
  assert result.restart_log_posteriors.shape == (100,)   # Pyro's 100 seeds
  expected = [conjugate_mode(points, 5, 2, 0.5, 0.0, 0.01, 1.0, 1.0)
              for points in PYRO_CLUSTERS[::-1]]        # decreasing weight
  weights, means, precisions = [np.array(v) for v in zip(*expected)]
  tol = 1e-10 if dtype == "float64" else 1e-5
  np.testing.assert_allclose(result.weights, [0.625, 0.375], rtol=tol)
  np.testing.assert_allclose(result.weights, weights, rtol=tol)
  np.testing.assert_allclose(result.means[:, 0], means, rtol=tol)
  np.testing.assert_allclose(result.precisions[:, 0], precisions, rtol=tol)
  assert result.converged and result.active.all()
  # Pyro's classifier, infer_discrete at temperature 0 and 1.
  np.testing.assert_array_equal(result.assign(PYRO_X), [1, 1, 0, 0, 0])
  np.testing.assert_array_equal(result.assign(PYRO_X, temperature=1.0,
                                              seed=3), [1, 1, 0, 0, 0])
  assert result.log_prob(PYRO_X).dtype == tf.as_dtype(dtype)


def test_pyro_five_points_independent_prior():
  # mean_prior="independent" takes Pyro's loc prior as it is:
  # mu ~ Normal(0, 10) is lambda0 = 1 / 10^2. The precision prior is a
  # vague Gamma(1, 0.001) per component instead of one LogNormal scale.
  result = tfgmm.fit(PYRO_X, 2, method="map", n_init=20, seed=0,
                     standardize=False, dtype="float64",
                     weight_concentration=0.5, mean_prior="independent",
                     mean_precision=0.01, precision_concentration=1.0,
                     precision_rate=1e-3, tol=1e-12)
  np.testing.assert_allclose(result.weights, [0.625, 0.375], rtol=1e-12)
  # The conditional modes, iterated to their fixed point per cluster.
  for k, points in enumerate(PYRO_CLUSTERS[::-1]):
    mu, tau = points.mean(), 1.0
    for _ in range(200):
      mu = tau * points.sum() / (tau * points.size + 0.01)
      tau = (1.0 - 1.0 + 0.5 * points.size) / (
          1e-3 + 0.5 * np.square(points - mu).sum())
    np.testing.assert_allclose(result.means[k, 0], mu, rtol=1e-9)
    np.testing.assert_allclose(result.precisions[k, 0], tau, rtol=1e-9)
  # Pyro's locs, up to the difference in the scale prior.
  np.testing.assert_allclose(np.sort(result.means[:, 0]), PYRO_LOCS,
                             atol=0.02)


# ------------------------------------------------------------------ the math


def test_log_posterior_matches_scipy():
  rng = np.random.default_rng(1)
  r, k, d = 2, 3, 2
  x = rng.normal(0, 2, (40, d))
  weights = rng.dirichlet(np.ones(k), r)
  log_weights = np.log(weights)
  log_weights[1, 2] = -np.inf                        # restart 1 dropped one
  log_weights[1, :2] -= scipy.special.logsumexp(log_weights[1, :2])
  params = map_lib.Parameters(*[tf.constant(v) for v in (
      log_weights, rng.normal(0, 1, (r, k, d)),
      rng.uniform(0.3, 3.0, (r, k, d)))])
  for mean_prior in ("conjugate", "independent"):
    prior = make_prior(d, alpha0=0.7, m0=0.2, prec0=0.5, a0=1.5, b0=0.8)
    _, log_lik = map_lib.e_step(tf.constant(x), params, 7)
    value = (log_lik + map_lib.log_prior(params, prior, mean_prior)).numpy()
    for i in range(r):
      live = np.isfinite(log_weights[i])
      mu = params.means.numpy()[i][live]
      tau = params.precisions.numpy()[i][live]
      sd = (1 / np.sqrt(0.5 * tau) if mean_prior == "conjugate"
            else 1 / np.sqrt(0.5))
      expected = (
          scipy.stats.dirichlet.logpdf(np.exp(log_weights[i][live]),
                                       np.full(live.sum(), 0.7))
          + scipy.stats.gamma.logpdf(tau, 1.5, scale=1 / 0.8).sum()
          + scipy.stats.norm.logpdf(mu, 0.2, sd).sum()
          + scipy.special.logsumexp(
              log_weights[i][live] + scipy.stats.norm.logpdf(
                  x[:, None, :], mu, 1 / np.sqrt(tau)).sum(-1), -1).sum())
      np.testing.assert_allclose(value[i], expected, rtol=1e-12)


def em_objective(stats, params, prior, mean_prior):
  """Q(theta) + log p(theta): EM's objective for fixed responsibilities."""
  counts, sum_x, sum_xx = stats
  mu, tau = params.means, params.precisions
  expected_log_lik = tf.reduce_sum(
      counts * params.log_weights
      + tf.reduce_sum(0.5 * counts[..., None] * (tf.math.log(tau) - np.log(
          2 * np.pi)) - 0.5 * tau * (sum_xx - 2 * mu * sum_x
                                     + counts[..., None] * mu ** 2), -1))
  return expected_log_lik + tf.reduce_sum(
      map_lib.log_prior(params, prior, mean_prior))


@pytest.mark.parametrize("mean_prior", ["conjugate", "independent"])
def test_m_step_is_the_conditional_mode(mean_prior):
  """The M-step zeroes the gradient of Q + log prior (on the simplex)."""
  rng = np.random.default_rng(2)
  x = tf.constant(clusters(30))
  prior = make_prior(2, alpha0=0.6, m0=0.3, prec0=0.4, a0=1.7, b0=0.9)
  params = start(x.numpy(), 4, 3, prior, mean_prior)
  params = params._replace(means=params.means + rng.normal(
      0, 0.3, params.means.shape))
  stats, _ = map_lib.e_step(x, params, 50)
  new = map_lib.m_step(stats, params, prior, mean_prior,
                       map_lib.min_count(prior, mean_prior))
  log_weights = tf.Variable(new.log_weights)
  means, log_tau = tf.Variable(new.means), tf.Variable(tf.math.log(
      new.precisions))
  if mean_prior == "independent":
    # ECM: tau is the mode given the new mu; mu the mode given the old tau.
    means_old = tf.Variable(new.means)
    with tf.GradientTape() as tape:
      value = em_objective(stats, map_lib.Parameters(
          new.log_weights, means_old, params.precisions), prior, mean_prior)
    np.testing.assert_allclose(tape.gradient(value, means_old), 0, atol=1e-8)
  with tf.GradientTape() as tape:
    value = em_objective(stats, map_lib.Parameters(
        log_weights, means, tf.exp(log_tau)), prior, mean_prior)
  grad_w, grad_mu, grad_tau = tape.gradient(value, [log_weights, means,
                                                    log_tau])
  np.testing.assert_allclose(grad_tau, 0, atol=1e-8)
  if mean_prior == "conjugate":
    np.testing.assert_allclose(grad_mu, 0, atol=1e-8)
  # On the simplex: d/d log pi_k = pi_k * lambda, the same multiplier for all.
  multiplier = grad_w.numpy() / np.exp(new.log_weights.numpy())
  np.testing.assert_allclose(
      multiplier, np.broadcast_to(multiplier[:, :1], multiplier.shape),
      rtol=1e-9)


@pytest.mark.parametrize("mean_prior", ["conjugate", "independent"])
@pytest.mark.parametrize("alpha0", [1.0, 0.25])
def test_log_posterior_never_decreases(mean_prior, alpha0):
  x = clusters(60, separation=2.5)
  prior = make_prior(2, alpha0=alpha0, prec0=0.5, a0=1.5, b0=0.5)
  result = map_lib.run_em(tf.constant(x), start(x, 4, 6, prior, mean_prior),
                          prior, 150, 1e-13, mean_prior=mean_prior)
  history = result.history.numpy()                               # [T + 1, R]
  kept_all = map_lib.live_components(result.parameters).numpy().all(-1)
  assert kept_all.any() and result.n_iter.numpy().max() > 20
  # Drops are permanent: a restart that ends with every component live
  # never changed its set of components, and EM is monotone for it.
  steps = np.diff(history[:, kept_all], axis=0)
  assert steps.min() >= -1e-9 * np.abs(history).max()


# --------------------------------------------- restarts, chunks, weights


def test_restarts_together_equal_restarts_alone():
  x = tf.constant(clusters(40, separation=2.0))
  prior = make_prior(2, alpha0=1.0)
  params = start(x.numpy(), 5, 6, prior, seed=3)
  together = map_lib.run_em(x, params, prior, 200, 1e-9)
  values = together.log_posterior.numpy()
  assert np.ptp(values) > 0.5                  # several local modes
  converged = together.converged.numpy()
  assert converged.any() and not converged.all()
  for r in range(6):
    alone = map_lib.run_em(x, map_lib.Parameters(*[t[r:r + 1] for t in params]),
                           prior, 200, 1e-9)
    assert int(alone.n_iter[0]) == int(together.n_iter[r])
    assert bool(alone.converged[0]) == bool(together.converged[r])
    for a, b in zip(alone.parameters, together.parameters):
      np.testing.assert_allclose(a[0], b[r], rtol=1e-9, atol=1e-12)
    n = int(alone.n_iter[0]) + 1
    np.testing.assert_allclose(alone.history[:n, 0], together.history[:n, r],
                               rtol=1e-12)


def test_best_of_restarts_has_the_highest_log_posterior():
  x = clusters(40, separation=2.0)
  result = tfgmm.fit(x, 5, method="map", n_init=12, seed=3,
                     weight_concentration=1.0, dtype="float64")
  values = result.restart_log_posteriors
  assert np.ptp(values) > 0.5 and (result.restart_active == 5).all()
  assert result.best_restart == int(np.argmax(values))
  np.testing.assert_allclose(result.log_posterior, values.max(), rtol=1e-12)
  np.testing.assert_allclose(result.history[-1], result.log_posterior)
  assert np.all(np.diff(result.weights) <= 0)    # canonical order


def test_chunks_and_sample_weights():
  """Chunking changes nothing; an integer weight counts a row that often."""
  x = clusters(20, separation=3.0)
  counts = np.random.default_rng(4).integers(0, 3, x.shape[0])
  prior = make_prior(2, alpha0=1.0)
  params = start(x, 3, 2, prior)
  weighted = map_lib.run_em(tf.constant(x), params, prior, 50, 1e-12,
                            sample_weight=counts.astype(float), chunk=7)
  repeated = map_lib.run_em(tf.constant(np.repeat(x, counts, 0)), params,
                            prior, 50, 1e-12)
  for a, b in zip(weighted.parameters, repeated.parameters):
    np.testing.assert_allclose(a, b, rtol=1e-9)
  np.testing.assert_allclose(weighted.history, repeated.history, rtol=1e-10)


def test_restarts_on_a_sample_then_all_rows():
  # The restarts run on 200 of the 500 rows; the best then runs on all.
  x = clusters(100)
  full = tfgmm.fit(x, 5, method="map", n_init=4, seed=0, dtype="float64",
                   tol=1e-10)
  sampled = tfgmm.fit(x, 5, method="map", n_init=4, seed=0, dtype="float64",
                      tol=1e-10, sample_size=200)
  assert sampled.restart_log_posteriors.shape == (4,)
  np.testing.assert_allclose(sampled.weights, full.weights, atol=1e-5)
  np.testing.assert_allclose(sampled.means, full.means, atol=1e-4)
  np.testing.assert_allclose(sampled.log_posterior, full.log_posterior,
                             rtol=1e-9)


# ------------------------------------------- the flat-prior limit: sklearn


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("mean_prior", ["conjugate", "independent"])
def test_flat_prior_limit_is_sklearn_maximum_likelihood(mean_prior, blog):
  # alpha0 = 1: pi_k = N_k / N. Conjugate: beta0, b0 -> 0 with a0 = 1/2
  # gives tau = N_k / Q_k; independent: lambda0, b0 -> 0 with a0 = 1.
  # Both run exactly 60 EM iterations (tol 0 for scikit-learn, < 0 here): a
  # tolerance on the objective stops at iterates sqrt(tol) apart in the
  # parameters, even at tol = 0.
  x = blog[0]
  a0 = 0.5 if mean_prior == "conjugate" else 1.0
  prior = make_prior(2, alpha0=1.0, prec0=1e-12, a0=a0, b0=1e-12)
  means = x[[0, 1000, 2000]] + 0.5                  # one row of each cluster
  params = map_lib.Parameters(*[tf.constant(v[None]) for v in (
      np.log(np.full(3, 1 / 3)), means, np.ones((3, 2)))])
  ours = map_lib.run_em(tf.constant(x), params, prior, 60, -1.0,
                        mean_prior=mean_prior)
  reference = GaussianMixture(
      3, covariance_type="diag", weights_init=np.full(3, 1 / 3),
      means_init=means, precisions_init=np.ones((3, 2)), reg_covar=0.0,
      tol=0.0, max_iter=60).fit(x)
  assert int(ours.n_iter[0]) == reference.n_iter_ == 60
  np.testing.assert_allclose(np.exp(ours.parameters.log_weights[0]),
                             reference.weights_, rtol=1e-10)
  np.testing.assert_allclose(ours.parameters.means[0], reference.means_,
                             rtol=1e-10, atol=1e-12)
  np.testing.assert_allclose(ours.parameters.precisions[0],
                             reference.precisions_, rtol=1e-10)


# --------------------------------------------------- dropping, the result


def test_collapsing_component_is_dropped_with_a_warning():
  # A lone far row of weight 0.3: its component's count 0.3 + alpha0 = 0.8
  # is <= 1, the weight has no interior mode, in every restart.
  rng = np.random.default_rng(5)
  x = np.concatenate([rng.standard_normal((50, 2)), [[1000.0, 1000.0]]])
  weights = np.concatenate([np.ones(50), [0.3]])
  with pytest.warns(map_lib.ComponentsDroppedWarning,
                    match=r"1 of 2 components were dropped in the kept "
                          r"restart .*N_k <= 0\.5"):
    result = tfgmm.fit(x, 2, method="map", n_init=5, seed=0,
                       sample_weight=weights, dtype="float64")
  assert (result.restart_active == 1).all()
  np.testing.assert_array_equal(result.active, [True, False])
  np.testing.assert_array_equal(result.weights, [1.0, 0.0])
  assert np.isfinite(result.means).all() and np.isfinite(
      result.precisions).all() and np.isfinite(result.log_posterior)
  assert np.isfinite(result.log_prob(x).numpy()).all()
  responsibilities = result.responsibilities(x).numpy()
  np.testing.assert_array_equal(responsibilities[:, 1], 0.0)
  np.testing.assert_array_equal(result.sample(100, seed=0).shape, (100, 2))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_result_in_data_units(dtype, blog):
  x = blog[0] * [3.0, 0.5] + [10.0, -4.0]
  result = tfgmm.fit(x, 3, method="map", n_init=4, seed=0, dtype=dtype)
  reference = tfgmm.fit(x, 3, method="map", n_init=4, seed=0,
                        dtype="float64")
  np.testing.assert_allclose(result.means, reference.means, rtol=1e-4)
  np.testing.assert_allclose(result.weights, reference.weights, rtol=1e-4)
  # The plug-in density in data units, from the reported parameters.
  expected = scipy.special.logsumexp(
      np.log(result.weights) + scipy.stats.norm.logpdf(
          x[:, None, :], result.means,
          1 / np.sqrt(result.precisions)).sum(-1), -1)
  log_prob = result.log_prob(x)
  assert log_prob.dtype == tf.as_dtype(dtype)
  np.testing.assert_allclose(log_prob, expected,
                             rtol=1e-10 if dtype == "float64" else 1e-5)
  responsibilities = result.responsibilities(x).numpy()
  np.testing.assert_allclose(responsibilities.sum(1), 1.0, rtol=1e-5)
  np.testing.assert_array_equal(result.assign(x),
                                responsibilities.argmax(1))
  draws = result.sample(20000, seed=1).numpy()
  np.testing.assert_allclose(draws.mean(0), result.weights @ result.means,
                             atol=0.1)


# -------------------------------------------------------------- arguments


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(n_init=0), ValueError, "n_init=0"),
    (dict(n_init=2.5), TypeError, "n_init=2.5"),
    (dict(covariance_type="full"), ValueError, "covariance_type='full'"),
    (dict(weight_prior="dirichlet_process"), ValueError,
     "weight_prior='dirichlet_process'"),
    (dict(missing="marginalize"), ValueError, "missing='marginalize'"),
    (dict(mean_prior="wishart"), ValueError, "mean_prior='wishart'"),
    (dict(step_size=0.5), ValueError, "step_size=0.5"),
    (dict(batch_size=10), ValueError, "batch_size=10"),
    (dict(num_examples=100), ValueError, "num_examples=100"),
    (dict(weight_concentration=0.0), ValueError, "weight_concentration=0.0"),
    (dict(sample_size=0), ValueError, "sample_size=0"),
    (dict(method="mapp"), ValueError, "method='mapp'"),
])
def test_bad_arguments(kwargs, error, match):
  kwargs.setdefault("method", "map")
  with pytest.raises(error, match=match):
    tfgmm.fit(PYRO_X, 2, **kwargs)


def test_bad_inference_arguments():
  result = tfgmm.fit(PYRO_X, 2, method="map", n_init=2, seed=0,
                     weight_concentration=1.0, dtype="float64")
  with pytest.raises(ValueError, match="temperature=-1"):
    result.assign(PYRO_X, temperature=-1)
  with pytest.raises(ValueError, match=r"x.shape=\(5, 2\)"):
    result.log_prob(np.ones((5, 2)))
  with pytest.raises(ValueError, match="method='map'"):
    tfgmm.fit(tf.data.Dataset.from_tensor_slices(PYRO_X).batch(2), 2,
              method="map")
