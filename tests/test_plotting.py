"""Tests of tfgmm.plotting: every figure renders headless to a valid PNG."""

import io

import keras
import numpy as np
import pytest
from matplotlib.figure import Figure

import tfgmm
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
  with pytest.raises(ValueError, match=r"\[N, 2\]"):
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
