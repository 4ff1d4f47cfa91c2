"""The univariate CAVI lecture's Gaussian mixture, beside tfgmm.

The lecture (variational inference for the Gaussian mixture, with its
coordinate-ascent updates written out in NumPy) draws 1,000 points from
each of three unit-variance Normals centred at 0, 1 and 5
(`np.random.RandomState(10)`, clusters in order), and fits

  x_n ~ Normal(mu_{z_n}, 1),  mu_k ~ Normal(0, 1),  z_n uniform over K = 3

by CAVI from a random start, until the bound changes by at most 1e-10. It
then looks at the bound per iteration, the assignment probabilities of
single points (uncertain ones sit where clusters meet), the posteriors of
the means, and scores the assignments against the true clusters with
scikit-learn's log loss and accuracy (after pairing fitted and true
clusters). This script draws the same 3,000 points and fits:

  (b) the lecture's algorithm, in NumPy (`_common.reference_cavi`: its
      updates for q(z) and q(mu), the full bound), from a start drawn the
      lecture's way (means = a random integer in [min x, max x) plus
      max(x) times a uniform draw, variances uniform in (0, 1));
  (c) the same model in tfgmm, from the same start: `BayesianGMM` with
      `mean_prior="independent"`, Normal(0, 1) means, unit precisions held
      by a Gamma(1e6, 1e6) prior and weights by a Dirichlet(1e6) prior,
      trained by `model.fit` on one batch of all the data
      (`method="natural"` with step 1, which is CAVI);
  (d) tfgmm's defaults, `tfgmm.fit(x, 3, seed=...)`: unknown variances
      (Normal-Gamma) and weights (Dirichlet), k-means++ restarts, CAVI.

beside (a) the true mixture (its exact assignment probabilities are the
best any fit can do). It prints the bound trace's length and smallest step
(CAVI never lowers the bound), the fitted means, and per fit the matched
accuracy, the log loss of the true labels (`tfgmm.metrics`), the share of
points whose most probable cluster has probability below 0.9 and the mean
entropy of the assignments.

An appendix repeats the lecture's 2-D appendix: 500 points from each of
three correlated 2-D Normals (RandomState(10)), fitted with scikit-learn's
`BayesianGaussianMixture(covariance_type="diag", weight_concentration_
prior_type="dirichlet_distribution", reg_covar=0, init_params="random",
max_iter=1500, mean_precision_prior=0.8, random_state=10)`, beside
`tfgmm.sklearn.BayesianGaussianMixture` with the same arguments.

Examples:

  python -m examples.cavi_univariate                # about 15 s
  python -m examples.cavi_univariate --out plots/cavi_univariate
  python -m examples.cavi_univariate --per-cluster 300 --no-appendix

`main(argv)` returns a dict of the results (see `main`); bad arguments exit
with argparse's status 2.
"""

# Heavy imports (TensorFlow, scikit-learn) wait until main() runs.
# pylint: disable=import-outside-toplevel

import argparse
import os
import time

import numpy as np

from examples import _common

PROG = "python -m examples.cavi_univariate"

# The lecture's data: RandomState(10), 1,000 draws per cluster, in order.
LECTURE_SEED = 10
CENTRES = np.array([0.0, 1.0, 5.0])
POINTS_PER_CLUSTER = 1000
# Its prior on the means (sigma = 1), its iteration cap and tolerance.
PRIOR_PRECISION = 1.0
MAX_ITER = 100
TOL = 1e-10
# The lecture's figure marks convergence at t = 78 (from an unseeded start).
LECTURE_ITERATIONS = 78

# The lecture's 2-D appendix.
APPENDIX_COVARIANCES = np.array([[[0.7, 0.2], [0.2, 0.1]],
                                 [[0.5, 0.0], [0.0, 0.1]],
                                 [[0.5, 0.0], [0.0, 0.1]]])
