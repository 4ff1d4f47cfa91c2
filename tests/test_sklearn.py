"""tfgmm.sklearn.BayesianGaussianMixture: scikit-learn's API, checks and fits."""

import importlib
import pathlib
import pickle
import sys
import warnings

import numpy as np
import pytest
import scipy.optimize
import scipy.stats
import tensorflow as tf

pytest.importorskip("sklearn")

# pylint: disable=wrong-import-position
from sklearn import base as sklearn_base
from sklearn import mixture
from sklearn.exceptions import ConvergenceWarning
from sklearn.exceptions import NotFittedError
from sklearn.metrics import adjusted_rand_score
from sklearn.utils.estimator_checks import parametrize_with_checks

import tfgmm
from tfgmm._engine import weight_priors
from tfgmm.sklearn import BayesianGaussianMixture

CENTRES = np.array([[6.0, 0.0], [-4.0, -4.0], [0.0, 5.0]])
SCALES = np.array([1.0, 0.5, 0.8])
SIZES = (200, 300, 100)


def blobs(seed=0, sizes=SIZES):
  """Three well-separated 2-D Gaussian clusters, [sum(sizes), 2], labels."""
  rng = np.random.default_rng(seed)
  x = np.concatenate([c + s * rng.standard_normal((n, 2))
                      for c, s, n in zip(CENTRES, SCALES, sizes)])
  return x, np.repeat(np.arange(len(sizes)), sizes)


@pytest.fixture(scope="module", name="data")
def data_fixture():
  return blobs()


def matching(reference_means, means):
  """The permutation p with means[p[k]] closest to reference_means[k]."""
  cost = np.square(reference_means[:, None] - means[None]).sum(-1)  # [K, K]
  _, columns = scipy.optimize.linear_sum_assignment(cost)
  return columns


# --------------------------------------------------- scikit-learn's checks

# Every check of scikit-learn 1.9's `check_estimator` passes: no check is
# marked as an expected failure. `check_array_api_input` skips itself unless
# the environment sets SCIPY_ARRAY_API=1 (and its array API packages are
# installed).
@parametrize_with_checks(
    [BayesianGaussianMixture(),
     BayesianGaussianMixture(
         covariance_type="diag", n_init=2,
         weight_concentration_prior_type="dirichlet_distribution")],
    expected_failed_checks=lambda estimator: {})
def test_scikit_learn_estimator_checks(estimator, check):
  check(estimator)


def test_is_a_density_estimator_with_scikit_learns_parameters():
  ours = BayesianGaussianMixture().get_params()
  theirs = mixture.BayesianGaussianMixture().get_params()
  assert ours == theirs
  assert sklearn_base.is_outlier_detector(BayesianGaussianMixture()) is False
  assert BayesianGaussianMixture().__sklearn_tags__().estimator_type == (
      "density_estimator")


# ----------------------------------------------- parity with scikit-learn


@pytest.mark.parametrize("max_iter", [0, 1, 4])
def test_full_dirichlet_matches_scikit_learn_iteration_by_iteration(
    data, max_iter):
  """Same prior, same random_state (so the same k-means start), same CAVI."""
  x, _ = data
  params = dict(n_components=3, covariance_type="full", tol=0.0,
                max_iter=max_iter, reg_covar=0.0, random_state=0,
                weight_concentration_prior_type="dirichlet_distribution")
  if max_iter:
    with pytest.warns(ConvergenceWarning):
      ours = BayesianGaussianMixture(**params).fit(x)
    with pytest.warns(ConvergenceWarning):
      reference = mixture.BayesianGaussianMixture(**params).fit(x)
  else:
    ours = BayesianGaussianMixture(**params).fit(x)
    reference = mixture.BayesianGaussianMixture(**params).fit(x)
  assert ours.n_iter_ == reference.n_iter_ == max_iter
  order = matching(reference.means_, ours.means_)
  for name in ("weights_", "means_", "covariances_", "precisions_",
               "precisions_cholesky_", "degrees_of_freedom_",
               "mean_precision_", "weight_concentration_"):
    np.testing.assert_allclose(getattr(ours, name)[order],
                               getattr(reference, name), rtol=1e-9,
                               atol=1e-12, err_msg=name)
  for name in ("weight_concentration_prior_", "mean_precision_prior_",
               "mean_prior_", "degrees_of_freedom_prior_",
               "covariance_prior_"):
    np.testing.assert_allclose(getattr(ours, name), getattr(reference, name),
                               rtol=1e-12, err_msg=name)
  np.testing.assert_allclose(ours.predict_proba(x)[:, order],
                             reference.predict_proba(x), atol=1e-10)
  np.testing.assert_array_equal(order[reference.predict(x)], ours.predict(x))


