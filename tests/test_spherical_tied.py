"""The spherical and tied covariance families: closed forms, the bound, the
predictive, persistence, and the faces (Keras, SavedModel, scikit-learn).

Both families implement `tfgmm.families.base.Family` as one module each; the
model and the engine never name them. scikit-learn's spherical and tied
updates are heuristic (nu0 + N_k, nu0 + N / K), so its fits are compared
only at convergence on well-separated data.
"""

import textwrap

import keras
import numpy as np
import pytest
import scipy.integrate
import scipy.special
import scipy.stats
import tensorflow as tf
from sklearn import mixture
from sklearn.metrics import adjusted_rand_score

import tfgmm
from tfgmm._engine import loops
from tfgmm._engine import weight_priors
from tfgmm import families
from tfgmm.families import spherical
from tfgmm.families import tied
from tfgmm.sklearn import BayesianGaussianMixture
from tests.helpers import run_client

TYPES = ("spherical", "tied")
F64 = tf.float64


@pytest.fixture(name="clusters", scope="module")
def clusters_fixture():
  """Three well-separated 2-D clusters of 100 rows (unit variance)."""
  rng = np.random.default_rng(3)
  centres = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]])
  labels = np.repeat(np.arange(3), 100)
  x = centres[labels] + rng.standard_normal((300, 2))
  return x, labels


@pytest.fixture(name="fitted", scope="module")
def fitted_fixture(clusters):
  """A CAVI fit of each type on the clusters (float32, standardised)."""
  x, _ = clusters
  return {t: tfgmm.fit(x, 3, seed=0, n_init=2, covariance_type=t)
          for t in TYPES}


def make_prior(covariance_type, d, weight_concentration=0.7):
  """A prior of each family with non-trivial values, float64."""
  rng = np.random.default_rng(11)
  m0 = rng.normal(0.0, 0.5, d)
  if covariance_type == "spherical":
    return spherical.SphericalPosterior(
        tf.constant(weight_concentration, F64), tf.constant(m0, F64),
        tf.constant(0.6, F64), tf.constant(1.7, F64), tf.constant(0.9, F64))
  w0_inv = np.eye(d) * 0.8 + 0.1
  return tied.TiedPosterior(
      tf.constant(weight_concentration, F64), tf.constant(m0, F64),
      tf.constant(0.6, F64), tf.constant(d + 1.5, F64),
      tf.constant(np.linalg.cholesky(w0_inv), F64))


def mixture_rows(rng, n, d, k=3):
  means = rng.normal(0.0, 3.0, (k, d))
  return means[rng.integers(k, size=n)] + rng.standard_normal((n, d))


def closed_form(covariance_type, x, r, prior):
  """The conjugate posterior of (x, r) in numpy, from the textbook formulas.

  Spherical: a_k = a0 + N_k D / 2, b_k = b0 + 0.5 sum_d [S_kd + beta0 N_k /
  beta_k (xbar_kd - m0_d)^2]. Tied: nu = nu0 + N, W^-1 = W0^-1 + sum_k
  [S_k + beta0 N_k / beta_k (xbar_k - m0)(xbar_k - m0)^T].
  """
  p = [np.asarray(t) for t in prior]
  alpha0, m0, beta0 = p[0], p[1], p[2]
  d = x.shape[1]
  counts = r.sum(0)                                               # [K]
  xbar = r.T @ x / counts[:, None]                                # [K, D]
  centred = x[:, None, :] - xbar[None]                            # [N, K, D]
  beta = beta0 + counts
  m = (beta0 * m0 + counts[:, None] * xbar) / beta[:, None]
  shrink = beta0 * counts / beta                                  # [K]
  gap = xbar - m0                                                 # [K, D]
  if covariance_type == "spherical":
    a0, b0 = p[3], p[4]
    scatter = np.einsum("nk,nkd->k", r, centred**2)
    return dict(alpha=alpha0 + counts, beta=beta, m=m,
                a=a0 + 0.5 * counts * d,
                b=b0 + 0.5 * (scatter + shrink * (gap**2).sum(1)))
  nu0, tril0 = p[3], p[4]
  scatter = np.einsum("nk,nkd,nke->de", r, centred, centred)
  w_inv = (tril0 @ tril0.T + scatter
           + np.einsum("k,kd,ke->de", shrink, gap, gap))
  return dict(alpha=alpha0 + counts, beta=beta, m=m, nu=nu0 + counts.sum(),
              w_inv=w_inv)


