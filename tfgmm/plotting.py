"""Plots of a fitted `BayesianGMM`: training, densities, posteriors, labels.

- `plot_training`: the loss and its two terms per epoch.
- `plot_density_1d`, `plot_density_2d`: data over the posterior predictive
  density, with the components' shares (1-D) or assignments and n-sigma
  ellipses (2-D).
- `plot_posterior`: the variational marginal posteriors of the weights, means
  (and standard deviations), with an `tfgmm.mcmc.MCMCResult`'s draws overlaid.
- `plot_assignment_uncertainty`: how sure each point's assignment is.

`ellipse_geometry` is the numpy computation behind the ellipses, usable on
its own; the per-point uncertainty comes from
`tfgmm.metrics.assignment_uncertainty`.

Every function builds a `matplotlib.figure.Figure` directly (no pyplot, no
global backend switch), so it works headless and leaves the user's matplotlib
state alone. Each returns the figure and, given `path`, also saves it there
(the format follows the file extension, e.g. ".png" or ".pdf").

#### Examples

```python
model = tfgmm.fit(x, 3, seed=0)
tfgmm.plotting.plot_training(model, "plots/training.png")
tfgmm.plotting.plot_density_2d(model, x, "plots/density.png")
tfgmm.plotting.plot_posterior(model, mcmc_result, "plots/posterior.png")
tfgmm.plotting.plot_assignment_uncertainty(model, x, "plots/labels.png")
```
"""

import math
import numbers
import os

import numpy as np
from matplotlib import colors as mcolors
from matplotlib import patches as mpatches
from matplotlib.figure import Figure

from tfgmm import _validation
from tfgmm.metrics import assignment_uncertainty

_HISTORY_KEYS = ("loss", "expected_log_likelihood", "kl")
_MAX_SCATTER_POINTS = 20000
_MIN_SPAN = 5e-4  # nats per point: the smallest y-range of a training panel
# Components with a smaller expected weight get no ellipse and are left out
# of `plot_posterior` by default (`BayesianGMM.effective_components`' value).
_MIN_WEIGHT = 1e-3
_DEFAULT_SIGMAS = (1.0, 2.0, 3.0)
_ELLIPSE_STYLES = ("-", "--", ":", "-.")
POSTERIOR_PARAMETERS = ("weights", "means", "stddevs")
_MAX_DEFAULT_COMPONENTS = 10
_MAX_DEFAULT_FEATURES = 4
_CURVE_POINTS = 401
_WEIGHT_DRAWS = 20000   # Monte Carlo draws of the stick-breaking weights
_TAIL_Z = 6.0           # half-width of a marginal's grid, in (quasi) sds


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


