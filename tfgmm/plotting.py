"""Plots of a fitted `BayesianGMM`: training curves and predictive densities.

Every function builds a `matplotlib.figure.Figure` directly (no pyplot, no
global backend switch), so it works headless and leaves the user's matplotlib
state alone. Each returns the figure and, given `path`, also saves it there
(the format follows the file extension, e.g. ".png" or ".pdf").

#### Examples

```python
model = tfgmm.fit(x, 3, seed=0)
tfgmm.plotting.plot_training(model, "plots/training.png")
tfgmm.plotting.plot_density_2d(model, x, "plots/density.png")
```
"""

import numbers
import os

import numpy as np
from matplotlib import colors as mcolors
from matplotlib.figure import Figure

_HISTORY_KEYS = ("loss", "expected_log_likelihood", "kl")
_MAX_SCATTER_POINTS = 20000
_MIN_SPAN = 5e-4  # nats per point: the smallest y-range of a training panel


def plot_training(history_or_model, path=None):
  """Plots the training curves: the loss and its two terms, per epoch.

  Three panels: the loss (the negative evidence lower bound per data point,
  `kl - expected_log_likelihood`), the expected log-likelihood per point and
  KL(q || p) per point.

  Args:
    history_or_model: a fitted `BayesianGMM` (its `training_history`), a
      `keras.callbacks.History` (its `history`), or a dict mapping "loss",
      "expected_log_likelihood" and "kl" to per-epoch sequences of length E
      (missing keys are left out of the figure).
    path: where to save the figure, or None.

  Returns:
    The `matplotlib.figure.Figure` (1 row of 3 axes).

  Raises:
    TypeError: `history_or_model` is none of the above.
    ValueError: the history holds no epochs.
  """
  history = _as_history(history_or_model)
  initialization = getattr(history_or_model, "initialization_history", None)
  panels = [
      ("loss", "Loss (negative bound per point)", "nats / point"),
      ("expected_log_likelihood", "Expected log-likelihood per point",
       "nats / point"),
      ("kl", "KL(q || prior) per point", "nats / point"),
  ]
  fig = Figure(figsize=(13, 3.8), layout="constrained")
  axes = fig.subplots(1, len(panels))
  n_epochs = max(len(values) for values in history.values())
  for ax, (key, title, ylabel) in zip(axes, panels):
    values = history.get(key)
    ax.set_title(title, fontsize=11)
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    if values is None or len(values) == 0:
      ax.text(0.5, 0.5, f"no {key!r} recorded", ha="center", va="center",
              transform=ax.transAxes, color="0.4")
      continue
    start = _plot_initialization(ax, (initialization or {}).get(key))
    epochs = np.arange(start + 1, start + len(values) + 1)
    ax.plot(epochs, values, color="C0", lw=1.5,
            marker="o" if len(values) <= 30 else None, ms=4,
            label=f"all data: final {values[-1]:.6g}")
    ax.legend(loc="best", fontsize=9, handlelength=1.2)
    ax.ticklabel_format(axis="y", useOffset=False)
    shown = np.concatenate([np.asarray(values, float), np.asarray(
        (initialization or {}).get(key) or [], float)])
    finite = shown[np.isfinite(shown)]
    if finite.size and np.ptp(finite) < _MIN_SPAN:
      # A flat curve: show it flat rather than zoom in on rounding noise.
      middle = 0.5 * (finite.max() + finite.min())
      ax.set_ylim(middle - _MIN_SPAN, middle + _MIN_SPAN)
    ax.xaxis.get_major_locator().set_params(integer=True)
    if len(values) == 1:
      ax.set_xlim(0.5, 1.5)
  fig.suptitle(f"Training ({n_epochs} epoch{'s' if n_epochs != 1 else ''})")
  return _save(fig, path)


def _plot_initialization(ax, values):
  """Draws the initialisation's CAVI trace (on a sample); returns its length."""
  if not values:
    return 0
  steps = np.arange(1, len(values) + 1)
  ax.plot(steps, values, color="C1", lw=1.2, marker="." if len(values) <= 60
          else None, label="initialisation (sample)")
  ax.set_xlabel("iteration (initialisation, then epochs)")
  return len(values)


