"""Deep clustering: an autoencoder with a Bayesian Gaussian-mixture prior.

An autoencoder on scikit-learn's bundled 8x8 handwritten digits (1,797
images, no download) whose 10-D codes a `tfgmm.BayesianGMM` with K = 10
components models. Training has two phases:

  1. pretraining: the autoencoder alone, by reconstruction;
  2. joint training: the mixture is initialised from the pretrained codes
     (`mixture.initialize`: k-means++ restarts refined by CAVI), then each
     batch takes one Adam step of the encoder and decoder on

       loss = -log N(x | decoder(z), sigma^2 I) - ELBO(z | mixture),
       z = encoder(x),

     the encoder receiving gradients through the mixture's evidence lower
     bound per code, and one closed-form natural-gradient step of the
     mixture on the batch's codes. Both come from one shipped layer,
     `tfgmm.layers.MixtureLoss`, placed between the encoder and the decoder
     of a Functional model (it makes the mixture non-trainable, so Adam
     leaves it alone).

The two terms bound the negative log densities of one model, p(x | z) p(z),
so their relative weight is not a free knob but the decoder's noise: sigma
is 1/16, the quantisation step of the pixels (integers 0..16 scaled to
[0, 1]); in units of squared error the mixture's term weighs 2 sigma^2.
The codes are batch-standardised (a `BatchNormalization` without scale or
offset ends the encoder): otherwise the encoder could raise log p(z) without
limit by shrinking every code while the decoder scales back up.

The script prints the adjusted Rand index (ARI) of the clusters against the
digit labels, which no fit sees, for a mixture of the same kind (K = 10,
tfgmm's default prior, the same covariance type) fitted on

  - raw pixels (the 61 that are not blank in every image),
  - PCA features (10-D, as many as the codes),
  - the pretrained autoencoder's codes (the mixture as initialised before
    joint training),
  - the codes after joint training (deep clustering),

and, with --plots, writes a PNG of the codes in 2-D (their first two
principal components), coloured by cluster and by digit.

Examples:

  python -m examples.deep_clustering                 # about 30 s
  python -m examples.deep_clustering --plots plots --seed 3
  python -m examples.deep_clustering --quick         # reduced run

Exit status: 0 on success, 1 when scikit-learn is missing or writing the
plot fails, 2 on bad arguments, 130 when interrupted.
"""

import argparse
import os
import sys
import textwrap
import time

import keras
import numpy as np
import tensorflow as tf

import tfgmm

from examples import _common

PROG = "python -m examples.deep_clustering"

N_COMPONENTS = 10           # K: one component per digit, if all goes well
LATENT_DIM = 10             # the codes, and the PCA baseline's features
HIDDEN_UNITS = (256, 128)   # encoder; the decoder mirrors it
PIXEL_NOISE = 1.0 / 16.0    # the decoder's sigma: one quantisation step
BATCH_SIZE = 128
LEARNING_RATE = 1e-3
N_INIT = 5                  # k-means++ restarts of every mixture fit
COVARIANCE_TYPE = "full"    # the codes' axes mean nothing: clusters tilt
EPOCHS = (50, 50)           # pretraining, joint training
QUICK_EPOCHS = (25, 10)

_LABEL = 34    # width of the row labels
_COLUMN = 12   # width of a value column


# ------------------------------------------------------------------- data

def load_digits_data():
  """The bundled digits, scaled to [0, 1].

  Returns:
    (x, labels): float32 array of shape (1797, 64), pixel intensities
    divided by 16, and int array of shape (1797,), the digits.
  """
  from sklearn import datasets  # pylint: disable=import-outside-toplevel

  digits = datasets.load_digits()
  return (digits.data / 16.0).astype(np.float32), digits.target


# ------------------------------------------------------------------ model

def reconstruction_nll(x, reconstruction):
  """-log N(x | reconstruction, sigma^2 I) without its constant, [B].

  ```none
  sum_p (x[b, p] - reconstruction[b, p])^2 / (2 sigma^2)
  ```
  """
  return tf.reduce_sum(tf.square(x - reconstruction), -1) / (
      2.0 * PIXEL_NOISE**2)