@pytest.mark.parametrize("init_params", ["kmeans", "random"])
def test_the_same_tol_stops_after_the_same_iterations(data, init_params):
  # tol is on the total bound in both: from the same start, the default tol
  # ends within one iteration of scikit-learn's (its bound leaves out terms,
  # so its changes differ slightly) with the same parameters. (Before, a
  # per-sample tol stopped tfgmm after 2 iterations from a random start.)
  x, _ = data
  params = dict(n_components=3, reg_covar=0.0, random_state=3,
                init_params=init_params, max_iter=500)
  ours = BayesianGaussianMixture(**params).fit(x)
  reference = mixture.BayesianGaussianMixture(**params).fit(x)
  assert ours.converged_ and reference.converged_
  assert abs(ours.n_iter_ - reference.n_iter_) <= 1
  # Both stop loosely converged (tol 1e-3 on a total of about -900).
  order = matching(reference.means_, ours.means_)
  np.testing.assert_allclose(ours.weights_[order], reference.weights_,
                             atol=5e-3)


def test_full_dirichlet_converges_to_scikit_learns_fixed_point(data):
  x, _ = data
  params = dict(n_components=3, max_iter=1000, reg_covar=0.0, random_state=1,
                weight_concentration_prior_type="dirichlet_distribution")
  ours = BayesianGaussianMixture(tol=1e-9, **params).fit(x)
  reference = mixture.BayesianGaussianMixture(tol=1e-9, **params).fit(x)
  assert ours.converged_ and reference.converged_
  order = matching(reference.means_, ours.means_)
  for name in ("weights_", "means_", "covariances_", "precisions_"):
    np.testing.assert_allclose(getattr(ours, name)[order],
                               getattr(reference, name), rtol=1e-7,
                               err_msg=name)


def test_diag_matches_scikit_learn_in_one_dimension(data):
  """tfgmm's Normal-Gamma diag model is scikit-learn's at D = 1."""
  x = data[0][:, :1]
  params = dict(n_components=3, covariance_type="diag", tol=0.0, max_iter=3,
                reg_covar=0.0, random_state=0, mean_precision_prior=0.5,
                degrees_of_freedom_prior=3.0, covariance_prior=[2.0],
                weight_concentration_prior_type="dirichlet_distribution")
  with pytest.warns(ConvergenceWarning):
    ours = BayesianGaussianMixture(**params).fit(x)
  with pytest.warns(ConvergenceWarning):
    reference = mixture.BayesianGaussianMixture(**params).fit(x)
  order = matching(reference.means_, ours.means_)
  for name in ("weights_", "means_", "covariances_", "precisions_cholesky_",
               "degrees_of_freedom_", "mean_precision_"):
    np.testing.assert_allclose(getattr(ours, name)[order],
                               getattr(reference, name), rtol=1e-9,
                               err_msg=name)


