"""Benchmarks tfgmm against scikit-learn's Gaussian mixtures.

Every estimator is fitted in the same process on the same training data and
scored on a held-out draw from the same mixture:

- fit time, and its ratio to scikit-learn's `GaussianMixture(n_init=1)` of
  the same covariance type in this run (diag on the diagonal datasets, full
  on the full-covariance ones: aniso, corr10d-*);
- held-out mean log-likelihood minus the true mixture's;
- adjusted Rand index against the true labels, and minus the true mixture's
  own ARI (its labels are the argmax of the true posterior);
- the number of components with (expected) weight >= 0.01;
- peak resident-memory growth during the fit (Linux: VmHWM after the fit
  minus VmRSS before it, with VmHWM reset through /proc/self/clear_refs).

Diagonal datasets run tfgmm's default (diagonal) model and scikit-learn's
diagonal mixtures; the full-covariance datasets run
`tfgmm.fit(covariance_type="full")` and scikit-learn's full mixtures.

The first tfgmm fit of each model family in the process (the seed blog's
data for the diagonal model, aniso for the full one) includes the first-call
tracing of tfgmm's compiled functions; they are traced once per family,
dtype and weight prior, not per shape.

`--stream` runs a separate benchmark instead: the 10-D, K = 10 recipe
("10d-*") drawn on the fly through tf.data (stateless random ops seeded by
(seed, batch index), so every epoch regenerates the same rows and no more
than a few batches exist at once), fitted by natural-gradient SVI through
`BayesianGMM.fit(dataset, epochs=...)`, each size (default 1e6 and 1e7 rows)
in a fresh process. It reports time per epoch, peak RSS and its growth
during the fit, and the held-out log-likelihood and ARI against the true
mixture's on 100,000 rows.

Usage:

  python scripts/benchmark.py            # everything (tens of minutes)
  python scripts/benchmark.py --quick    # smoke run, well under a minute
  python scripts/benchmark.py --datasets blog far --markdown
  python scripts/benchmark.py --stream   # 1e6 and 1e7 streamed rows (~1 min)
  python scripts/benchmark.py --stream --stream-sizes 1e6,1e7,3e7

The helpers `true_log_prob`, `true_posterior_labels` and the `make_*`
dataset builders import only numpy and scipy (`make_aniso_data` also
scikit-learn's `make_blobs`), so tests can call them.
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
# scikit-learn's "Demonstration of k-means assumptions" example
# (plot_kmeans_assumptions.py): make_blobs(n_samples=1500, random_state=170)
# times this matrix (the issue quotes it rounded to [[0.6, -0.64],
# [-0.41, 0.85]]).
ANISO_SHEAR = np.array([[0.60834549, -0.63667341],
                        [-0.40887718, 0.85253229]])
ANISO_ROWS = 1500
ANISO_RANDOM_STATE = 170
ANISO_HELD_OUT = 100_000
# The seed blog's prior, in raw (unstandardised) units.
BLOG_PRIOR = dict(weight_concentration=2.0, mean_precision=1.0,
                  precision_concentration=5.0, precision_rate=5.0,
                  standardize=False)
SAMPLED_DATASETS = ("blog", "far")
DP_DATASETS = ("10d-1e5",)
FULL_DATASETS = ("aniso", "corr10d-1e5", "corr10d-1e6")
ALL_DATASETS = ("blog", "far", "aniso", "10d-1e4", "10d-1e5", "10d-1e6",
                "50d-1e5", "corr10d-1e5", "corr10d-1e6")
QUICK_DATASETS = ("blog", "far", "aniso", "10d-1e4")
DIAG_METHODS = ("tfgmm", "tfgmm-sampled", "tfgmm-dp", "tfgmm-indep",
                "tfgmm-nan20", "tfgmm-w2", "GM(n_init=1)", "GM(n_init=5)",
                "BGM")
# The model options' rows (DP prior, independent prior, missing values,
# sample weights) run on DP_DATASETS only.
OPTION_METHODS = ("tfgmm-dp", "tfgmm-indep", "tfgmm-nan20", "tfgmm-w2")
MISSING_FRACTION = 0.2
FULL_METHODS = ("tfgmm-full", "GM-full(n_init=1)", "GM-full(n_init=5)",
                "BGM-full")
ALL_METHODS = DIAG_METHODS + FULL_METHODS
# Left out of --quick runs.
SLOW_METHODS = ("GM(n_init=5)", "GM-full(n_init=5)")
# The /GM1 column's denominator, per covariance type of the dataset.
BASELINES = {"diag": "GM(n_init=1)", "full": "GM-full(n_init=1)"}
# A component counts as effective when its (expected) weight is at least this.
EFFECTIVE_WEIGHT = 0.01
DP_WEIGHT_CONCENTRATION = 1.0
_CHUNK_ROWS = 65_536
_PROC_STATUS = "/proc/self/status"
_PROC_CLEAR_REFS = "/proc/self/clear_refs"
# --stream: sizes (full and --quick runs), epochs, rows per batch.
STREAM_SIZES = "1e6,1e7"
QUICK_STREAM_SIZES = "1e5,1e6"
STREAM_EPOCHS = 2
QUICK_STREAM_EPOCHS = 1
STREAM_BATCH_ROWS = 65_536
STREAM_MIXTURE_SEED = 107
STREAM_DATA_SEED = 1_000
STREAM_HELD_OUT = 100_000
STREAM_HELD_OUT_SEED = 7_107
STREAM_N_INIT = 5
STREAM_INIT_BATCHES = 4
# Targets: peak RSS growth at the largest N at most ratio x the smallest
# N's plus slack; |dLL| at the largest N at most STREAM_NATS.
STREAM_RSS_RATIO = 1.2
STREAM_RSS_SLACK_MB = 32
STREAM_NATS = 0.01


# ------------------------------------------------------------------ the data


@dataclasses.dataclass
class Mixture:
  """A Gaussian mixture: weights [K], means [K, D], covariances [K, D, D].

  `Mixture.diagonal` builds one from per-feature variances [K, D].
  """

  weights: np.ndarray
  means: np.ndarray
  covariances: np.ndarray

  def __post_init__(self):
    self.weights = np.asarray(self.weights, np.float64)
    self.means = np.asarray(self.means, np.float64)
    self.covariances = np.asarray(self.covariances, np.float64)
    k, d = self.means.shape
    if self.weights.shape != (k,) or self.covariances.shape != (k, d, d):
      raise ValueError(
          f"Expected weights [{k}] and covariances [{k}, {d}, {d}] for means "
          f"{self.means.shape}. Received: {self.weights.shape} and "
          f"{self.covariances.shape}.")
    # Lower Cholesky factors, [K, D, D]; raises unless positive definite.
    self.cholesky = np.linalg.cholesky(self.covariances)

  @classmethod
  def diagonal(cls, weights, means, variances):
    """A mixture with diagonal covariances diag(variances[k])."""
    variances = np.asarray(variances, np.float64)
    return cls(weights, means,
               variances[:, :, None] * np.eye(variances.shape[1]))

  @property
  def n_components(self):
    return self.weights.shape[0]

  @property
  def n_features(self):
    return self.means.shape[1]


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
    return self.mixture.n_components


def _joint_log_prob_chunk(x, mixture):
  """log(w_k N(x | mu_k, Sigma_k)) of a chunk of rows, float64 [C, K]."""
  from scipy import linalg  # pylint: disable=import-outside-toplevel
  x = np.asarray(x, np.float64)
  d = mixture.n_features
  diagonals = np.diagonal(mixture.cholesky, axis1=1, axis2=2)      # [K, D]
  log_norm = (np.log(mixture.weights) - np.log(diagonals).sum(1)
              - 0.5 * d * np.log(2.0 * np.pi))                     # [K]
  out = np.empty((x.shape[0], mixture.n_components))
  for k, (mean, chol) in enumerate(zip(mixture.means, mixture.cholesky)):
    # Mahalanobis distance through L^{-1} (x - mu): [D, C], never [C, K, D].
    white = linalg.solve_triangular(chol, (x - mean).T, lower=True,
                                    check_finite=False)
    out[:, k] = log_norm[k] - 0.5 * np.einsum("dc,dc->c", white, white)
  return out


def _chunks(n, chunk_rows):
  for start in range(0, n, chunk_rows):
    yield slice(start, min(start + chunk_rows, n))


def true_joint_log_prob(x, mixture, chunk_rows=_CHUNK_ROWS):
  """log(w_k N(x | mu_k, Sigma_k)) for every row and component, [N, K].

  Args:
    x: rows, float [N, D].
    mixture: the true `Mixture`.
    chunk_rows: rows per chunk of the computation.

  Returns:
    float64 [N, K].
  """
  x = np.asarray(x)
  return np.concatenate(
      [_joint_log_prob_chunk(x[rows], mixture)
       for rows in _chunks(x.shape[0], chunk_rows)]
      or [np.empty((0, mixture.n_components))])


def _reduce_chunks(x, mixture, reduce, dtype, chunk_rows):
  """reduce([C, K] joint log density) of each chunk, into one [N] array."""
  x = np.asarray(x)
  out = np.empty(x.shape[0], dtype)
  for rows in _chunks(x.shape[0], chunk_rows):
    out[rows] = reduce(_joint_log_prob_chunk(x[rows], mixture))
  return out


def true_log_prob(x, mixture, chunk_rows=_CHUNK_ROWS):
  """The true mixture's log density of each row, [N] float64 (logsumexp).

  Computed in chunks of `chunk_rows` rows: memory is O(chunk_rows * (K + D)).
  """
  return _reduce_chunks(x, mixture,
                        lambda joint: special.logsumexp(joint, axis=1),
                        np.float64, chunk_rows)


def true_posterior_labels(x, mixture, chunk_rows=_CHUNK_ROWS):
  """The true mixture's most probable component of each row, [N] int."""
  return _reduce_chunks(x, mixture, lambda joint: np.argmax(joint, axis=1),
                        np.int64, chunk_rows)


