"""Data files as streamed `tf.data` pipelines: CSV shards, TFRecord, .npy.

`file_dataset` turns a path, a glob pattern or a list of them into a
dataset of [B, D] float64 batches that never holds the data whole:

- CSV (any suffix but .npy and .tfrecord): `tf.data.TextLineDataset` per
  file, decoded in batches by `tf.io.decode_csv`; a header is detected
  from the first file's first line (a line that does not parse as numbers)
  and skipped in every file; `columns` picks columns by name or index;
  empty cells are NaN (missing values, for `missing="marginalize"`).
- TFRecord (.tfrecord, .tfrecords): `tf.train.Example`s holding one float
  list feature (`feature`, default "x") of D values each.
- .npy: each file memory-mapped and read a batch at a time.
- Parquet (.parquet, .parq): read a row group batch at a time through
  pyarrow (the optional extra `pip install "tfgmm[parquet]"`); `columns`
  picks columns by name or index; nulls are NaN.

With `shuffle`, files are interleaved (`cycle_length` files read at once,
one batch of rows from each in turn) and rows pass through a shuffle
buffer of `shuffle_buffer` rows, reshuffled each epoch from `seed`. That is
weaker than `make_dataset`'s exact per-epoch permutation of an array: a row
can only move within a window of about `shuffle_buffer` rows of the
interleaved stream. Resuming a minibatch fit of files (`tfgmm.fit` with
`backup_dir`) is not supported; the exact full-data CAVI of files needs no
order at all (each epoch sums statistics over every row).

`RowCounter` shows a counting pass's progress on one line of stderr (the
summary pass and each exact CAVI pass of `tfgmm.fit(..., verbose=1)`).
"""

import glob
import os
import sys
import time

import numpy as np
import tensorflow as tf

_NPY = (".npy",)
_TFRECORD = (".tfrecord", ".tfrecords")
_PARQUET = (".parquet", ".parq")


class RowCounter:
  """A one-line count of the rows a pass has streamed, on stderr.

  Call it with each batch's row count; it rewrites its line at most every
  `every` seconds, and `close` ends the line with the total and the time.

  Args:
    label: what the pass is, e.g. "reading data" or "CAVI pass 3".
    stream: a text stream; None picks `sys.stderr` at each write.
    every: seconds between updates of the line.
  """

  def __init__(self, label, stream=None, every=1.0):
    self.label, self.rows = label, 0
    self._stream, self._every = stream, every
    self._started = self._shown = time.perf_counter()

  def _write(self, text):
    stream = sys.stderr if self._stream is None else self._stream
    stream.write(text)
    stream.flush()

  def __call__(self, rows):
    self.rows += int(rows)
    now = time.perf_counter()
    if now - self._shown >= self._every:
      self._shown = now
      self._write(f"\r{self.label}: {self.rows:,} rows")

  def close(self, suffix=""):
    """Ends the line: the total rows, the pass's seconds and `suffix`."""
    seconds = time.perf_counter() - self._started
    self._write(f"\r{self.label}: {self.rows:,} rows in {seconds:.1f} s"
                f"{suffix}\n")


def is_file_input(x):
  """Whether `x` names files: a str, a path-like, or a list of them."""
  if isinstance(x, (str, os.PathLike)):
    return True
  return (isinstance(x, (list, tuple)) and bool(x)
          and all(isinstance(p, (str, os.PathLike)) for p in x))


def resolve(patterns):
  """The sorted files a path, glob pattern or list of them names.

  Raises:
    ValueError: no file matches, or the files mix formats.
  """
  if isinstance(patterns, (str, os.PathLike)):
    patterns = [patterns]
  files = []
  for pattern in patterns:
    pattern = os.fspath(pattern)
    matched = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else (
        [pattern] if os.path.isfile(pattern) else [])
    if not matched:
      raise ValueError(f"Expected `x` to name existing files. Received: "
                       f"x={pattern!r}, which matches none.")
    files.extend(matched)
  kinds = {_kind(f) for f in files}
  if len(kinds) > 1:
    raise ValueError("Expected `x`'s files to share one format (CSV, "
                     f"TFRecord, .npy or Parquet). Received: "
                     f"{sorted(kinds)}.")
  return files


