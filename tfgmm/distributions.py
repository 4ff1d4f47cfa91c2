"""TensorFlow Probability objects of a mixture, in data units.

`BayesianGMM.predictive_distribution`, `posterior_distribution` and
`prior_distribution` call these; this module imports TensorFlow Probability,
so the package loads it on first use only (SavedModels never contain TFP
ops: the exporter does not import it). Each function reads a family's
declared form (`Family.precision_prior`, `mean_prior`,
`predictive_parameters` and its fields' shapes), never which family it is.

#### Mathematical Details

The model works in standardised units z = (x - c) / s per feature (c, s the
model's `feature_loc`, `feature_scale`; S = diag(s)). In data units:

```none
predictive   StudentT(df, m, sigma)      -> StudentT(df, c + s m, s sigma)
             MVT(df, m, L L^T)           -> MVT(df, c + S m, (S L)(S L)^T)
precisions   tau ~ Gamma(a, b)           -> tau / s^2 ~ Gamma(a, b s^2)
             Lambda ~ Wishart(nu, W)     -> S^-1 Lambda S^-1
                                            ~ Wishart(nu, S^-1 W S^-1)
means        mu | tau ~ N(m, 1 / (beta tau)) -> N(c + s m, 1 / (beta tau_x))
             (tau_x the data-unit precision; likewise with Lambda_x)
```

Under the Dirichlet-process prior the weights are the K - 1 free sticks
v_k ~ Beta(1 + c_k, gamma0 + sum_{j>k} c_j) (v_K = 1), named "sticks".
"""

import tensorflow as tf
import tensorflow_probability as tfp

from tfgmm._engine import weight_priors

tfd = tfp.distributions


class _DiagonalCovariance:
  """`covariance` = diag(variance) for a `tfd.Independent` over features.

  `tfd.Independent` leaves `covariance` unimplemented; with independent
  features it is diagonal, and `tfd.MixtureSameFamily.covariance` needs it
  of its components.
  """

  def _covariance(self, **kwargs):
    return tf.linalg.diag(self.variance(**kwargs))


class IndependentStudentT(_DiagonalCovariance, tfd.Independent):
  """`tfd.Independent` of a `tfd.StudentT`, with its covariance."""


class IndependentNormal(_DiagonalCovariance, tfd.Independent):
  """`tfd.Independent` of a `tfd.Normal`, with its covariance."""


def _check_supported(family):
  if family.predictive_parameters is None:
    raise NotImplementedError(
        "TensorFlow Probability objects are not available for "
        f"covariance_type={family.covariance_type!r}.")


def predictive(family, q, log_mean_weights, loc, scale):
  """The posterior predictive as a `tfd.MixtureSameFamily`, data units.

  Args:
    family: the model's `Family`.
    q: its posterior, standardised units.
    log_mean_weights: log E[pi], [K].
    loc, scale: the standardisation, [D] each (float64).

  Returns:
    A `tfd.MixtureSameFamily` with event shape [D] in q's dtype: components
    `IndependentStudentT` (a `tfd.Independent` of `tfd.StudentT`) where the
    family's predictive is independent per feature (diag), else
    `tfd.MultivariateStudentTLinearOperator` (full, tied, spherical).
  """
  _check_supported(family)
  df, m, sigma = family.predictive_parameters(q)
  dtype = m.dtype
  loc, scale = tf.cast(loc, dtype), tf.cast(scale, dtype)          # [D]
  if sigma.shape.rank == m.shape.rank + 1:        # Cholesky factors [K, D, D]
    components = tfd.MultivariateStudentTLinearOperator(
        df=df, loc=loc + scale * m,
        scale=tf.linalg.LinearOperatorLowerTriangular(
            scale[:, None] * sigma))                              # S L
  else:
    components = IndependentStudentT(
        tfd.StudentT(df, loc + scale * m, scale * sigma), 1)
  return tfd.MixtureSameFamily(
      tfd.Categorical(logits=tf.cast(log_mean_weights, dtype)), components)


def normal_mixture(log_weights, means, precisions, dtype):
  """A plug-in mixture of diagonal Normals (`MAPMixture.distribution`).

  Args:
    log_weights: log pi, [K] (-inf for an emptied component).
    means, precisions: [K, D] each, data units.
    dtype: the distribution's dtype.

  Returns:
    `tfd.MixtureSameFamily` of `IndependentNormal`s (`tfd.Independent` of
    `tfd.Normal` with a diagonal `covariance`), event shape [D].
  """
  cast = lambda t: tf.cast(t, dtype)
  return tfd.MixtureSameFamily(
      tfd.Categorical(logits=cast(log_weights)),
      IndependentNormal(tfd.Normal(cast(means),
                                   tf.math.rsqrt(cast(precisions))), 1))


