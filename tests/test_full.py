"""The full-covariance math against scikit-learn, scipy, TFP, Monte Carlo and
the diagonal model."""

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.special
import scipy.stats
import tensorflow as tf
import tensorflow_probability as tfp
from sklearn.mixture import BayesianGaussianMixture

from tfgmm.families import full as _full
from tfgmm._engine import weight_priors
from tfgmm.families import diag

tfd = tfp.distributions


def random_tril(rng, shape, d, low=0.5, high=2.0):
  """Lower-triangular [*shape, d, d] with a positive diagonal."""
  tril = np.tril(rng.normal(0, 0.5, tuple(shape) + (d, d)), -1)
  return tril + np.eye(d) * rng.uniform(low, high, tuple(shape) + (d, 1))


def make_prior(d, dtype=tf.float64, alpha0=0.5, beta0=0.7, nu0=None, seed=7):
  rng = np.random.default_rng(seed)
  nu0 = d + 1.5 if nu0 is None else nu0
  return _full.FullPosterior(
      tf.constant(alpha0, dtype), tf.constant(rng.normal(0, 0.3, d), dtype),
      tf.constant(beta0, dtype), tf.constant(nu0, dtype),
      tf.constant(random_tril(rng, [], d), dtype))


def random_posterior(rng, k, d, dtype=tf.float64, lead=()):
  """A q whose components have covariances W^-1 / nu of order one."""
  shape = tuple(lead) + (k,)
  dof = rng.uniform(d + 3.0, d + 15.0, shape)
  return _full.FullPosterior(
      tf.constant(rng.uniform(1.0, 20.0, shape), dtype),
      tf.constant(rng.normal(0, 2, shape + (d,)), dtype),
      tf.constant(rng.uniform(0.5, 30.0, shape), dtype),
      tf.constant(dof, dtype),
      tf.constant(np.sqrt(dof)[..., None, None] * random_tril(rng, shape, d),
                  dtype))


def mixture_data(rng, n, d, k=3, spread=4.0):
  means = rng.normal(0, spread, (k, d))
  labels = rng.integers(k, size=n)
  mixing = random_tril(rng, [k], d)[labels]                       # [N, D, D]
  return means[labels] + np.einsum("nij,nj->ni", mixing,
                                   rng.normal(size=(n, d)))


# As the model runs it (a graph); eager while_loops cost 4x the time here.
run_cavi = tf.function(_full.FAMILY.cavi, autograph=False, reduce_retracing=True)


def initial_posterior(x, resp, prior):
  return _full.posterior_from_statistics(
      _full.sufficient_statistics(x, tf.constant(resp, x.dtype)), prior)


def cavi_step(x, q, prior):
  resp = tf.nn.softmax(_full.log_rho(x, q), -1)
  return _full.natural_update(q, _full.sufficient_statistics(x, resp), prior)


def covariance(q):
  """W^-1 = L L^T, [..., K, D, D] (numpy)."""
  tril = np.asarray(q.scale_tril)
  return tril @ np.swapaxes(tril, -1, -2)


def wishart(q):
  """q(Lambda) as a TFP Wishart over Cholesky factors: TFP's scale is W."""
  scale = np.linalg.inv(covariance(q))
  return tfd.WishartTriL(q.dof, scale_tril=np.linalg.cholesky(scale),
                         input_output_cholesky=True)


def normal_log_prob(value, loc, precision_tril):
  """log Normal(value | loc, (C C^T)^-1) for precision Cholesky C."""
  d = value.shape[-1]
  whitened = tf.linalg.matvec(precision_tril, value - loc, adjoint_a=True)
  return (tf.reduce_sum(tf.math.log(tf.linalg.diag_part(precision_tril)), -1)
          - 0.5 * d * np.log(2 * np.pi)
          - 0.5 * tf.reduce_sum(tf.square(whitened), -1))


def draw_means(q, precision_tril, seed):
  """mu ~ Normal(m, (beta Lambda)^-1) given cholesky(Lambda), [S, K, D]."""
  noise = tf.random.stateless_normal(precision_tril.shape[:-1], seed,
                                     dtype=precision_tril.dtype)
  offset = tf.linalg.triangular_solve(precision_tril, noise[..., None],
                                      adjoint=True)[..., 0]
  return q.mean_loc + offset / tf.sqrt(q.mean_precision)[:, None]


# ----------------------------------------------------- CAVI vs scikit-learn


