"""Pyro's Gaussian mixture tutorial (five points, MAP, assignments, NUTS),
beside tfgmm.

The tutorial fits K = 2 components to the five points [0, 1, 10, 11, 12]:

  weights ~ Dirichlet(0.5, 0.5)
  scale   ~ LogNormal(0, 2)              one scale shared by both components
  locs[k] ~ Normal(0, 10)
  x_n     ~ sum_k weights[k] Normal(locs[k], scale)   (assignments enumerated)

It finds the MAP with an `AutoDelta` guide: the best of 100 random
initialisations by their initial loss (uniform weights, scale
sqrt(var(x) / 2), locs two distinct data points), then 200 Adam steps. It
prints weights [0.375, 0.625], locs [0.499, 10.984], scale 0.651; it labels
the points by `infer_discrete` at temperature 0 (MAP) and 1 (a draw), and
runs NUTS on the collapsed model (250 draws after 50 warm-up) for the
posterior of the locs.

This script fits the same five points:

  (a) Pyro's model itself, in NumPy/SciPy: its log joint (the negative of
      Pyro's loss), initialised as the tutorial does, best of --n-init by
      initial loss, then maximised by BFGS to convergence. It reproduces
      the tutorial's printed initial loss and MAP.
  (b) tfgmm's MAP, `tfgmm.fit(x, 2, method="map", n_init=...)`: EM from
      k-means++ restarts, best final log posterior kept, with Pyro's
      Dirichlet(0.5) weights and Normal(0, 10) locations exactly
      (`mean_prior="independent", mean_precision=0.01`) and, where Pyro has
      one LogNormal(0, 2) scale, a Gamma(1.5, rate 0.02) precision per
      component (see the notes it prints for why these values).
  (c) tfgmm's variational posterior (CAVI) of that model, and
  (d) NUTS on its collapsed posterior (`tfgmm.mcmc.sample`), chains
      started from (c).

It prints the MAP estimates side by side, the posterior of (c) and (d) with
R-hat and ESS, and each point's MAP and sampled labels and NUTS-averaged
assignment probability, and with --out it writes the marginal posteriors
(VI curves, NUTS histograms), the assignment uncertainty and the predictive
density as PNGs.

Examples:

  python -m examples.pyro_gmm                  # about 1 min
  python -m examples.pyro_gmm --out plots/pyro_gmm
  python -m examples.pyro_gmm --n-init 20 --num-results 200 \\
      --num-burnin 200 --num-chains 2

`main(argv)` returns a dict of the results (see `main`); bad arguments exit
with argparse's status 2.
"""

import argparse
import math
import os
import time

import numpy as np
from scipy import optimize
from scipy import special
from scipy import stats

from examples import _common

PROG = "python -m examples.pyro_gmm"

# The tutorial's data and model.
DATA = np.array([0.0, 1.0, 10.0, 11.0, 12.0])
K = 2
WEIGHT_CONCENTRATION = 0.5           # weights ~ Dirichlet(0.5 * ones(K))
LOC_SCALE = 10.0                     # locs ~ Normal(0, 10)
SCALE_LOG_SD = 2.0                   # scale ~ LogNormal(0, 2)
PYRO_N_INIT = 100                    # best of 100 initialisations
PYRO_NUTS = dict(num_samples=250, warmup_steps=50, chains=1)

# What the tutorial printed, in its own component order (the cluster near
# 0.5 first). Its assignments are the same at temperature 0 and 1.
PYRO_PRINTED = dict(
    best_seed=7, initial_loss=25.665584564208984,
    weights=np.array([0.375, 0.625]),
    locs=np.array([0.49887404, 10.984463]),
    scale=0.6514337062835693,
    assignment=np.array([0, 0, 1, 1, 1]),
    boundary=5.75)                   # "the boundary between classes, ~5.75"