def _weights(weight_field, prior_concentration, weight_prior):
  """(name, distribution) of the weight factor."""
  if weight_prior == "dirichlet":
    return "weights", tfd.Dirichlet(weight_field)
  g1, g2 = weight_priors.stick_concentrations(
      weight_field, tf.cast(prior_concentration, weight_field.dtype))
  return "sticks", tfd.Independent(tfd.Beta(g1[:-1], g2[:-1]), 1)


def _gamma_factors(family, q, means_loc, scale):
  """(precisions, means) of a Normal-Gamma q: a Gamma precision per
  feature ([K, D], diag) or per component ([K], spherical: its isotropic
  standardisation has one scale)."""
  rank = q.precision_concentration.shape.rank                     # 2 or 1
  if rank == 1:
    scale = tf.sqrt(tf.reduce_mean(tf.square(scale)))             # []
  precisions = tfd.Independent(tfd.Gamma(
      q.precision_concentration, q.precision_rate * scale**2), rank)
  beta = q.mean_precision
  if beta.shape.rank == 1:
    beta = beta[:, None]                                          # [K, 1]
  if family.mean_prior == "independent":
    # mu ~ N(m, 1 / lambda) in standardised units, whatever tau is.
    return precisions, tfd.Independent(tfd.Normal(
        means_loc, scale * tf.math.rsqrt(beta)), 2)

  def means(precisions):
    tau = precisions if rank == 2 else precisions[..., None]      # [..., K, *]
    return tfd.Independent(tfd.Normal(
        means_loc, tf.math.rsqrt(beta * tau)), 2)
  return precisions, means


def _wishart_factors(q, means_loc, scale):
  """(precisions, means) of a Normal-Wishart q: a Wishart per component
  ([K, D, D], full) or one shared by all ([D, D], tied)."""
  eye = tf.eye(q.scale_tril.shape[-1], dtype=q.scale_tril.dtype)
  w = tf.linalg.cholesky_solve(q.scale_tril, eye)        # W = (L L^T)^-1
  w_tril = tf.linalg.cholesky(w) / scale[:, None]         # chol(S^-1 W S^-1)
  precisions = tfd.WishartTriL(q.dof, w_tril)
  shared = q.dof.shape.rank == 0
  if not shared:
    precisions = tfd.Independent(precisions, 1)
  rsqrt_beta = tf.math.rsqrt(q.mean_precision)[:, None, None]     # [K, 1, 1]

  def means(precisions):
    # Cov = (beta Lambda)^-1 = C^-T C^-1 / beta with Lambda = C C^T: the
    # factor C^-T / sqrt(beta) is upper triangular.
    inverse = tf.linalg.triangular_solve(
        tf.linalg.cholesky(precisions), tf.broadcast_to(
            eye, tf.shape(precisions)), lower=True)               # C^-1
    if shared:
      inverse = inverse[..., None, :, :]                          # [..., 1, D, D]
    return tfd.Independent(tfd.MultivariateNormalLinearOperator(
        means_loc, tf.linalg.LinearOperatorAdjoint(
            tf.linalg.LinearOperatorLowerTriangular(
                inverse * rsqrt_beta))), 1)
  return precisions, means


def joint(family, q, prior, weight_prior, loc, scale):
  """q (or the prior, given as a q) as a `tfd.JointDistributionNamed`.

  Args:
    family: the model's `Family`.
    q: a posterior of one model (fields [K], [K, D], ...), standardised
      units.
    prior: the model's prior (for the Dirichlet-process concentration).
    weight_prior: "dirichlet" or "dirichlet_process".
    loc, scale: the standardisation, [D] each.

  Returns:
    `tfd.JointDistributionNamed` over "weights" [K] (or "sticks" [K - 1]),
    "precisions" (Gamma: [K, D] per feature or [K] per component; Wishart:
    [K, D, D] per component or one [D, D]) and "means" [K, D] (given the
    precisions, or independent of them under the independent prior), all
    in data units.
  """
  _check_supported(family)
  dtype = q.mean_loc.dtype
  loc, scale = tf.cast(loc, dtype), tf.cast(scale, dtype)          # [D]
  name, weights = _weights(q.weight_concentration,
                           prior.weight_concentration, weight_prior)
  means_loc = loc + scale * q.mean_loc                            # [K, D]
  if family.precision_prior == "wishart":
    precisions, means = _wishart_factors(q, means_loc, scale)
  else:
    precisions, means = _gamma_factors(family, q, means_loc, scale)
  return tfd.JointDistributionNamed(
      {name: weights, "precisions": precisions, "means": means})


def prior_as_posterior(family, prior, weight_prior, n_components, n_features):
  """The prior broadcast to one model's q fields (the DP's counts c = 0)."""
  q = family.posterior_type(*[
      tf.broadcast_to(t, shape) for t, shape in zip(
          prior, family.field_shapes(n_components, n_features))])
  if weight_prior == "dirichlet_process":
    q = q._replace(weight_concentration=tf.zeros_like(q.weight_concentration))
  return q
