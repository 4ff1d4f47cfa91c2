"""The missing-at-random model's math: `diag` without NaN, marginals with."""

import numpy as np
import pytest
import scipy.integrate
import scipy.special
import scipy.stats
import tensorflow as tf
from sklearn.metrics import adjusted_rand_score

import tfgmm
from tests.helpers import run_plain_tf
from tests.helpers import make_prior
from tests.helpers import mixture_data
from tests.helpers import random_posterior
from tfgmm._engine import inference
from tfgmm._engine import weight_priors
from tfgmm.families import diag
from tfgmm.families import diag_missing as _missing
from tfgmm._engine import loops

NAN = np.nan


def punch_holes(rng, x, fraction):
  """x with each entry set to NaN with probability `fraction` (MCAR)."""
  x = np.array(x, dtype=np.float64)
  x[rng.random(x.shape) < fraction] = NAN
  return x


def initial_posterior(x, rng, k, prior, weight_prior="dirichlet"):
  resp = tf.constant(rng.dirichlet(np.ones(k), size=x.shape[0]), x.dtype)
  return _missing.posterior_from_statistics(
      _missing.sufficient_statistics(x, resp), prior, 1.0, weight_prior)


def restrict(q, features):
  """q (or a prior with [D] fields) on a subset of the features."""
  def pick(t):
    t = tf.convert_to_tensor(t)
    return tf.gather(t, features, axis=-1) if t.shape.rank else t
  return diag.Posterior(q.weight_concentration,
                         *[pick(t) for t in q[1:]])


def student_t_parameters(q):
  """(log E[pi], df, loc, scale) of the exact predictive, numpy."""
  alpha, m, beta, a, b = [np.asarray(t, np.float64) for t in q]
  return (np.log(alpha / alpha.sum()), 2 * a, m,
          np.sqrt(b * (beta + 1) / (a * beta)))


# ------------------------------------------------ no NaN: exactly `diag`


def test_mean_row_log_det_over_chunks_counts_each_rows_observed_scales(rng):
  """-mean_n sum_{d observed in n} log s_d, with weights, over ragged row
  chunks (the mask is never formed for all rows at once)."""
  from tfgmm._engine import predict
  z = rng.normal(size=(1003, 4))
  z[rng.uniform(size=z.shape) < 0.3] = np.nan
  scale = rng.uniform(0.1, 5.0, 4)
  w = rng.uniform(0.5, 2.0, 1003)
  per_row = -((~np.isnan(z)) @ np.log(scale))                     # [N]
  for chunk in (1, 100, 1 << 16):
    assert predict.mean_row_log_det(
        tf.constant(z), scale, chunk=chunk) == pytest.approx(
            per_row.mean(), rel=1e-12)
    assert predict.mean_row_log_det(
        tf.constant(z), scale, w, chunk=chunk) == pytest.approx(
            w @ per_row / w.sum(), rel=1e-12)


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_complete_rows_get_maths_local_terms_bit_for_bit(rng, dtype):
  x = tf.constant(mixture_data(rng, 200, 3), dtype)
  q = random_posterior(rng, 4, 3, dtype)
  sticks = weight_priors.expected_log_weights(
      tf.cast(q.weight_concentration, tf.float64), 1.5, "dirichlet_process")
  for log_weights in (None, sticks):
    np.testing.assert_array_equal(_missing.log_rho(x, q, log_weights),
                                  diag.log_rho(x, q, log_weights))
  for name in ("predictive_component_log_prob", "predictive_joint_log_prob",
               "predictive_log_prob", "predictive_responsibilities"):
    np.testing.assert_array_equal(getattr(_missing.FAMILY, name)(x, q),
                                  getattr(diag.FAMILY, name)(x, q),
                                  err_msg=name)
  resp = tf.nn.softmax(diag.log_rho(x, q), -1)
  weights = tf.constant(rng.uniform(0, 2, 200), dtype)
  stats = _missing.sufficient_statistics(x, resp, weights)
  reference = diag.sufficient_statistics(x, resp, weights)
  for got, want in zip((stats.counts, stats.sum_x, stats.sum_xx), reference):
    np.testing.assert_array_equal(got, want)
  np.testing.assert_allclose(
      stats.feature_counts,
      np.broadcast_to(reference.counts[:, None], (4, 3)),
      rtol=1e-12 if dtype == tf.float64 else 1e-5)
  # Given N_kd = N_k the global step is `diag`'s, bit for bit.
  prior = make_prior(3, dtype)
  for weight_prior in weight_priors.WEIGHT_PRIORS:
    got = _missing.natural_update(
        q, _missing.as_masked_statistics(reference), prior, 3.0, 0.4,
        weight_prior)
    want = diag.natural_update(q, reference, prior, 3.0, 0.4, weight_prior)
    for field, g, w in zip(diag.Posterior._fields, got, want):
      assert g.dtype == dtype
      np.testing.assert_array_equal(g, w, err_msg=field)


