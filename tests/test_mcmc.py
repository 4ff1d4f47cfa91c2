"""`tfgmm.mcmc`: the collapsed-model samplers against closed forms and CAVI.

The target's Jacobians are checked three ways: against autodiff
determinants, by integrating the unconstrained prior densities to one, and
by sampling the prior with no data (the draws, transformed back, must have
the prior's moments: the PyMC3 notebook's back-transform pitfall would fail
this). Then a K = 1 problem, whose exact posterior is the model's CAVI
posterior, and a separated two-component problem against CAVI, with NUTS
against random-walk Metropolis.
"""

import numpy as np
import pytest
import scipy.special
import scipy.stats
import tensorflow as tf
import tensorflow_probability as tfp

import tfgmm
from tfgmm import mcmc

# The prior of the prior-recovery tests (standardised units), chosen so that
# no two moments coincide: a0 != b0, m0 != 0, beta0 != 1.
PRIOR = dict(weight_concentration=2.0, mean_loc=0.3, mean_precision=0.5,
             precision_concentration=4.0, precision_rate=3.0)


def two_clusters(n=200, seed=0):
  """Two separated 2-D clusters (weights 0.3 / 0.7), far from the origin."""
  rng = np.random.default_rng(seed)
  first = rng.random(n) < 0.3
  x = np.where(first[:, None], [-3.0, -2.0], [3.0, 2.5])
  x = x + rng.standard_normal((n, 2))
  return 10.0 + 2.0 * x, first


def within_mc_error(estimate, exact, mcse, sigmas=4.0):
  """|estimate - exact| <= sigmas * MCSE, elementwise, with a useful message."""
  estimate, exact, mcse = (np.asarray(a, np.float64)
                           for a in (estimate, exact, mcse))
  error = np.abs(estimate - exact) / mcse
  assert np.all(error <= sigmas), (
      f"{np.max(error):.2f} MCSE off: estimate={estimate}, exact={exact}, "
      f"mcse={mcse}")


def check_sd(draws, exact_mean, exact_sd, sigmas=4.0):
  """The draws' sd [S, C, ...] is exact_sd within `sigmas` Monte Carlo
  errors: the variance is a mean of squared deviations, whose MCSE is
  sd(dev^2) / sqrt(ESS(dev^2)); the delta method divides it by 2 sd."""
  deviation2 = np.square(draws - exact_mean)                      # [S, C, ...]
  ess = tfp.mcmc.effective_sample_size(
      tf.constant(deviation2), filter_beyond_positive_pairs=True,
      cross_chain_dims=1).numpy()
  flat = deviation2.reshape((-1,) + deviation2.shape[2:])
  sd = np.sqrt(flat.mean(0))
  mcse = flat.std(0) / np.sqrt(ess) / (2 * sd)
  within_mc_error(sd, exact_sd, mcse, sigmas)


# ------------------------------------------------------ the target, no MCMC


@pytest.mark.parametrize("k", [2, 3, 5])
@pytest.mark.parametrize("weight_prior", ["dirichlet", "dirichlet_process"])
def test_weight_prior_is_the_pushforward_with_the_autodiff_jacobian(
    rng, k, weight_prior):
  concentration = 0.7
  eta = tf.constant(rng.normal(0.0, 2.0, (6, k - 1)))             # [6, K-1]
  with tf.GradientTape(persistent=True) as tape:
    tape.watch(eta)
    log_pi = mcmc.log_weights(eta, weight_prior, k)                # [6, K]
    if weight_prior == "dirichlet":
      free = tf.exp(log_pi[:, :-1])                                # pi_{1:K-1}
    else:
      free = tf.sigmoid(eta)                                       # v_{1:K-1}
  jacobian = tape.batch_jacobian(free, eta).numpy()          # [6, K-1, K-1]
  log_det = np.linalg.slogdet(jacobian)[1]
  pi = np.exp(log_pi.numpy())
  np.testing.assert_allclose(pi.sum(-1), 1.0, rtol=1e-12)
  if weight_prior == "dirichlet":
    log_density = np.array([scipy.stats.dirichlet.logpdf(
        p / p.sum(), np.full(k, concentration)) for p in pi])
  else:
    v = free.numpy()
    log_density = scipy.stats.beta.logpdf(v, 1.0, concentration).sum(-1)
    # The sticks give the weights: pi_k = v_k prod_{j<k} (1 - v_j).
    sticks = np.concatenate([v, np.ones((6, 1))], -1)
    rest = np.cumprod(np.concatenate([np.ones((6, 1)), 1 - v], -1), -1)
    np.testing.assert_allclose(pi, sticks * rest[:, :k], rtol=1e-10)
  np.testing.assert_allclose(
      mcmc.weight_log_prior(eta, tf.constant(concentration, tf.float64),
                            weight_prior),
      log_density + log_det, rtol=1e-10)


