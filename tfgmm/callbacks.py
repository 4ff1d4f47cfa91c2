"""Keras callbacks used by `BayesianGMM.fit` and `tfgmm.fit`."""

import math

import keras


class BoundConvergence(keras.callbacks.Callback):
  """Stops training when the epoch's loss (negative bound per point) settles.

  Training stops once `patience` consecutive epochs each changed the loss by
  less than `tol` nats per data point; the model's `converged` is then True.

  Args:
    tol: nats per data point, > 0.
    patience: consecutive small changes needed, int >= 1.
    monitor: the logged metric to watch.
  """

  def __init__(self, tol=1e-4, patience=2, monitor="loss"):
    super().__init__()
    if not tol > 0:
      raise ValueError(f"Expected `tol` > 0. Received: tol={tol!r}.")
    self.tol = float(tol)
    self.patience = int(patience)
    self.monitor = monitor
    self._previous = math.inf
    self._calm = 0

  def on_train_begin(self, logs=None):
    self._previous = math.inf
    self._calm = 0

  def on_epoch_end(self, epoch, logs=None):
    value = (logs or {}).get(self.monitor)
    if value is None:
      return
    value = float(value)
    self._calm = self._calm + 1 if abs(value - self._previous) < self.tol else 0
    self._previous = value
    if self._calm >= self.patience:
      self.model.stop_training = True
      self.model.converged = True


class EpochSeed(keras.callbacks.Callback):
  """Tells a `make_dataset` dataset which epoch begins (for its shuffle)."""

  def __init__(self, epoch_variable):
    super().__init__()
    self._epoch_variable = epoch_variable

  def on_epoch_begin(self, epoch, logs=None):
    self._epoch_variable.assign(epoch)
