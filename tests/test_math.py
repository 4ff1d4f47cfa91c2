"""The model's math against scikit-learn, scipy, TFP and Monte Carlo."""

import numpy as np
import pytest
import scipy.stats
import tensorflow as tf
import tensorflow_probability as tfp
from sklearn.mixture import BayesianGaussianMixture

from tests.helpers import make_prior
from tests.helpers import mixture_data
from tests.helpers import random_posterior
import tfgmm
from tfgmm._engine import inference
from tfgmm._engine import loops
from tfgmm._engine import weight_priors
from tfgmm.families import diag

tfd = tfp.distributions


def cavi_step(x, q, prior):
  log_r = diag.log_rho(x, q)
  resp = tf.nn.softmax(log_r, -1)
  return diag.natural_update(q, diag.sufficient_statistics(x, resp), prior)


def test_cavi_matches_sklearn_bayesian_gmm_in_1d(rng):
  """Same prior, same initial responsibilities: the same q at every step."""
  x = mixture_data(rng, 300, 1)
  k, alpha0, beta0, m0, a0, b0 = 3, 0.5, 0.7, 0.3, 1.5, 0.8
  resp0 = rng.dirichlet(np.ones(k), size=x.shape[0])
  reference = BayesianGaussianMixture(
      n_components=k, covariance_type="diag",
      weight_concentration_prior_type="dirichlet_distribution",
      weight_concentration_prior=alpha0, mean_precision_prior=beta0,
      mean_prior=[m0], degrees_of_freedom_prior=2 * a0,
      covariance_prior=[2 * b0], reg_covar=0.0)
  reference._check_parameters(x)  # pylint: disable=protected-access
  reference._initialize(x, resp0)  # pylint: disable=protected-access
  prior = make_prior(1, alpha0=alpha0, m0=m0, beta0=beta0, a0=a0, b0=b0)
  xt = tf.constant(x)
  q = diag.posterior_from_statistics(
      diag.sufficient_statistics(xt, tf.constant(resp0)), prior)
  for iteration in range(8):
    np.testing.assert_allclose(q.weight_concentration,
                               reference.weight_concentration_, rtol=1e-10)
    np.testing.assert_allclose(q.mean_precision[:, 0],
                               reference.mean_precision_, rtol=1e-10)
    np.testing.assert_allclose(q.mean_loc, reference.means_, rtol=1e-9,
                               atol=1e-12)
    np.testing.assert_allclose(2 * q.precision_concentration,
                               reference.degrees_of_freedom_[:, None],
                               rtol=1e-10)
    np.testing.assert_allclose(
        2 * q.precision_rate,
        reference.covariances_ * reference.degrees_of_freedom_[:, None],
        rtol=1e-9, err_msg=f"iteration {iteration}")
    _, log_resp = reference._e_step(x)  # pylint: disable=protected-access
    reference._m_step(x, log_resp)  # pylint: disable=protected-access
    q = cavi_step(xt, q, prior)


@pytest.mark.parametrize("d", [1, 4])
def test_cavi_bound_never_decreases(rng, d):
  x = tf.constant(mixture_data(rng, 500, d, k=4))
  prior = make_prior(d)
  resp0 = tf.constant(rng.dirichlet(np.ones(5), size=500))
  q0 = diag.posterior_from_statistics(diag.sufficient_statistics(x, resp0),
                                       prior)
  _, history, _ = diag.FAMILY.cavi(x, q0, prior, tf.constant(60),
                             tf.constant(0.0, tf.float64), chunk=128)
  bound = (history[:, 0] - history[:, 1]).numpy()
  assert bound.shape == (60,)
  assert np.all(np.diff(bound) >= -1e-10), np.diff(bound).min()
  assert bound[-1] > bound[0] + 0.01


