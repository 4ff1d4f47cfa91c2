"""Label switching and metrics: matching, accuracy, ARI, log loss, held-out fit.

A mixture's likelihood does not change when its components are relabelled, so
component k of a fit means nothing by itself. tfgmm fixes one labelling, the
canonical order: components by decreasing expected weight E[pi_k] (`fit`
leaves them so, `BayesianGMM.sort_components` restores it, `canonical_order`
computes it for any fit). That order is reproducible from run to run only
while the weights are well apart; against reference labels, or another fit,
the components are matched by the Hungarian algorithm
(`scipy.optimize.linear_sum_assignment`) instead:

- labels: the contingency table of predicted and reference labels, matched
  to maximise the number of agreeing rows (`match_labels`, `relabel`,
  `matched_accuracy`, `log_loss`);
- parameters: the components' means, standardised by the pooled
  within-component scale, matched to minimise the sum of squared distances
  (`compare_fits`).

`adjusted_rand_index` needs no matching (it compares the partitions), and
`heldout_log_likelihood` none either (the predictive density sums over
components). Everything here is NumPy and SciPy on arrays: model outputs
(tensors) are converted.

#### Mathematical Details

With the contingency table n_ij (rows with reference label i and predicted
label j), row sums a_i, column sums b_j and N rows, the adjusted Rand index
of Hubert and Arabie [1] is

```none
index    = sum_ij C(n_ij, 2)
expected = sum_i C(a_i, 2) sum_j C(b_j, 2) / C(N, 2)
maximum  = (sum_i C(a_i, 2) + sum_j C(b_j, 2)) / 2
ARI      = (index - expected) / (maximum - expected)
```

computed here in exact integer arithmetic; where maximum = expected (both
labelings one cluster, or both all singletons: then they are identical) the
ARI is 1, as in scikit-learn.

#### Examples

```python
import tfgmm
from tfgmm import metrics

model = tfgmm.fit(x, 3, seed=0)
labels = model.assign(x_test)                            # [N] int32
metrics.matched_accuracy(y_test, labels)                 # in [0, 1]
metrics.adjusted_rand_index(y_test, labels)              # 1 = same partition
metrics.log_loss(y_test, model.responsibilities(x_test)) # nats per row
metrics.relabel(labels, y_test)                          # labels in y's terms
metrics.heldout_log_likelihood(model, x_test,
                               reference=(weights, means, variances))
other = tfgmm.fit(x, 3, seed=1)
metrics.compare_fits(model, other).max_abs_diff          # {"weights": ...}
```

#### References

[1] Hubert, L. and Arabie, P. Comparing partitions. Journal of
    Classification 2, 1985.
[2] Kuhn, H. W. The Hungarian method for the assignment problem. Naval
    Research Logistics Quarterly 2, 1955.
[3] Stephens, M. Dealing with label switching in mixture models. JRSS B 62,
    2000.
"""

import math
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
import scipy.optimize
import scipy.special

from tfgmm import _validation

__all__ = [
    "FitComparison",
    "adjusted_rand_index",
    "assignment_uncertainty",
    "canonical_order",
    "compare_fits",
    "heldout_log_likelihood",
    "log_loss",
    "match_labels",
    "matched_accuracy",
    "mixture_log_density",
    "relabel",
]

# Rows of `probabilities` (and mixture weights) must sum to 1 within this:
# float32 responsibilities of a few hundred components stay well inside it.
ROW_SUM_ATOL = 1e-4
# log(0) in `log_loss` becomes log of the smallest positive normal float64,
# about -708.4: a finite, very large loss for the row.
PROBABILITY_FLOOR = float(np.finfo(np.float64).tiny)
# Rows per chunk of `mixture_log_density`: its [rows, K, D] temporaries stay
# within about this many elements.
_CHUNK_ELEMENTS = 1 << 21
_LOG_2PI = math.log(2.0 * math.pi)


# ------------------------------------------------------------------ checks


