"""Early, static checks of user input: clear errors naming the argument."""

import numbers

import numpy as np
import tensorflow as tf

from tfgmm import families
from tfgmm._engine import weight_priors


def describe(value):
  text = repr(value)
  return text if len(text) <= 80 else text[:77] + "..."


def check_int(name, value, minimum):
  """An int >= minimum (bools rejected)."""
  if isinstance(value, bool) or not isinstance(value, numbers.Integral):
    raise TypeError(f"Expected `{name}` to be an int >= {minimum}. "
                    f"Received: {name}={describe(value)} "
                    f"of type {type(value).__name__}.")
  if value < minimum:
    raise ValueError(f"Expected `{name}` >= {minimum}. "
                     f"Received: {name}={value}.")
  return int(value)


def check_positive_int(name, value):
  """An int >= 1 (bools rejected)."""
  return check_int(name, value, 1)


def check_non_negative_int(name, value):
  """An int >= 0 (bools rejected)."""
  return check_int(name, value, 0)


def check_seed(name, value):
  """None, or an int >= 0 (bools rejected)."""
  return None if value is None else check_int(name, value, 0)


def check_bool(name, value):
  """A bool (numpy bools too)."""
  if not isinstance(value, (bool, np.bool_)):
    raise TypeError(f"Expected `{name}` to be a bool. "
                    f"Received: {name}={describe(value)} "
                    f"of type {type(value).__name__}.")
  return bool(value)


def check_prior(n_components, n_features, weight_concentration, mean_loc,
                mean_precision, precision_concentration, precision_rate):
  """The diagonal model's prior values; returns weight_concentration.

  None for `weight_concentration` means 1 / K. `mean_loc` and
  `precision_rate` are scalars or [D]; the rest scalars; all finite, and all
  but `mean_loc` > 0.
  """
  if weight_concentration is None:
    weight_concentration = 1.0 / n_components
  check_positive("weight_concentration", weight_concentration, ())
  check_finite_number("mean_loc", mean_loc, (n_features,))
  check_positive("mean_precision", mean_precision, ())
  check_positive("precision_concentration", precision_concentration, ())
  check_positive("precision_rate", precision_rate, (n_features,))
  return weight_concentration


def check_positive(name, value, shape=None):
  """A finite, strictly positive float or array (broadcastable to shape)."""
  array = check_finite_number(name, value, shape)
  if np.any(array <= 0):
    raise ValueError(f"Expected `{name}` > 0. Received: {name}={describe(value)}.")
  return array


def check_finite_number(name, value, shape=None):
  """A finite float scalar, or an array broadcastable to `shape`."""
  if isinstance(value, (str, bytes)) or isinstance(value, bool):
    raise TypeError(f"Expected `{name}` to be a number. "
                    f"Received: {name}={describe(value)}.")
  try:
    array = np.asarray(value, dtype=np.float64)
  except (TypeError, ValueError):
    raise TypeError(f"Expected `{name}` to be a number or an array of numbers. "
                    f"Received: {name}={describe(value)}.") from None
  if not np.all(np.isfinite(array)):
    raise ValueError(f"Expected `{name}` to be finite. "
                     f"Received: {name}={describe(value)}.")
  if shape is not None:
    try:
      np.broadcast_to(array, shape)
    except ValueError:
      raise ValueError(f"Expected `{name}` to be a scalar or broadcastable to "
                       f"shape {tuple(shape)}. Received: {name} with shape "
                       f"{array.shape}.") from None
  return array


def check_choice(name, value, choices):
  if not isinstance(value, str) or value not in choices:
    raise ValueError(f"Expected `{name}` to be one of {sorted(choices)}. "
                     f"Received: {name}={describe(value)}.")
  return value