def test_cavi_races_restarts(rng):
  """A restart far behind the leader is not waited for, and racing leaves
  the leader's iterations unchanged."""
  means = np.array([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]])
  x = tf.constant(np.repeat(means, 200, 0) + rng.normal(size=(600, 2)))
  prior = make_prior(2)
  # The leader starts at the true clusters; the other with two components
  # sharing the first cluster (one drains only slowly) and one covering two.
  shared = np.concatenate([rng.integers(2, size=200), np.full(400, 2)])
  resp0 = tf.constant(np.eye(3)[np.stack([np.repeat([0, 1, 2], 200),
                                          shared])])  # [2, 600, 3]
  q0 = diag.posterior_from_statistics(diag.sufficient_statistics(x, resp0),
                                       prior)          # [2, 3, ...]
  tol = tf.constant(1e-8, tf.float64)
  _, slow, _ = diag.FAMILY.cavi(x, q0, prior, tf.constant(300), tol, 128)
  _, fast, raced = diag.FAMILY.cavi(x, q0, prior, tf.constant(300), tol, 128,
                              drop_margin=tf.constant(0.1, tf.float64),
                              min_iter=tf.constant(3))
  bound = (slow[:, 0] - slow[:, 1]).numpy()                 # [T, 2]
  assert bound[2, 1] < bound[2, 0] - 0.1
  assert bool(raced) and fast.shape[0] < slow.shape[0]
  np.testing.assert_allclose(fast[..., 0], slow[:fast.shape[0], :, 0],
                             rtol=1e-12)


def test_normalize_is_logsumexp_and_softmax_with_their_gradient(rng):
  """One exp gives scipy's logsumexp and softmax, even where the row's
  values sit 1e4 from zero, and d ll / d log_rho is the softmax."""
  from scipy import special
  values = rng.normal(size=(6, 2, 5)) * 30.0 + rng.normal(size=(6, 2, 1)) * 1e4
  log_rho = tf.constant(values)
  with tf.GradientTape() as tape:
    tape.watch(log_rho)
    ll, r = inference.normalize(log_rho)
  np.testing.assert_allclose(ll, special.logsumexp(values, -1), rtol=1e-14)
  np.testing.assert_allclose(r, special.softmax(values, -1), rtol=1e-12,
                             atol=1e-300)
  np.testing.assert_allclose(tape.gradient(ll, log_rho),
                             special.softmax(values, -1), rtol=1e-12,
                             atol=1e-300)
  assert ll.shape == (6, 2) and r.shape == (6, 2, 5)


def test_log_rho_expanded_square_matches_direct_sum(rng):
  x = tf.constant(rng.normal(size=(7, 3)))
  q = random_posterior(rng, 4, 3)
  a, b, m, beta = (q.precision_concentration, q.precision_rate, q.mean_loc,
                   q.mean_precision)
  direct = (weight_priors.expected_log_weights(q.weight_concentration)
            + tf.reduce_sum(0.5 * (tf.math.digamma(a) - tf.math.log(b)
                                   - np.log(2 * np.pi))
                            - 0.5 * (a / b) * tf.square(x[:, None] - m)
                            - 0.5 / beta, -1))
  np.testing.assert_allclose(diag.log_rho(x, q), direct, rtol=1e-12)


def test_chunked_e_step_matches_one_pass(rng):
  x = tf.constant(rng.normal(size=(1000, 3)))
  q = random_posterior(rng, 4, 3)
  stats, total = diag.FAMILY.statistics_and_log_likelihood(x, q, chunk=77)
  lr = diag.log_rho(x, q)
  direct = diag.sufficient_statistics(x, tf.nn.softmax(lr, -1))
  for got, want in zip(stats, direct):
    np.testing.assert_allclose(got, want, rtol=1e-10)
  np.testing.assert_allclose(total, tf.reduce_sum(tf.reduce_logsumexp(lr, -1)),
                             rtol=1e-12)
  chunked = inference.map_chunks(lambda r: diag.FAMILY.predictive_log_prob(r, q), x, 33)
  np.testing.assert_allclose(chunked, diag.FAMILY.predictive_log_prob(x, q),
                             rtol=1e-12)