def as_closed_form(covariance_type, q):
  """The same quantities read from a posterior record."""
  q = [np.asarray(t) for t in q]
  out = dict(alpha=q[0], m=q[1], beta=q[2])
  if covariance_type == "spherical":
    out.update(a=q[3], b=q[4])
  else:
    out.update(nu=q[3], w_inv=q[4] @ q[4].T)
  return out


# --------------------------------------------------------------- closed forms


@pytest.mark.parametrize("covariance_type", TYPES)
def test_one_cavi_step_is_the_conjugate_update(rng, covariance_type):
  family = families.get(covariance_type)
  x = mixture_rows(rng, 60, 3)
  r = rng.dirichlet(np.ones(3), 60)                               # [N, K]
  prior = make_prior(covariance_type, 3)
  stats = family.sufficient_statistics(tf.constant(x), tf.constant(r))
  q = family.posterior_from_statistics(stats, prior)
  expected = closed_form(covariance_type, x, r, prior)
  for name, value in as_closed_form(covariance_type, q).items():
    np.testing.assert_allclose(value, expected[name], rtol=1e-12,
                               err_msg=name)
  # The natural step with rho = 1 from any q is the same step, and the
  # statistics the posterior came from are recovered from it.
  other = family.posterior_from_statistics(
      family.sufficient_statistics(tf.constant(x), tf.constant(
          rng.dirichlet(np.ones(3), 60))), prior)
  stepped = family.natural_update(other, stats, prior, 1.0, 1.0)
  for a, b in zip(stepped, q):
    np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-12)
  for a, b in zip(family.statistics_from_posterior(q, prior), stats):
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)
  # Under the stick-breaking prior the weight field holds the counts.
  dp = family.posterior_from_statistics(stats, prior, 1.0,
                                        "dirichlet_process")
  np.testing.assert_allclose(dp.weight_concentration, r.sum(0), rtol=1e-12)
  for a, b in zip(dp[1:], q[1:]):
    np.testing.assert_allclose(a, b, rtol=1e-12)