def test_cavi_matches_sklearn_full_bayesian_gmm(rng):
  """Same prior, same initial responsibilities: the same q at every step."""
  d, k = 3, 4
  x = mixture_data(rng, 400, d)
  prior = make_prior(d)
  resp0 = rng.dirichlet(np.ones(k), size=x.shape[0])
  reference = BayesianGaussianMixture(
      n_components=k, covariance_type="full",
      weight_concentration_prior_type="dirichlet_distribution",
      weight_concentration_prior=float(prior.weight_concentration),
      mean_precision_prior=float(prior.mean_precision),
      mean_prior=prior.mean_loc.numpy(),
      degrees_of_freedom_prior=float(prior.dof),
      covariance_prior=covariance(prior), reg_covar=0.0)
  reference._check_parameters(x)  # pylint: disable=protected-access
  reference._initialize(x, resp0)  # pylint: disable=protected-access
  xt = tf.constant(x)
  q = initial_posterior(xt, resp0, prior)
  for iteration in range(8):
    message = f"iteration {iteration}"
    np.testing.assert_allclose(q.weight_concentration,
                               reference.weight_concentration_, rtol=1e-10,
                               err_msg=message)
    np.testing.assert_allclose(q.mean_precision, reference.mean_precision_,
                               rtol=1e-10, err_msg=message)
    np.testing.assert_allclose(q.mean_loc, reference.means_, rtol=1e-10,
                               atol=1e-12, err_msg=message)
    np.testing.assert_allclose(q.dof, reference.degrees_of_freedom_,
                               rtol=1e-10, err_msg=message)
    dof = reference.degrees_of_freedom_[:, None, None]
    np.testing.assert_allclose(covariance(q), reference.covariances_ * dof,
                               rtol=1e-10, atol=1e-10, err_msg=message)
    # Its precision factor is upper triangular U with U U^T = nu W.
    np.testing.assert_allclose(
        q.scale_tril, np.sqrt(dof) * np.linalg.cholesky(reference.covariances_),
        rtol=1e-10, atol=1e-12, err_msg=message)
    # pylint: disable-next=protected-access
    want = reference._estimate_weighted_log_prob(x)
    np.testing.assert_allclose(_full.log_rho(xt, q), want, rtol=1e-10,
                               err_msg=message)
    _, log_resp = reference._e_step(x)  # pylint: disable=protected-access
    reference._m_step(x, log_resp)  # pylint: disable=protected-access
    q = cavi_step(xt, q, prior)


@pytest.mark.parametrize("d", [2, 5])
@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_cavi_bound_never_decreases(rng, d, dtype):
  x = mixture_data(rng, 500, d, k=4)
  x = (x - x.mean(0)) / x.std(0)
  prior = make_prior(d, dtype)
  xt = tf.constant(x, dtype)
  q0 = initial_posterior(xt, rng.dirichlet(np.ones(5), size=500), prior)
  q, history, _ = run_cavi(xt, q0, prior, tf.constant(40),
                             tf.constant(0.0, tf.float64), chunk=128)
  assert q.scale_tril.dtype == dtype
  bound = (history[:, 0] - history[:, 1]).numpy()
  assert bound.shape == (40,)
  # float32 E-steps round log_rho to ~1e-7 relative: a few 1e-6 nats.
  slack = 1e-10 if dtype == tf.float64 else 2e-5
  assert np.all(np.diff(bound) >= -slack), np.diff(bound).min()
  assert bound[-1] > bound[0] + 0.01


def test_dirichlet_process_cavi_bound_never_decreases(rng):
  d, k = 3, 6
  x = tf.constant(mixture_data(rng, 400, d))
  prior = make_prior(d)
  q0 = _full.posterior_from_statistics(
      _full.sufficient_statistics(
          x, tf.constant(rng.dirichlet(np.ones(k), size=400))),
      prior, weight_prior="dirichlet_process")
  _, history, _ = run_cavi(x, q0, prior, tf.constant(30),
                             tf.constant(0.0, tf.float64), 128,
                             weight_prior="dirichlet_process")
  bound = (history[:, 0] - history[:, 1]).numpy()
  assert np.all(np.diff(bound) >= -1e-10), np.diff(bound).min()
  assert bound[-1] > bound[0] + 0.01


def test_sample_weights_count_as_repeated_rows(rng):
  d = 2
  x = mixture_data(rng, 150, d)
  counts = rng.integers(0, 4, 150)
  prior = make_prior(d)
  resp = rng.dirichlet(np.ones(3), size=150)
  q0 = initial_posterior(tf.constant(x), resp, prior)
  args = (prior, tf.constant(6), tf.constant(0.0, tf.float64), 32)
  weighted, weighted_history, _ = run_cavi(
      tf.constant(x), q0, *args, sample_weight=tf.constant(counts, tf.float64))
  repeated, repeated_history, _ = run_cavi(
      tf.constant(np.repeat(x, counts, 0)), q0, *args)
  np.testing.assert_allclose(weighted_history, repeated_history, rtol=1e-10)
  for got, want in zip(weighted, repeated):
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_float32_cavi_tracks_float64(rng):
  x = mixture_data(rng, 2000, 3)
  x = (x - x.mean(0)) / x.std(0)
  resp0 = rng.dirichlet(np.ones(3), size=2000)
  results = {}
  for dtype in (tf.float32, tf.float64):
    prior = make_prior(3, dtype)
    q0 = initial_posterior(tf.constant(x, dtype), resp0, prior)
    results[dtype], _, _ = run_cavi(tf.constant(x, dtype), q0, prior,
                                      tf.constant(10),
                                      tf.constant(0.0, tf.float64), chunk=512)
  for a, b in zip(results[tf.float32], results[tf.float64]):
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3)


