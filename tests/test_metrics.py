"""`tfgmm.metrics` against scikit-learn, scipy, brute force and permutations."""

import itertools
import math
import types

import numpy as np
import pytest
import scipy.special
import scipy.stats
import sklearn.metrics
import tensorflow as tf

import tfgmm
from tfgmm import metrics

# Three well-separated unit-variance clusters in 2-D (the truth of the fits).
TRUE_WEIGHTS = np.array([0.5, 0.3, 0.2])
TRUE_MEANS = np.array([[0.0, 0.0], [7.0, 0.0], [0.0, 7.0]])
TRUE_VARIANCES = np.array([[1.0, 1.0], [0.5, 2.0], [1.5, 0.7]])
TRUE_LABEL_NAMES = np.array([10, -4, 3])    # arbitrary ints, not 0..K-1


def draw(n, seed):
  """n rows of the true mixture and their (arbitrarily named) labels."""
  rng = np.random.default_rng(seed)
  z = rng.choice(3, size=n, p=TRUE_WEIGHTS)
  x = TRUE_MEANS[z] + rng.standard_normal((n, 2)) * np.sqrt(TRUE_VARIANCES[z])
  return x, TRUE_LABEL_NAMES[z]


@pytest.fixture(scope="module")
def data():
  x, y = draw(600, seed=1)
  x_test, y_test = draw(1000, seed=2)
  return x, y, x_test, y_test


@pytest.fixture(scope="module")
def fits(data):
  x = data[0]
  return tfgmm.fit(x, 3, seed=0), tfgmm.fit(x, 3, seed=1)


def random_labels(rng, n, k):
  names = rng.choice(np.arange(-50, 50), size=k, replace=False)
  return names[rng.integers(k, size=n)]


def softmax(logits):
  return np.exp(logits - scipy.special.logsumexp(logits, axis=1,
                                                 keepdims=True))


# ----------------------------------------------------- adjusted Rand index


def test_adjusted_rand_index_matches_sklearn_on_random_labelings():
  rng = np.random.default_rng(0)
  for n, k_true, k_pred in itertools.product((1, 2, 7, 60, 400), (1, 2, 5),
                                             (1, 3, 8)):
    y_true = random_labels(rng, n, k_true)
    y_pred = random_labels(rng, n, k_pred)
    expected = sklearn.metrics.adjusted_rand_score(y_true, y_pred)
    assert metrics.adjusted_rand_index(y_true, y_pred) == pytest.approx(
        expected, rel=1e-12, abs=1e-14), (n, k_true, k_pred)
  # Correlated labelings give values far from 0 as well.
  y_true = random_labels(rng, 500, 4)
  y_pred = np.where(rng.random(500) < 0.7, y_true * 3 + 1,
                    random_labels(rng, 500, 4))
  ari = metrics.adjusted_rand_index(y_true, y_pred)
  assert ari > 0.3
  assert ari == pytest.approx(
      sklearn.metrics.adjusted_rand_score(y_true, y_pred), rel=1e-12)


@pytest.mark.parametrize("y_true, y_pred", [
    ([0, 0, 0, 0], [5, 5, 5, 5]),          # single cluster both
    ([0, 1, 2, 3], [9, 8, 7, 6]),          # all singletons both
    ([0, 0, 0, 0], [0, 1, 2, 3]),          # single cluster vs singletons
    ([0, 1, 2, 3], [0, 0, 0, 0]),
    ([0, 0, 1, 1], [0, 0, 0, 0]),
    ([3], [7]),                            # one row
    ([1, 1, 2, 2, 3], [-2, -2, 40, 40, 0]),  # identical up to renaming
])
def test_adjusted_rand_index_degenerate_cases(y_true, y_pred):
  expected = sklearn.metrics.adjusted_rand_score(y_true, y_pred)
  assert metrics.adjusted_rand_index(y_true, y_pred) == pytest.approx(
      expected, abs=1e-15)


def test_adjusted_rand_index_identical_and_symmetric():
  rng = np.random.default_rng(1)
  y = random_labels(rng, 300, 6)
  assert metrics.adjusted_rand_index(y, y) == 1.0
  other = random_labels(rng, 300, 4)
  assert (metrics.adjusted_rand_index(y, other)
          == metrics.adjusted_rand_index(other, y))