def plot_model_selection(selection, path=None):
  """Plots a `tfgmm.select_components` table: the criterion against K.

  Args:
    selection: the `Selection` it returned.
    path: where to save the figure, or None.

  Returns:
    The `matplotlib.figure.Figure` (one axis; the chosen K marked).

  Raises:
    TypeError: `selection` is not a `Selection`.
  """
  table = getattr(selection, "table", None)
  if not isinstance(table, dict) or "score" not in table:
    raise TypeError("Expected `selection` to be what "
                    "tfgmm.select_components returns. Received: "
                    f"selection of type {type(selection).__name__}.")
  ks, scores = table["n_components"], table["score"]
  labels = {"elbo": "ELBO + log(K_eff!)  (higher is better)",
            "heldout": "held-out log-likelihood per point (higher is better)",
            "bic": "BIC of the MAP fit (lower is better)"}
  fig = Figure(figsize=(6.5, 4), layout="constrained")
  ax = fig.subplots()
  ax.plot(ks, scores, color="C0", marker="o", lw=1.5)
  best = ks.index(selection.n_components)
  ax.plot([ks[best]], [scores[best]], marker="*", ms=16, color="C3",
          linestyle="none", label=f"chosen: K = {selection.n_components}")
  ax.set_xlabel("K (components)")
  ax.set_ylabel(labels.get(selection.criterion, selection.criterion))
  ax.xaxis.get_major_locator().set_params(integer=True)
  ax.grid(True, alpha=0.3)
  ax.legend(loc="best", fontsize=9)
  ax.set_title(f"Choosing K by {selection.criterion!r}")
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
                    feature_names=None, ellipses=True):
  """Plots 2-D data coloured by component over the predictive density.

  Filled contours show the posterior predictive density exp(log_prob) on a
  `grid` x `grid` lattice spanning the data; points are coloured by
  `model.assign(x)` (most probable component) and the posterior component
  means are marked with crosses. Each component with expected weight
  >= 0.001 gets its n-sigma ellipses around its mean, drawn from
  Sigma_k = E[Lambda_k]^-1, the covariance at the posterior-mean precision
  (`posterior_mean()["precisions"]`, data units; scikit-learn's
  `covariances_`): axis-aligned for covariance_type="diag" and
  "spherical" (circles when both features share a scale), rotated for
  "full" and "tied" (the same ellipse at every mean) (see
  `ellipse_geometry`).

  Args:
    model: a fitted `BayesianGMM` with D == 2 features.
    x: data, array-like [N, 2]. At most 20,000 points (a fixed random subset)
      are drawn; all of them set the plot's extent.
    path: where to save the figure, or None.
    features: which data columns go on the (horizontal, vertical) axes:
      (0, 1) or (1, 0).
    grid: points per side of the density lattice, int >= 2.
    feature_names: D axis labels, or None for "feature 0", "feature 1".
    ellipses: True for the 1-, 2- and 3-sigma ellipses (39.3%, 86.5% and
      98.9% of a Gaussian's mass), False for none, or a sequence of radii
      n > 0 in Mahalanobis units (for a mass p, n = sqrt(-2 log(1 - p))).
      Each is an `matplotlib.patches.Ellipse` in `ax.patches`.

  Returns:
    The `matplotlib.figure.Figure`.

  Raises:
    ValueError: the model does not have exactly 2 features, `x` does not have
      the model's width, or `features`, `grid` or `ellipses` is invalid.
  """
  d = _n_features(model)
  if d != 2:
    raise ValueError(
        f"plot_density_2d needs a model of 2 features (D == 2). Received a "
        f"model with D={d}: fit a model to the two columns to plot "
        + ("(or use plot_density_1d)." if d == 1 else "instead."))
  i, j = _validation.check_feature_pair(features, d)
  grid = _validation.check_grid(grid)
  sigmas = _check_ellipses(ellipses)
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
  _draw_ellipses(ax, summary, (i, j), sigmas, cmap)
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


def ellipse_geometry(covariance, n_sigma=1.0):
  """The n-sigma ellipse of a 2-D covariance: width, height and angle.

  The ellipse {u : u^T Sigma^-1 u = n^2} around a mean. With the
  eigendecomposition Sigma = V diag(l1, l2) V^T, l1 >= l2, its axes are
  2 n sqrt(l1) along the first eigenvector v1 and 2 n sqrt(l2) across it:

  ```none
  width = 2 n sqrt(l1),  height = 2 n sqrt(l2),
  angle = atan2(v1[1], v1[0])   (degrees, folded into (-90, 90])
  ```

  the arguments of `matplotlib.patches.Ellipse(mean, width, height,
  angle=angle)`. For Sigma = R(theta) diag(s1^2, s2^2) R(theta)^T with
  s1 > s2 this is (2 n s1, 2 n s2, theta). A Gaussian puts mass
  1 - exp(-n^2 / 2) inside (39.3%, 86.5%, 98.9% for n = 1, 2, 3).

  Args:
    covariance: a symmetric positive semi-definite matrix, array-like
      [2, 2].
    n_sigma: the radius n in Mahalanobis units, float > 0.

  Returns:
    (width, height, angle): floats, width >= height >= 0, angle in degrees
    in (-90, 90]; 0 for a circle.

  Raises:
    ValueError: `covariance` is not a finite symmetric positive
      semi-definite 2 x 2 matrix, or `n_sigma` is not a positive number.
  """
  matrix = _numpy(covariance)
  if matrix.shape != (2, 2) or matrix.dtype.kind not in "biuf":
    raise ValueError(f"Expected `covariance` to be a numeric 2 x 2 matrix. "
                     f"Received an array of shape {matrix.shape} and dtype "
                     f"{matrix.dtype}.")
  matrix = matrix.astype(np.float64)
  magnitude = np.abs(matrix).max()
  if not np.all(np.isfinite(matrix)) or abs(matrix[0, 1] - matrix[1, 0]) > (
      1e-6 * magnitude):
    raise ValueError(f"Expected `covariance` to be finite and symmetric. "
                     f"Received: covariance={matrix.tolist()!r}.")
  n_sigma = _check_positive_number("n_sigma", n_sigma)
  matrix = 0.5 * (matrix + matrix.T)
  eigenvalues, eigenvectors = np.linalg.eigh(matrix)               # ascending
  if eigenvalues[0] < -1e-9 * max(magnitude, 1e-300):
    raise ValueError(f"Expected `covariance` to be positive semi-definite. "
                     f"Received: covariance={matrix.tolist()!r} with "
                     f"eigenvalues {eigenvalues.tolist()!r}.")
  small, large = np.maximum(eigenvalues, 0.0)
  if large - small <= 1e-12 * large:
    angle = 0.0                                 # a circle: any axis will do
  else:
    vx, vy = eigenvectors[:, 1]
    angle = (math.degrees(math.atan2(vy, vx)) + 90.0) % 180.0 - 90.0
    if angle < -90.0 + 1e-9:                    # [-90, 90) -> (-90, 90]
      angle = 90.0
  return (2.0 * n_sigma * math.sqrt(large), 2.0 * n_sigma * math.sqrt(small),
          float(angle))