def plot_density_2d(model, x, path=None, features=(0, 1), grid=100, *,
                    feature_names=None):
  """Plots 2-D data coloured by component over the predictive density.

  Filled contours show the posterior predictive density exp(log_prob) on a
  `grid` x `grid` lattice spanning the data; points are coloured by
  `model.assign(x)` (most probable component) and the posterior component
  means are marked with crosses.

  Args:
    model: a fitted `BayesianGMM` with D == 2 features.
    x: data, array-like [N, 2]. At most 20,000 points (a fixed random subset)
      are drawn; all of them set the plot's extent.
    path: where to save the figure, or None.
    features: which data columns go on the (horizontal, vertical) axes:
      (0, 1) or (1, 0).
    grid: points per side of the density lattice, int >= 2.
    feature_names: D axis labels, or None for "feature 0", "feature 1".

  Returns:
    The `matplotlib.figure.Figure`.

  Raises:
    ValueError: the model does not have exactly 2 features, `x` does not have
      the model's width, or `features` or `grid` is invalid.
  """
  d = _n_features(model)
  if d != 2:
    raise ValueError(
        f"plot_density_2d needs a model of 2 features (D == 2). Received a "
        f"model with D={d}: fit a model to the two columns to plot "
        + ("(or use plot_density_1d)." if d == 1 else "instead."))
  i, j = _check_features(features, d)
  grid = _check_grid(grid)
  x = _check_x(model, x)
  labels_text = _feature_names(feature_names, d)

  lo, hi = x.min(0), x.max(0)
  pad = 0.08 * np.maximum(hi - lo, 1e-6) + 1e-6
  lo, hi = lo - pad, hi + pad
  u = np.linspace(lo[i], hi[i], grid)
  v = np.linspace(lo[j], hi[j], grid)
  uu, vv = np.meshgrid(u, v)                                      # [G, G]
  points = np.empty((grid * grid, 2))
  points[:, i] = uu.ravel()
  points[:, j] = vv.ravel()
  density = np.exp(_numpy(model.log_prob(points)).astype(np.float64))
  density = density.reshape(grid, grid)                           # [G, G]

  shown = _subsample(x)
  labels = _numpy(model.assign(shown))                            # [N']
  k = int(model.n_components)
  cmap = _component_colors(k)
  summary = model.posterior_mean()
  weights, means = summary["weights"], summary["means"]           # [K], [K, 2]

  fig = Figure(figsize=(7.5, 6.2), layout="constrained")
  ax = fig.subplots()
  filled = ax.contourf(uu, vv, density, levels=14, cmap="Greys", alpha=0.75)
  ax.contour(uu, vv, density, levels=filled.levels[1:], colors="0.25",
             linewidths=0.4, alpha=0.6)
  fig.colorbar(filled, ax=ax, label="predictive density p(x | data)")
  ax.scatter(shown[:, i], shown[:, j], c=labels, cmap=cmap,
             norm=mcolors.BoundaryNorm(np.arange(k + 1) - 0.5, k),
             s=max(2.0, min(12.0, 6000.0 / len(shown))), alpha=0.55,
             linewidths=0, rasterized=len(shown) > 2000)
  for c in range(k):
    if k <= 10:
      ax.scatter([], [], color=cmap(c), s=25,
                 label=f"component {c}  (weight {weights[c]:.3f})")
  ax.scatter(means[:, i], means[:, j], marker="X", s=110, c=range(k),
             cmap=cmap, norm=mcolors.BoundaryNorm(np.arange(k + 1) - 0.5, k),
             edgecolors="black", linewidths=1.2, zorder=5,
             label="posterior means")
  ax.set_xlim(lo[i], hi[i])
  ax.set_ylim(lo[j], hi[j])
  ax.set_xlabel(labels_text[i])
  ax.set_ylabel(labels_text[j])
  ax.legend(loc="best", fontsize=8, framealpha=0.85)
  ax.set_title(f"Posterior predictive density and assignments "
               f"(K={k}, N={len(x)})", fontsize=11)
  return _save(fig, path)