def test_kl_terms_match_tfp_and_monte_carlo(rng):
  q = random_posterior(rng, 3, 2)
  prior = make_prior(2)
  np.testing.assert_allclose(
      weight_priors.dirichlet_kl(q.weight_concentration, prior.weight_concentration),
      tfd.kl_divergence(tfd.Dirichlet(q.weight_concentration),
                        tfd.Dirichlet(tf.fill([3], prior.weight_concentration))),
      rtol=1e-10)
  np.testing.assert_allclose(
      diag.gamma_kl(q.precision_concentration, q.precision_rate,
                     prior.precision_concentration, prior.precision_rate),
      tfd.kl_divergence(tfd.Gamma(q.precision_concentration, q.precision_rate),
                        tfd.Gamma(prior.precision_concentration,
                                  prior.precision_rate)), rtol=1e-10)
  # Normal-Gamma: E_q[log q(mu, tau) - log p(mu, tau)] by Monte Carlo.
  s = 400_000
  tau = tfd.Gamma(q.precision_concentration, q.precision_rate).sample(
      s, seed=(1, 2))
  mu = tfd.Normal(q.mean_loc, tf.math.rsqrt(q.mean_precision * tau)).sample(
      seed=(3, 4))
  log_q = (tfd.Gamma(q.precision_concentration, q.precision_rate).log_prob(tau)
           + tfd.Normal(q.mean_loc, tf.math.rsqrt(q.mean_precision * tau))
           .log_prob(mu))
  log_p = (tfd.Gamma(prior.precision_concentration, prior.precision_rate)
           .log_prob(tau)
           + tfd.Normal(prior.mean_loc, tf.math.rsqrt(prior.mean_precision * tau))
           .log_prob(mu))
  diff = (log_q - log_p).numpy()
  estimate, error = diff.mean(0), diff.std(0) / np.sqrt(s)
  closed = diag.normal_gamma_kl(q, prior).numpy()
  assert np.all(np.abs(estimate - closed) < 5 * error + 1e-9), (estimate, closed)


def test_predictive_components_are_scipy_student_t(rng):
  q = random_posterior(rng, 3, 2)
  x = rng.normal(0, 3, (5, 2))
  got = diag.predictive_component_log_prob(tf.constant(x), q).numpy()
  df = 2 * q.precision_concentration.numpy()
  scale = np.sqrt(q.precision_rate * (q.mean_precision + 1)
                  / (q.precision_concentration * q.mean_precision))
  want = scipy.stats.t.logpdf(x[:, None, :], df, q.mean_loc.numpy(),
                              scale).sum(-1)
  np.testing.assert_allclose(got, want, rtol=1e-10)


def test_predictive_matches_monte_carlo_over_q(rng):
  """log_prob is log E_q[p(x | pi, mu, tau)], the exact predictive."""
  q = random_posterior(rng, 3, 2)
  x = rng.normal(0, 2, (6, 2))
  s = 400_000
  pi = tfd.Dirichlet(q.weight_concentration).sample(s, seed=(5, 6))
  tau = tfd.Gamma(q.precision_concentration, q.precision_rate).sample(
      s, seed=(7, 8))
  mu = tfd.Normal(q.mean_loc, tf.math.rsqrt(q.mean_precision * tau)).sample(
      seed=(9, 10))
  for row in x:
    per_draw = tf.reduce_logsumexp(
        tf.math.log(pi) + tf.reduce_sum(
            tfd.Normal(mu, tf.math.rsqrt(tau)).log_prob(row), -1), -1)
    estimate = tf.reduce_logsumexp(per_draw) - np.log(s)
    exact = diag.FAMILY.predictive_log_prob(tf.constant(row[None]), q)[0]
    np.testing.assert_allclose(estimate, exact, atol=5e-3)


def test_sampled_estimator_averages_above_analytic_bound(rng):
  """Jensen: E_q[log p(x | theta)] >= logsumexp_k log_rho[k]."""
  q = random_posterior(rng, 3, 2)
  x = tf.constant(rng.normal(0, 2, (20, 2)))
  # One draw per row: 2000 copies of x give 2000 independent draws each.
  draws = tf.reshape(diag.sampled_log_likelihood(
      tf.tile(x, [2000, 1]), q, tf.constant([1, 0])), [2000, 20])  # [S, B]
  mean, error = tf.reduce_mean(draws, 0), tf.math.reduce_std(draws, 0) / np.sqrt(2000)
  analytic = tf.reduce_logsumexp(diag.log_rho(x, q), -1)
  assert np.all(mean.numpy() >= analytic.numpy() - 4 * error.numpy())
  assert np.mean(mean.numpy() - analytic.numpy()) > 0