def test_diag_is_close_to_scikit_learn_in_two_dimensions(data):
  """Only the E-step's digamma term differs (see the module docstring)."""
  x, _ = data
  params = dict(n_components=3, covariance_type="diag", random_state=0,
                weight_concentration_prior_type="dirichlet_distribution")
  ours = BayesianGaussianMixture(**params).fit(x)
  reference = mixture.BayesianGaussianMixture(**params).fit(x)
  order = matching(reference.means_, ours.means_)
  np.testing.assert_allclose(ours.means_[order], reference.means_, atol=1e-2)
  np.testing.assert_allclose(ours.covariances_[order],
                             reference.covariances_, rtol=2e-2)


def test_dirichlet_process_default_is_close_to_scikit_learn(data):
  x, labels = data
  ours = BayesianGaussianMixture(n_components=3, random_state=0).fit(x)
  reference = mixture.BayesianGaussianMixture(n_components=3,
                                              random_state=0).fit(x)
  assert ours.weight_concentration_prior_type == "dirichlet_process"
  assert ours.converged_
  order = matching(reference.means_, ours.means_)
  # Only the last stick's convention differs.
  np.testing.assert_allclose(ours.weights_[order], reference.weights_,
                             atol=5e-3)
  np.testing.assert_allclose(ours.means_[order], reference.means_, atol=5e-3)
  assert adjusted_rand_score(labels, ours.predict(x)) == 1.0
  # Stick parameters (1 + N_k, gamma0 + sum_{j>k} N_j); E[pi] sums to one.
  g1, g2 = ours.weight_concentration_
  counts = g1 - 1.0
  np.testing.assert_allclose(
      g2, ours.weight_concentration_prior_ + np.cumsum(counts[::-1])[::-1]
      - counts, rtol=1e-12)
  # weights_ is scikit-learn's function of weight_concentration_: the
  # normalised expectation of all K sticks (issue 14 changed it from the
  # model's E[pi], whose last stick is 1).
  np.testing.assert_allclose(ours.weights_.sum(), 1.0, rtol=1e-12)
  v = g1 / (g1 + g2)
  expected = v * np.concatenate([[1.0], np.cumprod(1.0 - v)[:-1]])
  np.testing.assert_allclose(ours.weights_, expected / expected.sum(),
                             rtol=1e-12)
  model_weights = weight_priors.expected_weights(
      counts, ours.weight_concentration_prior_, "dirichlet_process")
  np.testing.assert_allclose(ours.to_keras().posterior_mean()["weights"],
                             model_weights, rtol=1e-12)


def test_dirichlet_process_leaves_surplus_components_empty(data):
  x, labels = data
  bgm = BayesianGaussianMixture(n_components=8, random_state=0,
                                max_iter=500).fit(x)
  assert np.sum(bgm.weights_ > 0.01) == 3
  # Components come in decreasing order of weight.
  assert np.all(np.diff(bgm.weights_) <= 0)
  assert adjusted_rand_score(labels, bgm.predict(x)) > 0.99


# ------------------------------------------------------------------ outputs


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_predict_is_the_argmax_of_predict_proba(data, covariance_type):
  x, _ = data
  bgm = BayesianGaussianMixture(n_components=4, random_state=0,
                                covariance_type=covariance_type)
  labels = bgm.fit_predict(x)
  resp = bgm.predict_proba(x)
  assert resp.shape == (x.shape[0], 4)
  np.testing.assert_allclose(resp.sum(1), 1.0, rtol=1e-12)
  np.testing.assert_array_equal(bgm.predict(x), resp.argmax(1))
  np.testing.assert_array_equal(labels, bgm.predict(x))


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_score_samples_is_the_models_posterior_predictive(data,
                                                          covariance_type):
  x, _ = data
  bgm = BayesianGaussianMixture(n_components=3, random_state=0,
                                covariance_type=covariance_type).fit(x)
  model = bgm.to_keras()
  assert isinstance(model, tfgmm.BayesianGMM)
  assert model.covariance_type == covariance_type
  log_prob = bgm.score_samples(x)
  assert log_prob.shape == (x.shape[0],) and np.all(np.isfinite(log_prob))
  np.testing.assert_allclose(log_prob, model.log_prob(x).numpy(), rtol=1e-12)
  np.testing.assert_allclose(bgm.score(x), log_prob.mean(), rtol=1e-12)


