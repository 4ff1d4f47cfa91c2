"""Benchmarks tfgmm against scikit-learn's diagonal Gaussian mixtures.

Every estimator is fitted in the same process on the same training data and
scored on a held-out draw from the same mixture:

- fit time, and its ratio to `GaussianMixture(diag, n_init=1)` in this run;
- held-out mean log-likelihood minus the true mixture's;
- adjusted Rand index against the true labels, and minus the true mixture's
  own ARI (its labels are the argmax of the true posterior);
- peak resident-memory growth during the fit (Linux: VmHWM after the fit
  minus VmRSS before it, with VmHWM reset through /proc/self/clear_refs).

The tfgmm fit on the seed blog's data runs first in the process, so its time
includes the first-call tracing of tfgmm's compiled functions.

Usage:

  python scripts/benchmark.py            # everything (several minutes)
  python scripts/benchmark.py --quick    # smoke run, well under a minute
  python scripts/benchmark.py --datasets blog far --markdown

The helpers `true_log_prob`, `true_posterior_labels` and the `make_*`
dataset builders import only numpy and scipy, so tests can call them.
"""

import argparse
import contextlib
import dataclasses
import datetime
import gc
import math
import os
import platform
import subprocess
import sys
import time

import numpy as np
from scipy import special

HELD_OUT_CAP = 200_000
BLOG_SHIFTS = np.array([[2.0, 0.0], [-2.0, -4.0], [-2.0, 4.0]])
FAR_MEANS = np.array([[2.0, 2.0], [5.0, 5.0], [8.0, 8.0]])
# The seed blog's prior, in raw (unstandardised) units.
BLOG_PRIOR = dict(weight_concentration=2.0, mean_precision=1.0,
                  precision_concentration=5.0, precision_rate=5.0,
                  standardize=False)
SAMPLED_DATASETS = ("blog", "far")
ALL_DATASETS = ("blog", "far", "10d-1e4", "10d-1e5", "10d-1e6", "50d-1e5")
QUICK_DATASETS = ("blog", "far", "10d-1e4")
ALL_METHODS = ("tfgmm", "tfgmm-sampled", "GM(n_init=1)", "GM(n_init=5)",
               "BGM")
BASELINE = "GM(n_init=1)"
_PROC_STATUS = "/proc/self/status"
_PROC_CLEAR_REFS = "/proc/self/clear_refs"


# ------------------------------------------------------------------ the data


@dataclasses.dataclass
class Mixture:
  """A diagonal Gaussian mixture: weights [K], means [K, D], variances [K, D]."""

  weights: np.ndarray
  means: np.ndarray
  variances: np.ndarray


@dataclasses.dataclass
class Dataset:
  """Training and held-out draws of one mixture, with their true labels."""

  name: str
  mixture: Mixture
  x_train: np.ndarray
  y_train: np.ndarray
  x_test: np.ndarray
  y_test: np.ndarray

  @property
  def n_components(self):
    return self.mixture.weights.shape[0]


def true_joint_log_prob(x, mixture):
  """log(w_k N(x | mu_k, diag(var_k))) for every row and component, [N, K].

  Args:
    x: rows, float [N, D].
    mixture: the true `Mixture`.

  Returns:
    float64 [N, K].
  """
  x = np.asarray(x, np.float64)
  means = np.asarray(mixture.means, np.float64)
  variances = np.asarray(mixture.variances, np.float64)
  log_norm = -0.5 * (np.log(2.0 * np.pi * variances).sum(1))       # [K]
  # sum_d (x_d - mu_kd)^2 / var_kd, expanded so that [N, K, D] never exists.
  precisions = 1.0 / variances                                     # [K, D]
  quad = (np.square(x) @ precisions.T
          - 2.0 * x @ (means * precisions).T
          + (np.square(means) * precisions).sum(1))                # [N, K]
  return np.log(mixture.weights)[None, :] + log_norm[None, :] - 0.5 * quad


def true_log_prob(x, mixture):
  """The true mixture's log density of each row, [N] float64 (logsumexp)."""
  return special.logsumexp(true_joint_log_prob(x, mixture), axis=1)


def true_posterior_labels(x, mixture):
  """The true mixture's most probable component of each row, [N] int."""
  return np.argmax(true_joint_log_prob(x, mixture), axis=1)


