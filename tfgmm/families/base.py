"""`Family`: the written protocol every covariance family implements.

A family is one variational posterior of the mixture's components (their
means and precisions): its parameter record, the CAVI local and global
steps, the KL, the posterior predictive and what it supports. The model,
the compiled loops (`tfgmm._engine`), the initialisation search, the
exporter and the scikit-learn face hold a `Family` and call its fields; none
of them asks which family it is. Adding a covariance type is one new module
in `tfgmm/families/` that builds a `Family`, plus its entry in
`tfgmm.families.get`.

Shapes below: K components, D features, B rows; q may carry leading restart
axes R... ([R..., K] and [R..., K, ...]) wherever the loops run restarts
together (`log_rho`, `natural_update`, `kl_divergence`, statistics).

#### The contract

```none
posterior_type        NamedTuple of q's fields; field 0 is the weight field
                      (`weight_concentration`, [K]), field 1 the means'
                      location (`mean_loc`, [K, D]), the last field the
                      precision's scale (a Gamma rate, or the Cholesky
                      factor of a Wishart's W^-1).
field_shapes(K, D)    the shapes of q's fields for one model.
prior_ranks           the ranks of the prior's fields (it broadcasts).
component_axes        per field, the axis that indexes components (0), or
                      None for a field the components share (a tied
                      precision); None: every field is per component.
                      `take_components(q, indices)` gathers along them.
variable_names        names of the model's unconstrained variables, one per
                      field (variable i has field i's shape).
make_prior(D, dtype, **settings) -> prior, a `posterior_type` of tensors.
log_rho(x [B, D], q, log_weights [K]) -> [B, K]      CAVI local step
sufficient_statistics(x, r [B, K], w [B] | None) -> statistics (NamedTuple)
add_statistics(s, t), zero_statistics(q) (float64, shaped like q)
natural_update(q, stats, prior, scale, step_size, weight_prior) -> q
  (Hoffman et al. 2013, eq. 35; scale = s, step_size = rho = 1 is CAVI)
statistics_from_posterior(q, prior, weight_prior) -> stats  (its inverse)
posterior_from_statistics(stats, prior, scale, weight_prior) -> q
rescale(q, prior, scale, weight_prior) -> q (q's data counted s times)
posterior_from_unconstrained(*raw) -> q; unconstrained_from_posterior(q)
kl_divergence(q, prior, weight_prior) -> scalar (or [R...])
predictive_component_log_prob(x, q) -> [B, K], and from it
predictive_joint_log_prob / predictive_log_prob /
predictive_responsibilities(x, q, log_mean_weights)
sample_predictive(n, seed [2], q, log_mean_weights) -> [n, D]
sampled_log_likelihood(x, q, seed, prior_concentration, weight_prior)
  -> [B]; None where the sampled (seed blog) estimator is not defined.
expected_precisions(q, scale [D]) -> numpy, data units: [K, D] (diagonal
  and spherical families) or [K, D, D] (full; tied repeats its shared one)
feature_marginals(q, D) -> numpy (a, b, mean_variance) [K, D] each: per
  feature, 1 / sigma_d^2 ~ Gamma(a, b) and Var(mu_d)
chunk_rows(K, D), estep_chunk_rows(K, D): rows per chunk of the predictive
  and of the E-step
predictive_parameters(q) -> (df, loc [K, D], scale): each component's
  Student-t predictive in model units: independent per feature (df and
  scale [K, D]) or multivariate (df [K], the scale matrix's lower Cholesky
  factor [K, D, D]); tfgmm.distributions, the scikit-learn face
```

Capabilities: `precision_prior` ("gamma": the `precision_concentration`
and `precision_rate` settings; "wishart": `degrees_of_freedom` and
`scale_matrix`), `methods` (the inference methods it supports:
`BayesianGMM`'s training methods "natural", "gradient", "sampled", and
"map" for `tfgmm.map`, "mcmc" for `tfgmm.mcmc`), `sklearn` (a
`SklearnLayout`: how `tfgmm.sklearn` maps the family to scikit-learn's
parameters and attributes; None where the face does not offer it),
`trains_on_missing` (its statistics marginalise NaN entries),
`predicts_missing` (its predictive does), `isotropic_scale` (the
standardisation divides every feature by one scale, so an isotropic
covariance stays isotropic in data units), `search_counts_full_data` (the
initialisation search counts a sample's statistics N / n times; see
`BayesianGMM.initialize`), `searches_from_diagonal` (the search starts
from the diagonal model's), `free_variances` (each component has its own
variance per feature, or its own covariance, as the search's diagonal
split and merge scores assume; a family that ties them across components
or features races more split-and-merge triples, see
`initialization.SPLIT_MERGE_RACE`).
"""

import dataclasses
from typing import Any, Callable, NamedTuple, Optional, Tuple

import tensorflow as tf