# tfgmm's prior for the same model. Pyro's priors on the weights and the
# locations carry over exactly; its single LogNormal(0, 2) scale becomes a
# Gamma(a, rate b) precision tau_k = 1 / sigma_k^2 per component. Pyro's
# MAP maximises its density of sigma, whose prior factor
# sigma^-1 exp(-(ln sigma)^2 / 8) is, as a function of tau,
# tau^(1/2) exp(-(ln tau)^2 / 32): Gamma(1.5, b)'s tau^(a - 1) is the same
# power, and b = 0.02 is about the slope of the remaining factor,
# ln(tau) / (16 tau) = 0.023, at Pyro's mode tau = 2.36.
PRECISION_CONCENTRATION = 1.5
PRECISION_RATE = 0.02
TFGMM_PRIOR = dict(weight_concentration=WEIGHT_CONCENTRATION,
                   mean_prior="independent", mean_loc=0.0,
                   mean_precision=1.0 / LOC_SCALE**2,
                   precision_concentration=PRECISION_CONCENTRATION,
                   precision_rate=PRECISION_RATE,
                   standardize=False, dtype="float64")

PLOTS = ("posterior.png", "assignment_uncertainty.png", "density.png")
# The class boundary is searched between the two clusters on this grid.
_BOUNDARY_GRID = np.linspace(1.0, 10.0, 901)
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


# ------------------------------------------------- Pyro's model in NumPy

def _normal_log_pdf(x, loc, scale):
  return -_LOG_SQRT_2PI - np.log(scale) - 0.5 * np.square((x - loc) / scale)


def pyro_log_joint(x, weights, locs, scale):
  """log p(x, weights, locs, scale) of the tutorial's model, z summed out.

  The density of the constrained values themselves (no Jacobian), as the
  tutorial's `AutoDelta` guide scores them: its loss is the negative.

  Args:
    x: the data, [N].
    weights, locs: [K] each; scale: a float.

  Returns:
    float.
  """
  weights = np.asarray(weights, np.float64)
  locs = np.asarray(locs, np.float64)
  k = len(weights)
  log_weights = np.log(weights)
  log_prior = (special.gammaln(k * WEIGHT_CONCENTRATION)
               - k * special.gammaln(WEIGHT_CONCENTRATION)
               + (WEIGHT_CONCENTRATION - 1.0) * np.sum(log_weights))
  log_scale = math.log(scale)
  log_prior += (-log_scale - _LOG_SQRT_2PI - math.log(SCALE_LOG_SD)
                - 0.5 * (log_scale / SCALE_LOG_SD) ** 2)
  log_prior += np.sum(_normal_log_pdf(locs, 0.0, LOC_SCALE))
  log_lik = special.logsumexp(
      log_weights + _normal_log_pdf(np.asarray(x)[:, None], locs, scale), 1)
  return float(log_prior + np.sum(log_lik))


def pyro_responsibilities(x, weights, locs, scale):
  """p(z_n = k | x_n, weights, locs, scale), [N, K]."""
  log_joint = np.log(weights) + _normal_log_pdf(np.asarray(x)[:, None], locs,
                                                scale)            # [N, K]
  return special.softmax(log_joint, 1)


def pyro_initial_state(x, rng):
  """One of the tutorial's random starts (its `init_loc_fn`).

  Weights uniform, scale sqrt(var(x) / 2) (unbiased variance, as torch's
  `var`), locs K distinct data points drawn uniformly (torch.multinomial
  without replacement). NumPy's generator stands in for torch's.
  """
  x = np.asarray(x, np.float64)
  locs = x[rng.choice(len(x), K, replace=False)]
  return np.full(K, 1.0 / K), locs, math.sqrt(np.var(x, ddof=1) / 2.0)