def _sample_mixture(mixture, n, rng):
  """n rows and labels drawn from a mixture: x = mu_k + L_k @ e, e ~ N(0, I).

  For a diagonal mixture L_k = diag(sqrt(var_k)), so the rows are the same
  numbers as mu_k + sqrt(var_k) * e.
  """
  labels = rng.choice(mixture.n_components, size=n, p=mixture.weights)
  noise = rng.standard_normal((n, mixture.n_features))
  x = np.empty_like(noise)
  for k, (mean, chol) in enumerate(zip(mixture.means, mixture.cholesky)):
    rows = labels == k
    x[rows] = mean + noise[rows] @ chol.T
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
  mixture = Mixture.diagonal(np.full(k, 1.0 / k), means, np.ones((k, d)))
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


def aniso_mixture():
  """The Gaussian mixture that scikit-learn's anisotropic blobs are from.

  make_blobs draws z ~ N(c_k, I) around centres c_k, and the example shears
  the rows as x = z @ A, so x ~ N(c_k @ A, A^T A); the three blobs have equal
  weights (500 rows each). The centres are make_blobs' first draw from its
  RandomState(170): uniform(-10, 10, size=(3, 2)).
  """
  centres = np.random.RandomState(ANISO_RANDOM_STATE).uniform(
      -10.0, 10.0, (3, 2))
  covariance = ANISO_SHEAR.T @ ANISO_SHEAR
  return Mixture(np.full(3, 1.0 / 3.0), centres @ ANISO_SHEAR,
                 np.broadcast_to(covariance, (3, 2, 2)))