def numeric_array(name, value, ndim, *, what="a numeric array",
                  dims="", batched=False):
  """`value` as a numeric numpy array of rank `ndim`, without copying.

  Tensors become numpy; strings, objects, complex numbers and ragged lists
  are errors that name the argument and echo the value.

  Args:
    name: the argument's name in messages.
    value: array-like.
    ndim: the rank required.
    what: how messages describe a valid value ("a numeric array").
    dims: the axes' names in messages, e.g. " (n_samples, n_features)".
    batched: accept rank `ndim` or more (leading batch axes).

  Returns:
    A numpy array of kind bool, int, unsigned or float.
  """
  if isinstance(value, tf.data.Dataset):
    raise TypeError(f"Expected `{name}` to be an array here, not a "
                    "tf.data.Dataset.")
  if isinstance(value, (tf.Tensor, tf.Variable)):
    value = value.numpy()
  if isinstance(value, (str, bytes)):
    raise TypeError(f"Expected `{name}` to be {what}. "
                    f"Received: {name}={describe(value)}.")
  try:
    array = np.asarray(value)
  except ValueError as error:  # ragged nested lists
    raise ValueError(f"Expected `{name}` to be a rectangular array{dims}. "
                     f"Received: {name}={describe(value)}: {error}") from None
  if array.dtype.kind not in "biuf":
    raise TypeError(f"Expected `{name}` to be {what}. "
                    f"Received: {name} with dtype {array.dtype}"
                    f" ({describe(value)}).")
  if array.ndim < ndim if batched else array.ndim != ndim:
    hint = (" Use x.reshape(-1, 1) for one feature."
            if ndim == 2 and array.ndim == 1 and "feature" in dims else "")
    more = " or more" if batched else ""
    raise ValueError(f"Expected `{name}` with {ndim}{more} dim"
                     f"{'' if ndim == 1 else 's'}{dims}. "
                     f"Received: {name}.shape={array.shape}.{hint}")
  return array


def check_data(x, n_features=None, name="x", dtype=np.float32,
               allow_nan=False, batched=False):
  """Validates a data matrix and returns it as a numpy array of `dtype`.

  With `dtype=None`, float arrays keep their dtype and are not copied (other
  numeric arrays become float64).

  Args:
    x: array-like of shape (n_samples, n_features): numpy, lists, tensors;
      with `batched`, (..., n_samples, n_features).
    n_features: the width the model expects, or None.
    name: the argument's name in error messages.
    dtype: the numpy dtype of the result, or None (see above).
    allow_nan: NaN entries are missing values (the model's
      `missing="marginalize"`); Inf is still an error.
    batched: accept leading batch axes; the rows come back flattened.

  Returns:
    A C-contiguous numpy array [N, D] of `dtype` (N counts the rows of all
    batch axes); with `batched`, the pair (array, x's shape without its
    last axis).

  Raises:
    TypeError: strings, objects, or other non-numeric data.
    ValueError: wrong rank or width, no rows, NaN (unless allowed) or Inf.
  """
  array = numeric_array(name, x, 2, dims=" (n_samples, n_features)",
                        batched=batched)
  if not np.prod(array.shape[:-1]):
    raise ValueError(f"Expected `{name}` to have at least one row. "
                     f"Received: {name}.shape={array.shape}.")
  if n_features is not None and array.shape[-1] != n_features:
    raise ValueError(f"Expected `{name}` with {n_features} features (columns). "
                     f"Received: {name}.shape={array.shape}.")
  if dtype is None:
    dtype = array.dtype if array.dtype.kind == "f" else np.float64
  batch_shape = array.shape[:-1]
  array = np.asarray(array, dtype=dtype).reshape(-1, array.shape[-1])
  for start in range(0, array.shape[0], 1 << 16):
    rows = array[start:start + (1 << 16)]
    finite = np.isfinite(rows)
    if allow_nan:
      finite |= np.isnan(rows)
    if not finite.all():
      bad = np.argwhere(~finite)[0]
      index = ", ".join(str(i) for i in (
          *np.unravel_index(start + bad[0], batch_shape), bad[1]))
      hint = ("" if allow_nan else " To treat NaN as missing values, use "
              "missing='marginalize'.")
      raise ValueError(f"Expected `{name}` to be finite (no "
                       f"{'' if allow_nan else 'NaN or '}Inf). "
                       f"Received: {name}[{index}]="
                       f"{float(rows[bad[0], bad[1]])!r}.{hint}")
  return (array, batch_shape) if batched else array