def pyro_reference(x, n_init, seed):
  """The tutorial's MAP on its own model: best start, then to convergence.

  Draws `n_init` starts as the tutorial does, keeps the one with the lowest
  initial loss (ties: the first), and maximises the log joint from it by
  BFGS over (logit of the weights, locs, log scale), a reparametrisation
  that moves the point, not the objective (still the density of the
  constrained values). The tutorial ran 200 Adam steps instead.

  Returns:
    dict: `initial_loss` (the best start's -log joint), `initial_locs`,
    `weights`, `locs` [K] and `scale` at the MAP in canonical order
    (decreasing weight), `log_joint` there, `responsibilities` [N, K],
    `assign` and `sampled` (labels at temperature 0 and 1), `boundary`
    and `seconds`.
  """
  began = time.perf_counter()
  rng = np.random.default_rng(seed)
  starts = [pyro_initial_state(x, rng) for _ in range(n_init)]
  losses = [-pyro_log_joint(x, *s) for s in starts]
  best = int(np.argmin(losses))
  weights, locs, scale = starts[best]

  def unpack(theta):
    return (special.softmax(np.append(theta[:K - 1], 0.0)), theta[K - 1:-1],
            math.exp(theta[-1]))

  def loss(theta):
    return -pyro_log_joint(x, *unpack(theta))

  start = np.concatenate([np.log(weights[:-1] / weights[-1]), locs,
                          [math.log(scale)]])
  fit = optimize.minimize(loss, start, method="BFGS",
                          options=dict(gtol=1e-9, maxiter=1000))
  weights, locs, scale = unpack(fit.x)
  order = np.argsort(-weights, kind="stable")
  weights, locs = weights[order], locs[order]
  resp = pyro_responsibilities(x, weights, locs, scale)
  sampled = np.array([rng.choice(K, p=row) for row in resp])
  grid_resp = pyro_responsibilities(_BOUNDARY_GRID, weights, locs, scale)
  return {
      "initial_loss": float(losses[best]),
      "initial_locs": starts[best][1],
      "weights": weights, "locs": locs, "scale": float(scale),
      "log_joint": -float(fit.fun),
      "responsibilities": resp,
      "assign": np.argmax(resp, 1), "sampled": sampled,
      "boundary": class_boundary(_BOUNDARY_GRID, grid_resp[:, 0]),
      "seconds": time.perf_counter() - began,
  }


def class_boundary(grid, p_first):
  """Where p(z = 0 | x) crosses 1/2 on `grid`, or NaN if it does not.

  Linear interpolation of the log-odds between the two grid points around
  the first crossing (the log-odds are linear in x for equal variances).
  """
  p = np.clip(np.asarray(p_first, np.float64), 1e-300, 1.0 - 1e-16)
  above = p >= 0.5
  cross = np.nonzero(above[1:] != above[:-1])[0]
  if not len(cross):
    return math.nan
  i = int(cross[0])
  lo, hi = special.logit(p[i]), special.logit(p[i + 1])
  return float(grid[i] + (grid[i + 1] - grid[i]) * lo / (lo - hi))


# --------------------------------------------------------------- tfgmm

def fit_map(x, n_init, seed):
  """(b): tfgmm's MAP by EM, best of `n_init` restarts."""
  import tfgmm  # pylint: disable=import-outside-toplevel

  began = time.perf_counter()
  fit = tfgmm.fit(x, K, method="map", n_init=n_init, seed=seed,
                  **TFGMM_PRIOR)
  seconds = time.perf_counter() - began
  restarts = fit.restart_log_posteriors
  best = np.max(restarts)
  grid = np.asarray(fit.responsibilities(_BOUNDARY_GRID[:, None]))
  return {
      "fit": fit,
      "weights": fit.weights, "means": fit.means[:, 0],
      "stddevs": fit.precisions[:, 0] ** -0.5,
      "log_posterior": fit.log_posterior,
      "restarts_at_best": int(np.sum(restarts >= best - 1e-6 * max(
          1.0, abs(best)))),
      "n_init": len(restarts),
      "assign": np.asarray(fit.assign(x)),
      "sampled": np.asarray(fit.assign(x, temperature=1.0, seed=seed)),
      "responsibilities": np.asarray(fit.responsibilities(x)),
      "boundary": class_boundary(_BOUNDARY_GRID, grid[:, 0]),
      "converged": fit.converged,
      "seconds": seconds,
  }