@pytest.mark.parametrize("weight_prior,concentration", [
    ("dirichlet", 0.5), ("dirichlet", 3.0), ("dirichlet_process", 0.4),
    ("dirichlet_process", 2.0)])
def test_unconstrained_weight_density_integrates_to_one(weight_prior,
                                                        concentration):
  """K = 2: one free coordinate; a density of it must integrate to 1."""
  eta = np.linspace(-80.0, 80.0, 160001)
  log_p = mcmc.weight_log_prior(tf.constant(eta[:, None]),
                                tf.constant(concentration, tf.float64),
                                weight_prior).numpy()
  np.testing.assert_allclose(np.trapezoid(np.exp(log_p), eta), 1.0,
                             rtol=1e-6)


@pytest.mark.parametrize("mean_prior", ["conjugate", "independent"])
def test_unconstrained_component_density_matches_scipy_and_integrates(
    mean_prior):
  m0, lam0, a0, b0 = 0.3, 0.5, 4.0, 3.0
  values = (2.0, [m0], lam0, a0, [b0])
  prior = mcmc._Prior(*[tf.constant(v, tf.float64)  # pylint: disable=protected-access
                        for v in values])
  mu = np.linspace(-12.0, 12.0, 801)
  s = np.linspace(-8.0, 4.0, 801)
  grid_mu, grid_s = np.meshgrid(mu, s, indexing="ij")             # [M, S]
  log_p = mcmc.component_log_prior(
      tf.constant(grid_mu.reshape(-1, 1, 1)),
      tf.constant(grid_s.reshape(-1, 1, 1)), prior,
      mean_prior).numpy().reshape(grid_mu.shape)
  tau = np.exp(grid_s)
  sd = 1 / np.sqrt(lam0 * (tau if mean_prior == "conjugate" else 1.0))
  expected = (scipy.stats.gamma.logpdf(tau, a0, scale=1 / b0) + grid_s
              + scipy.stats.norm.logpdf(grid_mu, m0, sd))
  np.testing.assert_allclose(log_p, expected, rtol=1e-10, atol=1e-10)
  total = np.trapezoid(np.trapezoid(np.exp(log_p), s, axis=1), mu)
  np.testing.assert_allclose(total, 1.0, rtol=1e-4)


def test_log_prob_fn_is_the_collapsed_log_joint_with_missing_and_weights(rng):
  """The whole target against scipy: priors, Jacobians, standardisation,
  missing entries (their terms drop out) and sample weights."""
  x, _ = two_clusters(60, seed=1)
  x[3, 0] = x[10, 1] = np.nan
  weights = rng.uniform(0.5, 2.0, x.shape[0])
  model = tfgmm.fit(x, 2, seed=0, dtype="float64", missing="marginalize",
                    **PRIOR)
  eta = rng.normal(0.0, 1.0, (3, 1))                               # [C, 1]
  mu = rng.normal(0.0, 1.0, (3, 2, 2))                             # [C, K, D]
  s = rng.normal(0.0, 0.5, (3, 2, 2))                              # [C, K, D]
  target = mcmc.log_prob_fn(model, x, sample_weight=weights)
  got = target(*[tf.constant(t) for t in (eta, mu, s)]).numpy()   # [C]
  loc, scale = model.feature_loc.numpy(), model.feature_scale.numpy()
  z = (x - loc) / scale
  for c in range(3):
    pi = scipy.special.softmax([eta[c, 0], 0.0])
    tau = np.exp(s[c])
    log_prior = (scipy.stats.dirichlet.logpdf(pi, [2.0, 2.0]) + np.log(pi).sum()
                 + np.sum(scipy.stats.gamma.logpdf(tau, 4.0, scale=1 / 3.0)
                          + s[c] + scipy.stats.norm.logpdf(
                              mu[c], 0.3, 1 / np.sqrt(0.5 * tau))))
    terms = scipy.stats.norm.logpdf(z[:, None, :], mu[c], 1 / np.sqrt(tau))
    log_lik = scipy.special.logsumexp(
        np.log(pi) + np.nansum(terms, -1), axis=-1)                # [N]
    np.testing.assert_allclose(got[c], log_prior + weights @ log_lik,
                               rtol=1e-10)