APPENDIX_MEANS = np.array([[0.0, -0.7], [0.0, 0.0], [0.0, 0.7]])
APPENDIX_POINTS = 500
APPENDIX_ESTIMATOR = dict(
    covariance_type="diag",
    weight_concentration_prior_type="dirichlet_distribution",
    n_components=3, reg_covar=0.0, init_params="random", max_iter=1500,
    mean_precision_prior=0.8, random_state=LECTURE_SEED)

PLOTS = ("training.png", "density.png", "assignment_uncertainty.png",
         "appendix_density.png")


# ------------------------------------------------------------------- data

def lecture_data(per_cluster=POINTS_PER_CLUSTER, seed=LECTURE_SEED):
  """The lecture's points: x [3 n] (cluster 0, then 1, then 2), labels [3 n].

  With the defaults these are exactly its `X` (RandomState(10), `normal`
  with loc 0, 1 and 5 and scale 1, 1,000 each, appended in order).
  """
  rng = np.random.RandomState(seed)
  x = np.concatenate([rng.normal(loc=c, scale=1.0, size=per_cluster)
                      for c in CENTRES])
  return x, np.repeat(np.arange(len(CENTRES)), per_cluster)


def lecture_start(x, k, seed):
  """A start drawn as the lecture draws its own (mean locations, variances).

  Means: a random integer in [int(min x), int(max x)) plus max(x) times a
  uniform draw; variances of q(mu): uniform in (0, 1).
  """
  rng = np.random.RandomState(seed)
  means = rng.randint(int(x.min()), int(x.max()), size=k).astype(float)
  means += x.max() * rng.random_sample(k)
  variances = rng.random_sample(k)
  return means, variances


def appendix_data(per_cluster=APPENDIX_POINTS, seed=LECTURE_SEED):
  """The lecture's 2-D appendix: x [3 n, 2], labels [3 n]."""
  rng = np.random.RandomState(seed)
  x = np.vstack([rng.multivariate_normal(APPENDIX_MEANS[j],
                                         APPENDIX_COVARIANCES[j],
                                         per_cluster)
                 for j in range(len(APPENDIX_MEANS))])
  return x, np.repeat(np.arange(len(APPENDIX_MEANS)), per_cluster)


def true_probabilities(x):
  """p(z = k | x) under the true mixture (weights 1/3, unit variances)."""
  from scipy import special

  log_joint = -0.5 * (x[:, None] - CENTRES) ** 2                  # [N, K]
  return np.exp(log_joint - special.logsumexp(log_joint, 1, keepdims=True))


# -------------------------------------------------------------------- fits

def fit_tfgmm_lecture_model(x, start, max_iter, tol, seed):
  """(c): the lecture's model in tfgmm, from `start`, by full-batch CAVI."""
  import tfgmm

  k, n = len(CENTRES), len(x)
  began = time.perf_counter()
  model = tfgmm.BayesianGMM(
      k, 1, seed=seed, method="natural",
      **_common.known_covariance_model(mean_precision=PRIOR_PRECISION,
                                       fixed_weights=True))
  means, variances = start
  _common.start_tfgmm_at(
      model, x[:, None], means, variances,
      np.full(k, _common.FIXED_WEIGHT_CONCENTRATION + n / k))
  # One batch of all N rows: the natural step's size is B / N = 1, a CAVI
  # iteration. Stop as the lecture does: a change of at most tol in total.
  model.fit(x[:, None], batch_size=n, epochs=max_iter, shuffle=False,
            verbose=0, callbacks=[tfgmm.BoundConvergence(tol=tol / n,
                                                         patience=1)])
  return model, time.perf_counter() - began


def fit_tfgmm_defaults(x, seed):
  """(d): `tfgmm.fit` with its defaults."""
  import tfgmm

  began = time.perf_counter()
  model = tfgmm.fit(x[:, None], len(CENTRES), seed=seed)
  return model, time.perf_counter() - began


