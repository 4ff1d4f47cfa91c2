"""k-means++ seeding for the mixture's initial responsibilities."""

import numpy as np


def kmeans_plusplus(x, n_components, rng):
  """k-means++ centres (Arthur and Vassilvitskii 2007), [K, D].

  Each new centre is a data row drawn with probability proportional to its
  squared distance from the nearest centre so far; when every row already
  sits on a centre (K > distinct rows) the draw is uniform.

  Args:
    x: rows, float64 [n, D].
    n_components: K.
    rng: a `numpy.random.Generator`.

  Returns:
    centres: [K, D].
  """
  n = x.shape[0]
  centres = np.empty((n_components, x.shape[1]), x.dtype)
  centres[0] = x[rng.integers(n)]
  nearest = np.square(x - centres[0]).sum(1)                     # [n]
  for k in range(1, n_components):
    total = nearest.sum()
    if total > 0:
      index = rng.choice(n, p=nearest / total)
    else:
      index = rng.integers(n)
    centres[k] = x[index]
    nearest = np.minimum(nearest, np.square(x - centres[k]).sum(1))
  return centres


def hard_responsibilities(x, centres):
  """One-hot responsibilities of each row's nearest centre, [n, K]."""
  distance = (np.square(x).sum(1)[:, None] - 2.0 * x @ centres.T
              + np.square(centres).sum(1)[None, :])               # [n, K]
  labels = np.argmin(distance, 1)
  return np.eye(centres.shape[0], dtype=x.dtype)[labels]