def plug_in_log_prob(bgm, x):
  """scikit-learn's density: a Gaussian mixture at the point estimates."""
  covariances = (bgm.covariances_ if bgm.covariance_type == "full"
                 else [np.diag(c) for c in bgm.covariances_])
  return np.logaddexp.reduce([
      np.log(w) + scipy.stats.multivariate_normal(m, c).logpdf(x)
      for w, m, c in zip(bgm.weights_, bgm.means_, covariances)], axis=0)


def test_score_samples_is_the_plug_in_density_widened_by_uncertainty(data):
  x, _ = data
  bgm = BayesianGaussianMixture(n_components=3, random_state=0).fit(x)
  plug_in = plug_in_log_prob(bgm, x)
  log_prob = bgm.score_samples(x)
  # Hundreds of points per component: nearly the plug-in density...
  assert abs(log_prob.mean() - plug_in.mean()) < 0.02
  np.testing.assert_allclose(np.median(log_prob - plug_in), 0.0, atol=0.02)
  # ...with Student-t tails, heavier than the Gaussians' far away.
  far = CENTRES + 8.0
  assert np.all(bgm.score_samples(far) > plug_in_log_prob(bgm, far))


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_sample_draws_the_posterior_predictive(data, covariance_type):
  x, _ = data
  bgm = BayesianGaussianMixture(n_components=3, random_state=0,
                                covariance_type=covariance_type).fit(x)
  samples, labels = bgm.sample(20000)
  assert samples.shape == (20000, 2) and labels.shape == (20000,)
  assert np.all(np.diff(labels) >= 0)
  np.testing.assert_allclose(np.bincount(labels, minlength=3) / 20000,
                             bgm.weights_, atol=0.01)
  for k in range(3):
    np.testing.assert_allclose(samples[labels == k].mean(0), bgm.means_[k],
                               atol=0.05)
  # Seeded by random_state, as scikit-learn's.
  again, again_labels = bgm.sample(20000)
  np.testing.assert_array_equal(again, samples)
  np.testing.assert_array_equal(again_labels, labels)
  # Student-t draws: the predictive's variance exceeds the plug-in's
  # covariances_ by (1 + beta) nu / (beta (nu - D - 1)) (Bishop 10.81-10.82;
  # diag: per feature nu = 2 a, D = 1).
  nu, beta = bgm.degrees_of_freedom_, bgm.mean_precision_
  d = 2 if covariance_type == "full" else 1
  inflation = (1.0 + beta) * nu / (beta * (nu - d - 1.0))
  variances = (np.diagonal(bgm.covariances_, axis1=1, axis2=2)
               if covariance_type == "full" else bgm.covariances_)
  for k in range(3):
    np.testing.assert_allclose(samples[labels == k].var(0),
                               inflation[k] * variances[k], rtol=0.1)
  with pytest.raises(ValueError, match="at least one sample"):
    bgm.sample(0)


def test_lower_bound_is_the_models_evidence_lower_bound(data):
  x, _ = data
  bgm = BayesianGaussianMixture(
      n_components=3, random_state=0, tol=1e-8,
      weight_concentration_prior_type="dirichlet_distribution").fit(x)
  np.testing.assert_allclose(
      bgm.lower_bound_, float(bgm.to_keras().elbo(x)) / x.shape[0],
      rtol=1e-12)
  bounds = np.array(bgm.lower_bounds_)
  assert bounds.shape == (bgm.n_iter_,)
  assert bounds[-1] == bgm.lower_bound_
  assert np.all(np.diff(bounds) >= -1e-10)