class MixturePriorAutoencoder:
  """An autoencoder whose codes a `BayesianGMM` models, as two Keras models
  sharing their layers.

  `autoencoder` (encoder then decoder) pretrains by reconstruction alone;
  `joint` puts a `tfgmm.layers.MixtureLoss` between the two, which adds the
  mixture's negative ELBO per code to the loss and takes one closed-form
  natural-gradient step of the mixture per batch.

  #### Mathematical Details

  ```none
  z    = encoder(x)                                 codes, [B, L]
  loss = mean_b [ sum_p (x[b, p] - decoder(z)[b, p])^2 / (2 sigma^2) ]
         + KL(q || p) / N - mean_b log sum_k exp(log_rho[b, k])
  log_rho[b, k] = E_q[log pi_k + log N(z[b] | mu_k, Lambda_k^-1)]
  ```

  Without its constant, the first term is -log N(x | decoder(z), sigma^2 I);
  the second is the mixture's negative evidence lower bound per code
  (`BayesianGMM.negative_elbo`), differentiable with respect to z.

  Args:
    n_pixels: P, the number of inputs per image.
    latent_dim: L, the width of the codes.
    n_components: K, the mixture's components.
    covariance_type: the mixture's, "full" or "diag".
    seed: the mixture's seed.
  """

  def __init__(self, n_pixels, latent_dim=LATENT_DIM,
               n_components=N_COMPONENTS, covariance_type=COVARIANCE_TYPE,
               seed=0):
    self.encoder = keras.Sequential(
        [keras.layers.Dense(units, activation="relu")
         for units in HIDDEN_UNITS]
        + [keras.layers.Dense(latent_dim),
           # Unit variance per code dimension: the density cannot grow by
           # shrinking all the codes (see the module docstring).
           keras.layers.BatchNormalization(center=False, scale=False)],
        name="encoder")
    self.decoder = keras.Sequential(
        [keras.layers.Dense(units, activation="relu")
         for units in reversed(HIDDEN_UNITS)]
        + [keras.layers.Dense(n_pixels)], name="decoder")
    self.mixture = tfgmm.BayesianGMM(n_components, latent_dim,
                                     covariance_type=covariance_type,
                                     seed=seed, name="mixture")
    inputs = keras.Input((n_pixels,))
    codes = self.encoder(inputs)
    self.autoencoder = keras.Model(inputs, self.decoder(codes),
                                   name="autoencoder")
    # The layer makes the mixture non-trainable: natural steps, not Adam.
    self.joint = keras.Model(
        inputs, self.decoder(tfgmm.layers.MixtureLoss(self.mixture)(codes)),
        name="joint")
    for model in (self.autoencoder, self.joint):
      model.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE),
                    loss=reconstruction_nll,
                    metrics=[keras.metrics.MeanMetricWrapper(
                        reconstruction_nll, name="reconstruction")])

  def encode(self, x):
    """The codes of x in inference mode, [N, L]."""
    return self.encoder(x, training=False)

  def start_joint_training(self, x, n_init=N_INIT):
    """Initialises the mixture from the codes of x.

    Args:
      x: images, [N, P].
      n_init: the mixture's k-means++ restarts.
    """
    self.mixture.initialize(self.encode(x), n_init=n_init)


def build_model(n_pixels, seed, covariance_type=COVARIANCE_TYPE):
  """The autoencoder with its mixture, its two models compiled.

  Args:
    n_pixels: P, the input width.
    seed: seed of the mixture's initialisation.
    covariance_type: the mixture's, "full" or "diag".

  Returns:
    A `MixturePriorAutoencoder`.
  """
  return MixturePriorAutoencoder(n_pixels, seed=seed,
                                 covariance_type=covariance_type)


def batches(x, seed):
  """(x, x) in shuffled batches of `BATCH_SIZE`, reshuffled every epoch."""
  return (tf.data.Dataset.from_tensor_slices((x, x))
          .shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
          .batch(BATCH_SIZE))


# -------------------------------------------------------------------- fits

