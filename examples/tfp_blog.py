"""The 2019 TFP blog's Bayesian Gaussian mixture, fitted three ways with tfgmm.

The blog fits a 3-component, 2-D mixture to 3,000 points by stochastic
variational inference: a Keras model, minibatches of 500 from `tf.data`,
Adam at a learning rate of 1e-3 for 1,000 epochs, one draw from q per data
point. This script fits, to the same data:

  (a) the blog's model and recipe: independent priors, Normal(0, 1) on each
      mean coordinate, Gamma(5, 5) on each precision, Dirichlet(2, 2, 2) on
      the weights, raw units; tfgmm's `method="sampled"` (the blog's
      one-draw estimator) with Adam(1e-3), batches of 500, 1,000 epochs;
  (b) the same model by CAVI (`method="natural"` on all the data);
  (c) tfgmm's defaults, `tfgmm.fit(x, 3, seed=...)`: the conjugate
      Normal-Gamma prior on standardised data, by CAVI.

and prints, side by side: fit time, epochs, the bound per point, the mean
log-likelihood of fresh data from the same generator, the posterior of each
cluster's weight, mean and standard deviation, and the adjusted Rand index
against the true labels (needs scikit-learn; skipped with a note if absent).

Examples:

  python -m examples.tfp_blog                     # about 1.5 min
  python -m examples.tfp_blog --epochs 50 --plots plots
  python -m examples.tfp_blog --init tfgmm        # tfgmm's start

By default (a) starts as the blog does, from random values drawn the way
the blog draws them (means ~ Normal(0, 1), mean precisions ~ Gamma(5, 5),
Gamma shapes and rates ~ Uniform(4, 6), weight concentrations 2): that
shows what 1,000 epochs of the blog's recipe achieve on their own (the
means, but posterior spreads still several times too wide). `--init tfgmm`
starts it from tfgmm's initialisation (k-means++ restarts refined by CAVI)
instead, where its Adam steps only refine a fit that is already there.

Exit status: 0 on success, 1 when writing the plot fails, 2 on bad
arguments, 130 when interrupted.
"""

import argparse
import itertools
import math
import os
import re
import sys
import textwrap
import time

import numpy as np

from examples import _common

PROG = "python -m examples.tfp_blog"

# The blog's data: N(0, I) points shifted to these centres, 1,000 each.
CENTRES = np.array([[2.0, 0.0], [-2.0, -4.0], [-2.0, 4.0]])     # [3, 2]
POINTS_PER_CLUSTER = 1000
BLOG_SEED = 12345

# The blog's prior, in tfgmm's argument names. With mean_prior="independent",
# mean_precision is lambda0, the absolute precision of each mean coordinate.
BLOG_PRIOR = dict(weight_concentration=2.0, mean_loc=0.0, mean_precision=1.0,
                  precision_concentration=5.0, precision_rate=5.0)
BLOG_LEARNING_RATE = 1e-3
BLOG_BATCH_SIZE = 500
BLOG_EPOCHS = 1000

_COLUMN = 17   # width of a value column
_LABEL = 26    # width of the row labels


# ------------------------------------------------------------------- data

def blog_data(rng, n_per_cluster=POINTS_PER_CLUSTER):
  """Draws the blog's three clusters.

  Args:
    rng: a `np.random.RandomState`. Seeded with 12345 and used first, it
      gives exactly the blog's points (its `np.random.seed(12345)` followed
      by `np.random.randn(3000, 2)`).
    n_per_cluster: points per cluster.

  Returns:
    (x, labels): float32 array of shape (3 * n_per_cluster, 2), unit-variance
    clusters around `CENTRES` in order, and int array (3 * n_per_cluster,)
    of their indices.
  """
  x = rng.randn(len(CENTRES) * n_per_cluster, 2).astype(np.float32)
  x += np.repeat(CENTRES, n_per_cluster, axis=0)  # float32, as the blog's
  labels = np.repeat(np.arange(len(CENTRES)), n_per_cluster)
  return x, labels


# -------------------------------------------------------------------- fits

