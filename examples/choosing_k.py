"""Choosing the number of components on real data: iris, wine, Old Faithful.

For each of scikit-learn's bundled iris (150 flowers, 4 features, 3
species) and wine (178 wines, 13 features, 3 cultivars) data sets and the
Old Faithful geyser data (272 eruptions: duration and waiting time, in
minutes; not in scikit-learn, so it ships with these examples as
examples/data/old_faithful.csv, source in examples/data/README.md), no
download, the script prints the K that each way of choosing picks among
1..8:

  - tfgmm.select_components with criterion "elbo" (the default: the
    evidence lower bound plus log K_eff!), "heldout" (held-out predictive
    log density) and "bic" (BIC of the MAP fit);
  - scikit-learn's GaussianMixture by BIC (the usual recipe), same
    covariance type;
  - a Dirichlet-process BayesianGMM with K = 8: the components it keeps
    (expected weight >= 0.01);

beside the number of classes, which no fit sees (Old Faithful has none:
its eruptions are commonly read as two groups, short and long). A true K
of 3 is the labels' count, not a fact about the features: iris' two
overlapping species often look like one cluster to a Gaussian mixture.

With --plots, writes selection_<data>.png (the ELBO criterion against K).

Examples:

  python -m examples.choosing_k              # about 1 minute
  python -m examples.choosing_k --quick      # K in 1..5, fewer restarts

Exit status: 0 on success, 1 when scikit-learn is missing or a plot cannot
be written, 2 on bad arguments, 130 when interrupted.
"""

import argparse
import os
import sys
import warnings

import numpy as np

import tfgmm

from examples import _common

PROG = "python -m examples.choosing_k"
CANDIDATES = range(1, 9)
QUICK_CANDIDATES = range(1, 6)
COVARIANCE_TYPE = "full"
DP_THRESHOLD = 0.01


DATASETS = ("iris", "wine", "old_faithful")
OLD_FAITHFUL = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            "data", "old_faithful.csv")


def load(name):
  """(x, labels or None) of a data set, standardised.

  iris and wine come from scikit-learn; old_faithful from the CSV shipped
  beside this file (no labels).
  """
  if name == "old_faithful":
    x, labels = np.loadtxt(OLD_FAITHFUL, delimiter=",", skiprows=1), None
  else:
    from sklearn import datasets  # pylint: disable=import-outside-toplevel
    data = getattr(datasets, f"load_{name}")()
    x, labels = np.asarray(data.data, np.float64), np.asarray(data.target)
  return (x - x.mean(0)) / x.std(0), labels


def sklearn_bic_choice(x, candidates, seed):
  """scikit-learn's GaussianMixture (n_init=5) K of least BIC."""
  from sklearn import mixture  # pylint: disable=import-outside-toplevel
  scores = [mixture.GaussianMixture(k, covariance_type=COVARIANCE_TYPE,
                                    n_init=5, random_state=seed).fit(x).bic(x)
            for k in candidates]
  return list(candidates)[int(np.argmin(scores))]


def choices(x, candidates, seed):
  """{way of choosing: K} for one data set, and the ELBO selection."""
  picks = {}
  selections = {}
  for criterion in ("elbo", "heldout"):
    selections[criterion] = tfgmm.select_components(
        x, candidates, criterion=criterion, seed=seed,
        covariance_type=COVARIANCE_TYPE)
    picks[f"tfgmm {criterion}"] = selections[criterion].n_components
  # MAP exists for diagonal covariances: BIC of the diagonal MAP fit.
  picks["tfgmm bic (diag MAP)"] = tfgmm.select_components(
      x, candidates, criterion="bic", seed=seed).n_components
  with warnings.catch_warnings():
    # Full covariances on 13-D data with K = 8: scikit-learn may warn.
    warnings.simplefilter("ignore")
    picks["scikit-learn GM BIC"] = sklearn_bic_choice(x, candidates, seed)
  dp = tfgmm.fit(x, max(candidates), seed=seed,
                 covariance_type=COVARIANCE_TYPE,
                 weight_prior="dirichlet_process")
  picks["tfgmm Dirichlet process"] = len(
      dp.effective_components(DP_THRESHOLD))
  return picks, selections["elbo"]


def build_parser():
  parser = argparse.ArgumentParser(
      prog=PROG,
      description="Compare ways of choosing K on iris, wine and Old Faithful.")
  parser.add_argument("--seed", type=_common.seed, default=0,
                      help="seed of every fit (default: 0)")
  parser.add_argument("--quick", action="store_true",
                      help="K in 1..5 instead of 1..8")
  parser.add_argument("--plots", metavar="DIR",
                      help="write selection_<data>.png for each data set")
  return parser


def main(argv=None):
  """Runs the comparison; returns the exit status (see the docstring)."""
  args, status = _common.parse_or_status(build_parser(), argv)
  if status is None:
    status = (_common.plots_dir_error(PROG, args.plots)
              or _common.sklearn_error(PROG, "for the bundled data sets"))
  if status is not None:
    return status
  return _common.run_interruptible(PROG, _run, args)


def _run(args):
  candidates = QUICK_CANDIDATES if args.quick else CANDIDATES
  rows = []
  for name in DATASETS:
    x, labels = load(name)
    picks, selection = choices(x, candidates, args.seed)
    classes = ("no labels" if labels is None
               else f"{len(np.unique(labels))} classes")
    rows.append([f"{name} ({x.shape[0]} x {x.shape[1]}, {classes})"]
                + [str(k) for k in picks.values()])
    if args.plots is not None:
      path = os.path.join(args.plots, f"selection_{name}.png")
      try:
        os.makedirs(args.plots, exist_ok=True)
        tfgmm.plotting.plot_model_selection(selection, path)
      except OSError as e:
        return _common.error(PROG, f"cannot write {path!r}: "
                             f"{e.strerror or e}", 1)
  header = ["data"] + list(picks)
  print(f"K chosen among {candidates.start}..{candidates.stop - 1} "
        f"(covariance_type={COVARIANCE_TYPE!r}, seed {args.seed}):\n")
  print(_common.format_table(header, rows))
  print()
  print(_common.fill(
      "The classes are not the answer key for K: a Gaussian mixture sees "
      "the features, and two classes that overlap in them are one cluster "
      "to it. The Dirichlet-process column counts components with expected "
      f"weight >= {DP_THRESHOLD} in one fit with K = {max(candidates)}."))
  if args.plots is not None:
    print(f"\nPlots: {args.plots}")
  return 0


if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  sys.exit(main())
