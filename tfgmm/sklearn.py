"""scikit-learn's `BayesianGaussianMixture`, fitted by tfgmm.

`tfgmm.sklearn.BayesianGaussianMixture` takes scikit-learn's constructor
parameters (with their defaults), sets its fitted attributes and has its
methods, so code written for `sklearn.mixture.BayesianGaussianMixture`
switches by changing the import:

```python
from tfgmm.sklearn import BayesianGaussianMixture

bgm = BayesianGaussianMixture(n_components=5, random_state=0).fit(x)
bgm.predict(x), bgm.weights_, bgm.covariances_
bgm.to_keras()            # the fitted `tfgmm.BayesianGMM` (export, Keras)
```

The fit runs tfgmm's compiled CAVI loop on the Keras model `BayesianGMM`;
`partial_fit` takes natural-gradient steps on minibatches. scikit-learn is an
optional dependency (`pip install tfgmm[sklearn]`): only this module imports
it, and `import tfgmm` does not import this module.

#### Where the two models coincide, and where they differ

With `covariance_type="full"` and
`weight_concentration_prior_type="dirichlet_distribution"` the model, the
initialisation (the same `random_state` draws the same k-means labels) and
each CAVI iteration are scikit-learn's (Bishop 2006, sec. 10.2), so the
fitted parameters agree to rounding (with `reg_covar=0`; see below) up to the
order of the components. The differences:

- Component order: components come out in decreasing order of weight
  (tfgmm's canonical order, which keeps a stick-breaking truncation tight),
  so labels are a permutation of scikit-learn's.
- `covariance_type="diag"` is tfgmm's Normal-Gamma model, independent per
  feature: tau_kd ~ Gamma(a0, b0) with a0 = degrees_of_freedom_prior / 2 and
  b0 = covariance_prior / 2. Its global (M) step equals scikit-learn's, but
  scikit-learn's diagonal E-step keeps the Wishart term
  sum_d digamma((nu - d) / 2) where this model has D digamma(nu / 2): the
  fits are the same at D = 1 and differ slightly for D > 1.
- `weight_concentration_prior_type="dirichlet_process"` (the default): the
  truncation sets the last stick v_K = 1, so E[pi] sums to one; scikit-learn
  keeps a Beta(1 + N_K, gamma0) on the last stick and renormalises
  `weights_`. The last component's E[log pi_K], and so the fits, differ
  slightly. `weight_concentration_` is (1 + N_k, gamma0 + sum_{j>k} N_j)
  in both, and `weights_` is scikit-learn's function of it (the normalised
  expectation of all K sticks); the model's predictive (`score_samples`,
  `sample`'s densities) weighs by its own E[pi].
- `reg_covar` is added to the diagonal of the prior's covariance
  (W0^-1 + reg_covar I, or b0 = (covariance_prior + reg_covar) / 2), not to
  each component's empirical covariance (scikit-learn adds N_k reg_covar I to
  W_k^-1). tfgmm's posterior covariances are the prior's plus positive
  semi-definite terms, so a proper prior is all they need; `reg_covar` keeps
  the default data-dependent prior proper when the data's covariance is
  singular (a constant feature, N <= D). At the default 1e-6 the difference
  is negligible for data of unit order; `reg_covar=0` reproduces
  scikit-learn's updates exactly.
- `tol` applies to the change of the total lower bound, as scikit-learn's
  Bayesian mixture does (its documentation says "average gain", but its
  bound is a sum over the samples): the same `tol` stops after the same
  iterations.
- `lower_bound_` is the full evidence lower bound per sample, every constant
  included (comparable between models and data sets); scikit-learn's is a
  total with the constant terms dropped.
- `score_samples` returns the posterior predictive log density
  log p(x | data), a mixture of Student-t densities (Bishop 10.81) with
  weights E[pi]. scikit-learn plugs point estimates (`weights_`, `means_`,
  `covariances_`) into a Gaussian mixture, which ignores the parameters'
  posterior uncertainty and is overconfident for small components; this is
  a deliberate improvement. The two agree as N_k grows. `predict` and
  `predict_proba` keep scikit-learn's E-step responsibilities.
- `sample` draws from the same posterior predictive (so its draws follow the
  density `score_samples` evaluates), with scikit-learn's scheme: component
  counts ~ Multinomial(n, weights_), then points; scikit-learn draws from the
  plug-in Gaussians instead.
- `covariance_type="spherical"` and `"tied"` are tfgmm's exact conjugate
  models, not scikit-learn's updates, which are heuristic for these two
  types. Spherical: one precision tau_k ~ Gamma(a0, b0) per component, and
  each point adds D / 2 to its shape (a_k = a0 + N_k D / 2), all D features
  measuring the one precision; scikit-learn's degrees of freedom grow by
  one per point (nu0 + N_k) and its E-step uses a D-dimensional Wishart's
  terms. The prior maps to a0 = D nu0 / 2, b0 = D covariance_prior / 2 (nu0
  pseudo-points), so the global step's `covariances_` = b_k / a_k is
  scikit-learn's formula and `degrees_of_freedom_` = 2 a_k / D = nu0 + N_k;
  the E-steps differ. Tied: one Lambda ~ Wishart(W0, nu0) shared by all
  components, nu = nu0 + N and W^-1 = W0^-1 + sum_k [S_k + beta0 N_k /
  beta_k (xbar_k - m0)(xbar_k - m0)^T] (the prior counted once, every point
  once); scikit-learn counts the data 1 / K times (nu0 + N / K, and the
  scatter divided by K). The fits therefore differ at every finite N; on
  well-separated data they agree at convergence in the weights and labels
  (tests/test_spherical_tied.py), not iteration by iteration.
- Extras: `partial_fit` (natural-gradient steps on minibatches) and
  `to_keras`.

#### References

[1] Bishop, C. M. Pattern Recognition and Machine Learning, 2006, sec. 10.2.
[2] Blei, D. M. and Jordan, M. I. Variational inference for Dirichlet process
    mixtures. Bayesian Analysis, 2006.
[3] Hoffman, Blei, Wang, Paisley. Stochastic Variational Inference. JMLR 2013.
"""