def test_more_initialisations_never_lower_the_bound(data):
  x, _ = data
  params = dict(n_components=3, init_params="random", random_state=3)
  one = BayesianGaussianMixture(n_init=1, **params).fit(x)
  four = BayesianGaussianMixture(n_init=4, **params).fit(x)
  # The first of the four restarts draws what n_init=1 draws.
  assert four.lower_bound_ >= one.lower_bound_ - 1e-12


@pytest.mark.parametrize("init_params",
                         ["kmeans", "k-means++", "random", "random_from_data"])
def test_every_initialisation_finds_the_clusters(data, init_params):
  x, labels = data
  bgm = BayesianGaussianMixture(n_components=3, init_params=init_params,
                                n_init=3, random_state=0, max_iter=300,
                                weight_concentration_prior_type=(
                                    "dirichlet_distribution")).fit(x)
  assert adjusted_rand_score(labels, bgm.predict(x)) > 0.99


def test_warm_start_continues_from_the_previous_fit(data):
  x, _ = data
  bgm = BayesianGaussianMixture(n_components=3, random_state=0,
                                warm_start=True).fit(x)
  means = bgm.means_.copy()
  bgm.fit(x)
  assert bgm.converged_ and bgm.n_iter_ <= 2
  np.testing.assert_allclose(bgm.means_, means, atol=1e-3)
  with pytest.raises(ValueError, match="warm_start"):
    bgm.set_params(n_components=4).fit(x)


@pytest.mark.parametrize("covariance_type", ["full", "diag", "tied"])
@pytest.mark.parametrize("prior_type", ["dirichlet_process",
                                        "dirichlet_distribution"])
def test_warm_start_lower_bound_never_falls(data, covariance_type,
                                            prior_type):
  """scikit-learn's test_monotonic_likelihood: one iteration per fit call,
  the lower bound never decreases, rounding at the fixed point included."""
  x, _ = data
  bgm = BayesianGaussianMixture(
      n_components=4, covariance_type=covariance_type, warm_start=True,
      max_iter=1, random_state=0, tol=1e-3,
      weight_concentration_prior_type=prior_type)
  previous = -np.inf
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", ConvergenceWarning)
    for _ in range(300):
      current = bgm.fit(x).lower_bound_
      assert current >= previous
      previous = current
      if bgm.converged_:
        break
  assert bgm.converged_


def test_float32_and_list_inputs(data):
  x, _ = data
  bgm = BayesianGaussianMixture(n_components=3, random_state=0)
  bgm.fit(x.astype(np.float32))
  assert bgm.score_samples(x[:5].tolist()).dtype == np.float64
  assert bgm.predict(x[:5].astype(np.float32)).shape == (5,)


def test_verbose_prints_each_initialisation(data, capsys):
  x, _ = data
  BayesianGaussianMixture(n_components=3, random_state=0, n_init=2,
                          verbose=2, verbose_interval=1).fit(x)
  out = capsys.readouterr().out
  assert "Initialization 0" in out and "Initialization 1" in out
  assert "Iteration 1\t lower bound change" in out
  assert "Initialization converged" in out


# ------------------------------------------------------------- partial_fit


