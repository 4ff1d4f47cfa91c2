"""The mixture inside a larger Keras model: gradients, natural steps, saving."""

import keras
import numpy as np
import tensorflow as tf

import tfgmm


@keras.saving.register_keras_serializable(package="tfgmm_tests")
class EncoderWithMixture(keras.Model):
  """A linear encoder whose outputs a mixture models.

  The encoder trains by gradient through the mixture's posterior predictive
  log density; the mixture takes its own natural-gradient step per batch.
  """

  def __init__(self, n_components=3, latent=2, **kwargs):
    super().__init__(**kwargs)
    self.n_components, self.latent = n_components, latent
    self.encoder = keras.layers.Dense(latent, name="encoder")
    self.mixture = tfgmm.BayesianGMM(n_components, latent, seed=0,
                                     name="mixture")
    self.mixture.trainable = False    # natural steps, not the optimizer

  def build(self, input_shape):
    self.encoder.build(input_shape)
    self.built = True

  def call(self, x):
    return self.mixture(self.encoder(x))                          # [B]

  def train_step(self, data):
    with tf.GradientTape() as tape:
      features = self.encoder(data)                               # [B, L]
      loss = -tf.reduce_mean(self.mixture(features))
    variables = self.encoder.trainable_variables
    self.optimizer.apply_gradients(zip(tape.gradient(loss, variables),
                                       variables))
    metrics = self.mixture.natural_step(features)
    return {"loss": loss, **metrics}

  def get_config(self):
    return {**super().get_config(), "n_components": self.n_components,
            "latent": self.latent}


def test_input_gradient_of_log_prob_matches_finite_differences(blog):
  x = blog[0][:5]
  model = tfgmm.fit(blog[0], 3, seed=0, dtype="float64", n_init=1)
  point = tf.Variable(x)
  with tf.GradientTape() as tape:
    total = tf.reduce_sum(model(point))
  grad = tape.gradient(total, point).numpy()
  step = 1e-6
  for d in range(2):
    shift = np.zeros_like(x)
    shift[:, d] = step
    numeric = (model.log_prob(x + shift) - model.log_prob(x - shift)) / (
        2 * step)
    np.testing.assert_allclose(grad[:, d], numeric, rtol=1e-5, atol=1e-8)


def test_encoder_trains_through_the_mixture_with_natural_steps(tmp_path,
                                                               blog):
  x = blog[0].astype(np.float32)
  outer = EncoderWithMixture()
  outer.build((None, 2))
  # Initialise the embedded mixture from the encoder's outputs.
  outer.mixture.initialize(outer.encoder(x), n_init=2)
  before_encoder = [v.numpy() for v in outer.encoder.weights]
  before_mixture = [t.numpy() for t in outer.mixture.posterior()]
  steps = int(outer.mixture.natural_steps.numpy())
  outer.compile(optimizer=keras.optimizers.Adam(0.01))
  history = outer.fit(tf.data.Dataset.from_tensor_slices(x).batch(500),
                      epochs=2, verbose=0, shuffle=False).history
  assert np.all(np.isfinite(history["loss"]))
  assert np.all(np.isfinite(history["expected_log_likelihood"]))
  assert int(outer.mixture.natural_steps.numpy()) == steps + 12
  assert not np.allclose(before_encoder[0], outer.encoder.weights[0].numpy())
  assert not np.allclose(before_mixture[1],
                         outer.mixture.posterior().mean_loc.numpy())
  # The whole model round-trips as a .keras file.
  path = tmp_path / "outer.keras"
  outer.save(path)
  loaded = keras.saving.load_model(path)
  np.testing.assert_allclose(loaded.predict(x[:50], verbose=0),
                             outer.predict(x[:50], verbose=0), rtol=1e-5)


def test_negative_elbo_is_the_gradient_method_loss(blog):
  """Added to an outer loss, negative_elbo trains the mixture by gradient."""
  x = blog[0]
  model = tfgmm.BayesianGMM(3, 2, method="gradient", seed=0, dtype="float64")
  model.initialize(x, n_init=1, max_iter=3)
  history = model.fit(tfgmm.make_dataset(x, len(x), shuffle=False), epochs=1,
                      verbose=0).history
  # fit reports the loss before its step; negative_elbo now is after it.
  model2 = tfgmm.BayesianGMM(3, 2, method="gradient", seed=0,
                             dtype="float64")
  model2.initialize(x, n_init=1, max_iter=3)
  np.testing.assert_allclose(float(model2.negative_elbo(x)),
                             history["loss"][0], rtol=1e-10)
  variables = model2.trainable_variables
  with tf.GradientTape() as tape:
    loss = model2.negative_elbo(x)
  grads = tape.gradient(loss, variables)
  assert all(np.all(np.isfinite(g.numpy())) for g in grads)


class _AddNegativeElbo(keras.layers.Layer):
  """Adds a mixture's negative ELBO of its input to the outer loss."""

  def __init__(self, mixture, **kwargs):
    super().__init__(**kwargs)
    self.mixture = mixture

  def call(self, features):
    self.add_loss(self.mixture.negative_elbo(features))
    return features


def test_a_functional_model_logs_its_own_loss(blog):
  """A layer that holds the mixture does not let the mixture's idle trackers
  shadow the outer model's `loss` (Keras collects a layer's sublayers'
  metrics): the logged loss is the negative ELBO the layer adds."""
  x = blog[0].astype(np.float32)
  mixture = tfgmm.fit(x, 3, seed=0, method="gradient", n_init=1)
  inputs = keras.Input((2,))
  features = keras.layers.Dense(2, kernel_initializer="identity")(inputs)
  outer = keras.Model(inputs, mixture(_AddNegativeElbo(mixture)(features)))
  assert [m.name for m in outer.metrics].count("loss") <= 1
  outer.compile(optimizer=keras.optimizers.Adam(0.0))  # a pure evaluation
  history = outer.fit(x, epochs=1, batch_size=len(x), shuffle=False,
                      verbose=0).history
  np.testing.assert_allclose(history["loss"][0],
                             float(mixture.negative_elbo(x)), rtol=1e-5)
  assert "kl" not in history
  # The mixture's own loops still report its metrics.
  logs = mixture.evaluate(x, batch_size=len(x), verbose=0, return_dict=True)
  assert sorted(logs) == ["expected_log_likelihood", "kl", "loss"]
  assert logs["loss"] > 0


def test_fit_on_an_array_defaults_to_full_batches(blog):
  """Like tfgmm.fit: min(N, 65,536) rows per step, not Keras' 32."""
  x = blog[0]
  model = tfgmm.BayesianGMM(3, 2, seed=0)
  model.fit(x, epochs=2, verbose=0)
  assert int(model.natural_steps.numpy()) == 2
