"""`BayesianGMM`: the variational posterior of a Gaussian mixture as a Keras model."""

import importlib
import os
import time

import keras
import numpy as np
import tensorflow as tf

from tfgmm._engine import weight_priors
from tfgmm import _validation
from tfgmm._engine import inference
from tfgmm._engine import loops
from tfgmm._engine import predict as predict_lib
from tfgmm import data as data_lib
from tfgmm import export as export_lib
from tfgmm import families
from tfgmm import initialization
from tfgmm import summary as summary_lib
from tfgmm import trainer as trainer_lib

METHODS = ("natural", "gradient", "sampled")


COVARIANCE_TYPES = families.COVARIANCE_TYPES
MEAN_PRIORS = families.MEAN_PRIORS
MISSING = families.MISSING


@keras.saving.register_keras_serializable(package="tfgmm")
class BayesianGMM(trainer_lib.Trainer, keras.Model):
  """Variational posterior of a Bayesian Gaussian mixture with diagonal covariances.

  The model holds q(pi) q(mu, tau) of the conjugate Normal-Gamma mixture and
  trains with `fit` on arrays or `tf.data` minibatches by minimising the
  negative evidence lower bound per data point, `KL / N - mean log-likelihood`.

  #### Mathematical Details

  ```none
  pi         ~ Dirichlet(weight_concentration * ones(K))
  tau[k, d]  ~ Gamma(precision_concentration, precision_rate)
  mu[k, d]   ~ Normal(mean_loc[d], 1 / (mean_precision * tau[k, d]))
  z[n]       ~ Categorical(pi)
  x[n, d]    ~ Normal(mu[z[n], d], 1 / tau[z[n], d])
  ```

  With `weight_prior="dirichlet_process"` the weights instead follow a
  truncated stick-breaking prior (Blei and Jordan 2006):
  v_k ~ Beta(1, weight_concentration) for k < K, v_K = 1,
  pi_k = v_k prod_{j<k} (1 - v_j), and q(v_k) = Beta(1 + c_k,
  weight_concentration + sum_{j>k} c_j), with c_k component k's soft count.
  scikit-learn's `BayesianGaussianMixture` keeps a Beta on the K-th stick
  too and renormalises the weights; here the truncation sets v_K = 1, so the
  weights sum to one without renormalising. Components are kept in
  decreasing order of weight, which keeps the truncation tight; `prune`
  drops the unused ones.

  The prior values are in the units the model works in: with
  `standardize=True` (the default), data are shifted and scaled per feature to
  zero mean and unit variance before the model sees them, so `mean_loc=0`,
  `mean_precision=1` is a prior centred on the data's mean with the data's
  spread. Every public output (densities, means, samples) is in data units;
  densities include the Jacobian of the standardisation.

  The seed TFP blog post's prior (Normal(0, 1) means, Gamma(5, 5) precisions,
  Dirichlet(2) weights, raw units) has this conjugate analogue:
  `BayesianGMM(K, D, weight_concentration=2.0, mean_precision=1.0,
  precision_concentration=5.0, precision_rate=5.0, standardize=False)`.

  Methods (`method=`), all through `compile` / `fit`:
  - "natural": closed-form natural-gradient SVI (Hoffman et al. 2013); no
    optimizer. With one batch holding all the data the step size is 1 and each
    step is exactly one CAVI iteration.
  - "gradient": the same analytic bound minimised by a Keras optimizer
    (default Adam(0.01)) over unconstrained (log-space) parameters.
  - "sampled": the seed blog's estimator: one reparameterised draw of
    (pi, mu, tau) from q per data point (log-space Gamma draws), Adam(1e-3).

  Args:
    n_components: K, the number of components, int >= 1.
    n_features: D, the number of features, int >= 1.
    weight_concentration: Dirichlet prior concentration alpha0 > 0, or the
      Dirichlet-process concentration gamma0 > 0; None means 1 / K.
    mean_loc: prior mean m0, scalar or [D].
    mean_precision: beta0 > 0, the prior precision of a mean in units of its
      component's precision.
    precision_concentration: Gamma prior shape a0 > 0.
    precision_rate: Gamma prior rate b0 > 0, scalar or [D].
    method: "natural", "gradient" or "sampled".
    weight_prior: "dirichlet" (symmetric Dirichlet on the weights) or
      "dirichlet_process" (truncated stick-breaking).
    covariance_type: "diag" (the model above), "full" (a Normal-Wishart
      precision matrix per component), "spherical" (one Gamma precision per
      component, shared by its features: a scalar `precision_rate`) or
      "tied" (one Wishart precision matrix shared by all components); see
      `tfgmm.families`. "full" and "tied" take `degrees_of_freedom` nu0
      (default D) and `scale_matrix` W0 (default I) instead of the Gamma
      settings.
    mean_prior: "conjugate", or "independent" (the seed blog's prior,
      diagonal covariances only).
    missing: "error", or "marginalize" (NaN entries are missing values).
    standardize: learn per-feature location and scale at initialisation.
    dtype: "float32" (default) or "float64".
    seed: int seed of initialisation and sampling; None draws one.
    step_size: natural method only: None for the default schedule
      rho_t = max(B / N, (t + 2)^-0.7), or a float in (0, 1].
    **kwargs: passed to `keras.Model` (e.g. `name`).

  Input shape: [N, D]. Output shape of `model(x)`: [N], log p(x | data).

  #### Examples

  ```python
  model = tfgmm.BayesianGMM(3, 2, seed=0)
  model.fit(tfgmm.make_dataset(x, 500, seed=0), epochs=20)
  model.log_prob(x)          # [N] posterior predictive log density
  model.export("saved_models/gmm")
  ```

  #### References

  [1] Bishop, C. M. Pattern Recognition and Machine Learning, 2006, sec. 10.2.
  [2] Hoffman, Blei, Wang, Paisley. Stochastic Variational Inference. 2013.
  """

  def __init__(self, n_components, n_features, *, weight_concentration=None,
               mean_loc=0.0, mean_precision=1.0, precision_concentration=1.0,
               precision_rate=1.0, method="natural",
               weight_prior="dirichlet", covariance_type="diag",
               mean_prior="conjugate", degrees_of_freedom=None,
               scale_matrix=None, missing="error", standardize=True,
               dtype="float32",
               seed=None, step_size=None, **kwargs):
    family, a = _validation.check_model_arguments(
        METHODS, n_components, n_features,
        weight_concentration=weight_concentration, mean_loc=mean_loc,
        mean_precision=mean_precision,
        precision_concentration=precision_concentration,
        precision_rate=precision_rate, method=method,
        weight_prior=weight_prior, covariance_type=covariance_type,
        mean_prior=mean_prior, degrees_of_freedom=degrees_of_freedom,
        scale_matrix=scale_matrix, missing=missing, standardize=standardize,
        dtype=dtype, seed=seed, step_size=step_size)
    dtype = a.pop("dtype")
    super().__init__(dtype=dtype, **kwargs)
    # The validated arguments, as config values (see `get_config`).
    for name, value in a.items():
      setattr(self, name, value)
    self._family = family
    if self.seed is None:
      self.seed = int(np.random.default_rng().integers(2**31 - 1))
    self.converged = False
    self.n_epochs = 0
    self.training_history = {"loss": [], "expected_log_likelihood": [],
                             "kl": []}
    self.initialization_history = {"loss": [], "expected_log_likelihood": [],
                                   "kl": []}
    # Wall seconds of the last `initialize` (None before it runs).
    self.initialization_seconds = None
    # The sample and settings of the last search (`initialization.Search`),
    # for `tfgmm.fit`'s moves after the full-data CAVI; None without one.
    self.initialization_search = None

    k, d = self.n_components, self.n_features
    self._prior = family.make_prior(
        d, dtype, weight_concentration=self.weight_concentration,
        mean_loc=self.mean_loc, mean_precision=self.mean_precision,
        precision_concentration=self.precision_concentration,
        precision_rate=self.precision_rate,
        degrees_of_freedom=self.degrees_of_freedom,
        scale_matrix=self.scale_matrix)
    # Variables hold q in the family's unconstrained coordinates (log-space
    # positive fields, so an optimizer's steps are relative), starting at the
    # prior; `initialize` sets them from data. The weight field is log alpha
    # (Dirichlet) or log c (stick counts, see `weight_priors.stick_concentrations`).
    start = family.posterior_type(*[
        tf.broadcast_to(t, shape) for t, shape in zip(
            self._prior, self._field_shapes())])
    if self.weight_prior == "dirichlet_process":
      start = start._replace(weight_concentration=tf.ones([k], dtype))
    raw = family.unconstrained_from_posterior(start)
    # Under a `tf.distribute` strategy the natural step assigns q in replica
    # context, the same value on every replica (see `_natural_update`):
    # "only_first_replica" takes replica 0's and mirrors it.
    self._raw_variables = [
        self.add_weight(shape=value.shape, name=name,
                        initializer=keras.initializers.Constant(value.numpy()),
                        aggregation="only_first_replica")
        for name, value in zip(family.variable_names, raw)]
    self.feature_loc = self.add_weight(shape=(d,), initializer="zeros",
                                       dtype="float64", trainable=False,
                                       name="feature_loc")
    self.feature_scale = self.add_weight(shape=(d,), initializer="ones",
                                         dtype="float64", trainable=False,
                                         name="feature_scale")
    self.num_examples = self.add_weight(shape=(), initializer="zeros",
                                        dtype="float64", trainable=False,
                                        name="num_examples")
    # The sum of the sample weights (= num_examples without weights): the
    # "per data point" of the loss is per unit of weight.
    self.total_weight = self.add_weight(shape=(), initializer="zeros",
                                        dtype="float64", trainable=False,
                                        name="total_weight")
    self.natural_steps = self.add_weight(shape=(), initializer="zeros",
                                         dtype="int64", trainable=False,
                                         name="natural_steps",
                                         aggregation="only_first_replica")
    self._initialized = self.add_weight(shape=(), initializer="zeros",
                                        dtype="int32", trainable=False,
                                        name="initialized")
    self.loss_tracker = keras.metrics.Mean(name="loss", dtype=dtype)
    self.log_likelihood_tracker = keras.metrics.Mean(
        name="expected_log_likelihood", dtype=dtype)
    self.kl_tracker = keras.metrics.Mean(name="kl", dtype=dtype)
    self._loop_depth = 0       # Keras loops of this model running (`metrics`)
    self.built = True

  # ------------------------------------------------------------- parameters

  @property
  def _dtype(self):
    """The model's float dtype as a `tf.DType`."""
    return tf.as_dtype(self.compute_dtype)

  @property
  def initialized(self):
    """Whether the variational parameters were set from data.

    Readable inside `tf.function` too: it reads the variable's value when
    the function is traced.
    """
    with tf.init_scope():
      return bool(self._initialized.numpy())

  @property
  def family(self):
    """The covariance family (`tfgmm.families.Family`) of q and the prior."""
    return self._family

  def prior(self):
    """The prior as the family's posterior record (`Posterior`,
    `FullPosterior`, ...) of tensors, in standardised units."""
    return self._prior

  def _field_shapes(self):
    """Shapes of q's fields: [K], [K, D], and [K] / [K, D] / [K, D, D]."""
    return self._family.field_shapes(self.n_components, self.n_features)

  def _log_weights(self, q):
    """E_q[log pi], float64 [K] (or [R, K])."""
    return weight_priors.posterior_log_weights(q, self._prior, self.weight_prior)

  def _log_mean_weights(self, q):
    """log E_q[pi], float64 [K]: the predictive's mixing weights."""
    return weight_priors.log_expected_weights(
        tf.cast(q.weight_concentration, tf.float64),
        tf.cast(self._prior.weight_concentration, tf.float64),
        self.weight_prior)

  def posterior(self):
    """q's parameters as a `Posterior` (`FullPosterior`) of tensors.

    In standardised units. Positivity holds by construction: the positive
    fields are the exponentials of unconstrained variables (log-space, so that
    an optimizer's steps are relative: concentrations grow with N and span
    orders of magnitude); full covariances keep a Cholesky factor with an
    exponentiated diagonal and nu = D - 1 + exp(raw).
    """
    return self._family.posterior_from_unconstrained(
        *[tf.convert_to_tensor(v) for v in self._raw_variables])

  def assign_posterior(self, q, num_examples=None):
    """Sets q from a `Posterior` (`FullPosterior`), standardised units.

    Args:
      q: the family's posterior record.
      num_examples: None, or N for a posterior fitted elsewhere (e.g. by the
        scikit-learn face): the model then counts N rows (weight N) and is
        initialised, as after `initialize`.
    """
    q = type(q)(*[tf.cast(t, self._dtype) for t in q])
    for variable, value in zip(self._raw_variables,
                               self._family.unconstrained_from_posterior(q)):
      variable.assign(value)
    if num_examples is not None:
      self.num_examples.assign(float(num_examples))
      self.total_weight.assign(float(num_examples))
      self._initialized.assign(1)

  def serving_state(self):
    """What an export needs to compute the model's outputs, as tensors.

    Returns:
      `predict_lib.ServingState`: the family, q (standardised units, the
      model's dtype), log E[pi] [K], the standardisation (float64 [D] each),
      the predictive's chunk rows and D.
    """
    self._check_initialized("serving_state")
    q = self.posterior()
    loc, scale = self._standardization()
    return predict_lib.ServingState(
        family=self._family, posterior=q,
        log_mean_weights=tf.cast(self._log_mean_weights(q), self._dtype),
        feature_loc=loc, feature_scale=scale, chunk=self._chunk(),
        n_features=self.n_features)

  def _standardization(self):
    """The standardisation (loc, scale), float64 tensors [D] each."""
    return (tf.convert_to_tensor(self.feature_loc),
            tf.convert_to_tensor(self.feature_scale))

  def _to_model_units(self, x):
    return predict_lib.standardize(x, *self._standardization(), self._dtype)

  def _row_log_det(self, z):
    """log |dz/dx| of each row of z (model units), [B]; see
    `predict_lib.row_log_det`."""
    return predict_lib.row_log_det(z, self._standardization()[1])

  def _mean_row_log_det(self, z, sample_weight=None):
    """The (weighted) mean of `_row_log_det` over z's rows, a float."""
    return predict_lib.mean_row_log_det(z, self._standardization()[1],
                                        sample_weight)

  @property
  def _allow_nan(self):
    """NaN entries are missing values in inference."""
    return self.missing == "marginalize"

  @property
  def _train_allow_nan(self):
    """NaN entries are missing values in training too (diag only)."""
    return self._allow_nan and self._family.trains_on_missing

  def _training_data_error(self, error):
    """A NaN in training data for a full-covariance model: say why."""
    if self._allow_nan and "=nan" in str(error):
      return ValueError(
          f"{str(error).split(' To treat')[0]} covariance_type='full' trains "
          "on complete rows only (missing values are marginalised in "
          "log_prob, responsibilities and exports, not in training): impute "
          "or drop incomplete rows, or use covariance_type='diag'.")
    return error

  def _chunk(self):
    """Rows per chunk of the predictive ([rows, K, D] temporaries)."""
    return self._family.chunk_rows(self.n_components, self.n_features)

  @property
  def estep_chunk_rows(self):
    """Rows per chunk of the full-data E-step (bounds its temporaries)."""
    return self._family.estep_chunk_rows(self.n_components, self.n_features)

  # ---------------------------------------------------------- initialisation

  def initialize(self, x, *, n_init=1, num_examples=None,
                 sample_size=initialization.SAMPLE_SIZE, max_iter=100,
                 tol=1e-5, births=None, merges=None, split_merges=None,
                 deletes=None,
                 seed=None, sample_weight=None, labels=None, progress=None):
    """Sets q from data: standardisation, then a search on a sample.

    One float64 streaming pass learns the per-feature location and scale
    (when `standardize`) and the number of rows N. On a sample of up to
    `sample_size` rows, `tfgmm.initialization.search` races `n_init`
    k-means++ restarts of CAVI, then tries rounds of birth, merge,
    split-and-merge and delete moves, keeping each only if it raises the
    bound (and, while a component is left empty under the finite Dirichlet
    prior, births that take a component from the race's other restarts);
    q is the best fit's posterior scaled to all N rows. Full covariances
    start from the diagonal model's search on the same rows and count the
    sample's statistics N / n times, so that their search climbs the bound
    of all N rows (see `tfgmm.initialization`).

    Args:
      x: array [N, D] or `tf.data.Dataset` of [B, D] batches.
      n_init: restarts, int >= 1 (and, up to 5, the proposals per round of
        moves).
      num_examples: N, if it differs from the rows in `x` (e.g. `x` is a
        sample of a larger stream).
      sample_size: rows used by the search.
      max_iter: CAVI iterations per restart or proposal.
      tol: CAVI tolerance, nats per point; a move must raise the bound by
        more than this.
      births: at most this many accepted split moves that refill a
        component CAVI emptied (see `initialization.split_proposals`).
      merges: at most this many accepted merges of components with
        overlapping responsibilities (see `initialization.merge_proposals`).
      split_merges: at most this many accepted split-and-merge moves or
        pair re-splits (see `initialization.split_merge_proposals` and
        `initialization.resplit_proposals`).
      deletes: at most this many accepted moves that empty a component
        wedged between overlapping clusters (see
        `initialization.delete_proposals`). Each defaults (None) to K: every
        accepted move raises the bound, so the search ends anyway; 0 turns
        a kind of move off.
      seed: int; defaults to the model's seed.
      sample_weight: weights of an array's rows, [N] (a dataset carries its
        own as (x, y, w) elements). They enter the standardisation, the
        k-means++ draws and the statistics.
      labels: None, or hard labels of every row of the array `x`, ints in
        [0, K), [N]: q is then the CAVI posterior of those labels over all
        the rows, and no search runs.
      progress: None, or a callable given the row count of each batch of a
        dataset's summary pass (e.g. a `tfgmm.files.RowCounter`).

    Returns:
      The best bound per point the search found on the sample (float), in
      standardised units; None with `labels`. Per-iteration metrics of the
      search, in data units, are in `initialization_history`; its wall time
      in seconds in `initialization_seconds`.
    """
    started = time.perf_counter()
    n_init = _validation.check_positive_int("n_init", n_init)
    sample_size = _validation.check_positive_int("sample_size", sample_size)
    max_iter = _validation.check_positive_int("max_iter", max_iter)
    moves = {
        name: self.n_components if value is None
        else _validation.check_non_negative_int(name, value)
        for name, value in (("births", births), ("merges", merges),
                            ("split_merges", split_merges),
                            ("deletes", deletes))}
    _validation.check_positive("tol", tol, ())
    if labels is not None:
      labels = _validation.check_labels(x, labels, self.n_components)
    seed = self.seed if seed is None else seed
    try:
      summary = data_lib.summarize(x, self.n_features, sample_size, seed,
                                   sample_weight=sample_weight,
                                   allow_nan=self._train_allow_nan,
                                   progress=progress)
    except ValueError as error:
      raise self._training_data_error(error) from None
    total = summary.num_examples
    total_weight = summary.total_weight
    if num_examples is not None:
      total = _validation.check_positive_int("num_examples", num_examples)
      total_weight *= total / summary.num_examples
    if self.standardize:
      std = np.sqrt(summary.variance)
      # A constant feature keeps unit scale: its rows all sit at the mean
      # (its float64 variance may be a rounding residue, not exactly 0).
      scale = np.where((std > 0) & ~summary.constant, std, 1.0)
      if self._family.isotropic_scale:
        # One scale for every feature (the root mean variance), so that an
        # isotropic model is isotropic in data units too.
        scale = np.full_like(scale, np.sqrt(np.mean(np.square(scale))))
      self.feature_loc.assign(summary.mean)
      self.feature_scale.assign(scale)
    loc, scale = self.feature_loc.numpy(), self.feature_scale.numpy()
    sample = (summary.sample - loc) / scale                       # [n, D]
    bound = None
    trace = np.zeros((0, 2))
    self.initialization_search = None
    if labels is not None:
      q = self._posterior_of_labels(x, labels, sample_weight,
                                    total / summary.num_examples)
    else:
      self.initialization_search = initialization.Search(
          sample, summary.sample_weight, total,
          n_init, max_iter, tol, moves)
      q, bound, trace = initialization.initial_posterior(
          self._family, self._prior, self.weight_prior, self.n_components,
          sample, summary.sample_weight, total,
          np.random.default_rng(seed), n_init, max_iter, tol, **moves)
    self.initialization_history = inference.history_dict(
        trace, self._mean_row_log_det(
            tf.constant(sample, self._dtype), summary.sample_weight))
    self.assign_posterior(q)
    self.num_examples.assign(total)
    self.total_weight.assign(total_weight)
    self._initialized.assign(1)
    self.initialization_seconds = time.perf_counter() - started
    return bound

  def _posterior_of_labels(self, x, labels, sample_weight, scale):
    """The CAVI posterior of hard labels [N] of an array's rows (one pass).

    `scale`: the statistics count this many times (N over the rows in x).
    """
    batches = ((z, tf.one_hot(labels[start:start + int(z.shape[0])],
                              self.n_components, dtype=z.dtype), w)
               for z, start, w in self._model_unit_batches(x, sample_weight))
    q = self._family.posterior_from_statistics(
        initialization.pooled_statistics(self._family, batches), self._prior,
        scale, self.weight_prior)
    return type(q)(*[tf.cast(t, self._dtype) for t in q])

  def _model_unit_batches(self, x, sample_weight):
    """(z [B, D] in model units, first row's index, w [B] or None) over the
    rows of an array, in chunks of the E-step's size."""
    n = np.shape(x)[0]
    weights = _validation.check_sample_weight(sample_weight, n)
    chunk = self.estep_chunk_rows
    for start in range(0, n, chunk):
      rows = slice(start, start + chunk)
      yield (self._to_model_units(np.asarray(x[rows])), start,
             None if weights is None
             else tf.constant(weights[rows], self._dtype))

  def _check_initialized(self, what):
    if not self.initialized:
      raise ValueError(f"`{what}` needs a fitted model: this BayesianGMM was "
                       "never initialised. Call `model.fit(...)`, "
                       "`model.initialize(x)` or `tfgmm.fit(...)` first.")

  def sort_components(self):
    """Puts components in canonical order: decreasing expected weight.

    Permutes q's variables and, for the gradient methods, the optimizer's
    per-component slots alike, so training can continue.
    """
    alpha = self._raw_variables[0].numpy()  # log alpha (or log c): same order
    order = np.argsort(-alpha, kind="stable")
    if np.array_equal(order, np.arange(self.n_components)):
      return order
    # Only per-component fields move; shared ones (a tied precision) stay.
    axes = dict(zip((v.path for v in self._raw_variables),
                    self._family.field_component_axes))
    for variable in self._raw_variables:
      if axes[variable.path] is not None:
        variable.assign(tf.gather(variable, order, axis=axes[variable.path]))
    optimizer = getattr(self, "optimizer", None)
    if optimizer is not None and optimizer.built:
      for slot in optimizer.variables:
        owner = self._slot_owner(slot)
        if owner is not None and axes[owner.path] is not None:
          slot.assign(tf.gather(slot, order, axis=axes[owner.path]))
    return order

  def _slot_owner(self, slot):
    """The variable of q whose optimizer state `slot` is, or None.

    Keras names a slot `{variable.path with '/' as '_'}_{slot name}` and
    gives it the variable's shape; shapes alone are ambiguous (a tied
    [D, D] factor and [K, D] means when K = D).
    """
    for variable in self._raw_variables:
      prefix = variable.path.replace("/", "_") + "_"
      if (slot.name.startswith(prefix)
          and tuple(slot.shape) == tuple(variable.shape)):
        return variable
    return None

  # ------------------------------------------------------------------ pruning

  def effective_components(self, threshold=1e-3):
    """The components whose expected weight E_q[pi_k] is at least `threshold`.

    With many more components than clusters, the surplus ones end with a
    negligible weight (quickly under the Dirichlet-process prior or a small
    Dirichlet concentration); `prune` removes them.

    Args:
      threshold: float in [0, 1).

    Returns:
      Indices of the kept components, int numpy [K'], in increasing order.
    """
    self._check_initialized("effective_components")
    threshold = _validation.check_finite_number("threshold", threshold, ())
    if not 0 <= threshold < 1:
      raise ValueError(f"Expected `threshold` in [0, 1). "
                       f"Received: threshold={threshold!r}.")
    weights = np.exp(self._log_mean_weights(self.posterior()).numpy())
    return np.flatnonzero(weights >= threshold)

  def prune(self, threshold=1e-3):
    """A new, smaller `BayesianGMM` without the negligible components.

    Variables cannot change shape, so the kept components' posteriors are
    copied into a new model with K' components and the same prior,
    standardisation and training state (the optimizer's state is not
    carried over: compile the new model to train it further). Under the
    stick-breaking prior the sticks are re-derived from the kept components'
    counts, so the weight a dropped component held moves to the sticks that
    remain. Its exports are smaller in proportion.

    Args:
      threshold: components with E[pi_k] below it are dropped.

    Returns:
      The pruned model (this model is unchanged).
    """
    keep = self.effective_components(threshold)
    if keep.size == 0:
      raise ValueError(
          f"`threshold` drops every component: the largest expected weight "
          f"is below it. Received: threshold={threshold!r}.")
    config = self.get_config()
    config["n_components"] = int(keep.size)
    pruned = type(self).from_config(config)
    pruned.assign_posterior(
        self._family.take_components(self.posterior(), keep))
    for name in ("feature_loc", "feature_scale", "num_examples",
                 "natural_steps", "_initialized"):
      getattr(pruned, name).assign(getattr(self, name))
    pruned.converged, pruned.n_epochs = self.converged, self.n_epochs
    pruned.training_history = {k: list(v)
                               for k, v in self.training_history.items()}
    pruned.initialization_history = {
        k: list(v) for k, v in self.initialization_history.items()}
    pruned.initialization_seconds = self.initialization_seconds
    return pruned

  # --------------------------------------------------------------- inference

  def call(self, inputs, training=None):
    """log p(x | data) of each row, [N]: the exact posterior predictive.

    Differentiable with respect to `inputs`; usable symbolically inside a
    larger Keras model before the mixture is fitted. Training a larger model
    through an uninitialised mixture raises (when its train step is traced):
    initialise it first, e.g. `mixture.initialize(encoder(x_sample))`.
    """
    if training and not self.initialized:
      raise ValueError(
          "This BayesianGMM is trained inside a larger model but was never "
          "initialised: it would train from its prior's single broad "
          "component. Initialise it from the features first, e.g. "
          "`mixture.initialize(encoder(x_sample))`.")
    try:
      dims = tuple(inputs.shape)   # TensorShape or a KerasTensor's tuple
    except (TypeError, ValueError):
      dims = None                  # unknown rank
    if dims is not None and (len(dims) != 2
                             or dims[1] not in (None, self.n_features)):
      raise ValueError(f"Expected `inputs` of shape [N, {self.n_features}]. "
                       f"Received: inputs.shape={tuple(inputs.shape)}.")
    if tf.executing_eagerly() and not isinstance(inputs, keras.KerasTensor):
      self._check_initialized("call")
      # Eager calls fail early on NaN/Inf, like `log_prob` (a graph-mode
      # call inside a larger model adds no check to its graph).
      bad = tf.logical_not(tf.math.is_finite(inputs))
      if self._allow_nan:
        bad = tf.logical_and(bad, tf.logical_not(tf.math.is_nan(inputs)))
      if bool(tf.reduce_any(bad)):
        row, column = tf.where(bad)[0].numpy()
        raise ValueError(
            f"Expected `inputs` to be finite. Received: inputs[{row}, "
            f"{column}]={float(inputs[row, column])!r}.")
    loc, scale = self._standardization()
    q = self.posterior()
    return predict_lib.predict(self._family, "log_prob", inputs, q,
                    self._log_mean_weights(q), loc, scale, self._chunk())

  def _inference_input(self, x, what):
    """`_data_rows` of x for a fitted model's output `what`."""
    self._check_initialized(what)
    return self._data_rows(x, self._allow_nan)

  def _data_rows(self, x, allow_nan):
    """x's rows in data units, float64 [M, D], and its batch shape [...].

    Arrays (numpy, lists) are validated as data: rank 2 or more, width D,
    finite (NaN allowed as a missing value with `allow_nan`). Tensors stay
    in their graph, so gradients reach them and `tf.function` can trace the
    call: eager tensors are validated like arrays, symbolic ones by their
    static shape and dtype.
    """
    if not isinstance(x, (tf.Tensor, tf.Variable)):
      array, batch_shape = _validation.check_data(
          x, self.n_features, "x", dtype="float64", allow_nan=allow_nan,
          batched=True)
      return tf.constant(array), tf.constant(batch_shape, tf.int32)
    if not (x.dtype.is_floating or x.dtype.is_integer):
      raise TypeError("Expected `x` to be a numeric tensor. Received: x "
                      f"with dtype {x.dtype.name}.")
    if tf.executing_eagerly():
      _validation.check_data(x, self.n_features, "x", dtype=None,
                             allow_nan=allow_nan, batched=True)
    elif x.shape.rank is not None and (
        x.shape.rank < 2 or x.shape[-1] not in (None, self.n_features)):
      raise ValueError(f"Expected `x` of shape [..., N, {self.n_features}]. "
                       f"Received: x.shape={tuple(x.shape)}.")
    rows = tf.reshape(tf.cast(x, tf.float64), [-1, self.n_features])
    return rows, tf.shape(x)[:-1]                     # [M, D], [...]

  def _apply(self, name, x, what):
    """A `predict_lib.predict` output of x [..., D], [...] or [..., K], for
    the public method `what`."""
    rows, batch_shape = self._inference_input(x, what)
    loc, scale = self._standardization()
    q = self.posterior()
    out = predict_lib.compiled_predict(self._family, name, self._dtype)(
        rows, q, self._log_mean_weights(q), loc, scale,
        tf.constant(self._chunk(), tf.int32))         # [M] or [M, K]
    return tf.reshape(out, tf.concat([batch_shape, tf.shape(out)[1:]], 0))

  def log_prob(self, x):
    """Posterior predictive log density log p(x | data) in data units.

    ```none
    p(x | data) = sum_k E[pi_k] prod_d StudentT(x_d | 2 a_kd, m_kd, s_kd)
    s_kd = sqrt(b_kd (beta_kd + 1) / (a_kd beta_kd))   (Bishop 10.81)
    ```

    Graph-safe and differentiable: with a tensor `x` it runs inside
    `tf.function` and gradients flow to `x` (e.g. to an encoder's weights).

    Args:
      x: array-like or tensor [..., N, D]; leading axes are batch axes.

    Returns:
      log_prob: [..., N] tensor in the model's dtype.
    """
    return self._apply("log_prob", x, "log_prob")

  def responsibilities(self, x):
    """p(z = k | x, data) proportional to E[pi_k] StudentT_k(x), [..., N, K].

    Consistent with `log_prob`: the row sums of E[pi_k] StudentT_k(x) are
    exp(log_prob(x)). x: array-like or tensor [..., N, D]; graph-safe and
    differentiable as `log_prob` is.
    """
    return tf.exp(self._apply("log_responsibilities", x,
                              "responsibilities"))

  def assign(self, x, temperature=0.0, seed=None):
    """Component labels, [..., N] int32 (graph-safe).

    Args:
      x: array-like or tensor [..., N, D].
      temperature: 0 takes the most probable component; T > 0 draws from
        softmax(log responsibilities / T) (T = 1 samples the posterior).
      seed: int seed for T > 0; defaults to the model's seed.
    """
    seed = _validation.check_seed("seed", seed)
    _validation.check_finite_number("temperature", temperature, ())
    if temperature < 0:
      raise ValueError(f"Expected `temperature` >= 0. "
                       f"Received: temperature={temperature!r}.")
    log_r = self._apply("log_responsibilities", x, "assign")  # [..., N, K]
    if temperature == 0:
      return tf.argmax(log_r, -1, output_type=tf.int32)
    seed = self.seed if seed is None else seed
    logits = tf.reshape(tf.cast(log_r, tf.float64) / float(temperature),
                        [-1, self.n_components])                  # [M, K]
    draws = tf.random.stateless_categorical(
        logits, 1, tf.constant([seed, 1], tf.int64))[:, 0]        # [M]
    return tf.reshape(tf.cast(draws, tf.int32), tf.shape(log_r)[:-1])

  def sample(self, n, seed=None):
    """n draws from the posterior predictive in data units, [n, D]."""
    self._check_initialized("sample")
    n = _validation.check_positive_int("n", n)
    seed = _validation.check_seed("seed", seed)
    seed = self.seed if seed is None else seed
    loc, scale = self._standardization()
    q = self.posterior()
    z = self._family.sample_predictive(
        tf.constant(n, tf.int32), tf.constant([seed, 2], tf.int64), q,
        tf.cast(self._log_mean_weights(q), self._dtype))
    return tf.cast(loc + scale * tf.cast(z, tf.float64), self._dtype)

  def elbo(self, x, sample_weight=None):
    """The evidence lower bound of `x` as a data set, in data units (scalar).

    sum_n w_n logsumexp_k log_rho[n, k] - KL(q || p), with log_rho the CAVI
    local term; data arrive in chunks (array, or dataset whose (x, y, w)
    elements carry weights).

    Args:
      x: array [N, D] or `tf.data.Dataset` of [B, D] batches.
      sample_weight: weights of an array's rows, [N], or None.
    """
    self._check_initialized("elbo")
    q = self.posterior()
    total = 0.0
    if isinstance(x, tf.data.Dataset):
      batches = ((data_lib.unpack_batch(b), data_lib.unpack_sample_weight(b))
                 for b in x)
    else:
      array = _validation.check_data(x, self.n_features, "x",
                                     self.compute_dtype,
                                     allow_nan=self._train_allow_nan)
      batches = [(array, _validation.check_sample_weight(sample_weight,
                                                         array.shape[0]))]
    for features, w in batches:
      z = self._to_model_units(features)
      _, ll = loops.statistics(self._family, z, q, self.estep_chunk_rows,
                                   self._log_weights(q), w)
      rows = (float(z.shape[0]) if w is None
              else float(tf.reduce_sum(tf.cast(w, tf.float64))))
      total += float(ll) + rows * self._mean_row_log_det(z, w)
    kl = float(loops.kl_divergence(self._family, q, self._prior,
                                   self.weight_prior))
    return tf.constant(total - kl, tf.float64)

  # ----------------------------------------------- TensorFlow Probability

  def predictive_distribution(self):
    """The posterior predictive as a `tfd.MixtureSameFamily`, data units.

    Components: `tfd.Independent(tfd.StudentT)` (diagonal families) or
    `tfd.MultivariateStudentTLinearOperator` (full), mixed by E[pi]; the
    standardisation is folded into their locations and scales. Its
    `log_prob` equals `log_prob` on complete rows (`missing="marginalize"`
    marginalises NaN entries, which a TFP distribution does not); under the
    independent prior both are the moment-matched density (`sample` draws
    from the exact predictive). Float32 models evaluate it in float32 from
    the origin, where `log_prob` removes the offset in float64: for data far
    from the origin, use dtype="float64". Imports TensorFlow Probability.
    """
    self._check_initialized("predictive_distribution")
    q = self.posterior()
    return _distributions().predictive(
        self._family, q, self._log_mean_weights(q), *self._standardization())

  def posterior_distribution(self):
    """q as a `tfd.JointDistributionNamed`, data units.

    Keys: "weights" [K] (`tfd.Dirichlet`) or, under the Dirichlet-process
    prior, "sticks" [K - 1] (Beta); "precisions" ([K, D] Gamma per feature,
    or [K, D, D] `tfd.WishartTriL`); "means" [K, D] (Normal given the
    precisions; independent of them under the independent prior). See
    `tfgmm.distributions`. Imports TensorFlow Probability.
    """
    self._check_initialized("posterior_distribution")
    return _distributions().joint(self._family, self.posterior(), self._prior,
                                  self.weight_prior, *self._standardization())

  def prior_distribution(self):
    """The prior as a `tfd.JointDistributionNamed` in data units (keys as
    `posterior_distribution`'s; before fitting, data units are model units).
    """
    distributions = _distributions()
    q = distributions.prior_as_posterior(self._family, self._prior,
                                         self.weight_prior, self.n_components,
                                         self.n_features)
    return distributions.joint(self._family, q, self._prior,
                               self.weight_prior, *self._standardization())

  def posterior_mean(self):
    """Posterior means of the weights, component means and precisions, in
    data units; see `tfgmm.summary.posterior_mean`."""
    self._check_initialized("posterior_mean")
    return summary_lib.posterior_mean(self)

  def posterior_summary(self):
    """Posterior means and standard deviations, in data units: `weights`,
    `weights_sd` [K], `means`, `means_sd`, `stddevs`, `stddevs_sd` [K, D];
    see `tfgmm.summary.posterior_summary`."""
    self._check_initialized("posterior_summary")
    return summary_lib.posterior_summary(self)

  # ------------------------------------------------------------ persistence

  def __repr__(self):
    fitted = self.initialized
    return (f"BayesianGMM(n_components={self.n_components}, n_features="
            f"{self.n_features}, covariance_type={self.covariance_type!r}, "
            f"weight_prior={self.weight_prior!r}, mean_prior="
            f"{self.mean_prior!r}, method={self.method!r}, dtype="
            f"{self.compute_dtype!r}, fitted={fitted}, converged="
            f"{self.converged}, epochs={self.n_epochs})")

  def summary(self, line_length=None, positions=None, print_fn=None,
              **kwargs):
    """Prints the model: its settings, state and variational parameters.

    Keras' own table lists sublayers, which a mixture has none of; this
    one lists q's fields (standardised units) with their shapes, and the
    standardisation. Arguments as `keras.Model.summary` (only `print_fn`
    and `line_length` are used).
    """
    del positions, kwargs
    print_fn = print_fn or print
    width = line_length or 78
    q = self.posterior()
    rows = [(name, tuple(t.shape), int(t.shape.num_elements()))
            for name, t in zip(q._fields, q)]
    rows += [(v.name, tuple(v.shape), int(np.prod(v.shape)))
             for v in (self.feature_loc, self.feature_scale)]
    lines = [repr(self), "-" * width,
             f"{'variational parameter':<32}{'shape':<24}{'size':>10}",
             "-" * width]
    lines += [f"{name:<32}{str(shape):<24}{size:>10}"
              for name, shape, size in rows]
    lines += ["-" * width,
              f"prior: {self.weight_prior} weights "
              f"(concentration {self.weight_concentration:g}), "
              f"{self.mean_prior} {self._family.precision_prior} "
              "components"]
    for line in lines:
      print_fn(line)

  def get_config(self):
    config = super().get_config()
    config.update({
        "n_components": self.n_components,
        "n_features": self.n_features,
        "weight_concentration": self.weight_concentration,
        "mean_loc": self.mean_loc,
        "mean_precision": self.mean_precision,
        "precision_concentration": self.precision_concentration,
        "precision_rate": self.precision_rate,
        "method": self.method,
        "weight_prior": self.weight_prior,
        "covariance_type": self.covariance_type,
        "mean_prior": self.mean_prior,
        "degrees_of_freedom": self.degrees_of_freedom,
        "scale_matrix": self.scale_matrix,
        "missing": self.missing,
        "standardize": self.standardize,
        "dtype": self.compute_dtype,
        "seed": self.seed,
        "step_size": self.step_size,
    })
    return config

  @classmethod
  def from_config(cls, config):
    config = dict(config)
    config.pop("trainable", None)
    return cls(**config)

  def export(self, filepath, format="tf_saved_model", verbose=None,
             input_signature=None, version=None, **kwargs):
    """Writes a SavedModel with the mixture's serving signatures.

    With `format="tf_saved_model"` (the default) the SavedModel at `filepath`
    (or, with `version=N`, at `filepath/N`, the layout TF Serving loads) has
    these signatures, each with one named output, loadable with plain
    TensorFlow (no tfgmm, no TFP):

    - `serving_default`: `x` float32 [None, D] -> `log_prob` float32 [None]
    - `responsibilities`: `x` -> `responsibilities` float32 [None, K]
    - `assign`: `x` -> `labels` int32 [None]
    - `sample`: `n` int32 scalar, `seed` int64 scalar -> `samples` [n, D]

    NaN entries of `x` are missing values when the model was built with
    `missing="marginalize"`. Other formats go to `keras.Model.export`.

    Returns:
      The SavedModel's directory.
    """
    if format != "tf_saved_model":
      if version is not None:
        raise ValueError("`version` applies to format='tf_saved_model'. "
                         f"Received: format={format!r}, version={version!r}.")
      return super().export(filepath, format=format, verbose=verbose,
                            input_signature=input_signature, **kwargs)
    self._check_initialized("export")
    if version is not None:
      version = _validation.check_non_negative_int("version", version)
      filepath = os.path.join(os.fspath(filepath), str(version))
    return export_lib.export_saved_model(self.serving_state(), filepath)


def _distributions():
  """`tfgmm.distributions`, imported on first use (it imports TFP)."""
  return importlib.import_module("tfgmm.distributions")