def _sample_mixture(mixture, n, rng):
  """n rows and labels drawn from a diagonal mixture."""
  labels = rng.choice(mixture.weights.shape[0], size=n, p=mixture.weights)
  noise = rng.standard_normal((n, mixture.means.shape[1]))
  x = mixture.means[labels] + np.sqrt(mixture.variances[labels]) * noise
  return x, labels


def _blocks(means, per_block, rng):
  """per_block unit-variance rows around each mean, in blocks, and labels."""
  k, d = means.shape
  labels = np.repeat(np.arange(k), per_block)
  return means[labels] + rng.standard_normal((k * per_block, d)), labels


def _block_dataset(name, means, per_block, seed):
  """Equal-weight, unit-variance blocks; the held-out set has the same size."""
  rng = np.random.default_rng(seed)
  k, d = means.shape
  mixture = Mixture(np.full(k, 1.0 / k), means, np.ones((k, d)))
  x_train, y_train = _blocks(means, per_block, rng)
  x_test, y_test = _blocks(means, per_block, rng)
  return Dataset(name, mixture, x_train, y_train, x_test, y_test)


def make_blog_data(seed=0):
  """The seed blog's 2-D set: 3 x 1000 standard normal rows, shifted.

  Rows 0-999 are shifted by (2, 0), 1000-1999 by (-2, -4) and 2000-2999 by
  (-2, 4): equal weights, unit variances.
  """
  return _block_dataset("blog", BLOG_SHIFTS, 1000, seed)


def make_far_data(seed=1):
  """60 unit-variance rows, 20 at each of (2, 2), (5, 5), (8, 8)."""
  return _block_dataset("far", FAR_MEANS, 20, seed)


def random_mixture(n_features, n_components, mean_range, rng):
  """Means U(-r, r), variances U(0.5, 2) per feature, weights U(1, 4) normalised."""
  means = rng.uniform(-mean_range, mean_range, (n_components, n_features))
  variances = rng.uniform(0.5, 2.0, (n_components, n_features))
  weights = rng.uniform(1.0, 4.0, n_components)
  return Mixture(weights / weights.sum(), means, variances)


def make_blobs(name, n, n_features, n_components, mean_range, seed):
  """n training rows of a `random_mixture`; min(n, 200k) held-out rows."""
  rng = np.random.default_rng(seed)
  mixture = random_mixture(n_features, n_components, mean_range, rng)
  x_train, y_train = _sample_mixture(mixture, n, rng)
  x_test, y_test = _sample_mixture(mixture, min(n, HELD_OUT_CAP), rng)
  return Dataset(name, mixture, x_train, y_train, x_test, y_test)


DATASET_BUILDERS = {
    "blog": lambda: make_blog_data(seed=0),
    "far": lambda: make_far_data(seed=1),
    "10d-1e4": lambda: make_blobs("10d-1e4", 10_000, 10, 10, 3.0, seed=104),
    "10d-1e5": lambda: make_blobs("10d-1e5", 100_000, 10, 10, 3.0, seed=105),
    "10d-1e6": lambda: make_blobs("10d-1e6", 1_000_000, 10, 10, 3.0,
                                  seed=106),
    "50d-1e5": lambda: make_blobs("50d-1e5", 100_000, 50, 20, 1.2, seed=505),
}


# ------------------------------------------------------------------ memory


def _status_kb(field):
  """A `VmXXX` field of /proc/self/status in kB, or None off Linux."""
  try:
    with open(_PROC_STATUS, encoding="ascii") as status:
      for line in status:
        if line.startswith(field + ":"):
          return int(line.split()[1])
  except OSError:
    return None
  return None


def _reset_peak_rss():
  """Resets VmHWM to the current RSS; False when the kernel does not allow it."""
  try:
    with open(_PROC_CLEAR_REFS, "w", encoding="ascii") as clear_refs:
      clear_refs.write("5")
    return True
  except OSError:
    return False


@contextlib.contextmanager
def peak_memory_growth(result):
  """Stores the fit's peak RSS growth in MB as `result["peak_mb"]` (or NaN)."""
  gc.collect()
  before = _status_kb("VmRSS")
  reset = _reset_peak_rss()
  yield
  after = _status_kb("VmHWM")
  if before is None or after is None or not reset:
    result["peak_mb"] = math.nan
  else:
    result["peak_mb"] = (after - before) / 1024.0


# ------------------------------------------------------------------ fitters


