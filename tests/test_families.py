"""The model with full covariances and with the seed blog's independent prior."""

import keras
import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import BayesianGaussianMixture

import tfgmm
from tests.helpers import run_plain_tf

SHEAR = np.array([[0.6, -0.64], [-0.41, 0.85]])


@pytest.fixture(name="aniso", scope="module")
def aniso_fixture():
  """scikit-learn's anisotropic example: three sheared blobs of 500."""
  rng = np.random.default_rng(170)
  centres = np.array([[-3.0, 3.0], [3.0, 3.0], [0.0, -4.0]])
  labels = np.repeat(np.arange(3), 500)
  x = (centres[labels] + rng.standard_normal((1500, 2))) @ SHEAR
  return x, labels


def test_full_covariance_fit_matches_scikit_learn(aniso):
  """Same model, same prior: the same optimum as BayesianGaussianMixture."""
  x, labels = aniso
  model = tfgmm.fit(x, 3, seed=0, covariance_type="full", dtype="float64",
                    standardize=False, weight_concentration=1.0,
                    mean_loc=x.mean(0), mean_precision=1.0,
                    degrees_of_freedom=2.0, scale_matrix=np.eye(2), tol=1e-9)
  reference = BayesianGaussianMixture(
      n_components=3, covariance_type="full", reg_covar=0.0,
      weight_concentration_prior_type="dirichlet_distribution",
      weight_concentration_prior=1.0, mean_prior=x.mean(0),
      mean_precision_prior=1.0, degrees_of_freedom_prior=2.0,
      covariance_prior=np.eye(2), max_iter=1000, tol=1e-10, n_init=3,
      random_state=0).fit(x)
  ours = model.posterior_mean()
  order = [int(np.argmin(np.linalg.norm(ours["means"] - m, axis=1)))
           for m in reference.means_]
  np.testing.assert_allclose(ours["means"][order], reference.means_,
                             rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(ours["weights"][order], reference.weights_,
                             rtol=1e-5)
  # E[Lambda] = nu W = scikit-learn's precisions_.
  np.testing.assert_allclose(ours["precisions"][order],
                             reference.precisions_, rtol=1e-5)
  assert adjusted_rand_score(labels, model.assign(x).numpy()) > 0.95


def test_full_covariance_beats_diagonal_on_correlated_clusters(aniso):
  x, labels = aniso
  full = tfgmm.fit(x, 3, seed=0, covariance_type="full")
  diag = tfgmm.fit(x, 3, seed=0)
  assert full.training_history["loss"][-1] < diag.training_history["loss"][-1]
  assert adjusted_rand_score(labels, full.assign(x).numpy()) > 0.97
  assert full.posterior_mean()["precisions"].shape == (3, 2, 2)
  summary = full.posterior_summary()
  assert np.all(np.isfinite(summary["stddevs"]))
  assert np.all(np.isfinite(summary["means_sd"]))


def test_full_covariance_in_one_dimension_is_the_diagonal_model(rng):
  x = np.concatenate([rng.normal(-2, 0.5, 300), rng.normal(3, 1.0, 200)])
  x = x[:, None]
  a0, b0 = 2.0, 0.5
  diag = tfgmm.BayesianGMM(2, 1, dtype="float64", seed=0,
                           precision_concentration=a0, precision_rate=b0)
  full = tfgmm.BayesianGMM(2, 1, dtype="float64", seed=0,
                           covariance_type="full",
                           degrees_of_freedom=2 * a0,
                           scale_matrix=[[1 / (2 * b0)]])
  for model in (diag, full):
    model.initialize(x, n_init=2)
    model.fit(tfgmm.make_dataset(x, len(x), shuffle=False), epochs=5,
              verbose=0)
  np.testing.assert_allclose(full.log_prob(x), diag.log_prob(x), rtol=1e-9)
  np.testing.assert_allclose(full.training_history["loss"],
                             diag.training_history["loss"], rtol=1e-9)


@pytest.mark.parametrize("kwargs,method", [
    (dict(covariance_type="full"), "natural"),
    (dict(covariance_type="full"), "gradient"),
    (dict(mean_prior="independent"), "natural"),
    (dict(mean_prior="independent"), "gradient"),
    (dict(mean_prior="independent"), "sampled")])
def test_every_method_trains_and_round_trips(tmp_path, aniso, kwargs,
                                             method):
  x, _ = aniso
  model = tfgmm.BayesianGMM(3, 2, method=method, seed=0, **kwargs)
  model.initialize(x, n_init=2, max_iter=5)
  history = model.fit(tfgmm.make_dataset(x, 250, seed=0), epochs=4,
                      verbose=0).history
  assert np.all(np.isfinite(history["loss"]))
  if method != "sampled":
    assert history["loss"][-1] <= history["loss"][0] + 1e-4
  path = tmp_path / "model.keras"
  model.save(path)
  loaded = keras.saving.load_model(path)
  np.testing.assert_allclose(loaded.log_prob(x[:50]), model.log_prob(x[:50]),
                             rtol=1e-6)
  assert loaded.get_config() == model.get_config()


@pytest.mark.parametrize("kwargs", [
    dict(covariance_type="full"),
    dict(covariance_type="full", weight_prior="dirichlet_process"),
    dict(mean_prior="independent"),
    dict(mean_prior="independent", weight_prior="dirichlet_process")])
def test_exports_load_with_plain_tensorflow(tmp_path, aniso, kwargs):
  x, _ = aniso
  model = tfgmm.fit(x, 3, seed=0, n_init=2, **kwargs)
  model.export(tmp_path / "gmm")
  out = run_plain_tf(tmp_path / "gmm", x[:100], tmp_path)
  np.testing.assert_allclose(out["serving_default"]["log_prob"],
                             model.log_prob(x[:100]), rtol=1e-5)
  np.testing.assert_allclose(out["responsibilities"]["responsibilities"],
                             model.responsibilities(x[:100]), rtol=1e-5,
                             atol=1e-6)
  np.testing.assert_allclose(out["sample"]["samples"], model.sample(4, seed=7),
                             rtol=1e-5, atol=1e-6)


def test_independent_prior_with_the_blog_settings(blog):
  """The seed blog's model and recipe: N(0, 1), Gamma(5, 5), Dirichlet(2)."""
  x, labels = blog
  model = tfgmm.fit(x, 3, method="sampled", seed=0, mean_prior="independent",
                    standardize=False, weight_concentration=2.0,
                    mean_precision=1.0, precision_concentration=5.0,
                    precision_rate=5.0, max_epochs=30, batch_size=500)
  assert np.all(np.isfinite(model.training_history["loss"]))
  assert adjusted_rand_score(labels, model.assign(x).numpy()) > 0.97
  np.testing.assert_allclose(np.sort(model.posterior_mean()["weights"]),
                             [1 / 3] * 3, atol=0.03)


@pytest.mark.parametrize("kwargs,match", [
    (dict(covariance_type="full", degrees_of_freedom=1.0),
     r"degrees_of_freedom` > D - 1 = 1.*degrees_of_freedom=1.0"),
    (dict(covariance_type="full", scale_matrix=[[1.0, 2.0], [2.0, 1.0]]),
     "symmetric positive definite"),
    (dict(covariance_type="full", scale_matrix=np.eye(3)),
     r"scale_matrix.shape=\(3, 3\)"),
    (dict(covariance_type="full", method="sampled"), "method='sampled'"),
    (dict(covariance_type="full", mean_prior="independent"),
     "mean_prior='independent'"),
    (dict(degrees_of_freedom=3.0), "covariance_type='diag'"),
    (dict(covariance_type="round"), "covariance_type='round'"),
    (dict(mean_prior="flat"), "mean_prior='flat'"),
])
def test_family_argument_errors(kwargs, match):
  with pytest.raises(ValueError, match=match):
    tfgmm.BayesianGMM(3, 2, **kwargs)