def check_sample_weight(sample_weight, n_rows, name="sample_weight"):
  """Per-row weights: a finite, non-negative float64 [n_rows], not all zero.

  Returns None for None (every row weighs one).
  """
  if sample_weight is None:
    return None
  if isinstance(sample_weight, (tf.Tensor, tf.Variable)):
    sample_weight = sample_weight.numpy()
  if isinstance(sample_weight, (str, bytes)):
    raise TypeError(f"Expected `{name}` to be a numeric array. "
                    f"Received: {name}={describe(sample_weight)}.")
  array = np.asarray(sample_weight)
  if array.dtype.kind not in "biuf":
    raise TypeError(f"Expected `{name}` to be a numeric array. Received: "
                    f"{name} with dtype {array.dtype} "
                    f"({describe(sample_weight)}).")
  array = array.astype(np.float64)
  if array.shape != (n_rows,):
    raise ValueError(f"Expected `{name}` with shape ({n_rows},), one weight "
                     f"per row. Received: {name}.shape={array.shape}.")
  bad = np.flatnonzero(~np.isfinite(array) | (array < 0))
  if bad.size:
    raise ValueError(f"Expected `{name}` to be finite and >= 0. Received: "
                     f"{name}[{bad[0]}]={float(array[bad[0]])!r}.")
  if not array.sum() > 0:
    raise ValueError(f"Expected `{name}` to have a positive sum. "
                     f"Received: all {n_rows} weights are zero.")
  return array


def check_labels(x, labels, n_components):
  """Hard labels [N] ints in [0, K) for the rows of an array `x`."""
  if isinstance(x, tf.data.Dataset):
    raise ValueError("`labels` start the fit from hard labels of an "
                     "array's rows; received them with a tf.data.Dataset "
                     "`x`. Pass the array.")
  rows = np.shape(x)[0] if np.ndim(x) else 0
  array = np.asarray(labels)
  if (array.shape != (rows,) or not np.issubdtype(array.dtype, np.integer)
      or (array.size and (array.min() < 0
                          or array.max() >= n_components))):
    raise ValueError(
        f"Expected `labels` to be {rows} integers in [0, "
        f"{n_components}), one per row of `x`. Received: labels of "
        f"shape {array.shape} and dtype {array.dtype}"
        + (f", values {array.min()} to {array.max()}."
           if array.size and np.issubdtype(array.dtype, np.number)
           else "."))
  return array


# ------------------------------------------------ labels and probabilities


def check_label_array(name, labels, length=None, other=None):
  """A non-empty int64 array [N] of integer labels.

  Args:
    name: the argument's name in messages.
    labels: array-like [N]: ints, bools, or floats holding integers.
    length: the N required (the length of `other`), or None.
    other: the name of the argument that set `length`.

  Returns:
    int64 numpy [N].
  """
  array = numeric_array(name, labels, 1, what="integer labels")
  if array.shape[0] == 0:
    raise ValueError(f"Expected `{name}` to have at least one label. "
                     f"Received: {name}.shape={array.shape}.")
  if length is not None and array.shape[0] != length:
    raise ValueError(f"Expected `{name}` with the same length as `{other}` "
                     f"({length}). Received: {name}.shape={array.shape}.")
  if array.dtype.kind == "f":
    bad = np.flatnonzero(~np.isfinite(array) | (array != np.round(array)))
    if bad.size:
      raise ValueError(f"Expected `{name}` to be integer labels. "
                       f"Received: {name}[{bad[0]}]={float(array[bad[0]])!r}.")
  return array.astype(np.int64)


def check_label_pair(first_name, first, second_name, second):
  first = check_label_array(first_name, first)
  second = check_label_array(second_name, second, first.shape[0], first_name)
  return first, second