def fit_vi(x, seed):
  """(c): tfgmm's variational posterior of the same model, by CAVI."""
  import tfgmm  # pylint: disable=import-outside-toplevel

  began = time.perf_counter()
  model = tfgmm.fit(x, K, seed=seed, **TFGMM_PRIOR)
  seconds = time.perf_counter() - began
  summary = model.posterior_summary()
  grid = np.asarray(model.responsibilities(_BOUNDARY_GRID[:, None]))
  return {
      "model": model,
      "summary": {name: value if value.ndim == 1 else value[:, 0]
                  for name, value in summary.items()},
      "assign": np.asarray(model.assign(x)),
      "sampled": np.asarray(model.assign(x, temperature=1.0, seed=seed)),
      "responsibilities": np.asarray(model.responsibilities(x)),
      "boundary": class_boundary(_BOUNDARY_GRID, grid[:, 0]),
      "converged": bool(model.converged),
      "seconds": seconds,
  }


def run_nuts(model, x, num_results, num_burnin, num_chains, seed):
  """(d): NUTS on the collapsed posterior of `model`, chains from its q."""
  from tfgmm import mcmc  # pylint: disable=import-outside-toplevel
  from tfgmm import metrics  # pylint: disable=import-outside-toplevel

  result = mcmc.sample(model, x, kernel="nuts", num_results=num_results,
                       num_burnin_steps=num_burnin, num_chains=num_chains,
                       seed=seed)
  summary = {name: {stat: value if value.ndim == 1 else value[:, 0]
                    for stat, value in table.items()}
             for name, table in result.summary().items()}
  probabilities = result.assignment_probabilities(x)              # [N, K]
  labels, max_probability, entropy = metrics.assignment_uncertainty(
      probabilities)
  grid = result.assignment_probabilities(_BOUNDARY_GRID[:, None])
  means = np.asarray(result.means, np.float64)[..., 0]            # [S, C, K]
  return {
      "result": result, "summary": summary,
      # Draws in the other labelling: the light cluster's loc above the
      # heavy one's.
      "swapped": int(np.sum(means[..., 1] > means[..., 0])),
      "assignment_probabilities": probabilities,
      "labels": labels, "max_probability": max_probability,
      "entropy": entropy,
      "boundary": class_boundary(_BOUNDARY_GRID, grid[:, 0]),
      "divergences": int(np.sum(result.num_divergences)),
      "seconds": result.seconds,
  }


# ------------------------------------------------------------------ output

# Rows in canonical order: component 0 is the heavier cluster, near 11.
_CLUSTERS = ("near 11", "near 0.5")


def format_map_table(printed, ref, map_fit):
  """Pyro's printed MAP, its model's MAP in NumPy and tfgmm's MAP."""
  order = np.argsort(-printed["weights"], kind="stable")  # canonical
  header = ["", "Pyro printed", "Pyro's model, NumPy", "tfgmm MAP"]
  rows = [["best initial loss, -log p",
           f"{printed['initial_loss']:.6f}", f"{ref['initial_loss']:.6f}",
           "-"],
          ["restarts at the kept mode", "-", "-",
           f"{map_fit['restarts_at_best']} of {map_fit['n_init']}"]]
  for c, cluster in enumerate(_CLUSTERS):
    rows.append([f"weight, cluster {cluster}",
                 f"{printed['weights'][order[c]]:.6f}",
                 f"{ref['weights'][c]:.6f}", f"{map_fit['weights'][c]:.6f}"])
  for c, cluster in enumerate(_CLUSTERS):
    rows.append([f"loc, cluster {cluster}",
                 f"{printed['locs'][order[c]]:.6f}",
                 f"{ref['locs'][c]:.6f}", f"{map_fit['means'][c]:.6f}"])
  for c, cluster in enumerate(_CLUSTERS):
    rows.append([f"scale (sd), cluster {cluster}",
                 f"{printed['scale']:.6f} shared",
                 f"{ref['scale']:.6f} shared",
                 f"{map_fit['stddevs'][c]:.6f}"])
  rows.append(["time (s)", "-", f"{ref['seconds']:.2f}",
               f"{map_fit['seconds']:.2f}"])
  return _common.format_table(header, rows)