def make_aniso_data(n_test=ANISO_HELD_OUT, seed=170):
  """scikit-learn's anisotropic 2-D example: three sheared blobs of 500.

  The training rows are exactly the example's: `make_blobs(n_samples=1500,
  random_state=170) @ ANISO_SHEAR`. The held-out rows are n_test draws from
  the equivalent Gaussian mixture (`aniso_mixture`), with generator `seed`.
  """
  from sklearn import datasets  # pylint: disable=import-outside-toplevel
  z, y_train, centres = datasets.make_blobs(
      n_samples=ANISO_ROWS, random_state=ANISO_RANDOM_STATE,
      return_centers=True)
  mixture = aniso_mixture()
  if not np.allclose(centres @ ANISO_SHEAR, mixture.means):
    raise RuntimeError("make_blobs(random_state=170) drew other centres than "
                       f"the example's: {centres.tolist()}.")
  x_test, y_test = _sample_mixture(mixture, n_test,
                                   np.random.default_rng(seed))
  return Dataset("aniso", mixture, z @ ANISO_SHEAR, y_train, x_test, y_test)


def random_mixture(n_features, n_components, mean_range, rng):
  """Means U(-r, r), variances U(0.5, 2) per feature, weights U(1, 4) normalised."""
  means = rng.uniform(-mean_range, mean_range, (n_components, n_features))
  variances = rng.uniform(0.5, 2.0, (n_components, n_features))
  weights = rng.uniform(1.0, 4.0, n_components)
  return Mixture.diagonal(weights / weights.sum(), means, variances)


def random_correlated_mixture(n_features, n_components, mean_range, rng):
  """Means U(-r, r), covariances B B^T / D + diag(U(0.2, 1)), weights U(1, 4).

  B is standard normal [D, D], so each covariance has unit-order variances
  (1.2 to 2 on average), eigenvalues from about 0.3 to 5 at D = 10 and
  correlations of typically 0.15 in absolute value, up to about 0.6.
  """
  d = n_features
  means = rng.uniform(-mean_range, mean_range, (n_components, d))
  b = rng.standard_normal((n_components, d, d))
  jitter = rng.uniform(0.2, 1.0, (n_components, d))
  covariances = (b @ b.transpose(0, 2, 1) / d
                 + jitter[:, :, None] * np.eye(d))
  weights = rng.uniform(1.0, 4.0, n_components)
  return Mixture(weights / weights.sum(), means, covariances)


def _sampled_dataset(name, mixture, n, rng):
  """n training rows of `mixture`; min(n, 200k) held-out rows."""
  x_train, y_train = _sample_mixture(mixture, n, rng)
  x_test, y_test = _sample_mixture(mixture, min(n, HELD_OUT_CAP), rng)
  return Dataset(name, mixture, x_train, y_train, x_test, y_test)


def make_blobs(name, n, n_features, n_components, mean_range, seed):
  """n training rows of a `random_mixture`; min(n, 200k) held-out rows."""
  rng = np.random.default_rng(seed)
  mixture = random_mixture(n_features, n_components, mean_range, rng)
  return _sampled_dataset(name, mixture, n, rng)


def make_correlated_blobs(name, n, n_features, n_components, mean_range,
                          seed):
  """n training rows of a `random_correlated_mixture`; min(n, 200k) held out.

  With D = K = 10 and mean_range 3 the true mixture's own held-out ARI is
  about 0.95-0.98 (0.968 for seed 1105 and 0.967 for 1106 on their held-out
  rows).
  """
  rng = np.random.default_rng(seed)
  mixture = random_correlated_mixture(n_features, n_components, mean_range,
                                      rng)
  return _sampled_dataset(name, mixture, n, rng)