from tfgmm._engine import inference


class SklearnLayout(NamedTuple):
  """A family in scikit-learn's `BayesianGaussianMixture` vocabulary.

  `tfgmm.sklearn` reads these instead of asking for a covariance type.

  Attributes:
    covariance_prior_rank: the rank of scikit-learn's `covariance_prior`
      for this type: 0 (a float), 1 ([D]) or 2 ([D, D]).
    prior: (degrees_of_freedom_prior, covariance_prior (with reg_covar
      added), D) -> the `BayesianGMM` keyword arguments of the precision
      prior.
    attributes: q (numpy-convertible, data units) -> dict of numpy arrays
      in scikit-learn's shapes for the type: `covariances`, `precisions`,
      `precisions_cholesky`, `degrees_of_freedom`, `mean_precision`.
  """
  covariance_prior_rank: int
  prior: Callable
  attributes: Callable


@dataclasses.dataclass(frozen=True, eq=False)
class Family:
  """A covariance family: the functions and facts of one posterior form.

  Hashable by identity (families are module-level singletons), so compiled
  loops can be cached per family. See the module docstring for each
  field's contract.
  """
  covariance_type: str
  mean_prior: str
  posterior_type: type
  field_shapes: Callable[[int, int], list]
  prior_ranks: Tuple[int, ...]
  variable_names: Tuple[str, ...]
  make_prior: Callable[..., Any]
  cast_posterior: Callable
  chunk_rows: Callable[[int, int], int]
  estep_chunk_rows: Callable[[int, int], int]
  log_rho: Callable
  sufficient_statistics: Callable
  add_statistics: Callable
  zero_statistics: Callable
  natural_update: Callable
  statistics_from_posterior: Callable
  posterior_from_statistics: Callable
  rescale: Callable
  posterior_from_unconstrained: Callable
  unconstrained_from_posterior: Callable
  kl_divergence: Callable
  predictive_component_log_prob: Callable
  sample_predictive: Callable
  expected_precisions: Callable
  feature_marginals: Callable
  sampled_log_likelihood: Optional[Callable] = None
  component_axes: Optional[Tuple[Optional[int], ...]] = None
  sklearn: Optional[SklearnLayout] = None
  predictive_parameters: Optional[Callable] = None
  isotropic_scale: bool = False
  precision_prior: str = "gamma"
  methods: Tuple[str, ...] = ("natural", "gradient", "sampled")
  trains_on_missing: bool = False
  predicts_missing: bool = False
  search_counts_full_data: bool = False
  searches_from_diagonal: bool = False
  free_variances: bool = True

  @property
  def field_ranks(self):
    """Ranks of q's fields for one model (no restart axis)."""
    return tuple(len(shape) for shape in self.field_shapes(1, 1))

  @property
  def field_component_axes(self):
    """Per field, its component axis (no restart axis) or None if shared."""
    if self.component_axes is None:
      return (0,) * len(self.field_ranks)
    return self.component_axes

  def take_components(self, q, indices):
    """q with only the components `indices` [K'], in that order.

    Per-component fields are gathered along their component axis (after any
    leading restart axes); shared fields are kept whole. Sorting, pruning
    and the scikit-learn face go through this, never through axis 0.

    Args:
      q: a `posterior_type` (optionally with leading restart axes).
      indices: int [K'].

    Returns:
      The `posterior_type` of the kept components.
    """
    fields = []
    for t, rank, axis in zip(q, self.field_ranks, self.field_component_axes):
      t = tf.convert_to_tensor(t)
      fields.append(t if axis is None else tf.gather(
          t, indices, axis=t.shape.rank - rank + axis))
    return type(q)(*fields)

  @property
  def predictive_joint_log_prob(self):
    """log(E[pi_k] p_k(x_n)), [B, K]; see `inference.predictive_functions`."""
    return self._predictive[0]

  @property
  def predictive_log_prob(self):
    """log p(x_n | data), [B]."""
    return self._predictive[1]

  @property
  def predictive_responsibilities(self):
    """p(z_n = k | x_n, data), [B, K]."""
    return self._predictive[2]

  @property
  def _predictive(self):
    return inference.predictive_functions(self.predictive_component_log_prob)

  def statistics_and_log_likelihood(self, x, q, chunk, log_weights=None,
                                    sample_weight=None):
    """One E-step over all rows of x; see `inference.statistics_and_log_likelihood`."""
    return inference.statistics_and_log_likelihood(
        x, q, chunk, log_weights, sample_weight, family=self)

  def cavi(self, x, q, prior, max_iter, tol, chunk, weight_prior="dirichlet",
           sample_weight=None, **kwargs):
    """CAVI on all of x with this family; see `inference.cavi`."""
    return inference.cavi(x, q, prior, max_iter, tol, chunk, weight_prior,
                          sample_weight, family=self, **kwargs)
