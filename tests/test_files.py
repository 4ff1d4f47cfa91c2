"""Data files as input: CSV shards, TFRecord and .npy, streamed."""

import io
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import tensorflow as tf

import tfgmm
from tfgmm import api
from tfgmm import data as data_lib
from tfgmm import families
from tfgmm import files as files_lib


def _clusters(n=3000, seed=0):
  rng = np.random.default_rng(seed)
  x = np.concatenate([rng.normal(-4, 1, (n, 3)), rng.normal(4, 1, (n, 3)),
                      rng.normal([0, 8, 0], 1, (n, 3))])
  return x[np.argsort(x[:, 0])]        # sorted: shards hold different parts


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
  """The same sorted rows as 3 CSV and 3 Parquet (each with an extra text
  column), 3 .npy and 2 TFRecord shards."""
  tmp = tmp_path_factory.mktemp("shards")
  x = _clusters()
  for i, part in enumerate(np.array_split(x, 3)):
    lines = ["id,a,b,c"] + [f"r{j}," + ",".join(f"{v:.17g}" for v in row)
                            for j, row in enumerate(part)]
    (tmp / f"part-{i}.csv").write_text("\n".join(lines) + "\n")
    np.save(tmp / f"part-{i}.npy", part)
    pq.write_table(pa.table({"id": [f"r{j}" for j in range(len(part))],
                             "a": part[:, 0], "b": part[:, 1],
                             "c": part[:, 2]}),
                   tmp / f"part-{i}.parquet", row_group_size=400)
  for i, part in enumerate(np.array_split(x, 2)):
    with tf.io.TFRecordWriter(str(tmp / f"part-{i}.tfrecord")) as writer:
      for row in part:
        example = tf.train.Example(features=tf.train.Features(feature={
            "x": tf.train.Feature(float_list=tf.train.FloatList(
                value=row))}))
        writer.write(example.SerializeToString())
  return tmp, x


CSV = dict(file_options=dict(columns=["a", "b", "c"]))


def test_streamed_cavi_is_the_in_memory_cavi(shards):
  """From the same start, CAVI over streamed CSV shards takes the same
  steps as CAVI on the rows in memory."""
  tmp, x = shards
  stream, names = files_lib.file_dataset(str(tmp / "part-*.csv"), 1000,
                                         columns=["a", "b", "c"])
  assert names == ["a", "b", "c"]
  models = []
  for _ in range(2):
    model = tfgmm.BayesianGMM(3, 3, seed=0, dtype="float64")
    model.initialize(x, n_init=1, max_iter=2)
    models.append(model)
  api._fit_cavi(models[0], x, 30, 1e-9)                  # pylint: disable=protected-access
  api._cavi_streamed(models[1], stream, 30, 1e-9)        # pylint: disable=protected-access
  assert models[0].n_epochs == models[1].n_epochs
  for a, b in zip(models[0].posterior(), models[1].posterior()):
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-8, atol=1e-10)
  np.testing.assert_allclose(models[0].training_history["loss"],
                             models[1].training_history["loss"], rtol=1e-9)


def test_verbose_passes_count_their_rows_and_print_the_bound(shards,
                                                               capsys):
  """verbose=1: the summary pass and each CAVI pass count the rows on
  stderr, and each CAVI pass ends with the bound the history records."""
  tmp, x = shards
  model = tfgmm.fit(str(tmp / "part-*.npy"), 3, seed=0, verbose=1)
  err = capsys.readouterr().err
  assert f"reading the files: {x.shape[0]:,} rows in" in err, err
  passes = [line.rsplit("\r", 1)[-1] for line in err.splitlines()
            if "CAVI pass" in line]
  assert len(passes) == model.n_epochs, err
  for i, line in enumerate(passes):
    assert line.startswith(f"CAVI pass {i + 1}: {x.shape[0]:,} rows in"), line
  bound = float(passes[-1].split("bound ")[1].split()[0])
  assert bound == pytest.approx(-model.training_history["loss"][-1],
                                abs=2e-6)


