"""TFP objects of a fitted mixture: predictive, posterior and prior."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import tfgmm
from tests.helpers import mixture_data

tfd = tfp.distributions

# (covariance_type, options) of every family and weight prior.
KINDS = {
    "diag": dict(covariance_type="diag"),
    "diag-dp": dict(covariance_type="diag", weight_prior="dirichlet_process"),
    "independent": dict(covariance_type="diag", mean_prior="independent"),
    "missing": dict(covariance_type="diag", missing="marginalize"),
    "full": dict(covariance_type="full"),
    "full-dp": dict(covariance_type="full", weight_prior="dirichlet_process"),
    "spherical": dict(covariance_type="spherical"),
    "tied": dict(covariance_type="tied"),
}


def _data(d=2):
  # Offset and scaled, so the standardisation is not the identity.
  x = mixture_data(np.random.default_rng(0), 400, d)
  return 3.0 + x * np.linspace(0.5, 2.0, d)


@pytest.fixture(scope="module", params=sorted(KINDS))
def fitted64(request):
  x = _data()
  return tfgmm.fit(x, 3, seed=0, dtype="float64", n_init=1,
                   **KINDS[request.param]), x


def test_predictive_log_prob_equals_the_model_float64(fitted64):
  model, x = fitted64
  predictive = model.predictive_distribution()
  assert isinstance(predictive, tfd.MixtureSameFamily)
  assert predictive.event_shape == [2]
  np.testing.assert_allclose(predictive.log_prob(x).numpy(),
                             model.log_prob(x).numpy(), rtol=0, atol=1e-10)


@pytest.mark.parametrize("kind", ["diag", "full", "spherical", "tied"])
def test_predictive_log_prob_equals_the_model_float32(kind):
  x = _data().astype(np.float32)
  model = tfgmm.fit(x, 3, seed=0, n_init=1, **KINDS[kind])
  got = model.predictive_distribution().log_prob(x).numpy()
  np.testing.assert_allclose(got, model.log_prob(x).numpy(), rtol=0,
                             atol=1e-5)


def test_predictive_moments_and_samples(fitted64):
  model, _ = fitted64
  predictive = model.predictive_distribution()
  summary = model.posterior_mean()
  want_mean = summary["weights"] @ summary["means"]
  np.testing.assert_allclose(predictive.mean().numpy(), want_mean,
                             rtol=1e-10)
  draws = predictive.sample(40000, seed=1).numpy()                # [n, D]
  covariance = predictive.covariance().numpy()                    # [D, D]
  se = np.sqrt(np.diag(covariance) / len(draws))
  assert np.all(np.abs(draws.mean(0) - want_mean) < 5 * se)
  np.testing.assert_allclose(np.cov(draws.T), covariance, rtol=0.1,
                             atol=0.05 * np.abs(covariance).max())


def test_composes_with_tfp(fitted64):
  model, x = fitted64
  predictive = model.predictive_distribution()
  # Inside a joint distribution.
  joint = tfd.JointDistributionNamed({"x": predictive})
  np.testing.assert_allclose(joint.log_prob({"x": x[:5]}).numpy(),
                             model.log_prob(x[:5]).numpy(), atol=1e-10)
  # As an MCMC target.
  kernel = tfp.mcmc.RandomWalkMetropolis(predictive.log_prob)
  states = tfp.mcmc.sample_chain(
      200, tf.constant(x[:4]), kernel=kernel, num_burnin_steps=50,
      trace_fn=None, seed=(1, 2))
  assert states.shape == (200, 4, 2)
  assert np.all(np.isfinite(states.numpy()))
  # In a Monte Carlo KL estimate against a reference Normal.
  kl = tfp.vi.monte_carlo_variational_loss(
      tfd.MultivariateNormalDiag(x.mean(0), x.std(0)).log_prob, predictive,
      sample_size=200, seed=(3, 4),
      gradient_estimator=tfp.vi.GradientEstimators.SCORE_FUNCTION)
  assert np.isfinite(kl.numpy())


def test_posterior_samples_reproduce_the_summary(fitted64):
  model, _ = fitted64
  posterior = model.posterior_distribution()
  summary = model.posterior_summary()
  draws = posterior.sample(20000, seed=5)
  means = draws["means"].numpy()                                  # [n, K, D]
  np.testing.assert_allclose(means.mean(0), summary["means"],
                             atol=5 * summary["means_sd"].max() / 140)
  np.testing.assert_allclose(means.std(0), summary["means_sd"], rtol=0.05)
  if model.weight_prior == "dirichlet":
    weights = draws["weights"].numpy()
  else:
    sticks = draws["sticks"].numpy()                              # [n, K-1]
    v = np.concatenate([sticks, np.ones_like(sticks[:, :1])], -1)
    rest = np.cumprod(np.concatenate(
        [np.ones_like(v[:, :1]), 1 - v[:, :-1]], -1), -1)
    weights = v * rest
  np.testing.assert_allclose(weights.mean(0), summary["weights"], atol=0.01)
  np.testing.assert_allclose(weights.std(0), summary["weights_sd"],
                             atol=0.005)
  precisions = draws["precisions"].numpy()
  got = precisions.mean(0)
  # Shared precisions: one per component (spherical) or one matrix (tied).
  got = {"spherical": got[:, None], "tied": got[None]}.get(
      model.covariance_type, got)
  want = model.posterior_mean()["precisions"]
  np.testing.assert_allclose(np.broadcast_to(got, want.shape), want, rtol=0.03,
                             atol=0.01 * np.abs(got).max())
  if precisions.ndim == 3 and model.covariance_type == "diag":
    # per feature: sigma = tau^-1/2
    np.testing.assert_allclose((precisions**-0.5).mean(0), summary["stddevs"],
                               rtol=0.01)


def test_prior_distribution_matches_the_prior():
  model = tfgmm.BayesianGMM(3, 2, seed=0, dtype="float64", standardize=False,
                            weight_concentration=2.0, mean_loc=[1.0, -1.0],
                            mean_precision=0.5, precision_concentration=3.0,
                            precision_rate=2.0)
  prior = model.prior_distribution()
  draws = prior.sample(50000, seed=7)
  np.testing.assert_allclose(draws["weights"].numpy().mean(0), 1 / 3,
                             atol=0.01)
  np.testing.assert_allclose(draws["precisions"].numpy().mean(0), 1.5,
                             rtol=0.02)      # a / b
  means = draws["means"].numpy()
  np.testing.assert_allclose(means.mean(0), [[1.0, -1.0]] * 3, atol=0.05)
  # Var(mu) = E[1 / (beta tau)] = b / (beta (a - 1)) = 2
  np.testing.assert_allclose(means.var(0), 2.0, rtol=0.05)
  assert np.isfinite(prior.log_prob(draws).numpy()).all()


def test_dp_prior_sticks():
  model = tfgmm.BayesianGMM(4, 2, weight_prior="dirichlet_process",
                            weight_concentration=2.0, dtype="float64")
  sticks = model.prior_distribution().sample(50000, seed=3)["sticks"]
  assert sticks.shape == (50000, 3)
  np.testing.assert_allclose(sticks.numpy().mean(0), 1 / 3, atol=0.01)


def test_full_posterior_means_are_upper_triangular_scaled():
  x = _data(3)
  model = tfgmm.fit(x, 2, seed=0, dtype="float64", n_init=1,
                    covariance_type="full")
  posterior = model.posterior_distribution()
  draw = posterior.sample(seed=2)
  means = posterior.model["means"](draw["precisions"])
  # Cov(mu | Lambda) = (beta Lambda)^-1.
  beta = model.posterior().mean_precision.numpy()
  want = np.linalg.inv(beta[:, None, None] * draw["precisions"].numpy())
  np.testing.assert_allclose(
      means.distribution.covariance().numpy(), want, rtol=1e-8)


def test_unfitted_model_raises():
  with pytest.raises(ValueError, match="`predictive_distribution` needs a"):
    tfgmm.BayesianGMM(2, 2).predictive_distribution()
  with pytest.raises(ValueError, match="`posterior_distribution` needs a"):
    tfgmm.BayesianGMM(2, 2).posterior_distribution()


def test_map_mixture_distribution():
  x = _data()
  fit = tfgmm.fit(x, 3, method="map", seed=0, dtype="float64")
  distribution = fit.distribution()
  assert isinstance(distribution, tfd.MixtureSameFamily)
  np.testing.assert_allclose(distribution.log_prob(x).numpy(),
                             fit.log_prob(x).numpy(), atol=1e-10)
  want = fit.weights @ fit.means
  np.testing.assert_allclose(distribution.mean().numpy(), want, rtol=1e-10)
  assert distribution.covariance().shape == (2, 2)