# ------------------------------------------------------ prior recovery


def prior_moments(model, weight_prior, mean_prior):
  """Exact prior means and standard deviations in data units."""
  p = PRIOR
  k = model.n_components
  loc, scale = model.feature_loc.numpy(), model.feature_scale.numpy()
  g = p["weight_concentration"]
  if weight_prior == "dirichlet":
    w_mean = np.full(k, 1 / k)
    w_var = w_mean * (1 - w_mean) / (k * g + 1)
  else:  # v ~ Beta(1, g): E[v] = 1/(1+g), E[v^2] = 2/((1+g)(2+g)).
    ev, ev2 = 1 / (1 + g), 2 / ((1 + g) * (2 + g))
    erest, erest2 = g / (1 + g), g / (2 + g)
    powers = np.arange(k)
    w_mean = np.append(np.full(k - 1, ev), 1.0) * erest**powers
    w_var = (np.append(np.full(k - 1, ev2), 1.0) * erest2**powers
             - w_mean**2)
  a0, b0, m0 = p["precision_concentration"], p["precision_rate"], p["mean_loc"]
  mean_var = (b0 / (p["mean_precision"] * (a0 - 1)) if mean_prior == "conjugate"
              else 1 / p["mean_precision"])
  e_sigma = np.sqrt(b0) * np.exp(scipy.special.gammaln(a0 - 0.5)
                                 - scipy.special.gammaln(a0))
  shape = (k, model.n_features)
  return {
      "weights": (w_mean, np.sqrt(w_var)),
      "means": (np.broadcast_to(loc + scale * m0, shape),
                np.broadcast_to(scale * np.sqrt(mean_var), shape)),
      "precisions": (np.broadcast_to(a0 / b0 / scale**2, shape),
                     np.broadcast_to(np.sqrt(a0) / b0 / scale**2, shape)),
      "stddevs": (np.broadcast_to(scale * e_sigma, shape),
                  np.broadcast_to(scale * np.sqrt(b0 / (a0 - 1) - e_sigma**2),
                                  shape)),
  }


@pytest.mark.parametrize("kernel,mean_prior,weight_prior,num_results", [
    ("nuts", "conjugate", "dirichlet", 600),
    ("nuts", "independent", "dirichlet_process", 600),
    ("rwm", "conjugate", "dirichlet", 10000),
])
def test_without_data_the_draws_have_the_prior_moments(
    kernel, mean_prior, weight_prior, num_results):
  """The Jacobian check: the chain targets the prior of theta; transformed
  back to (pi, mu, tau) in data units, its moments are the prior's."""
  x, _ = two_clusters(100, seed=2)
  model = tfgmm.fit(x, 3, seed=0, mean_prior=mean_prior,
                    weight_prior=weight_prior, **PRIOR)
  result = mcmc.sample(model, None, num_results=num_results,
                       num_burnin_steps=300, kernel=kernel, seed=1)
  summary = result.summary()
  exact = prior_moments(model, weight_prior, mean_prior)
  for name, (mean, sd) in exact.items():
    stats = summary[name]
    assert np.all(stats["r_hat"] < 1.05), (name, stats["r_hat"])
    within_mc_error(stats["mean"], mean, stats["mcse"])
    check_sd(getattr(result, name), mean, sd)


# ------------------------------------------------------ K = 1: exact answer


