"""log_prob, responsibilities, assign and negative_elbo as TensorFlow ops.

Inside `tf.function`, with gradients to the input (checked against finite
differences), and over leading batch axes [..., N, D], as a TFP
distribution's methods are.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfgmm
from tests.helpers import mixture_data


@pytest.fixture(scope="module", params=["diag", "full"])
def fitted(request):
  """A float64 model fitted on 3 clusters in 2-D, and its data."""
  x = mixture_data(np.random.default_rng(0), 300, 2)
  model = tfgmm.fit(x, 3, covariance_type=request.param, dtype="float64",
                    seed=0)
  return model, x


def test_graph_outputs_equal_eager(fitted):
  model, x = fitted
  xt = tf.constant(x[:50])

  @tf.function
  def outputs(rows):
    return (model.log_prob(rows), model.responsibilities(rows),
            model.assign(rows), model.assign(rows, temperature=1.0, seed=3),
            model.negative_elbo(rows))

  graph = outputs(xt)
  eager = (model.log_prob(x[:50]), model.responsibilities(x[:50]),
           model.assign(x[:50]), model.assign(x[:50], temperature=1.0, seed=3),
           model.negative_elbo(x[:50]))
  for got, want in zip(graph, eager):
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)
  assert graph[0].shape == (50,) and graph[1].shape == (50, 3)


def _central_difference(f, x, eps=1e-6):
  """d f / d x of a scalar function of a float64 array, by central
  differences."""
  grad = np.zeros_like(x)
  for index in np.ndindex(x.shape):
    step = np.zeros_like(x)
    step[index] = eps
    grad[index] = (f(x + step) - f(x - step)) / (2 * eps)
  return grad


@pytest.mark.parametrize("output", ["log_prob", "responsibilities",
                                    "negative_elbo"])
def test_gradients_to_the_input_match_finite_differences(fitted, output):
  model, x = fitted
  rows = x[:4] + 0.3
  # A fixed random projection makes every output a scalar.
  if output == "responsibilities":
    weights = np.random.default_rng(1).normal(size=(4, 3))
  else:
    weights = np.random.default_rng(1).normal(size=(4,))
  weights = weights if output != "negative_elbo" else np.ones(())

  def scalar(v):
    return tf.reduce_sum(getattr(model, output)(v) * weights)

  xt = tf.constant(rows)
  with tf.GradientTape() as tape:
    tape.watch(xt)
    value = scalar(xt)
  grad = tape.gradient(value, xt).numpy()
  numeric = _central_difference(lambda v: float(scalar(tf.constant(v))), rows)
  assert np.abs(grad).max() > 1e-3
  np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-7)


def test_an_encoder_trains_through_log_prob(fitted):
  """Gradients reach a Dense encoder's kernel in a compiled step and match
  finite differences of the kernel."""
  model, x = fitted
  encoder = keras.layers.Dense(2, dtype="float64")
  encoder.build((None, 2))
  encoder.kernel.assign(np.array([[1.1, 0.2], [-0.1, 0.9]]))
  rows = tf.constant(x[:20])

  @tf.function
  def loss_and_grad():
    with tf.GradientTape() as tape:
      loss = -tf.reduce_mean(model.log_prob(encoder(rows)))
    return loss, tape.gradient(loss, encoder.kernel)

  _, grad = loss_and_grad()
  kernel = encoder.kernel.numpy()

  def loss_at(k):
    return -float(tf.reduce_mean(model.log_prob(
        tf.matmul(rows, k) + encoder.bias)))

  numeric = _central_difference(loss_at, kernel)
  assert np.abs(grad.numpy()).max() > 1e-3
  np.testing.assert_allclose(grad.numpy(), numeric, rtol=1e-5, atol=1e-7)


def test_leading_batch_axes_broadcast(fitted):
  model, x = fitted
  batch = x[:24].reshape(2, 3, 4, 2)
  flat = x[:24]
  for inputs in (batch, tf.constant(batch)):
    np.testing.assert_allclose(model.log_prob(inputs).numpy(),
                               model.log_prob(flat).numpy().reshape(2, 3, 4),
                               rtol=1e-12)
    np.testing.assert_allclose(
        model.responsibilities(inputs).numpy(),
        model.responsibilities(flat).numpy().reshape(2, 3, 4, 3), rtol=1e-12)
    np.testing.assert_array_equal(model.assign(inputs).numpy(),
                                  model.assign(flat).numpy().reshape(2, 3, 4))
    draws = model.assign(inputs, temperature=1.0, seed=5)
    assert draws.shape == (2, 3, 4)
    np.testing.assert_array_equal(
        draws.numpy().ravel(),
        model.assign(flat, temperature=1.0, seed=5).numpy())
    np.testing.assert_allclose(float(model.negative_elbo(inputs)),
                               float(model.negative_elbo(flat)), rtol=1e-12)
  # Unknown leading axes inside tf.function.
  spec = tf.TensorSpec([None, None, 2], tf.float64)
  traced = tf.function(model.log_prob, input_signature=[spec])
  np.testing.assert_allclose(traced(tf.constant(batch[0])).numpy(),
                             model.log_prob(flat[:12]).numpy().reshape(3, 4),
                             rtol=1e-12)


def test_float32_tensors_and_integer_arrays(fitted):
  model, x = fitted
  want = model.log_prob(x[:5]).numpy()
  got = model.log_prob(tf.constant(x[:5], tf.float32)).numpy()
  np.testing.assert_allclose(got, want, rtol=1e-5)
  ints = np.round(x[:5]).astype(np.int64)
  np.testing.assert_allclose(model.log_prob(tf.constant(ints)).numpy(),
                             model.log_prob(ints.astype(float)).numpy(),
                             rtol=1e-12)


def test_bad_inputs_name_the_argument(fitted):
  model, x = fitted
  with pytest.raises(ValueError, match=r"Received: x\[1, 0, 1\]=inf"):
    bad = x[:6].reshape(2, 3, 2).copy()
    bad[1, 0, 1] = np.inf
    model.log_prob(bad)
  with pytest.raises(ValueError, match=r"Received: x\[1, 0, 1\]=inf"):
    model.log_prob(tf.constant(bad))
  with pytest.raises(ValueError, match=r"2 or more dims.*x.shape=\(2,\)"):
    model.log_prob(x[0])
  with pytest.raises(ValueError, match=r"with 2 features.*x.shape=\(2, 3, 3\)"):
    model.log_prob(np.zeros((2, 3, 3)))
  with pytest.raises(ValueError, match="at least one row"):
    model.log_prob(np.zeros((2, 0, 2)))
  with pytest.raises(TypeError, match="numeric tensor.*dtype string"):
    model.log_prob(tf.constant([["a", "b"]]))
  traced = tf.function(model.log_prob)
  with pytest.raises(ValueError, match=r"\[\.\.\., N, 2\].*x.shape=\(4, 3\)"):
    traced(tf.zeros([4, 3], tf.float64))
  with pytest.raises(ValueError, match=r"\[\.\.\., N, 2\].*x.shape=\(4,\)"):
    traced(tf.zeros([4], tf.float64))


def test_an_unfitted_model_raises_inside_tf_function():
  model = tfgmm.BayesianGMM(2, 2, seed=0)
  for name in ("log_prob", "responsibilities", "assign"):
    with pytest.raises(ValueError, match=f"`{name}` needs a fitted model"):
      tf.function(getattr(model, name))(tf.zeros([3, 2]))


def test_return_types_are_as_documented(fitted):
  """Per-row and drawn outputs are tensors in the model's dtype; summaries
  are numpy (README: "Return types")."""
  model, x = fitted
  for value in (model.log_prob(x), model.responsibilities(x),
                model.sample(3), model(tf.constant(x)),
                model.negative_elbo(x)):
    assert isinstance(value, tf.Tensor) and value.dtype == tf.float64
  assert model.assign(x).dtype == tf.int32
  assert isinstance(model.elbo(x), tf.Tensor)
  assert model.elbo(x).dtype == tf.float64
  assert all(isinstance(v, np.ndarray)
             for v in model.posterior_mean().values())
  assert isinstance(model.effective_components(), np.ndarray)