DATASET_BUILDERS = {
    "blog": lambda: make_blog_data(seed=0),
    "far": lambda: make_far_data(seed=1),
    "aniso": make_aniso_data,
    "10d-1e4": lambda: make_blobs("10d-1e4", 10_000, 10, 10, 3.0, seed=104),
    "10d-1e5": lambda: make_blobs("10d-1e5", 100_000, 10, 10, 3.0, seed=105),
    "10d-1e6": lambda: make_blobs("10d-1e6", 1_000_000, 10, 10, 3.0,
                                  seed=106),
    "50d-1e5": lambda: make_blobs("50d-1e5", 100_000, 50, 20, 1.2, seed=505),
    "corr10d-1e5": lambda: make_correlated_blobs(
        "corr10d-1e5", 100_000, 10, 10, 3.0, seed=1105),
    "corr10d-1e6": lambda: make_correlated_blobs(
        "corr10d-1e6", 1_000_000, 10, 10, 3.0, seed=1106),
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
  """(log_prob, labels, effective count) functions of a `BayesianGMM`."""
  return (lambda x: np.asarray(model.log_prob(x), np.float64),
          lambda x: np.asarray(model.assign(x)),
          lambda: len(model.effective_components(EFFECTIVE_WEIGHT)))


def _fit_tfgmm_timed(data, n_components, **kwargs):
  """`tfgmm.fit` of the training rows, timing `initialize`: (model, info)."""
  import tfgmm  # pylint: disable=import-outside-toplevel
  init_times = []
  with _timed_initialization(init_times):
    model = tfgmm.fit(data.x_train, n_components, **kwargs)
  return model, dict(init_s=sum(init_times), iters=model.n_epochs,
                     converged=model.converged)


def fit_tfgmm(data, sampled_epochs, seed):
  """`tfgmm.fit` with its defaults (diagonal covariances)."""
  del sampled_epochs
  return _fit_tfgmm_timed(data, data.n_components, seed=seed)


def fit_tfgmm_full(data, sampled_epochs, seed):
  """`tfgmm.fit(covariance_type="full")`, otherwise its defaults."""
  del sampled_epochs
  return _fit_tfgmm_timed(data, data.n_components, seed=seed,
                          covariance_type="full")


def fit_tfgmm_dp(data, sampled_epochs, seed):
  """`tfgmm.fit` with 2 K components under a Dirichlet-process prior."""
  del sampled_epochs
  return _fit_tfgmm_timed(data, 2 * data.n_components, seed=seed,
                          weight_prior="dirichlet_process",
                          weight_concentration=DP_WEIGHT_CONCENTRATION)


def fit_tfgmm_independent(data, sampled_epochs, seed):
  """`tfgmm.fit` with the seed blog's independent prior on the means."""
  del sampled_epochs
  return _fit_tfgmm_timed(data, data.n_components, seed=seed,
                          mean_prior="independent")


def fit_tfgmm_missing(data, sampled_epochs, seed):
  """`tfgmm.fit(missing="marginalize")` with 20% of training entries NaN.

  Scored on the complete held-out rows, against the true mixture.
  """
  del sampled_epochs
  holes = data.x_train.copy()
  holes[np.random.default_rng(seed).random(holes.shape)
        < MISSING_FRACTION] = np.nan
  return _fit_tfgmm_timed(dataclasses.replace(data, x_train=holes),
                          data.n_components, seed=seed, missing="marginalize")


def fit_tfgmm_weighted(data, sampled_epochs, seed):
  """`tfgmm.fit` of every other training row with sample weight 2."""
  del sampled_epochs
  half = data.x_train[::2]
  return _fit_tfgmm_timed(dataclasses.replace(data, x_train=half),
                          data.n_components, seed=seed,
                          sample_weight=np.full(len(half), 2.0))


def fit_tfgmm_sampled(data, sampled_epochs, seed):
  """`tfgmm.fit(method="sampled")` with the seed blog's settings."""
  return _fit_tfgmm_timed(data, data.n_components, method="sampled",
                          batch_size=500, max_epochs=sampled_epochs,
                          seed=seed, **BLOG_PRIOR)


def _sklearn_fitter(bayesian, n_init=1, covariance_type="diag"):
  """A fitter of a scikit-learn mixture.

  GaussianMixture keeps scikit-learn's defaults (tol 1e-3, max_iter 100);
  the diagonal BayesianGaussianMixture runs up to 1000 iterations, the full
  one keeps the defaults (max_iter 100).
  """

  def fit(data, sampled_epochs, seed):
    del sampled_epochs
    from sklearn import mixture as sk_mixture  # pylint: disable=import-outside-toplevel
    if bayesian:
      extra = dict(max_iter=1000) if covariance_type == "diag" else {}
      model = sk_mixture.BayesianGaussianMixture(
          n_components=data.n_components, covariance_type=covariance_type,
          random_state=seed, **extra)
    else:
      model = sk_mixture.GaussianMixture(
          n_components=data.n_components, covariance_type=covariance_type,
          n_init=n_init, random_state=seed)
    model.fit(data.x_train)
    return model, dict(init_s=math.nan, iters=model.n_iter_,
                       converged=bool(model.converged_))

  return fit


def _sklearn_scorer(model):
  """(log_prob, labels, effective count) functions of a scikit-learn mixture."""
  return (model.score_samples, model.predict,
          lambda: int(np.sum(model.weights_ >= EFFECTIVE_WEIGHT)))


FITTERS = {
    "tfgmm": (fit_tfgmm, _tfgmm_scorer),
    "tfgmm-sampled": (fit_tfgmm_sampled, _tfgmm_scorer),
    "tfgmm-dp": (fit_tfgmm_dp, _tfgmm_scorer),
    "tfgmm-indep": (fit_tfgmm_independent, _tfgmm_scorer),
    "tfgmm-nan20": (fit_tfgmm_missing, _tfgmm_scorer),
    "tfgmm-w2": (fit_tfgmm_weighted, _tfgmm_scorer),
    "GM(n_init=1)": (_sklearn_fitter(False, 1), _sklearn_scorer),
    "GM(n_init=5)": (_sklearn_fitter(False, 5), _sklearn_scorer),
    "BGM": (_sklearn_fitter(True), _sklearn_scorer),
    "tfgmm-full": (fit_tfgmm_full, _tfgmm_scorer),
    "GM-full(n_init=1)": (_sklearn_fitter(False, 1, "full"), _sklearn_scorer),
    "GM-full(n_init=5)": (_sklearn_fitter(False, 5, "full"), _sklearn_scorer),
    "BGM-full": (_sklearn_fitter(True, covariance_type="full"),
                 _sklearn_scorer),
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
              k_eff=int(np.sum(data.mixture.weights >= EFFECTIVE_WEIGHT)),
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
  log_prob_fn, labels_fn, effective_fn = scorer(model)
  log_prob = log_prob_fn(data.x_test)
  result["mean_ll"] = float(np.mean(log_prob))
  result["ari"] = adjusted_rand(data.y_test, labels_fn(data.x_test))
  result["k_eff"] = effective_fn()
  result["finite"] = bool(np.isfinite(log_prob).all())
  return result


def covariance_type_of(name):
  """Returns "full" for a dataset in `FULL_DATASETS`, else "diag"."""
  return "full" if name in FULL_DATASETS else "diag"


def methods_for(name, methods):
  """The methods that run on dataset `name`, in order (tfgmm first).

  Diagonal datasets run the diagonal methods (tfgmm-sampled only on the
  small 2-D sets, the model options' rows only on 10d-1e5);
  full-covariance datasets run the full ones.
  """
  family = FULL_METHODS if covariance_type_of(name) == "full" else DIAG_METHODS
  return [m for m in methods if m in family
          and (m != "tfgmm-sampled" or name in SAMPLED_DATASETS)
          and (m not in OPTION_METHODS or name in DP_DATASETS)]


def run_dataset(name, methods, sampled_epochs, seed):
  """Builds dataset `name`, runs every method and returns its summary."""
  data = DATASET_BUILDERS[name]()
  truth = truth_row(data)
  rows = []
  for method in methods_for(name, methods):
    row = run_method(method, data, sampled_epochs, seed)
    print(f"  {name:11s} {method:17s} {row['fit_s']:8.2f} s", file=sys.stderr,
          flush=True)
    rows.append(row)
  covariance_type = covariance_type_of(name)
  baseline_method = BASELINES[covariance_type]
  baseline = next((r["fit_s"] for r in rows
                   if r["method"] == baseline_method), math.nan)
  for row in rows:
    row["ratio"] = row["fit_s"] / baseline
    row["d_ll"] = row["mean_ll"] - truth["mean_ll"]
    row["d_ari"] = row["ari"] - truth["ari"]
  n, d = data.x_train.shape
  return dict(name=name, n=n, d=d, k=data.n_components,
              covariance_type=covariance_type,
              n_test=data.x_test.shape[0], data_bytes=data.x_train.nbytes,
              truth=truth, rows=rows)


# ------------------------------------------------------------------ reports


COLUMNS = (
    ("dataset", "{}"), ("method", "{}"), ("fit s", "{:.3f}"),
    ("/GM1", "{:.2f}"), ("init s", "{:.3f}"), ("iters", "{}"),
    ("conv", "{}"), ("held-out LL", "{:.4f}"), ("dLL", "{:+.4f}"),
    ("ARI", "{:.4f}"), ("dARI", "{:+.4f}"), ("Keff", "{}"),
    ("peak MB", "{:.1f}"),
)
_KEYS = ("dataset", "method", "fit_s", "ratio", "init_s", "iters",
         "converged", "mean_ll", "d_ll", "ari", "d_ari", "k_eff", "peak_mb")


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
      f"covariances={s['covariance_type']} "
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


def _ll_time_detail(row, other, name):
  return (f"LL {row['mean_ll'] - other['mean_ll']:+.4f} vs {name} "
          f"(dLL {row['d_ll']:+.4f} vs {other['d_ll']:+.4f}), "
          f"t={row['fit_s']:.2f}s vs {other['fit_s']:.2f}s")


def _at_least_as_good_and_faster(row, other):
  """Held-out LL >= other's - 0.001 nats, in less time."""
  return (row["mean_ll"] >= other["mean_ll"] - 0.001
          and row["fit_s"] < other["fit_s"])


def evaluate_targets(summaries):
  """[(name, status, detail)] of the issue's targets."""
  gm1, gm5 = "GM(n_init=1)", "GM(n_init=5)"
  gmf5 = "GM-full(n_init=5)"
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
      # 1,500 rows: the prior's pull (nu0 = D, W0 = I in standardised
      # units, scikit-learn's default magnitude too) costs ~0.007 nats on
      # the sheared blobs' thin direction, so the bar is scikit-learn's own
      # Bayesian fit, not the truth.
      ("aniso: tfgmm-full |dARI|<=0.01, dLL >= BGM-full's - 0.001",
       "aniso", ["tfgmm-full", "BGM-full"],
       lambda r, o: (abs(r["d_ari"]) <= 0.01
                     and r["d_ll"] >= o["d_ll"] - 0.001),
       lambda r, o: (f"dLL={r['d_ll']:+.4f} vs BGM-full {o['d_ll']:+.4f}, "
                     f"dARI={r['d_ari']:+.4f}")),
  ]
  targets += [
      (f"{name}: tfgmm-full held-out LL >= {gmf5}'s - 0.001, t < {gmf5}",
       name, ["tfgmm-full", gmf5], _at_least_as_good_and_faster,
       lambda r, o: _ll_time_detail(r, o, gmf5))
      for name in ("corr10d-1e5", "corr10d-1e6")]
  results = [(title, *_target(summaries, dataset, needed, check, describe))
             for title, dataset, needed, check, describe in targets]
  results.append(_dp_target(summaries))
  results.append(_memory_target(summaries))
  results.append(_finite_target(summaries))
  return results


def _dp_target(summaries):
  """tfgmm-dp (2 K components, DP prior) keeps exactly the true K."""
  dataset = DP_DATASETS[0]
  title = (f"{dataset}: tfgmm-dp effective components (weight >= "
           f"{EFFECTIVE_WEIGHT}) == true K")
  row = _find(summaries, dataset, "tfgmm-dp")
  if row is None:
    return title, "SKIP", f"needs tfgmm-dp on {dataset}"
  k = next(s["k"] for s in summaries if s["name"] == dataset)
  status = "PASS" if row["k_eff"] == k else "FAIL"
  return title, status, (f"{row['k_eff']} of {2 * k} vs K={k}; "
                         f"dLL={row['d_ll']:+.4f} dARI={row['d_ari']:+.4f}")


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
      f"min(N, {HELD_OUT_CAP:,}) (aniso: {ANISO_HELD_OUT:,} from the "
      "equivalent Gaussian mixture); GM/GM-full tol and max_iter sklearn "
      "defaults, BGM max_iter=1000, BGM-full sklearn defaults "
      "(max_iter=100); tfgmm-dp: 2 K components, "
      f"weight_concentration={DP_WEIGHT_CONCENTRATION}",
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
        "GM(n_init=1)'s on the diagonal datasets, over GM-full(n_init=1)'s "
        f"on the full-covariance ones ({', '.join(FULL_DATASETS)}); "
        "init s: tfgmm initialisation (k-means++ restarts on a sample); "
        "iters: CAVI epochs after init (tfgmm) or EM iterations (sklearn); "
        f"Keff: components with (expected) weight >= {EFFECTIVE_WEIGHT}.")
  print()
  print(heading + "targets")
  print(format_targets(evaluate_targets(summaries), args.markdown))


