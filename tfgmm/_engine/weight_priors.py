"""The weight priors every family shares: Dirichlet and Dirichlet-process sticks.

q's weight field is the Dirichlet concentration alpha [K] under
`weight_prior="dirichlet"`, or the stick counts c [K] under
`weight_prior="dirichlet_process"` (truncated stick-breaking, Blei and Jordan
2006). The functions here turn that field into E[log pi], log E[pi], the
weights' KL and reparameterised draws of log pi; they never look at the
components, so every covariance family uses them unchanged.

#### References

[1] Blei, D. M. and Jordan, M. I. Variational inference for Dirichlet
    process mixtures. Bayesian Analysis, 2006.
[2] Marsaglia, G. and Tsang, W. W. A simple method for generating gamma
    variables. ACM TOMS, 2000.
"""

import numpy as np
import tensorflow as tf

WEIGHT_PRIORS = ("dirichlet", "dirichlet_process")


def stick_concentrations(weight_counts, prior_concentration):
  """The Beta posteriors of the truncated stick-breaking weights, [K] each.

  Under the Dirichlet-process prior the weight field of a `Posterior` holds
  c_k, the (scaled, interpolated) soft count of component k, and

  ```none
  q(v_k) = Beta(g1_k, g2_k),  g1_k = 1 + c_k,  g2_k = gamma0 + sum_{j>k} c_j
  ```
  (vb-math.md; Blei and Jordan 2006, eq. 18). The natural-gradient step is
  linear in c, so interpolating c interpolates (g1, g2) exactly; c >= 0 keeps
  both positive by construction. The last stick is v_K = 1 (its g's unused).

  Args:
    weight_counts: c, [..., K], non-negative.
    prior_concentration: gamma0 > 0, the DP concentration, scalar.

  Returns:
    (g1, g2), [..., K] each.
  """
  weight_counts = tf.convert_to_tensor(weight_counts)
  tail = tf.cumsum(weight_counts, -1, exclusive=True, reverse=True)  # [K]
  return 1.0 + weight_counts, prior_concentration + tail


def stick_log_weights(log_v, log_rest):
  """log pi_k = log v_k + sum_{j<k} log(1 - v_j), with v_K = 1, [..., K]."""
  log_v = tf.concat([log_v[..., :-1], tf.zeros_like(log_v[..., -1:])], -1)
  return log_v + tf.cumsum(log_rest, -1, exclusive=True)


def expected_log_weights(weight_concentration, prior_concentration=None,
                         weight_prior="dirichlet"):
  """E_q[log pi_k], [..., K].

  ```none
  Dirichlet:  digamma(alpha_k) - digamma(sum_j alpha_j)
  DP sticks:  E[log v_k] + sum_{j<k} E[log(1 - v_j)],
              E[log v] = digamma(g1) - digamma(g1 + g2),
              E[log(1 - v)] = digamma(g2) - digamma(g1 + g2)
  ```

  Args:
    weight_concentration: the weight field of a `Posterior` [..., K]: alpha
      (Dirichlet) or the stick counts c (see `stick_concentrations`).
    prior_concentration: gamma0 (DP only), scalar.
    weight_prior: "dirichlet" or "dirichlet_process".
  """
  if weight_prior == "dirichlet":
    return (tf.math.digamma(weight_concentration)
            - tf.math.digamma(tf.reduce_sum(weight_concentration, -1,
                                            keepdims=True)))
  g1, g2 = stick_concentrations(weight_concentration, prior_concentration)
  total = tf.math.digamma(g1 + g2)                                # [..., K]
  return stick_log_weights(tf.math.digamma(g1) - total,
                            tf.math.digamma(g2) - total)


def posterior_log_weights(q, prior, weight_prior="dirichlet"):
  """E_q[log pi] of a posterior under its prior, float64 [K] (or [R, K])."""
  return expected_log_weights(
      tf.cast(q.weight_concentration, tf.float64),
      tf.cast(prior.weight_concentration, tf.float64), weight_prior)


def log_expected_weights(weight_concentration, prior_concentration=None,
                         weight_prior="dirichlet"):
  """log E_q[pi_k], [..., K]: the predictive's mixing weights.

  Dirichlet: log(alpha_k / sum alpha). DP: E[pi_k] = E[v_k] prod_{j<k}
  E[1 - v_j] exactly (the sticks are independent under q), E[v] = g1/(g1+g2).
  """
  if weight_prior == "dirichlet":
    return (tf.math.log(weight_concentration)
            - tf.math.log(tf.reduce_sum(weight_concentration, -1,
                                        keepdims=True)))
  g1, g2 = stick_concentrations(weight_concentration, prior_concentration)
  log_total = tf.math.log(g1 + g2)                                # [..., K]
  return stick_log_weights(tf.math.log(g1) - log_total,
                            tf.math.log(g2) - log_total)