# ------------------------------------------------------------- the E-step


def test_log_rho_matches_direct_formula(rng):
  d, k = 3, 4
  x = rng.normal(size=(7, d))
  q = random_posterior(rng, k, d)
  precision = q.dof.numpy()[:, None, None] * np.linalg.inv(covariance(q))
  diff = x[:, None, :] - q.mean_loc.numpy()                       # [B, K, D]
  quad = np.einsum("bki,kij,bkj->bk", diff, precision, diff)
  nu = q.dof.numpy()
  log_det = (sum(scipy.special.digamma((nu + 1 - i) / 2)
                 for i in range(1, d + 1))
             + d * np.log(2) - np.linalg.slogdet(covariance(q))[1])
  alpha = q.weight_concentration.numpy()
  direct = (scipy.special.digamma(alpha) - scipy.special.digamma(alpha.sum())
            + 0.5 * log_det - 0.5 * d * np.log(2 * np.pi)
            - 0.5 * d / q.mean_precision.numpy() - 0.5 * quad)
  np.testing.assert_allclose(_full.log_rho(tf.constant(x), q), direct,
                             rtol=1e-12)
  log_weights = tf.constant(rng.normal(size=k))
  np.testing.assert_allclose(
      _full.log_rho(tf.constant(x), q, log_weights),
      direct - (scipy.special.digamma(alpha)
                - scipy.special.digamma(alpha.sum())) + log_weights.numpy(),
      rtol=1e-12)


def test_sufficient_statistics_with_sample_weights(rng):
  x = rng.normal(size=(30, 3))
  resp = rng.dirichlet(np.ones(4), size=30)
  w = rng.uniform(0, 2, 30)
  stats = _full.sufficient_statistics(tf.constant(x), tf.constant(resp),
                                      tf.constant(w))
  wr = w[:, None] * resp
  np.testing.assert_allclose(stats.counts, wr.sum(0))
  np.testing.assert_allclose(stats.sum_x, wr.T @ x)
  np.testing.assert_allclose(stats.sum_xx,
                             np.einsum("nk,ni,nj->kij", wr, x, x))
  single = _full.sufficient_statistics(tf.constant(x, tf.float32),
                                       tf.constant(resp, tf.float32))
  assert all(t.dtype == tf.float64 for t in single)
  np.testing.assert_allclose(single.sum_xx,
                             np.einsum("nk,ni,nj->kij", resp, x, x), rtol=1e-5)


def test_chunked_e_step_matches_one_pass(rng):
  x = tf.constant(rng.normal(size=(1000, 3)))
  q = random_posterior(rng, 4, 3)
  log_weights = tf.constant(rng.normal(size=4))
  stats, total = _full.FAMILY.statistics_and_log_likelihood(x, q, 77, log_weights)
  lr = _full.log_rho(x, q, log_weights)
  direct = _full.sufficient_statistics(x, tf.nn.softmax(lr, -1))
  for got, want in zip(stats, direct):
    np.testing.assert_allclose(got, want, rtol=1e-10)
  np.testing.assert_allclose(total, tf.reduce_sum(tf.reduce_logsumexp(lr, -1)),
                             rtol=1e-12)


def test_cavi_traces_once_with_unknown_shapes(rng):
  """The model compiles `cavi` with every dimension unknown."""
  dtype = tf.float32
  vector, matrix = tf.TensorSpec([None, None], dtype), tf.TensorSpec(
      [None, None, None], dtype)
  q_spec = _full.FullPosterior(vector, matrix, vector, vector,
                               tf.TensorSpec([None] * 4, dtype))
  prior_spec = _full.FullPosterior(
      tf.TensorSpec([], dtype), tf.TensorSpec([None], dtype),
      tf.TensorSpec([], dtype), tf.TensorSpec([], dtype),
      tf.TensorSpec([None, None], dtype))
  compiled = tf.function(_full.FAMILY.cavi, autograph=False, input_signature=(
      tf.TensorSpec([None, None], dtype), q_spec, prior_spec,
      tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.float64),
      tf.TensorSpec([], tf.int32)))
  for d in (2, 3):
    x = tf.constant(mixture_data(rng, 200, d), dtype)
    prior = make_prior(d, dtype)
    q0 = _full.FullPosterior(*[t[None] for t in initial_posterior(
        x, rng.dirichlet(np.ones(3), size=200), prior)])
    q, history, _ = compiled(x, q0, prior, tf.constant(5), tf.constant(
        0.0, tf.float64), tf.constant(64))
    eager, _, _ = _full.FAMILY.cavi(x, q0, prior, tf.constant(5),
                             tf.constant(0.0, tf.float64), 64)
    assert history.shape == (5, 2, 1)
    np.testing.assert_allclose(q.scale_tril, eager.scale_tril, rtol=1e-5)
  # pylint: disable-next=protected-access
  assert len(compiled._list_all_concrete_functions()) == 1