def _as_array(name, value):
  if isinstance(value, (str, bytes)):
    raise TypeError(f"Expected `{name}` to be an array. "
                    f"Received: {name}={_validation.describe(value)}.")
  if hasattr(value, "numpy") and not isinstance(value, np.ndarray):
    value = value.numpy()                                   # tf.Tensor
  try:
    return np.asarray(value)
  except (TypeError, ValueError):
    raise TypeError(f"Expected `{name}` to be an array. "
                    f"Received: {name}={_validation.describe(value)}.") from None


# ---------------------------------------------------------- label matching


def _contingency(labels_pred, labels_true):
  """Distinct labels and the dense contingency table [n_pred, n_true]."""
  clusters, cluster_idx = np.unique(labels_pred, return_inverse=True)
  classes, class_idx = np.unique(labels_true, return_inverse=True)
  table = np.bincount(cluster_idx * classes.size + class_idx,
                      minlength=clusters.size * classes.size)
  return clusters, classes, table.reshape(clusters.size, classes.size)


def _hungarian(table):
  """Row and column indices of the assignment maximising the total count."""
  return scipy.optimize.linear_sum_assignment(table, maximize=True)


def match_labels(labels_pred, labels_true):
  """The matching of predicted to reference labels with the most agreement.

  The Hungarian algorithm on the contingency table (rows with predicted label
  p and reference label t) pairs each predicted label with at most one
  reference label, and vice versa, maximising the number of rows whose
  predicted label is paired with their reference label. Labels are arbitrary
  integers and their numbers may differ: with more predicted than reference
  labels some predicted labels stay unpaired (absent from the result), with
  fewer some reference labels do. Only labels that occur are matched. Ties
  are broken deterministically by `scipy.optimize.linear_sum_assignment`.

  Args:
    labels_pred: int array-like [N], e.g. `model.assign(x)` (a tensor is
      fine).
    labels_true: int array-like [N], the reference labels.

  Returns:
    dict {predicted label: reference label} of Python ints, in increasing
    order of the predicted label; min(#predicted, #reference) entries.

  Raises:
    TypeError: labels that are not integers.
    ValueError: wrong rank, no labels, or different lengths.
  """
  labels_pred, labels_true = _validation.check_label_pair(
      "labels_pred", labels_pred, "labels_true", labels_true)
  clusters, classes, table = _contingency(labels_pred, labels_true)
  rows, cols = _hungarian(table)
  return {int(clusters[r]): int(classes[c]) for r, c in zip(rows, cols)}


def relabel(labels_pred, labels_true):
  """Predicted labels renamed to the reference labels they match.

  Uses `match_labels`. A predicted label left unpaired (more predicted than
  reference labels) gets a fresh label max(labels_true) + 1, + 2, ... in
  increasing order of the predicted label, so distinct predicted labels stay
  distinct: the partition is unchanged, only its names are.

  Args:
    labels_pred: int array-like [N].
    labels_true: int array-like [N].

  Returns:
    int64 numpy [N]: `labels_pred` in the reference's labels.
  """
  labels_pred, labels_true = _validation.check_label_pair(
      "labels_pred", labels_pred, "labels_true", labels_true)
  clusters, classes, table = _contingency(labels_pred, labels_true)
  rows, cols = _hungarian(table)
  names = np.full(clusters.size, -1, np.int64)
  names[rows] = classes[cols]
  unpaired = np.setdiff1d(np.arange(clusters.size), rows)
  names[unpaired] = classes[-1] + 1 + np.arange(unpaired.size)
  return names[np.searchsorted(clusters, labels_pred)]


def matched_accuracy(labels_true, labels_pred):
  """Accuracy after the Hungarian matching of predicted to reference labels.

  The fraction of rows whose predicted label is paired (see `match_labels`)
  with their reference label: invariant under any renaming of either
  labeling. Rows of unpaired predicted labels count as errors.

  Args:
    labels_true: int array-like [N], the reference labels.
    labels_pred: int array-like [N], e.g. `model.assign(x)`.

  Returns:
    float in [0, 1].
  """
  labels_true, labels_pred = _validation.check_label_pair(
      "labels_true", labels_true, "labels_pred", labels_pred)
  _, _, table = _contingency(labels_pred, labels_true)
  rows, cols = _hungarian(table)
  return float(table[rows, cols].sum() / labels_true.shape[0])