def test_without_missing_values_fits_and_bounds_equal_maths(rng):
  x = tf.constant(mixture_data(rng, 300, 3))
  prior = make_prior(3)
  q = random_posterior(rng, 4, 3)
  assert _missing.FAMILY.kl_divergence is diag.kl_divergence
  resp = tf.nn.softmax(diag.log_rho(x, q), -1)
  for weight_prior in weight_priors.WEIGHT_PRIORS:
    got = _missing.natural_update(
        q, _missing.sufficient_statistics(x, resp), prior, 2.5, 0.3,
        weight_prior)
    want = diag.natural_update(q, diag.sufficient_statistics(x, resp),
                                prior, 2.5, 0.3, weight_prior)
    for g, w in zip(got, want):
      np.testing.assert_allclose(g, w, rtol=1e-12)
    q0 = _missing.posterior_from_statistics(
        _missing.sufficient_statistics(x, resp), prior, 1.0, weight_prior)
    q_got, history_got, _ = _missing.FAMILY.cavi(
        x, q0, prior, tf.constant(20), tf.constant(0.0, tf.float64), 128,
        weight_prior)
    q_want, history_want, _ = diag.FAMILY.cavi(
        x, q0, prior, tf.constant(20), tf.constant(0.0, tf.float64), 128,
        weight_prior)
    np.testing.assert_allclose(history_got, history_want, rtol=1e-12)
    for g, w in zip(q_got, q_want):
      np.testing.assert_allclose(g, w, rtol=1e-12)
    for g, w in zip(
        _missing.statistics_from_posterior(q_got, prior, weight_prior),
        _missing.as_masked_statistics(
            diag.statistics_from_posterior(q_got, prior, weight_prior))):
      np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-9)
    for g, w in zip(_missing.rescale(q_got, prior, 7.0, weight_prior),
                    diag.rescale(q_got, prior, 7.0, weight_prior)):
      np.testing.assert_allclose(g, w, rtol=1e-12)
    seed = tf.constant([3, 4])
    np.testing.assert_allclose(
        _missing.FAMILY.sampled_log_likelihood(x, q, seed, 1.5, weight_prior),
        diag.sampled_log_likelihood(x, q, seed, 1.5, weight_prior),
        rtol=1e-12)


# ------------------------------------------------------------ marginals


def test_predictive_of_a_partly_observed_point_is_the_scipy_marginal(rng):
  k, d = 3, 4
  q = random_posterior(rng, k, d)
  x = rng.normal(0, 2, (7, d))
  x[0, 1] = NAN                            # one missing
  x[1, [0, 3]] = NAN                       # two missing
  x[3, 2] = NAN
  x[4, :] = NAN                            # nothing observed
  x[5, [1, 2, 3]] = NAN                    # one observed
  x[6, [0, 2]] = NAN                       # row 2 stays complete
  log_weights, df, loc, scale = student_t_parameters(q)
  want_log_prob, want_resp = [], []
  for row in x:
    seen = ~np.isnan(row)
    component = scipy.stats.t.logpdf(row[seen], df[:, seen], loc[:, seen],
                                     scale[:, seen]).sum(-1)      # [K]
    joint = log_weights + component
    want_log_prob.append(scipy.special.logsumexp(joint))
    want_resp.append(scipy.special.softmax(joint))
  xt = tf.constant(x)
  got = _missing.FAMILY.predictive_log_prob(xt, q).numpy()
  np.testing.assert_allclose(got, want_log_prob, rtol=1e-12, atol=1e-12)
  resp = _missing.FAMILY.predictive_responsibilities(xt, q).numpy()
  np.testing.assert_allclose(resp, want_resp, rtol=1e-10, atol=1e-14)
  # The marginal of nothing: log p = 0, responsibilities = E[pi].
  assert abs(got[4]) < 1e-14
  np.testing.assert_allclose(resp[4], np.exp(log_weights), rtol=1e-14)
  assert np.all(np.isfinite(_missing.predictive_component_log_prob(xt, q)))


def test_predictive_marginal_integrates_the_complete_density(rng):
  """log of the integral of `diag`'s density over the missing feature."""
  q = random_posterior(rng, 3, 2)
  observed = 0.7
  # t = c tan(u) maps (-pi/2, pi/2) onto the line; the Student-t tails
  # (df >= 4) make the integrand vanish at the ends.
  u = np.linspace(-np.pi / 2, np.pi / 2, 40001)[1:-1]
  width = 5.0
  t = width * np.tan(u)
  rows = np.stack([np.full_like(t, observed), t], -1)
  density = np.exp(diag.FAMILY.predictive_log_prob(tf.constant(rows), q).numpy())
  integral = scipy.integrate.simpson(density * width / np.cos(u) ** 2, x=u)
  got = _missing.FAMILY.predictive_log_prob(
      tf.constant([[observed, NAN]], tf.float64), q)
  np.testing.assert_allclose(got[0], np.log(integral), rtol=1e-9)


