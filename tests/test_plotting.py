"""Tests of tfgmm.plotting: every figure renders headless to a valid PNG."""

import io

import keras
import numpy as np
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import Ellipse

import tfgmm
from tfgmm import metrics
from tfgmm import plotting

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def blobs(n_per, centers, seed=0):
  rng = np.random.RandomState(seed)
  centers = np.asarray(centers, np.float64)
  return np.concatenate([c + rng.randn(n_per, centers.shape[1])
                         for c in centers]).astype(np.float32)


@pytest.fixture(scope="module")
def data_2d():
  return blobs(150, [[2, 0], [-2, -4], [-2, 4]])


@pytest.fixture(scope="module")
def model_2d(data_2d):
  return tfgmm.fit(data_2d, 3, seed=0, n_init=2)


@pytest.fixture(scope="module")
def data_1d():
  return blobs(200, [[-3], [3]])


@pytest.fixture(scope="module")
def model_1d(data_1d):
  return tfgmm.fit(data_1d, 2, seed=0, n_init=2)


@pytest.fixture(scope="module")
def model_3d():
  # The D check comes first, so an unfitted model is enough.
  return tfgmm.BayesianGMM(2, 3, seed=0)


def assert_png_file(path):
  data = path.read_bytes()
  assert len(data) > 1000
  assert data[:8] == PNG_SIGNATURE


def render(fig):
  buffer = io.BytesIO()
  fig.savefig(buffer, format="png")
  assert buffer.getvalue()[:8] == PNG_SIGNATURE


# ----------------------------------------------------------------- training

def test_plot_training_from_model(model_2d, tmp_path):
  path = tmp_path / "training.png"
  fig = plotting.plot_training(model_2d, path)
  assert isinstance(fig, Figure)
  assert_png_file(path)
  assert len(fig.axes) == 3
  init_line, loss_line = fig.axes[0].lines[:2]
  np.testing.assert_allclose(init_line.get_ydata(),
                             model_2d.initialization_history["loss"])
  np.testing.assert_allclose(loss_line.get_ydata(),
                             model_2d.training_history["loss"])
  # The full-data epochs continue the initialisation's iteration axis.
  assert loss_line.get_xdata()[0] == len(init_line.get_xdata()) + 1


def test_plot_training_from_dict_and_keras_history(tmp_path):
  history = {"loss": [3.0, 2.5, 2.4], "expected_log_likelihood": [-2.9, -2.4,
                                                                   -2.3],
             "kl": [0.1, 0.1, 0.1]}
  render(plotting.plot_training(history))
  callback = keras.callbacks.History()
  callback.history = {"loss": [1.0, 0.5]}          # KL and E[log lik] missing
  fig = plotting.plot_training(callback, tmp_path / "partial.png")
  assert_png_file(tmp_path / "partial.png")
  assert len(fig.axes[2].lines) == 0


def test_plot_training_rejects_empty_and_unknown(tmp_path):
  with pytest.raises(ValueError, match="no epochs"):
    plotting.plot_training({"loss": []})
  with pytest.raises(ValueError, match="never initialised|no epochs"):
    plotting.plot_training(tfgmm.BayesianGMM(2, 2, seed=0))
  with pytest.raises(TypeError, match="BayesianGMM"):
    plotting.plot_training([1.0, 2.0])
  assert not list(tmp_path.iterdir())


# ------------------------------------------------------------------ 2-D

def test_plot_density_2d(model_2d, data_2d, tmp_path):
  path = tmp_path / "density.png"
  fig = plotting.plot_density_2d(model_2d, data_2d, path, grid=40,
                                 feature_names=["u", "v"])
  assert isinstance(fig, Figure)
  assert_png_file(path)
  ax = fig.axes[0]
  assert (ax.get_xlabel(), ax.get_ylabel()) == ("u", "v")
  # The means are marked where the model puts them.
  markers = ax.collections[-1].get_offsets()
  np.testing.assert_allclose(markers, model_2d.posterior_mean()["means"],
                             rtol=1e-6)


def test_plot_density_2d_swapped_features(model_2d, data_2d):
  fig = plotting.plot_density_2d(model_2d, data_2d, features=(1, 0), grid=20)
  markers = fig.axes[0].collections[-1].get_offsets()
  np.testing.assert_allclose(markers,
                             model_2d.posterior_mean()["means"][:, ::-1],
                             rtol=1e-6)
  render(fig)