class Row:
  """One line of the table: features, their clusters and the ARI."""

  def __init__(self, title, n_features, labels, seconds):
    self.title = title
    self.n_features = n_features
    self.labels = np.asarray(labels)      # [N] cluster of each image
    self.seconds = seconds                # fit time, wall clock
    self.ari = None


def fit_mixture(features, seed, covariance_type, n_init):
  """tfgmm.fit with K = 10 on features; (model, seconds)."""
  start = time.perf_counter()
  model = tfgmm.fit(features, N_COMPONENTS, seed=seed, n_init=n_init,
                    covariance_type=covariance_type)
  return model, time.perf_counter() - start


def baseline_rows(x, seed, covariance_type, n_init=N_INIT):
  """The mixture on raw pixels and on PCA features (two `Row`s)."""
  from sklearn import decomposition  # pylint: disable=import-outside-toplevel

  # A pixel blank in every image (3 of the 64) tells the digits nothing,
  # and a zero-variance feature is degenerate for a mixture: each
  # component's precision on it grows with the component's count alone.
  pixels = x[:, x.std(0) > 0]                                     # [N, P']
  model, seconds = fit_mixture(pixels, seed, covariance_type, n_init)
  rows = [Row(f"raw pixels ({pixels.shape[1]} non-blank)", pixels.shape[1],
              model.assign(pixels), seconds)]
  features = decomposition.PCA(LATENT_DIM, random_state=seed).fit_transform(
      x).astype(np.float32)                                       # [N, L]
  model, seconds = fit_mixture(features, seed, covariance_type, n_init)
  rows.append(Row(f"PCA features ({LATENT_DIM} components)", LATENT_DIM,
                  model.assign(features), seconds))
  return rows


def deep_clustering(x, seed, epochs, covariance_type, n_init=N_INIT):
  """Pretrains the autoencoder, then trains it jointly with its mixture.

  Args:
    x: images, [N, P].
    seed: seed of the weights, the shuffling and the mixture.
    epochs: (pretraining, joint training) epochs.
    covariance_type: the mixture's.
    n_init: the mixture's k-means++ restarts at its initialisation.

  Returns:
    (model, rows, history): the trained `MixturePriorAutoencoder`, the table
    rows of the pretrained and the jointly trained codes, and the metrics
    per epoch, {"pretraining": {...}, "joint": {...}}, each a dict of lists
    (empty for a phase of no epochs).
  """
  keras.utils.set_random_seed(seed)
  model = build_model(x.shape[1], seed, covariance_type)
  dataset = batches(x, seed)

  def train(keras_model, n_epochs):
    if not n_epochs:
      return {}
    run = keras_model.fit(dataset, epochs=n_epochs, verbose=0, shuffle=False)
    return {key: [float(v) for v in values]
            for key, values in run.history.items()}

  start = time.perf_counter()
  history = {"pretraining": train(model.autoencoder, epochs[0])}
  model.start_joint_training(x, n_init=n_init)
  pretrained = Row("autoencoder codes, pretrained", LATENT_DIM,
                   model.mixture.assign(model.encode(x)),
                   time.perf_counter() - start)
  history["joint"] = train(model.joint, epochs[1])
  joint = Row("deep clustering (joint training)", LATENT_DIM,
              model.mixture.assign(model.encode(x)),
              time.perf_counter() - start)
  return model, [pretrained, joint], history


# ------------------------------------------------------------------ output

def _row(label, cells):
  return (f"  {label:<{_LABEL}}"
          + "".join(f"{cell:>{_COLUMN}}" for cell in cells)).rstrip()


def format_table(rows):
  """The comparison as text: one row per set of features."""
  lines = [_row("features", ["dims", "ARI", "clusters", "time (s)"]),
           "  " + "-" * (_LABEL + 4 * _COLUMN)]
  for row in rows:
    lines.append(_row(row.title, [
        str(row.n_features), f"{row.ari:.4f}",
        str(len(np.unique(row.labels))), f"{row.seconds:.1f}"]))
  return "\n".join(lines)