def plot_posterior(model, mcmc=None, path=None,
                   parameters=("weights", "means"), components=None,
                   features=None, *, feature_names=None):
  """Plots the marginal posteriors of the parameters, VI against MCMC.

  One row per component, one panel per scalar parameter. Lines are the
  variational marginals of q, in data units:

  ```none
  weight pi_k:  Dirichlet: Beta(alpha_k, sum_j alpha_j - alpha_k)
                stick-breaking: pi_k = v_k prod_{j<k} (1 - v_j), v ~ q(v)
                  (a Monte Carlo histogram of 20,000 draws, as a step line)
  mean mu_kd:   conjugate (diag, full): StudentT(2 a, m, sqrt(b / (beta a)))
                independent: Normal(m, 1 / sqrt(lambda))
  sd sigma_kd:  1 / sigma^2 ~ Gamma(a, rate b)
  ```

  with (a, b) each feature's marginal Gamma of 1 / sigma^2 (diag: tau; full:
  the inverse-Wishart marginal of Sigma_dd, a = (nu - D + 1) / 2,
  b = (W^-1)_dd / 2), mapped to data units by the standardisation
  (means: loc + scale m, spreads: times scale). Their means and standard
  deviations are `model.posterior_summary()`'s, shown in the legends.
  Given an `MCMCResult`, histograms of its draws of the same parameters
  (all chains pooled, same labelling) are overlaid.

  Each VI curve is a `Line2D` with gid "vi" (x: its grid, y: the density);
  each MCMC histogram a patch labelled "MCMC: ...".

  Args:
    model: a fitted `BayesianGMM` (any covariance type, mean prior and
      weight prior).
    mcmc: a `tfgmm.mcmc.MCMCResult` of the same model, or None.
    path: where to save the figure, or None.
    parameters: which of "weights", "means", "stddevs" to plot (a name or a
      sequence of names), in that order of columns.
    components: component indices to plot (rows); None for those with
      E[pi_k] >= 0.001, at most the 10 heaviest.
    features: feature indices of the means and stddevs; None for the first
      min(D, 4).
    feature_names: D names for the titles, or None for "feature 0", ...

  Returns:
    The `matplotlib.figure.Figure`.

  Raises:
    ValueError: an invalid `parameters`, `components`, `features` or
      `feature_names`, or an `mcmc` result whose K or D differs from the
      model's.
    TypeError: `model` is not a fitted `BayesianGMM`, or `mcmc` is not an
      `MCMCResult`.
  """
  d = _n_features(model)
  k = int(model.n_components)
  parameters = _check_parameters(parameters)
  names = _feature_names(feature_names, d)
  features = (list(range(min(d, _MAX_DEFAULT_FEATURES))) if features is None
              else _validation.check_indices("features", features, d))
  if mcmc is not None:
    _check_mcmc(mcmc, k, d)
  summary = model.posterior_summary()
  if components is None:
    heavy = np.argsort(-summary["weights"], kind="stable")
    heavy = heavy[summary["weights"][heavy] >= _MIN_WEIGHT]
    components = sorted(heavy[:_MAX_DEFAULT_COMPONENTS].tolist()) or [0]
  else:
    components = _validation.check_indices("components", components, k)
  marginals = _vi_marginals(model, with_weights="weights" in parameters)
  draws = mcmc.draws() if mcmc is not None else None
  cmap = _component_colors(k)

  columns = [(name, None) if name == "weights" else (name, f)
             for name in parameters
             for f in ([None] if name == "weights" else features)]
  rows = len(components)
  fig = Figure(figsize=(0.6 + 3.1 * len(columns), 0.9 + 2.3 * rows),
               layout="constrained")
  axes = np.asarray(fig.subplots(rows, len(columns), squeeze=False))
  for r, c in enumerate(components):
    for col, (name, f) in enumerate(columns):
      ax = axes[r, col]
      index = (c,) if f is None else (c, f)
      title = (f"weight {c}" if f is None else
               f"{'mean' if name == 'means' else 'sd'} {c}, {names[f]}")
      ax.set_title(title, fontsize=10)
      ax.tick_params(labelsize=8)
      if col == 0:
        ax.set_ylabel("density", fontsize=9)
      if name == "weights" and k == 1:
        ax.text(0.5, 0.5, "weight = 1 (K = 1)", ha="center", va="center",
                transform=ax.transAxes, color="0.4")
        continue
      grid, density = _marginal_curve(marginals, name, index)
      ax.plot(grid, density, color=cmap(c), lw=1.8, gid="vi",
              label=(f"VI: {summary[name][index]:.4g} "
                     f"± {summary[name + '_sd'][index]:.2g}"))
      ax.fill_between(grid, density, color=cmap(c), alpha=0.15, lw=0)
      drawn = None
      if draws is not None:
        values = np.asarray(draws[name], np.float64)[(slice(None),) * 2
                                                     + index]     # [S, C]
        drawn = _mcmc_histogram(ax, values.ravel())
      _zoom(ax, grid, density, drawn)
      ax.legend(loc="upper right", fontsize=7, handlelength=1.0,
                framealpha=0.8)
  source = ("variational q (lines)" if mcmc is None else
            f"variational q (lines) and MCMC (histograms, {mcmc.num_chains} "
            f"chain{'s' if mcmc.num_chains != 1 else ''} x {mcmc.num_draws} "
            "draws)")
  fig.suptitle(f"Marginal posteriors: {source}", fontsize=11)
  return _save(fig, path)


