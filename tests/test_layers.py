"""tfgmm.layers.MixtureLoss: the mixture's loss in Functional and Sequential
models."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfgmm
from tests.helpers import mixture_data


@pytest.fixture(scope="module")
def data():
  return mixture_data(np.random.default_rng(0), 600, 2).astype(np.float32)


def _encoder():
  return keras.layers.Dense(2, kernel_initializer="identity",
                            name="encoder")


def test_functional_loss_is_the_negative_elbo_and_natural_steps_run(data):
  mixture = tfgmm.fit(data, 3, seed=0, n_init=1)
  before = mixture.posterior().mean_loc.numpy()
  steps = int(mixture.natural_steps.numpy())
  inputs = keras.Input((2,))
  layer = tfgmm.layers.MixtureLoss(mixture)
  model = keras.Model(inputs, layer(_encoder()(inputs)))
  assert not mixture.trainable
  assert [w.name for w in model.trainable_weights] == ["kernel", "bias"]
  model.compile(optimizer=keras.optimizers.SGD(0.0))
  want = float(mixture.negative_elbo(data))
  history = model.fit(data, epochs=1, batch_size=len(data), shuffle=False,
                      verbose=0).history
  # One batch: the loss logged is the bound before the batch's step.
  np.testing.assert_allclose(history["loss"][0], want, rtol=1e-5)
  np.testing.assert_allclose(history["mixture_loss"][0], want, rtol=1e-5)
  assert int(mixture.natural_steps.numpy()) == steps + 1
  assert not np.allclose(before, mixture.posterior().mean_loc.numpy())
  # Inference passes the features through and takes no step.
  np.testing.assert_allclose(model.predict(data[:5], verbose=0), data[:5],
                             rtol=1e-6)
  assert int(mixture.natural_steps.numpy()) == steps + 1


def test_sequential_gradient_update_trains_mixture_and_encoder(data):
  mixture = tfgmm.fit(data, 3, seed=0, n_init=1, method="gradient")
  encoder = _encoder()
  decoder = keras.layers.Dense(2, name="decoder")
  model = keras.Sequential([keras.Input((2,)), encoder,
                            tfgmm.layers.MixtureLoss(mixture, weight=0.5),
                            decoder])
  assert mixture.trainable
  model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
  before = [v.numpy() for v in mixture.trainable_variables]
  kernel = encoder.kernel.numpy()
  history = model.fit(data, data, epochs=2, batch_size=200,
                      verbose=0).history
  assert np.all(np.isfinite(history["loss"]))
  assert not np.allclose(kernel, encoder.kernel.numpy())
  assert any(not np.allclose(b, v.numpy())
             for b, v in zip(before, mixture.trainable_variables))


def test_gradients_reach_the_encoder(data):
  mixture = tfgmm.fit(data, 3, seed=0, n_init=1)
  encoder = _encoder()
  layer = tfgmm.layers.MixtureLoss(mixture)
  rows = tf.constant(data[:50])
  encoder.build((None, 2))
  with tf.GradientTape() as tape:
    layer(encoder(rows))
    loss = tf.add_n(layer.losses)
  grad = tape.gradient(loss, encoder.kernel)
  assert grad is not None and np.abs(grad.numpy()).max() > 1e-4
  np.testing.assert_allclose(float(loss),
                             float(mixture.negative_elbo(encoder(rows))),
                             rtol=1e-6)


def test_an_unfitted_mixture_says_how_to_initialise(data):
  mixture = tfgmm.BayesianGMM(3, 2, seed=0)
  inputs = keras.Input((2,))
  model = keras.Model(inputs, tfgmm.layers.MixtureLoss(mixture)(
      _encoder()(inputs)))             # building is fine before fitting
  model.compile(optimizer="adam")
  with pytest.raises(ValueError, match=r"never initialised.*initialize\("):
    model.fit(data, epochs=1, batch_size=100, verbose=0)


def test_keras_file_round_trip(data, tmp_path):
  mixture = tfgmm.fit(data, 3, seed=0, n_init=1)
  inputs = keras.Input((2,))
  model = keras.Model(inputs, tfgmm.layers.MixtureLoss(mixture, weight=2.0)(
      _encoder()(inputs)))
  path = tmp_path / "model.keras"
  model.save(path)
  loaded = keras.saving.load_model(path)
  layer = loaded.get_layer("mixture_loss")
  assert layer.weight == 2.0 and layer.update == "natural"
  np.testing.assert_allclose(layer.mixture.log_prob(data[:20]).numpy(),
                             mixture.log_prob(data[:20]).numpy(), rtol=1e-6)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"mixture": "m"}, TypeError, "tfgmm.BayesianGMM.*mixture='m'"),
    ({"weight": -1.0}, ValueError, "weight=-1.0"),
    ({"weight": "x"}, TypeError, "weight='x'"),
    ({"update": "em"}, ValueError, "update='em'"),
])
def test_bad_arguments(kwargs, error, match):
  kwargs = {"mixture": tfgmm.BayesianGMM(2, 2), **kwargs}
  with pytest.raises(error, match=match):
    tfgmm.layers.MixtureLoss(**kwargs)


def test_width_mismatch_fails_at_build():
  with pytest.raises(ValueError, match=r"\[\.\.\., 2\].*input_shape"):
    tfgmm.layers.MixtureLoss(tfgmm.BayesianGMM(2, 2))(keras.Input((3,)))


def test_an_uninitialised_mixture_inside_a_sequential_model_raises(data):
  """Trained as a layer of a Sequential model, an uninitialised mixture
  says how to initialise it instead of training from its prior."""
  mixture = tfgmm.BayesianGMM(3, 2, seed=0, method="gradient")
  model = keras.Sequential([keras.Input((2,)), _encoder(), mixture])
  model.compile(optimizer="adam", loss=lambda y, log_p: -log_p)
  with pytest.raises(ValueError, match=r"never initialised.*initialize\("):
    model.fit(data, data[:, 0], epochs=1, batch_size=100, verbose=0)
  mixture.initialize(data)
  model.compile(optimizer="adam", loss=lambda y, log_p: -log_p)
  history = model.fit(data, data[:, 0], epochs=1, batch_size=100,
                      verbose=0).history
  assert np.isfinite(history["loss"][0])
