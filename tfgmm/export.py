"""SavedModel export with serving signatures that load with plain TensorFlow.

Builds from a model's public `serving_state()` and `tfgmm._engine.predict`
(the functions the model itself calls); it imports no model, so
`BayesianGMM.export` can import it without a cycle.
"""

import ctypes
import errno
import os
import shutil
import tempfile

import tensorflow as tf

from tfgmm._engine import predict as predict_lib


class _MixtureModule(tf.Module):
  """The fitted mixture's parameters and its serving functions."""

  def __init__(self, state):
    """`state`: a `predict_lib.ServingState` (`BayesianGMM.serving_state()`)."""
    super().__init__(name="tfgmm_bayesian_gmm")
    family, q = state.family, state.posterior
    # q's fields by name (weight_concentration, mean_loc, ...): the
    # posterior's own parameters, whatever the covariance type.
    self.posterior_fields = {
        name: tf.Variable(value, trainable=False, name=name)
        for name, value in zip(q._fields, q)}
    # log E[pi]: the predictive needs only the mixing weights, whichever
    # weight prior produced them.
    self.log_mean_weights = tf.Variable(state.log_mean_weights,
                                        trainable=False)
    self.feature_loc = tf.Variable(state.feature_loc, trainable=False)
    self.feature_scale = tf.Variable(state.feature_scale, trainable=False)
    chunk, d = state.chunk, state.n_features
    posterior_type = type(q)

    def posterior():
      return posterior_type(*[self.posterior_fields[name]
                              for name in posterior_type._fields])

    def predict(name, x):
      return predict_lib.predict(
          family, name, x, posterior(), self.log_mean_weights,
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
      x = self.feature_loc + self.feature_scale * tf.cast(z, tf.float64)
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


class ExportPathError(FileExistsError, ValueError):
  """`filepath` holds something other than a SavedModel: not replaced.

  Both a `FileExistsError` (what it is) and a `ValueError` (bad input).
  """


_STAGING_PREFIXES = (".tfgmm-export-", ".tfgmm-old-")
_RENAME_EXCHANGE = 2  # linux/fs.h


def _exchange(first, second):
  """Swaps two existing paths in one atomic step; False where unsupported.

  Linux's renameat2(RENAME_EXCHANGE) (kernel 3.15; ext4, xfs, btrfs, tmpfs,
  overlayfs): at every instant each name holds one complete directory.
  """
  try:
    libc = ctypes.CDLL(None, use_errno=True)
    renameat2 = libc.renameat2
  except (OSError, AttributeError):
    return False
  at_fdcwd = -100
  result = renameat2(at_fdcwd, os.fsencode(first), at_fdcwd,
                     os.fsencode(second), _RENAME_EXCHANGE)
  if result == 0:
    return True
  code = ctypes.get_errno()
  if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
    return False
  raise OSError(code, os.strerror(code), second)


def _remove_stale_staging(parent):
  """Deletes staging directories left in `parent` by exports that died."""
  for name in os.listdir(parent):
    prefix = next((p for p in _STAGING_PREFIXES if name.startswith(p)), None)
    if prefix is None:
      continue
    pid = name[len(prefix):].split("-", 1)[0]
    if not pid.isdigit() or int(pid) == os.getpid():
      continue
    try:
      os.kill(int(pid), 0)
    except ProcessLookupError:
      shutil.rmtree(os.path.join(parent, name), ignore_errors=True)
    except PermissionError:
      pass  # alive, someone else's


def export_saved_model(state, path):
  """Writes `model`'s serving SavedModel to directory `path`, atomically.

  The SavedModel is written to a staging directory beside `path`
  (`.tfgmm-export-<pid>-*`) and swapped into place once complete, so a
  killed export never leaves a partial model at `path`: before the swap
  `path` holds the previous export (or nothing), after it the new one. An
  existing export is replaced by one atomic exchange of the two directories
  (Linux renameat2); where the filesystem lacks it, by two renames, between
  which `path` is briefly absent (never partial). Staging directories of
  exports whose process died are removed by the next export to the same
  parent directory.

  Args:
    state: the model's `serving_state()` (a `predict_lib.ServingState`).
    path: the SavedModel directory. An existing SavedModel there is replaced;
      any other existing file or non-empty directory is an error.

  Returns:
    `path`.

  Raises:
    ExportPathError (a FileExistsError and a ValueError): `path` holds
      something other than a SavedModel.
  """
  path = os.fspath(path)
  if os.path.exists(path) and not (
      os.path.isdir(path) and (not os.listdir(path) or os.path.exists(
          os.path.join(path, "saved_model.pb")))):
    raise ExportPathError(
        f"Expected `filepath` to be a new path, an empty directory or an "
        f"existing SavedModel. Received: filepath={path!r}, which holds other "
        "files; refusing to replace it.")
  parent = os.path.dirname(os.path.abspath(path))
  os.makedirs(parent, exist_ok=True)
  _remove_stale_staging(parent)
  module = _MixtureModule(state)
  pid = os.getpid()
  staging = tempfile.mkdtemp(prefix=f".tfgmm-export-{pid}-", dir=parent)
  try:
    tf.saved_model.save(module, staging, signatures=module.signatures())
    if not os.path.isdir(path):
      os.replace(staging, path)
    elif not _exchange(staging, path):
      old = tempfile.mkdtemp(prefix=f".tfgmm-old-{pid}-", dir=parent)
      os.replace(path, os.path.join(old, "model"))
      os.replace(staging, path)
      shutil.rmtree(old, ignore_errors=True)
  finally:
    # After an exchange, staging holds the previous export.
    if os.path.isdir(staging):
      shutil.rmtree(staging, ignore_errors=True)
  return path