def test_minibatch_natural_targets_average_to_the_full_batch_target(rng):
  """With s = N / |B|, the batch targets of a partition average to CAVI's."""
  x = tf.constant(rng.normal(size=(600, 2)))
  q = random_posterior(rng, 3, 2)
  prior = make_prior(2)
  resp = tf.nn.softmax(diag.log_rho(x, q), -1)

  def natural(p):
    return [p.weight_concentration, p.mean_precision,
            p.mean_precision * p.mean_loc, p.precision_concentration,
            p.precision_rate + 0.5 * p.mean_precision * tf.square(p.mean_loc)]

  full = natural(diag.posterior_from_statistics(
      diag.sufficient_statistics(x, resp), prior))
  parts = [natural(diag.posterior_from_statistics(
      diag.sufficient_statistics(x[i:i + 200], resp[i:i + 200]), prior, 3.0))
           for i in range(0, 600, 200)]
  for j, want in enumerate(full):
    np.testing.assert_allclose(np.mean([p[j] for p in parts], 0), want,
                               rtol=1e-10)


def test_natural_step_interpolates_natural_parameters(rng):
  q = random_posterior(rng, 3, 2)
  prior = make_prior(2)
  x = tf.constant(rng.normal(size=(50, 2)))
  stats = diag.sufficient_statistics(
      x, tf.nn.softmax(diag.log_rho(x, q), -1))
  target = diag.posterior_from_statistics(stats, prior, 4.0)
  half = diag.natural_update(q, stats, prior, 4.0, 0.25)
  np.testing.assert_allclose(half.mean_precision,
                             0.75 * q.mean_precision + 0.25 * target.mean_precision)
  np.testing.assert_allclose(
      half.mean_precision * half.mean_loc,
      0.75 * q.mean_precision * q.mean_loc
      + 0.25 * target.mean_precision * target.mean_loc)
  assert np.all(half.precision_rate.numpy() > 0)


def test_float32_cavi_tracks_float64(rng):
  x = mixture_data(rng, 2000, 3)
  x = (x - x.mean(0)) / x.std(0)
  resp0 = rng.dirichlet(np.ones(3), size=2000)
  results = {}
  for dtype in (tf.float32, tf.float64):
    prior = make_prior(3, dtype)
    xt = tf.constant(x, dtype)
    q0 = diag.posterior_from_statistics(
        diag.sufficient_statistics(xt, tf.constant(resp0, dtype)), prior)
    q, _, _ = diag.FAMILY.cavi(xt, q0, prior, tf.constant(10),
                         tf.constant(0.0, tf.float64), chunk=512)
    assert q.mean_loc.dtype == dtype
    results[dtype] = q
  for a, b in zip(results[tf.float32], results[tf.float64]):
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


def test_predictive_samples_have_the_predictive_moments(rng):
  q = random_posterior(rng, 2, 2)
  n = 400_000
  draws = diag.sample_predictive(tf.constant(n), tf.constant([3, 4], tf.int64),
                                  q).numpy()
  w = (q.weight_concentration / tf.reduce_sum(q.weight_concentration)).numpy()
  m = q.mean_loc.numpy()
  df = 2 * q.precision_concentration.numpy()
  scale2 = (q.precision_rate * (q.mean_precision + 1)
            / (q.precision_concentration * q.mean_precision)).numpy()
  mean = w @ m
  second = w @ (scale2 * df / (df - 2) + m**2)
  np.testing.assert_allclose(draws.mean(0), mean, atol=0.03)
  np.testing.assert_allclose((draws**2).mean(0), second, rtol=0.03)


def test_float32_predictive_keeps_its_digits_at_large_counts(rng):
  """lgamma of counts ~1e5 must not leak float32 rounding into log p(x)."""
  k, d = 4, 10
  q64 = random_posterior(rng, k, d)
  big = 1e5
  q64 = q64._replace(weight_concentration=q64.weight_concentration * big,
                     mean_precision=q64.mean_precision * big,
                     precision_concentration=q64.precision_concentration * big,
                     precision_rate=q64.precision_rate * big)
  q32 = diag.cast_posterior(q64, tf.float32)
  q32_64 = diag.cast_posterior(q32, tf.float64)   # same values, float64 math
  x = rng.normal(0, 1, (50, d))
  for fn in (diag.FAMILY.predictive_log_prob,
             lambda x, q: tf.reduce_logsumexp(diag.log_rho(x, q), -1)):
    got = fn(tf.constant(x, tf.float32), q32).numpy()
    want = fn(tf.constant(x), q32_64).numpy()
    np.testing.assert_allclose(got, want, atol=2e-4 * np.abs(want).max())