def test_one_component_posterior_matches_the_exact_normal_gamma():
  """With K = 1 the CAVI posterior is the exact posterior (r = 1)."""
  rng = np.random.default_rng(3)
  x = 5.0 + rng.normal(0.0, [2.0, 0.5], (40, 2))
  model = tfgmm.fit(x, 1, seed=0, dtype="float64")
  exact = model.posterior_summary()
  result = mcmc.sample(model, x, num_results=500, num_burnin_steps=300,
                       seed=2)
  summary = result.summary()
  np.testing.assert_array_equal(result.weights, 1.0)
  assert np.all(np.isnan(summary["weights"]["r_hat"]))
  within_mc_error(summary["means"]["mean"], exact["means"],
                  summary["means"]["mcse"])
  within_mc_error(summary["precisions"]["mean"],
                  model.posterior_mean()["precisions"],
                  summary["precisions"]["mcse"])
  within_mc_error(summary["stddevs"]["mean"], exact["stddevs"],
                  summary["stddevs"]["mcse"])
  check_sd(result.means, exact["means"], exact["means_sd"])
  check_sd(result.stddevs, exact["stddevs"], exact["stddevs_sd"])


# ------------------------------------------------------ two components


@pytest.fixture(scope="module")
def separated():
  x, first = two_clusters()
  model = tfgmm.fit(x, 2, seed=0)
  nuts = mcmc.sample(model, x, num_results=500, num_burnin_steps=300, seed=0)
  return x, first, model, nuts


def test_nuts_agrees_with_cavi_on_separated_clusters(separated):
  """Separated clusters: the responsibilities are ~0/1, so mean-field CAVI
  is close to exact; the posterior means agree within a tenth of a
  posterior standard deviation plus 4 MCSE."""
  _, _, model, result = separated
  summary = result.summary()
  cavi = model.posterior_mean()
  for name in ("weights", "means", "precisions"):
    stats = summary[name]
    tolerance = 0.1 * stats["sd"] + 4 * stats["mcse"]
    assert np.all(np.abs(stats["mean"] - cavi[name]) <= tolerance), (
        name, stats["mean"], cavi[name], tolerance)
    assert np.all(stats["r_hat"] < 1.05), (name, stats["r_hat"])
  assert np.all(result.num_divergences == 0)
  assert np.all((result.acceptance_rate > 0.6)
                & (result.acceptance_rate < 0.95))


def test_result_shapes_and_summary_table(separated):
  _, _, _, result = separated
  s, c, k, d = 500, 4, 2, 2
  assert (result.num_draws, result.num_chains) == (s, c)
  assert result.weights.shape == (s, c, k)
  for name in ("means", "precisions", "stddevs"):
    assert getattr(result, name).shape == (s, c, k, d)
  np.testing.assert_allclose(result.weights.sum(-1), 1.0, rtol=1e-12)
  np.testing.assert_allclose(result.stddevs, result.precisions**-0.5,
                             rtol=1e-12)
  assert result.state.weight_logits.shape == (s, c, k - 1)
  assert result.state.means.shape == result.state.log_precisions.shape
  assert result.target_log_prob.shape == (s, c)
  # The traced target is log_prob_fn at the reported unconstrained state.
  x, _, model, _ = separated
  state = [tf.constant(part[::100].reshape((-1,) + part.shape[2:]))
           for part in result.state]
  np.testing.assert_allclose(
      mcmc.log_prob_fn(model, x)(*state).numpy(),
      result.target_log_prob[::100].reshape(-1), rtol=1e-9)
  assert result.step_size.shape == result.acceptance_rate.shape == (c,)
  assert result.num_leapfrog_steps.shape == (s, c)
  summary = result.summary()
  assert set(summary) == set(mcmc.PARAMETERS)
  for name, stats in summary.items():
    assert set(stats) == set(mcmc.SUMMARY_STATISTICS)
    for value in stats.values():
      assert value.shape == getattr(result, name).shape[2:]
    assert np.all(stats["3%"] < stats["mean"])
    assert np.all(stats["mean"] < stats["97%"])
  text = result.summary_text()
  assert text.splitlines()[0].split() == ["parameter",
                                          *mcmc.SUMMARY_STATISTICS]
  assert len(text.splitlines()) == 1 + k + 3 * k * d
  assert "means[1, 0]" in text


def test_assignment_probabilities_average_over_draws(separated):
  x, first, model, result = separated
  probabilities = result.assignment_probabilities(x)              # [N, K]
  assert probabilities.shape == (x.shape[0], 2)
  np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-12)
  cavi = model.responsibilities(x).numpy()
  clear = cavi.max(-1) > 0.99
  assert clear.mean() > 0.9
  np.testing.assert_allclose(probabilities[clear], cavi[clear], atol=0.01)
  # The first cluster is the smaller one: component 1 (decreasing weight).
  np.testing.assert_array_equal(probabilities.argmax(-1) == 1, first)
  # One chain's average is close to all chains' (same labelling).
  np.testing.assert_allclose(result.assignment_probabilities(x, chains=[2]),
                             probabilities, atol=0.02)