def format_posterior_table(vi, nuts):
  """tfgmm's posterior: VI (mean ± sd) beside NUTS (mean ± sd, R-hat, ESS)."""
  header = ["", "VI (CAVI)", "NUTS", "R-hat", "ESS"]
  rows = []
  for name, label in (("weights", "weight"), ("means", "loc"),
                      ("stddevs", "sd")):
    for c, cluster in enumerate(_CLUSTERS):
      table = nuts["summary"][name]
      rows.append([f"{label}, cluster {cluster}",
                   _common.pm(vi["summary"][name][c],
                              vi["summary"][name + "_sd"][c]),
                   _common.pm(table["mean"][c], table["sd"][c]),
                   f"{table['r_hat'][c]:.3f}", f"{table['ess'][c]:.0f}"])
  rows.append(["time (s)", f"{vi['seconds']:.2f}", f"{nuts['seconds']:.2f}",
               "", ""])
  return _common.format_table(header, rows)


def format_assignment_table(x, printed, ref, map_fit, vi, nuts):
  """Labels at temperature 0 / 1 and NUTS-averaged probabilities per point."""
  canonical = 1 - printed["assignment"]  # Pyro's 0 is the cluster near 0.5
  header = ["x", "Pyro printed", "Pyro's model", "tfgmm MAP", "tfgmm VI",
            "NUTS p(0)", "NUTS entropy"]
  rows = []
  for n, value in enumerate(x):
    rows.append([f"{value:g}", f"{canonical[n]}/{canonical[n]}",
                 f"{ref['assign'][n]}/{ref['sampled'][n]}",
                 f"{map_fit['assign'][n]}/{map_fit['sampled'][n]}",
                 f"{vi['assign'][n]}/{vi['sampled'][n]}",
                 f"{nuts['assignment_probabilities'][n, 0]:.4f}",
                 f"{nuts['entropy'][n]:.4f}"])
  rows.append(["boundary", f"~{printed['boundary']:g}",
               f"{ref['boundary']:.3f}", f"{map_fit['boundary']:.3f}",
               f"{vi['boundary']:.3f}", f"{nuts['boundary']:.3f}", "-"])
  return _common.format_table(header, rows)


def prior_sd_intervals(mass=0.94):
  """The central `mass` interval of a cluster's sd under each prior.

  Returns:
    (tfgmm's, Pyro's): sd = tau^-1/2 with tau ~ Gamma(a, rate b), and
    sd ~ LogNormal(0, 2); each a pair (low, high).
  """
  tail = (1.0 - mass) / 2.0
  tau = stats.gamma(PRECISION_CONCENTRATION, scale=1.0 / PRECISION_RATE)
  gamma_sd = tuple(float(t) ** -0.5 for t in tau.ppf([1.0 - tail, tail]))
  lognormal_sd = tuple(float(v) for v in stats.lognorm(SCALE_LOG_SD).ppf(
      [tail, 1.0 - tail]))
  return gamma_sd, lognormal_sd