def test_log_rho_leaves_out_exactly_the_missing_features(rng):
  """Each row's log_rho is `diag`'s on its observed features only."""
  k, d, n = 4, 5, 60
  q = random_posterior(rng, k, d)
  x = punch_holes(rng, rng.normal(0, 2, (n, d)), 0.3)
  x[0] = NAN
  x[1] = rng.normal(size=d)
  log_weights = weight_priors.expected_log_weights(q.weight_concentration)
  got = _missing.log_rho(tf.constant(x), q).numpy()
  for i, row in enumerate(x):
    seen = np.flatnonzero(~np.isnan(row))
    want = diag.log_rho(tf.constant(row[None, seen]), restrict(q, seen),
                         log_weights)
    np.testing.assert_allclose(got[i], want[0], rtol=1e-12, atol=1e-12)
  np.testing.assert_allclose(got[0], log_weights, rtol=1e-12)


def test_a_feature_missing_everywhere_drops_out_and_keeps_its_prior(rng):
  k, d, n = 3, 4, 200
  complete = mixture_data(rng, n, d)
  x = complete.copy()
  x[:, 2] = NAN
  others = [0, 1, 3]
  q = random_posterior(rng, k, d)
  prior = make_prior(d)
  log_weights = weight_priors.expected_log_weights(q.weight_concentration)
  lr = _missing.log_rho(tf.constant(x), q)
  np.testing.assert_allclose(
      lr, diag.log_rho(tf.constant(complete[:, others]), restrict(q, others),
                        log_weights), rtol=1e-12)
  resp = tf.nn.softmax(lr, -1)
  updated = _missing.natural_update(
      q, _missing.sufficient_statistics(tf.constant(x), resp), prior)
  reference = diag.natural_update(
      restrict(q, others),
      diag.sufficient_statistics(tf.constant(complete[:, others]), resp),
      restrict(prior, others))
  for got, want in zip(restrict(updated, others), reference):
    np.testing.assert_allclose(got, want, rtol=1e-12)
  # Never observed: the feature's factor is the prior's.
  np.testing.assert_allclose(updated.mean_loc[:, 2], 0.3, rtol=1e-14)
  np.testing.assert_allclose(updated.mean_precision[:, 2], 0.7, rtol=1e-14)
  np.testing.assert_allclose(updated.precision_concentration[:, 2], 1.5,
                             rtol=1e-14)
  np.testing.assert_allclose(updated.precision_rate[:, 2], 0.8, rtol=1e-12)


def test_statistics_sum_over_each_features_observed_rows(rng):
  n, d, k = 40, 3, 2
  x = punch_holes(rng, rng.normal(size=(n, d)), 0.4)
  resp = rng.dirichlet(np.ones(k), size=n)
  w = rng.uniform(0, 3, n)
  stats = _missing.sufficient_statistics(tf.constant(x), tf.constant(resp),
                                         tf.constant(w))
  rw = resp * w[:, None]                                          # [n, K]
  seen = ~np.isnan(x)
  x0 = np.where(seen, x, 0.0)
  np.testing.assert_allclose(stats.counts, rw.sum(0), rtol=1e-12)
  for j in range(d):
    rows = seen[:, j]
    np.testing.assert_allclose(stats.feature_counts[:, j], rw[rows].sum(0),
                               rtol=1e-12)
    np.testing.assert_allclose(stats.sum_x[:, j], rw[rows].T @ x[rows, j],
                               rtol=1e-12)
    np.testing.assert_allclose(stats.sum_xx[:, j],
                               rw[rows].T @ x[rows, j] ** 2, rtol=1e-12)
  assert np.all(np.isfinite(x0))


def test_chunked_e_step_matches_one_pass(rng):
  x = tf.constant(punch_holes(rng, rng.normal(size=(1000, 3)), 0.3))
  q = random_posterior(rng, 4, 3)
  stats, total = _missing.FAMILY.statistics_and_log_likelihood(x, q, chunk=77)
  assert isinstance(stats, _missing.MaskedStatistics)
  lr = _missing.log_rho(x, q)
  direct = _missing.sufficient_statistics(x, tf.nn.softmax(lr, -1))
  for got, want in zip(stats, direct):
    np.testing.assert_allclose(got, want, rtol=1e-10)
  np.testing.assert_allclose(
      total, tf.reduce_sum(tf.reduce_logsumexp(lr, -1)), rtol=1e-12)
  chunked = inference.map_chunks(lambda r: _missing.FAMILY.predictive_log_prob(r, q), x,
                             33)
  np.testing.assert_allclose(chunked, _missing.FAMILY.predictive_log_prob(x, q),
                             rtol=1e-12)