# --------------------------------------------------------- the global step


def bishop_global_step(x, resp, prior):
  """Bishop 10.58, 10.60-10.63 in numpy, in the centred (scatter) form."""
  p = [np.asarray(t) for t in prior]
  alpha0, m0, beta0, nu0, tril0 = p
  counts = resp.sum(0)                                            # [K]
  means = resp.T @ x / counts[:, None]                            # [K, D]
  centred = x[:, None, :] - means                                 # [N, K, D]
  scatter = np.einsum("nk,nki,nkj->kij", resp, centred, centred)
  beta = beta0 + counts
  offset = means - m0
  cov = (tril0 @ tril0.T + scatter
         + (beta0 * counts / beta)[:, None, None]
         * np.einsum("ki,kj->kij", offset, offset))
  return (alpha0 + counts, (beta0 * m0 + counts[:, None] * means)
          / beta[:, None], beta, nu0 + counts, np.linalg.cholesky(cov))


def test_full_batch_natural_step_is_the_cavi_step(rng):
  x = rng.normal(size=(300, 3)) * [1.0, 3.0, 0.5] + [5.0, -2.0, 0.0]
  q = random_posterior(rng, 4, 3)
  prior = make_prior(3)
  resp = tf.nn.softmax(_full.log_rho(tf.constant(x), q), -1)
  stats = _full.sufficient_statistics(tf.constant(x), resp)
  want = bishop_global_step(x, resp.numpy(), prior)
  for got in (_full.natural_update(q, stats, prior),
              _full.posterior_from_statistics(stats, prior)):
    for a, b in zip(got, want):
      np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def natural_parameters(q):
  beta = np.asarray(q.mean_precision)
  m = np.asarray(q.mean_loc)
  return [np.asarray(q.weight_concentration), beta, beta[:, None] * m,
          np.asarray(q.dof),
          covariance(q) + beta[:, None, None] * np.einsum("ki,kj->kij", m, m)]


def test_natural_step_interpolates_natural_parameters(rng):
  q = random_posterior(rng, 3, 2)
  prior = make_prior(2)
  x = tf.constant(rng.normal(size=(50, 2)))
  stats = _full.sufficient_statistics(
      x, tf.nn.softmax(_full.log_rho(x, q), -1))
  target = natural_parameters(_full.posterior_from_statistics(stats, prior,
                                                              4.0))
  half = natural_parameters(_full.natural_update(q, stats, prior, 4.0, 0.25))
  for got, old, new in zip(half, natural_parameters(q), target):
    np.testing.assert_allclose(got, 0.75 * old + 0.25 * new, rtol=1e-10)


def test_minibatch_natural_targets_average_to_the_full_batch_target(rng):
  x = tf.constant(rng.normal(size=(600, 2)))
  q = random_posterior(rng, 3, 2)
  prior = make_prior(2)
  resp = tf.nn.softmax(_full.log_rho(x, q), -1)
  full = natural_parameters(_full.posterior_from_statistics(
      _full.sufficient_statistics(x, resp), prior))
  parts = [natural_parameters(_full.posterior_from_statistics(
      _full.sufficient_statistics(x[i:i + 200], resp[i:i + 200]), prior, 3.0))
           for i in range(0, 600, 200)]
  for j, want in enumerate(full):
    np.testing.assert_allclose(np.mean([p[j] for p in parts], 0), want,
                               rtol=1e-10)


def test_statistics_from_posterior_inverts_the_global_step(rng):
  x = tf.constant(mixture_data(rng, 200, 3))
  prior = make_prior(3)
  stats = _full.sufficient_statistics(
      x, tf.constant(rng.dirichlet(np.ones(4), size=200)))
  q = _full.posterior_from_statistics(stats, prior)
  recovered = _full.statistics_from_posterior(q, prior)
  for got, want in zip(recovered, stats):
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
  for got, want in zip(_full.posterior_from_statistics(recovered, prior), q):
    np.testing.assert_allclose(got, want, rtol=1e-10)
  # Rescaling: q's data counted twice is the posterior of the doubled data.
  doubled = _full.posterior_from_statistics(
      _full.FullStatistics(*[2 * t for t in stats]), prior)
  for got, want in zip(_full.posterior_from_statistics(recovered, prior, 2.0),
                       doubled):
    np.testing.assert_allclose(got, want, rtol=1e-10)