def assignment_scores(labels, probabilities):
  """Matched accuracy, log loss, share below 0.9 and mean entropy."""
  from tfgmm import metrics
  from tfgmm import plotting

  predicted, max_p, entropy = plotting.assignment_uncertainty(probabilities)
  return {
      "accuracy": metrics.matched_accuracy(labels, predicted),
      "log_loss": metrics.log_loss(labels, probabilities),
      "uncertain_fraction": float(np.mean(max_p < 0.9)),
      "mean_entropy": float(np.mean(entropy)),
  }


def run_appendix(seed):
  """The 2-D appendix: scikit-learn's estimator beside tfgmm's face."""
  import warnings

  from sklearn import mixture
  from sklearn.exceptions import ConvergenceWarning

  import tfgmm
  from tfgmm import metrics
  from tfgmm import sklearn as tfgmm_sklearn

  x, labels = appendix_data()
  candidates = [
      ("scikit-learn", mixture.BayesianGaussianMixture, {}),
      ("tfgmm.sklearn", tfgmm_sklearn.BayesianGaussianMixture, {}),
  ]
  rows = {}
  estimators = {}
  for name, cls, extra in candidates:
    began = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
      warnings.simplefilter("always", ConvergenceWarning)
      estimator = cls(**{**APPENDIX_ESTIMATOR, **extra}).fit(x)
    seconds = time.perf_counter() - began
    predicted = estimator.predict(x)
    rows[name] = {
        "iterations": int(estimator.n_iter_),
        "converged": bool(estimator.converged_) and not any(
            issubclass(w.category, ConvergenceWarning) for w in caught),
        "weights": np.sort(np.asarray(estimator.weights_))[::-1],
        "accuracy": metrics.matched_accuracy(labels, predicted),
        "ari": metrics.adjusted_rand_index(labels, predicted),
        "log_loss": metrics.log_loss(labels, estimator.predict_proba(x)),
        "seconds": seconds,
    }
    estimators[name] = estimator
  began = time.perf_counter()
  model = tfgmm.fit(x, 3, seed=seed, covariance_type="full")
  seconds = time.perf_counter() - began
  predicted = np.asarray(model.assign(x))
  rows["tfgmm.fit, full"] = {
      "iterations": len(model.training_history["loss"]),
      "converged": bool(model.converged),
      "weights": model.posterior_mean()["weights"],
      "accuracy": metrics.matched_accuracy(labels, predicted),
      "ari": metrics.adjusted_rand_index(labels, predicted),
      "log_loss": metrics.log_loss(labels, model.responsibilities(x)),
      "seconds": seconds,
  }
  return x, rows, estimators["tfgmm.sklearn"].to_keras()


# ------------------------------------------------------------------ output

def _fit_row(label, values):
  return [label] + list(values)


