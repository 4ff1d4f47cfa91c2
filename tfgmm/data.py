"""Input pipelines: minibatch datasets and one streaming pass over a dataset."""

import numpy as np
import tensorflow as tf

from tfgmm import _validation
from tfgmm import files as files_lib

# The default minibatch: min(N, MAX_BATCH) rows (`tfgmm.fit`, `BayesianGMM.fit`
# on arrays and the command line).
MAX_BATCH = 1 << 16
# Rows per step of an array's summary pass: a float64 chunk of 16384 x 10
# (1.3 MB) stays in cache through its several reductions; 65536-row chunks
# made the 1e6 x 10 pass about 3x slower on the development machine.
_SUMMARY_CHUNK = 1 << 14


def make_dataset(x, batch_size, *, shuffle=True, seed=None,
                 sample_weight=None, missing="error"):
  """A `tf.data.Dataset` of [B, D] minibatches of `x` for `BayesianGMM.fit`.

  Rows are shuffled by index, never copied into a shuffle buffer, and each
  epoch's order is a function of (seed, epoch): a run resumed at epoch e with
  `keras.callbacks.BackupAndRestore` sees the same batches as an uninterrupted
  one. `BayesianGMM.fit` tells the dataset the epoch; iterated by hand, it
  moves on one epoch per pass.

  Args:
    x: array-like of shape (n_samples, n_features), or data files (a path,
      glob pattern or list of them: CSV, TFRecord, .npy or Parquet shards),
      streamed by `tfgmm.files.file_dataset` (with `shuffle`, interleaved files and a
      shuffle buffer instead of an exact permutation; no epoch tracking).
    batch_size: rows per batch, int >= 1 (the last batch may be smaller).
    shuffle: shuffle the rows each epoch.
    seed: int seed of the shuffles; None draws one.
    sample_weight: optional non-negative weight per row, [N]; the batches
      are then (x, None, w) triples, which Keras reads as
      (x, y, sample_weight). A weight of 2 counts a row twice; 0 drops it.
    missing: "error" (NaN is an error) or "marginalize" (NaN entries are
      missing values, for a model built with the same setting).

  Returns:
    A dataset of float [B, D] batches (or (x, None, w) triples) with known
    cardinality.
  """
  batch_size = _validation.check_positive_int("batch_size", batch_size)
  missing = _validation.check_choice("missing", missing,
                                     ("error", "marginalize"))
  if files_lib.is_file_input(x):
    if sample_weight is not None:
      raise ValueError("`sample_weight` applies to an array `x`, not files. "
                       "Received: sample_weight of files.")
    return files_lib.file_dataset(x, batch_size, shuffle=shuffle,
                                  seed=seed)[0]
  data = _validation.check_data(x, dtype=None,
                                allow_nan=missing == "marginalize")
  n = data.shape[0]
  weights = _validation.check_sample_weight(sample_weight, n)
  shuffle = _validation.check_bool("shuffle", shuffle)
  seed = _validation.check_seed("seed", seed)
  if seed is None:
    seed = int(np.random.default_rng().integers(2**31 - 1))
  epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
  rows = tf.constant(data)
  num_batches = -(-n // batch_size)
  if weights is None:
    gather = lambda index: tf.gather(rows, index)  # noqa: E731
  else:
    weights = tf.constant(weights.astype(data.dtype))
    gather = lambda index: (tf.gather(rows, index), None,  # noqa: E731
                            tf.gather(weights, index))

  def epoch_order(_):
    current = epoch.assign_add(1) - 1
    index = tf.range(n, dtype=tf.int64)
    if shuffle:
      index = tf.random.experimental.stateless_shuffle(
          index, seed=tf.stack([tf.constant(seed, tf.int64), current]))
    return tf.data.Dataset.from_tensor_slices(index)

  dataset = (tf.data.Dataset.range(1).flat_map(epoch_order)
             .batch(batch_size)
             .map(gather, num_parallel_calls=tf.data.AUTOTUNE)
             .apply(tf.data.experimental.assert_cardinality(num_batches))
             .prefetch(tf.data.AUTOTUNE))
  # The epoch counter, for `BayesianGMM.fit` (its `EpochSeed` callback) and
  # for resuming: `dataset.tfgmm_epoch.assign(e)` replays epoch e next.
  dataset.tfgmm_epoch = epoch
  return dataset


def unpack_sample_weight(batch):
  """The sample weights of a dataset element (x, y, w), or None."""
  if isinstance(batch, (tuple, list)) and len(batch) == 3:
    return batch[2]
  return None


def unpack_batch(batch, name="x"):
  """The features of a dataset element: x, (x,), (x, y) or (x, y, w)."""
  if isinstance(batch, (tuple, list)):
    if not batch:
      raise ValueError(f"Expected `{name}` batches to hold features; got an "
                       "empty tuple.")
    batch = batch[0]
  if isinstance(batch, dict):
    raise TypeError(f"Expected `{name}` batches to be [B, D] tensors. Received "
                    f"a dict with keys {sorted(batch)}.")
  return batch


class DatasetSummary:
  """What one pass over a dataset tells: rows, per-feature moments, a sample.

  Attributes:
    num_examples: rows seen, int.
    total_weight: the sum of the sample weights (num_examples if none).
    mean: per-feature (weighted) mean, float64 [D].
    variance: per-feature (weighted, population) variance, float64 [D].
    sample: rows kept for initialisation, float64 [n, D].
    sample_weight: their weights, float64 [n], or None if unweighted.
    constant: whether each feature takes one value only, bool [D]. Its
      variance may still be a rounding residue (a column of 0.1 has a
      float64 mean that is not exactly 0.1); then `mean` is that value.
  """

  def __init__(self, num_examples, total_weight, mean, variance, sample,
               sample_weight, constant):
    self.num_examples = num_examples
    self.total_weight = total_weight
    self.mean = mean
    self.variance = variance
    self.sample = sample
    self.sample_weight = sample_weight
    self.constant = constant


def summarize(data, n_features, sample_size, seed=None, name="x",
              sample_weight=None, allow_nan=False, progress=None):
  """One streaming float64 pass: row count, mean and variance, and a sample.

  Moments merge batch by batch (Chan, Golub and LeVeque 1983, with weights),
  so any size of data streams through in bounded memory. From an array, the
  sample is drawn at random; from a dataset, by reservoir sampling (each
  row equally likely, whatever the order of the rows; all rows when there
  are at most `sample_size`). Sample weights come from `sample_weight` (arrays) or from the
  datasets' (x, y, w) elements.

  Args:
    data: an array [N, D] or a `tf.data.Dataset` of [B, D] batches.
    n_features: D, the expected width.
    sample_size: rows to keep for initialisation.
    seed: seed of the random sample from an array.
    name: argument name for errors.
    sample_weight: weights of an array's rows, [N], or None.
    allow_nan: NaN entries are missing values: the moments of each feature
      are over its observed entries.
    progress: None, or a callable given each dataset batch's row count
      (e.g. a `tfgmm.files.RowCounter`).

  Returns:
    A `DatasetSummary`.

  Raises:
    ValueError: a feature with no observed value (with `allow_nan`).
  """
  moments = _Moments(n_features)
  if not isinstance(data, tf.data.Dataset):
    array = _validation.check_data(data, n_features, name, dtype=None,
                                   allow_nan=allow_nan)
    n = array.shape[0]
    weights = _validation.check_sample_weight(sample_weight, n)
    for start in range(0, n, _SUMMARY_CHUNK):
      stop = start + _SUMMARY_CHUNK
      moments.add(array[start:stop],
                  None if weights is None else weights[start:stop])
    rng = np.random.default_rng(seed)
    index = (np.sort(rng.choice(n, sample_size, replace=False))
             if n > sample_size else np.arange(n))
    sample = array[index].astype(np.float64)
    kept_weights = None if weights is None else weights[index]
    return moments.summary(sample, kept_weights, name)

  if data.cardinality() == tf.data.INFINITE_CARDINALITY:
    raise ValueError(f"Expected `{name}` to be a finite dataset: its summary "
                     "pass reads every row. Received an infinite dataset "
                     "(e.g. one that repeats); pass `.take(n)` of it, and "
                     "`num_examples` if its rows stand for more.")
  # A reservoir sample (Vitter's algorithm R): every row is equally likely
  # to be kept whatever the order (sorted or clustered shards), in one pass.
  rng = np.random.default_rng(seed)
  sample = np.empty((sample_size, n_features))
  sample_weights = np.ones(sample_size)
  filled = seen = 0
  weighted = False
  for i, batch in enumerate(data):
    weights = unpack_sample_weight(batch)
    batch = unpack_batch(batch, name)
    try:
      array = _validation.check_data(batch, n_features, f"{name} (batch {i})",
                                     dtype=np.float64, allow_nan=allow_nan)
      if weights is not None:
        weights = _validation.check_sample_weight(
            weights, array.shape[0], f"sample_weight (batch {i})")
    except ValueError as error:
      raise ValueError(str(error)) from None
    weighted |= weights is not None
    if weights is None and weighted:
      weights = np.ones(array.shape[0])
    moments.add(array, weights)
    rows = array.shape[0]
    if progress is not None:
      progress(rows)
    w = np.ones(rows) if weights is None else weights
    take = min(sample_size - filled, rows)
    sample[filled:filled + take] = array[:take]
    sample_weights[filled:filled + take] = w[:take]
    filled += take
    if take < rows:                      # row t replaces slot j ~ U{0..t}
      slots = rng.integers(0, seen + np.arange(take, rows) + 1)
      keep = slots < sample_size
      sample[slots[keep]] = array[take:][keep]
      sample_weights[slots[keep]] = w[take:][keep]
    seen += rows
  if moments.rows == 0:
    raise ValueError(f"Expected `{name}` to yield at least one row. "
                     "Received: an empty dataset.")
  return moments.summary(sample[:filled],
                         sample_weights[:filled] if weighted else None, name)


def _column_reduce(ufunc, batch, block=64):
  """ufunc.reduce over the rows of [b, D], per column: [D].

  Reducing a narrow C-ordered array down its rows runs D values at a time;
  viewing `block` rows as one row of block * D values first lets the
  reduction run wide, then folds the block (about 16x faster for D = 10,
  the same values: min and max are exact in any order).
  """
  rows, d = batch.shape
  whole = rows - rows % block
  parts = [ufunc.reduce(batch[whole:], axis=0)] if whole < rows else []
  if whole:
    wide = ufunc.reduce(batch[:whole].reshape(-1, block * d), axis=0)
    parts.append(ufunc.reduce(wide.reshape(block, d), axis=0))
  return ufunc.reduce(np.stack(parts), axis=0)


class _Moments:
  """Running weighted count, mean and M2 per feature (Chan et al. 1983).

  NaN entries are skipped: each feature's moments are over its observed
  entries. The smallest and largest observed value of each feature (rows
  of positive weight) tell constant features apart from rounding residues.
  """

  def __init__(self, n_features):
    self.rows = 0
    self.weighted = False
    self._total_weight = 0.0
    self.count = np.zeros(n_features)
    self.mean = np.zeros(n_features)
    self.m2 = np.zeros(n_features)
    self.low = np.full(n_features, np.inf)
    self.high = np.full(n_features, -np.inf)

  def add(self, batch, weights=None):
    """Merges a batch [b, D] with optional weights [b]."""
    batch = np.asarray(batch, np.float64)
    self.rows += batch.shape[0]
    if batch.shape[0] == 0:
      return
    if weights is None:
      weights = np.ones(batch.shape[0])
    else:
      self.weighted = True
    self._total_weight += weights.sum()
    if not np.isnan(batch.sum()) and (weights > 0).all():
      # Fast path (no NaN, every row counted): no masks.
      self.low = np.minimum(self.low, _column_reduce(np.minimum, batch))
      self.high = np.maximum(self.high, _column_reduce(np.maximum, batch))
      n_b = np.full(batch.shape[1], weights.sum())                # [D]
      mean_b = weights @ batch / n_b                              # [D]
      m2_b = weights @ np.square(batch - mean_b)                  # [D]
    else:
      observed = ~np.isnan(batch)                                 # [b, D]
      filled = np.where(observed, batch, 0.0)
      counted = observed & (weights > 0)[:, None]                 # [b, D]
      self.low = np.minimum(self.low, _column_reduce(
          np.minimum, np.where(counted, batch, np.inf)))
      self.high = np.maximum(self.high, _column_reduce(
          np.maximum, np.where(counted, batch, -np.inf)))
      n_b = weights @ observed                                    # [D]
      if not n_b.any():
        return
      mean_b = weights @ filled / np.where(n_b > 0, n_b, 1.0)     # [D]
      m2_b = weights @ np.where(observed, np.square(filled - mean_b), 0.0)
    total = self.count + n_b
    delta = mean_b - self.mean
    share = np.where(total > 0, n_b / np.where(total > 0, total, 1.0), 0.0)
    self.mean = self.mean + delta * share
    self.m2 = self.m2 + m2_b + np.square(delta) * self.count * share
    self.count = total

  def summary(self, sample, sample_weight, name="x"):
    unseen = np.flatnonzero(self.count == 0)
    if self.rows and unseen.size:
      raise ValueError(f"Expected every feature of `{name}` to be observed "
                       f"at least once. Received: feature {int(unseen[0])} "
                       "is missing (NaN) in every row.")
    total = float(self._total_weight)
    constant = self.low == self.high                              # [D]
    return DatasetSummary(self.rows, total if self.weighted else self.rows,
                          np.where(constant, self.low, self.mean),
                          self.m2 / np.where(self.count > 0, self.count, 1.0),
                          sample, sample_weight if self.weighted else None,
                          constant)


def standardized_tensor(x, loc, scale, dtype, chunk=1 << 16):
  """(x - loc) / scale as a tensor of `dtype`, in one allocation.

  The arithmetic runs in float64 chunk by chunk, writing into a 64-byte
  aligned buffer that the tensor then shares through DLPack (no second copy):
  the data's standardised copy is the only [N, D] allocation of a fit.

  Args:
    x: a validated array [N, D].
    loc, scale: float64 [D].
    dtype: "float32" or "float64".
    chunk: rows per step.

  Returns:
    A [N, D] tensor.
  """
  dtype = np.dtype(dtype)
  n, d = x.shape
  size = n * d * dtype.itemsize
  buffer = np.empty(size + 64, np.uint8)
  offset = (-buffer.ctypes.data) % 64
  z = buffer[offset:offset + size].view(dtype).reshape(n, d)
  for start in range(0, n, chunk):
    rows = np.asarray(x[start:start + chunk], np.float64)
    np.divide(rows - loc, scale, out=z[start:start + chunk], casting="unsafe")
  return tf.experimental.dlpack.from_dlpack(z.__dlpack__())