def test_adjusted_rand_index_many_rows_and_singletons():
  rng = np.random.default_rng(2)
  y_true = rng.integers(20, size=200_000)
  noise = rng.integers(30, size=200_000)
  y_pred = np.where(rng.random(200_000) < 0.5, y_true, noise)
  assert metrics.adjusted_rand_index(y_true, y_pred) == pytest.approx(
      sklearn.metrics.adjusted_rand_score(y_true, y_pred), rel=1e-10)
  singletons = np.arange(200_000)                 # a dense table would be huge
  assert metrics.adjusted_rand_index(y_true, singletons) == pytest.approx(
      sklearn.metrics.adjusted_rand_score(y_true, singletons), abs=1e-12)


# ------------------------------------------------------- matched accuracy


def brute_force_accuracy(y_true, y_pred):
  """accuracy_score of the best one-to-one renaming of y_pred (brute force)."""
  classes, clusters = np.unique(y_true), np.unique(y_pred)
  unpaired = classes.max() + 1                    # never a reference label
  if clusters.size <= classes.size:
    pairings = (dict(zip(clusters, targets))
                for targets in itertools.permutations(classes, clusters.size))
  else:
    pairings = (dict(zip(sources, classes))
                for sources in itertools.permutations(clusters, classes.size))
  best, best_renamed = -1, None
  for mapping in pairings:
    renamed = np.array([mapping.get(p, unpaired) for p in y_pred])
    agree = int(np.sum(renamed == y_true))
    if agree > best:
      best, best_renamed = agree, renamed
  return sklearn.metrics.accuracy_score(y_true, best_renamed)


def test_matched_accuracy_matches_brute_force_search():
  rng = np.random.default_rng(3)
  for trial, (k_true, k_pred) in enumerate(
      itertools.product((1, 2, 3, 4), (1, 2, 3, 5))):
    n = 40 + trial
    y_true = random_labels(rng, n, k_true)
    y_pred = np.where(rng.random(n) < 0.6, y_true * 7 - 2,
                      random_labels(rng, n, k_pred))
    expected = brute_force_accuracy(y_true, y_pred)
    assert metrics.matched_accuracy(y_true, y_pred) == pytest.approx(
        expected, abs=1e-15), (k_true, k_pred)


def test_matched_accuracy_is_invariant_under_renaming():
  rng = np.random.default_rng(4)
  y_true = random_labels(rng, 200, 4)
  y_pred = np.where(rng.random(200) < 0.8, y_true, random_labels(rng, 200, 4))
  value = metrics.matched_accuracy(y_true, y_pred)
  assert 0.6 < value < 1.0
  renaming = dict(zip(np.unique(y_pred), rng.permutation(1000)[:8]))
  renamed = np.array([renaming[p] for p in y_pred])
  assert metrics.matched_accuracy(y_true, renamed) == value
  assert metrics.matched_accuracy(y_true, y_true) == 1.0


def test_match_labels_and_relabel():
  y_true = np.array([10, 10, 10, 10, -4, -4, 3, 3, 3])
  y_pred = np.array([2, 2, 2, 0, 0, 0, 1, 1, 1])
  assert metrics.match_labels(y_pred, y_true) == {0: -4, 1: 3, 2: 10}
  np.testing.assert_array_equal(metrics.relabel(y_pred, y_true),
                                [10, 10, 10, -4, -4, -4, 3, 3, 3])
  # More predicted labels: the extra one gets a fresh name max(y_true) + 1.
  y_pred = np.array([5, 5, 5, 5, 0, 0, 7, 7, 8])
  assert metrics.match_labels(y_pred, y_true) == {0: -4, 5: 10, 7: 3}
  np.testing.assert_array_equal(metrics.relabel(y_pred, y_true),
                                [10, 10, 10, 10, -4, -4, 3, 3, 11])
  assert metrics.matched_accuracy(y_true, y_pred) == 8 / 9
  # Fewer predicted labels: some reference labels stay unpaired.
  y_pred = np.zeros(9, np.int32)
  assert metrics.match_labels(y_pred, y_true) == {0: 10}
  assert metrics.matched_accuracy(y_true, y_pred) == 4 / 9
  # Tensors are accepted; relabel keeps the partition.
  rng = np.random.default_rng(5)
  y_true, y_pred = random_labels(rng, 100, 3), random_labels(rng, 100, 5)
  renamed = metrics.relabel(tf.constant(y_pred), y_true)
  assert metrics.adjusted_rand_index(y_pred, renamed) == 1.0
  assert (sklearn.metrics.accuracy_score(y_true, renamed)
          == metrics.matched_accuracy(y_true, y_pred))


