"""The independent-prior (TFP blog) model's math: CAVI, KL, predictive, SVI."""

import numpy as np
import pytest
import scipy.special
import scipy.stats
import tensorflow as tf
import tensorflow_probability as tfp

from tests.helpers import mixture_data
from tfgmm.families import diag_independent as _independent
from tfgmm._engine import weight_priors
from tfgmm.families import diag
from tfgmm._engine import loops

tfd = tfp.distributions


def make_prior(d, dtype=tf.float64, alpha0=2.0, m0=0.0, lambda0=1.0, a0=5.0,
               b0=5.0):
  """The blog's prior by default: Dirichlet(2), N(0, 1), Gamma(5, 5)."""
  return diag.Posterior(tf.constant(alpha0, dtype),
                         tf.constant(np.full(d, m0), dtype),
                         tf.constant(lambda0, dtype), tf.constant(a0, dtype),
                         tf.constant(np.full(d, b0), dtype))


def random_posterior(rng, k, d, dtype=tf.float64, a_low=2.0):
  return diag.Posterior(
      tf.constant(rng.uniform(1.0, 20.0, k), dtype),
      tf.constant(rng.normal(0, 2, (k, d)), dtype),
      tf.constant(rng.uniform(0.5, 30.0, (k, d)), dtype),
      tf.constant(rng.uniform(a_low, 15.0, (k, d)), dtype),
      tf.constant(rng.uniform(0.5, 10.0, (k, d)), dtype))


def e_step(x, q):
  return diag.sufficient_statistics(
      x, tf.nn.softmax(_independent.log_rho(x, q), -1))


def bound(x, q, prior):
  """The bound with the responsibilities at their optimum, float64."""
  return float(tf.reduce_sum(tf.reduce_logsumexp(
      tf.cast(_independent.log_rho(x, q), tf.float64), -1))
               - tf.cast(_independent.kl_divergence(q, prior), tf.float64))


def fixed_responsibility_bound(x, resp, q, prior):
  """ELBO(r, q) = sum_nk r (log_rho - log r) - KL, with r held fixed."""
  return (tf.reduce_sum(resp * (_independent.log_rho(x, q) - tf.math.log(resp)))
          - _independent.kl_divergence(q, prior))


def simultaneous_update(q, stats, prior):
  """The Jacobi update: q(mu) and q(tau) both from the OLD q."""
  mean = _independent.update_mean_factor(q, stats, prior)
  precision = _independent.update_precision_factor(q, stats, prior)
  return mean._replace(
      precision_concentration=precision.precision_concentration,
      precision_rate=precision.precision_rate)


def initial_posterior(x, rng, k, prior):
  resp = tf.constant(rng.dirichlet(np.ones(k), size=x.shape[0]), x.dtype)
  return _independent.posterior_from_statistics(
      diag.sufficient_statistics(x, resp), prior)


# ------------------------------------------------------------------- CAVI


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
@pytest.mark.parametrize("d", [1, 3])
def test_cavi_bound_never_decreases(rng, d, dtype):
  x = tf.constant(mixture_data(rng, 300, d, k=4), dtype)
  prior = make_prior(d, dtype)
  q0 = initial_posterior(x, rng, 5, prior)
  # And a start far from the optimum: means 20 units off, precisions 100x
  # too large, weights lopsided.
  far = diag.Posterior(
      tf.constant([1.0, 1.0, 1.0, 1.0, 400.0], dtype),
      tf.constant(rng.normal(20.0, 1.0, (5, d)), dtype),
      tf.fill([5, d], tf.constant(1e3, dtype)),
      tf.fill([5, d], tf.constant(50.0, dtype)),
      tf.fill([5, d], tf.constant(0.5, dtype)))
  for start in (q0, far):
    q, history, _ = _independent.FAMILY.cavi(x, start, prior, tf.constant(30),
                                      tf.constant(0.0, tf.float64), chunk=256)
    assert q.mean_loc.dtype == dtype
    per_point = (history[:, 0] - history[:, 1]).numpy()
    assert per_point.shape == (30,)
    # float32 log_rho rounds at ~1e-7 relative per point.
    slack = 1e-12 if dtype == tf.float64 else 1e-6 * np.abs(per_point).max()
    assert np.all(np.diff(per_point) >= -slack), np.diff(per_point).min()
    assert per_point[-1] > per_point[0] + 0.01