def test_row_counter_updates_one_line_and_ends_it():
  out = io.StringIO()
  counter = files_lib.RowCounter("pass", stream=out, every=0.0)
  counter(1000)
  counter(2500)
  counter.close(", done")
  text = out.getvalue()
  assert text.startswith("\rpass: 1,000 rows\rpass: 3,500 rows\r"), text
  assert text.endswith(", done\n") and text.count("\n") == 1, text
  quiet = io.StringIO()
  counter = files_lib.RowCounter("pass", stream=quiet, every=3600.0)
  counter(10)
  assert quiet.getvalue() == ""


@pytest.mark.parametrize("pattern, options", [
    ("part-*.csv", CSV["file_options"]),
    ("part-*.npy", None),
    ("part-*.tfrecord", None),
    ("part-*.parquet", CSV["file_options"]),
])
def test_every_format_reaches_the_in_memory_fit(shards, pattern, options):
  tmp, x = shards
  model = tfgmm.fit(str(tmp / pattern), 3, seed=0, file_options=options)
  reference = tfgmm.fit(x, 3, seed=0)
  assert model.num_examples.numpy() == len(x)
  # TFRecord holds float32 values: its bound differs by that rounding.
  np.testing.assert_allclose(float(model.elbo(x)), float(reference.elbo(x)),
                             rtol=1e-5)
  assert model.converged


def test_a_minibatch_fit_of_files_shuffles_across_shards(shards):
  tmp, x = shards
  model = tfgmm.fit([str(tmp / "part-0.npy"), str(tmp / "part-[12].npy")],
                    3, seed=0, batch_size=1000, max_epochs=30)
  reference = tfgmm.fit(x, 3, seed=0)
  assert float(model.elbo(x)) / len(x) > float(reference.elbo(x)) / len(x) - 2e-3


def test_a_minibatch_fit_of_files_judges_polish_on_all_rows(tmp_path,
                                                            monkeypatch):
  """Files trained by `model.fit` (a `batch_size`) get the polish moves
  after training, judged by a pass over the files (`api._train_and_move`):
  12,000 rows are more than the search's sample. A move that copies
  component 0 onto component 1 (CAVI keeps twins together) ends lower on
  all rows and is undone: the fit is, bit for bit, the one without it."""
  from tfgmm import initialization
  x = _clusters(4000)
  for i, part in enumerate(np.array_split(x, 2)):
    np.save(tmp_path / f"part-{i}.npy", part)
  calls = []

  def no_moves(*args):
    calls.append("polish")

  def twins(family, prior, weight_prior, n_components, search_, q):
    calls.append("polish")
    return type(q)(*[tf.concat([t[:1], t[:1], t[2:]], 0) for t in q])

  fits = []
  for polish in (no_moves, twins):
    monkeypatch.setattr(initialization, "polish", polish)
    fits.append(tfgmm.fit(str(tmp_path / "part-*.npy"), 3, seed=0,
                          batch_size=2000, dtype="float64"))
  assert calls == ["polish", "polish"]
  plain, undone = fits
  assert undone.n_epochs == plain.n_epochs
  for a, b in zip(plain.posterior(), undone.posterior()):
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_make_dataset_of_files_yields_every_row_once(shards):
  tmp, x = shards
  dataset = tfgmm.make_dataset(str(tmp / "part-*.npy"), 500, seed=1)
  rows = np.concatenate([b.numpy() for b in dataset])
  assert rows.shape == x.shape
  assert not np.array_equal(rows, x)                    # shuffled
  np.testing.assert_array_equal(rows[np.lexsort(rows.T)], x[np.lexsort(x.T)])


