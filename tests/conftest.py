"""Shared fixtures: seeded data sets used across the tests."""

import numpy as np
import pytest


def blog_data(n_per_cluster=1000, seed=12345):
  """The seed TFP blog's data: three unit-variance 2-D clusters, [3n, 2]."""
  rng = np.random.default_rng(seed)
  x = rng.standard_normal((3 * n_per_cluster, 2))
  x[:n_per_cluster] += [2.0, 0.0]
  x[n_per_cluster:2 * n_per_cluster] -= [2.0, 4.0]
  x[2 * n_per_cluster:] += [-2.0, 4.0]
  labels = np.repeat(np.arange(3), n_per_cluster)
  return x, labels


@pytest.fixture(scope="session")
def blog():
  return blog_data()


@pytest.fixture
def rng():
  return np.random.default_rng(0)