# ---------------------------------------------------------------- log loss


@pytest.mark.parametrize("n_columns, n_classes", [(3, 3), (5, 3), (4, 1)])
def test_log_loss_matches_sklearn_after_permuting_columns(n_columns,
                                                          n_classes):
  rng = np.random.default_rng(n_columns * 10 + n_classes)
  names = np.array([40, -7, 2])[:n_classes]
  class_idx = rng.integers(n_classes, size=300)
  column_of_class = rng.permutation(n_columns)[:n_classes]   # hidden matching
  logits = rng.normal(size=(300, n_columns))
  logits[np.arange(300), column_of_class[class_idx]] += 3.0
  probabilities = softmax(logits)
  expected = sklearn.metrics.log_loss(column_of_class[class_idx],
                                      probabilities,
                                      labels=np.arange(n_columns))
  value = metrics.log_loss(names[class_idx], probabilities)
  assert value == pytest.approx(expected, rel=1e-12)
  assert metrics.log_loss(names[class_idx],
                          log_probabilities=np.log(probabilities)) == (
                              pytest.approx(expected, rel=1e-12))
  # Permuting the columns (relabelling the components) changes nothing.
  shuffled = probabilities[:, rng.permutation(n_columns)]
  assert metrics.log_loss(names[class_idx], shuffled) == pytest.approx(
      value, rel=1e-14)


def test_log_loss_floors_exact_zeros_only():
  y = np.array([0, 0, 1, 1])
  p = np.array([[0.9, 0.1], [0.8, 0.2], [1e-300, 1.0], [0.3, 0.7]])
  # Matched: column 0 -> label 0, column 1 -> label 1; the tiny 1e-300 is
  # not the row's true column, and not clipped.
  expected = -np.mean(np.log([0.9, 0.8, 1.0, 0.7]))
  assert metrics.log_loss(y, p) == pytest.approx(expected, rel=1e-14)
  p = np.array([[0.9, 0.1], [0.8, 0.2], [0.0, 1.0], [1.0, 0.0]])
  y = np.array([0, 0, 1, 1])
  expected = -(math.log(0.9) + math.log(0.8) + 0.0
               + math.log(metrics.PROBABILITY_FLOOR)) / 4
  assert metrics.log_loss(y, p) == pytest.approx(expected, rel=1e-14)
  with np.errstate(divide="ignore"):
    log_p = np.log(p)
  assert metrics.log_loss(y, log_probabilities=log_p) == pytest.approx(
      expected, rel=1e-14)
  assert math.log(metrics.PROBABILITY_FLOOR) == pytest.approx(-708.396,
                                                              abs=1e-3)


# ------------------------------------------------------------- densities


def test_mixture_log_density_matches_scipy():
  rng = np.random.default_rng(6)
  x = rng.normal(0, 3, size=(50, 3))
  weights = np.array([0.2, 0.0, 0.45, 0.35])
  means = rng.normal(0, 2, size=(4, 3))
  variances = rng.uniform(0.3, 3.0, size=(4, 3))
  with np.errstate(divide="ignore"):
    terms = np.stack([
        math.log(w) if w > 0 else -np.inf for w in weights])[None] + np.stack(
            [scipy.stats.multivariate_normal(m, np.diag(v)).logpdf(x)
             for m, v in zip(means, variances)], axis=1)
  expected = scipy.special.logsumexp(terms, axis=1)
  np.testing.assert_allclose(
      metrics.mixture_log_density(x, weights, means, variances), expected,
      rtol=1e-12)
  # A shared variance broadcasts over the components.
  shared = scipy.special.logsumexp(np.log(weights[[0, 2, 3]])[None] + np.stack(
      [scipy.stats.multivariate_normal(m, 0.5 * np.eye(3)).logpdf(x)
       for m in means[[0, 2, 3]]], axis=1), axis=1)
  np.testing.assert_allclose(
      metrics.mixture_log_density(x, weights, means, 0.5), shared, rtol=1e-12)