def format_main_table(result):
  """The comparison on the lecture's 1-D data."""
  fits = result["fits"]
  order = ("truth", "lecture", "tfgmm", "defaults")
  header = ["", "(a) true mixture", "(b) lecture CAVI", "(c) tfgmm CAVI",
            "(d) tfgmm defaults"]
  rows = []

  def iterations(key):
    fit = fits[key]
    if key == "truth":
      return "-"
    state = "converged" if fit["converged"] else "max"
    if key == "defaults":
      return (f"{fit['init_iterations']} init + {fit['iterations']} "
              f"({state})")
    return f"{fit['iterations']} ({state})"

  rows.append(_fit_row("CAVI iterations", [iterations(k) for k in order]))
  rows.append(_fit_row("bound per point", [
      "-" if k == "truth" else f"{fits[k]['bound']:.6f}" + (
          " [d]" if k == "defaults" else "") for k in order]))
  rows.append(_fit_row("smallest bound step", [
      "-" if k in ("truth", "defaults") else f"{fits[k]['min_step']:+.1e}"
      for k in order]))
  for c, centre in enumerate(CENTRES):
    rows.append(_fit_row(f"mean near {centre:g}", [
        f"{centre:g}" if k == "truth" else _common.pm(
            fits[k]["means"][c], fits[k]["means_sd"][c]) for k in order]))
  rows.append(_fit_row("weights", [
      "/".join(f"{w:.3f}" for w in fits[k]["weights"]) for k in order]))
  if "stddevs" in fits["defaults"]:
    rows.append(_fit_row("component sds", [
        "1/1/1" if k != "defaults" else "/".join(
            f"{s:.2f}" for s in fits[k]["stddevs"]) for k in order]))
  rows.append(_fit_row("matched accuracy", [
      f"{fits[k]['accuracy']:.4f}" for k in order]))
  rows.append(_fit_row("log loss (nats)", [
      f"{fits[k]['log_loss']:.4f}" for k in order]))
  rows.append(_fit_row("points max p < 0.9", [
      f"{100 * fits[k]['uncertain_fraction']:.1f}%" for k in order]))
  rows.append(_fit_row("mean entropy (nats)", [
      f"{fits[k]['mean_entropy']:.4f}" for k in order]))
  rows.append(_fit_row("seconds", [
      "-" if k == "truth" else f"{fits[k]['seconds']:.2f}" for k in order]))
  return _common.format_table(header, rows)


def format_appendix_table(rows):
  header = ["", "iterations", "weights", "accuracy", "ARI", "log loss",
            "seconds"]
  lines = []
  for name, r in rows.items():
    lines.append([name,
                  f"{r['iterations']} ("
                  + ("converged" if r["converged"] else "max") + ")",
                  "/".join(f"{w:.3f}" for w in r["weights"]),
                  f"{r['accuracy']:.4f}", f"{r['ari']:.4f}",
                  f"{r['log_loss']:.4f}", f"{r['seconds']:.2f}"])
  return _common.format_table(header, lines)


def notes(fits, n):
  truth = fits["truth"]
  items = [
      "Bounds are the full evidence lower bound per point in nats (the "
      "lecture's own get_elbo keeps only some of its terms). (b) records "
      "it after each q(z) step, as tfgmm's training history does per "
      "epoch, so (b) and (c) trace the same sequence; they differ by the "
      "1e6-strength priors that stand in for known variances and fixed "
      "weights in tfgmm (about 1e-6 nats per point at convergence, up to "
      "~1e-4 on the way while the counts are unequal). A negative smallest "
      "step means the bound went down (CAVI never lowers it; steps of "
      "-1e-11 are float64 rounding).",
      f"The lecture's figure marks convergence at t = {LECTURE_ITERATIONS} "
      "from its own (unseeded) random start; the count depends on the "
      "start.",
      "[d]: (d) bounds another model (unknown variances, Dirichlet(1/K) "
      "weights, standardised data), so its bound is not comparable. With "
      "unknown variances the clusters at 0 and 1, one sd apart, look like "
      "one wide component: the defaults merge them.",
      "Accuracy and log loss pair fitted components with the true clusters "
      "(Hungarian algorithm on the argmax labels, tfgmm.metrics). (a) is "
      "the best any fit can do: the clusters at 0 and 1 overlap, so even "
      f"the true mixture labels only {100 * truth['accuracy']:.1f}% of the "
      f"{n} points right and is less than 90% sure of "
      f"{100 * truth['uncertain_fraction']:.0f}% of them.",
      "Means read 'posterior mean ± posterior sd', paired with the true "
      "centres; (a) shows the truth.",
  ]
  return "\n".join(["Notes:"] + [_common.fill(t) for t in items])