import numbers
import time
import warnings

import numpy as np

try:
  from sklearn import base as sklearn_base
  from sklearn import cluster as sklearn_cluster
  from sklearn.exceptions import ConvergenceWarning
  from sklearn.utils import check_random_state
  from sklearn.utils.validation import check_is_fitted
  from sklearn.utils.validation import validate_data
except ImportError as error:  # pragma: no cover - exercised without the extra
  raise ImportError(
      "tfgmm.sklearn needs scikit-learn (>= 1.6) and scipy: install them "
      "with `pip install tfgmm[sklearn]`.") from error

import tensorflow as tf

from tfgmm._engine import inference
from tfgmm._engine import loops
from tfgmm._engine import weight_priors
from tfgmm import families
from tfgmm import model as model_lib

__all__ = ["BayesianGaussianMixture"]

# scikit-learn's vocabulary; the face offers the types whose family has a
# scikit-learn layout (`Family.sklearn`).
_COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
_SUPPORTED_COVARIANCE_TYPES = tuple(
    t for t in families.COVARIANCE_TYPES if families.get(t).sklearn is not None)
_INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")
_WEIGHT_PRIOR_TYPES = {"dirichlet_process": "dirichlet_process",
                       "dirichlet_distribution": "dirichlet"}


class BayesianGaussianMixture(sklearn_base.DensityMixin,
                              sklearn_base.BaseEstimator):
  """Variational Bayesian Gaussian mixture: scikit-learn's API, tfgmm's fit.

  A drop-in for `sklearn.mixture.BayesianGaussianMixture`: the same
  parameters, defaults, fitted attributes (in scikit-learn's shapes for each
  `covariance_type`) and methods, plus `partial_fit` and `to_keras`. See the
  module docstring for where the model and the outputs differ from
  scikit-learn's: with 'spherical' and 'tied' the models themselves differ
  (tfgmm's updates are the exact conjugate ones, scikit-learn's heuristic),
  and only converged fits on well-separated data agree (weights, labels).

  Parameters
  ----------
  n_components : int, default=1
      K, the number of components (an upper bound on those used).
  covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
      'full': a Normal-Wishart prior per component (scikit-learn's model).
      'diag': tfgmm's Normal-Gamma prior per component and feature.
      'spherical': one Gamma precision per component (a0 = D nu0 / 2,
      b0 = D covariance_prior / 2), exact conjugate updates.
      'tied': one Wishart precision shared by all components, exact
      conjugate updates (nu = nu0 + N).
  tol : float, default=1e-3
      Convergence threshold on the change of the total lower bound (as
      scikit-learn's Bayesian mixture; `lower_bound_` is per sample).
  reg_covar : float, default=1e-6
      Non-negative, added to the diagonal of the prior's covariance (the
      Wishart W0^-1, or the Gamma rate as 2 b0).
  max_iter : int, default=100
      CAVI iterations per initialisation (0 keeps the initial posterior).
  n_init : int, default=1
      Initialisations; the one with the largest lower bound is kept.
  init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, \
default='kmeans'
      The initial responsibilities, drawn as scikit-learn draws them.
  weight_concentration_prior_type : {'dirichlet_process', \
'dirichlet_distribution'}, default='dirichlet_process'
      The truncated stick-breaking prior, or a symmetric Dirichlet.
  weight_concentration_prior : float or None, default=None
      gamma0 (stick-breaking) or alpha0 (Dirichlet) > 0; None means 1 / K.
  mean_precision_prior : float or None, default=None
      beta0 > 0; None means 1.
  mean_prior : array-like of shape (n_features,) or None, default=None
      m0; None means the mean of X.
  degrees_of_freedom_prior : float or None, default=None
      nu0 > n_features - 1 (for 'diag', a0 = nu0 / 2; for 'spherical',
      a0 = D nu0 / 2); None means n_features.
  covariance_prior : float, array-like or None, default=None
      W0^-1, of shape (n_features, n_features) for 'full' and 'tied'; 2 b0,
      of shape (n_features,) for 'diag'; a float (2 b0 / D) for
      'spherical'. None means the covariance of X ('full', 'tied'), its
      variances ('diag') or their mean ('spherical').
  random_state : int, RandomState instance or None, default=None
      Seeds the initialisation and `sample`; an int also seeds the Keras
      model's own sampling.
  warm_start : bool, default=False
      Start `fit` from the previous fit's posterior (one initialisation).
  verbose : int, default=0
      1 prints each initialisation, 2 also the bound's changes.
  verbose_interval : int, default=10
      Iterations between printed lines.

  Attributes
  ----------
  weights_ : ndarray of shape (n_components,)
      E[pi], the posterior mean weights (they sum to one).
  means_ : ndarray of shape (n_components, n_features)
      m_k, the posterior means of the component means.
  covariances_ : ndarray
      'full': W_k^-1 / nu_k, shape (n_components, n_features, n_features);
      'tied': W^-1 / nu, shape (n_features, n_features);
      'diag': b_kd / a_k = 1 / E[tau_kd], shape (n_components, n_features);
      'spherical': b_k / a_k = 1 / E[tau_k], shape (n_components,).
  precisions_ : ndarray
      The inverses of `covariances_` (E[Lambda_k] = nu_k W_k; E[Lambda] =
      nu W; E[tau_kd]; E[tau_k]).
  precisions_cholesky_ : ndarray
      'full', 'tied': upper triangular U with U U^T = precisions_ (per
      component for 'full'), as scikit-learn stores them; 'diag',
      'spherical': sqrt(precisions_).
  converged_ : bool
      Whether the best initialisation met `tol` within `max_iter`.
  n_iter_ : int
      CAVI iterations of the best initialisation (plus the natural-gradient
      steps of `partial_fit`).
  lower_bound_ : float
      The evidence lower bound per sample of the final posterior (with
      max_iter=0, of the initial one; after `partial_fit`, the last batch's
      estimate, taken before its step).
  lower_bounds_ : list of float
      The bound per sample after each iteration of the best initialisation.
  weight_concentration_prior_ : float
      gamma0 or alpha0.
  weight_concentration_ : ndarray or tuple of ndarray
      Dirichlet: alpha_k, shape (n_components,); stick-breaking: the Beta
      parameters (1 + N_k, gamma0 + sum_{j>k} N_j) of the sticks.
  mean_precision_prior_ : float
  mean_precision_ : ndarray of shape (n_components,)
      beta_k.
  mean_prior_ : ndarray of shape (n_features,)
  degrees_of_freedom_prior_ : float
  degrees_of_freedom_ : ndarray of shape (n_components,) or float
      nu_k ('diag': 2 a_k; 'spherical': 2 a_k / D; 'tied': the shared nu,
      a float).
  covariance_prior_ : ndarray
      The covariance prior before `reg_covar` is added.
  n_features_in_ : int
  feature_names_in_ : ndarray of shape (n_features_in_,)
      Defined only when X has feature names that are all strings.

  #### Examples

  ```python
  from tfgmm.sklearn import BayesianGaussianMixture
  bgm = BayesianGaussianMixture(n_components=10, random_state=0).fit(x)
  labels = bgm.predict(x)              # scikit-learn's E-step labels
  density = bgm.score_samples(x)       # posterior predictive log density
  for batch in batches:                # or minibatches
    bgm.partial_fit(batch, total_samples=n)
  bgm.to_keras().export("saved_models/gmm")
  ```
  """

  def __init__(self, *, n_components=1, covariance_type="full", tol=1e-3,
               reg_covar=1e-6, max_iter=100, n_init=1, init_params="kmeans",
               weight_concentration_prior_type="dirichlet_process",
               weight_concentration_prior=None, mean_precision_prior=None,
               mean_prior=None, degrees_of_freedom_prior=None,
               covariance_prior=None, random_state=None, warm_start=False,
               verbose=0, verbose_interval=10):
    self.n_components = n_components
    self.covariance_type = covariance_type
    self.tol = tol
    self.reg_covar = reg_covar
    self.max_iter = max_iter
    self.n_init = n_init
    self.init_params = init_params
    self.weight_concentration_prior_type = weight_concentration_prior_type
    self.weight_concentration_prior = weight_concentration_prior
    self.mean_precision_prior = mean_precision_prior
    self.mean_prior = mean_prior
    self.degrees_of_freedom_prior = degrees_of_freedom_prior
    self.covariance_prior = covariance_prior
    self.random_state = random_state
    self.warm_start = warm_start
    self.verbose = verbose
    self.verbose_interval = verbose_interval

  # ------------------------------------------------------------- validation

  def _check_hyperparameters(self):
    """Checks the parameters that do not depend on the data."""
    _check_int("n_components", self.n_components, 1)
    _check_choice("covariance_type", self.covariance_type, _COVARIANCE_TYPES)
    if self.covariance_type not in _SUPPORTED_COVARIANCE_TYPES:
      raise NotImplementedError(
          f"covariance_type={self.covariance_type!r} is not implemented by "
          f"tfgmm: the supported types are {_SUPPORTED_COVARIANCE_TYPES}. "
          "Use sklearn.mixture.BayesianGaussianMixture for the others.")
    _check_real("tol", self.tol, 0.0, closed=True)
    _check_real("reg_covar", self.reg_covar, 0.0, closed=True)
    _check_int("max_iter", self.max_iter, 0)
    _check_int("n_init", self.n_init, 1)
    _check_choice("init_params", self.init_params, _INIT_PARAMS)
    _check_choice("weight_concentration_prior_type",
                  self.weight_concentration_prior_type, _WEIGHT_PRIOR_TYPES)
    for name in ("weight_concentration_prior", "mean_precision_prior",
                 "degrees_of_freedom_prior"):
      if getattr(self, name) is not None:
        _check_real(name, getattr(self, name), 0.0, closed=False)
    if not isinstance(self.warm_start, (bool, np.bool_)):
      raise TypeError("The 'warm_start' parameter of BayesianGaussianMixture "
                      f"must be a bool. Got {self.warm_start!r} instead.")
    if not isinstance(self.verbose, (numbers.Integral, np.bool_)):
      raise TypeError("The 'verbose' parameter of BayesianGaussianMixture "
                      f"must be an int. Got {self.verbose!r} instead.")
    _check_int("verbose_interval", self.verbose_interval, 1)

  def _check_priors(self, x):
    """Sets the prior attributes, scikit-learn's defaults from the data x."""
    n_features = x.shape[1]
    self.weight_concentration_prior_ = float(
        1.0 / self.n_components if self.weight_concentration_prior is None
        else self.weight_concentration_prior)
    self.mean_precision_prior_ = float(
        1.0 if self.mean_precision_prior is None
        else self.mean_precision_prior)
    if self.mean_prior is None:
      self.mean_prior_ = x.mean(axis=0)
    else:
      self.mean_prior_ = _as_float_array(self.mean_prior, "mean_prior")
      _check_shape(self.mean_prior_, (n_features,), "means")
    if self.degrees_of_freedom_prior is None:
      self.degrees_of_freedom_prior_ = float(n_features)
    elif self.degrees_of_freedom_prior > n_features - 1.0:
      self.degrees_of_freedom_prior_ = float(self.degrees_of_freedom_prior)
    else:
      raise ValueError(
          "The parameter 'degrees_of_freedom_prior' should be greater than "
          f"{n_features - 1}, but got {self.degrees_of_freedom_prior:.3f}.")
    # A matrix (rank 2), per-feature variances (1) or one variance (0).
    rank = self._family().sklearn.covariance_prior_rank
    if self.covariance_prior is None:
      if rank == 2:
        self.covariance_prior_ = np.atleast_2d(np.cov(x.T))
      else:
        variance = np.var(x, axis=0, ddof=1)
        self.covariance_prior_ = variance if rank else float(variance.mean())
      return
    prior = _as_float_array(self.covariance_prior, "covariance_prior")
    name = f"{self.covariance_type} covariance_prior"
    _check_shape(prior, (n_features,) * rank, name)
    if rank == 2:
      if not (np.allclose(prior, prior.T)
              and np.all(np.linalg.eigvalsh(prior) > 0.0)):
        raise ValueError(f"'{name}' should be symmetric, positive-definite")
    elif np.any(prior <= 0.0):
      raise ValueError(f"'{name}' should be positive")
    self.covariance_prior_ = prior if rank else float(prior)

  def _family(self):
    """The `Family` of `covariance_type` (the face's models are conjugate,
    without missing values)."""
    return families.get(self.covariance_type)

  def _validate_x(self, x, reset, min_samples=1):
    return validate_data(self, x, reset=reset,
                         dtype=[np.float64, np.float32],
                         ensure_min_samples=min_samples)

  # ------------------------------------------------------------------ model

  def _build_model(self, n_features):
    """A `BayesianGMM` with the priors in data units (no standardisation)."""
    family = self._family()
    covariance = np.asarray(self.covariance_prior_, np.float64)
    if family.precision_prior == "wishart":
      covariance = covariance + self.reg_covar * np.eye(n_features)
      eigenvalues = np.linalg.eigvalsh(covariance)
      if np.any(eigenvalues <= 0) or not np.all(np.isfinite(eigenvalues)):
        raise ValueError(
            "The Wishart prior's covariance_prior_ + reg_covar * I is not "
            "positive definite: the data's covariance is singular (a "
            "constant feature, or n_samples <= n_features) and reg_covar = "
            f"{self.reg_covar}. Set reg_covar > 0 or pass a positive "
            "definite covariance_prior.")
    else:
      covariance = covariance + self.reg_covar
      if np.any(covariance <= 0):
        raise ValueError(
            "The Gamma prior's covariance_prior_ + reg_covar has a zero "
            f"entry: a feature is constant and reg_covar = {self.reg_covar}. "
            "Set reg_covar > 0 or pass a positive covariance_prior.")
    priors = family.sklearn.prior(self.degrees_of_freedom_prior_, covariance,
                                  n_features)
    seed = self.random_state
    seed = (int(seed) if isinstance(seed, numbers.Integral)
            and not isinstance(seed, bool) else None)
    return model_lib.BayesianGMM(
        self.n_components, n_features,
        weight_concentration=self.weight_concentration_prior_,
        mean_loc=np.asarray(self.mean_prior_, np.float64),
        mean_precision=self.mean_precision_prior_,
        weight_prior=_WEIGHT_PRIOR_TYPES[self.weight_concentration_prior_type],
        covariance_type=self.covariance_type, standardize=False,
        dtype="float64", seed=seed, **priors)

  def _initial_responsibilities(self, x, random_state):
    """scikit-learn's `_initialize_parameters` draws, [N, K] float64."""
    n_samples, k = x.shape[0], self.n_components
    resp = np.zeros((n_samples, k))
    if self.init_params == "kmeans":
      labels = sklearn_cluster.KMeans(
          n_clusters=k, n_init=1, random_state=random_state).fit(x).labels_
      resp[np.arange(n_samples), labels] = 1.0
    elif self.init_params == "random":
      resp = random_state.uniform(size=(n_samples, k))
      resp /= resp.sum(axis=1)[:, np.newaxis]
    elif self.init_params == "random_from_data":
      indices = random_state.choice(n_samples, size=k, replace=False)
      resp[indices, np.arange(k)] = 1.0
    else:  # "k-means++"
      _, indices = sklearn_cluster.kmeans_plusplus(x, k,
                                                   random_state=random_state)
      resp[indices, np.arange(k)] = 1.0
    return resp

  def _run_cavi(self, model, z, q0):
    """CAVI from q0 in tfgmm's compiled loop.

    Returns:
      (q, bounds, converged, history): the final posterior; the bound per
      sample after each iteration (the last one that of the final q); whether
      the bound's change fell below `tol`; and the loop's [T, 2] history.
    """
    family = model.family
    if self.max_iter == 0:
      q, history, converged = q0, np.zeros((0, 2)), False
    else:
      # tfgmm's loop compares the bound per sample: tol / N is
      # scikit-learn's threshold on the total.
      q, history, converged = loops.run_cavi(
          z, q0, model.prior(), self.max_iter, self.tol / z.shape[0],
          model.estep_chunk_rows, model.weight_prior, None, family)
      history, converged = history.numpy(), bool(converged)
    model.assign_posterior(q)
    # history[t] holds the bound of the posterior before iteration t's
    # update; shifted by one (and closed by the final posterior's exact bound)
    # it is scikit-learn's bound after each iteration.
    bounds = (history[:, 0] - history[:, 1]).tolist()[1:]
    bounds.append(self._model_bound(model, z))
    return model.posterior(), bounds, converged, history

  @staticmethod
  def _model_bound(model, z):
    return float(model.elbo(z.numpy())) / float(z.shape[0])

  # -------------------------------------------------------------------- fit

  def fit(self, X, y=None):
    """Fits the mixture by CAVI from `n_init` initialisations.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    y : Ignored

    Returns
    -------
    self : BayesianGaussianMixture
    """
    self.fit_predict(X, y)
    return self

  def fit_predict(self, X, y=None):
    """Fits the mixture and returns the labels of X (see `predict`).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    y : Ignored

    Returns
    -------
    labels : ndarray of shape (n_samples,)
    """
    del y
    self._check_hyperparameters()
    warm = self.warm_start and hasattr(self, "_model")
    previous = self._model.posterior() if warm else None
    x = self._validate_x(X, reset=True, min_samples=2)
    self._fit(x, previous)
    self._n_samples_seen = x.shape[0]
    return self._estimate_log_resp(x).argmax(axis=1)

  def _fit(self, x, previous=None, total_samples=None):
    """CAVI on x from each initialisation (or from `previous`)."""
    n_samples, n_features = x.shape
    if n_samples < self.n_components:
      raise ValueError(
          "Expected n_samples >= n_components but got n_components = "
          f"{self.n_components}, n_samples = {n_samples}")
    self._check_priors(x)
    model = self._build_model(n_features)
    family = model.family
    z = tf.constant(np.asarray(x, np.float64))
    # The start counts n_samples rows, so `elbo` can score it.
    model.assign_posterior(model.posterior(), num_examples=n_samples)
    if previous is not None:
      shapes = [tuple(t.shape) for t in model.posterior()]
      if [tuple(t.shape) for t in previous] != shapes:
        raise ValueError(
            "warm_start needs the previous fit's n_components, n_features "
            "and covariance_type. Refit with warm_start=False.")
    random_state = check_random_state(self.random_state)
    best = None
    for init in range(1 if previous is not None else self.n_init):
      start = time.time()
      if self.verbose:
        print(f"Initialization {init}")
      if previous is None:
        resp = self._initial_responsibilities(x, random_state)
        q0 = loops.posterior_from_responsibilities(
            family, z, resp, model.prior(), 1.0, model.weight_prior)
      else:
        q0 = previous
      q, bounds, converged, history = self._run_cavi(model, z, q0)
      if previous is not None:
        # CAVI never lowers the bound: a lower one is rounding at a fixed
        # point (1e-15). Keep the previous model untouched then, so that
        # lower_bound_ never falls from one warm-started call to the next
        # (scikit-learn's contract).
        start_bound = self._model_bound(self._model, z)
        if bounds[-1] < start_bound:
          model, q, converged = self._model, None, True
          bounds[-1] = start_bound
      self._print_run(bounds[:history.shape[0]], converged,
                      time.time() - start)
      if best is None or bounds[-1] > best[1][-1]:
        best = (q, bounds, converged, history)
    q, bounds, converged, history = best
    if q is not None:                     # else: the previous model, as it is
      model.assign_posterior(q)
    model.sort_components()
    if q is not None:
      # The stored model's own bound: assigning q again rounds its
      # unconstrained variables, re-ordered sticks are a different posterior
      # and re-ordered components sum in another order. A warm-started call
      # then compares its result with exactly this number.
      bounds[-1] = self._model_bound(model, z)
    if total_samples is not None and total_samples != n_samples:
      # A batch's fit standing for `total_samples` rows (see partial_fit);
      # scaling every count alike keeps the order.
      model.assign_posterior(family.rescale(
          model.posterior(), model.prior(), total_samples / n_samples,
          model.weight_prior), num_examples=total_samples)
    for key, values in inference.history_dict(history, 0.0).items():
      model.training_history[key].extend(values)
    model.n_epochs = len(bounds) if self.max_iter else 0
    model.converged = converged
    self._model = model
    self.converged_ = converged
    self.n_iter_ = model.n_epochs
    self.lower_bound_ = bounds[-1]
    self.lower_bounds_ = bounds if self.max_iter else []
    self._set_fitted_attributes()
    if not converged and self.max_iter > 0:
      warnings.warn(
          "Best performing initialization did not converge. Try different "
          "init parameters, or increase max_iter, tol, or check for "
          "degenerate data.", ConvergenceWarning)

  def partial_fit(self, X, y=None, total_samples=None):
    """One natural-gradient step on a minibatch (Hoffman et al. 2013).

    The first call (on an unfitted estimator) initialises from its batch as
    `fit` does: the data-dependent prior defaults (mean_prior,
    covariance_prior) come from that batch, and CAVI runs on it. Each later
    call is one step of `BayesianGMM.fit` on the batch: the statistics scaled
    by N / batch size, step size max(batch size / N, (t + 2)^-0.7). On an
    estimator fitted by `fit`, steps continue from that fit.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        A minibatch (at least n_components rows on the first call).
    y : Ignored
    total_samples : int or None, default=None
        N, the number of rows of the data set the minibatches are drawn
        from. None counts the rows passed so far (each batch is new data,
        as in a stream); pass it when cycling over a fixed data set, or the
        posterior would count each row once per pass.

    Returns
    -------
    self : BayesianGaussianMixture
    """
    del y
    if total_samples is not None:
      total_samples = _check_int("total_samples", total_samples, 1)
    if not hasattr(self, "_model"):
      self._check_hyperparameters()
      x = self._validate_x(X, reset=True, min_samples=2)
      self._fit(x, total_samples=total_samples)
      self._n_samples_seen = x.shape[0]
      return self
    x = self._validate_x(X, reset=False)
    model = self._model
    self._n_samples_seen += x.shape[0]
    n_total = total_samples or self._n_samples_seen
    model.num_examples.assign(float(n_total))
    model.total_weight.assign(float(n_total))
    # One batch as a dataset: Keras would cast a float64 array to floatx.
    batch = tf.data.Dataset.from_tensors(
        tf.constant(np.asarray(x, np.float64)))
    history = model.fit(batch, epochs=1, verbose=0)
    self.converged_ = False
    self.n_iter_ = model.n_epochs
    self.lower_bound_ = -float(history.history["loss"][-1])
    self.lower_bounds_ = [self.lower_bound_]
    self._set_fitted_attributes()
    return self

  def _print_run(self, bounds, converged, seconds):
    """scikit-learn's progress messages, from one run's bounds per iteration."""
    if not self.verbose:
      return
    changes = np.diff([-np.inf] + list(bounds))
    for n_iter in range(self.verbose_interval, len(bounds) + 1,
                        self.verbose_interval):
      if self.verbose >= 2:
        print(f"  Iteration {n_iter}\t lower bound change "
              f"{changes[n_iter - 1]:.5f}")
      else:
        print(f"  Iteration {n_iter}")
    status = "converged" if converged else "did not converge"
    if self.verbose >= 2:
      bound = f"{bounds[-1]:.5f}" if bounds else "-"
      print(f"Initialization {status}. time lapse {seconds:.5f}s\t lower "
            f"bound {bound}.")
    else:
      print(f"Initialization {status}.")

  def _set_fitted_attributes(self):
    """scikit-learn's fitted attributes from the model's posterior."""
    model = self._model
    q = model.posterior()  # data units: the model does not standardise.
    self.means_ = q.mean_loc.numpy()
    counts = q.weight_concentration.numpy()
    if model.weight_prior == "dirichlet_process":
      self.weight_concentration_ = tuple(
          t.numpy() for t in weight_priors.stick_concentrations(
              counts, self.weight_concentration_prior_))
      # scikit-learn's definition: the stick-breaking expectation of the K
      # Betas of `weight_concentration_`, normalised (the model's own E[pi]
      # sets v_K = 1 instead; see the module docstring).
      g1, g2 = self.weight_concentration_
      rest = np.cumprod(np.concatenate([[1.0], (g2 / (g1 + g2))[:-1]]))
      weights = g1 / (g1 + g2) * rest
      self.weights_ = weights / weights.sum()
    else:
      self.weight_concentration_ = counts
      self.weights_ = model.posterior_mean()["weights"]
    # In scikit-learn's shapes for the covariance type (the family's).
    attributes = model.family.sklearn.attributes(q)
    for name in ("covariances", "precisions", "precisions_cholesky",
                 "degrees_of_freedom", "mean_precision"):
      setattr(self, name + "_", attributes[name])

  # -------------------------------------------------------------- inference

  def _estimate_log_rho(self, x):
    """The CAVI E-step's log rho_nk (scikit-learn's weighted log prob)."""
    model = self._model
    family = model.family
    q = model.posterior()
    log_weights = weight_priors.posterior_log_weights(q, model.prior(),
                                                      model.weight_prior)
    chunk = model.estep_chunk_rows
    x = np.asarray(x, np.float64)
    return np.concatenate([
        family.log_rho(tf.constant(x[start:start + chunk]), q,
                       log_weights).numpy()
        for start in range(0, x.shape[0], chunk)])                # [N, K]

  def _estimate_log_resp(self, x):
    log_rho = self._estimate_log_rho(x)                           # [N, K]
    log_norm = np.logaddexp.reduce(log_rho, axis=1, keepdims=True)
    return log_rho - log_norm

  def predict(self, X):
    """The most probable component of each sample under the E-step.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)

    Returns
    -------
    labels : ndarray of shape (n_samples,)
        argmax_k of `predict_proba(X)`.
    """
    check_is_fitted(self)
    x = self._validate_x(X, reset=False)
    return self._estimate_log_rho(x).argmax(axis=1)

  def predict_proba(self, X):
    """scikit-learn's responsibilities: the CAVI E-step's q(z_n = k).

    r_nk is proportional to exp(E[ln pi_k] + E[ln N(x_n | mu_k,
    Lambda_k^-1)]) (Bishop 10.46-10.49). The posterior predictive's own
    responsibilities, E[pi_k] St_k(x_n) / p(x_n | data), are
    `to_keras().responsibilities(X)`.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)

    Returns
    -------
    resp : ndarray of shape (n_samples, n_components)
    """
    check_is_fitted(self)
    x = self._validate_x(X, reset=False)
    return np.exp(self._estimate_log_resp(x))

  def score_samples(self, X):
    """The posterior predictive log density log p(x_n | data) of each sample.

    A mixture of Student-t densities with weights E[pi] (Bishop 10.81),
    `BayesianGMM.log_prob`: unlike scikit-learn's plug-in Gaussian mixture it
    accounts for the posterior uncertainty of the components.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)

    Returns
    -------
    log_prob : ndarray of shape (n_samples,)
    """
    check_is_fitted(self)
    x = self._validate_x(X, reset=False)
    return self._model.log_prob(np.asarray(x, np.float64)).numpy()

  def score(self, X, y=None):
    """The mean posterior predictive log density of the samples.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    y : Ignored

    Returns
    -------
    log_likelihood : float
    """
    del y
    return float(np.mean(self.score_samples(X)))

  def sample(self, n_samples=1):
    """Draws samples from the posterior predictive, with their components.

    As scikit-learn: the counts per component ~ Multinomial(n_samples,
    weights_) from `random_state`, then each component's points in turn.
    The points come from the component's posterior predictive Student-t
    (the density `score_samples` evaluates): x = m + S z sqrt(df / g),
    z ~ Normal(0, I), g ~ chi-square(df); full: df = nu + 1 - D,
    S S^T = (1 + beta) / (df beta) W^-1 (tied: the shared nu and W);
    spherical: df = 2 a, S = sqrt(b (1 + beta) / (a beta)) I; diag: per
    feature df = 2 a, S = sqrt(b (1 + beta) / (a beta)) (Bishop
    10.81-10.82).

    Parameters
    ----------
    n_samples : int, default=1

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    y : ndarray of shape (n_samples,)
        The components, in increasing order.
    """
    check_is_fitted(self)
    if not isinstance(n_samples, numbers.Integral) or n_samples < 1:
      raise ValueError(
          f"Invalid value for 'n_samples': {n_samples!r}. The sampling "
          "requires at least one sample.")
    rng = check_random_state(self.random_state)
    counts = rng.multinomial(n_samples, self.weights_ / self.weights_.sum())
    model = self._model
    df, means, scale = [np.asarray(t, np.float64) for t in
                        model.family.predictive_parameters(model.posterior())]
    n_features = means.shape[1]
    draws = []
    for k, count in enumerate(counts):
      normal = rng.standard_normal((count, n_features))
      if df.ndim == 1:
        # A multivariate Student-t: one chi-square per point, scale [D, D].
        chi2 = rng.chisquare(df[k], size=count)
        draws.append(means[k] + normal @ scale[k].T
                     * np.sqrt(df[k] / chi2)[:, None])
      else:
        # Independent Student-t's per feature.
        chi2 = rng.chisquare(df[k], size=(count, n_features))
        draws.append(means[k] + scale[k] * normal * np.sqrt(df[k] / chi2))
    labels = np.repeat(np.arange(self.n_components), counts)
    return np.concatenate(draws), labels

  def to_keras(self):
    """The fitted `tfgmm.BayesianGMM` (the model itself, not a copy).

    Its `log_prob` is `score_samples`; it exports, saves and trains as any
    `BayesianGMM`. The estimator's attributes are taken at the end of each
    `fit` / `partial_fit`: after training the model further, read it
    directly (or refit).
    """
    check_is_fitted(self)
    return self._model

  # ------------------------------------------------------------ persistence

  def __getstate__(self):
    # The model pickles as its config and variables: Keras models hold
    # unpicklable trackers.
    state = dict(super().__getstate__())
    model = state.pop("_model", None)
    if model is not None:
      state["_model_state"] = _plain({
          "config": model.get_config(),
          "weights": [np.asarray(w) for w in model.get_weights()],
          "converged": model.converged,
          "n_epochs": model.n_epochs,
          "training_history": model.training_history,
      })
    return state

  def __setstate__(self, state):
    state = dict(state)
    model_state = state.pop("_model_state", None)
    super().__setstate__(state)
    if model_state is not None:
      model = model_lib.BayesianGMM.from_config(model_state["config"])
      model.set_weights([np.array(w) for w in model_state["weights"]])
      model.converged = model_state["converged"]
      model.n_epochs = model_state["n_epochs"]
      model.training_history = model_state["training_history"]
      self._model = model


