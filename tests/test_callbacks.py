"""BoundConvergence: exact full-batch bounds and noisy minibatch epochs."""

import keras
import numpy as np
import pytest

import tfgmm
from tfgmm import callbacks as callbacks_lib


def test_window_test_ignores_noise_but_not_a_trend():
  rng = np.random.default_rng(0)
  noise = 1e-3 * rng.standard_normal(40)
  # Settled: the loss only jitters by 1e-3, ten times tol.
  settled = tfgmm.BoundConvergence(tol=1e-4, window=5)
  stops = [settled.update(2.0 + e) for e in noise]
  assert any(stops)
  assert stops.index(True) + 1 <= 12     # 2 windows + patience, with room
  # Still descending by 2e-3 per epoch under the same noise: never calm.
  moving = tfgmm.BoundConvergence(tol=1e-4, window=5)
  assert not any(moving.update(2.0 - 2e-3 * i + e)
                 for i, e in enumerate(noise))
  # Window 1: the exact-bound test of consecutive epochs, blind to noise.
  exact = tfgmm.BoundConvergence(tol=1e-4, window=1)
  assert not any(exact.update(2.0 + e) for e in 10 * noise)


def test_default_window_follows_the_steps_per_epoch():
  assert callbacks_lib.window_for_steps(1) == 1
  assert callbacks_lib.window_for_steps(6) == callbacks_lib.DEFAULT_WINDOW
  assert callbacks_lib.window_for_steps(None) == callbacks_lib.DEFAULT_WINDOW


def test_minibatch_fit_stops_near_the_optimum():
  """The README's minibatch example stops once the bound has settled, at
  a bound as good as full-batch CAVI's within the minibatch noise."""
  x = np.random.default_rng(0).normal(size=(3000, 2))
  x[:1000] += [2, 0]
  x[1000:2000] -= [2, 4]
  x[2000:] += [-2, 4]
  model = tfgmm.BayesianGMM(3, 2, seed=0)
  history = model.fit(tfgmm.make_dataset(x, batch_size=500, seed=0),
                      epochs=60, verbose=0,
                      callbacks=[tfgmm.BoundConvergence(tol=1e-4)])
  assert model.converged and len(history.epoch) < 60
  reference = tfgmm.fit(x, 3, seed=0)
  assert float(model.elbo(x)) / len(x) > float(reference.elbo(x)) / len(x) - 2e-3


def test_a_history_callback_reused_across_fits_logs_each_epoch_once():
  """Keras' `History` keeps the logs of earlier `fit` calls; the model's
  `training_history` takes only the epochs of the call that ran them."""
  x = np.random.default_rng(0).normal(size=(200, 2))
  model = tfgmm.BayesianGMM(2, 2, seed=0)
  history = keras.callbacks.History()
  model.fit(x, epochs=3, verbose=0, callbacks=[history])
  model.fit(x, epochs=5, initial_epoch=3, verbose=0, callbacks=[history])
  assert model.n_epochs == 5 == len(history.history["loss"])
  assert model.training_history["loss"] == [
      float(v) for v in history.history["loss"]]


@pytest.mark.parametrize("window", [0, 1.5, "5"])
def test_bad_window(window):
  with pytest.raises(ValueError, match=f"window={window!r}"):
    tfgmm.BoundConvergence(window=window)