def test_plot_density_2d_rejects_three_features(model_3d, tmp_path):
  x = np.zeros((5, 3), np.float32)
  with pytest.raises(ValueError, match=r"2 features \(D == 2\).*D=3"):
    plotting.plot_density_2d(model_3d, x, tmp_path / "d.png")
  assert not (tmp_path / "d.png").exists()


def test_plot_density_2d_rejects_one_feature(model_1d, data_1d):
  with pytest.raises(ValueError, match="plot_density_1d"):
    plotting.plot_density_2d(model_1d, data_1d)


@pytest.mark.parametrize("kwargs, message", [
    ({"features": (0, 0)}, "different"),
    ({"features": (0, 2)}, r"\[0, 2\)"),
    ({"features": 0}, "pair"),
    ({"grid": 1}, "grid"),
    ({"feature_names": ["u"]}, "feature_names"),
])
def test_plot_density_2d_argument_errors(model_2d, data_2d, kwargs, message):
  with pytest.raises(ValueError, match=message):
    plotting.plot_density_2d(model_2d, data_2d, **kwargs)


def test_plot_density_2d_rejects_wrong_width(model_2d):
  with pytest.raises(ValueError, match=r"with 2 features.*x.shape="):
    plotting.plot_density_2d(model_2d, np.zeros((4, 3)))


# ------------------------------------------------------------------ 1-D

def test_plot_density_1d(model_1d, data_1d, tmp_path):
  path = tmp_path / "density_1d.png"
  fig = plotting.plot_density_1d(model_1d, data_1d, path)
  assert_png_file(path)
  ax = fig.axes[0]
  # The black line is the predictive density; the dashed component shares
  # sum to it.
  total = next(line for line in ax.lines
               if line.get_label() == "predictive density")
  shares = [line for line in ax.lines if line.get_linestyle() == "--"]
  assert len(shares) == 2
  np.testing.assert_allclose(sum(line.get_ydata() for line in shares),
                             total.get_ydata(), rtol=1e-4, atol=1e-8)
  # A proper density: it integrates to about 1 over the plotted range.
  grid = total.get_xdata()
  assert np.trapezoid(total.get_ydata(), grid) == pytest.approx(1, abs=0.02)


def test_plot_density_1d_takes_a_flat_vector(model_1d, data_1d):
  render(plotting.plot_density_1d(model_1d, data_1d[:, 0],
                                  feature_names=["length"]))


def test_plot_density_1d_rejects_other_widths(model_2d, data_2d, model_1d,
                                              data_1d):
  with pytest.raises(ValueError, match="1 feature"):
    plotting.plot_density_1d(model_2d, data_2d)
  with pytest.raises(ValueError, match="feature"):
    plotting.plot_density_1d(model_1d, data_1d, feature=1)


# ------------------------------------------------------- ellipse geometry

def rotation(degrees):
  t = np.radians(degrees)
  return np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])


@pytest.mark.parametrize("theta, angle", [
    (0.0, 0.0), (30.0, 30.0), (-60.0, -60.0), (90.0, 90.0), (135.0, -45.0),
    (-90.0, 90.0)])
@pytest.mark.parametrize("n_sigma", [1.0, 2.5])
def test_ellipse_geometry_of_a_rotated_covariance(theta, angle, n_sigma):
  # Sigma = R(theta) diag(s1^2, s2^2) R(theta)^T: the ellipse has semi-axes
  # n s1 along theta and n s2 across it (angles modulo 180 degrees).
  s1, s2 = 3.0, 0.5
  r = rotation(theta)
  covariance = r @ np.diag([s1**2, s2**2]) @ r.T
  width, height, got = plotting.ellipse_geometry(covariance, n_sigma)
  assert width == pytest.approx(2 * n_sigma * s1)
  assert height == pytest.approx(2 * n_sigma * s2)
  assert got == pytest.approx(angle, abs=1e-9)


def test_ellipse_geometry_axis_aligned_and_circle():
  assert plotting.ellipse_geometry(np.diag([4.0, 1.0])) == pytest.approx(
      (4.0, 2.0, 0.0))
  # The larger variance on the vertical axis: the long axis is at 90 degrees.
  assert plotting.ellipse_geometry([[1.0, 0.0], [0.0, 4.0]]) == (
      pytest.approx((4.0, 2.0, 90.0)))
  assert plotting.ellipse_geometry(2.0 * np.eye(2), 3) == pytest.approx(
      (6 * np.sqrt(2), 6 * np.sqrt(2), 0.0))
  # Degenerate (rank 1): a segment along the diagonal.
  width, height, angle = plotting.ellipse_geometry([[1.0, 1.0], [1.0, 1.0]])
  assert (width, height, angle) == pytest.approx((2 * np.sqrt(2), 0.0, 45.0),
                                                 abs=1e-6)