def test_cavi_fits_the_blog_data_with_the_blog_prior(blog):
  x_np, labels = blog[0][::5], blog[1][::5]                      # 600 rows
  x = tf.constant(x_np)
  prior = make_prior(2)
  resp = tf.one_hot(labels, 3, dtype=tf.float64) * 0.6 + 0.4 / 3
  q0 = _independent.posterior_from_statistics(
      diag.sufficient_statistics(x, resp), prior)
  q, history, converged = _independent.FAMILY.cavi(
      x, q0, prior, tf.constant(200), tf.constant(1e-10, tf.float64), 256)
  assert bool(converged)
  assert np.all(np.diff(history[:, 0] - history[:, 1]) >= -1e-12)
  truth = np.array([[2.0, 0.0], [-2.0, -4.0], [-2.0, 4.0]])
  np.testing.assert_allclose(q.mean_loc, truth, atol=0.15)
  precision = (q.precision_concentration / q.precision_rate).numpy()
  np.testing.assert_allclose(precision, 1.0, atol=0.15)


def test_cavi_with_stick_breaking_weights_never_decreases(rng):
  """The weight factor is `diag`'s: the DP sticks drop in unchanged."""
  x = tf.constant(mixture_data(rng, 300, 2, k=3))
  prior = make_prior(2)._replace(weight_concentration=tf.constant(
      1.0, tf.float64))                                           # gamma0
  resp = tf.constant(rng.dirichlet(np.ones(6), size=300))
  q0 = _independent.posterior_from_statistics(
      diag.sufficient_statistics(x, resp), prior,
      weight_prior="dirichlet_process")
  np.testing.assert_allclose(q0.weight_concentration,
                             tf.reduce_sum(resp, 0), rtol=1e-12)   # c = N
  q, history, _ = _independent.FAMILY.cavi(x, q0, prior, tf.constant(40),
                                    tf.constant(0.0, tf.float64), 128,
                                    weight_prior="dirichlet_process")
  per_point = (history[:, 0] - history[:, 1]).numpy()
  assert np.all(np.diff(per_point) >= -1e-12), np.diff(per_point).min()
  assert per_point[-1] > per_point[0] + 0.01
  np.testing.assert_allclose(tf.reduce_sum(q.weight_concentration), 300.0,
                             rtol=1e-12)


def test_integer_sample_weights_equal_repeated_rows(rng):
  x_np = mixture_data(rng, 80, 2)
  counts = rng.integers(0, 4, 80)
  prior = make_prior(2)
  q0 = random_posterior(rng, 3, 2)
  weighted, weighted_history, _ = _independent.FAMILY.cavi(
      tf.constant(x_np), q0, prior, tf.constant(10),
      tf.constant(0.0, tf.float64), 32,
      sample_weight=tf.constant(counts, tf.float64))
  repeated, repeated_history, _ = _independent.FAMILY.cavi(
      tf.constant(np.repeat(x_np, counts, 0)), q0, prior, tf.constant(10),
      tf.constant(0.0, tf.float64), 32)
  np.testing.assert_allclose(weighted_history, repeated_history, rtol=1e-10)
  for got, want in zip(weighted, repeated):
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_simultaneous_update_can_lower_the_bound():
  """Jacobi updates of q(mu), q(tau) oscillate; the sequential ones do not.

  One component (the E-step is trivial), the blog prior, 20 points near 3,
  and a start with q(mu) at -5 held tightly.
  """
  prior = make_prior(1)
  x = tf.constant(np.random.default_rng(0).normal(3.0, 0.3, (20, 1)))
  stats = diag.sufficient_statistics(x, tf.ones([20, 1], tf.float64))
  start = diag.Posterior(*[tf.constant(v, tf.float64) for v in
                            ([22.0], [[-5.0]], [[100.0]], [[5.0]], [[5.0]])])
  jacobi, sequential = start, start
  jacobi_bounds, sequential_bounds = [bound(x, start, prior)], [
      bound(x, start, prior)]
  for _ in range(6):
    jacobi = simultaneous_update(jacobi, stats, prior)
    sequential = _independent.natural_update(sequential, stats, prior)
    jacobi_bounds.append(bound(x, jacobi, prior))
    sequential_bounds.append(bound(x, sequential, prior))
  # Measured: -665.7, -75.3, -126.1, -40.0, ...: a drop of 50 nats.
  assert np.diff(jacobi_bounds).min() < -10.0, jacobi_bounds
  assert np.all(np.diff(sequential_bounds) >= -1e-12), sequential_bounds