@pytest.mark.parametrize("tight", [False, True])
def test_float32_natural_update_on_large_standardised_data(rng, tight):
  """N = 1e5 float32 rows: SVI and CAVI steps stay finite and near float64.

  With `tight`, a tenth of the rows is a cluster at 30 standard deviations
  with spread 1e-3 (mean^2 / variance ~ 1e9), owned by one component: raw
  float32 sums of x x^T would lose its scatter entirely (W^-1 indefinite).
  """
  n, d, k = 100_000, 5, 6
  x = mixture_data(rng, n, d, k=k)
  x[:, -1] = rng.integers(0, 2, n)           # a binary feature: flat clusters
  x = (x - x.mean(0)) / x.std(0)
  resp = rng.dirichlet(np.ones(k), size=n)
  if tight:
    x[:n // 10] = 30.0 + 1e-3 * rng.normal(size=(n // 10, d))
    resp[:n // 10] = np.eye(k)[0]
    resp[n // 10:, 0] = 0.0
    resp /= resp.sum(1, keepdims=True)
  prior = _full.FullPosterior(*[tf.constant(v, tf.float32) for v in (
      1.0, np.zeros(d), 1.0, d + 1.0, np.eye(d))])
  prior64 = _full.cast_posterior(prior, tf.float64)
  q64 = initial_posterior(tf.constant(x), resp, prior64)
  q32 = _full.cast_posterior(q64, tf.float32)
  x32, resp32 = tf.constant(x, tf.float32), tf.constant(resp, tf.float32)
  stats32 = _full.sufficient_statistics(x32, resp32)
  stats64 = _full.sufficient_statistics(tf.constant(x), tf.constant(resp))
  assert stats32.sum_xx.dtype == tf.float64
  scatter = [(s.sum_xx - np.einsum("ki,kj->kij", s.sum_x, s.sum_x)
              / s.counts[:, None, None]).numpy() for s in (stats32, stats64)]
  for got, want in zip(*scatter):
    np.testing.assert_allclose(got, want, atol=1e-4 * np.abs(want).max())
  batch = slice(None, None, 100)
  batch_stats = _full.sufficient_statistics(x32[batch], resp32[batch])
  batch_stats64 = _full.sufficient_statistics(tf.constant(x[batch]),
                                              tf.constant(resp[batch]))
  for stats, stats_64, s in ((stats32, stats64, 1.0),
                             (batch_stats, batch_stats64, 100.0)):
    for rho in (0.01, 0.5, 1.0):
      step = _full.natural_update(q32, stats, prior, s, rho)
      want = _full.natural_update(q64, stats_64, prior64, s, rho)
      for got, expected in zip(step, want):
        assert np.all(np.isfinite(got)), rho
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
  chunked, _ = _full.FAMILY.statistics_and_log_likelihood(x32, q32, 8192)
  for t in _full.natural_update(q32, chunked, prior):
    assert np.all(np.isfinite(t))


# ------------------------------------------------------------------------ KL


def test_kl_is_zero_at_the_prior():
  prior = make_prior(3)
  q = _full.FullPosterior(*[tf.broadcast_to(t, s) for t, s in zip(
      prior, [[4], [4, 3], [4], [4], [4, 3, 3]])])
  np.testing.assert_allclose(_full.normal_wishart_kl(q, prior), 0.0,
                             atol=1e-12)
  np.testing.assert_allclose(_full.kl_divergence(q, prior), 0.0, atol=1e-12)


def test_normal_wishart_kl_matches_monte_carlo(rng):
  d, s = 3, 200_000
  q = random_posterior(rng, 2, d)
  prior = make_prior(d)
  prior_b = _full.FullPosterior(*[tf.broadcast_to(t, u.shape)
                                  for t, u in zip(prior, q)])
  wishart_q, wishart_p = wishart(q), wishart(prior_b)
  chol = wishart_q.sample(s, seed=(1, 2))                         # [S, K, D, D]
  # Wishart alone, against TFP's log densities.
  diff = (wishart_q.log_prob(chol) - wishart_p.log_prob(chol)).numpy()
  closed = _full.wishart_kl(q.dof, q.scale_tril, prior.dof, prior.scale_tril)
  error = diff.std(0) / np.sqrt(s)
  assert np.all(np.abs(diff.mean(0) - closed) < 5 * error), (diff.mean(0),
                                                             closed)
  # Normal-Wishart.
  mu = draw_means(q, chol, (3, 4))
  q_tril = np.sqrt(q.mean_precision)[:, None, None] * chol       # [S, K, D, D]
  prior_tril = np.sqrt(prior.mean_precision) * chol
  diff = diff + (normal_log_prob(mu, q.mean_loc, q_tril)
                 - normal_log_prob(mu, prior.mean_loc, prior_tril)).numpy()
  closed = _full.normal_wishart_kl(q, prior).numpy()
  error = diff.std(0) / np.sqrt(s)
  assert np.all(np.abs(diff.mean(0) - closed) < 5 * error), (diff.mean(0),
                                                             closed)
  np.testing.assert_allclose(
      _full.kl_divergence(q, prior),
      closed.sum() + weight_priors.dirichlet_kl(q.weight_concentration,
                                        prior.weight_concentration),
      rtol=1e-12)


def test_wishart_log_normaliser_terms_match_tfp(rng):
  """E[ln|Lambda|] and E[Lambda] = nu W against TFP's Wishart, by sampling."""
  q = random_posterior(rng, 2, 3)
  chol = wishart(q).sample(100_000, seed=(5, 6))
  log_det = 2 * tf.reduce_sum(tf.math.log(tf.linalg.diag_part(chol)), -1)
  np.testing.assert_allclose(
      tf.reduce_mean(log_det, 0),
      _full.expected_log_det_precision(q.dof, q.scale_tril), atol=0.01)


# ------------------------------------------------------ posterior predictive


def test_predictive_components_are_scipy_multivariate_t(rng):
  d = 3
  q = random_posterior(rng, 3, d)
  x = rng.normal(0, 3, (5, d))
  got = _full.predictive_component_log_prob(tf.constant(x), q).numpy()
  scale_tril = _full.student_t_scale_tril(q).numpy()
  for k in range(3):
    t = scipy.stats.multivariate_t(
        loc=q.mean_loc[k].numpy(), shape=scale_tril[k] @ scale_tril[k].T,
        df=q.dof[k].numpy() + 1 - d)
    np.testing.assert_allclose(got[:, k], t.logpdf(x), rtol=1e-10)
  alpha = q.weight_concentration.numpy()
  weights = alpha / alpha.sum()
  np.testing.assert_allclose(
      _full.FAMILY.predictive_log_prob(tf.constant(x), q),
      scipy.special.logsumexp(got + np.log(weights), -1), rtol=1e-12)
  np.testing.assert_allclose(
      tf.reduce_sum(_full.FAMILY.predictive_responsibilities(tf.constant(x), q), -1),
      1.0, rtol=1e-12)


def test_predictive_integrates_to_one(rng):
  q = random_posterior(rng, 2, 2)
  grid = np.linspace(-25, 25, 801)
  xx, yy = np.meshgrid(grid, grid)
  points = tf.constant(np.stack([xx.ravel(), yy.ravel()], -1))
  density = np.exp(_full.FAMILY.predictive_log_prob(points, q).numpy())
  np.testing.assert_allclose(density.sum() * (grid[1] - grid[0])**2, 1.0,
                             atol=2e-3)


def test_predictive_matches_monte_carlo_over_q(rng):
  """Each component's predictive is E_q[Normal(x | mu, Lambda^-1)]."""
  d, s = 2, 200_000
  q = random_posterior(rng, 2, d)
  x = rng.normal(0, 2, (5, d))
  chol = wishart(q).sample(s, seed=(7, 8))                        # [S, K, D, D]
  mu = draw_means(q, chol, (9, 10))                               # [S, K, D]
  exact = _full.predictive_component_log_prob(tf.constant(x), q).numpy()
  for row, want in zip(x, exact):
    log_density = normal_log_prob(row, mu, chol).numpy()          # [S, K]
    density = np.exp(log_density - want)                          # ~ 1 on avg
    estimate, error = density.mean(0), density.std(0) / np.sqrt(s)
    assert np.all(np.abs(estimate - 1.0) < 5 * error + 1e-3), (estimate,
                                                               error)


def test_predictive_samples_have_the_predictive_moments(rng):
  d, n = 3, 300_000
  q = random_posterior(rng, 2, d)
  draws = _full.sample_predictive(tf.constant(n), tf.constant([3, 4]),
                                  q).numpy()
  assert draws.shape == (n, d)
  w = (q.weight_concentration / tf.reduce_sum(q.weight_concentration)).numpy()
  m = q.mean_loc.numpy()
  df = q.dof.numpy() + 1 - d
  scale_tril = _full.student_t_scale_tril(q).numpy()
  cov_k = (df / (df - 2))[:, None, None] * scale_tril @ np.swapaxes(
      scale_tril, -1, -2)
  mean = w @ m
  cov = (np.einsum("k,kij->ij", w, cov_k + np.einsum("ki,kj->kij", m, m))
         - np.outer(mean, mean))
  scale = np.sqrt(np.diag(cov))
  np.testing.assert_allclose(draws.mean(0), mean, atol=0.02 * scale.max())
  np.testing.assert_allclose(np.cov(draws.T), cov,
                             atol=0.03 * np.outer(scale, scale).max())
  batched = _full.FullPosterior(*[tf.stack([t, t]) for t in q])
  draws = _full.sample_predictive(tf.constant(5), tf.constant([3, 4]), batched)
  assert draws.shape == (2, 5, d)


# ------------------------------------------------- D = 1 is the diagonal model


def diag_to_full(q):
  """A 1-D `diag.Posterior` as a `FullPosterior`: nu = 2 a, W^-1 = 2 b."""
  return _full.FullPosterior(
      q.weight_concentration, q.mean_loc, q.mean_precision[..., 0],
      2.0 * q.precision_concentration[..., 0],
      tf.sqrt(2.0 * q.precision_rate)[..., None])


@pytest.mark.parametrize("weight_prior", weight_priors.WEIGHT_PRIORS)
def test_one_feature_reduces_to_the_diagonal_model(rng, weight_prior):
  k = 3
  diag_q = diag.Posterior(
      tf.constant(rng.uniform(1, 20, k)), tf.constant(rng.normal(0, 2, (k, 1))),
      tf.constant(rng.uniform(0.5, 30, (k, 1))),
      tf.constant(rng.uniform(2, 15, (k, 1))),
      tf.constant(rng.uniform(0.5, 10, (k, 1))))
  diag_prior = diag.Posterior(*[tf.constant(v, tf.float64) for v in (
      0.5, [0.3], 0.7, 1.5, [0.8])])
  # Wishart(W0, nu0) in 1-D is Gamma(nu0 / 2, rate 1 / (2 W0)).
  prior = _full.FullPosterior(*[tf.constant(v, tf.float64) for v in (
      0.5, [0.3], 0.7, 2 * 1.5, [[np.sqrt(2 * 0.8)]])])
  q = diag_to_full(diag_q)
  x = tf.constant(rng.normal(0, 3, (40, 1)))
  np.testing.assert_allclose(_full.log_rho(x, q), diag.log_rho(x, diag_q),
                             rtol=1e-12)
  np.testing.assert_allclose(_full.predictive_component_log_prob(x, q),
                             diag.predictive_component_log_prob(x, diag_q),
                             rtol=1e-12)
  np.testing.assert_allclose(_full.FAMILY.predictive_log_prob(x, q),
                             diag.FAMILY.predictive_log_prob(x, diag_q), rtol=1e-12)
  np.testing.assert_allclose(
      _full.kl_divergence(q, prior, weight_prior),
      diag.kl_divergence(diag_q, diag_prior, weight_prior), rtol=1e-12)
  resp = tf.nn.softmax(diag.log_rho(x, diag_q), -1)
  stats = _full.sufficient_statistics(x, resp)
  diag_stats = diag.sufficient_statistics(x, resp)
  for got, want in zip(
      _full.natural_update(q, stats, prior, 3.0, 0.4, weight_prior),
      diag_to_full(diag.natural_update(diag_q, diag_stats, diag_prior, 3.0,
                                        0.4, weight_prior))):
    np.testing.assert_allclose(got, want, rtol=1e-12)
  for got, want in zip(
      _full.statistics_from_posterior(q, prior, weight_prior),
      diag.statistics_from_posterior(diag_q, diag_prior, weight_prior)):
    np.testing.assert_allclose(np.reshape(got, [k, -1]),
                               np.reshape(want, [k, -1]), rtol=1e-12)


# ------------------------------------------ unconstrained coordinates, grads


def test_unconstrained_round_trip(rng):
  q = random_posterior(rng, 3, 4)
  for got, want in zip(_full.posterior_from_unconstrained(
      *_full.unconstrained_from_posterior(q)), q):
    np.testing.assert_allclose(got, want, rtol=1e-12)
  raw = _full.FullUnconstrained(*[tf.constant(rng.normal(size=s)) for s in (
      [3], [3, 4], [3], [3], [3, 4, 4])])
  p = _full.posterior_from_unconstrained(*raw)
  assert np.all(p.dof.numpy() > 3.0)
  np.testing.assert_array_equal(np.triu(p.scale_tril.numpy(), 1), 0.0)
  assert np.all(np.diagonal(p.scale_tril.numpy(), 0, -2, -1) > 0)
  back = _full.unconstrained_from_posterior(p)
  for got, want in zip(back[:-1], raw[:-1]):
    np.testing.assert_allclose(got, want, rtol=1e-12)
  np.testing.assert_allclose(back.raw_tril, np.tril(raw.raw_tril), rtol=1e-12,
                             atol=1e-15)


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_bound_gradients_are_finite(rng, dtype):
  d = 3
  x = tf.constant(mixture_data(rng, 200, d), dtype)
  prior = make_prior(d, dtype)
  raw = [tf.Variable(tf.cast(t, dtype)) for t in
         _full.unconstrained_from_posterior(random_posterior(rng, 4, d))]
  with tf.GradientTape() as tape:
    q = _full.posterior_from_unconstrained(*raw)
    loss = (_full.kl_divergence(q, prior) / 200.0
            - tf.reduce_mean(tf.reduce_logsumexp(_full.log_rho(x, q), -1))
            - tf.reduce_mean(_full.FAMILY.predictive_log_prob(x, q)))
  assert loss.dtype == dtype
  grads = tape.gradient(loss, raw)
  for grad in grads:
    assert grad is not None and grad.dtype == dtype
    assert np.all(np.isfinite(grad.numpy()))
  # The raw upper triangle does not reach the loss.
  np.testing.assert_array_equal(np.triu(grads[-1].numpy(), 1), 0.0)


# ------------------------------------------------------------- restart axis


def test_stacked_restarts_match_separate_runs(rng):
  d, k, r = 3, 4, 3
  x = tf.constant(mixture_data(rng, 300, d))
  prior = make_prior(d)
  inits = [initial_posterior(x, rng.dirichlet(np.ones(k), size=300), prior)
           for _ in range(r)]
  stacked = _full.FullPosterior(*[tf.stack(t) for t in zip(*inits)])
  q, history, _ = run_cavi(x, stacked, prior, tf.constant(12),
                             tf.constant(0.0, tf.float64), chunk=64)
  assert history.shape == (12, 2, r)
  np.testing.assert_allclose(_full.kl_divergence(stacked, prior),
                             [_full.kl_divergence(i, prior) for i in inits],
                             rtol=1e-12)
  np.testing.assert_allclose(
      _full.log_rho(x, stacked), np.stack([_full.log_rho(x, i) for i in inits]),
      rtol=1e-12)
  np.testing.assert_allclose(
      _full.FAMILY.predictive_log_prob(x, stacked),
      np.stack([_full.FAMILY.predictive_log_prob(x, i) for i in inits]), rtol=1e-12)
  for i, init in enumerate(inits):
    alone, alone_history, _ = run_cavi(x, init, prior, tf.constant(12),
                                         tf.constant(0.0, tf.float64),
                                         chunk=64)
    np.testing.assert_allclose(history[..., i], alone_history, rtol=1e-10)
    for got, want in zip(q, alone):
      np.testing.assert_allclose(got[i], want, rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------- SavedModel

_PLAIN_TF_CLIENT = textwrap.dedent("""
    import json, sys
    sys.modules["tfgmm"] = None
    sys.modules["tensorflow_probability"] = None
    import numpy as np
    import tensorflow as tf

    loaded = tf.saved_model.load(sys.argv[1])
    x = tf.constant(np.load(sys.argv[2]))
    seed = tf.constant([1, 2], tf.int64)
    out = {"log_prob": loaded.log_prob(x).numpy().tolist(),
           "sample": loaded.sample(tf.constant(3), seed).numpy().tolist()}
    # The math module itself imports without TFP (ImportError otherwise).
    del sys.modules["tfgmm"]
    from tfgmm.families import full as _full
    print(json.dumps(out))
""")


def test_saved_model_loads_with_plain_tensorflow(rng, tmp_path):
  d = 3
  q = random_posterior(rng, 4, d)
  module = tf.Module()
  module.log_prob = tf.function(
      lambda x: _full.FAMILY.predictive_log_prob(x, q),
      input_signature=[tf.TensorSpec([None, d], tf.float64)])
  module.sample = tf.function(
      lambda n, seed: _full.sample_predictive(n, seed, q),
      input_signature=[tf.TensorSpec([], tf.int32),
                       tf.TensorSpec([2], tf.int64)])
  tf.saved_model.save(module, str(tmp_path / "full"))
  x = rng.normal(size=(6, d))
  np.save(tmp_path / "x.npy", x)
  script = tmp_path / "client.py"
  script.write_text(_PLAIN_TF_CLIENT)
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
             PYTHONPATH=os.pathsep.join(
                 [str(pathlib.Path(__file__).parents[1])]
                 + os.environ.get("PYTHONPATH", "").split(os.pathsep)))
  done = subprocess.run(
      [sys.executable, str(script), str(tmp_path / "full"),
       str(tmp_path / "x.npy")], capture_output=True, text=True, timeout=300,
      env=env, cwd=tmp_path, check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  out = json.loads(done.stdout.strip().splitlines()[-1])
  np.testing.assert_allclose(out["log_prob"],
                             _full.FAMILY.predictive_log_prob(tf.constant(x), q),
                             rtol=1e-12)
  np.testing.assert_allclose(
      out["sample"], _full.sample_predictive(
          tf.constant(3), tf.constant([1, 2], tf.int64), q), rtol=1e-12)
