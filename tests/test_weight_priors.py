"""The truncated Dirichlet-process weight prior, effective components, pruning."""

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from sklearn.metrics import adjusted_rand_score

import tfgmm
from tfgmm._engine import weight_priors
from tfgmm.families import diag
from tests.helpers import run_plain_tf

tfd = tfp.distributions
GAMMA0 = 0.7


def stick_draws(counts, gamma0, n, seed):
  """Monte Carlo draws of pi under q's sticks, [n, K] (numpy)."""
  g1, g2 = [t.numpy() for t in weight_priors.stick_concentrations(counts, gamma0)]
  rng = np.random.default_rng(seed)
  v = rng.beta(g1, g2, size=(n, len(counts)))
  v[:, -1] = 1.0
  rest = np.cumprod(np.concatenate([np.ones((n, 1)), 1 - v[:, :-1]], 1), 1)
  return v * rest


def test_stick_expectations_match_monte_carlo():
  counts = np.array([40.0, 12.5, 3.0, 0.2, 0.0])
  pi = stick_draws(counts, GAMMA0, 400_000, seed=1)
  np.testing.assert_allclose(
      weight_priors.expected_weights(counts, GAMMA0, "dirichlet_process"),
      pi.mean(0), atol=2e-3)
  np.testing.assert_allclose(
      np.exp(weight_priors.expected_log_weights(counts, GAMMA0, "dirichlet_process")),
      np.exp(np.log(pi).mean(0)), rtol=0.02)
  assert np.isclose(float(tf.reduce_sum(weight_priors.expected_weights(
      counts, GAMMA0, "dirichlet_process"))), 1.0, rtol=1e-12)
  # E[pi^2] (for the model's weights_sd) against the same draws.
  np.testing.assert_allclose(
      weight_priors.weight_second_moments(counts, GAMMA0, "dirichlet_process"),
      (pi**2).mean(0), rtol=0.02, atol=1e-6)


def test_stick_kl_matches_tfp_and_vanishes_at_the_prior():
  counts = tf.constant([5.0, 2.0, 0.5, 1e-3], tf.float64)
  g1, g2 = weight_priors.stick_concentrations(counts, GAMMA0)
  expected = tf.reduce_sum(tfd.kl_divergence(
      tfd.Beta(g1[:-1], g2[:-1]),
      tfd.Beta(tf.ones(3, tf.float64), GAMMA0 * tf.ones(3, tf.float64))))
  np.testing.assert_allclose(
      weight_priors.weights_kl(counts, GAMMA0, "dirichlet_process"), expected,
      rtol=1e-7)
  np.testing.assert_allclose(
      weight_priors.weights_kl(tf.zeros(4, tf.float64), GAMMA0, "dirichlet_process"),
      0.0, atol=1e-12)


def _dp_problem(rng):
  x = np.concatenate([rng.normal(-3, 1, (150, 2)), rng.normal(3, 0.5, (80, 2)),
                      rng.normal([0, 5], 1, (40, 2))])
  prior = diag.Posterior(*[tf.constant(v, tf.float64)
                            for v in (GAMMA0, [0.0, 0.0], 1.0, 1.0,
                                      [1.0, 1.0])])
  resp = tf.constant(rng.dirichlet(np.ones(6), len(x)), tf.float64)
  q0 = diag.posterior_from_statistics(
      diag.sufficient_statistics(tf.constant(x), resp), prior, 1.0,
      "dirichlet_process")
  return tf.constant(x), prior, q0


def test_dp_cavi_bound_never_decreases(rng):
  x, prior, q0 = _dp_problem(rng)
  _, history, _ = diag.FAMILY.cavi(x, q0, prior, 60, 0.0, 64,
                             weight_prior="dirichlet_process")
  bound = (history[:, 0] - history[:, 1]).numpy()
  assert bound.shape[0] == 60
  assert np.all(np.diff(bound) >= -1e-12)
  assert bound[-1] > bound[0] + 0.1


def test_dp_full_batch_natural_step_is_cavi_and_stats_invert(rng):
  x, prior, q0 = _dp_problem(rng)
  lw = weight_priors.expected_log_weights(q0.weight_concentration,
                                  prior.weight_concentration,
                                  "dirichlet_process")
  stats = diag.sufficient_statistics(
      x, tf.nn.softmax(diag.log_rho(x, q0, lw), -1))
  step = diag.natural_update(q0, stats, prior, 1.0, 1.0, "dirichlet_process")
  cavi = diag.posterior_from_statistics(stats, prior, 1.0,
                                         "dirichlet_process")
  for a, b in zip(step, cavi):
    np.testing.assert_allclose(a, b, rtol=1e-12)
  back = diag.statistics_from_posterior(cavi, prior, "dirichlet_process")
  for a, b in zip(back, stats):
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)
  # The counts field is the soft counts themselves.
  np.testing.assert_allclose(cavi.weight_concentration, stats.counts,
                             rtol=1e-12)


