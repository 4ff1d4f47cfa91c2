"""A Bayesian Gaussian mixture as the anomaly-score head of a Keras model.

Trains on "normal" data, the digits 0-4 of scikit-learn's bundled 8x8
digits (no download), and scores held-out 0-4s against the digits 5-9,
which the model never sees. The model is one `keras.Model`:

  pixels, float32 [B, 64], intensities 0..16 as the data set stores them
    -> features: scale to [0, 1], project on the 16 principal components
       of the training digits (a frozen `Dense` layer)             [B, 16]
    -> a `tfgmm.BayesianGMM`, K = 10, fitted to the training features
    -> anomaly score = -log p(features | training data)               [B]

the mixture's posterior predictive log density, negated: high where the
training data were rare. The script prints the ROC AUC of the score
(held-out normal digits against the anomalous ones; 0.5 is chance), per
anomalous digit too, and the rates a threshold at the 95th percentile of the
training scores flags.

It then exports the WHOLE pipeline, features and mixture, as one SavedModel
(`keras.export.ExportArchive`: `BayesianGMM.export` would export the
mixture alone) with one signature,

  serving_default: x float32 [None, 64] -> anomaly_score float32 [None]

and loads it in a fresh Python process in which importing tfgmm, TensorFlow
Probability or Keras fails, to check that the served scores equal the
in-memory model's.

Examples:

  python -m examples.anomaly_scores          # about 15 s
  python -m examples.anomaly_scores --export saved_models/digits \\
      --save-scores scores.npz
  # The held-out images' scores again, from the SavedModel alone:
  saved_model_cli run --dir saved_models/digits --tag_set serve \\
      --signature_def serving_default --inputs 'x=scores.npz[x]'

Exit status: 0 on success, 1 when the export, the fresh process or writing
fails, or a served score differs from the in-memory one by more than 1e-5
relative (absolute below 1 nat), 2 on bad arguments, 130 when interrupted.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time

import keras
import numpy as np
import tensorflow as tf

import tfgmm

from examples import _common

PROG = "python -m examples.anomaly_scores"

NORMAL_DIGITS = (0, 1, 2, 3, 4)
ANOMALOUS_DIGITS = (5, 6, 7, 8, 9)
MAX_INTENSITY = 16.0        # the digits' pixels are integers 0..16
TRAIN_FRACTION = 0.7        # of the normal digits; the rest is held out
N_FEATURES = 16             # principal components kept
N_COMPONENTS = 10
COVARIANCE_TYPE = "full"
N_INIT = 5
FLAG_QUANTILE = 0.95        # threshold: this quantile of training scores
TOLERANCE = 1e-5            # served vs in-memory: relative, absolute < 1 nat
DEFAULT_EXPORT = os.path.join("saved_models", "anomaly_scores")

# Runs in a fresh interpreter where importing tfgmm, TFP or Keras fails:
# the SavedModel must stand on core TensorFlow alone.
PLAIN_TF_CLIENT = textwrap.dedent("""
    import sys
    for name in ("tfgmm", "tensorflow_probability", "keras"):
      sys.modules[name] = None
    import numpy as np
    import tensorflow as tf

    path, x_path, out_path = sys.argv[1:4]
    serve = tf.saved_model.load(path).signatures["serving_default"]
    outputs = serve(x=tf.constant(np.load(x_path), tf.float32))
    np.save(out_path, outputs["anomaly_score"].numpy())