def _kind(path):
  lower = path.lower()
  if lower.endswith(_NPY):
    return "npy"
  if lower.endswith(_TFRECORD):
    return "tfrecord"
  if lower.endswith(_PARQUET):
    return "parquet"
  return "csv"


def is_parquet(path):
  """Whether a path names a Parquet file (by its suffix)."""
  return _kind(os.fspath(path)) == "parquet"


def _parquet():
  """pyarrow.parquet, or an ImportError that names the extra."""
  try:
    import pyarrow.parquet  # pylint: disable=import-outside-toplevel
  except ImportError:
    raise ImportError(
        "Reading Parquet files needs pyarrow: pip install "
        "\"tfgmm[parquet]\" (or pip install pyarrow).") from None
  return pyarrow.parquet


def _from_generator(batches, width):
  """A file's dataset of [B, width] float64 batches from `batches(path)`."""
  def read(path):
    return tf.data.Dataset.from_generator(
        batches, args=(path,),
        output_signature=tf.TensorSpec([None, width], tf.float64))
  return read


def _path(path):
  """A file name as `tf.data.Dataset.from_generator` passes it: str."""
  return path.decode() if isinstance(path, bytes) else path


def is_number(text):
  """Whether a CSV cell parses as a float."""
  try:
    float(text)
  except ValueError:
    return False
  return True


def _csv_layout(path, header, delimiter):
  """(names, has_header) from a CSV file's first line."""
  with open(path, encoding="utf-8-sig") as f:
    first = f.readline().rstrip("\r\n")
  if not first:
    raise ValueError(f"Expected CSV rows in {path!r}. Received: an empty "
                     "first line.")
  fields = [field.strip() for field in first.split(delimiter)]
  if header is None:
    header = not all(is_number(field) for field in fields)
  names = ([field or f"x{i}" for i, field in enumerate(fields)] if header
           else [f"x{i}" for i in range(len(fields))])
  return names, header


def column_indices(columns, names, has_header, source):
  """0-based indices of the selected columns (all when `columns` is None).

  Args:
    columns: None, or names (matched against a header) or 0-based indices,
      as ints or strings.
    names: the file's column names.
    has_header: whether `names` come from a header row.
    source: the file, as error messages name it.

  Raises:
    ValueError: an unknown name, an index out of range, a repeat.
  """
  if columns is None:
    return list(range(len(names)))
  index = []
  for token in columns:
    token = str(token).strip()
    if has_header and token in names:
      i = names.index(token)
    elif token.lstrip("-").isdigit():
      i = int(token)
      if not 0 <= i < len(names):
        raise ValueError(f"column index {i} is out of range: {source} has "
                         f"{len(names)} columns (0 to {len(names) - 1})")
    elif has_header:
      raise ValueError(f"unknown column {token!r}; {source} has columns "
                       + ", ".join(repr(name) for name in names))
    else:
      raise ValueError(f"unknown column {token!r}: {source} has no header "
                       "row, so select columns by 0-based index")
    if i in index:
      raise ValueError(f"column {token!r} is selected twice")
    index.append(i)
  return index


def _npy_width(path):
  array = np.load(path, mmap_mode="r", allow_pickle=False)
  if array.ndim not in (1, 2) or array.dtype.kind not in "biuf":
    raise ValueError(f"Expected numeric [N, D] arrays in the .npy files. "
                     f"Received: {path!r} of shape {array.shape} and dtype "
                     f"{array.dtype}.")
  return 1 if array.ndim == 1 else array.shape[1]


def _tfrecord_width(path, feature):
  for record in tf.data.TFRecordDataset(path).take(1):
    example = tf.train.Example.FromString(record.numpy())
    if feature not in example.features.feature:
      raise ValueError(
          f"Expected a float-list feature {feature!r} in {path!r}. "
          f"Received: features {sorted(example.features.feature)}.")
    return len(example.features.feature[feature].float_list.value)
  raise ValueError(f"Expected records in {path!r}. Received: none.")