def check_probabilities(name, value, n_rows=None, rows_name=None,
                        log_space=False, atol=1e-4):
  """A float64 [N, K] array of (log) probabilities whose rows sum to 1.

  Args:
    name: the argument's name in messages.
    value: array-like [N, K].
    n_rows: the N required, or None.
    rows_name: the argument that set `n_rows`.
    log_space: entries are log probabilities (-inf allowed) instead of
      probabilities.
    atol: how far a row's sum may be from 1.

  Returns:
    float64 numpy [N, K].
  """
  array = numeric_array(name, value, 2, dims=" (n_samples, n_components)")
  if array.shape[1] == 0:
    raise ValueError(f"Expected `{name}` to have at least one column. "
                     f"Received: {name}.shape={array.shape}.")
  if n_rows is not None and array.shape[0] != n_rows:
    raise ValueError(f"Expected `{name}` with one row per label of "
                     f"`{rows_name}` ({n_rows}). "
                     f"Received: {name}.shape={array.shape}.")
  array = array.astype(np.float64)
  if log_space:
    bad = np.argwhere(np.isnan(array) | (array == np.inf)
                      | (array > atol))
    what = "finite or -inf and <= 0"
  else:
    bad = np.argwhere(~np.isfinite(array) | (array < 0))
    what = "finite and >= 0"
  if bad.size:
    i, j = bad[0]
    raise ValueError(f"Expected `{name}` to be {what}. "
                     f"Received: {name}[{i}, {j}]={float(array[i, j])!r}.")
  if log_space:
    # sum_k exp(a_k), shifted by each row's finite maximum.
    peak = np.max(array, axis=1, keepdims=True)                   # [N, 1]
    peak = np.where(np.isfinite(peak), peak, 0.0)
    sums = np.exp(peak[:, 0]) * np.sum(np.exp(array - peak), axis=1)
  else:
    sums = array.sum(axis=1)
  bad = np.flatnonzero(np.abs(sums - 1.0) > atol)
  if bad.size:
    kind = "exp(row) of `log_probabilities`" if log_space else "row"
    raise ValueError(f"Expected each {kind} of `{name}` to sum to 1 (within "
                     f"{atol}). Received: row {bad[0]} sums to "
                     f"{float(sums[bad[0]])!r}.")
  return array


# ------------------------------------------------------------- plots


def check_indices(name, indices, size):
  """A non-empty sequence of distinct ints in [0, size), as a list."""
  try:
    values = list(indices)
  except TypeError:
    values = None
  if not values or len(set(values)) != len(values) or any(
      isinstance(v, bool) or not isinstance(v, numbers.Integral)
      or not 0 <= v < size for v in values):
    raise ValueError(f"Expected `{name}` to be distinct indices in "
                     f"[0, {size}). Received: {name}={indices!r}.")
  return [int(v) for v in values]


def check_feature_pair(features, d):
  """Two distinct column indices in [0, d) (a 2-D plot's axes), ints."""
  try:
    i, j = features
  except (TypeError, ValueError):
    raise ValueError("Expected `features` to be a pair of column indices. "
                     f"Received: features={features!r}.") from None
  for f in (i, j):
    if isinstance(f, bool) or not isinstance(f, numbers.Integral) or not (
        0 <= f < d):
      raise ValueError(f"Expected `features` to be two column indices in "
                       f"[0, {d}). Received: features={features!r}.")
  if i == j:
    raise ValueError(f"Expected two different `features`. "
                     f"Received: features={features!r}.")
  return int(i), int(j)


def check_grid(grid):
  """A plot's grid resolution: an int >= 2."""
  if isinstance(grid, bool) or not isinstance(grid, numbers.Integral) or (
      grid < 2):
    raise ValueError(f"Expected `grid` to be an int >= 2. "
                     f"Received: grid={grid!r}.")
  return int(grid)


# ------------------------------------------------- BayesianGMM's arguments