@pytest.mark.parametrize("concentration", [0.01, 0.5, 3.0])
def test_log_gamma_draws_follow_the_gamma_distribution(concentration):
  # exp of the boosted draws is Gamma(a, 1): Kolmogorov-Smirnov against
  # scipy, and the mean of log G is digamma(a).
  draws = weight_priors.log_gamma_draws(
      20000, tf.constant([concentration], tf.float64),
      tf.constant([3, 4], tf.int32)).numpy()[:, 0]
  assert np.all(np.isfinite(draws))
  result = scipy.stats.kstest(np.exp(draws), scipy.stats.gamma(concentration).cdf)
  assert result.pvalue > 1e-3, result
  error = abs(draws.mean() - scipy.special.digamma(concentration))
  assert error < 5 * draws.std() / np.sqrt(draws.size), error


def test_log_gamma_draws_have_finite_exact_gradients_at_small_concentration():
  # a = 0.02 draws log G far below float32's log of the smallest float
  # (-87), where TFP's ExpGamma's own reparameterised gradient is NaN. The
  # boosted draw's gradient matches a central difference at the same seed.
  seed = tf.constant([5, 6], tf.int32)
  for dtype in (tf.float32, tf.float64):
    a = tf.constant([0.02, 0.5], dtype)
    with tf.GradientTape() as tape:
      tape.watch(a)
      draws = weight_priors.log_gamma_draws(64, a, seed)                  # [64, 2]
      total = tf.reduce_sum(draws)
    gradient = tape.gradient(total, a).numpy()
    assert np.all(np.isfinite(gradient)), (dtype, gradient)
    assert draws.numpy().min() < -87.0
    if dtype == tf.float64:
      step = 1e-6
      plus = weight_priors.log_gamma_draws(64, a + [step, 0.0], seed)
      minus = weight_priors.log_gamma_draws(64, a - [step, 0.0], seed)
      numeric = float(tf.reduce_sum(plus - minus)) / (2 * step)
      # TFP's implicit Gamma gradient is accurate to about 1e-4.
      np.testing.assert_allclose(gradient[0], numeric, rtol=1e-3)


@pytest.mark.parametrize("covariance_type",
                         ["diag", "full", "tied", "spherical"])
@pytest.mark.parametrize("weight_prior", ["dirichlet", "dirichlet_process"])
def test_compiled_kl_is_the_familys(rng, covariance_type, weight_prior):
  """`loops.kl_divergence` (which `elbo` calls) is the family's KL, one
  trace for any K and D; q is a CAVI global step from random
  responsibilities."""
  for k, d in ((2, 3), (4, 2)):
    model = tfgmm.BayesianGMM(k, d, covariance_type=covariance_type,
                              weight_prior=weight_prior, dtype="float64")
    family, prior = model.family, model.prior()
    x = tf.constant(mixture_data(rng, 200, d))
    resp = tf.constant(rng.dirichlet(np.ones(k), size=200))
    q = family.posterior_from_statistics(
        family.sufficient_statistics(x, resp), prior, 1.0, weight_prior)
    np.testing.assert_allclose(
        loops.kl_divergence(family, q, prior, weight_prior),
        family.kl_divergence(q, prior, weight_prior), rtol=1e-12)


@pytest.mark.parametrize("covariance_type",
                         ["diag", "full", "tied", "spherical"])
@pytest.mark.parametrize("weighted", [False, True])
def test_compiled_global_step_is_the_familys(rng, covariance_type, weighted):
  """`loops.posterior_from_responsibilities` (the search's step from
  responsibilities) is the family's eager global step, for one set of
  responsibilities [N, K] and for restarts [R, N, K]."""
  k, d, n = 3, 2, 150
  model = tfgmm.BayesianGMM(k, d, covariance_type=covariance_type,
                            weight_prior="dirichlet_process",
                            dtype="float64")
  family, prior = model.family, model.prior()
  x = tf.constant(mixture_data(rng, n, d))
  w = tf.constant(rng.uniform(0.0, 2.0, n)) if weighted else None
  for shape in ((n, k), (4, n, k)):
    resp = tf.constant(rng.dirichlet(np.ones(k), size=shape[:-1]))
    eager = family.posterior_from_statistics(
        family.sufficient_statistics(x, resp, w), prior, 7.0,
        "dirichlet_process")
    compiled = loops.posterior_from_responsibilities(
        family, x, resp, prior, 7.0, "dirichlet_process", w)
    for a, b in zip(compiled, eager):
      np.testing.assert_allclose(a, b, rtol=1e-12)
