"""Data pipelines and bad input: clear errors that name the argument."""

import numpy as np
import pytest
import tensorflow as tf

import tfgmm
from tfgmm import data as data_lib


@pytest.fixture(scope="module")
def fitted():
  rng = np.random.default_rng(0)
  return tfgmm.fit(rng.normal(size=(200, 2)), 2, seed=0)


BAD_DATA = [
    ("nan", np.array([[0.0, np.nan], [1.0, 2.0]]), ValueError, r"x\[0, 1\]=nan"),
    ("inf", np.array([[0.0, 1.0], [np.inf, 2.0]]), ValueError, r"x\[1, 0\]=inf"),
    ("rank1", np.zeros(5), ValueError, r"2 dims.*x.shape=\(5,\)"),
    ("rank3", np.zeros((2, 2, 2)), ValueError, r"x.shape=\(2, 2, 2\)"),
    ("empty", np.zeros((0, 2)), ValueError, r"at least one row.*\(0, 2\)"),
    ("strings", np.array([["a", "b"]]), TypeError, "numeric array"),
    ("string", "data.csv", TypeError, "numeric array"),
    ("objects", np.array([[None, 1.0]], dtype=object), TypeError, "dtype object"),
]


@pytest.mark.parametrize("name,x,error,message", BAD_DATA,
                         ids=[b[0] for b in BAD_DATA])
def test_bad_data_is_rejected_everywhere(fitted, name, x, error, message):
  del name
  with pytest.raises(error, match=message):
    tfgmm.fit(x, 2)
  with pytest.raises(error, match=message):
    fitted.log_prob(x)
  with pytest.raises(error, match=message):
    tfgmm.BayesianGMM(2, 2).fit(x)
  with pytest.raises(error, match=message):
    tfgmm.make_dataset(x, 10)


def test_wrong_width_is_rejected(fitted):
  for call in (fitted.log_prob, fitted.responsibilities, fitted.assign,
               tfgmm.BayesianGMM(2, 2).fit):
    with pytest.raises(ValueError, match=r"2 features.*x.shape=\(4, 3\)"):
      call(np.zeros((4, 3)))


BAD_ARGS = [
    (dict(n_components=0), ValueError, "n_components` >= 1. Received: n_components=0"),
    (dict(n_components=2.5), TypeError, "n_components=2.5"),
    (dict(n_features=-1), ValueError, "n_features=-1"),
    (dict(weight_concentration=0.0), ValueError, "weight_concentration=0.0"),
    (dict(mean_precision=-1.0), ValueError, "mean_precision=-1.0"),
    (dict(precision_concentration=0), ValueError, "precision_concentration=0"),
    (dict(precision_rate=[1.0, -2.0]), ValueError, r"precision_rate=\[1.0, -2.0\]"),
    (dict(precision_rate=np.nan), ValueError, "finite.*precision_rate=nan"),
    (dict(mean_loc=[1.0, 2.0, 3.0]), ValueError, "mean_loc.*shape \\(3,\\)"),
    (dict(mean_loc="zero"), TypeError, "mean_loc='zero'"),
    (dict(method="em"), ValueError, "method.*Received: method='em'"),
    (dict(dtype="float16"), ValueError, "dtype='float16'"),
    (dict(step_size=1.5), ValueError, "step_size=1.5"),
    (dict(standardize="yes"), TypeError, "standardize='yes'"),
    (dict(seed=-1), ValueError, "seed=-1"),
    (dict(seed="7"), TypeError, "seed='7'"),
]


@pytest.mark.parametrize("kwargs,error,message", BAD_ARGS,
                         ids=[next(iter(b[0])) + str(i) for i, b in enumerate(BAD_ARGS)])
def test_bad_constructor_arguments(kwargs, error, message):
  args = dict(n_components=2, n_features=2)
  args.update(kwargs)
  with pytest.raises(error, match=message):
    tfgmm.BayesianGMM(**args)


def test_bad_fit_arguments():
  x = np.zeros((10, 2))
  with pytest.raises(ValueError, match="n_components=0"):
    tfgmm.fit(x, 0)
  with pytest.raises(ValueError, match="method='cavi2'"):
    tfgmm.fit(x, 2, method="cavi2")
  with pytest.raises(ValueError, match="tol"):
    tfgmm.fit(x, 2, tol=-1.0)
  with pytest.raises(ValueError, match="n_init=0"):
    tfgmm.fit(x, 2, n_init=0)
  with pytest.raises(ValueError, match="batch_size=0"):
    tfgmm.make_dataset(x, 0)
  with pytest.raises(ValueError, match="births=-1"):
    tfgmm.BayesianGMM(2, 2).initialize(x, births=-1)
  with pytest.raises(ValueError, match="max_iter=0"):
    tfgmm.BayesianGMM(2, 2).initialize(x, max_iter=0)


def test_inference_before_initialisation_is_a_clear_error():
  model = tfgmm.BayesianGMM(2, 2)
  for call in (lambda: model.log_prob(np.zeros((3, 2))),
               lambda: model.responsibilities(np.zeros((3, 2))),
               lambda: model.assign(np.zeros((3, 2))),
               lambda: model.sample(3), model.posterior_mean,
               lambda: model.elbo(np.zeros((3, 2))),
               lambda: model.evaluate(np.zeros((3, 2)), verbose=0)):
    with pytest.raises(ValueError, match="never initialised"):
      call()


def test_bad_inference_arguments(fitted):
  with pytest.raises(ValueError, match="temperature=-1"):
    fitted.assign(np.zeros((2, 2)), temperature=-1)
  with pytest.raises(ValueError, match="n=0"):
    fitted.sample(0)


def test_a_dataset_whose_batches_change_width_is_rejected():
  batches = [np.zeros((4, 2), np.float32), np.zeros((4, 3), np.float32)]
  dataset = tf.data.Dataset.from_generator(
      lambda: iter(batches), output_signature=tf.TensorSpec([None, None]))
  with pytest.raises(ValueError, match=r"batch 1.*2 features.*\(4, 3\)"):
    tfgmm.BayesianGMM(2, 2).initialize(dataset)


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
  resumed._tfgmm_epoch.assign(2)  # pylint: disable=protected-access
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
  np.testing.assert_array_equal(summary.sample, x[:1000])


def test_fit_on_a_dataset_matches_fit_on_the_array():
  rng = np.random.default_rng(4)
  x = np.concatenate([rng.normal(-3, 1, (300, 2)), rng.normal(3, 1, (300, 2))])
  from_array = tfgmm.fit(x, 2, seed=1, batch_size=600, max_epochs=20)
  from_dataset = tfgmm.fit(tfgmm.make_dataset(x, 600, seed=1), 2, seed=1,
                           max_epochs=20)
  np.testing.assert_allclose(from_array.log_prob(x), from_dataset.log_prob(x),
                             rtol=1e-4)
