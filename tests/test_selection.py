"""tfgmm.select_components: choosing K."""

import math

import numpy as np
import pytest

import tfgmm
from tests.helpers import PNG_SIGNATURE


def _data(seed, k=3, n=600):
  """k well-separated clusters: unit-variance blobs whose means sit on a
  randomly rotated circle of radius 8 (neighbours >= 8 sd apart for k <= 6),
  with uneven sizes."""
  rng = np.random.default_rng(seed)
  angles = rng.uniform(0, 2 * np.pi) + 2 * np.pi * np.arange(k) / k
  means = 8.0 * np.stack([np.cos(angles), np.sin(angles)], 1)      # [k, 2]
  labels = rng.choice(k, size=n, p=rng.dirichlet(5.0 * np.ones(k)))
  return means[labels] + rng.normal(size=(n, 2))


@pytest.mark.parametrize("seed", range(5))
def test_elbo_picks_the_true_k_on_every_seed(seed):
  """Measured over seeds 0-9 for every covariance type: 40 of 40 pick 3."""
  x = _data(seed)
  selection = tfgmm.select_components(x, range(1, 6), seed=seed)
  assert selection.n_components == 3, selection.table
  assert selection.model.n_components == 3
  assert selection.table["n_components"] == [1, 2, 3, 4, 5]
  # The table's score is the model's bound plus log(K_eff!).
  k_eff = selection.table["effective_components"][2]
  np.testing.assert_allclose(
      selection.table["score"][2],
      float(selection.model.elbo(x)) + math.lgamma(k_eff + 1), rtol=1e-9)


@pytest.mark.parametrize("covariance_type", ["full", "spherical", "tied"])
def test_elbo_picks_the_true_k_for_every_covariance_type(covariance_type):
  selection = tfgmm.select_components(_data(11), range(2, 5), seed=0,
                                      covariance_type=covariance_type)
  assert selection.n_components == 3, selection.table
  assert selection.model.covariance_type == covariance_type


def test_files_stream_to_the_arrays_table(tmp_path):
  """Data files: each K is a streamed fit (the in-memory CAVI's steps), so
  the table matches the array's: the same K, effective components and
  scores (float64 file reads; the fits' float32 sums differ slightly)."""
  x = _data(3)
  for i, part in enumerate(np.array_split(x, 3)):
    np.save(tmp_path / f"part-{i}.npy", part)
  streamed = tfgmm.select_components(str(tmp_path / "part-*.npy"),
                                     range(1, 5), seed=0)
  loaded = tfgmm.select_components(x, range(1, 5), seed=0)
  assert streamed.n_components == loaded.n_components == 3
  assert (streamed.table["effective_components"]
          == loaded.table["effective_components"])
  np.testing.assert_allclose(streamed.table["score"], loaded.table["score"],
                             rtol=1e-5)
  with pytest.raises(ValueError, match="criterion 'elbo' only"):
    tfgmm.select_components(str(tmp_path / "part-*.npy"), range(1, 3),
                            criterion="bic")


def test_heldout_and_bic_pick_the_true_k():
  x = _data(7)
  heldout = tfgmm.select_components(x, [1, 2, 3, 4, 5], criterion="heldout",
                                    seed=0)
  assert heldout.n_components == 3, heldout.table
  assert heldout.model.num_examples.numpy() == len(x)    # refitted on all
  bic = tfgmm.select_components(x, [1, 2, 3, 4, 5], criterion="bic")
  assert bic.n_components == 3, bic.table
  assert np.argmin(bic.table["score"]) == 2
  # BIC by hand for K = 3 (MAP keeps all three).
  model = tfgmm.fit(x, 3, method="map", seed=0)
  want = (-2 * float(np.sum(model.log_prob(x))) + (2 + 2 * 3 * 2)
          * math.log(len(x)))
  np.testing.assert_allclose(bic.table["score"][2], want, rtol=1e-9)


def test_dirichlet_process_scores_the_bound_alone():
  x = _data(1)
  selection = tfgmm.select_components(x, [3], seed=0,
                                      weight_prior="dirichlet_process")
  np.testing.assert_allclose(selection.table["score"][0],
                             float(selection.model.elbo(x)), rtol=1e-12)


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(criterion="aic"), ValueError, "criterion='aic'"),
    (dict(candidates=[0, 2]), ValueError, "candidates=0"),
    (dict(candidates=[]), ValueError, r"candidates=\[\]"),
    (dict(candidates=3), TypeError, "candidates=3"),
    (dict(criterion="heldout", validation_fraction=1.5), ValueError,
     "validation_fraction=1.5"),
    (dict(method="gradient"), ValueError, "method='gradient'"),
])
def test_bad_arguments(kwargs, error, match):
  with pytest.raises(error, match=match):
    tfgmm.select_components(_data(0, n=60), **kwargs)


def test_plot_model_selection(tmp_path):
  selection = tfgmm.select_components(_data(2, n=300), [1, 2, 3], seed=0)
  path = tmp_path / "selection.png"
  fig = tfgmm.plotting.plot_model_selection(selection, path)
  assert path.read_bytes()[:8] == PNG_SIGNATURE
  line = fig.axes[0].lines[0]
  np.testing.assert_allclose(line.get_ydata(), selection.table["score"])
  with pytest.raises(TypeError, match="select_components"):
    tfgmm.plotting.plot_model_selection({"score": [1.0]})
