"""Data pipelines: tf.data minibatches, streaming summaries (bad input is in
test_bad_input.py)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfgmm
from tfgmm import api
from tfgmm import data as data_lib


def test_make_dataset_order_depends_on_seed_and_epoch_only():
  x = np.arange(40, dtype=np.float32).reshape(20, 2)

  def epochs(dataset, n):
    return [np.concatenate([b.numpy() for b in dataset])[:, 0] for _ in range(n)]

  first = epochs(tfgmm.make_dataset(x, 6, seed=5), 3)
  again = epochs(tfgmm.make_dataset(x, 6, seed=5), 3)
  for a, b in zip(first, again):
    np.testing.assert_array_equal(a, b)
  assert not np.array_equal(first[0], first[1])
  for order in first:
    np.testing.assert_array_equal(np.sort(order), x[:, 0])
  # Told the epoch (as fit does), a fresh dataset replays that epoch's order.
  resumed = tfgmm.make_dataset(x, 6, seed=5)
  resumed.tfgmm_epoch.assign(2)
  np.testing.assert_array_equal(epochs(resumed, 1)[0], first[2])
  unshuffled = tfgmm.make_dataset(x, 6, shuffle=False)
  np.testing.assert_array_equal(epochs(unshuffled, 1)[0], x[:, 0])
  assert int(tf.data.experimental.cardinality(unshuffled)) == 4


def test_streaming_summary_matches_numpy_in_float64():
  rng = np.random.default_rng(3)
  x = rng.normal(1e6, 1e-3, (5000, 3))
  dataset = tf.data.Dataset.from_tensor_slices(x).batch(333)
  summary = data_lib.summarize(dataset, 3, sample_size=1000)
  assert summary.num_examples == 5000
  np.testing.assert_allclose(summary.mean, x.mean(0), rtol=1e-14)
  np.testing.assert_allclose(summary.variance, x.var(0), rtol=1e-7)
  # A reservoir sample (it was the first 1,000 rows before files could be
  # sorted shards): 1,000 distinct rows of x, drawn from all of it.
  rows = {tuple(row) for row in x}
  assert len({tuple(row) for row in summary.sample}) == 1000
  assert all(tuple(row) in rows for row in summary.sample)
  positions = np.flatnonzero(np.isin(x[:, 0], summary.sample[:, 0]))
  assert positions.max() > 4000 and positions.min() < 1000


def test_array_summary_over_several_chunks_matches_numpy():
  """An array longer than the summary's chunk, with weights and NaN: the
  merged chunk moments equal numpy's over all rows."""
  rng = np.random.default_rng(8)
  n = 2 * data_lib._SUMMARY_CHUNK + 1234
  x = rng.normal(50.0, 2.0, (n, 3))
  w = rng.uniform(0.5, 2.0, n)
  summary = data_lib.summarize(x, 3, 500, sample_weight=w)
  assert summary.num_examples == n
  mean = w @ x / w.sum()
  np.testing.assert_allclose(summary.mean, mean, rtol=1e-13)
  np.testing.assert_allclose(summary.variance,
                             w @ np.square(x - mean) / w.sum(), rtol=1e-9)
  x[rng.uniform(size=x.shape) < 0.1] = np.nan
  summary = data_lib.summarize(x, 3, 500, allow_nan=True)
  np.testing.assert_allclose(summary.mean, np.nanmean(x, 0), rtol=1e-13)
  np.testing.assert_allclose(summary.variance, np.nanvar(x, 0), rtol=1e-9)


def test_fit_on_a_dataset_matches_fit_on_the_array():
  rng = np.random.default_rng(4)
  x = np.concatenate([rng.normal(-3, 1, (300, 2)), rng.normal(3, 1, (300, 2))])
  from_array = tfgmm.fit(x, 2, seed=1, batch_size=600, max_epochs=20)
  from_dataset = tfgmm.fit(tfgmm.make_dataset(x, 600, seed=1), 2, seed=1,
                           max_epochs=20)
  np.testing.assert_allclose(from_array.log_prob(x), from_dataset.log_prob(x),
                             rtol=1e-4)