# ------------------------------------------------------------------ streams
#
# `--stream`: the 10-D, K = 10 recipe ("10d-*") drawn on the fly through
# tf.data, never held in memory, fitted by the natural-gradient method on
# minibatches. Each size runs in a fresh subprocess (`--stream-worker`), so
# its peak RSS is its own.


def stream_mixture(seed=STREAM_MIXTURE_SEED):
  """The streamed mixture: the "10d-*" recipe (D = K = 10, means U(-3, 3))."""
  return random_mixture(10, 10, 3.0, np.random.default_rng(seed))


def _diagonal_stddevs(mixture):
  """sqrt of a diagonal mixture's variances, [K, D]; raises if not diagonal."""
  covariances = mixture.covariances
  variances = np.diagonal(covariances, axis1=1, axis2=2)
  if not np.array_equal(covariances,
                        variances[:, :, None] * np.eye(mixture.n_features)):
    raise ValueError("Expected a diagonal mixture to stream.")
  return np.sqrt(variances)


def make_stream(mixture, n, batch_rows, seed):
  """A `tf.data.Dataset` of n rows of `mixture`, drawn batch by batch.

  Batch i (batch_rows rows; the last may be smaller) is a function of
  (seed, i) only, through stateless random ops: labels from
  stateless_categorical with seed (seed, 2i), noise from stateless_normal
  with seed (seed, 2i + 1), x = mu_label + sigma_label * noise (float32).
  Every pass regenerates the same rows, and at most a few batches (the
  prefetch buffer) exist at any time.

  Returns:
    (dataset of float32 [B, D] batches with known cardinality, batches).
  """
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  n_batches = -(-n // batch_rows)
  log_weights = tf.constant(np.log(mixture.weights)[None], tf.float32)
  means = tf.constant(mixture.means, tf.float32)                  # [K, D]
  stddevs = tf.constant(_diagonal_stddevs(mixture), tf.float32)   # [K, D]
  d = mixture.n_features

  def batch(i):
    rows = tf.minimum(tf.constant(batch_rows, tf.int64),
                      tf.constant(n, tf.int64) - i * batch_rows)
    stream_seed = tf.constant(seed, tf.int64)
    labels = tf.random.stateless_categorical(
        log_weights, tf.cast(rows, tf.int32),
        seed=tf.stack([stream_seed, 2 * i]))[0]                   # [B]
    noise = tf.random.stateless_normal(
        tf.stack([rows, tf.constant(d, tf.int64)]),
        seed=tf.stack([stream_seed, 2 * i + 1]))                  # [B, D]
    return tf.gather(means, labels) + tf.gather(stddevs, labels) * noise

  dataset = (tf.data.Dataset.range(n_batches)
             .map(batch, num_parallel_calls=tf.data.AUTOTUNE)
             .prefetch(2))
  return dataset, n_batches


def stream_labels(mixture, n, batch_rows, seed):
  """The true labels of `make_stream`'s rows, int64 [n] (for tests)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  log_weights = tf.constant(np.log(mixture.weights)[None], tf.float32)
  return np.concatenate([
      tf.random.stateless_categorical(
          log_weights, min(batch_rows, n - i * batch_rows),
          seed=tf.constant([seed, 2 * i], tf.int64))[0].numpy()
      for i in range(-(-n // batch_rows))])


def _epoch_timer():
  """A Keras callback whose `seconds` lists each epoch's wall time."""
  import keras  # pylint: disable=import-outside-toplevel

  class EpochTimer(keras.callbacks.Callback):

    def __init__(self):
      super().__init__()
      self.seconds = []
      self._start = None

    def on_epoch_begin(self, epoch, logs=None):
      self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
      self.seconds.append(time.perf_counter() - self._start)

  return EpochTimer()


def fit_stream(mixture, n, *, epochs, batch_rows, seed, data_seed,
               n_init=STREAM_N_INIT, init_batches=STREAM_INIT_BATCHES):
  """Fits a `BayesianGMM` to `make_stream`'s n rows: (model, info).

  `initialize` reads only the stream's first `init_batches` batches (the
  standardisation's moments, and the first 10,000 rows for the k-means++
  restarts), told `num_examples=n`; then `model.fit(stream, epochs=epochs)`
  takes natural-gradient steps with tfgmm's default step size
  rho_t = max(B / N, (t + 2)^-0.7). (`tfgmm.fit` on a dataset would make a
  full pass for the standardisation first.)
  """
  import tfgmm  # pylint: disable=import-outside-toplevel
  stream, n_batches = make_stream(mixture, n, batch_rows, data_seed)
  model = tfgmm.BayesianGMM(mixture.n_components, mixture.n_features,
                            seed=seed)
  start = time.perf_counter()
  model.initialize(stream.take(init_batches), n_init=n_init, num_examples=n)
  init_s = time.perf_counter() - start
  timer = _epoch_timer()
  model.compile()
  model.fit(stream, epochs=epochs, verbose=0, callbacks=[timer])
  return model, dict(init_s=init_s, epoch_s=list(timer.seconds),
                     steps=int(model.natural_steps.numpy()),
                     n_batches=n_batches)


def run_stream_size(n, epochs, batch_rows, seed, n_init=STREAM_N_INIT):
  """Fits the stream of n rows in this process and scores it: a result dict.

  The held-out rows are drawn by numpy (`_sample_mixture`), independently of
  the tf.data generator. Memory: peak RSS growth over the RSS before the
  fit (`peak_memory_growth`), and the process's peak RSS (VmHWM) at the end.
  """
  mixture = stream_mixture()
  x_test, y_test = _sample_mixture(mixture, STREAM_HELD_OUT,
                                   np.random.default_rng(STREAM_HELD_OUT_SEED))
  true_ll = true_log_prob(x_test, mixture)
  result = dict(n=n, batch_rows=batch_rows, epochs=epochs,
                true_ll=float(true_ll.mean()),
                true_ari=adjusted_rand(
                    y_test, true_posterior_labels(x_test, mixture)),
                data_mb=n * mixture.n_features * 4 / 2**20)
  result["rss_before_mb"] = (_status_kb("VmRSS") or math.nan) / 1024.0
  with peak_memory_growth(result):
    start = time.perf_counter()
    model, info = fit_stream(mixture, n, epochs=epochs, batch_rows=batch_rows,
                             seed=seed, data_seed=STREAM_DATA_SEED + n,
                             n_init=n_init)
    result["total_s"] = time.perf_counter() - start
  result["peak_rss_mb"] = (_status_kb("VmHWM") or math.nan) / 1024.0
  result.update(info)
  result["epoch_mean_s"] = float(np.mean(info["epoch_s"]))
  log_prob = np.asarray(model.log_prob(x_test), np.float64)
  result["mean_ll"] = float(log_prob.mean())
  result["d_ll"] = result["mean_ll"] - result["true_ll"]
  result["ari"] = adjusted_rand(y_test, np.asarray(model.assign(x_test)))
  result["d_ari"] = result["ari"] - result["true_ari"]
  result["k_eff"] = len(model.effective_components(EFFECTIVE_WEIGHT))
  result["finite"] = bool(np.isfinite(log_prob).all())
  return result


_WORKER_MARK = "STREAM-RESULT "


def _stream_worker(args):
  """`--stream-worker N`: one size in this process, printed as one JSON line."""
  import json  # pylint: disable=import-outside-toplevel
  import_libraries()
  result = run_stream_size(args.stream_worker, args.stream_epochs,
                           args.stream_batch_rows, args.seed)
  print(_WORKER_MARK + json.dumps(result), flush=True)


def _run_stream_subprocess(n, args):
  """Runs one size in a fresh Python process; its result dict."""
  import json  # pylint: disable=import-outside-toplevel
  command = [sys.executable, os.path.abspath(__file__),
             "--stream-worker", str(n),
             "--stream-epochs", str(args.stream_epochs),
             "--stream-batch-rows", str(args.stream_batch_rows),
             "--seed", str(args.seed)]
  done = subprocess.run(command, capture_output=True, text=True, check=False)
  lines = [line for line in done.stdout.splitlines()
           if line.startswith(_WORKER_MARK)]
  if done.returncode != 0 or not lines:
    sys.stderr.write(done.stderr[-5000:])
    raise RuntimeError(f"The stream worker for N={n:,} failed "
                       f"(exit {done.returncode}).")
  return json.loads(lines[-1][len(_WORKER_MARK):])


def run_stream(args):
  """Runs every size of `args.stream_sizes`; their result dicts."""
  results = []
  for n in args.stream_sizes:
    if args.stream_in_process:
      import_libraries()
      result = run_stream_size(n, args.stream_epochs, args.stream_batch_rows,
                               args.seed)
    else:
      result = _run_stream_subprocess(n, args)
    print(f"  stream N={n:,}: {result['total_s']:.1f} s, dLL "
          f"{result['d_ll']:+.4f}, peak RSS {result['peak_rss_mb']:.0f} MB",
          file=sys.stderr, flush=True)
    results.append(result)
  return results


STREAM_COLUMNS = (
    ("N", "{:,}", "n"), ("batch", "{:,}", "batch_rows"),
    ("epochs", "{}", "epochs"), ("steps", "{}", "steps"),
    ("init s", "{:.1f}", "init_s"), ("s/epoch", "{:.1f}", "epoch_mean_s"),
    ("total s", "{:.1f}", "total_s"), ("data MB", "{:.0f}", "data_mb"),
    ("peak RSS MB", "{:.0f}", "peak_rss_mb"),
    ("RSS growth MB", "{:.0f}", "peak_mb"),
    ("held-out LL", "{:.4f}", "mean_ll"), ("dLL", "{:+.4f}", "d_ll"),
    ("ARI", "{:.4f}", "ari"), ("dARI", "{:+.4f}", "d_ari"),
    ("Keff", "{}", "k_eff"),
)


def format_stream_table(results, markdown):
  """The stream results as aligned text or Markdown."""
  header = [title for title, _, _ in STREAM_COLUMNS]
  cells = [[_cell(fmt, r.get(key)) for _, fmt, key in STREAM_COLUMNS]
           for r in results]
  if markdown:
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(["---:"] * len(header)) + "|"]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])
  widths = [max(len(r[i]) for r in [header] + cells)
            for i in range(len(header))]
  fmt = lambda row: "  ".join(  # noqa: E731
      c.rjust(w) for c, w in zip(row, widths))
  return "\n".join([fmt(header), "  ".join("-" * w for w in widths)]
                   + [fmt(row) for row in cells])


