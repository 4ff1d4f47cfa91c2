"""Posterior summaries of a fitted `BayesianGMM`, in data units.

`posterior_mean` and `posterior_summary` read the model's public state (its
family, q, prior and standardisation) and return numpy arrays; the model's
methods of the same names call them. The per-feature marginals come from the
family (`Family.feature_marginals`, `Family.expected_precisions`), the
weights' moments from the weight prior (`weight_priors`), so no covariance
type or prior is special-cased here.

#### Mathematical Details

Per feature d of component k, with 1 / sigma^2 ~ Gamma(a, b) (the family's
marginal of the feature's precision):

```none
E[sigma]   = sqrt(b) Gamma(a - 1/2) / Gamma(a)
E[sigma^2] = b / (a - 1)                       (a > 1; NaN otherwise)
sd(sigma)  = sqrt(E[sigma^2] - E[sigma]^2)
```

and data units multiply every standardised scale by the feature's scale.
"""

import numpy as np
import tensorflow as tf

from tfgmm._engine import weight_priors


def _posterior64(model):
  return model.family.cast_posterior(model.posterior(), tf.float64)


def _mean_weights(model, q):
  """E_q[pi], numpy [K]."""
  return weight_priors.expected_weights(
      q.weight_concentration,
      tf.cast(model.prior().weight_concentration, tf.float64),
      model.weight_prior).numpy()


def posterior_mean(model):
  """Posterior means of the weights, component means and precisions.

  Args:
    model: an initialised `BayesianGMM`.

  Returns:
    dict of numpy arrays in data units: `weights` [K] (E[pi]), `means`
    [K, D] (E[mu]), `precisions`: the family's E[precision]
    (`Family.expected_precisions`: [K, D] E[tau] for the diagonal and
    spherical families, [K, D, D] E[Lambda] = nu W for full and tied
    covariances, tied's shared matrix repeated per component).
  """
  q = _posterior64(model)
  loc, scale = model.feature_loc.numpy(), model.feature_scale.numpy()
  return {
      "weights": _mean_weights(model, q),
      "means": loc + scale * q.mean_loc.numpy(),                 # [K, D]
      "precisions": model.family.expected_precisions(q, scale),
  }


def posterior_summary(model):
  """Posterior means and standard deviations, in data units.

  Args:
    model: an initialised `BayesianGMM`.

  Returns:
    dict of numpy arrays: `weights`, `weights_sd` [K] (Dirichlet, or the
    stick-breaking E[pi_k^2], see `weight_priors.weight_second_moments`);
    `means`, `means_sd` [K, D] (conjugate: marginal Student-t of mu,
    sd = sqrt(b / (beta (a - 1))); independent: 1 / sqrt(lambda));
    `stddevs`, `stddevs_sd` [K, D] of each feature's sigma (see the module
    docstring). Standard deviations need a > 1 and are NaN otherwise (the
    moment does not exist).
  """
  q = _posterior64(model)
  a, b, mean_variance = model.family.feature_marginals(
      q, model.n_features)                                        # [K, D] each
  scale = model.feature_scale.numpy()
  weights = _mean_weights(model, q)
  second = weight_priors.weight_second_moments(
      q.weight_concentration.numpy(),
      float(model.prior().weight_concentration), model.weight_prior)
  with np.errstate(invalid="ignore", divide="ignore"):
    moment2 = np.where(a > 1, b / np.where(a > 1, a - 1, 1.0), np.nan)
    e_sigma = np.exp(0.5 * np.log(b) + tf.math.lgamma(a - 0.5).numpy()
                     - tf.math.lgamma(a).numpy())
    return {
        "weights": weights,
        "weights_sd": np.sqrt(np.maximum(second - weights**2, 0.0)),
        "means": posterior_mean(model)["means"],
        "means_sd": scale * np.sqrt(mean_variance),
        "stddevs": scale * e_sigma,
        "stddevs_sd": scale * np.sqrt(np.maximum(moment2 - e_sigma**2, 0.0)),
    }