def test_full_batch_natural_update_is_one_cavi_sweep(rng):
  """Against the vb-math.md formulas in NumPy, and against `cavi`."""
  d, k = 2, 3
  x_np = mixture_data(rng, 300, d)
  x = tf.constant(x_np)
  prior = make_prior(d, m0=0.3, lambda0=0.7, a0=1.5, b0=0.8, alpha0=0.5)
  q = random_posterior(rng, k, d)
  resp = tf.nn.softmax(_independent.log_rho(x, q), -1).numpy()
  updated = _independent.natural_update(
      q, diag.sufficient_statistics(x, tf.constant(resp)), prior)

  n = resp.sum(0)[:, None]                                        # [K, 1]
  s1, s2 = resp.T @ x_np, resp.T @ x_np**2                        # [K, D]
  precision = (q.precision_concentration / q.precision_rate).numpy()
  lam = 0.7 + precision * n
  m = (0.7 * 0.3 + precision * s1) / lam
  a = 1.5 + n / 2
  b = 0.8 + 0.5 * (s2 - 2 * m * s1 + n * (m**2 + 1 / lam))
  for got, want in zip(updated, (0.5 + n[:, 0], m, lam, a * np.ones(d), b)):
    np.testing.assert_allclose(got, want, rtol=1e-12)
  swept, _, _ = _independent.FAMILY.cavi(x, q, prior, tf.constant(1),
                                  tf.constant(0.0, tf.float64), chunk=64)
  for got, want in zip(swept, updated):
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_natural_step_interpolates_each_factor_in_natural_parameters(rng):
  q = random_posterior(rng, 3, 2)
  prior = make_prior(2)
  x = tf.constant(rng.normal(size=(50, 2)))
  stats = e_step(x, q)
  rho, s = 0.25, 4.0
  half = _independent.natural_update(q, stats, prior, s, rho)
  # q(mu)'s target uses q's E[tau]; q(tau)'s target uses the NEW q(mu).
  mean_target = _independent.update_mean_factor(q, stats, prior, s)
  np.testing.assert_allclose(
      half.mean_precision,
      (1 - rho) * q.mean_precision + rho * mean_target.mean_precision)
  np.testing.assert_allclose(
      half.mean_precision * half.mean_loc,
      (1 - rho) * q.mean_precision * q.mean_loc
      + rho * mean_target.mean_precision * mean_target.mean_loc)
  precision_target = _independent.update_precision_factor(half, stats, prior, s)
  for field in ("precision_concentration", "precision_rate"):
    np.testing.assert_allclose(
        getattr(half, field),
        (1 - rho) * getattr(q, field) + rho * getattr(precision_target, field))
  np.testing.assert_allclose(
      half.weight_concentration,
      (1 - rho) * q.weight_concentration
      + rho * (2.0 + s * stats.counts.numpy()))


def test_each_half_step_is_the_exact_coordinate_optimum(rng):
  """With r fixed, the bound's gradient in the updated factor is 0 and any
  perturbation of that factor lowers the bound."""
  d, k = 2, 3
  x = tf.constant(mixture_data(rng, 200, d))
  prior = make_prior(d)
  q0 = random_posterior(rng, k, d)
  resp = tf.nn.softmax(_independent.log_rho(x, q0), -1)
  stats = diag.sufficient_statistics(x, resp)
  after_mean = _independent.update_mean_factor(q0, stats, prior)
  after_precision = _independent.update_precision_factor(after_mean, stats,
                                                         prior)
  cases = ((after_mean, ("mean_loc", "mean_precision")),
           (after_precision, ("precision_concentration", "precision_rate")))
  for q, fields in cases:
    variables = {f: tf.Variable(getattr(q, f)) for f in fields}
    with tf.GradientTape() as tape:
      elbo = fixed_responsibility_bound(x, resp, q._replace(**variables),
                                        prior)
    for f, grad in zip(fields, tape.gradient(elbo, list(variables.values()))):
      scale = np.abs(getattr(q, f).numpy()) + 1.0
      np.testing.assert_allclose(grad.numpy() * scale, 0.0, atol=1e-8,
                                 err_msg=f)
    at_optimum = float(elbo)
    for f in fields:
      value = getattr(q, f).numpy()
      for index in np.ndindex(value.shape):
        for step in (-1e-3, 1e-3):
          moved = value.copy()
          moved[index] *= 1.0 + step
          perturbed = float(fixed_responsibility_bound(
              x, resp, q._replace(**{f: tf.constant(moved)}), prior))
          assert perturbed < at_optimum, (f, index, step)
  # And the sweep did raise the bound at fixed r.
  assert (float(fixed_responsibility_bound(x, resp, after_precision, prior))
          > float(fixed_responsibility_bound(x, resp, q0, prior)))