def notes(args, ref, map_fit, vi, nuts):
  """The caveats printed under the tables."""
  result = nuts["result"]
  gamma_sd, lognormal_sd = prior_sd_intervals()
  loc_shift = float(np.max(np.abs(map_fit["means"] - ref["locs"])))
  items = [
      "Labels: component 0 is the heavier cluster (near 11), 1 the lighter "
      "(near 0.5), tfgmm's canonical order; Pyro printed tensor([0, 0, 1, "
      "1, 1]) in its own order, relabelled here. Cells 'a/b' are the label "
      "at temperature 0 (the MAP label, infer_discrete(temperature=0)) and "
      f"a draw at temperature 1 (seed {args.seed}). 'boundary' is where "
      "p(z = 0 | x) crosses 1/2 between the clusters.",
      "Pyro's model, NumPy: the tutorial's log joint (its loss is the "
      f"negative) from the best of {args.n_init} starts drawn as its "
      "init_loc_fn draws them (NumPy's generator, not torch's: the "
      f"tutorial's winner was its seed {PYRO_PRINTED['best_seed']}), then "
      "BFGS to convergence where the tutorial ran 200 Adam steps, which "
      "leaves its loc 0.49887 short of the mode's "
      f"{ref['locs'][1]:.5f}.",
      "Priors: Dirichlet(0.5) on the weights and Normal(0, 10) on the "
      "locations are Pyro's, exactly (mean_prior='independent', "
      "mean_precision=0.01). Pyro has ONE scale ~ LogNormal(0, 2) for both "
      "components; tfgmm has a precision tau_k = 1 / sd_k^2 per component "
      f"with a Gamma({PRECISION_CONCENTRATION:g}, "
      f"{PRECISION_RATE:g}) prior (rate). Pyro's MAP maximises the "
      "density of the scale, whose prior factor sd^-1 exp(-(ln sd)^2 / 8) "
      "is tau^(1/2) exp(-(ln tau)^2 / 32) as a function of tau: "
      f"Gamma({PRECISION_CONCENTRATION:g}, b) has that power of tau, "
      f"and b = {PRECISION_RATE:g} about the slope of the rest at "
      "Pyro's mode. So each cluster gets its own sd (tfgmm: "
      f"{map_fit['stddevs'][1]:.3f} near 0.5, {map_fit['stddevs'][0]:.3f} "
      f"near 11, where Pyro pools them into {ref['scale']:.3f}). That "
      f"moves the locs by {loc_shift:.4f} at most, but the class boundary "
      "by more: with unequal sds the wider cluster near 11 claims x down "
      f"to {map_fit['boundary']:.2f} (Pyro: {ref['boundary']:.2f}). And as "
      "distributions the two scale priors differ widely: the middle 94% "
      f"of the sd is ({gamma_sd[0]:.3f}, {gamma_sd[1]:.2f}) "
      f"under Gamma({PRECISION_CONCENTRATION:g}, {PRECISION_RATE:g}) and "
      f"({lognormal_sd[0]:.3f}, {lognormal_sd[1]:.0f}) under LogNormal(0, "
      "2); with 2 and 3 points per cluster, the posterior sds of (c) and "
      "(d) lean on that choice.",
      "MAP weights do not depend on the scale prior: they are "
      "(N_k + 0.5 - 1) / (5 + 2 (0.5 - 1)) = 2.5 / 4 and 1.5 / 4 with the "
      "points split {10, 11, 12} / {0, 1}. VI reports posterior means, "
      "(3 + 0.5) / 6 = 0.583 and 0.417, not modes. tfgmm keeps the restart "
      "with the best log posterior after EM; Pyro keeps the start with "
      "the best initial loss and trains only that one.",
      "NUTS: tfgmm's collapsed posterior of its own model (per-component "
      f"precisions), {result.num_chains} chains x {result.num_draws} draws "
      f"after {result.num_burnin_steps} burn-in, "
      f"{nuts['divergences']} divergent transition"
      f"{'' if nuts['divergences'] == 1 else 's'}, mean acceptance "
      f"{float(np.mean(result.acceptance_rate)):.2f}; the tutorial ran "
      f"{PYRO_NUTS['chains']} chain x {PYRO_NUTS['num_samples']} draws after "
      f"{PYRO_NUTS['warmup_steps']} warm-up on its model and printed no "
      "numbers (a 2-D histogram of the locs, its mode near (0.5, 11)). The "
      "chains start from the VI posterior, in its labelling; draws with the "
      f"labels swapped (loc 1 above loc 0): {nuts['swapped']} of "
      f"{result.num_chains * result.num_draws} (the tutorial notes that "
      "its NUTS too rarely moves between the two labellings).",
  ]
  return "\n".join(["Notes:"] + [_common.fill(item) for item in items])


# -------------------------------------------------------------- arguments

def build_parser():
  parser = argparse.ArgumentParser(
      prog=PROG,
      description="Reproduce Pyro's Gaussian mixture tutorial (five points: "
                  "MAP best of N, MAP and sampled assignments, NUTS) and "
                  "put tfgmm's MAP, VI and NUTS beside it.")
  parser.add_argument("--n-init", type=_common.positive_int,
                      default=PYRO_N_INIT, metavar="N",
                      help="random starts of the NumPy reference and "
                           "restarts of tfgmm's MAP (default: "
                           f"{PYRO_N_INIT}, the tutorial's)")
  parser.add_argument("--num-results", type=_common.int_at_least(4),
                      default=1000, metavar="S",
                      help="NUTS draws kept per chain (default: 1000)")
  parser.add_argument("--num-burnin", type=_common.int_at_least(0),
                      default=500, metavar="B",
                      help="NUTS burn-in steps per chain (default: 500)")
  parser.add_argument("--num-chains", type=_common.int_at_least(2),
                      default=4, metavar="C",
                      help="NUTS chains, >= 2 for R-hat (default: 4)")
  parser.add_argument("--seed", type=_common.seed, default=0,
                      help="seed of the starts, the restarts, the sampled "
                           "assignments and NUTS (default: 0)")
  _common.add_out_argument(parser, PLOTS)
  return parser


