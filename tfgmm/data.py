"""Input pipelines: minibatch datasets and one streaming pass over a dataset."""

import numpy as np
import tensorflow as tf

from tfgmm import _validation


def make_dataset(x, batch_size, *, shuffle=True, seed=None):
  """A `tf.data.Dataset` of [B, D] minibatches of `x` for `BayesianGMM.fit`.

  Rows are shuffled by index, never copied into a shuffle buffer, and each
  epoch's order is a function of (seed, epoch): a run resumed at epoch e with
  `keras.callbacks.BackupAndRestore` sees the same batches as an uninterrupted
  one. `BayesianGMM.fit` tells the dataset the epoch; iterated by hand, it
  moves on one epoch per pass.

  Args:
    x: array-like of shape (n_samples, n_features).
    batch_size: rows per batch, int >= 1 (the last batch may be smaller).
    shuffle: shuffle the rows each epoch.
    seed: int seed of the shuffles; None draws one.

  Returns:
    A dataset of float [B, D] batches with known cardinality.
  """
  batch_size = _validation.check_positive_int("batch_size", batch_size)
  data = _validation.check_data(x, dtype=None)
  n = data.shape[0]
  if seed is None:
    seed = int(np.random.default_rng().integers(2**31 - 1))
  seed = int(seed)
  epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
  rows = tf.constant(data)
  num_batches = -(-n // batch_size)

  def epoch_order(_):
    current = epoch.assign_add(1) - 1
    index = tf.range(n, dtype=tf.int64)
    if shuffle:
      index = tf.random.experimental.stateless_shuffle(
          index, seed=tf.stack([tf.constant(seed, tf.int64), current]))
    return tf.data.Dataset.from_tensor_slices(index)

  dataset = (tf.data.Dataset.range(1).flat_map(epoch_order)
             .batch(batch_size)
             .map(lambda index: tf.gather(rows, index),
                  num_parallel_calls=tf.data.AUTOTUNE)
             .apply(tf.data.experimental.assert_cardinality(num_batches))
             .prefetch(tf.data.AUTOTUNE))
  dataset._tfgmm_epoch = epoch  # pylint: disable=protected-access
  return dataset


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
    mean: per-feature mean, float64 [D].
    variance: per-feature (population) variance, float64 [D].
    sample: the first `sample_size` rows, float64 [n, D].
  """

  def __init__(self, num_examples, mean, variance, sample):
    self.num_examples = num_examples
    self.mean = mean
    self.variance = variance
    self.sample = sample


def summarize(data, n_features, sample_size, seed=None, name="x"):
  """One streaming float64 pass: row count, mean and variance, and a sample.

  Moments merge batch by batch (Chan, Golub and LeVeque 1983), so any size of
  data streams through in bounded memory. From an array, the sample is drawn
  at random; from a dataset, it is the first `sample_size` rows.

  Args:
    data: an array [N, D] or a `tf.data.Dataset` of [B, D] batches.
    n_features: D, the expected width.
    sample_size: rows to keep for initialisation.
    seed: seed of the random sample from an array.
    name: argument name for errors.

  Returns:
    A `DatasetSummary`.
  """
  if not isinstance(data, tf.data.Dataset):
    array = _validation.check_data(data, n_features, name, dtype=None)
    n = array.shape[0]
    mean = np.zeros(n_features)
    m2 = np.zeros(n_features)
    count = 0
    for start in range(0, n, 1 << 16):
      count, mean, m2 = _merge(count, mean, m2, array[start:start + (1 << 16)])
    rng = np.random.default_rng(seed)
    if n > sample_size:
      index = np.sort(rng.choice(n, sample_size, replace=False))
      sample = array[index].astype(np.float64)
    else:
      sample = array.astype(np.float64)
    return DatasetSummary(n, mean, m2 / n, sample)

  count, mean, m2 = 0, np.zeros(n_features), np.zeros(n_features)
  kept, kept_rows = [], 0
  for i, batch in enumerate(data):
    batch = unpack_batch(batch, name)
    try:
      array = _validation.check_data(batch, n_features, f"{name} (batch {i})",
                                     dtype=np.float64)
    except ValueError as error:
      raise ValueError(str(error)) from None
    count, mean, m2 = _merge(count, mean, m2, array)
    if kept_rows < sample_size:
      kept.append(array[:sample_size - kept_rows])
      kept_rows += kept[-1].shape[0]
  if count == 0:
    raise ValueError(f"Expected `{name}` to yield at least one row. "
                     "Received: an empty dataset.")
  return DatasetSummary(count, mean, m2 / count, np.concatenate(kept))


def _merge(count, mean, m2, batch):
  """Chan et al.'s merge of running (count, mean, M2) with a batch."""
  batch = np.asarray(batch, np.float64)
  n_b = batch.shape[0]
  if n_b == 0:
    return count, mean, m2
  mean_b = batch.mean(0)
  m2_b = np.square(batch - mean_b).sum(0)
  total = count + n_b
  delta = mean_b - mean
  mean = mean + delta * (n_b / total)
  m2 = m2 + m2_b + np.square(delta) * (count * n_b / total)
  return total, mean, m2


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