def appendix_notes(rows):
  face = rows["tfgmm.sklearn"]
  sk, full = rows["scikit-learn"], rows["tfgmm.fit, full"]
  items = [
      "The first two rows take the lecture's arguments: covariance_type="
      "'diag', weight_concentration_prior_type='dirichlet_distribution', "
      "reg_covar=0, init_params='random', max_iter=1500, "
      "mean_precision_prior=0.8, random_state=10.",
      "tfgmm.sklearn, like scikit-learn's BayesianGaussianMixture, "
      "applies tol to the total bound: from the lecture's near-symmetric "
      f"random start it runs {face['iterations']} iterations (scikit-learn: "
      f"{sk['iterations']}) and lands on scikit-learn's fit.",
      "The last row is tfgmm.fit(x, 3, covariance_type='full') (k-means++ "
      "restarts): full covariances describe the tilted first cluster, "
      f"accuracy {full['accuracy']:.3f} against {sk['accuracy']:.3f} for "
      "the lecture's diagonal fit.",
  ]
  return "\n".join(["Notes:"] + [_common.fill(t) for t in items])


# -------------------------------------------------------------- arguments

def build_parser():
  parser = argparse.ArgumentParser(
      prog=PROG,
      description="Reproduce the univariate CAVI lecture's mixture fit and "
                  "put tfgmm's beside it.")
  parser.add_argument("--per-cluster", type=_common.int_at_least(10),
                      default=POINTS_PER_CLUSTER, metavar="N",
                      help="points per cluster (default: "
                           f"{POINTS_PER_CLUSTER}, the lecture's)")
  parser.add_argument("--data-seed", type=_common.seed, default=LECTURE_SEED,
                      help=f"RandomState seed of the data (default: "
                           f"{LECTURE_SEED}, the lecture's)")
  parser.add_argument("--seed", type=_common.seed, default=0,
                      help="seed of the random start and of tfgmm "
                           "(default: 0)")
  parser.add_argument("--max-iter", type=_common.positive_int,
                      default=MAX_ITER,
                      help=f"CAVI iterations at most (default: {MAX_ITER}, "
                           "the lecture's)")
  parser.add_argument("--tol", type=_common.positive_float, default=TOL,
                      help="stop when the bound changes by at most this "
                           f"(total nats; default: {TOL:g}, the lecture's)")
  parser.add_argument("--no-appendix", dest="appendix", action="store_false",
                      help="skip the lecture's 2-D appendix")
  _common.add_out_argument(parser, PLOTS)
  return parser


# -------------------------------------------------------------------- main