def test_the_initialisation_sample_is_uniform_over_sorted_shards(shards):
  """A reservoir sample: sorted shards do not bias it (the first 10,000
  rows of these files hold none of the third cluster's high feature 0)."""
  tmp, x = shards
  stream, _ = files_lib.file_dataset(str(tmp / "part-*.npy"), 1000)
  summary = data_lib.summarize(stream, 3, 2000, seed=0)
  assert summary.sample.shape == (2000, 3)
  se = x.std(0) / np.sqrt(2000)
  assert np.all(np.abs(summary.sample.mean(0) - x.mean(0)) < 4 * se)
  np.testing.assert_allclose(summary.mean, x.mean(0), rtol=1e-10)


@pytest.mark.parametrize("x, kwargs, error, match", [
    ("nothing-*.csv", {}, ValueError, "matches none"),
    (["part-0.csv", "part-0.npy"], {}, ValueError, "one format"),
    ("part-*.csv", dict(file_options=dict(columns=["z"])), ValueError,
     r"unknown column 'z'; .*part-0.csv' has columns 'id', 'a'"),
    ("part-*.csv", {}, ValueError, "Cannot read `x`"),   # the text column
    ("part-*.npy", dict(sample_weight=np.ones(3)), ValueError,
     "sample_weight"),
    ("part-*.tfrecord", dict(file_options=dict(feature="y")), ValueError,
     "feature 'y'"),
    ("part-*.parquet", dict(file_options=dict(columns=["a", "z"])),
     ValueError, r"unknown column 'z'; .*part-0.parquet' has columns 'id'"),
    (["part-0.parquet", "part-0.npy"], {}, ValueError, "one format"),
])
def test_bad_file_inputs(shards, monkeypatch, x, kwargs, error, match):
  monkeypatch.chdir(shards[0])
  with pytest.raises(error, match=match):
    tfgmm.fit(x, 3, seed=0, **kwargs)


def test_parquet_nulls_are_missing_values_and_batches_cross_row_groups(
    tmp_path):
  """Nulls read as NaN (for `missing="marginalize"`), integer columns as
  floats; batches are cut by `batch_size`, not by the row groups."""
  path = tmp_path / "d.parquet"
  pq.write_table(pa.table({"u": pa.array([1.5, None, 3.0, 4.0, 5.0]),
                           "v": pa.array([1, 2, None, 4, 5], pa.int64())}),
                 path, row_group_size=2)
  dataset, names = files_lib.file_dataset(str(path), 3)
  assert names == ["u", "v"]
  batches = [b.numpy() for b in dataset]
  assert [b.shape for b in batches] == [(3, 2), (2, 2)]
  np.testing.assert_array_equal(
      np.concatenate(batches),
      [[1.5, 1], [np.nan, 2], [3, np.nan], [4, 4], [5, 5]])
  dataset, names = files_lib.file_dataset(str(path), 8, columns=[1])
  assert names == ["v"]


def test_parquet_without_pyarrow_names_the_extra(shards, monkeypatch):
  monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
  with pytest.raises(ImportError, match=r"tfgmm\[parquet\]"):
    files_lib.file_dataset(str(shards[0] / "part-*.parquet"))


@pytest.mark.parametrize("covariance_type", families.COVARIANCE_TYPES)
def test_every_covariance_type_streams_to_the_in_memory_fit(shards,
                                                            covariance_type):
  """The streamed exact CAVI of files is the in-memory fit for each
  covariance type: the same start (the same reservoir of all 3,000 rows),
  the same steps, the same bound."""
  tmp, x = shards
  model = tfgmm.fit(str(tmp / "part-*.npy"), 3, seed=0,
                    covariance_type=covariance_type, dtype="float64")
  reference = tfgmm.fit(x, 3, seed=0, covariance_type=covariance_type,
                        dtype="float64")
  assert model.covariance_type == covariance_type
  assert model.n_epochs == reference.n_epochs
  np.testing.assert_allclose(float(model.elbo(x)), float(reference.elbo(x)),
                             rtol=1e-8)