""")

_LABEL = 44


# ------------------------------------------------------------------- data

class Split:
  """The digits split into training, held-out normal and anomalous rows.

  Attributes (pixels float32, intensities 0..16):
    train: normal digits to fit on, [N_train, 64].
    normal: held-out normal digits, [N_normal, 64].
    anomalous: the anomalous digits, [N_anomalous, 64].
    anomalous_digits: int [N_anomalous], which digit each anomaly is.
  """

  def __init__(self, train, normal, anomalous, anomalous_digits):
    self.train = train
    self.normal = normal
    self.anomalous = anomalous
    self.anomalous_digits = anomalous_digits


def split_digits(seed, train_fraction=TRAIN_FRACTION):
  """Shuffles the normal digits (seeded) into training and held-out rows."""
  from sklearn import datasets  # pylint: disable=import-outside-toplevel

  digits = datasets.load_digits()
  x = digits.data.astype(np.float32)                              # [1797, 64]
  normal = np.flatnonzero(np.isin(digits.target, NORMAL_DIGITS))
  normal = np.random.default_rng(seed).permutation(normal)
  n_train = int(round(train_fraction * len(normal)))
  anomalous = np.flatnonzero(np.isin(digits.target, ANOMALOUS_DIGITS))
  return Split(x[normal[:n_train]], x[normal[n_train:]], x[anomalous],
               digits.target[anomalous])


# ------------------------------------------------------------------ model

class AnomalyScorer(keras.Model):
  """A feature extractor followed by a mixture; outputs -log density.

  Args:
    features: a Keras layer or model, [B, P] -> [B, D].
    mixture: a fitted `tfgmm.BayesianGMM` with D features.

  Input shape: [B, P]. Output shape: [B], the anomaly score
  -log p(features(x) | training data), in nats.
  """

  def __init__(self, features, mixture, **kwargs):
    super().__init__(**kwargs)
    self.features = features
    self.mixture = mixture

  def build(self, input_shape):
    self.features.build(input_shape)
    self.built = True

  def call(self, x):
    return -self.mixture(self.features(x))                        # [B]


def pca_features(x, n_features, seed):
  """A frozen Keras model: pixels -> their first principal components.

  Args:
    x: training pixels, [N, P], intensities 0..16.
    n_features: D, the components kept.
    seed: the PCA's seed (its randomised solver, if picked).

  Returns:
    `keras.Sequential`: Rescaling(1/16), then a non-trainable `Dense`
    computing (x / 16 - mean) @ components.T, [B, P] -> [B, D].
  """
  from sklearn import decomposition  # pylint: disable=import-outside-toplevel

  scale = 1.0 / MAX_INTENSITY
  pca = decomposition.PCA(n_features, random_state=seed).fit(x * scale)
  projection = keras.layers.Dense(n_features, trainable=False,
                                  name="principal_components")
  features = keras.Sequential(
      [keras.Input((x.shape[1],)), keras.layers.Rescaling(scale), projection],
      name="features")
  kernel = pca.components_.T                                      # [P, D]
  projection.set_weights([kernel.astype(np.float32),
                          (-pca.mean_ @ kernel).astype(np.float32)])
  return features


def build_scorer(x_train, seed, n_init=N_INIT):
  """Fits the features and the mixture on the training pixels.

  Returns:
    (scorer, seconds): the `AnomalyScorer` and its fit time.
  """
  start = time.perf_counter()
  features = pca_features(x_train, N_FEATURES, seed)
  mixture = tfgmm.fit(np.asarray(features(x_train)), N_COMPONENTS, seed=seed,
                      n_init=n_init, covariance_type=COVARIANCE_TYPE)
  scorer = AnomalyScorer(features, mixture, name="anomaly_scorer")
  scorer.build((None, x_train.shape[1]))
  return scorer, time.perf_counter() - start


# ---------------------------------------------------------------- serving

def replaceable(path):
  """Whether an export may write `path`: new, an empty directory or a
  SavedModel."""
  return not os.path.exists(path) or (os.path.isdir(path) and (
      not os.listdir(path)
      or os.path.exists(os.path.join(path, "saved_model.pb"))))


def export_scorer(scorer, n_pixels, path):
  """Writes the whole scorer as one SavedModel with a `serving_default`
  signature, x float32 [None, P] -> anomaly_score float32 [None].

  The SavedModel is written beside `path` and moved into place when
  complete, replacing a SavedModel already there.

  Returns:
    `path`.

  Raises:
    FileExistsError: `path` holds something else.
  """
  path = os.fspath(path)
  if not replaceable(path):
    raise FileExistsError(f"{path!r} exists and is not a SavedModel or an "
                          "empty directory; refusing to replace it")
  archive = keras.export.ExportArchive()
  archive.track(scorer)
  archive.add_endpoint(
      "serving_default", lambda x: {"anomaly_score": scorer(x)},
      input_signature=[tf.TensorSpec([None, n_pixels], tf.float32,
                                     name="x")])
  parent = os.path.dirname(os.path.abspath(path))
  os.makedirs(parent, exist_ok=True)
  staging = tempfile.mkdtemp(prefix=".anomaly-scores-", dir=parent)
  try:
    archive.write_out(staging, verbose=False)
    if os.path.isdir(path):
      shutil.rmtree(path)
    os.replace(staging, path)
  finally:
    if os.path.isdir(staging):
      shutil.rmtree(staging, ignore_errors=True)
  return path


def serve_in_fresh_process(path, x, timeout=300):
  """The SavedModel's `serving_default` scores of x, computed by a fresh
  Python process that cannot import tfgmm, TFP or Keras.

  Args:
    path: the SavedModel's directory.
    x: float32 pixels, [N, P].
    timeout: seconds to wait for the process.

  Returns:
    float32 numpy array [N].

  Raises:
    RuntimeError: the process failed; its stderr's end is in the message.
  """
  with tempfile.TemporaryDirectory(prefix="anomaly-scores-") as scratch:
    x_path = os.path.join(scratch, "x.npy")
    out_path = os.path.join(scratch, "scores.npy")
    np.save(x_path, np.asarray(x, np.float32))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(
        [sys.executable, "-c", PLAIN_TF_CLIENT, os.fspath(path), x_path,
         out_path], capture_output=True, text=True, timeout=timeout,
        env=env, cwd=scratch, check=False)
    if done.returncode != 0:
      raise RuntimeError(f"the fresh process exited {done.returncode}: "
                         f"{done.stderr[-2000:]}")
    return np.load(out_path)


def relative_difference(served, in_memory):
  """max_n |served - in_memory| / max(|in_memory|, 1): relative, with an
  absolute floor of 1 nat for scores near zero."""
  served = np.asarray(served, np.float64)
  in_memory = np.asarray(in_memory, np.float64)
  return float(np.max(np.abs(served - in_memory)
                      / np.maximum(np.abs(in_memory), 1.0)))


# ------------------------------------------------------------- evaluation

def roc_auc(normal_scores, anomalous_scores):
  """ROC AUC of the scores, anomalies the positive class (0.5: chance)."""
  from sklearn import metrics  # pylint: disable=import-outside-toplevel

  labels = np.r_[np.zeros(len(normal_scores)), np.ones(len(anomalous_scores))]
  return float(metrics.roc_auc_score(
      labels, np.r_[normal_scores, anomalous_scores]))


def format_report(split, scores, seconds):
  """The scores' summary as text.

  Args:
    split: the `Split`.
    scores: dict of numpy arrays: "train", "normal", "anomalous".
    seconds: the fit time.
  """
  threshold = float(np.quantile(scores["train"], FLAG_QUANTILE))
  rows = [("fit time (s)", f"{seconds:.1f}"),
          ("ROC AUC, held-out 0-4 vs 5-9",
           f"{roc_auc(scores['normal'], scores['anomalous']):.4f}")]
  for digit in ANOMALOUS_DIGITS:
    mask = split.anomalous_digits == digit
    rows.append((f"  ROC AUC, held-out 0-4 vs {digit}s",
                 f"{roc_auc(scores['normal'], scores['anomalous'][mask]):.4f}"))
  for name, title in (("train", "training 0-4"), ("normal", "held-out 0-4"),
                      ("anomalous", "anomalous 5-9")):
    rows.append((f"median score, {title}",
                 f"{np.median(scores[name]):.2f}"))
  rows.append((f"threshold: {FLAG_QUANTILE:.0%} quantile of training scores",
               f"{threshold:.2f}"))
  for name, title in (("normal", "held-out 0-4"),
                      ("anomalous", "anomalous 5-9")):
    rows.append((f"  flagged, {title}",
                 f"{np.mean(scores[name] > threshold):.1%}"))
  lines = [f"  {label:<{_LABEL}}{value:>10}" for label, value in rows]
  notes = [
      f"A score is -log p of an image's {N_FEATURES} features under the "
      "mixture, in nats.",
      "The training scores are optimistic, the mixture was fitted to them: "
      "a threshold set on them flags more new normal digits than the "
      f"{1 - FLAG_QUANTILE:.0%} it flags of the training ones. In practice, "
      "set it on held-out normal data.",
  ]
  lines += ["", "Notes:"] + [
      line for note in notes for line in textwrap.wrap(
          note, 78, initial_indent="  - ", subsequent_indent="    ")]
  return "\n".join(lines)


# -------------------------------------------------------------- arguments

def build_parser():
  parser = argparse.ArgumentParser(
      prog=PROG,
      description="Score digits 5-9 as anomalies with a Bayesian Gaussian "
                  "mixture fitted to the features of digits 0-4, export the "
                  "whole model as one SavedModel and check it serves the "
                  "same scores without tfgmm.")
  parser.add_argument("--seed", type=_common.seed, default=0,
                      help="seed of the split, the PCA and the mixture "
                           "(default: 0)")
  parser.add_argument("--export", metavar="DIR", default=DEFAULT_EXPORT,
                      help="the SavedModel's directory (default: "
                           f"{DEFAULT_EXPORT}); an existing SavedModel there "
                           "is replaced")
  parser.add_argument("--save-scores", metavar="FILE",
                      help="also write the held-out images and their "
                           "in-memory scores to FILE (.npz with arrays x and "
                           "anomaly_score), reference outputs to check a "
                           "server against")
  parser.add_argument("--quick", action="store_true",
                      help="a reduced run: 2 restarts of the mixture")
  return parser


# -------------------------------------------------------------------- main

def main(argv=None):
  """Fits, scores, exports and checks the served scores.

  Args:
    argv: the arguments (without the program name); None reads sys.argv.

  Returns:
    The exit status (see the module docstring).
  """
  args, status = _common.parse_or_status(build_parser(), argv)
  if status is None and not replaceable(args.export):
    status = _common.error(
        PROG, f"--export {args.export!r} exists and is not a SavedModel or "
        "an empty directory; refusing to replace it")
  if status is None:
    status = _common.sklearn_error(PROG, "for the digits, PCA and the ROC AUC")
  if status is not None:
    return status
  return _common.run_interruptible(PROG, _run, args)


def _run(args):
  split = split_digits(args.seed)
  print(textwrap.fill(
      f"Data: scikit-learn's 8x8 digits. Normal: digits 0-4, "
      f"{len(split.train)} to train on, {len(split.normal)} held out; "
      f"anomalous: the {len(split.anomalous)} digits 5-9 (seed "
      f"{args.seed}).", 78))
  print(textwrap.fill(
      f"Model: pixels -> {N_FEATURES} principal components -> BayesianGMM "
      f"(K={N_COMPONENTS}, covariance_type={COVARIANCE_TYPE!r}); anomaly "
      "score = -log p.", 78) + "\n", flush=True)
  scorer, seconds = build_scorer(split.train, args.seed,
                                 n_init=2 if args.quick else N_INIT)
  scores = {name: np.asarray(scorer(getattr(split, name)))
            for name in ("train", "normal", "anomalous")}
  print(format_report(split, scores, seconds))

  held_out = np.concatenate([split.normal, split.anomalous])       # [M, 64]
  in_memory = np.concatenate([scores["normal"], scores["anomalous"]])
  if args.save_scores is not None:
    try:
      np.savez(args.save_scores, x=held_out, anomaly_score=in_memory)
    except OSError as e:
      print(f"{PROG}: error: cannot write {args.save_scores!r}: "
            f"{e.strerror or e}", file=sys.stderr)
      return 1
  try:
    start = time.perf_counter()
    export_scorer(scorer, held_out.shape[1], args.export)
    export_seconds = time.perf_counter() - start
    start = time.perf_counter()
    served = serve_in_fresh_process(args.export, held_out)
    serve_seconds = time.perf_counter() - start
  except (OSError, RuntimeError, subprocess.TimeoutExpired) as e:
    print(f"{PROG}: error: exporting or serving {args.export!r} failed: {e}",
          file=sys.stderr)
    return 1
  difference = relative_difference(served, in_memory)
  print(f"\nSavedModel: {args.export} (written in {export_seconds:.1f} s)\n"
        f"  serving_default: x float32 [None, {held_out.shape[1]}] -> "
        "anomaly_score float32 [None]")
  print(f"Served by a fresh process without tfgmm, TFP or Keras "
        f"({serve_seconds:.1f} s): {len(served)} scores;\n"
        f"max relative difference from the in-memory model: "
        f"{difference:.2e} (tolerance {TOLERANCE:g}).")
  if not difference <= TOLERANCE:
    print(f"{PROG}: error: the served scores differ from the in-memory "
          "model's", file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  sys.exit(main())