def plot_assignment_uncertainty(model, x, path=None, mcmc=None, *,
                                features=(0, 1), feature_names=None):
  """Plots how certain each point's component assignment is.

  From the assignment probabilities p(z_n = k | x_n) (the model's
  `responsibilities`, or with `mcmc` the draws' average
  `MCMCResult.assignment_probabilities`), per point the most probable label,
  its probability and the entropy (see `assignment_uncertainty`).

  Left panel: for D == 1, the points at (x, max probability) coloured by
  label, with the curves of the max probability (solid, gid "max_probability")
  and the entropy / log K (dashed, gid "entropy") over the data's range; for
  D >= 2, the points on two features coloured by entropy (nats, from 0 to
  log K), the most uncertain on top. Right panel: histogram of the max
  probabilities, stacked by label.

  Args:
    model: a fitted `BayesianGMM`.
    x: data, array-like [N, D] ([N] too when D == 1). At most 20,000 points
      (a fixed random subset) are drawn in the left panel; all enter the
      histogram.
    path: where to save the figure, or None.
    mcmc: a `tfgmm.mcmc.MCMCResult` of the same model, or None.
    features: D >= 2 only: the data columns on the (horizontal, vertical)
      axes.
    feature_names: D axis labels, or None for "feature 0", ...

  Returns:
    The `matplotlib.figure.Figure` (1 row of 2 axes, plus a colour bar for
    D >= 2).

  Raises:
    ValueError: `x` does not have the model's width, invalid `features` or
      `feature_names`, or an `mcmc` result whose K or D differs from the
      model's.
  """
  d = _n_features(model)
  k = int(model.n_components)
  x = np.asarray(_numpy(x))
  if d == 1 and x.ndim == 1:
    x = x[:, None]
  x = _check_x(model, x)
  if d >= 2:
    i, j = _validation.check_feature_pair(features, d)
  names = _feature_names(feature_names, d)
  if mcmc is not None:
    _check_mcmc(mcmc, k, d)
    probabilities = mcmc.assignment_probabilities
    source = (f"MCMC-averaged ({mcmc.num_chains} chain"
              f"{'s' if mcmc.num_chains != 1 else ''} x {mcmc.num_draws} "
              "draws)")
  else:
    probabilities = model.responsibilities
    source = "variational responsibilities"
  labels, max_p, entropy = assignment_uncertainty(probabilities(x))
  log_k = math.log(k) if k > 1 else 1.0
  cmap = _component_colors(k)
  norm = mcolors.BoundaryNorm(np.arange(k + 1) - 0.5, k)
  rows = _subsample_rows(len(x))
  size = max(2.0, min(14.0, 6000.0 / len(rows)))

  fig = Figure(figsize=(12, 4.6), layout="constrained")
  left, right = fig.subplots(1, 2, width_ratios=(1.35, 1))
  if d == 1:
    values = x[:, 0]
    lo, hi = values.min(), values.max()
    pad = 0.08 * max(hi - lo, 1e-6) + 1e-6
    grid = np.linspace(lo - pad, hi + pad, 512)                   # [G]
    _, grid_max, grid_entropy = assignment_uncertainty(
        probabilities(grid[:, None]))
    left.plot(grid, grid_max, color="black", lw=1.6, gid="max_probability",
              label="max probability")
    left.plot(grid, grid_entropy / log_k, color="0.45", lw=1.3, ls="--",
              gid="entropy", label="entropy / log K")
    left.scatter(values[rows], max_p[rows], c=labels[rows], cmap=cmap,
                 norm=norm, s=size, alpha=0.7, linewidths=0, zorder=3,
                 rasterized=len(rows) > 2000)
    left.set_xlim(grid[0], grid[-1])
    left.set_ylim(-0.03, 1.03)
    left.set_xlabel(names[0])
    left.set_ylabel("probability / normalised entropy")
    for c in range(k if k <= 10 else 0):
      left.scatter([], [], color=cmap(c), s=25, label=f"label {c}")
    left.legend(loc="best", fontsize=8, framealpha=0.85)
    left.set_title("Most probable label and its probability", fontsize=11)
  else:
    # The most uncertain points are drawn last, on top.
    rows = rows[np.argsort(entropy[rows], kind="stable")]
    points = left.scatter(x[rows, i], x[rows, j], c=entropy[rows],
                          cmap="viridis", vmin=0.0, vmax=log_k, s=size,
                          alpha=0.8, linewidths=0,
                          rasterized=len(rows) > 2000)
    fig.colorbar(points, ax=left, label="assignment entropy (nats)")
    left.set_xlabel(names[i])
    left.set_ylabel(names[j])
    left.set_title(f"Entropy of each point's assignment (max log K = "
                   f"{math.log(k):.3g})", fontsize=11)

  edges = np.linspace(1.0 / k if k > 1 else 0.0, 1.0, 21)
  clipped = np.clip(max_p, edges[0], 1.0)      # rounding: stay in the bins
  groups = [clipped[labels == c] for c in range(k)]
  right.hist(groups, bins=edges, stacked=True,
             color=[cmap(c) for c in range(k)], edgecolor="white",
             linewidth=0.4,
             label=[f"label {c}" for c in range(k)] if k <= 10 else None)
  unsure = int(np.sum(max_p < 0.9))
  right.set_xlabel("probability of the most probable label")
  right.set_ylabel("points")
  right.set_title(f"{unsure} of {len(x)} points ({100.0 * unsure / len(x):.1f}"
                  "%) below 0.9", fontsize=11)
  if k <= 10:
    right.legend(loc="upper left", fontsize=8, framealpha=0.85)
  fig.suptitle(f"Assignment uncertainty: {source} (K={k}, N={len(x)})",
               fontsize=11)
  return _save(fig, path)