def test_ellipse_geometry_boundary_is_the_mahalanobis_contour():
  rng = np.random.default_rng(0)
  t = np.linspace(0, 2 * np.pi, 50)
  for _ in range(20):
    a = rng.normal(size=(2, 2))
    covariance = a @ a.T + 0.05 * np.eye(2)
    n = rng.uniform(0.5, 3.0)
    width, height, angle = plotting.ellipse_geometry(covariance, n)
    # Points of the matplotlib Ellipse(0, width, height, angle) boundary.
    u = rotation(angle) @ np.stack([0.5 * width * np.cos(t),
                                    0.5 * height * np.sin(t)])  # [2, T]
    mahalanobis = np.einsum("it,ij,jt->t", u, np.linalg.inv(covariance), u)
    np.testing.assert_allclose(mahalanobis, n**2, rtol=1e-9)


@pytest.mark.parametrize("covariance, n_sigma, message", [
    (np.eye(3), 1.0, "2 x 2"),
    ([1.0, 2.0], 1.0, "2 x 2"),
    ([[1.0, 0.5], [0.0, 1.0]], 1.0, "symmetric"),
    ([[np.nan, 0.0], [0.0, 1.0]], 1.0, "finite"),
    ([[1.0, 2.0], [2.0, 1.0]], 1.0, "positive semi-definite"),
    (np.eye(2), 0.0, "n_sigma"),
    (np.eye(2), True, "n_sigma"),
    (np.eye(2), float("inf"), "n_sigma"),
])
def test_ellipse_geometry_errors(covariance, n_sigma, message):
  with pytest.raises(ValueError, match=message):
    plotting.ellipse_geometry(covariance, n_sigma)


# -------------------------------------------------------- 2-D ellipses

def ellipse_patches(ax):
  return [p for p in ax.patches if isinstance(p, Ellipse)]


@pytest.fixture(scope="module")
def data_full():
  rng = np.random.RandomState(1)
  stretched = rng.randn(200, 2) @ np.array([[2.0, 1.5], [0.0, 0.5]])
  return np.concatenate([stretched, rng.randn(200, 2) + [7.0, -4.0]]
                        ).astype(np.float32)


@pytest.fixture(scope="module")
def model_full(data_full):
  return tfgmm.fit(data_full, 2, seed=0, n_init=2, covariance_type="full")