def _pairs(counts):
  """sum C(n, 2) over `counts`, as a Python int."""
  counts = np.asarray(counts, np.int64)
  return int(np.sum(counts * (counts - 1) // 2))


def adjusted_rand_index(labels_true, labels_pred):
  """The Hubert-Arabie adjusted Rand index of two labelings.

  1 for the same partition (whatever the labels' names), about 0 for
  independent labelings in expectation, negative below chance. See the
  module's Mathematical Details; symmetric in its arguments. Counts only the
  table's non-empty cells, so many labels (e.g. all singletons) cost
  O(N log N).

  Args:
    labels_true: int array-like [N].
    labels_pred: int array-like [N].

  Returns:
    float in [-1, 1].
  """
  labels_true, labels_pred = _validation.check_label_pair(
      "labels_true", labels_true, "labels_pred", labels_pred)
  clusters, cluster_idx = np.unique(labels_pred, return_inverse=True)
  _, class_idx = np.unique(labels_true, return_inverse=True)
  _, cells = np.unique(class_idx * clusters.size + cluster_idx,
                       return_counts=True)
  index = _pairs(cells)
  a = _pairs(np.bincount(class_idx))
  b = _pairs(np.bincount(cluster_idx))
  m = _pairs([labels_true.shape[0]])
  # (index - a b / m) / ((a + b) / 2 - a b / m), times 2 m: exact integers.
  numerator = 2 * (index * m - a * b)
  denominator = (a + b) * m - 2 * a * b
  if denominator == 0:
    return 1.0
  return numerator / denominator


def assignment_uncertainty(probabilities):
  """Each point's label, its probability and the entropy of its assignment.

  ```none
  label_n   = argmax_k p_nk                 (the first on ties)
  max_p_n   = p_n,label_n                   in [1 / K, 1]
  entropy_n = -sum_k p_nk log p_nk          in [0, log K] nats, 0 log 0 = 0
  ```

  Works on any assignment probabilities: `model.responsibilities(x)` (the
  posterior given the fit), or `MCMCResult.assignment_probabilities(x)`
  (averaged over posterior draws).

  Args:
    probabilities: p(z_n = k | ...), array-like [N, K] (numpy or tensor),
      non-negative, each row summing to 1 within `ROW_SUM_ATOL` (rows are
      renormalised).

  Returns:
    (labels, max_probability, entropy): numpy int64 [N], float64 [N] and
    float64 [N].
  """
  p = _validation.check_probabilities("probabilities", probabilities,
                                      atol=ROW_SUM_ATOL)          # [N, K]
  p = p / p.sum(1, keepdims=True)
  labels = np.argmax(p, 1)                                        # [N]
  max_probability = p[np.arange(p.shape[0]), labels]              # [N]
  with np.errstate(divide="ignore", invalid="ignore"):
    terms = np.where(p > 0, p * np.log(p), 0.0)                   # [N, K]
  entropy = np.maximum(-terms.sum(1), 0.0)                        # [N]
  return labels.astype(np.int64), max_probability, entropy


def log_loss(labels_true, probabilities=None, *, log_probabilities=None):
  """Mean negative log probability of each row's matched reference label.

  The columns (components) are first matched to the reference labels by the
  Hungarian algorithm on the contingency table of the argmax labels
  argmax_k probabilities[n, k] against `labels_true` (all K columns take
  part, also those no row prefers, so every reference label gets a column).
  Then

  ```none
  log_loss = -(1 / N) sum_n log probabilities[n, column(labels_true[n])]
  ```

  Nothing is clipped: a probability of exactly 0 (or a log probability of
  -inf) counts as `PROBABILITY_FLOOR`, the smallest positive normal float64
  (log about -708.4), so the loss stays finite but huge; all other entries,
  however small, enter as they are. Given `log_probabilities`, the logs are
  used directly (no underflow for very confident rows).

  Args:
    labels_true: int array-like [N], the reference labels.
    probabilities: array-like [N, K], rows summing to 1 within
      `ROW_SUM_ATOL` (1e-4), e.g. `model.responsibilities(x)` or
      `MCMCResult.assignment_probabilities(x)`; K at least the number of
      distinct reference labels.
    log_probabilities: instead of `probabilities`, their logs [N, K].

  Returns:
    float, nats per row.

  Raises:
    TypeError: neither or both of `probabilities` and `log_probabilities`.
    ValueError: wrong shapes, NaN or Inf, negative probabilities, rows not
      summing to 1, or fewer columns than reference labels.
  """
  if (probabilities is None) == (log_probabilities is None):
    raise TypeError("Expected exactly one of `probabilities` and "
                    "`log_probabilities`. Received: "
                    f"probabilities={_validation.describe(probabilities)}, "
                    f"log_probabilities={_validation.describe(log_probabilities)}.")
  labels = _validation.check_label_array("labels_true", labels_true)
  n = labels.shape[0]
  if probabilities is not None:
    name = "probabilities"
    array = _validation.check_probabilities(name, probabilities, n,
                                            "labels_true", atol=ROW_SUM_ATOL)
    log_p = np.full(array.shape, math.log(PROBABILITY_FLOOR))
    np.log(array, out=log_p, where=array > 0)
  else:
    name = "log_probabilities"
    log_p = _validation.check_probabilities(
        name, log_probabilities, n, "labels_true", log_space=True,
        atol=ROW_SUM_ATOL)
    log_p = np.where(log_p == -np.inf, math.log(PROBABILITY_FLOOR), log_p)
  n_columns = log_p.shape[1]
  classes, class_idx = np.unique(labels, return_inverse=True)
  if classes.size > n_columns:
    raise ValueError(f"Expected `{name}` with at least one column per "
                     f"distinct label of `labels_true` ({classes.size}). "
                     f"Received: {name}.shape={log_p.shape}.")
  preferred = np.argmax(log_p, axis=1)
  table = np.bincount(preferred * classes.size + class_idx,
                      minlength=n_columns * classes.size)
  rows, cols = _hungarian(table.reshape(n_columns, classes.size))
  column = np.empty(classes.size, np.int64)
  column[cols] = rows
  return float(-np.mean(log_p[np.arange(n), column[class_idx]]))


def canonical_order(fit):
  """tfgmm's canonical order of components: decreasing weight.

  Ties keep their current order (a stable sort), as in
  `BayesianGMM.sort_components`.

  Args:
    fit: the weights [K], or a fit as `compare_fits` takes it: a fitted
      `BayesianGMM` (anything with `posterior_mean()`), a dict with
      `weights`, or an estimator with `weights_` (scikit-learn's mixtures,
      `tfgmm.sklearn`).

  Returns:
    int64 numpy [K]: the components' indices, heaviest first; fit[order] is
    in canonical order.
  """
  if isinstance(fit, Mapping) or hasattr(fit, "posterior_mean") or hasattr(
      fit, "weights_"):
    weights = _fit_parameters("fit", fit)["weights"]
  else:
    weights = _validation.check_finite_number("fit", _as_array("fit", fit))
    if weights.ndim != 1:
      raise ValueError(f"Expected `fit` to be weights with 1 dim or a fit. "
                       f"Received: fit.shape={weights.shape}.")
  return np.argsort(-weights, kind="stable").astype(np.int64)


# ------------------------------------------------------ held-out densities


def mixture_log_density(x, weights, means, variances):
  """log density of a diagonal Gaussian mixture, e.g. a simulation's truth.

  ```none
  log p(x_n) = logsumexp_k (log w_k + sum_d log Normal(x_nd | mu_kd, v_kd))
  ```
  in float64, in chunks of rows.

  Args:
    x: array-like [N, D].
    weights: w, [K], non-negative, summing to 1 within `ROW_SUM_ATOL`.
    means: mu, [K, D].
    variances: v, positive, broadcastable to [K, D] (a scalar or [D] is
      shared by the components).

  Returns:
    float64 numpy [N].
  """
  means = _validation.check_finite_number("means", _as_array("means", means))
  if means.ndim != 2:
    raise ValueError(f"Expected `means` with 2 dims (n_components, "
                     f"n_features). Received: means.shape={means.shape}.")
  k, d = means.shape
  x = _validation.check_data(x, d, "x", dtype=np.float64)
  weights = _validation.check_finite_number(
      "weights", _as_array("weights", weights))
  if weights.shape != (k,):
    raise ValueError(f"Expected `weights` with shape ({k},), one per row of "
                     f"`means`. Received: weights.shape={weights.shape}.")
  if np.any(weights < 0) or abs(weights.sum() - 1.0) > ROW_SUM_ATOL:
    raise ValueError(f"Expected `weights` >= 0 summing to 1 (within "
                     f"{ROW_SUM_ATOL}). "
                     f"Received: weights={_validation.describe(weights)}.")
  variances = np.broadcast_to(_validation.check_positive(
      "variances", _as_array("variances", variances), (k, d)), (k, d))
  with np.errstate(divide="ignore"):
    log_weights = np.log(weights)
  log_norm = log_weights - 0.5 * (d * _LOG_2PI
                                  + np.log(variances).sum(-1))     # [K]
  precisions = 1.0 / variances
  rows = max(1, _CHUNK_ELEMENTS // max(1, k * d))
  out = np.empty(x.shape[0])
  for start in range(0, x.shape[0], rows):
    diff = x[start:start + rows, None, :] - means                  # [B, K, D]
    quad = np.einsum("bkd,bkd,kd->bk", diff, diff, precisions)
    out[start:start + rows] = scipy.special.logsumexp(
        log_norm - 0.5 * quad, axis=1)
  return out


def _log_density(name, density, x):
  """log density of each row [N] from a model, mixture tuple or callable."""
  if isinstance(density, (tuple, list)):
    if len(density) != 3:
      raise ValueError(f"Expected `{name}` as (weights, means, variances). "
                       f"Received a {type(density).__name__} of "
                       f"{len(density)} items.")
    return mixture_log_density(x, *density)
  if hasattr(density, "log_prob"):
    values = density.log_prob(x)
  elif hasattr(density, "score_samples"):
    values = density.score_samples(x)
  elif callable(density):
    values = density(x)
  else:
    raise TypeError(f"Expected `{name}` to be a model with `log_prob`, an "
                    "estimator with `score_samples`, a callable or a "
                    "(weights, means, variances) tuple. "
                    f"Received: {name}={_validation.describe(density)}.")
  values = np.asarray(_as_array(name, values), np.float64)
  if values.shape != (x.shape[0],):
    raise ValueError(f"Expected `{name}` to give one log density per row of "
                     f"`x`, shape ({x.shape[0]},). Received shape "
                     f"{values.shape}.")
  bad = np.flatnonzero(np.isnan(values))
  if bad.size:
    raise ValueError(f"Expected `{name}` to give log densities without NaN. "
                     f"Received NaN for row {bad[0]} of `x`.")
  return values


def heldout_log_likelihood(model, x, reference=None):
  """Mean log predictive density of held-out rows, or its excess over a truth.

  ```none
  mean_n log p(x_n | data)                                 (reference None)
  mean_n log p(x_n | data) - mean_n log p_ref(x_n)         (otherwise)
  ```
  When x is drawn from the reference the difference estimates
  -KL(p_ref || p(. | data)): at most 0 in expectation, near 0 for a good fit.

  Args:
    model: a fitted `BayesianGMM` (anything with `log_prob(x)` [N]), an
      estimator with `score_samples(x)` (scikit-learn's mixtures,
      `tfgmm.sklearn`), or a callable returning log densities [N].
    x: held-out data, array-like [N, D] (NaN only where the model
      marginalises missing values).
    reference: None; (weights [K], means [K, D], variances [K, D]) of a true
      diagonal mixture (see `mixture_log_density`); or a model or callable
      as for `model`.

  Returns:
    float, nats per row.
  """
  array = _validation.check_data(x, dtype=None, allow_nan=True)
  model_mean = float(np.mean(_log_density("model", model, array)))
  if reference is None:
    return model_mean
  return model_mean - float(np.mean(_log_density("reference", reference,
                                                 array)))


# ----------------------------------------------------- comparing two fits


class FitComparison(NamedTuple):
  """Two fits' parameters after matching their components.

  Attributes:
    permutation: int64 numpy [K_a]: the component of b matched to each
      component of a (-1 if unmatched, when b has fewer components);
      b's parameters at `permutation` line up with a's.
    max_abs_diff: dict of floats over the matched pairs: `weights`, `means`
      and `precisions` or `covariances`.
    a: dict of a's matched parameters, [M], [M, D], [M, D] or [M, D, D] (M =
      min(K_a, K_b); in a's order).
    b: dict of b's parameters matched to those of `a`, same shapes.
    distances: float64 numpy [M]: distances between the matched means in
      pooled standard deviations.
  """
  permutation: np.ndarray
  max_abs_diff: dict
  a: dict
  b: dict
  distances: np.ndarray


def _fit_parameters(name, fit):
  """weights [K], means [K, D] and precisions and/or covariances of a fit.

  Precisions and covariances come out [K, D] or [K, D, D]: scikit-learn's
  spherical (K,) are repeated over the features and its tied (D, D) over
  the components (a (D, D) array with K = D counts as tied only when the
  estimator's `covariance_type` says so; otherwise as diagonal [K, D]).
  """
  if isinstance(fit, Mapping):
    source = dict(fit)
  elif hasattr(fit, "posterior_mean"):
    source = fit.posterior_mean()
  elif hasattr(fit, "weights_") and hasattr(fit, "means_"):
    source = {"weights": fit.weights_, "means": fit.means_}
    for key in ("precisions", "covariances"):
      if hasattr(fit, key + "_"):
        source[key] = getattr(fit, key + "_")
  else:
    raise TypeError(f"Expected `{name}` to be a fitted BayesianGMM, a dict "
                    "of posterior means or a fitted mixture estimator. "
                    f"Received: {name}={_validation.describe(fit)}.")
  if "weights" not in source or "means" not in source:
    raise ValueError(f"Expected `{name}` with `weights` and `means`. "
                     f"Received keys {sorted(source)}.")
  params = {}
  for key in ("weights", "means", "precisions", "covariances"):
    if key in source:
      params[key] = _validation.check_finite_number(
          f"{name}['{key}']", _as_array(f"{name}['{key}']", source[key]))
  weights, means = params["weights"], params["means"]
  if means.ndim != 2 or weights.shape != means.shape[:1]:
    raise ValueError(f"Expected `{name}` with weights [K] and means [K, D]. "
                     f"Received: weights.shape={weights.shape}, "
                     f"means.shape={means.shape}.")
  k, d = means.shape
  if k == 0:
    raise ValueError(f"Expected `{name}` with at least one component. "
                     f"Received: means.shape={means.shape}.")
  if "precisions" not in params and "covariances" not in params:
    raise ValueError(f"Expected `{name}` with `precisions` or `covariances`. "
                     f"Received keys {sorted(source)}.")
  # scikit-learn's layouts of the shared structures, as per-component ones.
  tied = getattr(fit, "covariance_type", None) == "tied"
  for key in ("precisions", "covariances"):
    if key not in params:
      continue
    values = params[key]
    if values.shape == (k,):                  # spherical: one per component
      params[key] = np.repeat(values[:, None], d, axis=1)         # [K, D]
    elif values.shape == (d, d) and (tied or values.shape != (k, d)):
      params[key] = np.broadcast_to(values, (k, d, d)).copy()     # tied
  for key in ("precisions", "covariances"):
    if key in params and params[key].shape not in ((k, d), (k, d, d)):
      raise ValueError(f"Expected `{name}['{key}']` with shape {(k, d)} "
                       f"(diagonal) or {(k, d, d)} (full). "
                       f"Received: {key}.shape={params[key].shape}.")
  return params


def _invert(second_order):
  return (1.0 / second_order if second_order.ndim == 2
          else np.linalg.inv(second_order))


def _variances(name, params, kind):
  """The components' per-feature variances [K, D]."""
  values = params[kind]
  if values.ndim == 3:
    values = (np.diagonal(values, axis1=-2, axis2=-1) if kind == "covariances"
              else np.diagonal(np.linalg.inv(values), axis1=-2, axis2=-1))
  elif kind == "precisions":
    values = 1.0 / values
  if not np.all(values > 0):
    raise ValueError(f"Expected `{name}['{kind}']` to give positive "
                     "variances. Received non-positive ones.")
  return values


def compare_fits(a, b):
  """Matches two fits' components and compares their parameters.

  Matching criterion: the Hungarian algorithm pairs the components of a and
  b to minimise the sum over pairs of the squared standardised distance
  between their means,

  ```none
  cost[i, j] = sum_d (mu_a[i, d] - mu_b[j, d])^2 / s_d^2
  s_d^2 = (sum_k w_a[k] v_a[k, d] / sum_k w_a[k]
           + sum_k w_b[k] v_b[k, d] / sum_k w_b[k]) / 2
  ```
  where v are the components' variances of feature d (the pooled
  within-component variance: distances are in cluster widths, whatever the
  units of each feature). Weights and shapes do not enter the matching.

  Both fits must give the same D and the same covariance structure (diagonal
  [K, D] or full [K, D, D]); K may differ (then min(K_a, K_b) pairs). If both
  give precisions they are compared, else if both give covariances those;
  if one gives only precisions and the other only covariances, b's are
  inverted to a's kind (for posterior means, E[Lambda]^-1 is not E[Sigma]:
  expect small differences then).

  Args:
    a: a fitted `BayesianGMM` (anything with `posterior_mean()`); a dict like
      `posterior_mean()` with `weights` [K], `means` [K, D] and `precisions`
      or `covariances` ([K, D] or [K, D, D]); or an estimator with
      `weights_`, `means_`, `covariances_` / `precisions_` (scikit-learn's
      mixtures, `tfgmm.sklearn`; any covariance type: spherical (K,) and
      tied (D, D) are broadcast to [K, D] and [K, D, D]).
    b: the same, for the other fit.

  Returns:
    `FitComparison`: `permutation`, `max_abs_diff`, the matched parameters
    `a` and `b`, and the matched means' `distances`.
  """
  pa, pb = _fit_parameters("a", a), _fit_parameters("b", b)
  d = pa["means"].shape[1]
  if pb["means"].shape[1] != d:
    raise ValueError(f"Expected `b` with the features of `a` ({d}). "
                     f"Received: b['means'].shape={pb['means'].shape}.")
  if "precisions" in pa and "precisions" in pb:
    kind = "precisions"
  elif "covariances" in pa and "covariances" in pb:
    kind = "covariances"
  else:
    kind = "precisions" if "precisions" in pa else "covariances"
    other = "covariances" if kind == "precisions" else "precisions"
    pb[kind] = _invert(pb[other])
  if pa[kind].ndim != pb[kind].ndim:
    raise ValueError(f"Expected `a` and `b` with the same covariance "
                     f"structure. Received: a['{kind}'].shape="
                     f"{pa[kind].shape}, b['{kind}'].shape={pb[kind].shape}.")

  def pooled(name, params):
    weights = params["weights"]
    if not np.all(weights >= 0) or not weights.sum() > 0:
      raise ValueError(f"Expected `{name}['weights']` >= 0 with a positive "
                       f"sum. Received: {_validation.describe(weights)}.")
    return weights @ _variances(name, params, kind) / weights.sum()  # [D]

  scale2 = 0.5 * (pooled("a", pa) + pooled("b", pb))               # [D]
  diff = pa["means"][:, None, :] - pb["means"][None, :, :]       # [Ka, Kb, D]
  cost = np.sum(diff * diff / scale2, axis=-1)
  rows, cols = scipy.optimize.linear_sum_assignment(cost)
  permutation = np.full(pa["weights"].shape[0], -1, np.int64)
  permutation[rows] = cols
  keys = ("weights", "means", kind)
  matched_a = {key: pa[key][rows] for key in keys}
  matched_b = {key: pb[key][cols] for key in keys}
  max_abs_diff = {key: float(np.max(np.abs(matched_a[key] - matched_b[key])))
                  for key in keys}
  return FitComparison(permutation, max_abs_diff, matched_a, matched_b,
                       np.sqrt(cost[rows, cols]))