@contextlib.contextmanager
def _timed_initialization(record):
  """Appends the seconds of each `BayesianGMM.initialize` call to `record`."""
  from tfgmm import model as model_lib  # pylint: disable=import-outside-toplevel
  original = model_lib.BayesianGMM.initialize

  def timed(self, *args, **kwargs):
    start = time.perf_counter()
    try:
      return original(self, *args, **kwargs)
    finally:
      record.append(time.perf_counter() - start)

  model_lib.BayesianGMM.initialize = timed
  try:
    yield
  finally:
    model_lib.BayesianGMM.initialize = original


def _tfgmm_scorer(model):
  """(log_prob, labels) functions of a fitted `BayesianGMM`."""
  return (lambda x: np.asarray(model.log_prob(x), np.float64),
          lambda x: np.asarray(model.assign(x)))


def fit_tfgmm(data, sampled_epochs, seed):
  """`tfgmm.fit` with its defaults; returns (model, info)."""
  import tfgmm  # pylint: disable=import-outside-toplevel
  init_times = []
  with _timed_initialization(init_times):
    model = tfgmm.fit(data.x_train, data.n_components, seed=seed)
  del sampled_epochs
  return model, dict(init_s=sum(init_times), iters=model.n_epochs,
                     converged=model.converged)


def fit_tfgmm_sampled(data, sampled_epochs, seed):
  """`tfgmm.fit(method="sampled")` with the seed blog's settings."""
  import tfgmm  # pylint: disable=import-outside-toplevel
  init_times = []
  with _timed_initialization(init_times):
    model = tfgmm.fit(data.x_train, data.n_components, method="sampled",
                      batch_size=500, max_epochs=sampled_epochs, seed=seed,
                      **BLOG_PRIOR)
  return model, dict(init_s=sum(init_times), iters=model.n_epochs,
                     converged=model.converged)


def _sklearn_fitter(bayesian, n_init=1):
  """A fitter of a diagonal scikit-learn mixture."""

  def fit(data, sampled_epochs, seed):
    del sampled_epochs
    from sklearn import mixture as sk_mixture  # pylint: disable=import-outside-toplevel
    if bayesian:
      model = sk_mixture.BayesianGaussianMixture(
          n_components=data.n_components, covariance_type="diag",
          max_iter=1000, random_state=seed)
    else:
      model = sk_mixture.GaussianMixture(
          n_components=data.n_components, covariance_type="diag",
          n_init=n_init, random_state=seed)
    model.fit(data.x_train)
    return model, dict(init_s=math.nan, iters=model.n_iter_,
                       converged=bool(model.converged_))

  return fit


def _sklearn_scorer(model):
  """(log_prob, labels) functions of a fitted scikit-learn mixture."""
  return model.score_samples, model.predict


FITTERS = {
    "tfgmm": (fit_tfgmm, _tfgmm_scorer),
    "tfgmm-sampled": (fit_tfgmm_sampled, _tfgmm_scorer),
    "GM(n_init=1)": (_sklearn_fitter(False, 1), _sklearn_scorer),
    "GM(n_init=5)": (_sklearn_fitter(False, 5), _sklearn_scorer),
    "BGM": (_sklearn_fitter(True), _sklearn_scorer),
}


# ------------------------------------------------------------------ running


def adjusted_rand(labels_true, labels_pred):
  """scikit-learn's adjusted Rand index."""
  from sklearn import metrics  # pylint: disable=import-outside-toplevel
  return float(metrics.adjusted_rand_score(labels_true, labels_pred))


def truth_row(data):
  """The true mixture's held-out mean log-likelihood and ARI."""
  log_prob = true_log_prob(data.x_test, data.mixture)
  labels = true_posterior_labels(data.x_test, data.mixture)
  return dict(method="true mixture", mean_ll=float(log_prob.mean()),
              ari=adjusted_rand(data.y_test, labels),
              finite=bool(np.isfinite(log_prob).all()))


def run_method(method, data, sampled_epochs, seed):
  """Fits one method and scores it on the held-out rows."""
  fitter, scorer = FITTERS[method]
  result = dict(method=method)
  with peak_memory_growth(result):
    start = time.perf_counter()
    model, info = fitter(data, sampled_epochs, seed)
    result["fit_s"] = time.perf_counter() - start
  result.update(info)
  log_prob_fn, labels_fn = scorer(model)
  log_prob = log_prob_fn(data.x_test)
  result["mean_ll"] = float(np.mean(log_prob))
  result["ari"] = adjusted_rand(data.y_test, labels_fn(data.x_test))
  result["finite"] = bool(np.isfinite(log_prob).all())
  return result