# ------------------------------------------------------------------- CAVI


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_cavi_bound_never_decreases_with_30_percent_missing(rng, dtype):
  d = 3
  x = tf.constant(punch_holes(rng, mixture_data(rng, 400, d, k=4), 0.3),
                  dtype)
  prior = make_prior(d, dtype)
  # A far start too: means 20 units off, precisions too large, lopsided.
  far = diag.Posterior(
      tf.constant([1.0, 1.0, 1.0, 1.0, 400.0], dtype),
      tf.constant(rng.normal(20.0, 1.0, (5, d)), dtype),
      tf.fill([5, d], tf.constant(1e3, dtype)),
      tf.fill([5, d], tf.constant(50.0, dtype)),
      tf.fill([5, d], tf.constant(0.5, dtype)))
  for weight_prior, start in (("dirichlet", initial_posterior(x, rng, 5,
                                                              prior)),
                              ("dirichlet", far),
                              ("dirichlet_process", initial_posterior(
                                  x, rng, 5, prior, "dirichlet_process"))):
    q, history, _ = _missing.FAMILY.cavi(x, start, prior, tf.constant(40),
                                  tf.constant(0.0, tf.float64), 128,
                                  weight_prior)
    assert q.mean_loc.dtype == dtype
    per_point = (history[:, 0] - history[:, 1]).numpy()
    assert per_point.shape == (40,) and np.all(np.isfinite(per_point))
    # float32 log_rho rounds at ~1e-7 relative per point.
    slack = 1e-12 if dtype == tf.float64 else 1e-6 * np.abs(per_point).max()
    assert np.all(np.diff(per_point) >= -slack), np.diff(per_point).min()
    assert per_point[-1] > per_point[0] + 0.01
    assert all(np.all(np.isfinite(t)) for t in q)


def farthest_point_responsibilities(x, k):
  """A label-free start: farthest-point centres among the complete rows,
  each row to the nearest centre over its observed features (one-hot)."""
  complete = x[~np.isnan(x).any(1)]
  centres = [complete[0]]
  for _ in range(1, k):
    distance = np.min([np.square(complete - c).sum(1) for c in centres], 0)
    centres.append(complete[np.argmax(distance)])
  distance = np.stack([np.nansum(np.square(x - c), 1) for c in centres], 1)
  return np.eye(k)[np.argmin(distance, 1)]


def test_cavi_recovers_the_means_with_a_fifth_of_the_entries_missing():
  rng = np.random.default_rng(2024)
  n, d, k = 3000, 4, 3
  means = np.array([[0.0, 0.0, 0.0, 0.0], [6.0, -5.0, 4.0, -6.0],
                    [-5.0, 6.0, 5.0, 3.0]])
  scales = rng.uniform(0.5, 1.2, (k, d))
  labels = rng.integers(k, size=n)
  complete = means[labels] + rng.normal(size=(n, d)) * scales[labels]
  x = punch_holes(rng, complete, 0.2)
  assert 0.19 < np.isnan(x).mean() < 0.21
  prior = make_prior(d, m0=0.0)
  fit = tf.function(_missing.FAMILY.cavi, autograph=False)
  fit_complete = tf.function(diag.FAMILY.cavi, autograph=False)
  args = (prior, tf.constant(200), tf.constant(1e-10, tf.float64),
          tf.constant(1024))
  for start in (np.eye(k)[labels], farthest_point_responsibilities(x, k)):
    resp = tf.constant(start)
    q0 = _missing.posterior_from_statistics(
        _missing.sufficient_statistics(tf.constant(x), resp), prior)
    q, history, converged = fit(tf.constant(x), q0, *args)
    assert bool(converged)
    assert np.all(np.diff(history[:, 0] - history[:, 1]) >= -1e-12)
    # Match components to the true ones (the label-free start permutes).
    order = np.argmin(np.square(q.mean_loc.numpy()[:, None] - means).sum(-1),
                      0)
    assert sorted(order) == list(range(k))
    fitted = q.mean_loc.numpy()[order]
    np.testing.assert_allclose(fitted, means, atol=0.1)
    # Separated clusters: each mean is nearly its cluster's available-case
    # mean, shrunk by beta0 / (beta0 + N_kd) towards m0 = 0 (not exactly: a
    # row that observes one or two features can be ambiguous, and is shared).
    seen = ~np.isnan(x)
    available = np.stack([
        np.where(seen[labels == j], x[labels == j], 0).sum(0)
        / (0.7 + seen[labels == j].sum(0)) for j in range(k)])
    np.testing.assert_allclose(fitted, available, atol=0.01)
    # 1 / sqrt(E[tau]) against the true scales: within the sampling error of
    # ~800 points per cluster and feature (the complete data's own standard
    # deviations are up to 6% off).
    sd = np.sqrt((q.precision_rate / q.precision_concentration).numpy())
    np.testing.assert_allclose(sd[order], scales, rtol=0.1)
    # Close to the fit of the complete data from the same start.
    q0_complete = diag.posterior_from_statistics(
        diag.sufficient_statistics(tf.constant(complete), resp), prior)
    q_complete, _, _ = fit_complete(tf.constant(complete), q0_complete, *args)
    np.testing.assert_allclose(fitted, q_complete.mean_loc.numpy()[order],
                               atol=0.1)
    sd_complete = np.sqrt((q_complete.precision_rate
                           / q_complete.precision_concentration).numpy())
    np.testing.assert_allclose(sd, sd_complete, rtol=0.05)
    np.testing.assert_allclose(
        weight_priors.expected_weights(q.weight_concentration),
        weight_priors.expected_weights(q_complete.weight_concentration), atol=0.01)


