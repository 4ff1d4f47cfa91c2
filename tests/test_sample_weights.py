"""Sample weights: an integer weight counts a row that many times, zero drops it."""

import numpy as np
import pytest
import tensorflow as tf

import tfgmm
from tfgmm.families import diag
from tfgmm import api
from tfgmm import data as data_lib


@pytest.fixture(name="weighted")
def weighted_fixture(blog):
  """A subset of the blog data with integer weights 0..3, and its expansion."""
  x = blog[0][::10]                                               # [300, 2]
  weights = np.random.default_rng(3).integers(0, 4, len(x)).astype(float)
  return x, weights, np.repeat(x, weights.astype(int), axis=0)


def test_weighted_moments_equal_duplicated_rows(weighted):
  x, w, expanded = weighted
  summary = data_lib.summarize(x, 2, 10_000, sample_weight=w)
  plain = data_lib.summarize(expanded, 2, 10_000)
  assert summary.num_examples == len(x)
  assert summary.total_weight == pytest.approx(len(expanded))
  np.testing.assert_allclose(summary.mean, plain.mean, rtol=1e-12)
  np.testing.assert_allclose(summary.variance, plain.variance, rtol=1e-12)
  # The same through a dataset's (x, None, w) elements.
  streamed = data_lib.summarize(
      tfgmm.make_dataset(x, 64, sample_weight=w, seed=0), 2, 10_000)
  np.testing.assert_allclose(streamed.mean, plain.mean, rtol=1e-6)
  np.testing.assert_allclose(streamed.variance, plain.variance, rtol=1e-6)
  assert streamed.total_weight == pytest.approx(len(expanded), rel=1e-6)


@pytest.mark.parametrize("weight_prior", ["dirichlet", "dirichlet_process"])
def test_weighted_cavi_equals_cavi_on_duplicated_rows(weighted, weight_prior):
  x, w, expanded = weighted
  model = tfgmm.BayesianGMM(3, 2, dtype="float64", standardize=False,
                            weight_prior=weight_prior, seed=0)
  model.initialize(x, sample_weight=w)
  q0, prior = model.posterior(), model.prior()
  weighted_run = diag.FAMILY.cavi(tf.constant(x), q0, prior, 20, 0.0, 64,
                            weight_prior, tf.constant(w))
  expanded_run = diag.FAMILY.cavi(tf.constant(expanded), q0, prior, 20, 0.0, 64,
                            weight_prior)
  for a, b in zip(weighted_run[0], expanded_run[0]):
    np.testing.assert_allclose(a, b, rtol=1e-10)
  np.testing.assert_allclose(weighted_run[1], expanded_run[1], rtol=1e-10)


def test_fit_with_weights_matches_fit_on_duplicated_rows(weighted):
  x, w, expanded = weighted
  a = tfgmm.fit(x, 3, seed=0, sample_weight=w, dtype="float64")
  b = tfgmm.fit(expanded, 3, seed=0, dtype="float64")
  np.testing.assert_allclose(a.feature_loc.numpy(), b.feature_loc.numpy(),
                             rtol=1e-12)
  np.testing.assert_allclose(a.feature_scale.numpy(),
                             b.feature_scale.numpy(), rtol=1e-12)
  assert a.total_weight.numpy() == len(expanded)
  # Different initial samples, the same optimum (up to where tol stopped).
  grid = np.random.default_rng(1).uniform(-6, 6, (200, 2))
  np.testing.assert_allclose(a.log_prob(grid), b.log_prob(grid), atol=1e-4)
  np.testing.assert_allclose(a.elbo(x, sample_weight=w), b.elbo(expanded),
                             rtol=1e-6)
  np.testing.assert_allclose(a.training_history["loss"][-1],
                             b.training_history["loss"][-1], rtol=1e-6)


def test_zero_weight_drops_the_row(weighted):
  x, _, _ = weighted
  w = np.ones(len(x))
  w[::3] = 0.0
  a = tfgmm.fit(x, 3, seed=0, sample_weight=w, dtype="float64")
  b = tfgmm.fit(x[w > 0], 3, seed=0, dtype="float64")
  grid = np.random.default_rng(2).uniform(-6, 6, (200, 2))
  np.testing.assert_allclose(a.log_prob(grid), b.log_prob(grid), atol=1e-4)


@pytest.mark.parametrize("method", ["natural", "gradient"])
def test_full_batch_keras_fit_with_weights_equals_duplicated(weighted, method):
  """One batch of all rows: the weighted step and metrics are the expanded ones."""
  x, w, expanded = weighted
  models = []
  for data, weights in ((x, w), (expanded, None)):
    model = tfgmm.BayesianGMM(3, 2, dtype="float64", method=method, seed=0)
    models.append(model)
    model.initialize(data, sample_weight=weights, sample_size=10_000)
  models[1].assign_posterior(models[0].posterior())
  histories = []
  for model, (data, weights) in zip(models, ((x, w), (expanded, None))):
    dataset = tfgmm.make_dataset(data, len(data), shuffle=False,
                                 sample_weight=weights)
    histories.append(model.fit(dataset, epochs=3, verbose=0).history)
  for key in ("loss", "expected_log_likelihood", "kl"):
    np.testing.assert_allclose(histories[0][key], histories[1][key],
                               rtol=1e-7)
  for a, b in zip(models[0].posterior(), models[1].posterior()):
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_minibatch_weighted_fit_through_model_fit(weighted):
  x, w, _ = weighted
  model = tfgmm.BayesianGMM(3, 2, seed=0)
  history = model.fit(x, sample_weight=w, batch_size=50, epochs=3, verbose=0)
  assert np.all(np.isfinite(history.history["loss"]))
  assert model.total_weight.numpy() == pytest.approx(w.sum())


@pytest.mark.parametrize("bad,error,match", [
    (-np.ones(300), ValueError, r"sample_weight\[0\]=-1.0"),
    (np.full(300, np.nan), ValueError, r"sample_weight\[0\]=nan"),
    (np.ones(299), ValueError, r"shape \(300,\).*\(299,\)"),
    (np.zeros(300), ValueError, "all 300 weights are zero"),
    (np.array(["a"] * 300), TypeError, "sample_weight"),
])
def test_bad_sample_weights_are_clear_errors(weighted, bad, error, match):
  x = weighted[0]
  with pytest.raises(error, match=match):
    tfgmm.fit(x, 3, sample_weight=bad)
  with pytest.raises(error, match=match):
    tfgmm.make_dataset(x, 10, sample_weight=bad)
  with pytest.raises(error, match=match):
    tfgmm.BayesianGMM(3, 2).fit(x, sample_weight=bad, verbose=0)


def test_sample_weights_reach_the_sampled_method(weighted):
  x, w, _ = weighted
  model = api.fit(x, 3, method="sampled", seed=0, sample_weight=w,
                  max_epochs=3, n_init=1)
  assert np.all(np.isfinite(model.training_history["loss"]))
