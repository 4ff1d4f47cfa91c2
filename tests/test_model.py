"""BayesianGMM as a Keras model: training methods, inference, persistence."""

import keras
import numpy as np
import pytest
import scipy.special
import tensorflow as tf
from sklearn.metrics import adjusted_rand_score

import tfgmm
from tfgmm.families import diag
from tfgmm import api


def crash_at(epoch_to_crash):
  class Crash(keras.callbacks.Callback):

    def on_epoch_end(self, epoch, logs=None):
      if epoch == epoch_to_crash:
        raise RuntimeError("simulated crash")

  return Crash()


def test_fit_recovers_the_blog_clusters(blog):
  x, labels = blog
  model = tfgmm.fit(x, 3, seed=0)
  assert model.converged
  means = model.posterior_mean()
  np.testing.assert_allclose(np.sort(means["weights"]), [1 / 3] * 3, atol=0.02)
  truth = np.array([[2.0, 0.0], [-2.0, -4.0], [-2.0, 4.0]])
  found = means["means"][np.argsort(means["means"][:, 1])]
  np.testing.assert_allclose(found, truth[np.argsort(truth[:, 1])], atol=0.1)
  np.testing.assert_allclose(means["precisions"], 1.0, atol=0.15)
  assert adjusted_rand_score(labels, model.assign(x).numpy()) > 0.97
  # Canonical order: decreasing expected weight.
  assert np.all(np.diff(means["weights"]) <= 0)
  bound = np.negative(model.training_history["loss"])
  # float32 E-step: monotone up to rounding (exactly monotone in float64,
  # see test_math.test_cavi_bound_never_decreases).
  assert np.all(np.diff(bound) >= -1e-6)


def test_full_batch_natural_fit_is_cavi_and_matches_tfgmm_fit(blog):
  """model.fit with one batch of all the data, step 1 == tfgmm.fit's loop."""
  x, _ = blog
  models = []
  for _ in range(2):
    model = tfgmm.BayesianGMM(3, 2, seed=4, dtype="float64")
    model.initialize(x, sample_size=500)
    models.append(model)
  keras_model, loop_model = models
  keras_model.fit(tfgmm.make_dataset(x, len(x), shuffle=False), epochs=6,
                  verbose=0)
  api._fit_cavi(loop_model, x, max_epochs=6, tol=1e-300)  # pylint: disable=protected-access
  assert keras_model.n_epochs == loop_model.n_epochs == 6
  for a, b in zip(keras_model.posterior(), loop_model.posterior()):
    np.testing.assert_allclose(a, b, rtol=1e-9)
  np.testing.assert_allclose(keras_model.training_history["loss"],
                             loop_model.training_history["loss"], rtol=1e-9)


def test_standardized_outputs_are_in_data_units():
  """A density far from the prior's scale integrates to one in data units."""
  rng = np.random.default_rng(1)
  x = np.concatenate([rng.normal(1e4, 0.01, 400), rng.normal(1e4 + 0.1, 0.02, 600)])
  model = tfgmm.fit(x[:, None], 2, seed=0, dtype="float64")
  grid = np.linspace(1e4 - 0.2, 1e4 + 0.3, 20001)
  density = np.exp(model.log_prob(grid[:, None]).numpy())
  np.testing.assert_allclose(np.trapezoid(density, grid), 1.0, atol=1e-3)
  means = np.sort(model.posterior_mean()["means"][:, 0])
  np.testing.assert_allclose(means, [1e4, 1e4 + 0.1], atol=3e-3)
  draws = model.sample(20000, seed=3).numpy()
  np.testing.assert_allclose(draws.mean(), x.mean(), atol=3e-3)


def test_inference_outputs_are_consistent(blog):
  x, _ = blog
  model = tfgmm.fit(x, 3, seed=0)
  log_p = model.log_prob(x).numpy()
  np.testing.assert_allclose(model(x).numpy(), log_p, rtol=1e-6)
  resp = model.responsibilities(x).numpy()
  assert resp.shape == (3000, 3)
  np.testing.assert_allclose(resp.sum(1), 1.0, rtol=1e-5)
  np.testing.assert_array_equal(model.assign(x).numpy(), resp.argmax(1))
  # log p(x) = logsumexp_k log(E[pi_k] StudentT_k(x)), in data units.
  q = model.posterior()
  z = (x - model.feature_loc.numpy()) / model.feature_scale.numpy()
  joint = diag.FAMILY.predictive_joint_log_prob(tf.constant(z, tf.float32), q).numpy()
  np.testing.assert_allclose(
      scipy.special.logsumexp(joint, 1) - np.log(model.feature_scale.numpy()).sum(),
      log_p, rtol=1e-5)
  hot = model.assign(x, temperature=1.0, seed=1).numpy()
  assert np.mean(hot == resp.argmax(1)) > 0.95
  cold = model.assign(x, temperature=1e-3, seed=1).numpy()
  np.testing.assert_array_equal(cold, resp.argmax(1))
  assert model.sample(5, seed=2).shape == (5, 2)
  np.testing.assert_array_equal(model.sample(5, seed=2), model.sample(5, seed=2))
  elbo = float(model.elbo(x))
  assert elbo / len(x) == pytest.approx(-model.training_history["loss"][-1],
                                        abs=1e-3)


