"""The hand-written KLs and densities agree with TensorFlow Probability's.

Closed-form KLs against `tfd.kl_divergence`; each family's whole KL(q || p)
against a Monte Carlo estimate E_q[log q - log p] from the TFP joint
distributions of `tfgmm.distributions` (which the predictive-density tests
tie to the model).
"""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

import tfgmm
from tfgmm import distributions
from tfgmm._engine import weight_priors
from tfgmm.families import diag
from tfgmm.families import diag_independent
from tfgmm.families import full
from tests.helpers import mixture_data

tfd = tfp.distributions
F64 = tf.float64


def _positive(rng, *shape):
  return tf.constant(rng.uniform(0.3, 4.0, shape), F64)


def test_closed_form_kls_match_tfp(rng):
  c, c0 = _positive(rng, 3, 5), _positive(rng, 3, 5)
  np.testing.assert_allclose(
      weight_priors.dirichlet_kl(c, c0),
      tfd.kl_divergence(tfd.Dirichlet(c), tfd.Dirichlet(c0)), rtol=1e-10)
  a, b, a0, b0 = [_positive(rng, 4, 2) for _ in range(4)]
  np.testing.assert_allclose(
      weight_priors.beta_kl(a, b, a0, b0),
      tfd.kl_divergence(tfd.Beta(a, b), tfd.Beta(a0, b0)), rtol=1e-10)
  np.testing.assert_allclose(
      diag.gamma_kl(a, b, a0, b0),
      tfd.kl_divergence(tfd.Gamma(a, rate=b), tfd.Gamma(a0, rate=b0)),
      rtol=1e-10)
  m, m0 = (tf.constant(rng.normal(size=(4, 2)), F64) for _ in range(2))
  np.testing.assert_allclose(
      diag_independent.normal_kl(m, a, m0, a0),
      tfd.kl_divergence(tfd.Normal(m, tf.math.rsqrt(a)),
                        tfd.Normal(m0, tf.math.rsqrt(a0))), rtol=1e-10)


def test_wishart_kl_matches_monte_carlo(rng):
  d = 3
  dof = tf.constant([6.0, 9.0], F64)
  prior_dof = tf.constant(4.0, F64)
  tril = tf.linalg.cholesky(tf.constant(
      [np.eye(d) + 0.3, 2.0 * np.eye(d)], F64))                    # W^-1
  prior_tril = tf.linalg.cholesky(tf.constant(np.eye(d) * 1.5, F64))
  eye = tf.eye(d, dtype=F64)

  def wishart(nu, inverse_tril):
    w = tf.linalg.cholesky_solve(inverse_tril, tf.broadcast_to(
        eye, tf.shape(inverse_tril)))
    return tfd.WishartTriL(nu, tf.linalg.cholesky(w))

  q, p = wishart(dof, tril), wishart(prior_dof, prior_tril)
  draws = q.sample(20000, seed=(1, 2))
  ratio = (q.log_prob(draws) - p.log_prob(draws)).numpy()         # [n, K]
  se = ratio.std(0) / np.sqrt(len(ratio))
  got = full.wishart_kl(dof, tril, prior_dof, prior_tril).numpy()
  assert np.all(np.abs(got - ratio.mean(0)) < 4 * se + 1e-3), (got, ratio)


KINDS = {
    "diag": dict(covariance_type="diag"),
    "diag-dp": dict(covariance_type="diag", weight_prior="dirichlet_process"),
    "independent": dict(covariance_type="diag", mean_prior="independent"),
    "full": dict(covariance_type="full"),
    "spherical": dict(covariance_type="spherical"),
    "tied-dp": dict(covariance_type="tied",
                    weight_prior="dirichlet_process"),
}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_family_kl_matches_monte_carlo(kind):
  """KL(q || p) of every family equals E_q[log q(theta) - log p(theta)]
  over the weights, precisions and means, with TFP's densities."""
  x = mixture_data(np.random.default_rng(0), 60, 2)
  model = tfgmm.fit(x, 3, seed=0, dtype="float64", n_init=1, max_epochs=5,
                    **KINDS[kind])
  family, prior = model.family, model.prior()
  loc, scale = tf.zeros([2], F64), tf.ones([2], F64)     # model units
  q = distributions.joint(family, model.posterior(), prior,
                          model.weight_prior, loc, scale)
  p = distributions.joint(
      family, distributions.prior_as_posterior(
          family, prior, model.weight_prior, 3, 2),
      prior, model.weight_prior, loc, scale)
  draws = q.sample(20000, seed=(3, 4))
  ratio = (q.log_prob(draws) - p.log_prob(draws)).numpy()         # [n]
  se = ratio.std() / np.sqrt(len(ratio))
  want = float(family.kl_divergence(model.posterior(), prior,
                                    model.weight_prior))
  assert abs(ratio.mean() - want) < 4 * se + 1e-3, (want, ratio.mean(), se)