def test_statistics_round_trip_at_a_cavi_fixed_point(rng):
  x = tf.constant(mixture_data(rng, 300, 2))
  prior = make_prior(2)
  q, _, _ = _independent.FAMILY.cavi(x, initial_posterior(x, rng, 3, prior), prior,
                              tf.constant(300), tf.constant(1e-13, tf.float64),
                              chunk=300)
  stats = _independent.statistics_from_posterior(q, prior)
  for got, want in zip(stats, e_step(x, q)):
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
  again = _independent.posterior_from_statistics(stats, prior, 1.0, q=q)
  # CAVI stops at a bound change of 1e-13, so q sits ~sqrt(1e-13) from the
  # fixed point.
  for got, want in zip(again, q):
    np.testing.assert_allclose(got, want, rtol=2e-6)


def test_log_rho_expanded_square_matches_direct_sum(rng):
  x = tf.constant(rng.normal(size=(7, 3)))
  q = random_posterior(rng, 4, 3)
  a, b, m, lam = (q.precision_concentration, q.precision_rate, q.mean_loc,
                  q.mean_precision)
  direct = (weight_priors.expected_log_weights(q.weight_concentration)
            + tf.reduce_sum(0.5 * (tf.math.digamma(a) - tf.math.log(b)
                                   - np.log(2 * np.pi))
                            - 0.5 * (a / b) * (tf.square(x[:, None] - m)
                                               + 1.0 / lam), -1))
  np.testing.assert_allclose(_independent.log_rho(x, q), direct, rtol=1e-12)
  log_weights = tf.constant(np.log([0.5, 0.25, 0.125, 0.125]))
  np.testing.assert_allclose(
      _independent.log_rho(x, q, log_weights),
      direct - weight_priors.expected_log_weights(q.weight_concentration)
      + log_weights, rtol=1e-12)


def test_chunked_e_step_matches_one_pass(rng):
  x = tf.constant(rng.normal(size=(500, 3)))
  q = random_posterior(rng, 4, 3)
  stats, total = _independent.FAMILY.statistics_and_log_likelihood(x, q, chunk=77)
  lr = _independent.log_rho(x, q)
  for got, want in zip(stats, e_step(x, q)):
    np.testing.assert_allclose(got, want, rtol=1e-10)
  np.testing.assert_allclose(total, tf.reduce_sum(tf.reduce_logsumexp(lr, -1)),
                             rtol=1e-12)


# --------------------------------------------------------------------- KL


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_kl_matches_tfp_and_vanishes_at_the_prior(rng, dtype):
  k, d = 3, 2
  q = random_posterior(rng, k, d, dtype)
  prior = make_prior(d, dtype, alpha0=0.7, m0=0.3, lambda0=2.0, a0=1.5,
                     b0=0.8)
  normal = tfd.kl_divergence(
      tfd.Normal(q.mean_loc, tf.math.rsqrt(q.mean_precision)),
      tfd.Normal(prior.mean_loc, tf.math.rsqrt(prior.mean_precision)))
  gamma = tfd.kl_divergence(
      tfd.Gamma(q.precision_concentration, q.precision_rate),
      tfd.Gamma(prior.precision_concentration, prior.precision_rate))
  dirichlet = tfd.kl_divergence(
      tfd.Dirichlet(q.weight_concentration),
      tfd.Dirichlet(tf.fill([k], prior.weight_concentration)))
  rtol = 1e-10 if dtype == tf.float64 else 1e-4
  np.testing.assert_allclose(
      _independent.normal_kl(q.mean_loc, q.mean_precision, prior.mean_loc,
                             prior.mean_precision), normal, rtol=rtol)
  np.testing.assert_allclose(_independent.mean_and_precision_kl(q, prior),
                             normal + gamma, rtol=rtol)
  total = _independent.kl_divergence(q, prior)
  assert total.dtype == dtype
  np.testing.assert_allclose(
      total, dirichlet + tf.reduce_sum(normal) + tf.reduce_sum(gamma),
      rtol=rtol)
  at_prior = diag.Posterior(
      tf.fill([k], prior.weight_concentration),
      tf.broadcast_to(prior.mean_loc, [k, d]),
      tf.fill([k, d], prior.mean_precision),
      tf.fill([k, d], prior.precision_concentration),
      tf.broadcast_to(prior.precision_rate, [k, d]))
  np.testing.assert_allclose(_independent.kl_divergence(at_prior, prior), 0.0,
                             atol=1e-12)
  np.testing.assert_allclose(
      _independent.kl_divergence(q, prior, "dirichlet_process"),
      weight_priors.weights_kl(q.weight_concentration, prior.weight_concentration,
                       "dirichlet_process")
      + tf.reduce_sum(normal) + tf.reduce_sum(gamma), rtol=rtol)


