"""Keras layers that put a `BayesianGMM` inside a larger model."""

import keras
import tensorflow as tf

from tfgmm import _validation
from tfgmm import model as model_lib

UPDATES = ("natural", "gradient")


@keras.saving.register_keras_serializable(package="tfgmm")
class MixtureLoss(keras.layers.Layer):
  """Adds a mixture's negative ELBO of its inputs to the model's loss.

  The layer passes its inputs through unchanged, like
  `keras.layers.ActivityRegularization`, so it can sit anywhere in a
  Functional or Sequential model: between an encoder and a decoder, or at
  the end of an encoder trained by the mixture alone. In training it adds

  ```none
  weight * (KL(q || p) / W - (1 / B) sum_b log_rho-bound of features[b])
  ```

  (`BayesianGMM.negative_elbo`, nats per point in the features' units) to
  the model's loss, so gradients reach whatever produced the features, and
  it updates the mixture:

  - update="natural" (the default for a "natural"-method mixture): one
    closed-form natural-gradient step per training batch, on the batch's
    features before the optimizer's step (`BayesianGMM.natural_step`; the
    step sees no gradient). The layer makes the mixture non-trainable, so
    the optimizer leaves its variables alone.
  - update="gradient": the mixture stays trainable and the optimizer moves
    its variables along the same loss.

  The mixture must be initialised before training (e.g.
  `mixture.initialize(encoder(x_sample))`): a mixture still at its prior
  would pull every feature towards the prior's one broad component. The
  first training step raises otherwise.

  The mixture's own metrics stay idle; the layer logs its loss as
  `<name>` (by default "mixture_loss") beside the model's `loss`.

  Args:
    mixture: the `BayesianGMM` of the features ([..., D] inputs with D its
      `n_features`).
    weight: the loss's factor, a finite float >= 0 (e.g. to weigh the
      mixture's nats against a reconstruction loss in other units).
    update: "natural", "gradient" or None (the mixture's method decides:
      "natural" for method="natural", else "gradient").
    **kwargs: passed to `keras.layers.Layer` (e.g. `name`).

  Input shape: [..., D]. Output: the input.

  #### Examples

  ```python
  mixture = tfgmm.fit(encoder(x_sample), 10)
  model = keras.Sequential([encoder, tfgmm.layers.MixtureLoss(mixture),
                            decoder])
  model.compile("adam", loss="mse")
  model.fit(x, x, epochs=10)
  ```
  """

  def __init__(self, mixture, weight=1.0, update=None, **kwargs):
    kwargs.setdefault("name", "mixture_loss")
    super().__init__(**kwargs)
    if not isinstance(mixture, model_lib.BayesianGMM):
      raise TypeError("Expected `mixture` to be a tfgmm.BayesianGMM. "
                      f"Received: mixture={_validation.describe(mixture)}.")
    self.weight = float(_validation.check_finite_number("weight", weight, ()))
    if self.weight < 0:
      raise ValueError(f"Expected `weight` >= 0. Received: weight={weight!r}.")
    if update is None:
      update = "natural" if mixture.method == "natural" else "gradient"
    self.update = _validation.check_choice("update", update, UPDATES)
    self.mixture = mixture
    if self.update == "natural":
      self.mixture.trainable = False
    self.loss_tracker = keras.metrics.Mean(name=self.name)

  def build(self, input_shape):
    if input_shape[-1] not in (None, self.mixture.n_features):
      raise ValueError(
          f"Expected inputs of shape [..., {self.mixture.n_features}] (the "
          f"mixture's n_features). Received: input_shape={input_shape}.")
    self.built = True

  def compute_output_spec(self, inputs, training=None):
    # The output is the input. Keras builds Functional models through this,
    # so `call` never runs on symbolic inputs (an unfitted mixture is fine
    # until training starts).
    del training
    return keras.KerasTensor(inputs.shape, inputs.dtype)

  def call(self, inputs, training=None):
    if not self.mixture.initialized:
      raise ValueError(
          f"MixtureLoss {self.name!r}: its mixture was never initialised. "
          "Initialise it from the features before training, e.g. "
          "`mixture.initialize(encoder(x_sample))` or "
          "`tfgmm.fit(encoder(x_sample), n_components)`.")
    loss = self.weight * self.mixture.negative_elbo(inputs)
    self.add_loss(loss)
    self.loss_tracker.update_state(loss)
    if training and self.update == "natural":
      features = tf.reshape(inputs, [-1, self.mixture.n_features])
      with tf.control_dependencies([loss]):
        self.mixture.natural_step(features)
    return inputs

  def get_config(self):
    return {**super().get_config(), "weight": self.weight,
            "update": self.update,
            "mixture": keras.saving.serialize_keras_object(self.mixture)}

  @classmethod
  def from_config(cls, config):
    config = dict(config)
    config["mixture"] = keras.saving.deserialize_keras_object(
        config["mixture"])
    return cls(**config)