def _short(n):
  """1000000 -> "1e6", 20000 -> "2e4"; other counts with thousands commas."""
  exponent = len(str(n)) - 1
  mantissa, rest = divmod(n, 10**exponent)
  return f"{mantissa}e{exponent}" if rest == 0 and n >= 10 else f"{n:,}"


def evaluate_stream_targets(results):
  """[(name, status, detail)]: bounded RSS, accuracy at the largest N."""
  targets = []
  small, large = (min(results, key=lambda r: r["n"]),
                  max(results, key=lambda r: r["n"]))
  title = (f"RSS bounded: growth(N={_short(large['n'])}) <= "
           f"{STREAM_RSS_RATIO} x growth(N={_short(small['n'])}) + "
           f"{STREAM_RSS_SLACK_MB} MB")
  if len(results) < 2 or any(math.isnan(r["peak_mb"]) for r in results):
    targets.append((title, "SKIP", "needs two sizes and /proc (Linux)"))
  else:
    bound = STREAM_RSS_RATIO * small["peak_mb"] + STREAM_RSS_SLACK_MB
    targets.append((
        title, "PASS" if large["peak_mb"] <= bound else "FAIL",
        f"{large['peak_mb']:.0f} MB vs {bound:.0f} MB; peak RSS "
        f"{large['peak_rss_mb']:.0f} vs {small['peak_rss_mb']:.0f} MB; the "
        f"rows would take {large['data_mb']:.0f} MB as float32"))
  targets.append((
      f"N={_short(large['n'])}: |dLL| <= {STREAM_NATS} nats",
      "PASS" if abs(large["d_ll"]) <= STREAM_NATS else "FAIL",
      f"dLL={large['d_ll']:+.4f} dARI={large['d_ari']:+.4f}"))
  finite = all(r["finite"] and math.isfinite(r["mean_ll"]) for r in results)
  targets.append(("no NaN", "PASS" if finite else "FAIL",
                  "held-out log densities finite" if finite
                  else "NaN or infinity in a held-out log density"))
  return targets