def three_blobs(n=6_000, seed=7):
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, 3, n)
  x = np.array([[0.0, 0.0], [4.0, 1.0], [1.0, 5.0]])[labels]
  return x + rng.standard_normal((n, 2)) * [1.0, 0.7], labels


def test_streamed_cavi_of_weighted_batches_is_the_weighted_array_fit():
  """`api._cavi_streamed` reads the sample weights of (x, None, w)
  elements: from the same initialised model, float64, it takes the steps of
  the weighted fit of the rows in memory (`api._fit_cavi`), moves on all
  rows included (the search sample, 1,000 rows, is smaller than the data).
  Before, it counted every row once."""
  x, _ = three_blobs()
  w = np.random.default_rng(0).uniform(0.0, 2.0, len(x))
  models = []
  for _ in range(2):
    model = tfgmm.BayesianGMM(4, 2, seed=1, dtype="float64")
    model.initialize(x, sample_weight=w, sample_size=1_000)
    models.append(model)
  api._fit_cavi(models[0], x, 300, 1e-7, w)  # pylint: disable=protected-access
  api._cavi_streamed(  # pylint: disable=protected-access
      models[1], tfgmm.make_dataset(x, 700, seed=0, sample_weight=w), 300,
      1e-7)
  assert models[0].n_epochs == models[1].n_epochs > 2
  for a, b in zip(models[0].posterior(), models[1].posterior()):
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-9)
  for key in ("loss", "expected_log_likelihood", "kl"):
    np.testing.assert_allclose(models[0].training_history[key],
                               models[1].training_history[key], rtol=1e-9)


@pytest.mark.parametrize("fit_kwargs, streamed", [
    ({}, True),
    (dict(callbacks=[keras.callbacks.History()]), False),
    (dict(num_examples=12_000), False),
])
def test_fit_of_a_dataset_runs_exact_cavi_unless_minibatches_are_asked_for(
    monkeypatch, fit_kwargs, streamed):
  """`tfgmm.fit` of a finite `tf.data.Dataset` runs the arrays' exact CAVI
  over streamed passes, and the moves on all rows after it
  (`api._converge_and_move`); with `callbacks`, or `num_examples` (rows
  that stand for more), it trains through `model.fit`. Streamed, it ends
  at the array fit's bound."""
  calls = []
  converge_and_move = api._converge_and_move  # pylint: disable=protected-access

  def spy(*args, **kwargs):
    calls.append("exact")
    return converge_and_move(*args, **kwargs)
  monkeypatch.setattr(api, "_converge_and_move", spy)
  x, _ = three_blobs()
  dataset = tf.data.Dataset.from_tensor_slices(x).batch(1_000)
  model = tfgmm.fit(dataset, 3, seed=0, dtype="float64", **fit_kwargs)
  assert calls == (["exact"] if streamed else [])
  if streamed:
    array_fit = tfgmm.fit(x, 3, seed=0, dtype="float64")
    assert float(model.elbo(x)) == pytest.approx(float(array_fit.elbo(x)),
                                                 rel=1e-6)


def test_an_infinite_dataset_is_refused_before_its_summary_pass():
  x, _ = three_blobs(300)
  with pytest.raises(ValueError, match="infinite dataset"):
    tfgmm.fit(tf.data.Dataset.from_tensor_slices(x).batch(100).repeat(), 3)


def test_column_reduce_is_numpys_min_and_max():
  """The blocked per-column reduction of the summary pass equals numpy's
  min(0) and max(0) exactly, for heights on and off its 64-row blocks, one
  feature or many, with NaN passing through as numpy's does."""
  rng = np.random.default_rng(0)
  reduce = data_lib._column_reduce          # pylint: disable=protected-access
  for rows, cols in [(1, 3), (63, 2), (64, 5), (65, 10), (4097, 1),
                     (65536, 10)]:
    batch = rng.normal(size=(rows, cols)) * 10.0 ** rng.integers(-3, 4)
    np.testing.assert_array_equal(reduce(np.minimum, batch), batch.min(0))
    np.testing.assert_array_equal(reduce(np.maximum, batch), batch.max(0))
  batch = rng.normal(size=(200, 3))
  batch[130, 1] = np.nan
  np.testing.assert_array_equal(reduce(np.minimum, batch), batch.min(0))