@pytest.mark.parametrize("method", ["natural", "gradient", "sampled"])
def test_each_method_trains_through_keras_fit(blog, method):
  x, _ = blog
  model = tfgmm.BayesianGMM(3, 2, method=method, seed=0)
  model.initialize(x, sample_size=300, max_iter=3)
  history = model.fit(tfgmm.make_dataset(x, 500, seed=0), epochs=8, verbose=0,
                      validation_data=tfgmm.make_dataset(x[:600], 300))
  for key in ("loss", "expected_log_likelihood", "kl", "val_loss"):
    values = np.asarray(history.history[key])
    assert values.shape == (8,) and np.all(np.isfinite(values)), key
  loss = np.asarray(history.history["loss"])
  np.testing.assert_allclose(loss, np.asarray(history.history["kl"])
                             - history.history["expected_log_likelihood"],
                             rtol=1e-5)
  assert loss[-1] < loss[0] + 1e-3
  assert loss[-1] < 4.0   # the optimum is about 3.98 nats per point
  evaluation = model.evaluate(x, batch_size=1000, verbose=0, return_dict=True)
  assert evaluation["loss"] == pytest.approx(loss[-1], abs=0.02)


def test_gradient_method_has_finite_gradients(blog):
  x, _ = blog
  model = tfgmm.BayesianGMM(3, 2, method="gradient", seed=0)
  model.initialize(x)
  z = model._to_model_units(x)  # pylint: disable=protected-access
  with tf.GradientTape() as tape:
    q = model.posterior()
    loss = (diag.kl_divergence(q, model.prior()) / len(x)
            - tf.reduce_mean(tf.reduce_logsumexp(diag.log_rho(z, q), -1)))
  grads = tape.gradient(loss, model.trainable_variables)
  assert len(grads) == 5
  for grad in grads:
    assert np.all(np.isfinite(grad.numpy()))
  with tf.GradientTape() as tape:
    x_in = tf.constant(x[:10], tf.float32)
    tape.watch(x_in)
    log_p = model(x_in)
  assert np.all(np.isfinite(tape.gradient(log_p, x_in).numpy()))


def test_sampled_method_with_blog_priors_converges_from_a_poor_start(blog):
  x, _ = blog
  model = tfgmm.BayesianGMM(3, 2, method="sampled", weight_concentration=2.0,
                            precision_concentration=5.0, precision_rate=5.0,
                            standardize=False, seed=0)
  model.initialize(x, sample_size=300, max_iter=2)
  q = model.posterior()
  model.assign_posterior(q._replace(mean_loc=q.mean_loc + 0.7))
  model.compile(optimizer=keras.optimizers.Adam(0.02))
  history = model.fit(tfgmm.make_dataset(x, 500, seed=0), epochs=25, verbose=0)
  loss = np.asarray(history.history["loss"])
  assert np.all(np.isfinite(loss))
  assert loss[0] > loss[-1] + 0.1
  # Near the analytic optimum of the same prior (the sampled bound is
  # tighter by Jensen, so it may sit slightly below).
  reference = tfgmm.fit(x, 3, seed=0, weight_concentration=2.0,
                        precision_concentration=5.0, precision_rate=5.0,
                        standardize=False)
  assert abs(loss[-3:].mean() - reference.training_history["loss"][-1]) < 0.05


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_keras_file_round_trip(tmp_path, blog, dtype):
  x, _ = blog
  model = tfgmm.BayesianGMM(3, 2, method="gradient", seed=0, dtype=dtype,
                            mean_loc=[0.5, -0.5])
  model.fit(tfgmm.make_dataset(x, 1000, seed=0), epochs=2, verbose=0)
  path = tmp_path / "gmm.keras"
  model.save(path)
  loaded = keras.saving.load_model(path)
  assert isinstance(loaded, tfgmm.BayesianGMM)
  assert loaded.get_config() == model.get_config()
  np.testing.assert_array_equal(loaded.log_prob(x[:50]), model.log_prob(x[:50]))
  assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) == 6
  for a, b in zip(loaded.optimizer.variables, model.optimizer.variables):
    np.testing.assert_array_equal(a, b)


def test_backup_and_restore_resumes_to_the_same_parameters(tmp_path, blog):
  x, _ = blog

  def run(callbacks):
    model = tfgmm.BayesianGMM(3, 2, method="gradient", seed=0)
    model.fit(tfgmm.make_dataset(x, 500, seed=3), epochs=5, verbose=0,
              callbacks=callbacks)
    return model

  uninterrupted = run([])
  backup = str(tmp_path / "backup")
  with pytest.raises(RuntimeError, match="simulated crash"):
    run([keras.callbacks.BackupAndRestore(backup), crash_at(2)])
  resumed = run([keras.callbacks.BackupAndRestore(backup)])
  for a, b in zip(uninterrupted.weights, resumed.weights):
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_symbolic_use_inside_a_larger_model_before_fitting(blog):
  x, _ = blog
  inputs = keras.Input((2,))
  features = keras.layers.Identity()(inputs)
  mixture = tfgmm.BayesianGMM(3, 2, seed=0)
  outer = keras.Model(inputs, mixture(features))
  assert tuple(outer.output.shape) == (None,)
  with pytest.raises(ValueError, match="never initialised"):
    mixture.log_prob(x)
  mixture.initialize(x)
  np.testing.assert_allclose(outer.predict(x[:20], verbose=0),
                             mixture.log_prob(x[:20]), rtol=1e-6)