# ------------------------------------------------------- posterior marginals

def _vi_marginals(model, with_weights=True):
  """q's marginal of every scalar parameter, in data units (numpy).

  Returns:
    dict with
    - "weights" (if `with_weights`): ("beta", alpha_k [K], rest [K])
      (Dirichlet) or ("draws", [S, K]) (stick-breaking Monte Carlo draws).
    - "means": ("student_t", df, loc, scale) or ("normal", loc, scale),
      each [K, D].
    - "stddevs": ("sigma", a, b, feature scale): 1 / sigma_std^2 ~ Gamma(a,
      rate b), [K, D], and sigma = scale sigma_std.
  """
  # The inverse-Wishart / Gamma marginals per feature and the standardisation
  # are the model's own (those of posterior_summary), not re-derived here.
  q = model.family.cast_posterior(model.posterior(), "float64")
  a, b, mean_variance = model.family.feature_marginals(q, model.n_features)
  scale = np.asarray(model.feature_scale.numpy(), np.float64)     # [D]
  loc = model.posterior_mean()["means"]                           # [K, D]
  concentration = q.weight_concentration.numpy()                  # [K]
  if not with_weights:
    weights = None
  elif model.weight_prior == "dirichlet":
    weights = ("beta", concentration, concentration.sum() - concentration)
  else:
    from tfgmm._engine import weight_priors  # pylint: disable=import-outside-toplevel
    g1, g2 = [t.numpy() for t in weight_priors.stick_concentrations(
        concentration, model.weight_concentration)]
    rng = np.random.default_rng(model.seed)
    v = rng.beta(g1, g2, size=(_WEIGHT_DRAWS, len(g1)))           # [S, K]
    v[:, -1] = 1.0
    rest = np.cumprod(1.0 - v, 1)
    weights = ("draws", v * np.concatenate(
        [np.ones_like(rest[:, :1]), rest[:, :-1]], 1))
  if model.mean_prior == "independent":
    means = ("normal", loc, scale * np.sqrt(mean_variance))
  else:
    beta = q.mean_precision.numpy()
    beta = beta[:, None] if beta.ndim == 1 else beta              # [K, D]
    means = ("student_t", 2.0 * a, loc, scale * np.sqrt(b / (beta * a)))
  return {"weights": weights, "means": means,
          "stddevs": ("sigma", a, b, np.broadcast_to(scale, a.shape))}