def methods_for(name, methods):
  """The methods that run on dataset `name`, in order (tfgmm first)."""
  return [m for m in methods
          if m != "tfgmm-sampled" or name in SAMPLED_DATASETS]


def run_dataset(name, methods, sampled_epochs, seed):
  """Builds dataset `name`, runs every method and returns its summary."""
  data = DATASET_BUILDERS[name]()
  truth = truth_row(data)
  rows = []
  for method in methods_for(name, methods):
    row = run_method(method, data, sampled_epochs, seed)
    print(f"  {name:8s} {method:14s} {row['fit_s']:8.2f} s", file=sys.stderr,
          flush=True)
    rows.append(row)
  baseline = next((r["fit_s"] for r in rows if r["method"] == BASELINE),
                  math.nan)
  for row in rows:
    row["ratio"] = row["fit_s"] / baseline
    row["d_ll"] = row["mean_ll"] - truth["mean_ll"]
    row["d_ari"] = row["ari"] - truth["ari"]
  n, d = data.x_train.shape
  return dict(name=name, n=n, d=d, k=data.n_components,
              n_test=data.x_test.shape[0], data_bytes=data.x_train.nbytes,
              truth=truth, rows=rows)


# ------------------------------------------------------------------ reports


COLUMNS = (
    ("dataset", "{}"), ("method", "{}"), ("fit s", "{:.3f}"),
    ("/GM1", "{:.2f}"), ("init s", "{:.3f}"), ("iters", "{}"),
    ("conv", "{}"), ("held-out LL", "{:.4f}"), ("dLL", "{:+.4f}"),
    ("ARI", "{:.4f}"), ("dARI", "{:+.4f}"), ("peak MB", "{:.1f}"),
)
_KEYS = ("dataset", "method", "fit_s", "ratio", "init_s", "iters",
         "converged", "mean_ll", "d_ll", "ari", "d_ari", "peak_mb")


def _cell(fmt, value):
  if value is None or (isinstance(value, float) and math.isnan(value)):
    return "-"
  if isinstance(value, bool):
    return "yes" if value else "NO"
  return fmt.format(value)


def table_rows(summaries):
  """The table's cells: one true-mixture row then one row per method."""
  cells = []
  for summary in summaries:
    truth = dict(summary["truth"], d_ll=0.0, d_ari=0.0)
    for row in [truth] + summary["rows"]:
      row = dict(row, dataset=summary["name"])
      cells.append([_cell(fmt, row.get(key))
                    for key, (_, fmt) in zip(_KEYS, COLUMNS)])
  return cells


def format_table(summaries, markdown):
  """The results table as aligned text or Markdown."""
  header = [title for title, _ in COLUMNS]
  cells = table_rows(summaries)
  if markdown:
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)
  widths = [max(len(r[i]) for r in [header] + cells)
            for i in range(len(header))]
  fmt = lambda row: "  ".join(  # noqa: E731
      c.ljust(w) if i < 2 else c.rjust(w)
      for i, (c, w) in enumerate(zip(row, widths)))
  lines = [fmt(header), "  ".join("-" * w for w in widths)]
  lines += [fmt(row) for row in cells]
  return "\n".join(lines)


def format_datasets(summaries, markdown):
  """One line per dataset: its shape and data bytes."""
  bullet = "- " if markdown else "  "
  return "\n".join(
      f"{bullet}{s['name']}: N={s['n']:,} D={s['d']} K={s['k']} "
      f"held-out={s['n_test']:,} data bytes={s['data_bytes']:,} "
      f"({s['data_bytes'] / 2**20:.1f} MB)" for s in summaries)


def _find(summaries, dataset, method):
  """The row of `method` on `dataset`, or None when it did not run."""
  for summary in summaries:
    if summary["name"] == dataset:
      for row in summary["rows"]:
        if row["method"] == method:
          return row
  return None


def _quality(row, nats, ari):
  return abs(row["d_ll"]) <= nats and abs(row["d_ari"]) <= ari


def _target(summaries, dataset, needed, check, describe):
  """(PASS/FAIL/SKIP, detail) of one target."""
  rows = [_find(summaries, dataset, m) for m in needed]
  if any(r is None for r in rows):
    return "SKIP", f"needs {', '.join(needed)} on {dataset}"
  return ("PASS" if check(*rows) else "FAIL"), describe(*rows)