def test_random_walk_metropolis_mixes_worse_than_nuts(separated):
  """The PyMC3 notebook's comparison: same problem, draws and chains."""
  x, _, model, nuts = separated
  rwm = mcmc.sample(model, x, num_results=500, num_burnin_steps=300,
                    kernel="rwm", seed=0)
  assert np.all((rwm.acceptance_rate > 0.15) & (rwm.acceptance_rate < 0.35))
  assert rwm.num_leapfrog_steps is None and rwm.num_divergences is None
  ess = {name: np.concatenate([np.ravel(r.summary()[p]["ess"])
                               for p in ("weights", "means", "precisions")])
         for name, r in (("nuts", nuts), ("rwm", rwm))}
  assert np.min(ess["nuts"]) > 3 * np.max(ess["rwm"]), ess
  # Both target the same posterior: their means agree within MC error.
  for name in ("weights", "means", "precisions"):
    a, b = nuts.summary()[name], rwm.summary()[name]
    within_mc_error(a["mean"], b["mean"], np.hypot(a["mcse"], b["mcse"]))


def test_hmc_agrees_with_nuts(separated):
  x, _, model, nuts = separated
  hmc = mcmc.sample(model, x, num_results=300, num_burnin_steps=300,
                    kernel="hmc", seed=1)
  np.testing.assert_array_equal(hmc.num_leapfrog_steps, 4)
  for name in ("weights", "means", "precisions"):
    a, b = nuts.summary()[name], hmc.summary()[name]
    assert np.all(b["r_hat"] < 1.05), (name, b["r_hat"])
    within_mc_error(a["mean"], b["mean"], np.hypot(a["mcse"], b["mcse"]))


# ------------------------------------------------------ errors


def test_unsupported_models_raise_clear_errors(separated):
  x, _, _, _ = separated
  full = tfgmm.BayesianGMM(2, 2, covariance_type="full")
  with pytest.raises(NotImplementedError, match="covariance_type='diag'"):
    mcmc.sample(full, x)
  with pytest.raises(TypeError, match="tfgmm.BayesianGMM"):
    mcmc.sample(object(), x)
  with pytest.raises(ValueError, match="needs a fitted model"):
    mcmc.sample(tfgmm.BayesianGMM(2, 2), x)


@pytest.mark.parametrize("kwargs,error,match", [
    (dict(kernel="gibbs"), ValueError, "`kernel`"),
    (dict(num_results=0), ValueError, "`num_results` >= 1"),
    (dict(num_results=2.5), TypeError, "`num_results`"),
    (dict(num_chains=0), ValueError, "`num_chains` >= 1"),
    (dict(num_burnin_steps=-1), ValueError, "`num_burnin_steps` >= 0"),
    (dict(step_size=-0.1), ValueError, "`step_size` > 0"),
    (dict(target_accept_prob=1.0), ValueError, "`target_accept_prob`"),
    (dict(init="map"), ValueError, "`init`"),
    (dict(seed=-1), ValueError, "`seed`"),
    (dict(max_tree_depth=0), ValueError, "`max_tree_depth`"),
    (dict(sample_weight=np.ones(3)), ValueError, "`sample_weight`"),
])
def test_bad_arguments_raise_before_sampling(separated, kwargs, error, match):
  x, _, model, _ = separated
  with pytest.raises(error, match=match):
    mcmc.sample(model, x, **kwargs)


def test_bad_data_raise_clear_errors(separated):
  x, _, model, result = separated
  with pytest.raises(ValueError, match="2 features"):
    mcmc.sample(model, x[:, :1])
  bad = x.copy()
  bad[0, 0] = np.nan
  with pytest.raises(ValueError, match="missing='marginalize'"):
    mcmc.sample(model, bad)
  with pytest.raises(ValueError, match="needs data"):
    mcmc.sample(model, None, sample_weight=np.ones(3))
  with pytest.raises(ValueError, match="2 features"):
    result.assignment_probabilities(x[:, :1])
  with pytest.raises(ValueError, match="`chains`"):
    result.assignment_probabilities(x, chains=[4])