def _marginal_curve(marginals, name, index):
  """(grid, density) of one scalar parameter's marginal, [G] each."""
  kind, *fields = marginals[name]
  if kind == "draws":
    return _histogram_curve(fields[0][:, index[0]])
  fields = [float(np.asarray(field)[index]) for field in fields]
  if kind == "beta":
    alpha, rest = fields
    mean = alpha / (alpha + rest)
    sd = math.sqrt(mean * (1.0 - mean) / (alpha + rest + 1.0))
    grid = _beta_grid(alpha, rest, max(mean - _TAIL_Z * sd, 0.0),
                      min(mean + _TAIL_Z * sd, 1.0))
    log_density = ((alpha - 1.0) * np.log(grid)
                   + (rest - 1.0) * np.log1p(-grid) - math.lgamma(alpha)
                   - math.lgamma(rest) + math.lgamma(alpha + rest))
  elif kind == "normal":
    center, width = fields
    u = np.linspace(-_TAIL_Z, _TAIL_Z, _CURVE_POINTS)
    grid = center + width * u
    log_density = -0.5 * u * u - math.log(width) - 0.5 * math.log(2 * math.pi)
  elif kind == "student_t":
    df, center, width = fields
    # Wider for heavy tails: +-(6 + 40 / df) scales holds all but ~1% of
    # the mass even at df = 1, and +-6 sds as df grows.
    u = np.linspace(-1.0, 1.0, _CURVE_POINTS) * (_TAIL_Z + 40.0 / df)
    grid = center + width * u
    log_density = (math.lgamma(0.5 * (df + 1.0)) - math.lgamma(0.5 * df)
                   - 0.5 * math.log(df * math.pi) - math.log(width)
                   - 0.5 * (df + 1.0) * np.log1p(u * u / df))
  else:  # "sigma": sigma = c / sqrt(tau), tau ~ Gamma(a, rate b)
    a, b, c = fields
    # Quantiles of tau at +-6 sds by Wilson-Hilferty; where its cube root
    # goes negative (small a), the bound F(t) <= (b t)^a / Gamma(a + 1) at
    # probability 1e-7 instead.
    def tau_at(z):
      root = 1.0 - 1.0 / (9.0 * a) + z / (3.0 * math.sqrt(a))
      return a / b * root**3 if root > 0 else None
    tau_low = tau_at(-_TAIL_Z) or math.exp(
        (math.log(1e-7) + math.lgamma(a + 1.0)) / a) / b
    # Geometric spacing: for small a the range spans decades.
    grid = np.geomspace(c / math.sqrt(tau_at(_TAIL_Z)),
                        c / math.sqrt(tau_low), _CURVE_POINTS)
    tau = (c / grid) ** 2
    # p(sigma) = Gamma(tau | a, b) |d tau / d sigma|, d tau / d sigma =
    # -2 c^2 / sigma^3.
    log_density = (a * math.log(b) - math.lgamma(a) + (a - 1.0) * np.log(tau)
                   - b * tau + math.log(2.0) + 2.0 * math.log(c)
                   - 3.0 * np.log(grid))
  return grid, np.exp(log_density)