# ------------------------------------------------------------- predictive


def exact_predictive_log_prob(x, loc, precision, a, b):
  """log integral N(x | loc, 1/tau + 1/lambda) Gamma(tau | a, b) dtau, by
  the trapezoid rule in u = log(b tau) (spectrally accurate: the integrand
  is smooth and decays at both ends)."""
  u = np.linspace(np.log(a) - 40.0, np.log(a) + 8.0, 4000)
  t = np.exp(u)                                                   # b tau
  log_weight = a * u - t - scipy.special.gammaln(a)               # dt = t du
  variance = b / t + 1.0 / precision
  log_normal = (-0.5 * np.log(2 * np.pi * variance)
                - 0.5 * (np.asarray(x)[:, None] - loc)**2 / variance)
  return (scipy.special.logsumexp(log_weight + log_normal, axis=1)
          + np.log(u[1] - u[0]))


def approx_log_prob(x, loc, precision, a, b):
  """The approximate predictive of one component in one feature, via tfgmm."""
  q = diag.Posterior(*[tf.constant(v, tf.float64) for v in
                        ([1.0], [[loc]], [[precision]], [[a]], [[b]])])
  return _independent.predictive_component_log_prob(
      tf.constant(np.asarray(x)[:, None], tf.float64), q).numpy()[:, 0]


def test_predictive_approximation_error_against_monte_carlo():
  """The blog prior's predictive (an empty component: a = b = 5, lambda = 1).

  Measured: max |log p_approx - log p| = 0.237 nats within 3 predictive
  standard deviations (0.059 within 1, 0.107 within 2, 1.36 at 5), and
  KL(exact || approx) = 2.45e-3 nats.
  """
  loc, precision, a, b = 0.0, 1.0, 5.0, 5.0
  sd = np.sqrt(b / (a - 1) + 1 / precision)
  x = np.linspace(-3 * sd, 3 * sd, 61)
  # Monte Carlo: the average over (mu, tau) ~ q of N(x | mu, 1/tau), which
  # checks the quadrature reference to within its standard error.
  rng = np.random.default_rng(7)
  s = 100_000
  mu = rng.normal(loc, 1 / np.sqrt(precision), s)
  tau = rng.gamma(a, 1 / b, s)
  density = np.sqrt(tau / (2 * np.pi)) * np.exp(
      -0.5 * tau * (x[:, None] - mu)**2)                          # [X, S]
  monte_carlo = np.log(density.mean(1))
  standard_error = density.std(1) / density.mean(1) / np.sqrt(s)
  exact = exact_predictive_log_prob(x, loc, precision, a, b)
  assert np.all(np.abs(monte_carlo - exact) < 5 * standard_error + 1e-4)
  error = np.abs(approx_log_prob(x, loc, precision, a, b) - exact)
  assert error.max() < 0.25, error.max()
  assert error[np.abs(x) <= sd].max() < 0.065, error
  # KL(exact || approx) over the whole line.
  wide = np.linspace(-60 * sd, 60 * sd, 2001)
  log_p = exact_predictive_log_prob(wide, loc, precision, a, b)
  p = np.exp(log_p)
  assert abs(p.sum() * (wide[1] - wide[0]) - 1.0) < 1e-6
  kl = np.sum(p * (log_p - approx_log_prob(wide, loc, precision, a, b))) * (
      wide[1] - wide[0])
  assert 0.0 < kl < 3e-3, kl


