"""k-means++ seeding for the mixture's initial responsibilities."""

import numpy as np

# Responsibilities below this are left out of a split's principal axis.
_NEGLIGIBLE = 1e-8


def kmeans_plusplus(x, n_components, rng, n_local_trials=None,
                    sample_weight=None, n_init=None):
  """Greedy k-means++ centres (Arthur and Vassilvitskii 2007), [K, D].

  Each new centre is chosen among `n_local_trials` candidate rows, each drawn
  with probability proportional to its squared distance from the nearest
  centre so far: the candidate that most lowers the total squared distance
  wins (the greedy variant, 2 + log K trials by default, as in
  scikit-learn). When every row already sits on a centre (K > distinct rows)
  the draw is uniform.

  Args:
    x: rows, float64 [n, D].
    n_components: K.
    rng: a `numpy.random.Generator`.
    n_local_trials: candidates per centre; None for 2 + int(log K).
    sample_weight: optional row weights [n]: draws and the total squared
      distance are weighted (a zero-weight row is never a centre).
    n_init: None, or a number R of independent seedings drawn together:
      each step measures every seeding's candidates in one pass over x.

  Returns:
    centres: [K, D], or [R, K, D] with `n_init`.
  """
  n = x.shape[0]
  restarts = 1 if n_init is None else n_init
  if n_local_trials is None:
    n_local_trials = 2 + int(np.log(n_components))
  # Unweighted rows use the plain sums (and so the same random stream).
  w = sample_weight                                               # [n] or None
  weigh = (lambda d: d) if w is None else (lambda d: w * d)       # noqa: E731
  squared_norms = np.square(x).sum(1)                             # [n]
  centres = np.empty((restarts, n_components, x.shape[1]), x.dtype)
  first = [rng.integers(n) if w is None else rng.choice(n, p=w / w.sum())
           for _ in range(restarts)]
  centres[:, 0] = x[first]
  nearest = _squared_distances(x, squared_norms, x[first])        # [R, n]
  candidates = np.empty((restarts, n_local_trials), np.int64)     # [R, T]
  for k in range(1, n_components):
    for r in range(restarts):
      total = weigh(nearest[r]).sum()
      if total > 0:
        candidates[r] = rng.choice(n, size=n_local_trials,
                                   p=weigh(nearest[r]) / total)
      elif w is None:
        candidates[r] = rng.integers(n, size=1)
      else:
        candidates[r] = rng.choice(n, size=1, p=w / w.sum())
    distances = np.minimum(nearest[:, None], _squared_distances(
        x, squared_norms, x[candidates.ravel()]).reshape(
            restarts, n_local_trials, n))                         # [R, T, n]
    best = np.argmin(weigh(distances).sum(-1), -1)                # [R]
    centres[:, k] = x[candidates[np.arange(restarts), best]]
    nearest = distances[np.arange(restarts), best]
  return centres[0] if n_init is None else centres


def _squared_distances(x, squared_norms, centres):
  """|x_n - c_j|^2 for each centre and row, [J, n] (clamped at zero)."""
  distances = centres @ x.T                                       # [J, n]
  distances *= -2.0                   # in place: no [J, n] temporaries
  distances += squared_norms
  distances += np.square(centres).sum(1)[:, None]
  return np.maximum(distances, 0.0, out=distances)


