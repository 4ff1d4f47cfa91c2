"""The Keras training face of `BayesianGMM`, as a mixin.

Like Keras 3's own split (`keras.Model` is structure plus a `Trainer` in
`keras/src/trainers`), `BayesianGMM` holds the mixture (variables, prior,
family, inference, persistence) and inherits from `Trainer` how it trains:
`compile`, `fit`, `evaluate`, `predict`, the train and test steps, the
closed-form natural-gradient step, the bound's terms and the metrics. The
mixin reads the model's state through the attributes `BayesianGMM` defines
(`_family`, `_prior`, `posterior()`, `total_weight`, ...); it is not used
on its own.
"""

import contextlib

import keras
import tensorflow as tf

from tfgmm._engine import inference
from tfgmm import _validation
from tfgmm import callbacks as callbacks_lib
from tfgmm import data as data_lib

_DEFAULT_LEARNING_RATE = {"gradient": 0.01, "sampled": 1e-3}


class Trainer:
  """How a `BayesianGMM` trains with Keras (see the module docstring)."""

  def compile(self, optimizer=None, **kwargs):
    """Configures training; the natural method needs no optimizer.

    Args:
      optimizer: a Keras optimizer for the "gradient" and "sampled" methods;
        None picks Adam (learning rate 0.01 for "gradient", 1e-3 for
        "sampled", the seed blog's). Ignored by "natural".
      **kwargs: passed to `keras.Model.compile` (e.g. `steps_per_execution`).
    """
    if optimizer is None and self.method != "natural":
      optimizer = keras.optimizers.Adam(
          learning_rate=_DEFAULT_LEARNING_RATE[self.method])
    kwargs.setdefault("jit_compile", False)
    super().compile(optimizer=optimizer, **kwargs)

  def compile_from_config(self, config):
    """Recompiles a loaded model, building optimizer slots so they restore."""
    config = keras.saving.deserialize_keras_object(config)
    self.compile(**config)
    if getattr(self, "optimizer", None) is not None:
      self.optimizer.build(self.trainable_variables)

  def fit(self, x=None, y=None, batch_size=None, epochs=1, callbacks=None,
          sample_weight=None, **kwargs):
    """`keras.Model.fit`, initialising q from `x` first if needed.

    Accepts an array [N, D] (Keras batches it, min(N, 65,536) rows per
    batch unless `batch_size` says otherwise, as `tfgmm.fit` does; Keras'
    own default is 32) or a `tf.data.Dataset` of
    [B, D] batches (e.g. from `tfgmm.make_dataset`; (x, None, w) elements
    carry sample weights). `sample_weight` [N] weighs an array's rows. After
    training, components are put in canonical order (decreasing weight).

    An array goes through Keras' own batching, which holds it in the
    model's dtype: a float32 model then sees float64 data rounded to
    float32 before its offset is removed (0.0625 at 1e6). For data far from
    the origin, pass `tfgmm.make_dataset(x, ...)` (which keeps float64 and
    standardises in float64, as `tfgmm.fit` does) or use dtype="float64".
    """
    if not self.compiled:
      self.compile()
    if not isinstance(x, tf.data.Dataset):
      try:
        x = _validation.check_data(x, self.n_features, "x",
                                   dtype=self.compute_dtype,
                                   allow_nan=self._train_allow_nan)
      except ValueError as error:
        raise self._training_data_error(error) from None
      sample_weight = _validation.check_sample_weight(sample_weight,
                                                      x.shape[0])
    elif x.element_spec is not None:
      spec = data_lib.unpack_batch(x.element_spec)
      if getattr(spec, "shape", None) is not None and spec.shape.rank not in (
          None, 2):
        raise ValueError("Expected `x` to yield [B, D] batches. Received a "
                         f"dataset of {spec.shape}: batch it first.")
    if not self.initialized:
      self.initialize(x, sample_weight=sample_weight)
    callbacks = list(callbacks or [])
    epoch_variable = getattr(x, "tfgmm_epoch", None)
    if epoch_variable is not None:
      callbacks.append(callbacks_lib.EpochSeed(epoch_variable))
    if isinstance(x, tf.data.Dataset):
      # A dataset is shuffled by its own pipeline (see `make_dataset`).
      kwargs.setdefault("shuffle", False)
    elif batch_size is None:
      # Keras' default of 32 rows makes thousands of tiny steps.
      batch_size = min(x.shape[0], data_lib.MAX_BATCH)
    self.converged = False
    with self._own_loop():
      history = super().fit(x, y, batch_size=batch_size, epochs=epochs,
                            callbacks=callbacks, sample_weight=sample_weight,
                            **kwargs)
    epochs = len(history.epoch)
    self.n_epochs += epochs
    for key, values in self.training_history.items():
      # A `History` callback passed in keeps the logs of earlier fits.
      logged = history.history.get(key, [])
      values.extend(float(v) for v in logged[max(0, len(logged) - epochs):])
    self.sort_components()
    return history

  def evaluate(self, x=None, y=None, **kwargs):
    """`keras.Model.evaluate`; compiles with the defaults if needed."""
    self._check_initialized("evaluate")
    if not self.compiled:
      self.compile()
    with self._own_loop():
      return super().evaluate(x, y, **kwargs)

  def train_on_batch(self, *args, **kwargs):
    """`keras.Model.train_on_batch`, reporting the mixture's metrics."""
    with self._own_loop():
      return super().train_on_batch(*args, **kwargs)

  def test_on_batch(self, *args, **kwargs):
    """`keras.Model.test_on_batch`, reporting the mixture's metrics."""
    with self._own_loop():
      return super().test_on_batch(*args, **kwargs)

  @contextlib.contextmanager
  def _own_loop(self):
    """Marks a Keras loop of this model's own: see `metrics`."""
    self._loop_depth += 1
    try:
      yield
    finally:
      self._loop_depth -= 1

  def predict(self, x, **kwargs):
    """`keras.Model.predict`: `model(x)` over batches, [N] log densities.

    A fitted model only: an unfitted one's predictive is its prior's,
    which is never the intended answer.
    """
    self._check_initialized("predict")
    return super().predict(x, **kwargs)

  def _batch_terms(self, data):
    """A batch in the model's units, [B, D], and its sample weights, [B]."""
    x, _, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    z = self._to_model_units(x)                                   # [B, D]
    return z, self._row_weights(z, sample_weight)

  @staticmethod
  def _replica_context():
    """The replica context of a step run by a `tf.distribute` strategy with
    more than one replica, else None (one device, or cross-replica code)."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
      return None
    return context

  def _replica_sum(self, values):
    """A nest of tensors summed over the replicas (all-reduce); unchanged
    outside a multi-replica step."""
    context = self._replica_context()
    if context is None:
      return values
    # One all-reduce per dtype (the strategies pack a batch into one tensor),
    # in the order of first appearance: the same on every worker.
    flat = tf.nest.flatten(values)
    summed = list(flat)
    for dtype in dict.fromkeys(t.dtype for t in flat):
      index = [i for i, t in enumerate(flat) if t.dtype == dtype]
      reduced = context.all_reduce(tf.distribute.ReduceOp.SUM,
                                   [flat[i] for i in index])
      for i, t in zip(index, reduced):
        summed[i] = t
    return tf.nest.pack_sequence_as(values, summed)

  def _mean_log_likelihood(self, log_likelihood, sample_weight):
    """(N / (B W)) sum_b w_b ll_b, the batch's estimate of the mean per unit
    of weight over all N rows (total weight W); the plain mean if unweighted.
    """
    rows = tf.cast(tf.shape(log_likelihood)[0], self._dtype)
    scale = tf.cast(self.num_examples / self.total_weight, self._dtype) / rows
    return tf.reduce_sum(sample_weight * log_likelihood) * scale

  def _record(self, mean_ll, kl, rows):
    """Updates the trackers with a batch's mean log-likelihood (data units)
    and KL.

    Under a `tf.distribute` strategy `mean_ll` and `rows` are the replica's
    slice's: every replica records the global batch's (the row-weighted mean
    of the slices' means), as one device would.
    """
    kl_per_point = kl / tf.cast(self.total_weight, self._dtype)
    rows = tf.cast(rows, self._dtype)
    if self._replica_context() is not None:
      # multiply_no_nan: a replica with no rows (a last global batch smaller
      # than the replicas) has a NaN mean.
      total, rows = self._replica_sum((tf.math.multiply_no_nan(mean_ll, rows),
                                       rows))
      mean_ll = total / rows
    self.loss_tracker.update_state(kl_per_point - mean_ll, sample_weight=rows)
    self.log_likelihood_tracker.update_state(mean_ll, sample_weight=rows)
    self.kl_tracker.update_state(kl_per_point, sample_weight=rows)
    results = {m.name: m.result() for m in self._trackers()}
    strategy = tf.distribute.get_strategy()
    if (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
        and strategy.num_replicas_in_sync > len(
            strategy.extended.worker_devices)):
      # Keras 3 reduces a multi-worker step's outputs along their axis 0,
      # which scalars lack (tensorflow/tensorflow#72388): give them one.
      results = {name: value[None] for name, value in results.items()}
    return results

  def _natural_step_size(self, batch_fraction):
    if self.step_size is not None:
      return tf.constant(self.step_size, tf.float64)
    t = tf.cast(self.natural_steps, tf.float64)
    return tf.maximum(tf.cast(batch_fraction, tf.float64),
                      tf.pow(t + 2.0, -0.7))

  def _natural_update(self, z, w):
    """One natural-gradient step on a batch in model units; (mean_ll, kl).

    Under a `tf.distribute` strategy z is the replica's slice of the global
    batch: the slices' statistics and rows are summed over the replicas, so
    every replica takes the global batch's step (and assigns the same q).
    The returned mean log-likelihood is the slice's.
    """
    n_total = tf.cast(self.num_examples, self._dtype)
    rows = tf.cast(tf.shape(z)[0], self._dtype)
    q = self.posterior()
    family = self._family
    lr = family.log_rho(z, q, self._log_weights(q))               # [B, K]
    ll, resp = inference.normalize(lr)                            # [B], [B, K]
    # s = N / B with weighted statistics: unbiased for the full data's.
    stats = family.sufficient_statistics(z, resp, w)
    stats, rows = self._replica_sum((stats, rows))
    kl = self._kl(q)
    rho = self._natural_step_size(rows / n_total)
    self.assign_posterior(
        family.natural_update(q, stats, self._prior, n_total / rows, rho,
                              self.weight_prior))
    self.natural_steps.assign_add(1)
    return self._mean_log_likelihood(ll + self._row_log_det(z), w), kl

  def natural_step(self, x, sample_weight=None):
    """One closed-form natural-gradient step of q on a batch of features.

    For a mixture inside a larger model: the outer model's `train_step`
    computes the features (e.g. an encoder's outputs), updates its own
    weights with its optimizer, and calls this for the mixture's (set
    `mixture.trainable = False` so the optimizer leaves them alone). The
    features' gradient is stopped: the step only moves q. Works eagerly and
    inside `tf.function`; the mixture must be initialised (for example
    `mixture.initialize(encoder(x_sample))` before training).

    Args:
      x: features in data units, [B, D].
      sample_weight: optional weights, [B].

    Returns:
      dict of scalar tensors: `expected_log_likelihood` (the batch's mean,
      data units) and `kl` (KL / total weight) before the step.
    """
    z = self._to_model_units(tf.stop_gradient(x))                 # [B, D]
    mean_ll, kl = self._natural_update(z, self._row_weights(z, sample_weight))
    return {"expected_log_likelihood": mean_ll,
            "kl": kl / tf.cast(self.total_weight, self._dtype)}

  def negative_elbo(self, x, sample_weight=None):
    """The loss the gradient method minimises, on a batch; differentiable.

    KL / W - (N / (B W)) sum_b w_b logsumexp_k log_rho[b, k] (data units):
    the negative evidence lower bound per data point, differentiable with
    respect to q's variables and to `x`. Add it to an outer model's loss to
    train the mixture (and what produces `x`) by gradient.

    Args:
      x: [..., B, D] in data units: an array or a tensor (gradients reach
        it; graph-safe); leading axes count as more rows.
      sample_weight: optional weights, x's shape without its last axis.

    Returns:
      A scalar tensor.
    """
    rows, _ = self._data_rows(x, self._train_allow_nan)           # [M, D]
    z = self._to_model_units(rows)                                # [M, D]
    mean_ll, kl = self._bound_terms(z, self._row_weights(z, sample_weight))
    return kl / tf.cast(self.total_weight, self._dtype) - mean_ll

  def _row_weights(self, z, sample_weight):
    """The rows' weights, [B]: ones when `sample_weight` is None."""
    if sample_weight is None:
      return tf.ones(tf.shape(z)[:1], self._dtype)
    return tf.reshape(tf.cast(sample_weight, self._dtype), [-1])

  def _bound_terms(self, z, w, seed=None):
    """The loss's two terms on a batch: (mean log-likelihood term, KL).

    Differentiable with respect to q's variables and z. The first is the
    (N / (B W))-scaled weighted sum of logsumexp_k log_rho in data units
    (the Jacobian term is constant in q); with `seed` it is the sampled
    method's one-draw estimate instead.

    Args:
      z: [B, D] in model units.
      w: [B] row weights.
      seed: shape [2] int seed for the sampled estimator, or None.
    """
    q = self.posterior()
    if seed is None:
      ll = tf.reduce_logsumexp(
          self._family.log_rho(z, q, self._log_weights(q)), -1)   # [B]
    else:
      ll = self._family.sampled_log_likelihood(
          z, q, seed, self._prior.weight_concentration,
          self.weight_prior)                                      # [B]
    return (self._mean_log_likelihood(ll + self._row_log_det(z), w),
            self._kl(q))

  def train_step(self, data):
    z, w = self._batch_terms(data)                                # [B, D], [B]
    rows = tf.cast(tf.shape(z)[0], self._dtype)
    if self.method == "natural":
      mean_ll, kl = self._natural_update(z, w)
      return self._record(mean_ll, kl, rows)
    seed = None
    if self.method == "sampled":
      seed = tf.stack([tf.cast(self.seed, tf.int64),
                       tf.cast(self.optimizer.iterations, tf.int64)])
    with tf.GradientTape() as tape:
      mean_ll, kl = self._bound_terms(z, w, seed)
      loss = kl / tf.cast(self.total_weight, self._dtype) - mean_ll
      if self._replica_context() is not None:
        # The optimizer sums the replicas' gradients: weigh each replica's
        # estimate by its share of the global batch.
        loss = loss * rows / self._replica_sum(rows)
    variables = self.trainable_variables
    self.optimizer.apply_gradients(zip(tape.gradient(loss, variables),
                                       variables))
    return self._record(mean_ll, kl, rows)

  def test_step(self, data):
    z, w = self._batch_terms(data)
    q = self.posterior()
    ll = tf.reduce_logsumexp(
        self._family.log_rho(z, q, self._log_weights(q)), -1)     # [B]
    # Held-out data: its own weighted mean, with the training set's KL / W.
    mean_ll = (tf.reduce_sum(w * (ll + self._row_log_det(z)))
               / tf.reduce_sum(w))
    return self._record(mean_ll, self._kl(q), tf.shape(z)[0])

  def _kl(self, q):
    """KL(q || p) of the global factors, scalar."""
    return tf.cast(self._family.kl_divergence(q, self._prior,
                                              self.weight_prior), self._dtype)

  def _trackers(self):
    return [self.loss_tracker, self.log_likelihood_tracker, self.kl_tracker]

  @property
  def metrics(self):
    """The `loss`, `expected_log_likelihood` and `kl` trackers while the
    mixture runs a Keras loop of its own (`fit`, `evaluate`,
    `train_on_batch`, `test_on_batch`); [] otherwise.

    A model that holds the mixture inside another layer (a loss layer of a
    Functional model, say) collects its layers' metrics through that layer;
    the mixture's idle trackers would then be logged as the outer model's
    and shadow its own `loss` with 0.
    """
    return self._trackers() if self._loop_depth else []