def test_heldout_log_likelihood(data, fits):
  model = fits[0]
  _, _, x_test, _ = data
  truth = (TRUE_WEIGHTS, TRUE_MEANS, TRUE_VARIANCES)
  mean = metrics.heldout_log_likelihood(model, x_test)
  assert mean == pytest.approx(float(np.mean(
      model.log_prob(x_test).numpy().astype(np.float64))), rel=1e-6)
  true_mean = np.mean(metrics.mixture_log_density(x_test, *truth))
  difference = metrics.heldout_log_likelihood(model, x_test, reference=truth)
  assert difference == pytest.approx(mean - true_mean, rel=1e-12)
  # A good fit of 600 rows is a few hundredths of a nat per row below the
  # truth (this one -0.05); beating it by much would be a bug.
  assert -0.15 < difference < 0.05
  def callable_reference(x):
    return metrics.mixture_log_density(x, *truth)
  assert metrics.heldout_log_likelihood(
      model, x_test, reference=callable_reference) == difference
  assert metrics.heldout_log_likelihood(model, x_test, reference=model) == 0.0
  # A worse density scores lower.
  wrong = (TRUE_WEIGHTS, TRUE_MEANS + 1.0, TRUE_VARIANCES)
  assert metrics.heldout_log_likelihood(model, x_test, reference=wrong) > 0.3


# ------------------------------------------------------- label switching


def test_fit_with_permuted_components_gives_identical_metrics(data, fits):
  model = fits[0]
  x, y, x_test, y_test = data
  labels = model.assign(x_test).numpy()
  probabilities = model.responsibilities(x_test).numpy()
  assert metrics.matched_accuracy(y_test, labels) > 0.99
  assert metrics.adjusted_rand_index(y_test, labels) > 0.97
  assert metrics.log_loss(y_test, probabilities) < 0.05
  np.testing.assert_array_equal(metrics.canonical_order(model), [0, 1, 2])

  perm = np.array([2, 0, 1])                      # copy's k is model's perm[k]
  copy = model.prune(0.0)
  q = copy.posterior()
  copy.assign_posterior(type(q)(*[tf.gather(t, perm) for t in q]))
  inverse = np.argsort(perm)
  copy_labels = copy.assign(x_test).numpy()
  np.testing.assert_array_equal(copy_labels, inverse[labels])
  assert (metrics.matched_accuracy(y_test, copy_labels)
          == metrics.matched_accuracy(y_test, labels))
  assert (metrics.adjusted_rand_index(y_test, copy_labels)
          == metrics.adjusted_rand_index(y_test, labels))
  assert metrics.log_loss(y_test, copy.responsibilities(x_test)) == (
      pytest.approx(metrics.log_loss(y_test, probabilities), rel=1e-5))
  np.testing.assert_array_equal(metrics.relabel(copy_labels, y_test),
                                metrics.relabel(labels, y_test))

  # The canonical order undoes the permutation, as sort_components does.
  order = metrics.canonical_order(copy)
  np.testing.assert_array_equal(order, inverse)
  np.testing.assert_array_equal(copy.sort_components(), order)
  comparison = metrics.compare_fits(model, copy)
  np.testing.assert_array_equal(comparison.permutation, [0, 1, 2])
  assert max(comparison.max_abs_diff.values()) < 1e-4