def test_far_from_prior_data_are_found():
  rng = np.random.default_rng(7)
  centres = np.array([[2.0, 2.0], [5.0, 5.0], [8.0, 8.0]])
  labels = np.repeat(np.arange(3), 20)
  x = centres[labels] + rng.standard_normal((60, 2))
  model = tfgmm.fit(x, 3, seed=0)
  assert adjusted_rand_score(labels, model.assign(x).numpy()) >= 0.9


def test_sort_components_permutes_optimizer_slots(blog):
  x, _ = blog
  model = tfgmm.BayesianGMM(3, 2, method="gradient", seed=0)
  model.fit(tfgmm.make_dataset(x, 1000, seed=0), epochs=1, verbose=0)
  before = [v.numpy() for v in model.optimizer.variables]
  raw = model._raw_variables[0]  # pylint: disable=protected-access
  raw.assign(tf.gather(raw, [2, 0, 1]))
  order = model.sort_components()
  assert sorted(order.tolist()) == [0, 1, 2]
  for old, new in zip(before, model.optimizer.variables):
    if old.ndim and old.shape[0] == 3:
      np.testing.assert_array_equal(new.numpy(), old[order])


def test_split_moves_refill_a_component_emptied_by_a_bad_seed(monkeypatch):
  """Two seeds on one row leave a component empty and one covering two
  clusters: CAVI alone stays there; a split move recovers the clusters."""
  rng = np.random.default_rng(2)
  labels = np.repeat([0, 1, 2], 400)
  x = rng.normal(0, 1.0, (3, 20))[labels] + rng.normal(size=(1200, 20))
  monkeypatch.setattr(tfgmm.initialization, "kmeans_plusplus",
                      lambda z, k, rng, n_init, **_:
                      np.stack([z[[0, 0, 500]]] * n_init))
  scores = {}
  for births in (0, 1):
    model = tfgmm.BayesianGMM(3, 20, seed=0)
    bound = model.initialize(x, n_init=2, births=births)
    scores[births] = (bound, adjusted_rand_score(labels, model.assign(x)),
                      model.posterior_mean()["weights"].min())
  assert scores[0][1] < 0.7 and scores[0][2] < 0.01
  assert scores[1][1] > 0.99 and scores[1][2] > 0.3
  assert scores[1][0] > scores[0][0] + 0.5


def test_merge_moves_fold_a_duplicate_component(monkeypatch):
  """Seeds at both ends of one cluster leave two components sharing it,
  which CAVI drains only slowly: a merge move folds them and raises the
  bound."""
  rng = np.random.default_rng(3)
  labels = np.repeat([0, 1, 2], [1000, 300, 300])
  x = (np.array([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]])[labels]
       + rng.normal(size=(1600, 2)))
  ends = [int(np.argmin(x[:1000, 0])), int(np.argmax(x[:1000, 0]))]
  monkeypatch.setattr(tfgmm.initialization, "kmeans_plusplus",
                      lambda z, k, rng, n_init, **_:
                      np.stack([z[ends + [1100, 1400]]] * n_init))
  results = {}
  for merges in (0, 1):
    model = tfgmm.BayesianGMM(4, 2, seed=0, weight_prior="dirichlet_process",
                              weight_concentration=0.5)
    # The merge alone: split-and-merge and delete moves off.
    bound = model.initialize(x, n_init=1, births=0, merges=merges,
                             split_merges=0, deletes=0, max_iter=30)
    results[merges] = (bound, model.effective_components(0.01).size,
                       adjusted_rand_score(labels, model.assign(x)))
  assert results[0][1] == 4 and results[0][2] < 0.95
  assert results[1][1] == 3 and results[1][2] > 0.97
  assert results[1][0] > results[0][0] + 0.01


def test_repr_and_summary_describe_the_mixture():
  model = tfgmm.BayesianGMM(3, 2, covariance_type="full", seed=0)
  assert repr(model) == (
      "BayesianGMM(n_components=3, n_features=2, covariance_type='full', "
      "weight_prior='dirichlet', mean_prior='conjugate', method='natural', "
      "dtype='float32', fitted=False, converged=False, epochs=0)")
  lines = []
  model.summary(print_fn=lines.append)
  text = "\n".join(lines)
  assert lines[0] == repr(model)
  for field, shape in [("mean_loc", "(3, 2)"), ("scale_tril", "(3, 2, 2)"),
                       ("dof", "(3,)"), ("feature_scale", "(2,)")]:
    assert any(line.startswith(field) and shape in line for line in lines), (
        text)
  assert "dirichlet weights" in text and "wishart" in text
