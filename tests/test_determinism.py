"""Same seed, same data, same machine: identical parameters, every method."""

import numpy as np
import pytest

import tfgmm


@pytest.mark.parametrize("method,kwargs", [
    ("natural", dict(weight_prior="dirichlet_process")),
    ("natural", dict(covariance_type="full")),
    ("gradient", {}),
    ("sampled", dict(mean_prior="independent")),
])
def test_same_seed_gives_identical_parameters(blog, method, kwargs):
  x = blog[0][::3]
  fits = []
  for _ in range(2):
    model = tfgmm.fit(x, 3, method=method, seed=11, max_epochs=4,
                      batch_size=None if method == "natural" else 250,
                      n_init=1, **kwargs)
    fits.append(model)
  for a, b in zip(fits[0].posterior(), fits[1].posterior()):
    np.testing.assert_array_equal(a.numpy(), b.numpy())
  np.testing.assert_array_equal(fits[0].training_history["loss"],
                                fits[1].training_history["loss"])
  np.testing.assert_array_equal(fits[0].sample(5), fits[1].sample(5))
  np.testing.assert_array_equal(fits[0].assign(x, temperature=1.0),
                                fits[1].assign(x, temperature=1.0))


def test_minibatch_natural_fit_is_deterministic(blog):
  x = blog[0]
  params = []
  for _ in range(2):
    model = tfgmm.BayesianGMM(3, 2, seed=5)
    model.fit(tfgmm.make_dataset(x, 300, seed=5), epochs=3, verbose=0)
    params.append([t.numpy() for t in model.posterior()])
  for a, b in zip(*params):
    np.testing.assert_array_equal(a, b)


def test_map_fit_is_deterministic(blog):
  x = blog[0][::3]
  fits = [tfgmm.fit(x, 3, method="map", seed=11, n_init=8) for _ in range(2)]
  for name in ("weights", "means", "precisions", "restart_log_posteriors",
               "history"):
    np.testing.assert_array_equal(getattr(fits[0], name),
                                  getattr(fits[1], name), err_msg=name)
  np.testing.assert_array_equal(fits[0].sample(5), fits[1].sample(5))
  np.testing.assert_array_equal(fits[0].assign(x, temperature=1.0),
                                fits[1].assign(x, temperature=1.0))
