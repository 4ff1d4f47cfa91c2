"""SavedModel export with serving signatures that load with plain TensorFlow."""

import os
import shutil
import tempfile

import tensorflow as tf

from tfgmm import model as model_lib


class _MixtureModule(tf.Module):
  """The fitted mixture's parameters and its serving functions."""

  def __init__(self, model):
    super().__init__(name="tfgmm_bayesian_gmm")
    dtype = model._dtype  # pylint: disable=protected-access
    family = model._family  # pylint: disable=protected-access
    q = model.posterior()
    loc, scale = model._standardization()  # pylint: disable=protected-access
    # q's fields by name (weight_concentration, mean_loc, ...): the
    # posterior's own parameters, whatever the covariance type.
    self.posterior_fields = {
        name: tf.Variable(value, trainable=False, name=name)
        for name, value in zip(q._fields, q)}
    # log E[pi]: the predictive needs only the mixing weights, whichever
    # weight prior produced them.
    self.log_mean_weights = tf.Variable(
        tf.cast(model._log_mean_weights(q), dtype),  # pylint: disable=protected-access
        trainable=False)
    self.feature_loc = tf.Variable(loc, trainable=False)
    self.feature_scale = tf.Variable(scale, trainable=False)
    chunk = model._chunk()  # pylint: disable=protected-access
    d = model.n_features
    posterior_type = type(q)

    def posterior():
      return posterior_type(*[self.posterior_fields[name]
                              for name in posterior_type._fields])

    def predict(name, x):
      return model_lib._predict(  # pylint: disable=protected-access
          family, name, tf.cast(x, dtype), posterior(), self.log_mean_weights,
          self.feature_loc, self.feature_scale, chunk)

    x_spec = tf.TensorSpec([None, d], tf.float32, name="x")

    @tf.function(input_signature=[x_spec])
    def log_prob(x):
      return {"log_prob": tf.cast(predict("log_prob", x), tf.float32)}

    @tf.function(input_signature=[x_spec])
    def responsibilities(x):
      log_r = predict("log_responsibilities", x)                  # [N, K]
      return {"responsibilities": tf.cast(tf.exp(log_r), tf.float32)}

    @tf.function(input_signature=[x_spec])
    def assign(x):
      log_r = predict("log_responsibilities", x)                  # [N, K]
      return {"labels": tf.argmax(log_r, -1, output_type=tf.int32)}

    @tf.function(input_signature=[tf.TensorSpec([], tf.int32, name="n"),
                                  tf.TensorSpec([], tf.int64, name="seed")])
    def sample(n, seed):
      z = family.sample_predictive(
          n, tf.stack([seed, tf.constant(2, tf.int64)]), posterior(),
          self.log_mean_weights)                                  # [n, D]
      x = self.feature_loc + self.feature_scale * z
      return {"samples": tf.cast(x, tf.float32)}

    self.log_prob = log_prob
    self.responsibilities = responsibilities
    self.assign = assign
    self.sample = sample

  def signatures(self):
    return {
        "serving_default": self.log_prob,
        "responsibilities": self.responsibilities,
        "assign": self.assign,
        "sample": self.sample,
    }


def export_saved_model(model, path):
  """Writes `model`'s serving SavedModel to directory `path`, atomically.

  The SavedModel is written to a temporary directory beside `path` and moved
  into place once complete, so an interrupted export never leaves a partial
  model at `path`.

  Args:
    model: an initialised `BayesianGMM`.
    path: the SavedModel directory. An existing SavedModel there is replaced;
      any other existing file or non-empty directory is an error.

  Returns:
    `path`.

  Raises:
    FileExistsError: `path` holds something other than a SavedModel.
  """
  path = os.fspath(path)
  if os.path.exists(path) and not (
      os.path.isdir(path) and (not os.listdir(path) or os.path.exists(
          os.path.join(path, "saved_model.pb")))):
    raise FileExistsError(
        f"Expected `filepath` to be a new path, an empty directory or an "
        f"existing SavedModel. Received: filepath={path!r}, which holds other "
        "files; refusing to replace it.")
  parent = os.path.dirname(os.path.abspath(path))
  os.makedirs(parent, exist_ok=True)
  module = _MixtureModule(model)
  staging = tempfile.mkdtemp(prefix=".tfgmm-export-", dir=parent)
  try:
    tf.saved_model.save(module, staging, signatures=module.signatures())
    if os.path.isdir(path):
      old = tempfile.mkdtemp(prefix=".tfgmm-old-", dir=parent)
      os.replace(path, os.path.join(old, "model"))
      os.replace(staging, path)
      shutil.rmtree(old, ignore_errors=True)
    else:
      os.replace(staging, path)
  finally:
    if os.path.isdir(staging):
      shutil.rmtree(staging, ignore_errors=True)
  return path