# -------------------------------------------------------------------- main

def main(argv=None):
  """Runs the comparison and prints its tables.

  Args:
    argv: arguments without the program name; None reads sys.argv.

  Returns:
    dict with
    - "x": the five points, [5, 1];
    - "printed": what the tutorial printed (`PYRO_PRINTED`);
    - "reference": Pyro's model in NumPy (see `pyro_reference`);
    - "map": tfgmm's MAP, "fit" (the `MAPMixture`), "weights", "means",
      "stddevs" [K], "log_posterior", "restarts_at_best", "n_init",
      "assign", "sampled" (labels at temperature 0 and 1), "boundary",
      "converged", "seconds";
    - "vi": "model" (the `BayesianGMM`), "summary" (its posterior summary,
      [K] per entry), "assign", "sampled", "responsibilities", "boundary",
      "converged", "seconds";
    - "nuts": "result" (the `MCMCResult`), "summary" (name -> statistic ->
      [K]), "swapped" (draws in the other labelling), "assignment_
      probabilities" [5, K], "labels", "max_probability", "entropy",
      "boundary", "divergences", "seconds";
    - "plots": file name -> path of each plot written.
    Components are in canonical order: 0 is the cluster near 11.
  """
  parser = build_parser()
  args = parser.parse_args(argv)
  _common.check_out_dir(parser, args.out)

  from tfgmm import plotting  # pylint: disable=import-outside-toplevel

  x = DATA[:, None]
  print(f"Data: the tutorial's five points {DATA.tolist()}, K = {K}.\n")

  print(f"(a) Pyro's model in NumPy, best of {args.n_init} starts...",
        flush=True)
  ref = pyro_reference(DATA, args.n_init, args.seed)
  print(f"(b) tfgmm MAP, best of {args.n_init} restarts...", flush=True)
  map_fit = fit_map(x, args.n_init, args.seed)
  print("(c) tfgmm VI (CAVI)...", flush=True)
  vi = fit_vi(x, args.seed)
  print(f"(d) tfgmm NUTS, {args.num_chains} chains x {args.num_results} "
        f"draws after {args.num_burnin} burn-in...\n", flush=True)
  nuts = run_nuts(vi["model"], x, args.num_results, args.num_burnin,
                  args.num_chains, args.seed)

  print("MAP point estimates:")
  print(format_map_table(PYRO_PRINTED, ref, map_fit))
  print("\ntfgmm's posterior (mean ± sd):")
  print(format_posterior_table(vi, nuts))
  print("\nAssignments, label at temperature 0/1 (0: the cluster near 11), "
        "and NUTS-averaged p(z = 0):")
  print(format_assignment_table(DATA, PYRO_PRINTED, ref, map_fit, vi, nuts))
  print()
  print(notes(args, ref, map_fit, vi, nuts))

  plots = _common.Plots(args.out)
  plots.save("posterior.png", plotting.plot_posterior, vi["model"],
             mcmc=nuts["result"], parameters=("weights", "means", "stddevs"))
  plots.save("assignment_uncertainty.png",
             plotting.plot_assignment_uncertainty, vi["model"], x,
             mcmc=nuts["result"])
  plots.save("density.png", plotting.plot_density_1d, vi["model"], x)
  print()
  print(plots.report())
  return {"x": x, "printed": PYRO_PRINTED, "reference": ref, "map": map_fit,
          "vi": vi, "nuts": nuts, "plots": dict(plots.paths)}


if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  main()
