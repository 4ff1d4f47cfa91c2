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
                      location (`mean_loc`, [K, D]).
field_shapes(K, D)    the shapes of q's fields for one model.
prior_ranks           the ranks of the prior's fields (it broadcasts).
variable_names        names of the model's unconstrained variables, one per
                      field.
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
  families) or [K, D, D]
feature_marginals(q, D) -> numpy (a, b, mean_variance) [K, D] each: per
  feature, 1 / sigma_d^2 ~ Gamma(a, b) and Var(mu_d)
chunk_rows(K, D), estep_chunk_rows(K, D): rows per chunk of the predictive
  and of the E-step
predictive_parameters(q) -> (df, loc [K, D], scale): each component's
  Student-t predictive in model units; df and scale [K, D] (independent
  per feature, `distribution_kind` "normal_gamma*") or df [K] and the
  scale matrix's Cholesky factor [K, D, D] ("normal_wishart")
```

Capabilities: `precision_prior` ("gamma": the `precision_concentration`
and `precision_rate` settings; "wishart": `degrees_of_freedom` and
`scale_matrix`), `methods` (the training methods it supports),
`trains_on_missing` (its statistics marginalise NaN entries),
`predicts_missing` (its predictive does), `distribution_kind` (the form of
q for `tfgmm.distributions`: "normal_gamma" (mu | tau Normal, tau Gamma per
feature), "normal_gamma_independent" (mu and tau independent),
"normal_wishart"; None: no TFP objects), `search_counts_full_data` (the
initialisation search counts a sample's statistics N / n times; see
`BayesianGMM.initialize`), `searches_from_diagonal` (the search starts
from the diagonal model's).
"""

import dataclasses
from typing import Any, Callable, Optional, Tuple

from tfgmm._engine import inference


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
  predictive_parameters: Optional[Callable] = None
  distribution_kind: Optional[str] = None
  precision_prior: str = "gamma"
  methods: Tuple[str, ...] = ("natural", "gradient", "sampled")
  trains_on_missing: bool = False
  predicts_missing: bool = False
  search_counts_full_data: bool = False
  searches_from_diagonal: bool = False

  @property
  def field_ranks(self):
    """Ranks of q's fields for one model (no restart axis)."""
    return tuple(len(shape) for shape in self.field_shapes(1, 1))

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