def _beta_grid(alpha, rest, lo, hi):
  """Grid points on [lo, hi] for a Beta(alpha, rest) density, [G].

  Evenly spaced, except towards an end where the density is unbounded
  (alpha < 1 at 0, rest < 1 at 1): there x - lo = (hi - lo) t^(1 / alpha)
  for evenly spaced t, so each interval holds about the same mass (the
  trapezoid rule then misses only the first interval's ~1 / G of it), and
  the end itself is left out.
  """
  t = np.linspace(0.0, 1.0, _CURVE_POINTS)
  if alpha < 1 <= rest:
    grid = lo + (hi - lo) * t[1:] ** (1.0 / alpha)
  elif rest < 1 <= alpha:
    grid = hi - (hi - lo) * t[::-1][:-1] ** (1.0 / rest)
  else:
    grid = lo + (hi - lo) * t
  return np.clip(grid, 1e-300, 1.0 - 1e-16)


def _histogram_curve(samples, bins=60):
  """A density histogram of draws as a step curve (x, density), [2 bins].

  Each bin contributes its two edges at its height, so the trapezoid rule on
  the curve gives the histogram's area and moments exactly. Normalised by
  all the draws: the 0.1% beyond the plotted quantiles is left out.
  """
  lo, hi = np.quantile(samples, [0.0005, 0.9995])
  if not hi > lo:
    hi = lo + max(abs(lo), 1.0) * 1e-9
  counts, edges = np.histogram(samples, bins=bins, range=(lo, hi))
  density = counts / (len(samples) * (edges[1] - edges[0]))
  return (np.stack([edges[:-1], edges[1:]], 1).ravel(),
          np.repeat(density, 2))


def _mcmc_histogram(ax, values):
  """Overlays a density histogram of MCMC draws (one patch).

  Returns:
    (smallest draw, largest draw, highest bar), or None when nothing was
    drawn (no finite draws, or all equal).
  """
  values = values[np.isfinite(values)]
  if values.size == 0 or np.ptp(values) == 0:
    return None
  bins = int(np.clip(np.sqrt(values.size), 10, 40))
  sd = values.std(ddof=1) if values.size > 1 else 0.0
  heights, _, _ = ax.hist(values, bins=bins, density=True,
                          histtype="stepfilled", color="0.35", alpha=0.4,
                          edgecolor="0.2", linewidth=0.6,
                          label=f"MCMC: {values.mean():.4g} ± {sd:.2g}")
  return values.min(), values.max(), float(np.max(heights))


def _zoom(ax, grid, density, drawn=None):
  """Sets a panel's limits to the curve's central 99.9% of mass (and the
  MCMC draws), and caps the height of a density unbounded at an end.

  The curve itself (the line's data) keeps its full range.
  """
  mass = np.concatenate([[0.0], np.cumsum(
      0.5 * (density[1:] + density[:-1]) * np.diff(grid))])
  mass = mass / mass[-1]
  lo, hi = np.interp([0.0005, 0.9995], mass, grid)
  pad = 0.1 * (hi - lo)
  lo, hi = max(lo - pad, grid[0]), min(hi + pad, grid[-1])
  if drawn is not None:
    lo, hi = min(lo, drawn[0]), max(hi, drawn[1])
  if hi > lo:
    ax.set_xlim(lo, hi)
  margin = 0.02 * (hi - lo)
  inner = density[(grid >= lo + margin) & (grid <= hi - margin)]
  if inner.size and density.max() > 20.0 * inner.max():
    # A spike at an end (a Beta with alpha < 1): show the rest of the curve.
    top = 1.15 * inner.max()
    ax.set_ylim(0.0, max(top, 1.05 * drawn[2]) if drawn else top)
  else:
    ax.set_ylim(bottom=0.0)


def _check_parameters(parameters):
  if isinstance(parameters, str):
    parameters = (parameters,)
  try:
    parameters = tuple(parameters)
  except TypeError:
    parameters = None
  if (not parameters or any(p not in POSTERIOR_PARAMETERS for p in parameters)
      or len(set(parameters)) != len(parameters)):
    raise ValueError(f"Expected `parameters` to be distinct names among "
                     f"{list(POSTERIOR_PARAMETERS)}. Received: "
                     f"parameters={parameters!r}.")
  return [p for p in POSTERIOR_PARAMETERS if p in parameters]