def print_stream_report(args, revision, results):
  """Prints the stream run's header, table and targets."""
  heading = "## " if args.markdown else "== "
  bullet = "- " if args.markdown else ""
  print(heading + "tfgmm stream benchmark")
  for line in header_lines(args, revision)[:4]:
    print(bullet + line)
  truth = results[0]
  print(f"{bullet}run: {'quick' if args.quick else 'full'}; seed "
        f"{args.seed}; each size in "
        f"{'this process' if args.stream_in_process else 'a fresh process'}")
  print(f"{bullet}data: the 10d recipe (D=10, K=10, means U(-3,3), variances "
        "U(0.5,2), weights U(1,4) normalised; mixture seed "
        f"{STREAM_MIXTURE_SEED}) drawn on the fly by tf.data (stateless "
        "random ops seeded by (seed, batch index)), float32; held-out "
        f"{STREAM_HELD_OUT:,} rows drawn by numpy; true mixture held-out LL "
        f"{truth['true_ll']:.4f}, ARI {truth['true_ari']:.4f}")
  print(f"{bullet}fit: BayesianGMM(10, 10) natural-gradient SVI via "
        "model.fit(stream, epochs), default step size max(B/N, "
        f"(t+2)^-0.7); initialize(first {STREAM_INIT_BATCHES} batches, "
        f"n_init={STREAM_N_INIT}, num_examples=N)")
  print()
  print(heading + "results")
  print(format_stream_table(results, args.markdown))
  print()
  print("init s: initialize (moments of the first batches, k-means++ "
        "restarts); s/epoch: mean over the epochs (the first includes "
        "tracing); total s: init + epochs; data MB: what the N rows would "
        "take as float32; peak RSS MB: the whole process's peak RSS during "
        "the fit (VmHWM, reset before it; includes TensorFlow); RSS growth "
        "MB: that peak minus the RSS before the fit; dLL: held-out mean "
        "log-likelihood minus the true mixture's (nats); dARI: ARI minus "
        "the true mixture's; Keff: "
        f"components with expected weight >= {EFFECTIVE_WEIGHT}.")
  print()
  print(heading + "targets")
  print(format_targets(evaluate_stream_targets(results), args.markdown))