def main(argv=None):
  """Runs the comparison and prints its tables.

  Args:
    argv: arguments without the program name; None reads sys.argv.

  Returns:
    dict with
    - "fits": per fit ("truth", "lecture", "tfgmm", "defaults") a dict of
      "means" and "means_sd" [3] (paired with the centres 0, 1, 5),
      "weights" [3], "accuracy", "log_loss", "uncertain_fraction",
      "mean_entropy"; the fits also "bound" (per point), "iterations",
      "converged", "seconds", and (b), (c) "bounds" (the trace per point)
      and "min_step" (its smallest step per point);
    - "appendix": per estimator of the 2-D appendix its "iterations",
      "converged", "weights", "accuracy", "ari", "log_loss", "seconds"
      (absent with --no-appendix);
    - "plots": file name -> path of each plot written.
  """
  parser = build_parser()
  args = parser.parse_args(argv)
  _common.check_out_dir(parser, args.out)

  from tfgmm import plotting

  x, labels = lecture_data(args.per_cluster, args.data_seed)
  n, k = len(x), len(CENTRES)
  print(f"Data: {args.per_cluster} points from each of Normal(0, 1), "
        f"Normal(1, 1), Normal(5, 1) (RandomState({args.data_seed})), "
        f"N = {n}.\n")

  fits = {}
  truth = true_probabilities(x)
  fits["truth"] = {"means": CENTRES, "means_sd": np.zeros(k),
                   "weights": np.full(k, 1.0 / k),
                   **assignment_scores(labels, truth)}

  start = lecture_start(x, k, args.seed)
  print("Start (drawn the lecture's way): means "
        + ", ".join(f"{m:.3f}" for m in start[0]) + "; variances "
        + ", ".join(f"{v:.3f}" for v in start[1]) + "\n", flush=True)

  began = time.perf_counter()
  ref = _common.reference_cavi(x[:, None], start[0][:, None], start[1],
                               prior_precision=PRIOR_PRECISION,
                               max_iter=args.max_iter, tol=args.tol)
  seconds = time.perf_counter() - began
  order = _common.match_to_centres(ref.means, CENTRES[:, None])
  bounds = ref.bounds / n
  fits["lecture"] = {
      "means": ref.means[order, 0],
      "means_sd": np.sqrt(ref.mean_variance[order]),
      "weights": ref.weights[order],
      "bound": float(bounds[-1]), "bounds": bounds,
      "min_step": float(np.min(np.diff(bounds))) if len(bounds) > 1
      else 0.0,
      "iterations": ref.iterations, "converged": ref.converged,
      "seconds": seconds,
      **assignment_scores(labels, ref.responsibilities),
  }

  print("Fitting (c) tfgmm, the lecture's model from the same start...",
        flush=True)
  model, seconds = fit_tfgmm_lecture_model(x, start, args.max_iter,
                                           args.tol, args.seed)
  summary = model.posterior_summary()
  order = _common.match_to_centres(summary["means"], CENTRES[:, None])
  bounds = -np.asarray(model.training_history["loss"], np.float64)
  fits["tfgmm"] = {
      "means": summary["means"][order, 0],
      "means_sd": summary["means_sd"][order, 0],
      "weights": summary["weights"][order],
      "bound": float(model.elbo(x[:, None])) / n, "bounds": bounds,
      "min_step": float(np.min(np.diff(bounds))) if len(bounds) > 1
      else 0.0,
      "iterations": len(bounds), "converged": bool(model.converged),
      "seconds": seconds,
      **assignment_scores(labels, model.responsibilities(x[:, None])),
  }

  print("Fitting (d) tfgmm.fit with its defaults...\n", flush=True)
  defaults, seconds = fit_tfgmm_defaults(x, args.seed)
  summary = defaults.posterior_summary()
  order = _common.match_to_centres(summary["means"], CENTRES[:, None])
  fits["defaults"] = {
      "means": summary["means"][order, 0],
      "means_sd": summary["means_sd"][order, 0],
      "weights": summary["weights"][order],
      "stddevs": summary["stddevs"][order, 0],
      "bound": float(defaults.elbo(x[:, None])) / n,
      "iterations": len(defaults.training_history["loss"]),
      "init_iterations": len(defaults.initialization_history["loss"]),
      "converged": bool(defaults.converged), "seconds": seconds,
      **assignment_scores(labels, defaults.responsibilities(x[:, None])),
  }

  print(format_main_table({"fits": fits}))
  print()
  print(notes(fits, n))
  result = {"fits": fits}

  plots = _common.Plots(args.out)
  # The history alone: the throwaway initialisation before the lecture's
  # start is not part of the trace.
  plots.save("training.png", plotting.plot_training,
             model.training_history)
  plots.save("density.png", plotting.plot_density_1d, model, x)
  plots.save("assignment_uncertainty.png",
             plotting.plot_assignment_uncertainty, model, x)

  if args.appendix:
    print("\nAppendix: the lecture's 2-D data (3 x 500 points, correlated "
          "clusters).\nscikit-learn's BayesianGaussianMixture with the "
          "lecture's arguments, beside tfgmm's:\n", flush=True)
    x2, rows, appendix_model = run_appendix(args.seed)
    print(format_appendix_table(rows))
    print()
    print(appendix_notes(rows))
    result["appendix"] = rows
    plots.save("appendix_density.png", plotting.plot_density_2d,
               appendix_model, x2, ellipses=True)

  print()
  print(plots.report())
  result["plots"] = dict(plots.paths)
  return result


if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  main()