def draw_components(n, seed, weight_concentration, log_mean_weights=None):
  """n stateless draws of a component from E[pi], and two more seeds.

  The start of every family's `sample_predictive`: the seed splits into
  three streams, the first draws the components.

  Args:
    n: number of draws, int32 scalar.
    seed: a shape [2] int seed.
    weight_concentration: q's Dirichlet alpha, [K] (used when
      `log_mean_weights` is None).
    log_mean_weights: log E[pi], [K], or None.

  Returns:
    (component, seeds): int64 [n], and [2, 2] seeds for the family's
    other draws.
  """
  seeds = tf.random.experimental.stateless_split(seed, 3)
  if log_mean_weights is None:
    log_mean_weights = log_expected_weights(weight_concentration)
  logits = tf.cast(log_mean_weights, tf.float64)[None, :]         # [1, K]
  component = tf.random.stateless_categorical(logits, n, seeds[0])[0]  # [n]
  return component, seeds[1:]


def expected_weights(weight_concentration, prior_concentration=None,
                     weight_prior="dirichlet"):
  """E_q[pi_k], [..., K]; see `log_expected_weights`."""
  return tf.exp(log_expected_weights(weight_concentration,
                                     prior_concentration, weight_prior))


def weight_offset(prior_concentration, weight_prior):
  """What the global step adds to the scaled counts in the weight field.

  alpha = alpha0 + s N (Dirichlet); c = 0 + s N (DP sticks).
  """
  return prior_concentration if weight_prior == "dirichlet" else 0.0


def log_weight_field(weight_concentration):
  """log of q's weight field, [K], finite where the field is 0.

  Under the Dirichlet-process prior the field holds stick counts c_k, and an
  empty component's count is 0 (or rounds to 0 in float32): its logarithm
  would be -inf in an unconstrained variable, whose gradient steps then make
  NaN. The smallest normal number stands in for 0; exp maps it back to a
  count no computation can tell from 0.
  """
  tiny = np.finfo(weight_concentration.dtype.as_numpy_dtype).tiny
  return tf.math.log(tf.maximum(weight_concentration, tiny))      # [K]


def dirichlet_kl(concentration, prior_concentration):
  """KL(Dirichlet(c) || Dirichlet(c0)), scalar; c [K], c0 broadcastable."""
  c0 = tf.broadcast_to(prior_concentration, tf.shape(concentration))
  total = tf.reduce_sum(concentration, -1)
  total0 = tf.reduce_sum(c0, -1)
  return (tf.math.lgamma(total)
          - tf.reduce_sum(tf.math.lgamma(concentration), -1)
          - tf.math.lgamma(total0) + tf.reduce_sum(tf.math.lgamma(c0), -1)
          + tf.reduce_sum((concentration - c0)
                          * (tf.math.digamma(concentration)
                             - tf.math.digamma(total[..., None])), -1))


def beta_kl(concentration1, concentration0, prior_concentration1,
            prior_concentration0):
  """Elementwise KL(Beta(a, b) || Beta(a0, b0)).

  ```none
  KL = log B(a0, b0) - log B(a, b) + (a - a0) digamma(a) + (b - b0) digamma(b)
       + (a0 - a + b0 - b) digamma(a + b)
  ```
  """
  a, b = concentration1, concentration0
  a0, b0 = prior_concentration1, prior_concentration0
  log_beta = lambda u, v: (tf.math.lgamma(u) + tf.math.lgamma(v)  # noqa: E731
                           - tf.math.lgamma(u + v))
  return (log_beta(a0, b0) - log_beta(a, b) + (a - a0) * tf.math.digamma(a)
          + (b - b0) * tf.math.digamma(b)
          + (a0 - a + b0 - b) * tf.math.digamma(a + b))


def weights_kl(weight_concentration, prior_concentration,
               weight_prior="dirichlet"):
  """KL(q(pi) || p(pi)), [...]: Dirichlet, or the K - 1 Beta sticks."""
  if weight_prior == "dirichlet":
    return dirichlet_kl(weight_concentration, prior_concentration)
  g1, g2 = stick_concentrations(weight_concentration, prior_concentration)
  ones = tf.ones_like(g1)
  kl = beta_kl(g1, g2, ones,
               tf.cast(prior_concentration, g1.dtype) * ones)     # [..., K]
  return tf.reduce_sum(kl[..., :-1], -1)                          # v_K = 1