def test_compare_fits_finds_the_inverse_permutation(fits):
  model = fits[0]
  means = model.posterior_mean()
  perm = np.array([2, 0, 1])
  permuted = {key: value[perm] for key, value in means.items()}
  result = metrics.compare_fits(model, permuted)
  np.testing.assert_array_equal(result.permutation, np.argsort(perm))
  assert result.max_abs_diff == {"weights": 0.0, "means": 0.0,
                                 "precisions": 0.0}
  for key in means:
    np.testing.assert_array_equal(result.a[key], means[key])
    np.testing.assert_array_equal(result.b[key], means[key])
  np.testing.assert_array_equal(result.distances, 0.0)
  np.testing.assert_array_equal(
      metrics.canonical_order(permuted), np.argsort(perm))

  # An estimator's covariances_ are inverted to the model's precisions.
  estimator = types.SimpleNamespace(weights_=permuted["weights"],
                                    means_=permuted["means"],
                                    covariances_=1.0 / permuted["precisions"])
  result = metrics.compare_fits(model, estimator)
  np.testing.assert_array_equal(result.permutation, np.argsort(perm))
  assert result.max_abs_diff["precisions"] < 1e-12

  # Fewer components in b: the unmatched one of a gets -1.
  fewer = {key: value[[2, 0]] for key, value in means.items()}
  result = metrics.compare_fits(means, fewer)
  np.testing.assert_array_equal(result.permutation, [1, -1, 0])
  np.testing.assert_array_equal(result.a["means"], means["means"][[0, 2]])
  assert max(result.max_abs_diff.values()) == 0.0


def test_compare_fits_full_covariances():
  rng = np.random.default_rng(7)
  factors = rng.normal(size=(4, 3, 3))
  covariances = factors @ np.swapaxes(factors, 1, 2) + np.eye(3)
  a = {"weights": rng.dirichlet(np.ones(4)), "means": rng.normal(0, 5, (4, 3)),
       "covariances": covariances}
  perm = np.array([3, 1, 0, 2])
  b = {"weights": a["weights"][perm], "means": a["means"][perm] + 1e-3,
       "precisions": np.linalg.inv(covariances[perm])}
  result = metrics.compare_fits(a, b)
  np.testing.assert_array_equal(result.permutation, np.argsort(perm))
  assert result.max_abs_diff["means"] == pytest.approx(1e-3, rel=1e-6)
  assert result.max_abs_diff["weights"] == 0.0
  assert result.max_abs_diff["covariances"] < 1e-10
  assert result.b["covariances"].shape == (4, 3, 3)


def test_compare_fits_of_two_seeds_agree(fits):
  result = metrics.compare_fits(*fits)
  # Same well-separated data, same optimum: the differences are the
  # convergence tolerance's, far below the clusters' widths (about 1).
  assert result.max_abs_diff["weights"] < 1e-3
  assert result.max_abs_diff["means"] < 1e-2
  assert result.max_abs_diff["precisions"] < 2e-2
  assert np.all(result.distances < 1e-2)
  # The truth, given as variances, matches the fit within sampling error.
  truth = {"weights": TRUE_WEIGHTS, "means": TRUE_MEANS,
           "covariances": TRUE_VARIANCES}
  result = metrics.compare_fits(truth, fits[0])
  np.testing.assert_array_equal(result.permutation, [0, 1, 2])
  assert result.max_abs_diff["weights"] < 0.06     # this one: 0.016
  assert result.max_abs_diff["means"] < 0.4       # this one: 0.17


# ------------------------------------------------------------- bad input