def test_partial_fit_improves_the_bound_over_calls():
  x, labels = blobs(seed=1, sizes=(2000, 3000, 1000))
  rng = np.random.default_rng(0)
  bgm = BayesianGaussianMixture(n_components=3, random_state=0)
  batches = np.array_split(rng.permutation(x.shape[0]), 30)
  bgm.partial_fit(x[batches[0]], total_samples=x.shape[0])
  first = float(bgm.to_keras().elbo(x)) / x.shape[0]
  n_iter = bgm.n_iter_
  bounds = []
  for _ in range(2):
    for batch in batches[1:]:
      bgm.partial_fit(x[batch], total_samples=x.shape[0])
    bounds.append(float(bgm.to_keras().elbo(x)) / x.shape[0])
  assert bgm.n_iter_ == n_iter + 2 * 29
  assert first < bounds[0] <= bounds[1] + 1e-3
  # Near what full-data CAVI reaches.
  fitted = BayesianGaussianMixture(n_components=3, random_state=0).fit(x)
  assert bounds[-1] > fitted.lower_bound_ - 0.01
  assert adjusted_rand_score(labels, bgm.predict(x)) > 0.99
  assert np.isfinite(bgm.lower_bound_)
  np.testing.assert_allclose(bgm.to_keras().num_examples.numpy(), x.shape[0])


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_partial_fit_is_one_float64_natural_gradient_step(data,
                                                          covariance_type):
  x, _ = data
  bgm = BayesianGaussianMixture(
      n_components=3, random_state=0, covariance_type=covariance_type,
      weight_concentration_prior_type="dirichlet_distribution")
  bgm.partial_fit(x[:300], total_samples=x.shape[0])
  model = bgm.to_keras()
  family = model.family
  q = model.posterior()
  batch = tf.constant(x[300:400])
  log_rho = family.log_rho(batch, q)                              # [B, K]
  stats = family.sufficient_statistics(batch, tf.nn.softmax(log_rho, -1))
  # Hoffman et al. (2013): s = N / B, rho = max(B / N, (t + 2)^-0.7), t = 0.
  # (As float64 tensors: natural_update's tf.cast of a Python float would
  # round it to float32 first.)
  step = tf.constant(max(100 / x.shape[0], 2.0**-0.7), tf.float64)
  scale = tf.constant(x.shape[0] / 100, tf.float64)
  expected = family.natural_update(q, stats, model.prior(), scale, step)
  bgm.partial_fit(x[300:400], total_samples=x.shape[0])
  order = matching(expected.mean_loc.numpy(), bgm.means_)
  for got, want in zip(model.posterior(), expected):
    np.testing.assert_allclose(got.numpy()[order], want.numpy(), rtol=1e-12)


def test_partial_fit_counts_a_stream_and_continues_a_fit(data):
  x, _ = data
  bgm = BayesianGaussianMixture(n_components=3, random_state=0)
  bgm.partial_fit(x[::2])
  bgm.partial_fit(x[1::2])
  assert bgm.to_keras().num_examples.numpy() == x.shape[0]
  # After fit, steps continue from the fitted posterior.
  bgm = BayesianGaussianMixture(n_components=3, random_state=0).fit(x)
  bgm.partial_fit(x[:50])
  assert bgm.to_keras().num_examples.numpy() == x.shape[0] + 50


def test_partial_fit_errors(data):
  x, _ = data
  with pytest.raises(ValueError, match="n_samples >= n_components"):
    BayesianGaussianMixture(n_components=5).partial_fit(x[:3])
  bgm = BayesianGaussianMixture(n_components=2).partial_fit(x)
  with pytest.raises(ValueError, match="X has 1 features"):
    bgm.partial_fit(x[:, :1])
  with pytest.raises(ValueError, match="total_samples"):
    bgm.partial_fit(x, total_samples=0)


# ----------------------------------------------------------- persistence


def test_pickle_round_trip_keeps_the_fit_and_can_train_on(data):
  x, _ = data
  bgm = BayesianGaussianMixture(n_components=3, random_state=0).fit(x)
  loaded = pickle.loads(pickle.dumps(bgm))
  assert hasattr(bgm, "_model")  # pickling leaves the estimator intact
  for method in ("predict_proba", "score_samples"):
    np.testing.assert_array_equal(getattr(loaded, method)(x),
                                  getattr(bgm, method)(x))
  np.testing.assert_array_equal(loaded.means_, bgm.means_)
  assert loaded.to_keras().seed == bgm.to_keras().seed == 0
  loaded.partial_fit(x[:100])
  bgm.partial_fit(x[:100])
  np.testing.assert_allclose(loaded.means_, bgm.means_, rtol=1e-12)
  fresh = sklearn_base.clone(bgm)
  with pytest.raises(NotFittedError):
    fresh.to_keras()