def format_notes(covariance_type, epochs, n_init, history):
  """The caveats printed under the table."""
  phase = history["joint"] or history["pretraining"]
  last = {key: values[-1] for key, values in phase.items()}
  notes = [
      f"Every row is a {N_COMPONENTS}-component BayesianGMM with "
      f"covariance_type={covariance_type!r} and {n_init} k-means++ "
      "restarts. ARI is against the digit labels, which no fit sees (0: "
      "chance, 1: the digits exactly); 'clusters' counts the components "
      "that hold at least one image.",
      f"Autoencoder: {epochs[0]} epochs of pretraining, then {epochs[1]} of "
      f"joint training (Adam {LEARNING_RATE:g}, batches of {BATCH_SIZE}, one "
      "natural step of the mixture per batch); its rows' times count from "
      "the start of pretraining.",
  ]
  if last:
    notes[-1] += (
        " Last epoch's loss per image: reconstruction "
        f"{last['reconstruction']:.2f} nats (without its constant)"
        + (f", the mixture's -ELBO of z {last['mixture_loss']:.2f} nats."
           if history["joint"] else "."))
  return "\n".join(["Notes:"] + [
      line for note in notes for line in textwrap.wrap(
          note, 78, initial_indent="  - ", subsequent_indent="    ")])


def match_clusters_to_digits(clusters, labels):
  """The digit each cluster is drawn as: the one-to-one matching of clusters
  to digits that agrees on the most images (Hungarian algorithm).

  Args:
    clusters: int array of shape (n_samples,), cluster per image.
    labels: int array of shape (n_samples,), digit per image.

  Returns:
    dict cluster -> digit (clusters left unmatched map to None).
  """
  from scipy import optimize  # pylint: disable=import-outside-toplevel

  cluster_ids, digit_ids = np.unique(clusters), np.unique(labels)
  overlap = np.array([[np.sum((clusters == c) & (labels == d))
                       for d in digit_ids] for c in cluster_ids])  # [C, 10]
  rows, cols = optimize.linear_sum_assignment(-overlap)
  matched = {int(cluster_ids[r]): int(digit_ids[c]) for r, c in zip(rows, cols)}
  return {int(c): matched.get(int(c)) for c in cluster_ids}


def plot_latent_space(model, x, labels, rows, path):
  """Writes a PNG of the codes' first two principal components.

  Left: coloured by the mixture's cluster, each drawn in the colour of the
  digit it is matched to (`match_clusters_to_digits`), with the components'
  posterior means (crosses, sized by weight); right: coloured by the true
  digit.
  """
  from matplotlib.figure import Figure  # pylint: disable=import-outside-toplevel
  from sklearn import decomposition  # pylint: disable=import-outside-toplevel

  codes = np.asarray(model.encode(x))                             # [N, L]
  pca = decomposition.PCA(2).fit(codes)
  points = pca.transform(codes)                                   # [N, 2]
  summary = model.mixture.posterior_summary()
  means = pca.transform(summary["means"])                         # [K, 2]
  weights = np.asarray(summary["weights"])                        # [K]
  clusters = rows[-1].labels
  digit_of = match_clusters_to_digits(clusters, labels)
  fig = Figure(figsize=(11, 5), layout="constrained")
  left, right = fig.subplots(1, 2, sharex=True, sharey=True)
  for c, d in sorted(digit_of.items(), key=lambda item: (item[1] is None,
                                                         item[1])):
    mask = clusters == c
    left.scatter(points[mask, 0], points[mask, 1], s=6, alpha=0.6,
                 color="0.5" if d is None else f"C{d}", linewidths=0,
                 label=f"{c} ~ {d}" if d is not None else f"{c}")
  left.scatter(means[:, 0], means[:, 1], marker="x", color="black",
               s=40 + 400 * weights, linewidths=1.5)
  left.set_title(f"mixture clusters (ARI {rows[-1].ari:.3f}); "
                 "x: component means")
  left.legend(title="cluster ~ digit", fontsize=7, markerscale=2.5,
              ncols=2)
  for digit in np.unique(labels):
    mask = labels == digit
    right.scatter(points[mask, 0], points[mask, 1], s=6, alpha=0.6,
                  color=f"C{digit}", linewidths=0, label=str(digit))
  right.set_title("true digits")
  right.legend(title="digit", fontsize=7, markerscale=2.5, ncols=2)
  for ax in (left, right):
    ax.set_xlabel("PC 1 of the codes")
  left.set_ylabel("PC 2 of the codes")
  fig.suptitle(f"Autoencoder codes after joint training with the mixture "
               f"prior (2-D PCA of {codes.shape[1]}-D codes)")
  fig.savefig(os.fspath(path), dpi=110)