def test_tied_statistics_of_restarts_and_weights_are_the_sums(rng):
  """The pooled second moments are sum_k sum_n w_n r_nk x_n x_n^T for any
  r (rows need not sum to one), per restart, from float32 rows; and the
  E-step's expanded Mahalanobis distances are the differences' squares."""
  x = rng.normal(size=(50, 3)) * 3.0 + 5.0
  r = rng.uniform(size=(2, 50, 4))                                # [R, N, K]
  w = rng.uniform(0.5, 2.0, 50)
  stats = tied.sufficient_statistics(tf.constant(x, tf.float32),
                                     tf.constant(r, tf.float32),
                                     tf.constant(w, tf.float32))
  x32 = x.astype(np.float32).astype(np.float64)
  rw = r * w[:, None]
  np.testing.assert_allclose(stats.counts, rw.sum(1), rtol=1e-6)
  np.testing.assert_allclose(stats.sum_x,
                             np.einsum("rnk,nd->rkd", rw, x32), rtol=1e-5)
  np.testing.assert_allclose(
      stats.sum_xx, np.einsum("rnk,nd,ne->rde", rw, x32, x32), rtol=1e-6)
  # Tight clusters far from the origin, float32 rows: the pooled scatter
  # the global step takes from the statistics, S2 - sum_k S1_k S1_k^T / N_k,
  # is the rows' own (no eps N |xbar|^2 cancellation error).
  labels = np.arange(4000) % 4
  far = (rng.normal(size=(4000, 3)) * 0.01
         + 300.0 * rng.normal(size=(4, 3))[labels]).astype(np.float32)
  stats = tied.sufficient_statistics(tf.constant(far),
                                     tf.constant(np.eye(4)[labels],
                                                 tf.float32))
  scatter = stats.sum_xx.numpy() - np.einsum(
      "kd,ke,k->de", stats.sum_x, stats.sum_x, 1.0 / stats.counts.numpy())
  far = far.astype(np.float64)
  centred = far - np.stack([far[labels == k].mean(0) for k in range(4)]
                           )[labels]
  np.testing.assert_allclose(scatter, centred.T @ centred, rtol=1e-6,
                             atol=1e-6)
  loc = rng.normal(size=(4, 3)) * 3.0 + 5.0
  scale_tril = np.linalg.cholesky(np.cov(x.T) + np.eye(3))
  maha = tied._mahalanobis(  # pylint: disable=protected-access
      tf.constant(x), tf.constant(loc), tf.constant(scale_tril)).numpy()
  diff = x[:, None] - loc                                         # [N, K, D]
  expected = np.einsum("nkd,de,nke->nk", diff,
                       np.linalg.inv(scale_tril @ scale_tril.T), diff)
  np.testing.assert_allclose(maha, expected, rtol=1e-10)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_natural_step_interpolates_natural_parameters(rng, covariance_type):
  """eta_new = (1 - rho) eta + rho eta_hat, in the families' natural
  parameters; the step's scale s counts a batch's statistics s times."""
  family = families.get(covariance_type)
  x = mixture_rows(rng, 40, 2)
  prior = make_prior(covariance_type, 2)

  def stats_of(rows, seed):
    r = np.random.default_rng(seed).dirichlet(np.ones(3), rows.shape[0])
    return family.sufficient_statistics(tf.constant(rows), tf.constant(r))

  def natural(q):
    q = [np.asarray(t) for t in q]
    alpha, m, beta = q[0], q[1], q[2]
    if covariance_type == "spherical":
      last = [q[3], q[4] + 0.5 * beta * (m**2).sum(1)]
    else:
      last = [q[3], q[4] @ q[4].T + np.einsum("k,kd,ke->de", beta, m, m)]
    return [alpha, beta, beta[:, None] * m] + last

  old = family.posterior_from_statistics(stats_of(x, 1), prior)
  batch = stats_of(x[:10], 2)
  target = family.posterior_from_statistics(batch, prior, 4.0)
  new = family.natural_update(old, batch, prior, 4.0, 0.3)
  for a, b, c in zip(natural(new), natural(old), natural(target)):
    np.testing.assert_allclose(a, 0.7 * b + 0.3 * c, rtol=1e-10)