def nearest_centre(x, centres, chunk=8192):
  """The index of each row's nearest centre: [n] int for centres [K, D],
  [R, n] for R sets of centres [R, K, D] (measured in one pass over x)."""
  flat = centres.reshape(-1, centres.shape[-1])                   # [R K, D]
  labels = np.empty((flat.shape[0] // centres.shape[-2], x.shape[0]),
                    np.int64)                                     # [R, n]
  for start in range(0, x.shape[0], chunk):
    rows = x[start:start + chunk]
    distances = _squared_distances(rows, np.square(rows).sum(1), flat)
    labels[:, start:start + chunk] = np.argmin(
        distances.reshape(labels.shape[0], centres.shape[-2], -1), 1)
  return labels.reshape(centres.shape[:-2] + x.shape[:1])


def split_proposals(x, responsibilities, log_likelihood, n_proposals,
                    min_share=0.1, sample_weight=None):
  """Split moves that refill an empty component: initial responsibilities.

  Variational Bayes empties (or all but empties) a component whose seed shared a cluster with
  another's, while a lone component covers two clusters elsewhere: a local
  optimum CAVI cannot leave. Each proposal hands the first empty component
  half of one live component: the rows on the positive side of that
  component's principal axis (the top eigenvector of its weighted
  covariance). The candidates are the live components whose rows are worst
  explained (lowest mean log-likelihood), one per proposal.

  Args:
    x: rows, float64 [n, D].
    responsibilities: current r, [n, K].
    log_likelihood: each row's logsumexp_k log_rho, [n].
    n_proposals: at most this many proposals.
    min_share: components with fewer soft counts than this share of an even
      split (n / K) count as empty. A wrong guess costs time, not accuracy:
      a split is kept only if it raises the bound.
    sample_weight: optional row weights [n] for the counts and covariances.

  Returns:
    [P, n, K] initial responsibilities, or None when no component is empty
    or none is live.
  """
  w = np.ones(x.shape[0]) if sample_weight is None else sample_weight
  weighted = responsibilities * w[:, None]                         # [n, K]
  counts = weighted.sum(0)                                         # [K]
  min_count = max(1.0, min_share * w.sum() / counts.size)
  empty = np.flatnonzero(counts < min_count)
  live = np.flatnonzero(counts >= min_count)
  if empty.size == 0 or live.size == 0:
    return None
  empty = empty[np.argsort(counts[empty])]                         # emptiest first
  fit = (weighted[:, live] * log_likelihood[:, None]).sum(0) / counts[live]
  candidates = live[np.argsort(fit)[:n_proposals]]
  proposals = np.repeat(responsibilities[None], candidates.size, 0)
  for proposal, k in zip(proposals, candidates):
    # The component's rows: those with a negligible share (the most, with
    # many components) change neither its covariance nor the proposal.
    rows = np.flatnonzero(responsibilities[:, k] > _NEGLIGIBLE)    # [m]
    weight = weighted[rows, k]                                     # [m]
    mean = weight @ x[rows] / weight.sum()                         # [D]
    centred = x[rows] - mean                                       # [m, D]
    covariance = (centred * weight[:, None]).T @ centred / weight.sum()
    axis = np.linalg.eigh(covariance)[1][:, -1]                    # [D]
    side = rows[centred @ axis > 0]
    proposal[side, empty[0]] = responsibilities[side, k]
    proposal[side, k] = 0.0
  return proposals


def merge_proposals(responsibilities, n_proposals, min_overlap=0.3,
                    min_share=0.1, sample_weight=None):
  """Merge moves that fold a duplicate component into its twin.

  CAVI converges slowly, or stops, where two components share one cluster:
  the smaller drains only a little per iteration. Each proposal gives one
  pair's responsibilities to the larger component and empties the smaller
  (Hughes and Sudderth 2013). The pairs are the live components whose
  responsibilities overlap most (the cosine similarity of their
  responsibility columns), at least `min_overlap`. A merge is kept only if
  it raises the bound.

  Args:
    responsibilities: current r, [n, K].
    n_proposals: at most this many proposals.
    min_overlap: pairs with a smaller cosine similarity are not proposed.
    min_share: components with fewer soft counts than this share of an even
      split (n / K) are empty already, not candidates.
    sample_weight: optional row weights [n].

  Returns:
    [P, n, K] initial responsibilities, or None when no live pair overlaps.
  """
  w = (np.ones(responsibilities.shape[0]) if sample_weight is None
       else sample_weight)
  counts = w @ responsibilities                                    # [K]
  live = np.flatnonzero(
      counts >= max(1.0, min_share * w.sum() / counts.size))
  weighted = responsibilities[:, live] * np.sqrt(w)[:, None]       # [n, L]
  gram = weighted.T @ weighted                                     # [L, L]
  norms = np.sqrt(np.diag(gram))
  overlap = np.triu(gram / np.outer(norms, norms), 1)              # [L, L]
  order = np.argsort(overlap, axis=None)[::-1][:n_proposals]
  pairs = [live[list(np.unravel_index(i, overlap.shape))] for i in order
           if overlap.flat[i] >= min_overlap]
  if not pairs:
    return None
  proposals = np.repeat(responsibilities[None], len(pairs), 0)
  for proposal, (j, k) in zip(proposals, pairs):
    keep, drop = (j, k) if counts[j] >= counts[k] else (k, j)
    proposal[:, keep] += proposal[:, drop]
    proposal[:, drop] = 0.0
  return proposals