def test_restarts_equal_separate_runs(rng):
  d, k, restarts = 3, 3, 3
  x = tf.constant(punch_holes(rng, mixture_data(rng, 300, d), 0.25))
  prior = make_prior(d)
  starts = [initial_posterior(x, rng, k, prior) for _ in range(restarts)]
  stacked = diag.Posterior(*[tf.stack(t) for t in zip(*starts)])
  q_all, history_all, _ = _missing.FAMILY.cavi(
      x, stacked, prior, tf.constant(15), tf.constant(0.0, tf.float64), 64)
  assert history_all.shape == (15, 2, restarts)
  for r, start in enumerate(starts):
    q, history, _ = _missing.FAMILY.cavi(x, start, prior, tf.constant(15),
                                  tf.constant(0.0, tf.float64), 64)
    np.testing.assert_allclose(history_all[..., r], history, rtol=1e-12)
    for got, want in zip(q_all, q):
      np.testing.assert_allclose(got[r], want, rtol=1e-10)
    for fn in (_missing.log_rho, _missing.FAMILY.predictive_log_prob,
               _missing.predictive_component_log_prob,
               _missing.FAMILY.predictive_responsibilities):
      np.testing.assert_allclose(fn(x[:20], q_all)[r], fn(x[:20], q),
                                 rtol=1e-12)
    np.testing.assert_allclose(_missing.FAMILY.kl_divergence(q_all, prior)[r],
                               _missing.FAMILY.kl_divergence(q, prior), rtol=1e-12)
    for got, want in zip(_missing.statistics_from_posterior(q_all, prior),
                         _missing.statistics_from_posterior(q, prior)):
      np.testing.assert_allclose(got[r], want, rtol=1e-12, atol=1e-9)
  for weight_prior in weight_priors.WEIGHT_PRIORS:
    assert _missing.FAMILY.sampled_log_likelihood(
        x[:20], q_all, tf.constant([1, 2]), prior.weight_concentration,
        weight_prior).shape == (restarts, 20)


def test_integer_sample_weights_equal_repeated_rows(rng):
  x_np = punch_holes(rng, mixture_data(rng, 80, 3), 0.3)
  counts = rng.integers(0, 4, 80)
  prior = make_prior(3)
  q0 = random_posterior(rng, 3, 3)
  weighted, weighted_history, _ = _missing.FAMILY.cavi(
      tf.constant(x_np), q0, prior, tf.constant(10),
      tf.constant(0.0, tf.float64), 32,
      sample_weight=tf.constant(counts, tf.float64))
  repeated, repeated_history, _ = _missing.FAMILY.cavi(
      tf.constant(np.repeat(x_np, counts, 0)), q0, prior, tf.constant(10),
      tf.constant(0.0, tf.float64), 32)
  np.testing.assert_allclose(weighted_history, repeated_history, rtol=1e-10)
  for got, want in zip(weighted, repeated):
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_rescale_is_the_posterior_of_the_repeated_data(rng):
  x = tf.constant(punch_holes(rng, mixture_data(rng, 100, 3), 0.3))
  prior = make_prior(3)
  resp = tf.constant(rng.dirichlet(np.ones(3), size=100))
  q = _missing.posterior_from_statistics(
      _missing.sufficient_statistics(x, resp), prior)
  for got, want in zip(_missing.statistics_from_posterior(q, prior),
                       _missing.sufficient_statistics(x, resp)):
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
  tripled = _missing.posterior_from_statistics(
      _missing.sufficient_statistics(tf.concat([x] * 3, 0),
                                     tf.concat([resp] * 3, 0)), prior)
  for got, want in zip(_missing.rescale(q, prior, 3.0), tripled):
    np.testing.assert_allclose(got, want, rtol=1e-10)