def test_predictive_approximation_converges_to_the_exact():
  """Exact as lambda -> infinity; error falls with the count and with a."""
  x_unit = np.linspace(-5.0, 5.0, 201)
  # lambda -> infinity: the exact predictive is StudentT(2a, m, sqrt(b / a)).
  np.testing.assert_allclose(
      approx_log_prob(x_unit, 0.3, 1e12, 5.0, 2.0),
      scipy.stats.t.logpdf(x_unit, 10.0, 0.3, np.sqrt(2.0 / 5.0)), rtol=1e-9)

  def max_error(precision, a, b):
    sd = np.sqrt(b / (a - 1) + 1 / precision)
    x = sd * x_unit
    return np.abs(approx_log_prob(x, 0.0, precision, a, b)
                  - exact_predictive_log_prob(x, 0.0, precision, a, b)).max()

  # A component holding n unit-variance points under the blog prior:
  # a = 5 + n / 2, b = 5 + n / 2, lambda = 1 + n E[tau].
  # Measured over 5 sd: 1.36, 0.80, 0.20, 0.014, 2.3e-4.
  by_count = [max_error(1.0 + n, 5.0 + n / 2, 5.0 + n / 2)
              for n in (0, 1, 10, 100, 1000)]
  assert np.all(np.diff(by_count) < 0), by_count
  assert by_count[3] < 0.02 and by_count[4] < 5e-4, by_count
  # Fixed lambda = 1, a = b growing. Measured: 1.36, 0.72, 0.088.
  by_shape = [max_error(1.0, a, a) for a in (5.0, 50.0, 500.0)]
  assert np.all(np.diff(by_shape) < 0), by_shape
  assert by_shape[-1] < 0.1, by_shape


def test_predictive_variance_is_exact_and_mixture_assembled(rng):
  q = random_posterior(rng, 3, 2)
  a, b, lam = (q.precision_concentration.numpy(), q.precision_rate.numpy(),
               q.mean_precision.numpy())
  df = _independent.student_t_df(q).numpy()
  scale = _independent.student_t_scale(q).numpy()
  np.testing.assert_allclose(scale**2 * df / (df - 2), b / (a - 1) + 1 / lam,
                             rtol=1e-12)
  x = rng.normal(0, 3, (5, 2))
  weights = (q.weight_concentration / tf.reduce_sum(q.weight_concentration))
  want = scipy.special.logsumexp(
      np.log(weights.numpy()) + scipy.stats.t.logpdf(
          x[:, None, :], df, q.mean_loc.numpy(), scale).sum(-1), axis=1)
  np.testing.assert_allclose(
      _independent.FAMILY.predictive_log_prob(tf.constant(x), q), want, rtol=1e-10)
  # a <= 1: infinite variance; the scale falls back to sqrt(b / a).
  heavy = q._replace(precision_concentration=tf.fill([3, 2],
                                                     tf.constant(0.5,
                                                                 tf.float64)))
  np.testing.assert_allclose(_independent.student_t_scale(heavy),
                             np.sqrt(b / 0.5), rtol=1e-12)


def test_predictive_samples_have_the_exact_predictive_moments(rng):
  q = random_posterior(rng, 2, 2, a_low=3.0)
  n = 300_000
  draws = _independent.sample_predictive(
      tf.constant(n), tf.constant([3, 4], tf.int64), q).numpy()
  assert draws.shape == (n, 2)
  w = (q.weight_concentration / tf.reduce_sum(q.weight_concentration)).numpy()
  m = q.mean_loc.numpy()
  variance = (q.precision_rate / (q.precision_concentration - 1)
              + 1 / q.mean_precision).numpy()
  mean = w @ m
  second = w @ (variance + m**2)
  np.testing.assert_allclose(draws.mean(0), mean, atol=0.03)
  np.testing.assert_allclose((draws**2).mean(0), second, rtol=0.03)


def test_sampled_estimator_averages_above_analytic_bound(rng):
  """Jensen: E_q[log p(x | theta)] >= logsumexp_k log_rho[k]."""
  q = random_posterior(rng, 3, 2)
  x = tf.constant(rng.normal(0, 2, (20, 2)))
  s = 2000
  # One call on S copies of x: every row gets its own draw.
  draws = tf.reshape(_independent.sampled_log_likelihood(
      tf.tile(x, [s, 1]), q, tf.constant([1, 0])), [s, -1])      # [S, B]
  mean = tf.reduce_mean(draws, 0).numpy()
  error = (tf.math.reduce_std(draws, 0) / np.sqrt(s)).numpy()
  analytic = tf.reduce_logsumexp(_independent.log_rho(x, q), -1).numpy()
  assert np.all(mean >= analytic - 4 * error)
  assert np.mean(mean - analytic) > 0