def file_dataset(x, batch_size=1 << 16, *, columns=None, header=None,
                 delimiter=",", feature="x", shuffle=False, seed=None,
                 shuffle_buffer=1 << 16, cycle_length=4):
  """A streamed dataset of [B, D] float64 batches of data files.

  Args:
    x: a path, a glob pattern ("data/part-*.csv") or a list of them.
    batch_size: rows per batch.
    columns: CSV, .npy and Parquet: names (CSV header, Parquet schema) or
      0-based indices to keep.
    header: CSV: None detects it, True/False forces it.
    delimiter: CSV field separator, one character.
    feature: TFRecord: the float-list feature holding each row.
    shuffle: interleave the files and shuffle rows (minibatch training).
    seed: seed of the shuffles.
    shuffle_buffer: rows in the shuffle buffer.
    cycle_length: files read at once when shuffling.

  Returns:
    (dataset, names): the `tf.data.Dataset` and the D column names.

  Raises:
    ValueError: no files, mixed formats, unknown columns or features.
  """
  files = resolve(x)
  kind = _kind(files[0])
  if kind == "csv":
    names, has_header = _csv_layout(files[0], header, delimiter)
    index = column_indices(columns, names, has_header, repr(files[0]))
    defaults = [tf.constant(np.nan, tf.float64)] * len(index)

    def read(path):
      return tf.data.TextLineDataset(path).skip(int(has_header))

    def decode(lines):
      # Blank lines drop out here, a batch at a time (a per-line filter
      # would cost a tf.data step per row).
      lines = tf.boolean_mask(
          lines, tf.strings.length(tf.strings.strip(lines)) > 0)
      fields = tf.io.decode_csv(lines, defaults, field_delim=delimiter,
                                select_cols=index)
      return tf.stack(fields, 1)                                  # [B, D]
    names = [names[i] for i in index]
  elif kind == "tfrecord":
    if columns is not None:
      raise ValueError("`columns` applies to CSV, .npy and Parquet files, "
                       f"not TFRecord. Received: columns={columns!r}.")
    width = _tfrecord_width(files[0], feature)
    spec = {feature: tf.io.FixedLenFeature([width], tf.float32)}

    def read(path):
      return tf.data.TFRecordDataset(path)

    def decode(records):
      parsed = tf.io.parse_example(records, spec)[feature]
      return tf.cast(parsed, tf.float64)                          # [B, D]
    names = [f"x{i}" for i in range(width)]
  elif kind == "parquet":
    parquet = _parquet()
    names = list(parquet.read_schema(files[0]).names)
    index = column_indices(columns, names, True, repr(files[0]))
    names = [names[i] for i in index]

    def batches(path):
      for batch in parquet.ParquetFile(_path(path)).iter_batches(
          batch_size, columns=names):
        yield np.stack([np.asarray(column.to_numpy(zero_copy_only=False),
                                   np.float64)
                        for column in batch.columns], 1)         # [B, D]

    read, decode = _from_generator(batches, len(names)), None
  else:
    width = _npy_width(files[0])
    names = [f"x{i}" for i in range(width)]
    index = column_indices(columns, names, False, repr(files[0]))
    names = [names[i] for i in index]

    def batches(path):
      array = np.load(_path(path), mmap_mode="r", allow_pickle=False)
      array = array.reshape(len(array), -1)
      for start in range(0, len(array), batch_size):
        yield np.asarray(array[start:start + batch_size][:, index],
                         np.float64)

    read, decode = _from_generator(batches, len(index)), None
  paths = tf.data.Dataset.from_tensor_slices(files)
  if shuffle:
    paths = paths.shuffle(len(files), seed=seed,
                          reshuffle_each_iteration=True)
    rows = paths.interleave(read, cycle_length=cycle_length)
    rows = (rows.unbatch() if decode is None              # .npy, Parquet
            else rows.batch(1024).map(
                decode, num_parallel_calls=tf.data.AUTOTUNE).unbatch())
    dataset = rows.shuffle(shuffle_buffer, seed=seed,
                           reshuffle_each_iteration=True).batch(batch_size)
  else:
    rows = paths.flat_map(read)
    dataset = rows if decode is None else rows.batch(batch_size).map(
        decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  return dataset.prefetch(2), names