@pytest.mark.parametrize("call, error, message", [
    (lambda: metrics.matched_accuracy([0, 1, 2], [0, 1]), ValueError,
     r"`labels_pred` with the same length as `labels_true` \(3\)\. "
     r"Received: labels_pred.shape=\(2,\)"),
    (lambda: metrics.adjusted_rand_index(np.zeros((3, 2)), np.zeros(3)),
     ValueError, r"`labels_true` with 1 dim\. "
     r"Received: labels_true.shape=\(3, 2\)"),
    (lambda: metrics.match_labels([0, 1], [[0, 1]]), ValueError,
     r"labels_true.shape=\(1, 2\)"),
    (lambda: metrics.relabel([], []), ValueError,
     r"`labels_pred` to have at least one label"),
    (lambda: metrics.matched_accuracy([0, 0.5], [0, 1]), ValueError,
     r"`labels_true` to be integer labels\. Received: labels_true\[1\]=0.5"),
    (lambda: metrics.adjusted_rand_index([0, 1], [0, np.nan]), ValueError,
     r"labels_pred\[1\]=nan"),
    (lambda: metrics.adjusted_rand_index(["a", "b"], [0, 1]), TypeError,
     r"`labels_true` to be integer labels"),
    (lambda: metrics.log_loss([0, 1], [[0.5, 0.5], [np.nan, 0.5]]),
     ValueError, r"`probabilities` to be finite and >= 0\. "
     r"Received: probabilities\[1, 0\]=nan"),
    (lambda: metrics.log_loss([0, 1], [[0.5, 0.5], [0.3, 0.6]]), ValueError,
     r"each row of `probabilities` to sum to 1 \(within 0.0001\)\. "
     r"Received: row 1 sums to 0.8999"),
    (lambda: metrics.log_loss([0, 1], [[1.5, -0.5], [0.5, 0.5]]), ValueError,
     r"probabilities\[0, 1\]=-0.5"),
    (lambda: metrics.log_loss([0, 1], [0.5, 0.5]), ValueError,
     r"`probabilities` with 2 dims .* Received: probabilities.shape=\(2,\)"),
    (lambda: metrics.log_loss([0, 1, 1], [[0.5, 0.5]] * 2), ValueError,
     r"`probabilities` with one row per label of `labels_true` \(3\)"),
    (lambda: metrics.log_loss([0, 1, 2], [[1.0, 0.0]] * 3), ValueError,
     r"at least one column per distinct label of `labels_true` \(3\)"),
    (lambda: metrics.log_loss([0, 1]), TypeError,
     r"exactly one of `probabilities` and `log_probabilities`"),
    (lambda: metrics.log_loss([0], [[1.0]], log_probabilities=[[0.0]]),
     TypeError, r"exactly one of"),
    (lambda: metrics.log_loss([0, 1], log_probabilities=[[0.5, -1], [0, -9]]),
     ValueError, r"`log_probabilities` to be finite or -inf and <= 0\. "
     r"Received: log_probabilities\[0, 0\]=0.5"),
    (lambda: metrics.log_loss([0], log_probabilities=[[-1.0, -1.0]]),
     ValueError, r"each exp\(row\) of `log_probabilities` .* row 0 sums to"),
    (lambda: metrics.mixture_log_density([[0.0]], [0.5, 0.4], [[0.0], [1.0]],
                                         1.0), ValueError,
     r"`weights` >= 0 summing to 1 .* Received: weights=array\(\[0.5, 0.4\]"),
    (lambda: metrics.mixture_log_density([[0.0]], [1.0], [[0.0]], -1.0),
     ValueError, r"Expected `variances` > 0\. Received: variances="),
    (lambda: metrics.mixture_log_density([[0.0]], [0.5, 0.5], [[0.0]], 1.0),
     ValueError, r"`weights` with shape \(1,\).* weights.shape=\(2,\)"),
    (lambda: metrics.mixture_log_density([[0.0, 1.0]], [1.0], [[0.0]], 1.0),
     ValueError, r"`x` with 1 features .* x.shape=\(1, 2\)"),
    (lambda: metrics.heldout_log_likelihood(lambda x: x[:, 0], [[0.0]],
                                            reference=([1.0], [[0.0]])),
     ValueError, r"`reference` as \(weights, means, variances\)"),
    (lambda: metrics.heldout_log_likelihood(lambda x: x, [[0.0, 1.0]]),
     ValueError, r"`model` to give one log density per row of `x`, "
     r"shape \(1,\)\. Received shape \(1, 2\)"),
    (lambda: metrics.heldout_log_likelihood(object(), [[0.0]]), TypeError,
     r"`model` to be a model with `log_prob`"),
    (lambda: metrics.compare_fits({"weights": [1.0], "means": [[0.0]]},
                                  {"weights": [1.0], "means": [[0.0]],
                                   "precisions": [[1.0]]}), ValueError,
     r"`a` with `precisions` or `covariances`"),
    (lambda: metrics.compare_fits(
        {"weights": [1.0], "means": [[0.0]], "precisions": [[1.0]]},
        {"weights": [1.0], "means": [[0.0, 0.0]], "precisions": [[1.0, 1.0]]}),
     ValueError, r"`b` with the features of `a` \(1\)"),
    (lambda: metrics.compare_fits(
        {"weights": [1.0], "means": [[0.0, 0.0]],
         "precisions": [[1.0, 1.0]]},
        {"weights": [1.0], "means": [[0.0, 0.0]],
         "precisions": [np.eye(2)]}),
     ValueError, r"the same covariance structure"),
    (lambda: metrics.compare_fits(
        {"weights": [1.0], "means": [[0.0]], "precisions": [[np.nan]]},
        {"weights": [1.0], "means": [[0.0]], "precisions": [[1.0]]}),
     ValueError, r"Expected `a\['precisions'\]` to be finite"),
    (lambda: metrics.compare_fits([1.0], {}), TypeError,
     r"`a` to be a fitted BayesianGMM"),
])
def test_bad_input_raises_naming_the_argument(call, error, message):
  with pytest.raises(error, match=message):
    call()