# -------------------------------------------------------------- arguments

def build_parser():
  parser = argparse.ArgumentParser(
      prog=PROG,
      description="Cluster scikit-learn's 8x8 digits with an autoencoder "
                  "whose codes a Bayesian Gaussian mixture models, and "
                  "compare with the mixture on raw pixels and PCA features.")
  parser.add_argument("--seed", type=_common.seed, default=0,
                      help="seed of the weights, shuffling and mixtures "
                           "(default: 0)")
  parser.add_argument("--epochs", type=_common.int_at_least(0), nargs=2,
                      metavar=("PRETRAIN", "JOINT"),
                      help="epochs of pretraining and of joint training "
                           f"(default: {EPOCHS[0]} {EPOCHS[1]}; with "
                           f"--quick {QUICK_EPOCHS[0]} {QUICK_EPOCHS[1]})")
  parser.add_argument("--covariance", choices=("full", "diag"),
                      default=COVARIANCE_TYPE,
                      help="the mixtures' covariance_type (default: "
                           f"{COVARIANCE_TYPE})")
  parser.add_argument("--quick", action="store_true",
                      help="a reduced run: fewer epochs, 2 restarts per "
                           "mixture")
  parser.add_argument("--plots", metavar="DIR",
                      help="write latent_space.png to this directory")
  return parser


# -------------------------------------------------------------------- main

def main(argv=None):
  """Runs the comparison.

  Args:
    argv: the arguments (without the program name); None reads sys.argv.

  Returns:
    The exit status: 0 success, 1 scikit-learn missing or the plot could
    not be written, 2 bad arguments, 130 interrupted.
  """
  args, status = _common.parse_or_status(build_parser(), argv)
  if status is None:
    status = (_common.plots_dir_error(PROG, args.plots)
              or _common.sklearn_error(PROG, "for the digits, PCA and the ARI"))
  if status is not None:
    return status
  return _common.run_interruptible(PROG, _run, args)


def _run(args):
  from sklearn import metrics  # pylint: disable=import-outside-toplevel

  n_init = 2 if args.quick else N_INIT
  epochs = tuple(args.epochs or (QUICK_EPOCHS if args.quick else EPOCHS))
  x, labels = load_digits_data()
  print(f"Data: scikit-learn's 8x8 digits, {len(x)} images of "
        f"{x.shape[1]} pixels scaled to [0, 1]; seed {args.seed}.\n",
        flush=True)

  print("Fitting the mixture on raw pixels and on PCA features...", flush=True)
  rows = baseline_rows(x, args.seed, args.covariance, n_init)
  print(f"Training the autoencoder: {epochs[0]} epochs of pretraining, "
        f"{epochs[1]} of joint training...", flush=True)
  model, deep_rows, history = deep_clustering(x, args.seed, epochs,
                                              args.covariance, n_init)
  rows += deep_rows
  for row in rows:
    row.ari = float(metrics.adjusted_rand_score(labels, row.labels))

  print()
  print(format_table(rows))
  print()
  print(format_notes(args.covariance, epochs, n_init, history))

  if args.plots is not None:
    path = os.path.join(args.plots, "latent_space.png")
    try:
      os.makedirs(args.plots, exist_ok=True)
      plot_latent_space(model, x, labels, rows, path)
    except OSError as e:
      print(f"{PROG}: error: cannot write {path!r}: {e.strerror or e}",
            file=sys.stderr)
      return 1
    print(f"\nPlot: {path}")
  return 0


if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  sys.exit(main())