def test_dp_gradient_of_the_bound_is_finite_with_an_empty_component(rng):
  x, prior, q0 = _dp_problem(rng)
  raw = tf.Variable(tf.math.log(tf.constant([50.0, 20.0, 5.0, 1e-30, 0.0, 3.0],
                                            tf.float64)))
  with tf.GradientTape() as tape:
    q = q0._replace(weight_concentration=tf.exp(raw))
    lw = weight_priors.expected_log_weights(q.weight_concentration,
                                    prior.weight_concentration,
                                    "dirichlet_process")
    loss = (diag.kl_divergence(q, prior, "dirichlet_process") / 270.0
            - tf.reduce_mean(tf.reduce_logsumexp(diag.log_rho(x, q, lw), -1)))
  grad = tape.gradient(loss, raw)
  assert np.all(np.isfinite(grad.numpy())) and np.isfinite(float(loss))


def clusters(seed, n=600):
  rng = np.random.default_rng(seed)
  means = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
  labels = rng.integers(0, 3, n)
  return means[labels] + rng.standard_normal((n, 2)), labels


@pytest.mark.parametrize("weight_prior,concentration", [
    ("dirichlet_process", 0.1), ("dirichlet", 1e-3)])
def test_many_components_collapse_to_the_true_number(weight_prior,
                                                     concentration):
  x, labels = clusters(0)
  model = tfgmm.fit(x, 12, seed=1, weight_prior=weight_prior,
                    weight_concentration=concentration, n_init=2)
  keep = model.effective_components(0.01)
  assert keep.size == 3, np.exp(
      model._log_mean_weights(model.posterior()).numpy())  # pylint: disable=protected-access
  pruned = model.prune(0.01)
  assert pruned.n_components == 3 and pruned.weight_prior == weight_prior
  # The dropped components hold mass m (under the DP, the prior's share for
  # a new, broad cluster): the density changes by about m in the bulk, and
  # by more only in the far tails where the broad components were all there
  # was.
  weights = model.posterior_mean()["weights"]
  dropped = 1.0 - weights[keep].sum()
  change = np.abs(pruned.log_prob(x) - model.log_prob(x))
  assert np.median(change) <= 2 * dropped + 1e-5
  assert change.mean() <= 2 * dropped + 1e-4 and change.max() < 0.05
  assert adjusted_rand_score(labels, pruned.assign(x).numpy()) > 0.97
  np.testing.assert_allclose(pruned.posterior_mean()["weights"].sum(), 1.0,
                             rtol=1e-6)


def test_pruned_model_exports_smaller_and_serves(tmp_path):
  x, _ = clusters(2)
  model = tfgmm.fit(x, 10, seed=3, weight_prior="dirichlet_process",
                    weight_concentration=0.1, n_init=2)
  pruned = model.prune(0.01)
  sizes = {}
  for name, m in (("full", model), ("pruned", pruned)):
    path = m.export(tmp_path / name)
    sizes[name] = sum(f.stat().st_size
                      for f in (tmp_path / name / "variables").iterdir())
  assert sizes["pruned"] < sizes["full"]
  out = run_plain_tf(tmp_path / "pruned", x[:50], tmp_path)
  assert out["responsibilities_spec"] == {
      "responsibilities": ["float32", [None, pruned.n_components]]}
  np.testing.assert_allclose(out["serving_default"]["log_prob"],
                             pruned.log_prob(x[:50]), rtol=1e-5)
  np.testing.assert_allclose(out["sample"]["samples"],
                             pruned.sample(4, seed=7), rtol=1e-5)
  del path


@pytest.mark.parametrize("method", ["natural", "gradient", "sampled"])
def test_dp_trains_with_every_method_and_round_trips(tmp_path, method):
  x, _ = clusters(4, n=300)
  model = tfgmm.BayesianGMM(6, 2, method=method, seed=0,
                            weight_prior="dirichlet_process",
                            weight_concentration=0.5)
  model.initialize(x, n_init=2)
  history = model.fit(tfgmm.make_dataset(x, 100, seed=0), epochs=3,
                      verbose=0)
  assert np.all(np.isfinite(history.history["loss"]))
  summary = model.posterior_summary()
  assert np.all(np.isfinite(summary["weights_sd"]))
  np.testing.assert_allclose(summary["weights"].sum(), 1.0, rtol=1e-5)
  path = tmp_path / "dp.keras"
  model.save(path)
  loaded = keras.saving.load_model(path)
  assert loaded.weight_prior == "dirichlet_process"
  np.testing.assert_allclose(loaded.log_prob(x[:20]), model.log_prob(x[:20]),
                             rtol=1e-6)


def test_weight_prior_and_threshold_errors(blog):
  with pytest.raises(ValueError, match="weight_prior='stick'"):
    tfgmm.BayesianGMM(3, 2, weight_prior="stick")
  model = tfgmm.fit(blog[0], 3, seed=0, n_init=1)
  for bad in (1.0, -0.1, float("nan")):
    with pytest.raises(ValueError, match="threshold"):
      model.effective_components(bad)
  with pytest.raises(ValueError, match="drops every component"):
    model.prune(0.9)
  with pytest.raises(ValueError, match="never initialised"):
    tfgmm.BayesianGMM(3, 2).prune()