# --------------------------------------------------------------- gradients


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_gradients_in_log_space_are_finite_with_nan_in_x(rng, dtype):
  d, k = 3, 3
  x_np = punch_holes(rng, mixture_data(rng, 64, d), 0.3)
  x_np[0] = NAN
  x = tf.constant(x_np, dtype)
  prior = make_prior(d, dtype)
  q = random_posterior(rng, k, d, dtype)
  raw = [tf.Variable(t) for t in _missing.FAMILY.unconstrained_from_posterior(q)]
  for name in ("analytic", "sampled", "sampled_sticks", "predictive"):
    weight_prior = ("dirichlet_process" if name == "sampled_sticks"
                    else "dirichlet")
    with tf.GradientTape() as tape:
      q = _missing.FAMILY.posterior_from_unconstrained(*raw)
      if name == "analytic":
        ll = tf.reduce_logsumexp(_missing.log_rho(x, q), -1)
      elif name == "predictive":
        ll = _missing.FAMILY.predictive_log_prob(x, q)
      else:
        ll = _missing.FAMILY.sampled_log_likelihood(
            x, q, tf.constant([5, 6]), prior.weight_concentration,
            weight_prior)
      assert np.all(np.isfinite(ll.numpy()))
      loss = (_missing.FAMILY.kl_divergence(q, prior, weight_prior) / 1000.0
              - tf.reduce_mean(ll))
    grads = tape.gradient(loss, raw)
    for field, grad in zip(diag.Posterior._fields, grads):
      assert grad is not None, (name, field)
      assert grad.dtype == dtype
      assert np.all(np.isfinite(grad.numpy())), (name, field)
      assert np.any(grad.numpy() != 0), (name, field)


@pytest.mark.parametrize("name", ["log_rho", "predictive", "sampled"])
def test_gradient_with_respect_to_a_missing_entry_is_zero(rng, name):
  x_np = punch_holes(rng, rng.normal(size=(30, 3)), 0.3)
  x_np[0] = NAN
  x = tf.constant(x_np)
  q = random_posterior(rng, 3, 3)
  with tf.GradientTape() as tape:
    tape.watch(x)
    if name == "log_rho":
      out = tf.reduce_logsumexp(_missing.log_rho(x, q), -1)
    elif name == "predictive":
      out = _missing.FAMILY.predictive_log_prob(x, q)
    else:
      out = _missing.FAMILY.sampled_log_likelihood(x, q, tf.constant([1, 2]))
    total = tf.reduce_sum(out)
  grad = tape.gradient(total, x).numpy()
  missing = np.isnan(x_np)
  assert np.all(grad[missing] == 0.0)
  assert np.all(np.isfinite(grad)) and np.all(grad[~missing] != 0.0)


def test_sampled_estimator_averages_above_analytic_bound(rng):
  """Jensen per row, missing entries or not: E_q[log p] >= logsumexp log_rho."""
  q = random_posterior(rng, 3, 3)
  x = punch_holes(rng, rng.normal(0, 2, (12, 3)), 0.4)
  x[0] = NAN
  draws = 2000
  tiled = tf.constant(np.tile(x, (draws, 1)))                    # [S B, D]
  samples = tf.reshape(_missing.FAMILY.sampled_log_likelihood(
      tiled, q, tf.constant([7, 0])), [draws, 12]).numpy()
  mean = samples.mean(0)
  error = samples.std(0) / np.sqrt(draws)
  analytic = tf.reduce_logsumexp(_missing.log_rho(tf.constant(x), q),
                                 -1).numpy()
  assert np.all(mean >= analytic - 4 * error - 1e-12)
  assert np.mean(mean - analytic) > 0
  # Nothing observed: log sum_k pi_k = 0 at every draw.
  np.testing.assert_allclose(samples[:, 0], 0.0, atol=1e-12)


# ------------------------------------------------- dtypes, tracing, import


def test_float32_tracks_float64(rng):
  d, k = 3, 4
  x64 = tf.constant(punch_holes(rng, mixture_data(rng, 100, d) / 4.0, 0.3))
  q64 = random_posterior(rng, k, d)
  x32, q32 = tf.cast(x64, tf.float32), diag.cast_posterior(q64, tf.float32)
  q32_64 = diag.cast_posterior(q32, tf.float64)   # same values, float64 math
  x32_64 = tf.cast(x32, tf.float64)
  for fn in (_missing.log_rho, _missing.FAMILY.predictive_log_prob):
    got = fn(x32, q32)
    assert got.dtype == tf.float32
    np.testing.assert_allclose(got, fn(x32_64, q32_64), rtol=1e-5, atol=1e-4)
  stats = _missing.sufficient_statistics(
      x32, tf.nn.softmax(_missing.log_rho(x32, q32), -1))
  assert all(t.dtype == tf.float32 for t in stats)
  updated = _missing.natural_update(q32, stats, make_prior(d, tf.float32), 3.0,
                                    0.5)
  assert all(t.dtype == tf.float32 for t in updated)