def test_assignment_uncertainty_closed_forms():
  p = np.array([[1.0, 0.0, 0.0],
                [1 / 3, 1 / 3, 1 / 3],
                [0.5, 0.5, 0.0],
                [0.2, 0.3, 0.5],
                [0.4, 0.4, 0.2]])
  labels, max_p, entropy = metrics.assignment_uncertainty(p)
  np.testing.assert_array_equal(labels, [0, 0, 0, 2, 0])   # ties: the first
  assert labels.dtype == np.int64
  np.testing.assert_allclose(max_p, [1.0, 1 / 3, 0.5, 0.5, 0.4])
  h = lambda *q: -sum(v * np.log(v) for v in q)  # noqa: E731
  np.testing.assert_allclose(
      entropy, [0.0, np.log(3), np.log(2), h(0.2, 0.3, 0.5), h(0.4, 0.4, 0.2)],
      rtol=1e-12, atol=1e-15)


def test_assignment_uncertainty_binary_entropy_and_bounds():
  q = np.linspace(0.0, 1.0, 101)
  labels, max_p, entropy = metrics.assignment_uncertainty(
      np.stack([q, 1 - q], 1).astype(np.float32))
  with np.errstate(divide="ignore", invalid="ignore"):
    expected = -np.nan_to_num(q * np.log(q)) - np.nan_to_num(
        (1 - q) * np.log1p(-q))
  np.testing.assert_allclose(entropy, expected, atol=1e-6)
  np.testing.assert_allclose(max_p, np.maximum(q, 1 - q), atol=1e-7)
  np.testing.assert_array_equal(labels, np.where(q >= 0.5, 0, 1))  # tie: 0
  assert entropy.max() == pytest.approx(np.log(2)) and entropy.min() == 0.0
  empty = metrics.assignment_uncertainty(np.zeros((0, 3)))
  assert [a.shape for a in empty] == [(0,), (0,), (0,)]


def test_assignment_uncertainty_of_responsibilities(data, fits):
  model, x = fits[0], data[0]
  labels, max_p, entropy = metrics.assignment_uncertainty(
      model.responsibilities(x))                                  # a tensor
  np.testing.assert_array_equal(labels, model.assign(x).numpy())
  assert np.all((max_p >= 1 / 3 - 1e-6) & (max_p <= 1))
  assert np.all((entropy >= 0) & (entropy <= np.log(3) + 1e-9))


@pytest.mark.parametrize("probabilities, error, message", [
    (np.array([0.5, 0.5]), ValueError, r"probabilities.shape=\(2,\)"),
    (np.zeros((3, 0)), ValueError, "at least one column"),
    (np.array([["a", "b"]]), TypeError, "numeric array"),
    (np.array([[0.5, np.nan]]), ValueError, r"probabilities\[0, 1\]=nan"),
    (np.array([[1.5, -0.5]]), ValueError, r"probabilities\[0, 1\]=-0.5"),
    (np.array([[0.5, 0.4], [0.5, 0.5]]), ValueError, "row 0 sums to"),
])
def test_assignment_uncertainty_errors(probabilities, error, message):
  with pytest.raises(error, match=message):
    metrics.assignment_uncertainty(probabilities)