def _time_detail(row, other, name):
  return (f"dLL={row['d_ll']:+.4f} dARI={row['d_ari']:+.4f} "
          f"t={row['fit_s']:.2f}s vs {name} {other['fit_s']:.2f}s")


def evaluate_targets(summaries):
  """[(name, status, detail)] of the issue's targets."""
  gm1, gm5 = "GM(n_init=1)", "GM(n_init=5)"
  targets = [
      ("10d-1e6: |dLL|<=0.01, |dARI|<=0.01, t <= 0.5 x GM(n_init=1)",
       "10d-1e6", ["tfgmm", gm1],
       lambda r, o: _quality(r, 0.01, 0.01) and r["fit_s"] <= 0.5 * o["fit_s"],
       lambda r, o: _time_detail(r, o, gm1)),
      ("10d-1e5: |dLL|<=0.01, |dARI|<=0.01, t <= GM(n_init=5)",
       "10d-1e5", ["tfgmm", gm5],
       lambda r, o: _quality(r, 0.01, 0.01) and r["fit_s"] <= o["fit_s"],
       lambda r, o: _time_detail(r, o, gm5)),
      ("50d-1e5: |dLL|<=0.05, |dARI|<=0.005, t < BGM",
       "50d-1e5", ["tfgmm", "BGM"],
       lambda r, o: _quality(r, 0.05, 0.005) and r["fit_s"] < o["fit_s"],
       lambda r, o: _time_detail(r, o, "BGM")),
      ("blog: |dLL|<=0.005, t < 1 s (first call)",
       "blog", ["tfgmm"],
       lambda r: abs(r["d_ll"]) <= 0.005 and r["fit_s"] < 1.0,
       lambda r: f"dLL={r['d_ll']:+.4f} t={r['fit_s']:.3f}s"),
      ("far: ARI >= 0.9",
       "far", ["tfgmm"],
       lambda r: r["ari"] >= 0.9,
       lambda r: f"ARI={r['ari']:.4f}"),
  ]
  results = [(title, *_target(summaries, dataset, needed, check, describe))
             for title, dataset, needed, check, describe in targets]
  results.append(_memory_target(summaries))
  results.append(_finite_target(summaries))
  return results


def _memory_target(summaries):
  """Peak memory growth of tfgmm at N=1e6 <= 1.2 x the data's bytes."""
  title = "10d-1e6: tfgmm peak memory growth <= 1.2 x data bytes"
  row = _find(summaries, "10d-1e6", "tfgmm")
  if row is None or math.isnan(row["peak_mb"]):
    return title, "SKIP", "needs tfgmm on 10d-1e6 and /proc (Linux)"
  data_mb = next(s["data_bytes"] for s in summaries
                 if s["name"] == "10d-1e6") / 2**20
  status = "PASS" if row["peak_mb"] <= 1.2 * data_mb else "FAIL"
  return title, status, (f"{row['peak_mb']:.1f} MB vs 1.2 x {data_mb:.1f} = "
                         f"{1.2 * data_mb:.1f} MB")


def _finite_target(summaries):
  """No NaN or infinity in any held-out log density or result number."""
  bad = []
  for summary in summaries:
    for row in [summary["truth"]] + summary["rows"]:
      numbers = [row.get(k) for k in ("fit_s", "mean_ll", "ari")]
      if not row["finite"] or any(v is not None and not math.isfinite(v)
                                  for v in numbers):
        bad.append(f"{summary['name']}/{row['method']}")
  return ("no NaN anywhere", "FAIL" if bad else "PASS",
          ", ".join(bad) if bad else "all log densities and scores finite")


def format_targets(targets, markdown):
  """One PASS/FAIL/SKIP line per target."""
  bullet = "- " if markdown else "  "
  return "\n".join(f"{bullet}{status}  {title}  ({detail})"
                   for title, status, detail in targets)


def _version(module_name):
  try:
    module = __import__(module_name)
  except ImportError:
    return "not installed"
  return getattr(module, "__version__", "?")