def _check_mcmc(mcmc, k, d):
  weights, means = (getattr(mcmc, "weights", None),
                    getattr(mcmc, "means", None))
  if weights is None or means is None or not hasattr(mcmc, "draws"):
    raise TypeError("Expected `mcmc` to be a tfgmm.mcmc.MCMCResult. "
                    f"Received an object of type {type(mcmc).__name__}.")
  if np.shape(weights)[-1] != k or np.shape(means)[-1] != d:
    raise ValueError(
        f"Expected `mcmc` draws of the model's K={k} components and D={d} "
        f"features. Received: mcmc.means.shape={np.shape(means)}.")


def _check_positive_number(name, value):
  if (isinstance(value, bool) or not isinstance(value, numbers.Real)
      or not math.isfinite(value) or value <= 0):
    raise ValueError(f"Expected `{name}` to be a positive number. "
                     f"Received: {name}={value!r}.")
  return float(value)


def _check_ellipses(ellipses):
  """The ellipses' radii in sigmas, a tuple (empty for none)."""
  if ellipses is True:
    return _DEFAULT_SIGMAS
  if ellipses is False or ellipses is None:
    return ()
  try:
    radii = tuple(ellipses)
  except TypeError:
    radii = None
  if radii is None or any(
      isinstance(r, bool) or not isinstance(r, numbers.Real)
      or not math.isfinite(r) or r <= 0 for r in radii):
    raise ValueError("Expected `ellipses` to be a bool or a sequence of "
                     "positive radii in sigmas. Received: "
                     f"ellipses={ellipses!r}.")
  return tuple(float(r) for r in radii)


def _covariances(precisions):
  """Sigma = E[Lambda]^-1 per component from posterior_mean()'s precisions:
  [K, D] (diagonal) or [K, D, D] (full) -> [K, D, D]."""
  precisions = np.asarray(precisions, np.float64)
  if precisions.ndim == 2:
    return np.stack([np.diag(1.0 / row) for row in precisions])
  return np.linalg.inv(precisions)


def _draw_ellipses(ax, summary, features, sigmas, cmap):
  """The n-sigma ellipses of the components with weight >= _MIN_WEIGHT."""
  if not sigmas:
    return
  i, j = features
  covariances = _covariances(summary["precisions"])[:, [i, j]][:, :, [i, j]]
  for c, weight in enumerate(summary["weights"]):
    if weight < _MIN_WEIGHT:
      continue
    for r, n in enumerate(sigmas):
      width, height, angle = ellipse_geometry(covariances[c], n)
      ax.add_patch(mpatches.Ellipse(
          (summary["means"][c, i], summary["means"][c, j]), width, height,
          angle=angle, fill=False, edgecolor=cmap(c), alpha=0.95,
          linewidth=1.7 if r == 0 else 1.2,
          linestyle=_ELLIPSE_STYLES[r % len(_ELLIPSE_STYLES)], zorder=4))
  for r, n in enumerate(sigmas):
    ax.plot([], [], color="0.15", lw=1.7 if r == 0 else 1.2,
            ls=_ELLIPSE_STYLES[r % len(_ELLIPSE_STYLES)],
            label=(f"{n:g}-sigma ellipses "
                   f"({100.0 * -math.expm1(-0.5 * n * n):.1f}% mass)"))


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


def _feature_names(names, d):
  if names is None:
    return [f"feature {i}" for i in range(d)]
  names = [str(name) for name in names]
  if len(names) != d:
    raise ValueError(f"Expected {d} `feature_names`. Received {len(names)}: "
                     f"{names!r}.")
  return names


def _check_x(model, x):
  """x as float64 [N, D]: `_validation.check_data` at the model's width."""
  return _validation.check_data(x, _n_features(model), "x", dtype=np.float64)


def _numpy(value):
  return np.asarray(value.numpy() if hasattr(value, "numpy") else value)


def _subsample(x):
  return x[_subsample_rows(len(x))]


def _subsample_rows(n):
  """The rows drawn in a scatter: all, or a fixed random 20,000."""
  if n <= _MAX_SCATTER_POINTS:
    return np.arange(n)
  rows = np.random.default_rng(0).choice(n, _MAX_SCATTER_POINTS,
                                         replace=False)
  return np.sort(rows)


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