def plot_density_1d(model, x, path=None, feature=0, *, feature_names=None):
  """Plots a histogram of 1-D data with the posterior predictive density.

  The solid line is exp(log_prob(x)); dashed lines are the components'
  shares of it, E[pi_k] p_k(x) (they sum to the solid line).

  Args:
    model: a fitted `BayesianGMM` with D == 1 feature.
    x: data, array-like [N, 1] or [N].
    path: where to save the figure, or None.
    feature: the data column to plot; 0 (the only one).
    feature_names: [name] for the axis label, or None for "feature 0".

  Returns:
    The `matplotlib.figure.Figure`.

  Raises:
    ValueError: the model does not have exactly 1 feature, or `x` or
      `feature` is invalid.
  """
  d = _n_features(model)
  if d != 1:
    raise ValueError(
        f"plot_density_1d needs a model of 1 feature (D == 1). Received a "
        f"model with D={d}" + (": use plot_density_2d." if d == 2 else "."))
  if (isinstance(feature, bool) or not isinstance(feature, numbers.Integral)
      or feature != 0):
    raise ValueError(f"Expected `feature` = 0 for a model of 1 feature. "
                     f"Received: feature={feature!r}.")
  x = np.asarray(x)
  if x.ndim == 1:
    x = x[:, None]
  x = _check_x(model, x)
  values = x[:, 0]                                                # [N]
  lo, hi = values.min(), values.max()
  pad = 0.08 * max(hi - lo, 1e-6) + 1e-6
  grid = np.linspace(lo - pad, hi + pad, 512)[:, None]            # [G, 1]
  density = np.exp(_numpy(model.log_prob(grid)).astype(np.float64))   # [G]
  shares = density[:, None] * _numpy(model.responsibilities(grid))    # [G, K]
  k = int(model.n_components)
  cmap = _component_colors(k)

  fig = Figure(figsize=(7.5, 4.5), layout="constrained")
  ax = fig.subplots()
  bins = int(np.clip(np.sqrt(len(values)), 10, 80))
  ax.hist(values, bins=bins, density=True, color="0.8", edgecolor="0.6",
          linewidth=0.5, label=f"data (N={len(values)})")
  ax.plot(grid[:, 0], density, color="black", lw=1.8,
          label="predictive density")
  if k > 1:
    weights = model.posterior_mean()["weights"]
    for c in range(k):
      ax.fill_between(grid[:, 0], shares[:, c], color=cmap(c), alpha=0.2,
                      lw=0)
      ax.plot(grid[:, 0], shares[:, c], ls="--", lw=1.4, color=cmap(c),
              label=(f"component {c}  (weight {weights[c]:.3f})"
                     if k <= 10 else None))
  ax.set_xlim(grid[0, 0], grid[-1, 0])
  ax.set_ylim(bottom=0)
  ax.set_xlabel(_feature_names(feature_names, d)[feature])
  ax.set_ylabel("density")
  ax.legend(loc="best", fontsize=8, framealpha=0.85)
  ax.set_title(f"Posterior predictive density (K={k})", fontsize=11)
  return _save(fig, path)


# ------------------------------------------------------------------ helpers

def _as_history(obj):
  if isinstance(obj, dict):
    history = obj
  elif isinstance(getattr(obj, "training_history", None), dict):
    history = obj.training_history
  elif isinstance(getattr(obj, "history", None), dict):
    history = obj.history
  else:
    raise TypeError("Expected a BayesianGMM, a keras History or a dict of "
                    "per-epoch lists. Received an object of type "
                    f"{type(obj).__name__}.")
  history = {key: [float(v) for v in np.ravel(history[key])]
             for key in _HISTORY_KEYS if key in history}
  if not any(history.values()):
    raise ValueError("The training history holds no epochs: fit the model "
                     "first (or pass a non-empty history).")
  return history


def _n_features(model):
  d = getattr(model, "n_features", None)
  if d is None:
    raise TypeError("Expected a fitted BayesianGMM. Received an object of "
                    f"type {type(model).__name__}.")
  return int(d)


def _check_features(features, d):
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


def _feature_names(names, d):
  if names is None:
    return [f"feature {i}" for i in range(d)]
  names = [str(name) for name in names]
  if len(names) != d:
    raise ValueError(f"Expected {d} `feature_names`. Received {len(names)}: "
                     f"{names!r}.")
  return names


def _check_grid(grid):
  if isinstance(grid, bool) or not isinstance(grid, numbers.Integral) or (
      grid < 2):
    raise ValueError(f"Expected `grid` to be an int >= 2. "
                     f"Received: grid={grid!r}.")
  return int(grid)


def _check_x(model, x):
  array = _numpy(x)
  if array.dtype.kind not in "biuf":
    raise ValueError(f"Expected `x` to be numeric. Received dtype "
                     f"{array.dtype}.")
  d = _n_features(model)
  if array.ndim != 2 or array.shape[1] != d or array.shape[0] == 0:
    raise ValueError(f"Expected `x` of shape [N, {d}] with N >= 1 (the "
                     f"model's features). Received: x.shape={array.shape}.")
  array = array.astype(np.float64)
  if not np.all(np.isfinite(array)):
    raise ValueError("Expected `x` to be finite (no NaN or Inf).")
  return array


def _numpy(value):
  return np.asarray(value.numpy() if hasattr(value, "numpy") else value)


def _subsample(x):
  if len(x) <= _MAX_SCATTER_POINTS:
    return x
  rows = np.random.default_rng(0).choice(len(x), _MAX_SCATTER_POINTS,
                                         replace=False)
  return x[np.sort(rows)]


def _component_colors(k):
  name = "tab10" if k <= 10 else "tab20" if k <= 20 else "turbo"
  from matplotlib import colormaps  # pylint: disable=import-outside-toplevel
  base = colormaps[name]
  if name == "turbo":
    return mcolors.ListedColormap(base(np.linspace(0.05, 0.95, k)))
  return mcolors.ListedColormap(base.colors[:k])


def _save(fig, path):
  if path is not None:
    fig.savefig(os.fspath(path), dpi=110)
  return fig