def test_shape_free_traces_run_restarts(rng):
  """Traced once with every dimension unknown, as the model compiles them."""
  x_spec, q_spec, prior_spec = loops.shape_free_signature(
      diag.FAMILY, tf.float64, batched=True)
  int_spec = tf.TensorSpec([], tf.int32)
  cavi = tf.function(_missing.FAMILY.cavi, autograph=False, input_signature=(
      x_spec, q_spec, prior_spec, int_spec, tf.TensorSpec([], tf.float64),
      int_spec))
  predict = tf.function(_missing.FAMILY.predictive_log_prob, autograph=False,
                        input_signature=(x_spec, q_spec))
  x = tf.constant(punch_holes(rng, mixture_data(rng, 120, 2), 0.2))
  prior = make_prior(2)
  q0 = diag.Posterior(*[tf.stack([t, t + 0.1]) for t in
                         initial_posterior(x, rng, 3, prior)])
  q, history, _ = cavi(x, q0, prior, tf.constant(5),
                       tf.constant(0.0, tf.float64), tf.constant(50))
  eager, eager_history, _ = _missing.FAMILY.cavi(
      x, q0, prior, tf.constant(5), tf.constant(0.0, tf.float64), 50)
  np.testing.assert_allclose(history, eager_history, rtol=1e-12)
  np.testing.assert_allclose(predict(x, q),
                             _missing.FAMILY.predictive_log_prob(x, eager),
                             rtol=1e-10, atol=1e-14)


def test_module_does_not_import_tfp_at_module_level():
  """Exported graphs must load with plain TensorFlow: TFP only in functions."""
  import ast  # pylint: disable=import-outside-toplevel
  with open(_missing.__file__, encoding="utf-8") as f:
    tree = ast.parse(f.read())
  names = [alias.name if isinstance(node, ast.Import) else node.module
           for node in tree.body
           if isinstance(node, (ast.Import, ast.ImportFrom))
           for alias in node.names]
  assert names and not any("tensorflow_probability" in n for n in names), names


# ------------------------------------------------------- through the model


def _mixture_with_holes(seed=0, n=3000, fraction=0.2):
  rng = np.random.default_rng(seed)
  means = np.array([[0.0, 0.0, 0.0, 0.0], [5.0, -4.0, 3.0, 6.0],
                    [-5.0, 4.0, 6.0, -3.0]])
  labels = rng.integers(0, 3, n)
  x = means[labels] + rng.standard_normal((n, 4))
  holes = x.copy()
  holes[rng.random(x.shape) < fraction] = np.nan
  return means, labels, x, holes


def test_model_without_nan_is_unchanged_by_marginalize():
  _, _, x, _ = _mixture_with_holes(n=600)
  plain = tfgmm.fit(x, 3, seed=0, dtype="float64")
  masked = tfgmm.fit(x, 3, seed=0, dtype="float64", missing="marginalize")
  np.testing.assert_allclose(masked.log_prob(x), plain.log_prob(x),
                             rtol=1e-12)
  np.testing.assert_allclose(masked.training_history["loss"],
                             plain.training_history["loss"], rtol=1e-12)


def test_model_recovers_means_with_a_fifth_of_entries_missing():
  means, labels, x, holes = _mixture_with_holes()
  model = tfgmm.fit(holes, 3, seed=0, missing="marginalize")
  found = model.posterior_mean()["means"]
  order = [int(np.argmin(np.linalg.norm(found - m, axis=1))) for m in means]
  # 3000 rows, about 800 observed values per cluster and feature: the
  # standard error of a mean is about 0.035; 0.15 is four of them.
  np.testing.assert_allclose(found[order], means, atol=0.15)
  complete = tfgmm.fit(x, 3, seed=0)
  np.testing.assert_allclose(
      found[order],
      complete.posterior_mean()["means"][[int(np.argmin(np.linalg.norm(
          complete.posterior_mean()["means"] - m, axis=1))) for m in means]],
      atol=0.1)
  rows = ~np.isnan(holes).all(1)
  assert adjusted_rand_score(labels[rows],
                             model.assign(holes[rows]).numpy()) > 0.97


def test_model_log_prob_of_a_partly_missing_row_is_the_marginal():
  _, _, _, holes = _mixture_with_holes(n=900)
  model = tfgmm.fit(holes, 3, seed=0, missing="marginalize", dtype="float64")
  q = model.posterior()
  loc, scale = model.feature_loc.numpy(), model.feature_scale.numpy()
  weights = model.posterior_mean()["weights"]
  df = 2 * q.precision_concentration.numpy()
  t_scale = diag.student_t_scale(q).numpy() * scale              # data units
  t_loc = loc + scale * q.mean_loc.numpy()
  point = np.array([[0.3, np.nan, -0.2, np.nan], [np.nan] * 4,
                    [5.0, -4.0, np.nan, 6.5]])
  expected = []
  for row in point:
    seen = ~np.isnan(row)
    component = scipy.stats.t.logpdf(row[seen], df[:, seen], t_loc[:, seen],
                               t_scale[:, seen]).sum(1)
    expected.append(scipy.special.logsumexp(component + np.log(weights)))
  np.testing.assert_allclose(model.log_prob(point), expected, rtol=1e-9,
                             atol=1e-12)
  np.testing.assert_allclose(model.responsibilities(point)[1], weights,
                             rtol=1e-9)