def log_gamma_draws(rows, concentration, seed):
  """Reparameterised draws of log G, G ~ Gamma(a, 1), [B, *a.shape].

  ```none
  log G(a) = log G(a + 1) + log(U) / a,   U ~ Uniform(0, 1)
  ```

  (Marsaglia and Tsang 2000, section 6). TFP's ExpGamma(a) is drawn directly
  only at a + 1 >= 1: at small a its draws reach below log of the smallest
  float (a = 1 / 20 gives log G < -87 often), where its reparameterised
  gradient is NaN. The boost keeps every term finite and differentiable:
  d/da of log(U) / a is -log(U) / a^2. Needs TFP.

  Args:
    rows: B, the number of draws.
    concentration: a > 0, any shape.
    seed: shape [2] int seed.
  """
  import tensorflow_probability as tfp  # pylint: disable=import-outside-toplevel
  gamma_seed, uniform_seed = tf.unstack(
      tf.random.experimental.stateless_split(seed, 2))
  boosted = tfp.distributions.ExpGamma(concentration + 1.0, rate=1.0).sample(
      rows, seed=gamma_seed)                                      # [B, ...]
  uniform = tf.random.stateless_uniform(
      tf.shape(boosted), uniform_seed, dtype=boosted.dtype)       # [0, 1)
  return boosted + tf.math.log1p(-uniform) / concentration        # [B, ...]


def sampled_log_weights(rows, weight_concentration, seed,
                        prior_concentration=None, weight_prior="dirichlet"):
  """One reparameterised draw of log pi from q per row, [B, R..., K].

  Dirichlet: log pi = g - logsumexp(g), g_k ~ ExpGamma(alpha_k) (a Dirichlet
  draw in log space). Sticks: log v = h1 - logsumexp(h1, h2) with
  h ~ ExpGamma(g1), ExpGamma(g2), then `stick_log_weights`. The log-Gamma
  draws come from `log_gamma_draws`. Needs TFP.

  Args:
    rows: B, the number of draws.
    weight_concentration: q's weight field, [R..., K].
    seed: shape [2] int seed.
    prior_concentration: gamma0 (stick-breaking prior only).
    weight_prior: "dirichlet" or "dirichlet_process".
  """
  if weight_prior == "dirichlet":
    log_gamma = log_gamma_draws(rows, weight_concentration,
                                seed)                             # [B, R.., K]
    return log_gamma - tf.reduce_logsumexp(log_gamma, -1, keepdims=True)
  g1, g2 = stick_concentrations(weight_concentration, prior_concentration)
  log_gamma = log_gamma_draws(rows, tf.stack([g1, g2]),
                              seed)                               # [B, 2, R.., K]
  log_total = tf.reduce_logsumexp(log_gamma, 1)                   # [B, R.., K]
  return stick_log_weights(log_gamma[:, 0] - log_total,
                           log_gamma[:, 1] - log_total)


def weight_second_moments(weight_concentration, prior_concentration=None,
                          weight_prior="dirichlet"):
  """E_q[pi_k^2], numpy [K] (for the weights' standard deviations).

  ```none
  Dirichlet:  alpha_k (alpha_k + 1) / (A (A + 1)),  A = sum_j alpha_j
  DP sticks:  E[v_k^2] prod_{j<k} E[(1 - v_j)^2],
              E[v^2] = g1 (g1 + 1) / ((g1 + g2) (g1 + g2 + 1))
  ```

  Args:
    weight_concentration: q's weight field, numpy [K].
    prior_concentration: gamma0 (DP only), a float.
    weight_prior: "dirichlet" or "dirichlet_process".
  """
  c = np.asarray(weight_concentration, np.float64)
  if weight_prior == "dirichlet":
    total = c.sum()
    return c * (c + 1) / (total * (total + 1))
  g1, g2 = [t.numpy() for t in stick_concentrations(c, prior_concentration)]
  log_total = np.log(g1 + g2) + np.log(g1 + g2 + 1)
  return np.exp(stick_log_weights(
      np.log(g1) + np.log(g1 + 1) - log_total,
      np.log(g2) + np.log(g2 + 1) - log_total).numpy())