def test_sampled_estimator_matches_monte_carlo_of_the_likelihood(rng):
  """One draw per row is an unbiased estimate of E_q[log p(x | theta)]."""
  q = random_posterior(rng, 2, 2)
  x = rng.normal(0, 2, (3, 2))
  s = 40_000
  pi = tfd.Dirichlet(q.weight_concentration).sample(s, seed=(1, 2)).numpy()
  tau = tfd.Gamma(q.precision_concentration, q.precision_rate).sample(
      s, seed=(3, 4)).numpy()                                     # [S, K, D]
  mu = tfd.Normal(q.mean_loc, tf.math.rsqrt(q.mean_precision)).sample(
      s, seed=(5, 6)).numpy()
  for row in x:
    per_draw = scipy.special.logsumexp(
        np.log(pi) + scipy.stats.norm.logpdf(row, mu, 1 / np.sqrt(tau)).sum(-1),
        axis=-1)                                                  # [S]
    draws = _independent.sampled_log_likelihood(
        tf.constant(np.repeat(row[None], s, 0)), q, tf.constant([9, 9])).numpy()
    error = np.hypot(per_draw.std(), draws.std()) / np.sqrt(s)
    assert abs(draws.mean() - per_draw.mean()) < 5 * error


# ----------------------------------------------------------------- restarts


def test_restarts_equal_separate_runs(rng):
  d, k, restarts = 2, 3, 3
  x = tf.constant(mixture_data(rng, 300, d))
  prior = make_prior(d)
  starts = [initial_posterior(x, rng, k, prior) for _ in range(restarts)]
  stacked = diag.Posterior(*[tf.stack(t) for t in zip(*starts)])
  q_all, history_all, _ = _independent.FAMILY.cavi(
      x, stacked, prior, tf.constant(15), tf.constant(0.0, tf.float64), 64)
  assert history_all.shape == (15, 2, restarts)
  for r, start in enumerate(starts):
    q, history, _ = _independent.FAMILY.cavi(x, start, prior, tf.constant(15),
                                      tf.constant(0.0, tf.float64), 64)
    np.testing.assert_allclose(history_all[..., r], history, rtol=1e-12)
    for got, want in zip(q_all, q):
      np.testing.assert_allclose(got[r], want, rtol=1e-10)
    for fn in (_independent.log_rho, _independent.FAMILY.predictive_log_prob,
               _independent.predictive_component_log_prob):
      np.testing.assert_allclose(fn(x[:20], q_all)[r], fn(x[:20], q),
                                 rtol=1e-12)
    np.testing.assert_allclose(
        _independent.kl_divergence(q_all, prior)[r],
        _independent.kl_divergence(q, prior), rtol=1e-12)
  assert _independent.sampled_log_likelihood(
      x[:20], q_all, tf.constant([1, 2])).shape == (restarts, 20)
  assert _independent.sample_predictive(
      tf.constant(7), tf.constant([1, 2]), q_all).shape == (restarts, 7, d)
  one = diag.Posterior(*[t[:1] for t in q_all])
  single = diag.Posterior(*[t[0] for t in q_all])
  np.testing.assert_allclose(
      _independent.sample_predictive(tf.constant(7), tf.constant([1, 2]),
                                     one)[0],
      _independent.sample_predictive(tf.constant(7), tf.constant([1, 2]),
                                     single))


# --------------------------------------------------------------- gradients


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_gradients_in_log_space_are_finite(rng, dtype):
  d, k = 2, 3
  x = tf.constant(mixture_data(rng, 64, d), dtype)
  prior = make_prior(d, dtype)
  q = random_posterior(rng, k, d, dtype)
  raw = {
      "log_weight_concentration": tf.Variable(tf.math.log(
          q.weight_concentration)),
      "mean_loc": tf.Variable(q.mean_loc),
      "log_mean_precision": tf.Variable(tf.math.log(q.mean_precision)),
      "log_precision_concentration": tf.Variable(tf.math.log(
          q.precision_concentration)),
      "log_precision_rate": tf.Variable(tf.math.log(q.precision_rate)),
  }

  def posterior():
    return diag.Posterior(tf.exp(raw["log_weight_concentration"]),
                           raw["mean_loc"], tf.exp(raw["log_mean_precision"]),
                           tf.exp(raw["log_precision_concentration"]),
                           tf.exp(raw["log_precision_rate"]))

  n_total = 1000.0
  for name in ("analytic", "sampled", "sampled_sticks"):
    weight_prior = ("dirichlet_process" if name == "sampled_sticks"
                    else "dirichlet")
    with tf.GradientTape() as tape:
      q = posterior()
      if name == "analytic":
        ll = tf.reduce_logsumexp(_independent.log_rho(x, q), -1)
      else:
        ll = _independent.sampled_log_likelihood(
            x, q, tf.constant([5, 6]), prior.weight_concentration,
            weight_prior)
      loss = (_independent.kl_divergence(q, prior, weight_prior) / n_total
              - tf.reduce_mean(ll))
    grads = tape.gradient(loss, list(raw.values()))
    for key, grad in zip(raw, grads):
      assert grad is not None, (name, key)
      assert grad.dtype == dtype
      assert np.all(np.isfinite(grad.numpy())), (name, key)
      assert np.any(grad.numpy() != 0), (name, key)