def check_model_arguments(methods, n_components, n_features, *,
                          weight_concentration, mean_loc, mean_precision,
                          precision_concentration, precision_rate, method,
                          weight_prior, covariance_type, mean_prior,
                          degrees_of_freedom, scale_matrix, missing,
                          standardize, dtype, seed, step_size):
  """Validates `BayesianGMM`'s constructor arguments.

  Args:
    methods: the model's training methods (`BayesianGMM.METHODS`).
    n_components, n_features, ...: as `BayesianGMM`.

  Returns:
    (family, arguments): the `Family` the arguments pick, and a dict of the
    arguments as config values (floats and lists; `weight_concentration`
    resolved from None; the Wishart prior's defaults for its families).
  """
  n_components = check_positive_int("n_components", n_components)
  n_features = check_positive_int("n_features", n_features)
  dtype = check_choice("dtype", dtype, ("float32", "float64"))
  method = check_choice("method", method, methods)
  weight_prior = check_choice("weight_prior", weight_prior,
                              weight_priors.WEIGHT_PRIORS)
  covariance_type = check_choice("covariance_type", covariance_type,
                                 families.COVARIANCE_TYPES)
  mean_prior = check_choice("mean_prior", mean_prior, families.MEAN_PRIORS)
  missing = check_choice("missing", missing, families.MISSING)
  family = families.get(covariance_type, mean_prior, missing)
  if method not in family.methods:
    supported = tuple(m for m in family.methods if m in methods)
    raise ValueError(
        f"Expected method in {supported} with covariance_type="
        f"{covariance_type!r}: the sampled estimator is the diagonal "
        f"seed-blog recipe. Received: method={method!r}.")
  if family.precision_prior == "wishart":
    degrees_of_freedom, scale_matrix = _check_wishart(
        degrees_of_freedom, scale_matrix, n_features)
  elif degrees_of_freedom is not None or scale_matrix is not None:
    wishart = [t for t in families.COVARIANCE_TYPES
               if families.get(t).precision_prior == "wishart"]
    raise ValueError(
        "`degrees_of_freedom` and `scale_matrix` are the Wishart prior of "
        f"{families.describe_types(wishart)}. Received them with "
        f"covariance_type={covariance_type!r}.")
  weight_concentration = check_prior(
      n_components, n_features, weight_concentration, mean_loc,
      mean_precision, precision_concentration, precision_rate)
  if step_size is not None:
    step = check_positive("step_size", step_size, ())
    if step > 1:
      raise ValueError("Expected `step_size` in (0, 1]. "
                       f"Received: step_size={step_size!r}.")
    step_size = float(step)
  if not isinstance(standardize, bool):
    raise TypeError(f"Expected `standardize` to be a bool. "
                    f"Received: standardize={standardize!r}.")
  if seed is not None:
    seed = check_non_negative_int("seed", seed)
  return family, {
      "n_components": n_components, "n_features": n_features,
      "weight_concentration": float(weight_concentration),
      "mean_loc": _as_config_value(mean_loc),
      "mean_precision": float(mean_precision),
      "precision_concentration": float(precision_concentration),
      "precision_rate": _as_config_value(precision_rate), "method": method,
      "weight_prior": weight_prior, "covariance_type": covariance_type,
      "mean_prior": mean_prior, "degrees_of_freedom": degrees_of_freedom,
      "scale_matrix": scale_matrix, "missing": missing,
      "standardize": standardize, "dtype": dtype, "seed": seed,
      "step_size": step_size}


def _check_wishart(degrees_of_freedom, scale_matrix, n_features):
  """The Wishart prior (nu0, W0), as config values.

  Defaults: nu0 = D, W0 = the identity (standardised units).
  """
  d = n_features
  if degrees_of_freedom is None:
    degrees_of_freedom = float(d)
  dof = float(check_finite_number("degrees_of_freedom", degrees_of_freedom,
                                  ()))
  if dof <= d - 1:
    raise ValueError(
        f"Expected `degrees_of_freedom` > D - 1 = {d - 1} (a proper Wishart "
        f"prior). Received: degrees_of_freedom={degrees_of_freedom!r}.")
  if scale_matrix is None:
    return dof, None
  matrix = check_finite_number("scale_matrix", scale_matrix)
  if matrix.shape != (d, d):
    raise ValueError(f"Expected `scale_matrix` with shape ({d}, {d}). "
                     f"Received: scale_matrix.shape={matrix.shape}.")
  if not np.allclose(matrix, matrix.T) or np.any(
      np.linalg.eigvalsh(matrix) <= 0):
    raise ValueError("Expected `scale_matrix` to be symmetric positive "
                     f"definite. Received: scale_matrix={matrix.tolist()!r}.")
  return dof, matrix.tolist()


def _as_config_value(value):
  """A float, or nested lists of floats (JSON-serialisable)."""
  array = np.asarray(value, dtype=np.float64)
  return float(array) if array.ndim == 0 else array.tolist()
