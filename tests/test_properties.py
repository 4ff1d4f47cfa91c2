"""Property-based tests: numerics at the edges of shapes, scales and data.

`tfgmm.fit` must not produce NaN or Inf, whatever the data's shape (N from
1 to 10,000, D from 1 to 64, K from 1 to more than N), scale (1e-6 to 1e6),
offset (up to 1e6), duplicated rows, constant columns or dtype. K > N is a
valid Bayesian fit: the unused components stay at the prior. Degeneracies
(an empty component, a collapsing precision) are handled by the model's
priors and pruning, not by clipping outputs; each has an explicit test.

Hypothesis settings (`_settings`):
- `deadline=None`: the first call of each compiled function traces it
  (seconds), and a fit's time varies with N, K and D anyway.
- `derandomize=True`: CI sees the same examples on every run, so a failure
  reproduces from the test's name alone; `database=None` keeps no example
  database (hypothesis still caches source constants in the gitignored
  `.hypothesis/`).
- `HealthCheck.too_slow` suppressed: every example is a whole fit (0.1 to
  1 s), which the health check counts as slow data generation. Generation
  itself is cheap: the data are drawn by numpy from one hypothesis-drawn
  seed (drawing 640,000 floats through hypothesis would not be), and
  `HealthCheck.data_too_large` never fires for the same reason.
- The property is "no NaN, no Inf", not convergence: `n_init=1` and
  `max_epochs=10` keep each fit short.

`TFGMM_PROPERTY_EXAMPLES=<n>` runs n random (not derandomized) examples per
property for a longer local search; the CI default runs the file in 30 s
on two idle cores, 70 s on two busy ones.
"""

import os

import hypothesis
import hypothesis.strategies as st
import numpy as np
import pytest

import tfgmm

_EXAMPLES = os.environ.get("TFGMM_PROPERTY_EXAMPLES")


def _settings(max_examples, **kwargs):
  return hypothesis.settings(
      max_examples=int(_EXAMPLES) if _EXAMPLES else max_examples,
      deadline=None,
      derandomize=not _EXAMPLES,
      database=None,
      suppress_health_check=[hypothesis.HealthCheck.too_slow],
      **kwargs)


# --------------------------------------------------------------- strategies


# K is at most this: [N, K] responsibilities for N = 10,000 stay cheap, and
# K > N still comes up whenever N < _MAX_K.
_MAX_K = 40


def _rows(max_rows):
  """N in [1, max_rows], two thirds of the examples at most 200."""
  return st.one_of(st.integers(1, 12), st.integers(1, 200),
                   st.integers(1, max_rows))


def _features(max_features):
  """D in [1, max_features], two thirds of the examples at most 4."""
  small = st.integers(1, min(4, max_features))
  return st.one_of(small, small, st.integers(1, max_features))


def _components(n):
  """K in [1, N + 3], capped at _MAX_K; a third of the examples draw K > N
  (when N < _MAX_K)."""
  cap = min(n + 3, _MAX_K)
  return st.one_of(st.integers(1, min(cap, 6)), st.integers(1, cap),
                   st.integers(min(n + 1, cap), cap))