class Fit:
  """One fitted model and what the table reports about it."""

  def __init__(self, key, title, model, seconds, fixed_epochs):
    self.key = key                    # "a", "b" or "c"
    self.title = title                # column header
    self.model = model
    self.seconds = seconds            # initialisation + training, wall clock
    self.fixed_epochs = fixed_epochs  # True: ran a set number of epochs


def _progress_callback(label, epochs, start):
  """A Keras callback printing -loss every tenth of the run."""
  import keras  # pylint: disable=import-outside-toplevel

  every = max(1, epochs // 10)

  class Progress(keras.callbacks.Callback):

    def on_epoch_end(self, epoch, logs=None):
      done = epoch + 1
      if done % every == 0 or done == epochs:
        loss = float((logs or {}).get("loss", math.nan))
        print(f"  {label} epoch {done:>{len(str(epochs))}}/{epochs}: "
              f"-loss {-loss:.6f}  ({time.perf_counter() - start:.1f} s)",
              flush=True)

  return Progress()


def blog_start(model, seed):
  """Sets q to a random start drawn as the blog draws its variables.

  Per component k and feature d: mean location ~ Normal(0, 1); the mean's
  precision 1 / s^2 ~ Gamma(5, rate 5) (the blog's s is Gamma(5, 5)^-1/2);
  the precision's Gamma shape and rate ~ Uniform(4, 6); the Dirichlet
  concentrations are 2. Same distributions as the blog, numpy's draws.
  """
  rng = np.random.default_rng(seed)
  k, d = model.n_components, model.n_features
  q = model.posterior()
  model.assign_posterior(q._replace(
      weight_concentration=np.full(k, 2.0),                       # [K]
      mean_loc=rng.standard_normal((k, d)),                       # [K, D]
      mean_precision=rng.gamma(5.0, 1.0 / 5.0, (k, d)),           # [K, D]
      precision_concentration=rng.uniform(4.0, 6.0, (k, d)),      # [K, D]
      precision_rate=rng.uniform(4.0, 6.0, (k, d))))              # [K, D]


def fit_blog_recipe(x, seed, epochs, init):
  """(a): the blog's model, estimator, optimizer, batch size and epochs.

  Trains with `BayesianGMM.fit` for exactly `epochs` epochs (no convergence
  stop: the blog runs a fixed number), minibatches from `make_dataset`
  reshuffled every epoch like the blog's `shuffle(10000)` of 3,000 rows.
  """
  import keras  # pylint: disable=import-outside-toplevel
  import tfgmm  # pylint: disable=import-outside-toplevel

  start = time.perf_counter()
  model = tfgmm.BayesianGMM(3, 2, method="sampled", mean_prior="independent",
                            standardize=False, seed=seed, **BLOG_PRIOR)
  if init == "blog":
    # `initialize` records N (the loss is KL / N - mean log-likelihood) and
    # marks the model as set from data; its q is then replaced.
    model.initialize(x, n_init=1, max_iter=1, births=0)
    blog_start(model, seed)
  else:
    model.initialize(x, n_init=5)  # as tfgmm.fit does
  model.compile(optimizer=keras.optimizers.Adam(
      learning_rate=BLOG_LEARNING_RATE))
  model.fit(tfgmm.make_dataset(x, BLOG_BATCH_SIZE, seed=seed), epochs=epochs,
            verbose=0, callbacks=[_progress_callback("(a)", epochs, start)])
  return Fit("a", "(a) blog recipe", model, time.perf_counter() - start,
             fixed_epochs=True)


def fit_blog_model_cavi(x, seed):
  """(b): the blog's model (prior, raw units) by full-data CAVI."""
  import tfgmm  # pylint: disable=import-outside-toplevel

  start = time.perf_counter()
  model = tfgmm.fit(x, 3, mean_prior="independent", standardize=False,
                    seed=seed, **BLOG_PRIOR)
  return Fit("b", "(b) CAVI", model, time.perf_counter() - start,
             fixed_epochs=False)


def fit_tfgmm_defaults(x, seed):
  """(c): tfgmm's defaults: conjugate prior, standardised data, CAVI."""
  import tfgmm  # pylint: disable=import-outside-toplevel

  start = time.perf_counter()
  model = tfgmm.fit(x, 3, seed=seed)
  return Fit("c", "(c) defaults", model, time.perf_counter() - start,
             fixed_epochs=False)


# ------------------------------------------------------------ measurements

def match_clusters(means):
  """The component fitted to each true cluster.

  Args:
    means: posterior means, array of shape (3, 2).

  Returns:
    A tuple `order` with `order[c]` the component matched to `CENTRES[c]`:
    the permutation with the least total squared distance.
  """
  def cost(order):
    return sum(np.sum((means[k] - CENTRES[c]) ** 2)
               for c, k in enumerate(order))
  return min(itertools.permutations(range(len(CENTRES))), key=cost)


def adjusted_rand_index(labels, predicted):
  """scikit-learn's adjusted Rand index, or None without scikit-learn."""
  try:
    from sklearn import metrics  # pylint: disable=import-outside-toplevel
  except ImportError:
    return None
  return float(metrics.adjusted_rand_score(labels, predicted))


def measure(fit, x, labels, x_test):
  """The numbers the table shows for one fit (all in data units).

  Returns:
    dict: `bound` (elbo(x) / N), `last_loss_bound` (-loss of the last
    epoch), `held_out` (mean log p(x_test | data)), `ari` (or None),
    `init_iterations`, and `summary`, the posterior summary with components
    in the order of `CENTRES`.
  """
  model = fit.model
  summary = model.posterior_summary()
  order = list(match_clusters(summary["means"]))
  return {
      "bound": float(model.elbo(x)) / len(x),
      "last_loss_bound": -model.training_history["loss"][-1],
      "held_out": float(np.mean(np.asarray(model.log_prob(x_test),
                                             np.float64))),
      "ari": adjusted_rand_index(labels, np.asarray(model.assign(x))),
      "init_iterations": len(model.initialization_history["loss"]),
      "summary": {name: values[order] for name, values in summary.items()},
  }


# ------------------------------------------------------------------ output

def _row(label, cells):
  return (f"  {label:<{_LABEL}}"
          + "".join(f"{cell:>{_COLUMN}}" for cell in cells)).rstrip()


def _pm(mean, sd, decimals):
  return f"{mean:.{decimals}f} ± {sd:.{decimals}f}"


def format_table(fits, results, init):
  """The side-by-side comparison as text: one column per fit."""
  lines = [_row("", [fit.title for fit in fits])]
  lines.append("  " + "-" * (_LABEL + _COLUMN * len(fits)))
  cells = {
      "fit time (s)": [f"{fit.seconds:.2f}" for fit in fits],
      "epochs": [f"{fit.model.n_epochs} ("
                 + ("fixed" if fit.fixed_epochs else
                    "converged" if fit.model.converged else "max") + ")"
                 for fit in fits],
      "CAVI iterations in init": [
          "- (blog start)" if fit.key == "a" and init == "blog"
          else str(r["init_iterations"]) for fit, r in zip(fits, results)],
      "bound/point, elbo(x)/N": [
          f"{r['bound']:.6f}" + (" [c]" if fit.key == "c" else "")
          for fit, r in zip(fits, results)],
      "-loss, last epoch": [f"{r['last_loss_bound']:.6f}" for r in results],
      "held-out mean log p(x)": [f"{r['held_out']:.6f}" for r in results],
      "ARI vs true labels": [
          "n/a" if r["ari"] is None else f"{r['ari']:.4f}" for r in results],
  }
  for label, row in cells.items():
    lines.append(_row(label, row))
  for c, centre in enumerate(CENTRES):
    lines.append("")
    lines.append(f"  cluster at ({centre[0]:g}, {centre[1]:g})")
    s = [r["summary"] for r in results]
    lines.append(_row("  weight", [_pm(t["weights"][c], t["weights_sd"][c], 4)
                                   for t in s]))
    for d in range(CENTRES.shape[1]):
      lines.append(_row(f"  mean x{d}", [
          _pm(t["means"][c, d], t["means_sd"][c, d], 3) for t in s]))
    for d in range(CENTRES.shape[1]):
      lines.append(_row(f"  stddev x{d}", [
          _pm(t["stddevs"][c, d], t["stddevs_sd"][c, d], 3) for t in s]))
  return "\n".join(lines)


def describe_fits(seed, epochs, init):
  """Which fit is which, as indented text lines."""
  if init == "blog":
    start = "Starts from random values drawn as the blog draws them."
  else:
    start = ("Starts from tfgmm's initialisation, k-means++ restarts refined "
             "by CAVI (--init tfgmm).")
  recipe = ("(a) the blog's recipe: independent priors Normal(0, 1) on the "
            "means, Gamma(5, 5) on the precisions, Dirichlet(2) on the "
            "weights, raw units; method='sampled' (one draw from q per "
            f"point), Adam({BLOG_LEARNING_RATE:g}), batches of "
            f"{BLOG_BATCH_SIZE}, {epochs} epochs. {start}")
  return "\n".join([
      *_fill(recipe, "  ", "      "),
      "  (b) the same model by CAVI: tfgmm.fit(x, 3, standardize=False,",
      "      mean_prior='independent', <the blog's prior>, "
      f"seed={seed}).",
      f"  (c) tfgmm's defaults: tfgmm.fit(x, 3, seed={seed}): the conjugate",
      "      Normal-Gamma prior on standardised data, by CAVI.",
  ])


def _fill(text, first, indent, width=78):
  """Wraps `text` at spaces into lines of at most `width` characters.

  The first line starts with `first`, the others with `indent`. Short
  groups such as "Gamma(5, 5)" stay whole; hyphenated words are not split.
  """
  glued = re.sub(r"\((\w+), (\w+)\)", "(\\1\0\\2)", text)
  return [line.replace("\0", ", ") for line in textwrap.wrap(
      glued, width, initial_indent=first, subsequent_indent=indent,
      break_on_hyphens=False)]


def format_notes(n_test, ari_missing):
  """The caveats printed under the table."""
  notes = [
      "Bounds are nats per training point, in data units. elbo(x)/N is the "
      "mean-field bound of each fitted q, in closed form. -loss is what "
      "training reported for its last epoch: for (a), the epoch's average "
      "of one-draw estimates of the blog's bound, which sums z out inside "
      "the expectation and so is, in expectation, at least elbo(x)/N.",
      "[c]: (c) has another prior, conjugate and on standardised data, so "
      "its bound is that of a different model. Compare (c) with (a) and (b) "
      "through the held-out log-likelihood, not the bound.",
      f"Held-out: the mean log p(x | data) of {n_test} fresh points from "
      "the same generator. For (a) and (b) it is tfgmm's moment-matched "
      "Student-t approximation of the predictive (the independent prior's "
      "has no closed form); for (c) it is exact.",
      "Posterior values read 'mean ± posterior sd'; components are matched "
      "to the true clusters by their means. Fit times include the "
      "initialisation and TensorFlow's tracing.",
  ]
  if ari_missing:
    notes.append("ARI skipped: scikit-learn is not installed (pip install "
                 "scikit-learn, or the project's [dev] extra).")
  return "\n".join(["Notes:"] + [line for note in notes
                                  for line in _fill(note, "  - ", "    ")])


def plot_bounds(fits, results, init, path):
  """Writes a PNG of -loss per epoch of every fit, after its initialisation.

  Dashed: the bound over the CAVI iterations of the initialisation's best
  restart (on all the data here: 3,000 rows fit in its sample); solid: -loss
  per training epoch. Epochs are on a log scale.
  """
  from matplotlib.figure import Figure  # pylint: disable=import-outside-toplevel

  fig = Figure(figsize=(8, 4.8), layout="constrained")
  ax = fig.subplots()
  for i, (fit, result) in enumerate(zip(fits, results)):
    history = fit.model.initialization_history["loss"]
    start = [] if fit.key == "a" and init == "blog" else history
    start = -np.asarray(start, float)                             # [I]
    bound = -np.asarray(fit.model.training_history["loss"], float)  # [E]
    steps = np.arange(1, len(start) + len(bound) + 1)             # [I + E]
    if len(start):
      # Joined to the first epoch so each fit reads as one line.
      ax.plot(steps[:len(start) + 1], np.append(start, bound[:1]),
              color=f"C{i}", lw=1.2, ls="--", marker=".", ms=5)
    ax.plot(steps[len(start):], bound, color=f"C{i}", lw=1.2,
            marker="o" if len(bound) <= 30 else None, ms=4,
            label=f"{fit.title}: elbo(x)/N = {result['bound']:.4f}")
  ax.plot([], [], color="0.4", ls="--", marker=".",
          label="initialisation CAVI (best restart)")
  ax.set_xscale("log")
  ax.set_xlabel("CAVI iteration of the initialisation, then epoch")
  ax.set_ylabel("-loss (bound per point, nats)")
  ax.grid(True, which="both", alpha=0.3)
  ax.legend(loc="lower right", fontsize=9)
  ax.set_title("The TFP blog's mixture: the bound per epoch. (a) is a noisy "
               "one-draw estimate;\n(c) bounds another model (conjugate "
               "prior on standardised data)", fontsize=10)
  fig.savefig(os.fspath(path), dpi=110)


# -------------------------------------------------------------- arguments

def build_parser():
  parser = argparse.ArgumentParser(
      prog=PROG,
      description="Fit the 2019 TFP blog's Bayesian Gaussian mixture three "
                  "ways with tfgmm (the blog's SVI recipe, the same model "
                  "by CAVI, tfgmm's defaults) and compare them.")
  parser.add_argument("--seed", type=_common.seed, default=BLOG_SEED,
                      help="seed of the data, initialisation, shuffling and "
                           f"sampling (default: {BLOG_SEED}, the blog's: "
                           "the same training points)")
  parser.add_argument("--epochs", type=_common.positive_int, default=BLOG_EPOCHS,
                      metavar="E",
                      help="epochs of the blog recipe, fit (a) (default: "
                           f"{BLOG_EPOCHS}, the blog's; about a minute on "
                           "2 CPU cores)")
  parser.add_argument("--init", choices=("tfgmm", "blog"), default="blog",
                      help="start of fit (a): the blog's random draws "
                           "(default) or tfgmm's initialisation")
  parser.add_argument("--plots", metavar="DIR",
                      help="write bound_per_epoch.png to this directory")
  return parser


# -------------------------------------------------------------------- main

def main(argv=None):
  """Runs the comparison.

  Args:
    argv: the arguments (without the program name); None reads sys.argv.

  Returns:
    The exit status: 0 success, 1 the plot could not be written, 2 bad
    arguments, 130 interrupted.
  """
  args, status = _common.parse_or_status(build_parser(), argv)
  if status is None:
    status = _common.plots_dir_error(PROG, args.plots)
  if status is not None:
    return status
  return _common.run_interruptible(PROG, _run, args)


def _run(args):
  rng = np.random.RandomState(args.seed)
  x, labels = blog_data(rng)            # first draws: the blog's points
  x_test, _ = blog_data(rng)            # fresh points, same generator
  print(f"Data: {len(CENTRES)} unit-variance 2-D clusters of "
        f"{POINTS_PER_CLUSTER} points around "
        + ", ".join(f"({cx:g}, {cy:g})" for cx, cy in CENTRES) + ":\n"
        f"{len(x)} training points and {len(x_test)} held-out ones from the "
        f"same generator (seed {args.seed}).\n")
  print(describe_fits(args.seed, args.epochs, args.init) + "\n", flush=True)

  print(f"Fitting (a): {args.epochs} epochs of "
        f"{-(-len(x) // BLOG_BATCH_SIZE)} Adam steps...", flush=True)
  fits = [fit_blog_recipe(x, args.seed, args.epochs, args.init)]
  print("Fitting (b) and (c)...", flush=True)
  fits.append(fit_blog_model_cavi(x, args.seed))
  fits.append(fit_tfgmm_defaults(x, args.seed))
  results = [measure(fit, x, labels, x_test) for fit in fits]

  print()
  print(format_table(fits, results, args.init))
  print()
  print(format_notes(len(x_test), any(r["ari"] is None for r in results)))

  if args.plots is not None:
    path = os.path.join(args.plots, "bound_per_epoch.png")
    try:
      os.makedirs(args.plots, exist_ok=True)
      plot_bounds(fits, results, args.init, path)
    except OSError as e:
      print(f"{PROG}: error: cannot write {path!r}: {e.strerror or e}",
            file=sys.stderr)
      return 1
    print(f"\nPlot: {path}")
  return 0


if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  sys.exit(main())