@pytest.mark.parametrize("covariance_type", TYPES)
@pytest.mark.parametrize("weight_prior", weight_priors.WEIGHT_PRIORS)
def test_cavi_bound_never_decreases_and_restarts_run_together(
    rng, covariance_type, weight_prior):
  family = families.get(covariance_type)
  x = tf.constant(mixture_rows(rng, 200, 3))
  prior = make_prior(covariance_type, 3)
  starts = [family.posterior_from_statistics(
      family.sufficient_statistics(x, tf.constant(
          rng.dirichlet(np.ones(4) * 0.3, 200))), prior, 1.0, weight_prior)
            for _ in range(2)]
  stacked = type(starts[0])(*[tf.stack(t) for t in zip(*starts)])
  q, history, _ = loops.run_cavi(x, stacked, prior, 40, 0.0, 64,
                                 weight_prior, None, family)
  bounds = history[:, 0] - history[:, 1]                          # [T, R]
  assert np.all(np.diff(bounds, axis=0) >= -1e-10)
  # The vectorised restarts are the separate runs.
  alone, alone_history, _ = loops.run_cavi(x, starts[1], prior, 40, 0.0, 64,
                                           weight_prior, None, family)
  np.testing.assert_allclose(alone_history, history[..., 1], rtol=1e-9)
  for a, b in zip(alone, q):
    np.testing.assert_allclose(a, b[1], rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_monte_carlo_elbo_matches_the_analytic_bound(rng, covariance_type):
  """sum_n logsumexp log_rho - KL equals E_q[log p(x, z, theta) - log q] at
  r = softmax(log_rho), estimated from 4000 draws of q(pi, mu, precision).
  """
  family = families.get(covariance_type)
  d, k, n, draws = 2, 2, 40, 4000
  x = mixture_rows(rng, n, d, k)
  prior = make_prior(covariance_type, d, weight_concentration=1.3)
  q = family.posterior_from_statistics(
      family.sufficient_statistics(tf.constant(x), tf.constant(
          rng.dirichlet(np.ones(k), n))), prior)
  log_rho = family.log_rho(tf.constant(x), q).numpy()             # [N, K]
  analytic = (scipy.special.logsumexp(log_rho, 1).sum()
              - float(family.kl_divergence(q, prior)))
  r = scipy.special.softmax(log_rho, 1)
  q = [np.asarray(t) for t in q]
  p = [np.asarray(t) for t in prior]
  gen = np.random.default_rng(5)

  def log_dirichlet(pi, alpha):
    alpha = np.broadcast_to(alpha, pi.shape[-1:])
    return (scipy.special.gammaln(alpha.sum())
            - scipy.special.gammaln(alpha).sum()
            + ((alpha - 1) * np.log(pi)).sum(-1))

  def log_normal(value, loc, precision):
    """log N(value | loc, precision^-1), precision [..., D, D]."""
    diff = value - loc
    return (-0.5 * d * np.log(2 * np.pi)
            + 0.5 * np.linalg.slogdet(precision)[1]
            - 0.5 * np.einsum("...d,...de,...e->...", diff, precision, diff))

  pi = gen.dirichlet(q[0], draws)                                 # [S, K]
  eye = np.eye(d)
  if covariance_type == "spherical":
    tau = gen.gamma(q[3], 1.0 / q[4], (draws, k))                 # [S, K]
    precision = tau[..., None, None] * eye                        # [S, K, D, D]
    log_precision_q = scipy.stats.gamma.logpdf(tau, q[3], scale=1 / q[4])
    log_precision_p = scipy.stats.gamma.logpdf(tau, p[3], scale=1 / p[4])
    log_precision_q, log_precision_p = [t.sum(-1) for t in (
        log_precision_q, log_precision_p)]
  else:
    w = np.linalg.inv(q[4] @ q[4].T)
    lam = scipy.stats.wishart(df=float(q[3]), scale=w).rvs(
        draws, random_state=gen)                                  # [S, D, D]
    precision = np.broadcast_to(lam[:, None], (draws, k, d, d))
    log_precision_q = scipy.stats.wishart(df=float(q[3]), scale=w).logpdf(
        np.moveaxis(lam, 0, -1))
    log_precision_p = scipy.stats.wishart(
        df=float(p[3]), scale=np.linalg.inv(p[4] @ p[4].T)).logpdf(
            np.moveaxis(lam, 0, -1))
  # mu_k | precision ~ Normal(m_k, (beta_k precision)^-1).
  chol = np.linalg.cholesky(np.linalg.inv(q[2][:, None, None] * precision))
  mu = q[1] + np.einsum("skde,ske->skd", chol,
                        gen.standard_normal((draws, k, d)))       # [S, K, D]
  log_q = (log_dirichlet(pi, q[0]) + log_precision_q
           + log_normal(mu, q[1], q[2][:, None, None] * precision).sum(-1))
  log_p = (log_dirichlet(pi, p[0]) + log_precision_p
           + log_normal(mu, p[1], p[2] * precision).sum(-1))
  log_lik = log_normal(x[None, :, None, :], mu[:, None],
                       precision[:, None])                        # [S, N, K]
  joint = (r * (np.log(pi)[:, None, :] + log_lik)).sum((1, 2))    # [S]
  entropy = -(r * np.log(r)).sum()
  estimates = joint + entropy + log_p - log_q                     # [S]
  standard_error = estimates.std() / np.sqrt(draws)
  assert standard_error < 0.5
  assert abs(estimates.mean() - analytic) < 4 * standard_error


# ---------------------------------------------------------------- predictive


def test_spherical_predictive_is_a_multivariate_t_and_the_integral(rng):
  """One precision for all features: integrating it out gives a
  multivariate Student-t, checked against scipy and a quadrature over tau
  (not the product of per-feature Student-t's)."""
  d = 3
  prior = make_prior("spherical", d)
  x = mixture_rows(rng, 30, d, 2)
  q = spherical.posterior_from_statistics(
      spherical.sufficient_statistics(tf.constant(x), tf.constant(
          rng.dirichlet(np.ones(2), 30))), prior)
  points = x[:4] + 0.5
  ours = spherical.predictive_component_log_prob(tf.constant(points),
                                                 q).numpy()       # [4, K]
  a, b = q.precision_concentration.numpy(), q.precision_rate.numpy()
  beta, m = q.mean_precision.numpy(), q.mean_loc.numpy()
  for j in range(2):
    shape = b[j] * (1 + beta[j]) / (a[j] * beta[j]) * np.eye(d)
    np.testing.assert_allclose(ours[:, j], scipy.stats.multivariate_t(
        m[j], shape, df=2 * a[j]).logpdf(points), rtol=1e-10)
    # p(x) = int Normal(x | m, (1 + 1 / beta) / tau I) Gamma(tau | a, b).
    variance = 1.0 + 1.0 / beta[j]
    density = scipy.integrate.quad(
        lambda tau, j=j, point=points[0]: np.exp(
            scipy.stats.multivariate_normal(
                m[j], variance / tau * np.eye(d)).logpdf(point)
            + scipy.stats.gamma.logpdf(tau, a[j], scale=1 / b[j])),
        0, np.inf)[0]
    np.testing.assert_allclose(ours[0, j], np.log(density), rtol=1e-7)


def test_tied_predictive_is_each_components_multivariate_t(rng):
  d = 3
  prior = make_prior("tied", d)
  x = mixture_rows(rng, 30, d, 2)
  q = tied.posterior_from_statistics(
      tied.sufficient_statistics(tf.constant(x), tf.constant(
          rng.dirichlet(np.ones(2), 30))), prior)
  points = x[:5] - 0.3
  ours = tied.predictive_component_log_prob(tf.constant(points), q).numpy()
  nu, beta = float(q.dof), q.mean_precision.numpy()
  w_inv = q.scale_tril.numpy() @ q.scale_tril.numpy().T
  df = nu + 1 - d
  for j in range(2):
    shape = (1 + beta[j]) / (df * beta[j]) * w_inv                 # 10.82
    np.testing.assert_allclose(ours[:, j], scipy.stats.multivariate_t(
        q.mean_loc.numpy()[j], shape, df=df).logpdf(points), rtol=1e-10)
  # The mixture predictive weighs the components by E[pi].
  weights = q.weight_concentration.numpy() / q.weight_concentration.numpy(
  ).sum()
  np.testing.assert_allclose(
      tied.FAMILY.predictive_log_prob(tf.constant(points), q).numpy(),
      scipy.special.logsumexp(ours + np.log(weights), 1), rtol=1e-12)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_model_outputs_in_data_units(fitted, clusters, covariance_type):
  """log_prob (with the standardisation's Jacobian) against scipy in data
  units; draws have the predictive's mean; summaries have the types'
  shapes."""
  x, labels = clusters
  model = fitted[covariance_type]
  assert adjusted_rand_score(labels, model.assign(x).numpy()) > 0.97
  q = model.family.cast_posterior(model.posterior(), F64)
  loc, scale = model.feature_loc.numpy(), model.feature_scale.numpy()
  df, means, tril = [np.asarray(t) for t in
                     model.family.predictive_parameters(q)]       # model units
  weights = model.posterior_mean()["weights"]
  components = np.stack([scipy.stats.multivariate_t(
      loc + scale * means[j], (scale[:, None] * tril[j]) @ (
          scale[:, None] * tril[j]).T, df=df[j]).logpdf(x[:20])
                         for j in range(3)], 1)                   # [20, K]
  np.testing.assert_allclose(
      model.log_prob(x[:20]).numpy(),
      scipy.special.logsumexp(components + np.log(weights), 1), rtol=1e-5)
  summary = model.posterior_summary()
  expected = (3, 2) if covariance_type == "spherical" else (3, 2, 2)
  assert model.posterior_mean()["precisions"].shape == expected
  assert all(np.all(np.isfinite(v)) for v in summary.values())
  draws = model.sample(4000, seed=3).numpy()
  np.testing.assert_allclose(draws.mean(0), x.mean(0), atol=0.25)


# ----------------------------------------------------- persistence and faces


def test_exports_load_with_plain_tensorflow(fitted, clusters, tmp_path):
  """Both SavedModels load in one fresh interpreter without tfgmm or TFP
  and compute the model's log_prob, responsibilities and samples."""
  x = clusters[0][::15].astype(np.float32)
  paths = []
  for covariance_type, model in fitted.items():
    paths.append(model.export(tmp_path / covariance_type))
  np.save(tmp_path / "x.npy", x)
  source = textwrap.dedent("""
      import json, sys
      sys.modules["tfgmm"] = None
      sys.modules["tensorflow_probability"] = None
      import numpy as np
      import tensorflow as tf

      x = tf.constant(np.load(sys.argv[1]), tf.float32)
      out = []
      for path in sys.argv[2:]:
        loaded = tf.saved_model.load(path)
        result = {
            "log_prob": loaded.signatures["serving_default"](x=x)[
                "log_prob"].numpy().tolist(),
            "responsibilities": loaded.signatures["responsibilities"](x=x)[
                "responsibilities"].numpy().tolist(),
            "samples": loaded.signatures["sample"](
                n=tf.constant(4, tf.int32),
                seed=tf.constant(7, tf.int64))["samples"].numpy().tolist()}
        out.append(result)
      print(json.dumps(out))
  """)
  out = run_client(source, [tmp_path / "x.npy"] + paths, tmp_path)
  for result, model in zip(out, fitted.values()):
    np.testing.assert_allclose(result["log_prob"], model.log_prob(x),
                               rtol=1e-5)
    np.testing.assert_allclose(result["responsibilities"],
                               model.responsibilities(x), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(result["samples"], model.sample(4, seed=7),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_keras_file_round_trip(fitted, clusters, tmp_path, covariance_type):
  model = fitted[covariance_type]
  path = tmp_path / "model.keras"
  model.save(path)
  loaded = keras.saving.load_model(path)
  assert loaded.get_config() == model.get_config()
  assert loaded.family is model.family
  np.testing.assert_allclose(loaded.log_prob(clusters[0][:50]),
                             model.log_prob(clusters[0][:50]), rtol=1e-6)


def test_sorting_and_pruning_keep_the_shared_precision(clusters):
  """take_components gathers per-component fields only: the tied Wishart
  (and, with K = D, its optimizer slots) is not permuted."""
  x, _ = clusters
  model = tfgmm.BayesianGMM(2, 2, covariance_type="tied", method="gradient",
                            seed=0)
  model.fit(tfgmm.make_dataset(x, 100, seed=0), epochs=2, verbose=0)
  q = model.posterior()
  swapped = model.family.take_components(q, [1, 0])
  np.testing.assert_array_equal(swapped.scale_tril, q.scale_tril)
  np.testing.assert_array_equal(swapped.mean_loc, q.mean_loc.numpy()[::-1])
  model.assign_posterior(swapped)
  slots = {v.name: v.numpy() for v in model.optimizer.variables}
  order = model.sort_components()
  np.testing.assert_array_equal(order, [1, 0])
  for variable in model.optimizer.variables:
    before = slots[variable.name]
    if "scale_tril" in variable.name or "raw_dof" in variable.name:
      np.testing.assert_array_equal(variable.numpy(), before)
    elif before.ndim:
      np.testing.assert_array_equal(variable.numpy(), before[order])
  for field, original in zip(model.posterior(), q):
    np.testing.assert_allclose(field, original, rtol=1e-6)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_dirichlet_process_keeps_the_clusters_and_prunes(clusters,
                                                         covariance_type):
  x, labels = clusters
  model = tfgmm.fit(x, 5, seed=0, n_init=1, covariance_type=covariance_type,
                    weight_prior="dirichlet_process")
  assert adjusted_rand_score(labels, model.assign(x).numpy()) > 0.97
  pruned = model.prune(0.01)
  assert pruned.n_components == 3
  np.testing.assert_allclose(pruned.log_prob(x[:30]), model.log_prob(x[:30]),
                             atol=2e-2)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_sample_weights_count_as_repeated_rows(rng, covariance_type):
  family = families.get(covariance_type)
  x = mixture_rows(rng, 50, 2)
  counts = rng.integers(0, 4, 50)
  prior = make_prior(covariance_type, 2)
  start = family.posterior_from_statistics(
      family.sufficient_statistics(tf.constant(x), tf.constant(
          rng.dirichlet(np.ones(3), 50))), prior)
  weighted, history, _ = loops.run_cavi(
      tf.constant(x), start, prior, 15, 0.0, 16, "dirichlet",
      tf.constant(counts, F64), family)
  repeated, repeated_history, _ = loops.run_cavi(
      tf.constant(np.repeat(x, counts, 0)), start, prior, 15, 0.0, 16,
      "dirichlet", None, family)
  np.testing.assert_allclose(history, repeated_history, rtol=1e-9)
  for a, b in zip(weighted, repeated):
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("covariance_type", TYPES)
def test_minibatch_fit_reaches_the_batch_fits_bound(fitted, clusters,
                                                    covariance_type):
  """Natural-gradient steps on batches of 100 end at the CAVI fit's bound."""
  x, _ = clusters
  minibatch = tfgmm.fit(x, 3, seed=0, n_init=2,
                        covariance_type=covariance_type, batch_size=100,
                        max_epochs=40)
  batch = float(fitted[covariance_type].elbo(x)) / len(x)
  assert float(minibatch.elbo(x)) / len(x) > batch - 2e-3


@pytest.mark.parametrize("covariance_type", TYPES)
def test_scikit_learn_face_agrees_at_convergence(clusters, covariance_type):
  """scikit-learn's heuristic updates differ (tied: nu0 + N / K; spherical:
  nu0 + N_k), so only the converged weights and labels agree, on
  well-separated clusters; the attributes have scikit-learn's shapes."""
  x, labels = clusters
  params = dict(n_components=3, covariance_type=covariance_type,
                random_state=0, max_iter=500, tol=1e-6,
                weight_concentration_prior_type="dirichlet_distribution")
  ours = BayesianGaussianMixture(**params).fit(x)
  reference = mixture.BayesianGaussianMixture(**params).fit(x)
  assert ours.converged_ and reference.converged_
  assert adjusted_rand_score(reference.predict(x), ours.predict(x)) == 1.0
  assert adjusted_rand_score(labels, ours.predict(x)) > 0.97
  for name in ("covariances_", "precisions_", "precisions_cholesky_",
               "degrees_of_freedom_", "mean_precision_",
               "covariance_prior_"):
    assert np.shape(getattr(ours, name)) == np.shape(
        getattr(reference, name)), name
  comparison = tfgmm.metrics.compare_fits(ours, reference)
  assert comparison.max_abs_diff["weights"] < 5e-3
  assert comparison.max_abs_diff["means"] < 5e-2
  assert comparison.max_abs_diff["precisions"] < 0.1
  samples, components = ours.sample(7)
  assert samples.shape == (7, 2) and components.shape == (7,)
  again = BayesianGaussianMixture(**params).fit(x).sample(7)[0]
  np.testing.assert_array_equal(samples, again)


# -------------------------------------------------------- what is not offered


@pytest.mark.parametrize("covariance_type", TYPES)
def test_unsupported_combinations_name_the_argument(clusters, covariance_type):
  x, _ = clusters
  name = f"covariance_type='{covariance_type}'"
  with pytest.raises(ValueError, match=f"method='map' is not supported for "
                     f"{name}"):
    tfgmm.fit(x, 3, method="map", covariance_type=covariance_type)
  with pytest.raises(ValueError, match="mean_prior='independent' is not "
                     f"supported for {name}"):
    tfgmm.BayesianGMM(3, 2, covariance_type=covariance_type,
                      mean_prior="independent")
  with pytest.raises(ValueError, match="missing='marginalize' is not "
                     f"supported for {name}"):
    tfgmm.BayesianGMM(3, 2, covariance_type=covariance_type,
                      missing="marginalize")
  with pytest.raises(ValueError, match=r"method='sampled'"):
    tfgmm.BayesianGMM(3, 2, covariance_type=covariance_type,
                      method="sampled")
  model = tfgmm.BayesianGMM(3, 2, covariance_type=covariance_type)
  with pytest.raises(NotImplementedError,
                     match=f"tfgmm.mcmc is not supported for {name}"):
    tfgmm.mcmc.sample(model, x, num_results=1)


def test_prior_settings_of_the_other_precision_prior_are_errors():
  with pytest.raises(ValueError, match=r"scalar `precision_rate`.*"
                     r"shape \(2,\)"):
    tfgmm.BayesianGMM(3, 2, covariance_type="spherical",
                      precision_rate=[1.0, 2.0])
  with pytest.raises(ValueError, match="covariance_type='full' or "
                     "covariance_type='tied'. Received them with "
                     "covariance_type='spherical'"):
    tfgmm.BayesianGMM(3, 2, covariance_type="spherical",
                      degrees_of_freedom=3.0)
  with pytest.raises(ValueError, match="degrees_of_freedom` > D - 1"):
    tfgmm.BayesianGMM(3, 2, covariance_type="tied", degrees_of_freedom=0.5)


def test_the_support_registry_is_read_from_the_families():
  assert families.COVARIANCE_TYPES == ("diag", "full", "spherical", "tied")
  assert tfgmm.map.COVARIANCE_TYPES == families.supporting("map") == ("diag",)
  assert families.supporting("mcmc") == ("diag",)
  assert families.supporting("natural") == families.COVARIANCE_TYPES
  assert families.supporting("sampled") == ("diag",)
  for covariance_type in families.COVARIANCE_TYPES:
    assert families.get(covariance_type).sklearn is not None


def test_spherical_standardisation_keeps_components_isotropic():
  """One scale for every feature: E[Lambda] in data units is a multiple of
  the identity although the features' spreads differ 5-fold."""
  rng = np.random.default_rng(4)
  x = np.concatenate([rng.normal(0, 1, (200, 2)),
                      rng.normal(6, 1, (200, 2))]) * [1.0, 5.0]
  model = tfgmm.fit(x, 2, covariance_type="spherical", seed=0, n_init=1)
  scale = model.feature_scale.numpy()
  assert scale[0] == scale[1]
  precisions = model.posterior_mean()["precisions"]               # [K, D]
  np.testing.assert_allclose(precisions[:, 0], precisions[:, 1], rtol=1e-6)