@st.composite
def datasets(draw, max_features=64, max_rows=10_000):
  """A data set at the edges, with a fit's K and dtype.

  Returns:
    dict: `x` [N, D] (float32 or float64, independently of the model's
    dtype: float64 data in a float32 model is the common case),
    `n_components`, `dtype` (the model's) and `description` (how the data
    were made, for failure reports).
  """
  n = draw(_rows(max_rows))
  d = draw(_features(max_features))
  k = draw(_components(n))
  dtype = draw(st.sampled_from(["float32", "float64"]))
  data_dtype = draw(st.sampled_from(["float32", "float64"]))
  log_scale = draw(st.floats(-6.0, 6.0))
  # Per-column scales 10**u, u in [-spread, spread] around 10**log_scale,
  # clipped to [1e-6, 1e6].
  spread = draw(st.sampled_from([0.0, 0.0, 3.0]))
  offset_kind = draw(st.sampled_from(["zero", "large", "uniform"]))
  clusters = draw(st.integers(1, 5))
  duplicate_fraction = draw(st.sampled_from([0.0, 0.0, 0.1, 0.5, 0.9, 1.0]))
  constant_fraction = draw(st.sampled_from([0.0, 0.0, 0.25, 1.0]))
  seed = draw(st.integers(0, 2**32 - 1))

  rng = np.random.default_rng(seed)
  centres = rng.normal(0.0, 5.0, (clusters, d))
  labels = rng.integers(clusters, size=n)
  spreads = rng.uniform(0.1, 2.0, clusters)
  z = centres[labels] + spreads[labels, None] * rng.normal(size=(n, d))
  if offset_kind == "zero":
    offset = np.zeros(d)
  elif offset_kind == "large":
    offset = rng.choice([-1e6, 1e6], size=d)
  else:
    offset = rng.uniform(-1e6, 1e6, size=d)
  log_scales = np.clip(log_scale + rng.uniform(-spread, spread, d), -6, 6)
  x = offset + 10.0**log_scales * z
  # Duplicated rows: a fraction of the rows become copies of a few others.
  copies = int(round(duplicate_fraction * n))
  if copies and n > 1:
    sources = rng.integers(n, size=max(1, n // 10))
    x[rng.permutation(n)[:copies]] = x[rng.choice(sources, size=copies)]
  # Constant columns: every row holds the column's offset.
  constants = rng.random(d) < constant_fraction
  x[:, constants] = offset[constants]

  if k > n:
    hypothesis.event("K > N")
  if n >= 1000:
    hypothesis.event("N >= 1000")
  if d >= 16:
    hypothesis.event("D >= 16")
  return dict(
      x=x.astype(data_dtype), n_components=k, dtype=dtype,
      description=dict(n=n, d=d, k=k, dtype=dtype, data_dtype=data_dtype,
                       log_scale=log_scale, spread=spread, offset=offset_kind,
                       clusters=clusters, duplicates=duplicate_fraction,
                       constant_columns=int(constants.sum()), seed=seed))


# ----------------------------------------------------------------- checks


def _assert_finite(name, value):
  value = np.asarray(value)
  bad = ~np.isfinite(value)
  if bad.any():
    where = tuple(np.argwhere(bad)[0])
    raise AssertionError(f"{name} has {int(bad.sum())} non-finite entries of "
                         f"{value.size}, e.g. [{where}] = {value[where]}")


def check_fitted(model, x):
  """Every parameter and output of a fitted model is finite; responsibilities
  are a distribution over components."""
  for name, value in model.posterior()._asdict().items():
    _assert_finite(f"posterior().{name}", value)
  for variable in model.weights:
    if (model.weight_prior == "dirichlet_process"
        and "log_weight_concentration" in variable.path):
      # Known bug, see test_an_empty_stick_keeps_finite_variables: an empty
      # component's stick count rounds to 0 in float32 and its log is -inf.
      # Remove this exception with the fix.
      continue
    _assert_finite(f"variable {variable.path}", variable.numpy())
  for history in ("training_history", "initialization_history"):
    for key, values in getattr(model, history).items():
      assert values, f"{history}[{key!r}] is empty"
      _assert_finite(f"{history}[{key!r}]", values)
  for key, value in model.posterior_mean().items():
    _assert_finite(f"posterior_mean()[{key!r}]", value)
  _assert_finite("elbo(x)", model.elbo(x))
  _assert_finite("log_prob(x)", model.log_prob(x))
  _assert_finite("sample(10)", model.sample(10, seed=1))
  r = model.responsibilities(x).numpy()
  _assert_finite("responsibilities(x)", r)
  assert (r >= 0).all()
  atol = 1e-4 if model.compute_dtype == "float32" else 1e-10
  np.testing.assert_allclose(r.sum(-1), 1.0, atol=atol)


def _fit(x, k, dtype, **kwargs):
  kwargs.setdefault("max_epochs", 10)
  kwargs.setdefault("n_init", 1)
  return tfgmm.fit(x, k, seed=0, dtype=dtype, **kwargs)


# --------------------------------------------------------------- properties


@_settings(25)
@hypothesis.given(case=datasets(),
                  weight_prior=st.sampled_from(
                      ["dirichlet", "dirichlet", "dirichlet_process"]),
                  mean_prior=st.sampled_from(
                      ["conjugate", "conjugate", "independent"]))
def test_diagonal_fit_is_finite(case, weight_prior, mean_prior):
  hypothesis.note(case["description"])
  model = _fit(case["x"], case["n_components"], case["dtype"],
               weight_prior=weight_prior, mean_prior=mean_prior)
  check_fitted(model, case["x"])


@_settings(15)
@hypothesis.given(case=datasets(max_features=8),
                  weight_prior=st.sampled_from(
                      ["dirichlet", "dirichlet_process"]))
def test_full_fit_is_finite(case, weight_prior):
  hypothesis.note(case["description"])
  model = _fit(case["x"], case["n_components"], case["dtype"],
               covariance_type="full", weight_prior=weight_prior)
  check_fitted(model, case["x"])


@st.composite
def affine_maps(draw):
  """(seed, N, D, clusters, log10 scale, offset [D]) for the equivariance
  property."""
  seed = draw(st.integers(0, 2**32 - 1))
  n = draw(st.integers(2, 300))
  d = draw(st.integers(1, 5))
  clusters = draw(st.integers(1, 3))
  log_scale = draw(st.floats(-6.0, 6.0))
  offset = draw(st.sampled_from([0.0, 1e3, -1e6, 1e6]))
  return seed, n, d, clusters, log_scale, np.full(d, offset)


def _equivariance(dtype, seed, n, d, clusters, log_scale, offset):
  """fit(offset + s z).log_prob(offset + s z) = fit(z).log_prob(z) - D log s.

  Standardisation makes the two fits the same in model units, so their
  densities differ by the Jacobian exactly, up to how well float64 holds
  x = offset + s z: eps |offset| / s in z's units. One component: CAVI then
  reaches its fixed point in one step. With more, the two fits agree only
  to the convergence tolerance: rounding can move the iteration at which
  `tol` is met, or tip a split move that gains about `tol`.
  """
  rng = np.random.default_rng(seed)
  z = rng.normal(0.0, 4.0, (clusters, d))[
      rng.integers(clusters, size=n)] + rng.normal(size=(n, d))
  scale = 10.0**log_scale
  x = offset + scale * z                                          # float64
  reference = _fit(z, 1, dtype).log_prob(z).numpy().astype(np.float64)
  shifted = _fit(x, 1, dtype).log_prob(x).numpy().astype(np.float64)
  representation = np.finfo(np.float64).eps * np.max(np.abs(offset)) / scale
  atol = (1e-3 if dtype == "float32" else 1e-7) + 100.0 * d * representation
  np.testing.assert_allclose(shifted + d * np.log(scale), reference,
                             rtol=1e-5, atol=atol)


@_settings(8)
@hypothesis.given(case=affine_maps())
def test_log_prob_is_affine_equivariant_float64(case):
  _equivariance("float64", *case)


@_settings(4, phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate])
@hypothesis.example(case=(0, 200, 2, 2, -3.0, np.full(2, 1e6)))
@hypothesis.given(case=affine_maps())
def test_log_prob_is_affine_equivariant_float32(case):
  _equivariance("float32", *case)


# ------------------------------------------------------------- degeneracies


FAMILIES = [
    pytest.param(dict(), id="diag"),
    pytest.param(dict(mean_prior="independent"), id="independent"),
    pytest.param(dict(covariance_type="full"), id="full"),
]
WEIGHT_PRIORS = ["dirichlet", "dirichlet_process"]
DTYPES = ["float32", "float64"]


def _counts(model):
  """Soft counts N_k of a fitted model's components, [K]."""
  field = model.posterior().weight_concentration.numpy().astype(np.float64)
  if model.weight_prior == "dirichlet":
    return field - model.weight_concentration                      # alpha0
  return field                                                    # sticks


def _assert_at_prior(model, x, components):
  """The components' posterior is the prior's, up to their soft counts.

  Each field moves from the prior by at most a multiple of the component's
  count N_k: alpha, beta, nu by N_k, a by N_k / 2, m by N_k |z| / beta0, b
  and W^-1 by N_k |z|^2 (z: the data in model units).
  """
  q, prior = model.posterior(), model.prior()
  z = (x - model.feature_loc.numpy()) / model.feature_scale.numpy()
  count = _counts(model)[components].max()
  atol = 1e-6 + 2.0 * count * (1.0 + np.abs(z).max())**2
  for name, value in q._asdict().items():
    value = value.numpy()[components]
    if name == "weight_concentration":
      expected = (model.weight_concentration
                  if model.weight_prior == "dirichlet" else 0.0)
    else:
      expected = prior._asdict()[name].numpy()
    np.testing.assert_allclose(
        value, np.broadcast_to(expected, value.shape), rtol=1e-5, atol=atol,
        err_msg=f"field {name} of components {components}")


def _distinct_points_data(distinct, copies, d, seed=0):
  rng = np.random.default_rng(seed)
  return np.repeat(rng.normal(0.0, 3.0, (distinct, d)), copies, 0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weight_prior", WEIGHT_PRIORS)
@pytest.mark.parametrize("family", FAMILIES)
def test_empty_components_stay_at_the_prior(family, weight_prior, dtype):
  """K = 12 components, 3 distinct points (20 copies each): 9 components get
  no data and keep the prior, with a small weight; pruning drops them and
  barely moves the density."""
  x = _distinct_points_data(3, 20, 2)
  model = _fit(x, 12, dtype, weight_prior=weight_prior, **family)
  check_fitted(model, x)
  counts = _counts(model)
  np.testing.assert_allclose(counts.sum(), 60.0, rtol=1e-4)
  empty = np.flatnonzero(counts < 1e-4)
  assert empty.size == 9, counts
  _assert_at_prior(model, x, empty)
  weights = model.posterior_mean()["weights"]
  # Dirichlet: alpha0 / (N + K alpha0) = 1 / 732 each; sticks: less.
  assert np.all(weights[empty] < 2e-3), weights

  pruned = model.prune(threshold=0.01)
  assert pruned.n_components == 3
  check_fitted(pruned, x)
  # The dropped weight W moves to the kept components (Dirichlet: all in
  # proportion; sticks: to the last one), so log_prob moves by at most
  # log(1 + W / smallest kept weight).
  kept = np.setdiff1d(np.arange(12), empty)
  shift = np.log1p(weights[empty].sum() / weights[kept].min())
  np.testing.assert_allclose(pruned.log_prob(x).numpy(),
                             model.log_prob(x).numpy(), rtol=0,
                             atol=shift + 1e-4)


def _precision_bound(model, counts):
  """The largest precision (an eigenvalue, in model units) the prior allows
  a component with N_k rows, [K]: E[tau] = a / b <= (a0 + N_k / 2) / b0
  (diag: a = a0 + N_k / 2 and b >= b0), E[Lambda] = nu W <= (nu0 + N_k) W0
  (full: W^-1 >= W0^-1)."""
  if model.covariance_type == "full":
    w0 = (np.eye(model.n_features) if model.scale_matrix is None
          else np.asarray(model.scale_matrix))
    return (model.degrees_of_freedom + counts) * np.linalg.eigvalsh(w0).max()
  return ((model.precision_concentration + 0.5 * counts)
          / np.min(model.precision_rate))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("family", FAMILIES)
def test_collapsing_precision_is_bounded_by_the_prior(family, dtype):
  """A cluster of 50 identical rows and a constant column: the maximum-
  likelihood precision is infinite; the Gamma (Wishart) prior keeps the
  posterior's finite and below a bound set by a0, b0 (nu0, W0) and N_k."""
  rng = np.random.default_rng(1)
  x = np.concatenate([np.tile([5.0, -3.0, 7.0], (50, 1)),
                      rng.normal(0.0, 1.0, (100, 3)) * [1.0, 1.0, 0.0]
                      + [0.0, 0.0, 7.0]])                         # [150, 3]
  # The constant column holds 1001.75, exact in binary: its float64 mean is
  # exact too (test_a_constant_column_is_constant_whatever_its_value).
  x = 1e3 + 0.25 * x
  model = _fit(x, 2, dtype, **family)
  check_fitted(model, x)
  scale = model.feature_scale.numpy()
  assert scale[2] == 1.0                    # the constant column keeps scale 1
  precisions = model.posterior_mean()["precisions"]               # data units
  if model.covariance_type == "full":
    standardised = precisions * np.outer(scale, scale)            # [K, D, D]
    largest = np.linalg.eigvalsh(standardised).max(-1)            # [K]
    feature0 = standardised[:, 0, 0]                              # [K]
  else:
    standardised = precisions * np.square(scale)                  # [K, D]
    largest = standardised.max(-1)
    feature0 = standardised[:, 0]
  counts = _counts(model)
  assert np.all(largest > 0), largest
  bound = _precision_bound(model, counts)
  assert np.all(largest <= bound * (1 + 1e-5)), (largest, bound)
  # The identical rows have a component of their own, tighter than the
  # other: the prior bounds the collapse, it does not prevent it.
  collapsed = int(np.argmin(np.abs(counts - 50.0)))
  np.testing.assert_allclose(counts[collapsed], 50.0, atol=1e-3)
  assert feature0[collapsed] > 2.0 * feature0[1 - collapsed], feature0
  _assert_finite("log_prob(collapsed rows)", model.log_prob(x[:50]))


@pytest.mark.parametrize("weight_prior", WEIGHT_PRIORS)
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("n,k", [(1, 1), (1, 4), (2, 3), (3, 8), (5, 20)])
def test_more_components_than_rows(n, k, family, weight_prior):
  """K > N is a valid Bayesian fit: N components at most take the data, the
  K - N others hold little of it and stay at the prior."""
  rng = np.random.default_rng(n)
  x = rng.normal(0.0, 3.0, (n, 2))
  model = _fit(x, k, "float64", weight_prior=weight_prior, **family)
  check_fitted(model, x)
  counts = _counts(model)
  np.testing.assert_allclose(counts.sum(), n, rtol=1e-6)
  surplus = np.argsort(counts)[:k - n]
  if surplus.size:
    assert counts[surplus].sum() < 0.05 * n, counts
    _assert_at_prior(model, x, surplus)


# ------------------------------------------------------------ known bugs


def test_a_constant_column_is_constant_whatever_its_value():
  base = np.random.default_rng(0).normal(size=(150, 1))
  results = []
  for value in (7.0, 0.1, 1000.07):
    x = np.concatenate([base, np.full((150, 1), value)], 1)
    model = _fit(x, 1, "float64")
    assert model.feature_scale.numpy()[1] == 1.0, (value, model.feature_scale)
    results.append(model.log_prob(x).numpy())
  np.testing.assert_allclose(results[1], results[0], atol=1e-8)
  np.testing.assert_allclose(results[2], results[0], atol=1e-8)


def test_an_empty_stick_keeps_finite_variables():
  x = _distinct_points_data(3, 20, 2)
  model = _fit(x, 12, "float32", weight_prior="dirichlet_process")
  for variable in model.weights:
    _assert_finite(f"variable {variable.path}", variable.numpy())


def test_sampled_method_with_empty_components_is_finite():
  x = np.random.default_rng(0).normal(size=(150, 1))
  model = _fit(x, 20, "float32", method="sampled", max_epochs=2)
  check_fitted(model, x)