def parse_sizes(text):
  """ "1e6,1e7" -> [1000000, 10000000]: positive integers."""
  sizes = []
  for part in text.split(","):
    value = float(part)
    if not value >= 1 or value != int(value):
      raise argparse.ArgumentTypeError(
          f"Expected positive integer sizes. Received: {part!r}.")
    sizes.append(int(value))
  return sizes


def parse_args(argv=None):
  """The command line."""
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--quick", action="store_true",
                      help="smoke run: blog, far, aniso and 10d-1e4 only, "
                           "few sampled epochs, no GM(n_init=5) or "
                           "GM-full(n_init=5)")
  parser.add_argument("--datasets", nargs="+", choices=ALL_DATASETS,
                      help="datasets to run (default: all, or the quick "
                           "subset with --quick)")
  parser.add_argument("--methods", nargs="+", choices=ALL_METHODS,
                      help="methods to run where they apply: the "
                           "diagonal ones on diagonal datasets, the *-full "
                           "ones on full-covariance datasets (default: all)")
  parser.add_argument("--sampled-epochs", type=int, default=None,
                      help="max_epochs of the sampled method (default 1000, "
                           "20 with --quick)")
  parser.add_argument("--seed", type=int, default=0,
                      help="seed of every fit")
  parser.add_argument("--markdown", action="store_true",
                      help="print the report as Markdown")
  stream = parser.add_argument_group(
      "streams", "--stream: fit the 10-D, K=10 mixture drawn on the fly "
      "through tf.data (never held in memory); report time per epoch, peak "
      "RSS and held-out accuracy per size")
  stream.add_argument("--stream", action="store_true",
                      help="run the stream benchmark instead of the "
                           "datasets")
  stream.add_argument("--stream-sizes", type=parse_sizes, default=None,
                      help=f"comma-separated row counts (default "
                           f"{STREAM_SIZES}; {QUICK_STREAM_SIZES} with "
                           "--quick)")
  stream.add_argument("--stream-epochs", type=int, default=None,
                      help=f"epochs per size (default {STREAM_EPOCHS}; "
                           f"{QUICK_STREAM_EPOCHS} with --quick)")
  stream.add_argument("--stream-batch-rows", type=int,
                      default=STREAM_BATCH_ROWS,
                      help=f"rows per batch (default {STREAM_BATCH_ROWS:,})")
  stream.add_argument("--stream-in-process", action="store_true",
                      help="run every size in this process instead of a "
                           "fresh one each (faster start; the sizes then "
                           "share one process's memory)")
  stream.add_argument("--stream-worker", type=int, default=None,
                      help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.stream_sizes is None:
    args.stream_sizes = parse_sizes(QUICK_STREAM_SIZES if args.quick
                                    else STREAM_SIZES)
  if args.stream_epochs is None:
    args.stream_epochs = QUICK_STREAM_EPOCHS if args.quick else STREAM_EPOCHS
  if args.stream_epochs < 1 or args.stream_batch_rows < 1:
    parser.error("--stream-epochs and --stream-batch-rows must be >= 1")
  if args.datasets is None:
    args.datasets = QUICK_DATASETS if args.quick else ALL_DATASETS
  # Run in canonical order so that the tfgmm fit on the blog data comes first
  # (and aniso's is the first of the full model).
  args.datasets = [d for d in ALL_DATASETS if d in args.datasets]
  if args.methods is None:
    args.methods = [m for m in ALL_METHODS
                    if not (args.quick and m in SLOW_METHODS)]
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
  if args.stream_worker is not None:
    _stream_worker(args)
    return
  # The revision whose tfgmm this process imports (read before any fit).
  revision = _git_revision()
  if args.stream:
    print_stream_report(args, revision, run_stream(args))
    return
  import_libraries()
  summaries = [run_dataset(name, args.methods, args.sampled_epochs, args.seed)
               for name in args.datasets]
  print_report(args, revision, summaries)


if __name__ == "__main__":
  main()