@pytest.mark.parametrize("method", ["natural", "gradient", "sampled"])
def test_model_trains_on_minibatches_with_holes(method):
  _, _, _, holes = _mixture_with_holes(n=600)
  model = tfgmm.BayesianGMM(3, 4, method=method, seed=0,
                            missing="marginalize")
  history = model.fit(tfgmm.make_dataset(holes, 200, seed=0,
                                         missing="marginalize"),
                      epochs=3, verbose=0).history
  for values in history.values():
    assert np.all(np.isfinite(values))
  assert np.all(np.isfinite(model.log_prob(holes)))


def test_export_marginalises_missing_values_with_plain_tensorflow(tmp_path):
  _, _, _, holes = _mixture_with_holes(n=600)
  model = tfgmm.fit(holes, 3, seed=0, missing="marginalize")
  model.export(tmp_path / "gmm")
  out = run_plain_tf(tmp_path / "gmm", holes[:60], tmp_path)
  np.testing.assert_allclose(out["serving_default"]["log_prob"],
                             model.log_prob(holes[:60]), rtol=1e-5)
  np.testing.assert_allclose(out["responsibilities"]["responsibilities"],
                             model.responsibilities(holes[:60]), rtol=1e-5,
                             atol=1e-6)


def test_missing_value_errors():
  _, _, x, holes = _mixture_with_holes(n=300)
  with pytest.raises(ValueError, match=r"x\[\d+, \d\]=nan.*missing='marginalize'"):
    tfgmm.fit(holes, 3)
  inf = x.copy()
  inf[5, 2] = np.inf
  with pytest.raises(ValueError, match=r"x\[5, 2\]=inf"):
    tfgmm.fit(inf, 3, missing="marginalize")
  empty_column = holes.copy()
  empty_column[:, 1] = np.nan
  with pytest.raises(ValueError, match="feature 1 is missing"):
    tfgmm.fit(empty_column, 3, missing="marginalize")
  with pytest.raises(ValueError, match="mean_prior='conjugate'"):
    tfgmm.BayesianGMM(3, 4, mean_prior="independent", missing="marginalize")
  with pytest.raises(ValueError, match="missing='drop'"):
    tfgmm.BayesianGMM(3, 4, missing="drop")
  model = tfgmm.fit(x, 3, seed=0, n_init=1)
  with pytest.raises(ValueError, match="missing='marginalize'"):
    model.log_prob(holes)


def test_full_covariance_marginalises_missing_values_in_prediction(tmp_path):
  """Full: the observed block's multivariate-t marginal; training needs
  complete rows."""
  _, _, x, holes = _mixture_with_holes(n=600)
  model = tfgmm.fit(x, 3, seed=0, covariance_type="full", dtype="float64",
                    missing="marginalize")
  q = model.posterior()
  loc, scale = model.feature_loc.numpy(), model.feature_scale.numpy()
  weights = model.posterior_mean()["weights"]
  d = 4
  df = q.dof.numpy() + 1 - d
  beta = q.mean_precision.numpy()
  tril = q.scale_tril.numpy()
  rows = holes[:40]
  expected = []
  for row in rows:
    seen = ~np.isnan(row)
    terms = []
    for k in range(3):
      matrix = ((1 + beta[k]) / (df[k] * beta[k]) * tril[k] @ tril[k].T
                * np.outer(scale, scale))                         # data units
      terms.append(np.log(weights[k]) + (scipy.stats.multivariate_t(
          (loc + scale * q.mean_loc.numpy()[k])[seen],
          matrix[np.ix_(seen, seen)], df=df[k]).logpdf(row[seen])
                                         if seen.any() else 0.0))
    expected.append(scipy.special.logsumexp(terms))
  np.testing.assert_allclose(model.log_prob(rows), expected, rtol=1e-9)
  complete = ~np.isnan(rows).any(1)
  np.testing.assert_allclose(model.log_prob(rows[complete]),
                             np.asarray(expected)[complete], rtol=1e-9)
  model.export(tmp_path / "full")
  out = run_plain_tf(tmp_path / "full", rows, tmp_path)
  np.testing.assert_allclose(out["serving_default"]["log_prob"], expected,
                             rtol=1e-5)
  with pytest.raises(ValueError, match="trains on complete rows only"):
    tfgmm.fit(holes, 3, covariance_type="full", missing="marginalize")