# ------------------------------------------------------------------ errors


def test_more_components_than_samples_is_rejected(data):
  x, _ = data
  with pytest.raises(ValueError,
                     match="n_samples >= n_components but got n_components "
                     "= 5, n_samples = 4"):
    BayesianGaussianMixture(n_components=5).fit(x[:4])


@pytest.mark.parametrize("params, error, match", [
    (dict(covariance_type="round"), ValueError, "covariance_type"),
    (dict(n_components=0), ValueError, "n_components"),
    (dict(n_components=1.5), TypeError, "n_components"),
    (dict(tol=-1.0), ValueError, "tol"),
    (dict(reg_covar=-1e-3), ValueError, "reg_covar"),
    (dict(max_iter=-1), ValueError, "max_iter"),
    (dict(n_init=0), ValueError, "n_init"),
    (dict(init_params="nearest"), ValueError, "init_params"),
    (dict(weight_concentration_prior_type="beta"), ValueError,
     "weight_concentration_prior_type"),
    (dict(weight_concentration_prior=0.0), ValueError,
     "weight_concentration_prior"),
    (dict(mean_precision_prior=-1.0), ValueError, "mean_precision_prior"),
    (dict(degrees_of_freedom_prior=1.0), ValueError,
     "degrees_of_freedom_prior' should be greater than 1"),
    (dict(mean_prior=[0.0]), ValueError, "shape"),
    (dict(covariance_prior=np.eye(3)), ValueError, "shape"),
    (dict(covariance_prior=-np.eye(2)), ValueError, "positive-definite"),
    (dict(covariance_type="diag", covariance_prior=[1.0, -1.0]), ValueError,
     "positive"),
    (dict(warm_start="yes"), TypeError, "warm_start"),
    (dict(verbose_interval=0), ValueError, "verbose_interval"),
])
def test_bad_parameters_raise_at_fit(data, params, error, match):
  bgm = BayesianGaussianMixture(**params)  # scikit-learn checks at fit
  with pytest.raises(error, match=match):
    bgm.fit(data[0])


def test_unfitted_estimator_raises_not_fitted(data):
  bgm = BayesianGaussianMixture()
  for method in (bgm.predict, bgm.predict_proba, bgm.score_samples):
    with pytest.raises(NotFittedError):
      method(data[0])
  with pytest.raises(NotFittedError):
    bgm.sample(3)


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_reg_covar_keeps_a_constant_feature_proper(covariance_type):
  rng = np.random.default_rng(0)
  x = np.column_stack([rng.standard_normal(50), np.full(50, 3.0)])
  bgm = BayesianGaussianMixture(n_components=2, random_state=0,
                                covariance_type=covariance_type).fit(x)
  assert np.all(np.isfinite(bgm.score_samples(x)))
  with pytest.raises(ValueError, match="reg_covar"):
    BayesianGaussianMixture(covariance_type=covariance_type,
                            reg_covar=0.0).fit(x)


# ------------------------------------------------------------------ imports


def test_tfgmm_modules_other_than_this_face_do_not_import_scikit_learn():
  package = pathlib.Path(tfgmm.__file__).parent
  for path in package.glob("*.py"):
    if path.name != "sklearn.py":
      text = path.read_text()
      assert "import sklearn" not in text and "from sklearn" not in text, (
          path)


def test_missing_scikit_learn_says_how_to_install_it(monkeypatch):
  monkeypatch.setitem(sys.modules, "sklearn", None)  # its import raises
  monkeypatch.delitem(sys.modules, "tfgmm.sklearn")
  with pytest.raises(ImportError, match=r"pip install tfgmm\[sklearn\]"):
    importlib.import_module("tfgmm.sklearn")