# ------------------------------------------------------------------ checks


def _plain(value):
  """Keras' tracked lists and dicts (in a model's attributes) as plain ones."""
  if isinstance(value, dict):
    return {key: _plain(item) for key, item in value.items()}
  if isinstance(value, (list, tuple)):
    return [_plain(item) for item in value]
  return value


def _check_int(name, value, minimum):
  if isinstance(value, (bool, np.bool_)) or not isinstance(
      value, numbers.Integral):
    raise TypeError(f"The '{name}' parameter of BayesianGaussianMixture must "
                    f"be an int in the range [{minimum}, inf). Got "
                    f"{value!r} instead.")
  if value < minimum:
    raise ValueError(f"The '{name}' parameter of BayesianGaussianMixture must "
                     f"be an int in the range [{minimum}, inf). Got "
                     f"{value!r} instead.")
  return int(value)


def _check_real(name, value, minimum, closed):
  bracket = "[" if closed else "("
  expected = (f"The '{name}' parameter of BayesianGaussianMixture must be a "
              f"float in the range {bracket}{minimum}, inf). Got {value!r} "
              "instead.")
  if isinstance(value, (bool, np.bool_)) or not isinstance(value,
                                                          numbers.Real):
    raise TypeError(expected)
  if not np.isfinite(value) or value < minimum or (
      not closed and value == minimum):
    raise ValueError(expected)
  return float(value)


def _check_choice(name, value, choices):
  if not isinstance(value, str) or value not in choices:
    raise ValueError(f"The '{name}' parameter of BayesianGaussianMixture must "
                     f"be a str among {sorted(choices)}. Got {value!r} "
                     "instead.")


def _check_shape(array, shape, name):
  if array.shape != shape:
    raise ValueError(f"The parameter '{name}' should have the shape of "
                     f"{shape}, but got {array.shape}")


def _as_float_array(value, name):
  try:
    array = np.asarray(value, dtype=np.float64)
  except (TypeError, ValueError):
    raise ValueError(f"Expected `{name}` to be an array of numbers. "
                     f"Received: {name}={value!r}.") from None
  if not np.all(np.isfinite(array)):
    raise ValueError(f"Expected `{name}` to be finite. "
                     f"Received: {name}={value!r}.")
  return array