def test_plot_density_2d_diagonal_ellipses(model_2d, data_2d, tmp_path):
  path = tmp_path / "ellipses.png"
  fig = plotting.plot_density_2d(model_2d, data_2d, path, grid=30)
  assert_png_file(path)
  summary = model_2d.posterior_mean()
  shown = np.flatnonzero(summary["weights"] >= 1e-3)
  patches = ellipse_patches(fig.axes[0])
  assert len(patches) == 3 * len(shown)
  for index, patch in enumerate(patches):
    c, n = shown[index // 3], (1.0, 2.0, 3.0)[index % 3]
    sd = 1.0 / np.sqrt(summary["precisions"][c])                  # [2]
    np.testing.assert_allclose(patch.center, summary["means"][c], rtol=1e-6)
    # Axis-aligned: width and height are 2 n sd of the long and short axes.
    assert patch.angle in (0.0, 90.0)
    along_x = patch.angle == 0.0
    np.testing.assert_allclose(
        [patch.width, patch.height],
        2 * n * (sd if along_x else sd[::-1]), rtol=1e-6)
  labels = [line.get_label() for line in fig.axes[0].lines]
  assert "2-sigma ellipses (86.5% mass)" in labels


@pytest.mark.parametrize("features", [(0, 1), (1, 0)])
def test_plot_density_2d_full_ellipses_are_rotated(model_full, data_full,
                                                   features):
  fig = plotting.plot_density_2d(model_full, data_full, grid=20,
                                 features=features, ellipses=(1.5,))
  summary = model_full.posterior_mean()
  assert summary["precisions"].shape == (2, 2, 2)
  covariances = np.linalg.inv(summary["precisions"])
  patches = ellipse_patches(fig.axes[0])
  assert len(patches) == 2
  i, j = features
  for c, patch in enumerate(patches):
    sub = covariances[c][np.ix_([i, j], [i, j])]
    np.testing.assert_allclose(
        [patch.width, patch.height, patch.angle],
        plotting.ellipse_geometry(sub, 1.5), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(patch.center, summary["means"][c, [i, j]],
                               rtol=1e-6)
  # The stretched cluster is correlated: its ellipse is tilted.
  assert any(5.0 < abs(p.angle) < 85.0 for p in patches)
  render(fig)


def test_plot_density_2d_without_ellipses(model_2d, data_2d):
  fig = plotting.plot_density_2d(model_2d, data_2d, grid=10, ellipses=False)
  assert not ellipse_patches(fig.axes[0])


@pytest.mark.parametrize("ellipses", ["x", [0.0], [-1.0, 1.0], 2, [True]])
def test_plot_density_2d_ellipses_errors(model_2d, data_2d, ellipses):
  with pytest.raises(ValueError, match="ellipses"):
    plotting.plot_density_2d(model_2d, data_2d, grid=10, ellipses=ellipses)


# ------------------------------------------------- assignment uncertainty

# -------------------------------------------- posteriors, MCMC overlays

@pytest.fixture(scope="module")
def data_small():
  return blobs(50, [[-3], [3]], seed=2)                           # 100 rows


@pytest.fixture(scope="module")
def model_small(data_small):
  return tfgmm.fit(data_small, 2, seed=0, n_init=2)


@pytest.fixture(scope="module")
def mcmc_small(model_small, data_small):
  from tfgmm import mcmc  # pylint: disable=import-outside-toplevel
  return mcmc.sample(model_small, data_small, num_results=50,
                     num_burnin_steps=50, num_chains=2, kernel="hmc", seed=0)


def vi_curves(fig):
  """{panel title: (grid, density)} of the VI lines."""
  return {ax.get_title(): (line.get_xdata(), line.get_ydata())
          for ax in fig.axes for line in ax.lines if line.get_gid() == "vi"}


def moments(grid, density):
  """Area, mean and sd of a curve by the trapezoid rule."""
  area = np.trapezoid(density, grid)
  mean = np.trapezoid(grid * density, grid) / area
  sd = np.sqrt(np.trapezoid((grid - mean)**2 * density, grid) / area)
  return area, mean, sd


def assert_matches_summary(fig, model, parameters, area_tol=2e-3):
  summary = model.posterior_summary()
  curves = vi_curves(fig)
  names = {"weights": "weight", "means": "mean", "stddevs": "sd"}
  checked = 0
  for title, (grid, density) in curves.items():
    name = next(n for n, short in names.items()
                if title.startswith(short + " "))
    assert name in parameters
    c = int(title.split()[1].rstrip(","))
    index = (c,) if name == "weights" else (c, int(title.split()[-1]))
    area, mean, sd = moments(grid, density)
    expected_sd = summary[name + "_sd"][index]
    assert area == pytest.approx(1.0, abs=area_tol), title
    assert mean == pytest.approx(summary[name][index],
                                 abs=0.01 * expected_sd), title
    assert sd == pytest.approx(expected_sd, rel=0.01), title
    checked += 1
  return checked


def test_plot_posterior_with_mcmc(model_small, mcmc_small, tmp_path):
  path = tmp_path / "posterior.png"
  fig = plotting.plot_posterior(model_small, mcmc_small, path,
                                parameters=("weights", "means", "stddevs"))
  assert isinstance(fig, Figure)
  assert_png_file(path)
  assert len(fig.axes) == 2 * 3
  assert assert_matches_summary(fig, model_small,
                                ("weights", "means", "stddevs")) == 6
  draws = mcmc_small.draws()
  for ax in fig.axes:
    hist = [p for p in ax.patches if p.get_label().startswith("MCMC")]
    assert len(hist) == 1, ax.get_title()
    kind, c = ax.get_title().split()[:2]
    c = int(c.rstrip(","))
    name = {"weight": "weights", "mean": "means", "sd": "stddevs"}[kind]
    values = draws[name][:, :, c] if name == "weights" else (
        draws[name][:, :, c, 0])
    assert f"MCMC: {values.mean():.4g} " in hist[0].get_label()
  # The VI and MCMC means of each component agree (same labelling).
  np.testing.assert_allclose(mcmc_small.means.mean((0, 1)),
                             model_small.posterior_mean()["means"], atol=0.3)


def test_plot_posterior_full_covariance(model_full, tmp_path):
  path = tmp_path / "posterior_full.png"
  fig = plotting.plot_posterior(model_full, path=path,
                                parameters=("stddevs", "means", "weights"),
                                feature_names=["u", "v"])
  assert_png_file(path)
  # Columns in canonical order: weight, means per feature, sds per feature.
  assert [ax.get_title() for ax in fig.axes[:5]] == [
      "weight 0", "mean 0, u", "mean 0, v", "sd 0, u", "sd 0, v"]
  assert not any(p.get_label().startswith("MCMC")
                 for ax in fig.axes for p in ax.patches)
  # Titles name the features, so check the moments against the summary by
  # feature position.
  summary = model_full.posterior_summary()
  for ax in fig.axes:
    (grid, density), = [(l.get_xdata(), l.get_ydata()) for l in ax.lines
                        if l.get_gid() == "vi"]
    kind, c, *feature = ax.get_title().replace(",", "").split()
    name = {"weight": "weights", "mean": "means", "sd": "stddevs"}[kind]
    index = (int(c),) + tuple("uv".index(f) for f in feature)
    area, mean, sd = moments(grid, density)
    assert area == pytest.approx(1.0, abs=2e-3)
    assert mean == pytest.approx(summary[name][index],
                                 abs=0.01 * summary[name + "_sd"][index])
    assert sd == pytest.approx(summary[name + "_sd"][index], rel=0.01)


def test_plot_posterior_independent_prior(data_1d):
  model = tfgmm.fit(data_1d, 2, seed=0, n_init=2, mean_prior="independent")
  fig = plotting.plot_posterior(model, parameters="means")
  assert len(fig.axes) == 2
  assert assert_matches_summary(fig, model, ("means",)) == 2
  render(fig)


def test_plot_posterior_stick_breaking_weights(data_1d):
  model = tfgmm.fit(data_1d, 4, seed=0, n_init=2,
                    weight_prior="dirichlet_process")
  summary = model.posterior_summary()
  fig = plotting.plot_posterior(model, parameters=["weights"])
  # By default the components with E[pi] >= 0.001 are shown.
  shown = np.flatnonzero(summary["weights"] >= 1e-3)
  assert [ax.get_title() for ax in fig.axes] == [f"weight {c}" for c in shown]
  for c, (grid, density) in zip(shown, vi_curves(fig).values()):
    # Monte Carlo: 20,000 draws, 0.1% of them outside the plotted range.
    area, mean, sd = moments(grid, density)
    assert area == pytest.approx(0.999, abs=1e-9)
    assert mean == pytest.approx(summary["weights"][c],
                                 abs=0.05 * summary["weights_sd"][c])
    assert sd == pytest.approx(summary["weights_sd"][c], rel=0.05)
  render(fig)


def test_plot_posterior_selection_and_single_component(model_2d, data_1d):
  fig = plotting.plot_posterior(model_2d, components=[2, 0], features=[1])
  assert [ax.get_title() for ax in fig.axes] == [
      "weight 2", "mean 2, feature 1", "weight 0", "mean 0, feature 1"]
  single = tfgmm.fit(data_1d, 1, seed=0, n_init=1)
  fig = plotting.plot_posterior(single)
  assert not fig.axes[0].lines and fig.axes[0].texts        # weight = 1
  render(fig)


def test_plot_posterior_empty_components(data_small):
  # Surplus components keep (about) the prior: a Beta(alpha < 1) weight,
  # unbounded at 0, and heavy-tailed means and standard deviations.
  model = tfgmm.fit(data_small, 5, seed=0, n_init=1)
  weights = model.posterior_mean()["weights"]
  empty = np.flatnonzero(weights < 0.01)
  assert empty.size
  fig = plotting.plot_posterior(model, components=range(5),
                                parameters=("weights", "means", "stddevs"))
  for title, (grid, density) in vi_curves(fig).items():
    assert np.all(np.isfinite(density)), title
    assert np.trapezoid(density, grid) == pytest.approx(1.0, abs=0.02), title
  spiky = fig.axes[3 * empty[0]]
  assert spiky.get_title() == f"weight {empty[0]}"
  # The spike at 0 is cut so the rest of the curve shows.
  assert spiky.get_ylim()[1] < spiky.lines[0].get_ydata().max() / 100
  render(fig)


@pytest.mark.parametrize("kwargs, message", [
    ({"parameters": ("weights", "covariances")}, "parameters"),
    ({"parameters": ()}, "parameters"),
    ({"parameters": ("means", "means")}, "parameters"),
    ({"components": [3]}, r"components.*\[0, 3\)"),
    ({"components": [0, 0]}, "components"),
    ({"components": []}, "components"),
    ({"features": [2]}, r"features.*\[0, 2\)"),
    ({"features": 1}, "features"),
    ({"feature_names": ["u"]}, "feature_names"),
])
def test_plot_posterior_argument_errors(model_2d, kwargs, message, tmp_path):
  with pytest.raises(ValueError, match=message):
    plotting.plot_posterior(model_2d, path=tmp_path / "p.png", **kwargs)
  assert not list(tmp_path.iterdir())


def test_plot_posterior_rejects_a_foreign_mcmc_result(model_2d, mcmc_small):
  with pytest.raises(ValueError, match="K=3 components and D=2"):
    plotting.plot_posterior(model_2d, mcmc_small)
  with pytest.raises(TypeError, match="MCMCResult"):
    plotting.plot_posterior(model_2d, {"weights": np.ones((2, 2, 3))})


# ------------------------------------------------ assignment uncertainty

def test_plot_assignment_uncertainty_1d(model_1d, data_1d, tmp_path):
  path = tmp_path / "uncertainty.png"
  fig = plotting.plot_assignment_uncertainty(model_1d, data_1d[:, 0], path)
  assert_png_file(path)
  left, right = fig.axes
  curve = next(l for l in left.lines if l.get_gid() == "max_probability")
  grid = curve.get_xdata()
  r = model_1d.responsibilities(grid[:, None]).numpy()
  np.testing.assert_allclose(curve.get_ydata(), r.max(1), rtol=1e-6)
  entropy = next(l for l in left.lines if l.get_gid() == "entropy")
  assert np.all((entropy.get_ydata() >= 0) & (entropy.get_ydata() <= 1))
  points = left.collections[0]
  labels, max_p, _ = metrics.assignment_uncertainty(
      model_1d.responsibilities(data_1d))
  np.testing.assert_allclose(points.get_offsets()[:, 1], max_p, rtol=1e-6)
  np.testing.assert_array_equal(points.get_array(), labels)
  # The stacked histogram counts every point once.
  assert sum(p.get_height() for p in right.patches) == len(data_1d)


def test_plot_assignment_uncertainty_with_mcmc(model_small, data_small,
                                               mcmc_small, tmp_path):
  path = tmp_path / "uncertainty_mcmc.png"
  fig = plotting.plot_assignment_uncertainty(model_small, data_small, path,
                                             mcmc=mcmc_small)
  assert_png_file(path)
  assert "MCMC-averaged (2 chains x 50 draws)" in fig._suptitle.get_text()
  _, max_p, _ = metrics.assignment_uncertainty(
      mcmc_small.assignment_probabilities(data_small))
  np.testing.assert_allclose(fig.axes[0].collections[0].get_offsets()[:, 1],
                             max_p, rtol=1e-9)


def test_plot_assignment_uncertainty_2d(model_2d, data_2d, tmp_path):
  path = tmp_path / "uncertainty_2d.png"
  fig = plotting.plot_assignment_uncertainty(
      model_2d, data_2d, path, features=(1, 0), feature_names=["u", "v"])
  assert_png_file(path)
  assert len(fig.axes) == 3                                  # and a colour bar
  left = fig.axes[0]
  assert (left.get_xlabel(), left.get_ylabel()) == ("v", "u")
  points = left.collections[0]
  _, _, entropy = metrics.assignment_uncertainty(
      model_2d.responsibilities(data_2d))
  # Coloured by entropy, drawn in increasing order of it.
  order = np.argsort(entropy, kind="stable")
  np.testing.assert_allclose(points.get_array(), entropy[order], atol=1e-12)
  np.testing.assert_allclose(points.get_offsets(), data_2d[order][:, ::-1])
  assert points.get_clim() == pytest.approx((0.0, np.log(3)))
  assert sum(p.get_height() for p in fig.axes[1].patches) == len(data_2d)


def test_plot_assignment_uncertainty_errors(model_2d, data_2d, mcmc_small):
  with pytest.raises(ValueError, match=r"2 dims.*x.shape=\(450,\)"):
    plotting.plot_assignment_uncertainty(model_2d, data_2d[:, 0])
  with pytest.raises(ValueError, match="features"):
    plotting.plot_assignment_uncertainty(model_2d, data_2d, features=(0, 0))
  with pytest.raises(ValueError, match="D=2"):
    plotting.plot_assignment_uncertainty(model_2d, data_2d, mcmc=mcmc_small)