# ------------------------------------------------- dtypes, tracing, export


def test_float32_tracks_float64(rng):
  d, k = 3, 4
  x64 = tf.constant(mixture_data(rng, 100, d) / 4.0)
  q64 = random_posterior(rng, k, d)
  prior64 = make_prior(d)
  x32, q32 = tf.cast(x64, tf.float32), diag.cast_posterior(q64, tf.float32)
  prior32 = diag.cast_posterior(prior64, tf.float32)
  q32_64 = diag.cast_posterior(q32, tf.float64)   # same values, float64 math
  x32_64 = tf.cast(x32, tf.float64)
  for fn in (_independent.log_rho, _independent.FAMILY.predictive_log_prob):
    got = fn(x32, q32)
    assert got.dtype == tf.float32
    np.testing.assert_allclose(got, fn(x32_64, q32_64), rtol=1e-5, atol=1e-4)
  updated = _independent.natural_update(q32, e_step(x32, q32), prior32, 3.0,
                                        0.5)
  want = _independent.natural_update(q32_64, e_step(x32_64, q32_64), prior64,
                                     3.0, 0.5)
  for got, expected in zip(updated, want):
    assert got.dtype == tf.float32
    np.testing.assert_allclose(got, expected, rtol=1e-4)
  assert _independent.sample_predictive(
      tf.constant(5), tf.constant([1, 2]), q32).dtype == tf.float32
  assert _independent.sampled_log_likelihood(
      x32, q32, tf.constant([1, 2])).dtype == tf.float32


def test_shape_free_traces_run_restarts(rng):
  """Traced once with every dimension unknown, as the model compiles them."""
  x_spec, q_spec, prior_spec = loops.shape_free_signature(
      _independent.FAMILY, tf.float64, batched=True)
  int_spec = tf.TensorSpec([], tf.int32)
  cavi = tf.function(_independent.FAMILY.cavi, autograph=False, input_signature=(
      x_spec, q_spec, prior_spec, int_spec, tf.TensorSpec([], tf.float64),
      int_spec))
  predict = tf.function(_independent.FAMILY.predictive_log_prob, autograph=False,
                        input_signature=(x_spec, q_spec))
  sample = tf.function(_independent.sample_predictive, autograph=False,
                       input_signature=(int_spec, tf.TensorSpec([2], tf.int32),
                                        q_spec))
  x = tf.constant(mixture_data(rng, 120, 2))
  prior = make_prior(2)
  q0 = diag.Posterior(*[tf.stack([t, t + 0.1]) for t in
                         initial_posterior(x, rng, 3, prior)])
  q, history, _ = cavi(x, q0, prior, tf.constant(5), tf.constant(0.0,
                                                                  tf.float64),
                       tf.constant(50))
  eager, eager_history, _ = _independent.FAMILY.cavi(
      x, q0, prior, tf.constant(5), tf.constant(0.0, tf.float64), 50)
  np.testing.assert_allclose(history, eager_history, rtol=1e-12)
  np.testing.assert_allclose(predict(x, q), _independent.FAMILY.predictive_log_prob(
      x, eager), rtol=1e-10)
  assert sample(tf.constant(4), tf.constant([1, 2]), q).shape == (2, 4, 2)


def test_module_does_not_import_tfp_at_module_level():
  """Exported graphs must load with plain TensorFlow: TFP only in functions."""
  import ast  # pylint: disable=import-outside-toplevel
  with open(_independent.__file__, encoding="utf-8") as f:
    tree = ast.parse(f.read())
  imports = [node for node in tree.body
             if isinstance(node, (ast.Import, ast.ImportFrom))]
  names = [alias.name if isinstance(node, ast.Import) else node.module
           for node in imports for alias in node.names]
  assert names and not any("tensorflow_probability" in n for n in names), names