def _git_revision():
  """The checkout's short commit (with "+dirty" for local changes), or "?"."""
  here = os.path.dirname(os.path.abspath(__file__))
  try:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here,
                            capture_output=True, text=True, check=True)
    status = subprocess.run(["git", "status", "--porcelain", "--", "tfgmm"],
                            cwd=here, capture_output=True, text=True,
                            check=True)
  except (OSError, subprocess.CalledProcessError):
    return "?"
  return commit.stdout.strip() + ("+dirty" if status.stdout.strip() else "")


def header_lines(args, revision):
  """Date, machine and library versions."""
  return [
      f"date: {datetime.datetime.now().isoformat(timespec='seconds')}",
      f"machine: {platform.platform()} ({platform.machine()}), "
      f"cpu count: {os.cpu_count()}, python {platform.python_version()}",
      f"OPENBLAS_CORETYPE: {os.environ.get('OPENBLAS_CORETYPE', '(unset)')}",
      f"versions: tfgmm {_version('tfgmm')} (git {revision}), tensorflow "
      f"{_version('tensorflow')}, keras {_version('keras')}, scikit-learn "
      f"{_version('sklearn')}, numpy {np.__version__}",
      f"run: {'quick' if args.quick else 'full'}; seed {args.seed}; "
      f"sampled max_epochs {args.sampled_epochs}; held-out rows = "
      f"min(N, {HELD_OUT_CAP:,}); GM tol/max_iter sklearn defaults, "
      "BGM max_iter=1000",
  ]


def print_report(args, revision, summaries):
  """Prints the header, datasets, table and targets."""
  heading = "## " if args.markdown else "== "
  print(heading + "tfgmm benchmark")
  for line in header_lines(args, revision):
    print(("- " if args.markdown else "") + line)
  print()
  print(heading + "datasets")
  print(format_datasets(summaries, args.markdown))
  print()
  print(heading + "results")
  print(format_table(summaries, args.markdown))
  print()
  print("dLL: held-out mean log-likelihood minus the true mixture's (nats); "
        "dARI: ARI minus the true mixture's ARI; /GM1: fit time over "
        "GM(n_init=1)'s; init s: tfgmm initialisation (k-means++ restarts "
        "on a sample); iters: CAVI epochs after init (tfgmm) or EM "
        "iterations (sklearn).")
  print()
  print(heading + "targets")
  print(format_targets(evaluate_targets(summaries), args.markdown))


def parse_args(argv=None):
  """The command line."""
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true",
                      help="smoke run: blog, far and 10d-1e4 only, few "
                           "sampled epochs, no GM(n_init=5)")
  parser.add_argument("--datasets", nargs="+", choices=ALL_DATASETS,
                      help="datasets to run (default: all, or the quick "
                           "subset with --quick)")
  parser.add_argument("--methods", nargs="+", choices=ALL_METHODS,
                      help="methods to run (default: all)")
  parser.add_argument("--sampled-epochs", type=int, default=None,
                      help="max_epochs of the sampled method (default 1000, "
                           "20 with --quick)")
  parser.add_argument("--seed", type=int, default=0,
                      help="seed of every fit")
  parser.add_argument("--markdown", action="store_true",
                      help="print the report as Markdown")
  args = parser.parse_args(argv)
  if args.datasets is None:
    args.datasets = QUICK_DATASETS if args.quick else ALL_DATASETS
  # Run in canonical order so that the tfgmm fit on the blog data comes first.
  args.datasets = [d for d in ALL_DATASETS if d in args.datasets]
  if args.methods is None:
    args.methods = [m for m in ALL_METHODS
                    if not (args.quick and m == "GM(n_init=5)")]
  args.methods = [m for m in ALL_METHODS if m in args.methods]
  if args.sampled_epochs is None:
    args.sampled_epochs = 20 if args.quick else 1000
  return args


def import_libraries():
  """Imports tfgmm, TensorFlow and scikit-learn before anything is timed.

  Import time is not fit time; tracing tfgmm's compiled functions is, and
  happens in the first fit.
  """
  # pylint: disable=import-outside-toplevel,unused-import
  import sklearn.metrics  # noqa: F401
  import sklearn.mixture  # noqa: F401
  import tfgmm  # noqa: F401


def main(argv=None):
  """Runs the benchmark and prints the report."""
  args = parse_args(argv)
  # The revision whose tfgmm this process imports (read before any fit).
  revision = _git_revision()
  import_libraries()
  summaries = [run_dataset(name, args.methods, args.sampled_epochs, args.seed)
               for name in args.datasets]
  print_report(args, revision, summaries)


if __name__ == "__main__":
  main()
