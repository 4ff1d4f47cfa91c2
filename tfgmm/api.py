"""`tfgmm.fit`: one call from data to a fitted `BayesianGMM` (or MAP point
estimates with method="map")."""

import hashlib
import json

import keras
import numpy as np
import tensorflow as tf

from tfgmm import _validation
from tfgmm._engine import inference
from tfgmm._engine import loops
from tfgmm._engine import predict as predict_lib
from tfgmm._engine import weight_priors
from tfgmm import callbacks as callbacks_lib
from tfgmm import data as data_lib
from tfgmm import files as files_lib
from tfgmm import initialization
from tfgmm import map as map_lib
from tfgmm import model as model_lib

METHODS = model_lib.METHODS + ("map",)
_MAX_EPOCHS = {"natural": 300, "gradient": 1000, "sampled": 1000, "map": 300}
_N_INIT = {"natural": 5, "gradient": 5, "sampled": 5, "map": 100}
# Rows per minibatch when `batch_size` is None (the command line reports it).
MAX_BATCH = data_lib.MAX_BATCH


def fit(x, n_components, *, method="natural", n_init=None, batch_size=None,
        max_epochs=None, tol=1e-5, seed=None, callbacks=None, verbose=0,
        num_examples=None, sample_weight=None, init_labels=None,
        backup_dir=None, file_options=None, **model_kwargs):
  """Fits a `BayesianGMM` to data and returns it (method="map": a `MAPMixture`).

  Initialisation searches on a sample of up to 10,000 rows: `n_init`
  k-means++ restarts of CAVI race, then birth, merge and split-and-merge
  moves are kept where they raise the bound (see `BayesianGMM.initialize`
  and `tfgmm.initialization`); full covariances start from the diagonal
  model's search. With `init_labels`, the fit starts from those labels
  instead. Then:

  - method "natural", with no `batch_size`, no `callbacks` and no
    `num_examples`: CAVI on all the data (an array: in tfgmm's own compiled
    loop, one E-step over the data in chunks per epoch; a
    `tf.data.Dataset` or data files: statistics summed over streamed
    passes, the same iterations), until the bound per point changes by
    less than `tol`; then, on data larger than the search's sample, moves
    from the converged fit (`initialization.polish`; then births and, for
    spherical and tied covariances, split-and-merge moves the sample
    cannot judge; under the Dirichlet process also merges and deletes),
    each kept only if CAVI on all rows from it ends with a higher bound.
    The update functions are the ones `model.fit` runs.
  - otherwise: `model.fit` on minibatches (`make_dataset` for arrays; a
    `tf.data.Dataset` is used as given) with a `BoundConvergence(tol)`
    callback and the given Keras `callbacks`; then, on data larger than
    the search's sample, the same polish moves (and, under the Dirichlet
    process, merges and deletes), each followed by more `model.fit` epochs
    and kept only if the bound of all rows (one pass, `BayesianGMM.elbo`)
    ends higher (`_train_and_move`). No moves when the rows stand for more
    (`num_examples`), and none in resumable fits (`backup_dir`).

  With `backup_dir`, the fit is resumable: it trains through `model.fit`
  and backs the training state up in `backup_dir` after every epoch
  (`tfgmm.callbacks.AtomicBackupAndRestore`, written atomically). If the
  process dies, even by SIGKILL, calling `fit` again with the same arguments
  and data resumes from the last completed epoch (through Keras'
  `initial_epoch`) and returns the same model, bit for bit, as a fit never
  interrupted: the initialised model is backed up before training, each
  epoch's batch order derives from (seed, epoch), and the convergence test
  replays the restored epochs (`tfgmm.callbacks.ResumableBoundConvergence`).
  With `seed=None`, the first call's seed is kept in the backup. A backup
  of a fit with other arguments, data or seed raises
  `tfgmm.callbacks.BackupMismatchError`; a finished fit deletes
  `backup_dir`.

  Args:
    x: array [N, D], `tf.data.Dataset` of [B, D] batches, or data files: a
      path, glob pattern or list of them (CSV, TFRecord, .npy or Parquet shards,
      streamed; see `tfgmm.files`).
    n_components: K.
    method: "natural", "gradient" or "sampled".
    n_init: k-means++ restarts, int >= 1.
    batch_size: rows per minibatch; None picks min(N, 65536) when minibatches
      are used.
    max_epochs: at most this many passes over the data; None picks 300
      (natural, map) or 1000 (gradient, sampled).
    tol: convergence tolerance on the bound (map: the log posterior), nats
      per data point.
    seed: int seed of initialisation, shuffling and sampling.
    callbacks: Keras callbacks; when given, training goes through `model.fit`.
    verbose: Keras verbosity (0 silent, 1 progress bar, 2 one line per
      epoch); with method "map", > 0 prints one summary line.
    num_examples: N, when the rows of `x` stand for more (e.g. `x` is
      the first batches of a larger stream): training then takes minibatch
      steps (`model.fit`) with the bound scaled to N.
    sample_weight: non-negative weight per row of an array `x`, [N] (a
      dataset carries its own as (x, None, w) elements). Weights enter the
      standardisation, the statistics and the bound: an integer weight
      counts a row that many times, a zero drops it.
    init_labels: None, or a hard label per row of an array `x`, ints in
      [0, K), [N]: the fit starts from the posterior of those labels, with
      no search (e.g. from another clustering, or the true labels of
      simulated data).
    backup_dir: None, or a directory (str or path-like) for resumable fits
      of an array `x` (see above): new, empty, or holding this fit's backups.
      With verbose > 0, one line says whether the fit starts or resumes.
    file_options: with files as `x`, a dict for `tfgmm.files.file_dataset`
      (`columns`, `header`, `delimiter`, `feature`, `shuffle_buffer`).
    **model_kwargs: passed to `BayesianGMM` (priors, `covariance_type`,
      `mean_prior`, `weight_prior`, `dtype`, `standardize`); with method
      "map", to `tfgmm.map.fit` (the same priors and settings, and
      `sample_size`).

  Returns:
    The fitted `BayesianGMM`, components in decreasing-weight order, with
    `converged`, `n_epochs` and `training_history` set; with method "map",
    a `tfgmm.map.MAPMixture` (weights, means and precisions in data units,
    decreasing weight).

  Raises:
    tfgmm.callbacks.BackupMismatchError: `backup_dir` holds the backup of a
      different fit.
  """
  n_components = _validation.check_positive_int("n_components", n_components)
  _validation.check_choice("method", method, METHODS)
  _validation.check_positive("tol", tol, ())
  _check_callbacks(callbacks)
  if isinstance(verbose, bool) or verbose not in ("auto", 0, 1, 2):
    raise ValueError("Expected `verbose` to be 0, 1, 2 or 'auto'. "
                     f"Received: verbose={verbose!r}.")
  if max_epochs is None:
    max_epochs = _MAX_EPOCHS[method]
  max_epochs = _validation.check_positive_int("max_epochs", max_epochs)
  if n_init is None:
    n_init = _N_INIT[method]
  if method == "map":
    return _fit_map(x, n_components, n_init=n_init, batch_size=batch_size,
                    max_epochs=max_epochs, tol=tol, seed=seed,
                    callbacks=callbacks, verbose=verbose,
                    num_examples=num_examples, sample_weight=sample_weight,
                    init_labels=init_labels, backup_dir=backup_dir,
                    **model_kwargs)
  if batch_size is not None:
    batch_size = _validation.check_positive_int("batch_size", batch_size)
  if files_lib.is_file_input(x):
    for name, value in (("sample_weight", sample_weight),
                        ("init_labels", init_labels),
                        ("backup_dir", backup_dir)):
      if value is not None:
        raise ValueError(f"`{name}` is not supported with files as `x` "
                         f"(an array's option). Received: {name}={value!r}.")
    return _fit_files(x, n_components, method=method, n_init=n_init,
                      batch_size=batch_size, max_epochs=max_epochs, tol=tol,
                      seed=seed, callbacks=callbacks, verbose=verbose,
                      num_examples=num_examples,
                      file_options=file_options or {},
                      model_kwargs=model_kwargs)
  if file_options is not None:
    raise ValueError("`file_options` applies to files as `x`. Received: "
                     f"file_options={file_options!r}.")
  if isinstance(x, tf.data.Dataset):
    spec = data_lib.unpack_batch(x.element_spec)
    if spec.shape.rank != 2 or spec.shape[-1] is None:
      raise ValueError("Expected `x` to yield [B, D] batches with known D. "
                       f"Received a dataset of {spec.shape}.")
    n_features = int(spec.shape[-1])
  else:
    # NaN rows are checked against the model's setting in `initialize`.
    x = _validation.check_data(
        x, dtype=None,
        allow_nan=model_kwargs.get("missing", "error") == "marginalize")
    n_features = x.shape[1]
    sample_weight = _validation.check_sample_weight(sample_weight, x.shape[0])
  if backup_dir is not None:
    if isinstance(x, tf.data.Dataset):
      raise ValueError(
          "`backup_dir` resumes fits of an array `x` (its batch order is "
          "rebuilt from the seed and epoch, and its contents checked "
          "against the backup); received a tf.data.Dataset. Pass the array. "
          f"Received: backup_dir={backup_dir!r}.")
    return _fit_backed_up(
        x, n_components, method=method, n_init=n_init, batch_size=batch_size,
        max_epochs=max_epochs, tol=tol, seed=seed, callbacks=callbacks,
        verbose=verbose, num_examples=num_examples,
        sample_weight=sample_weight, init_labels=init_labels,
        backup_dir=backup_dir, model_kwargs=model_kwargs)
  model = model_lib.BayesianGMM(n_components, n_features, method=method,
                                seed=seed, **model_kwargs)
  model.initialize(x, n_init=n_init, num_examples=num_examples,
                   sample_weight=sample_weight, labels=init_labels)
  if not _exact(method, callbacks, batch_size, num_examples):
    data = (x if isinstance(x, tf.data.Dataset)
            else _minibatches(model, x, batch_size, sample_weight))
    model.compile()
    # The moves judge the bound of all the rows (a pass over the training
    # batches, float64 until standardised): not when they stand for more
    # (`num_examples`).
    bound = (None if num_examples is not None
             else lambda: float(model.elbo(data)))
    _train_and_move(model, data, bound, max_epochs, tol, verbose, callbacks)
  elif isinstance(x, tf.data.Dataset):
    _cavi_streamed(model, x, max_epochs, tol, verbose)
  else:
    _fit_cavi(model, x, max_epochs, tol, sample_weight)
  return model


def _exact(method, callbacks, batch_size, num_examples):
  """Whether `fit` runs exact CAVI on all rows (then the moves on all rows)
  rather than `model.fit` on minibatches: method "natural" with no
  `callbacks`, no `batch_size`, and the rows given being all of them
  (`num_examples` None)."""
  return (method == "natural" and not callbacks and batch_size is None
          and num_examples is None)


def _fit_files(x, n_components, *, method, n_init, batch_size, max_epochs,
               tol, seed, callbacks, verbose, num_examples, file_options,
               model_kwargs):
  """`fit` of data files, streamed (see `tfgmm.files`).

  One pass summarises the files (standardisation, row count, a reservoir
  sample for the search); then method "natural" without `batch_size` or
  `callbacks` runs exact CAVI with statistics summed over the streamed
  batches (`_cavi_streamed`: the in-memory fit's answer), and anything else
  trains with `model.fit` on interleaved, shuffle-buffered minibatches
  (then the moves of `_train_and_move`, judged by a pass over the files).
  """
  exact = _exact(method, callbacks, batch_size, num_examples)
  size = batch_size or MAX_BATCH
  stream, names = files_lib.file_dataset(x, size, **file_options)
  model = model_lib.BayesianGMM(n_components, len(names), method=method,
                                seed=seed, **model_kwargs)
  try:
    counter = files_lib.RowCounter("reading the files") if verbose else None
    model.initialize(stream, n_init=n_init, num_examples=num_examples,
                     progress=counter)
    if counter is not None:
      counter.close()
    if exact:
      _cavi_streamed(model, stream, max_epochs, tol, verbose)
    else:
      shuffled, _ = files_lib.file_dataset(x, size, shuffle=True,
                                           seed=model.seed, **file_options)
      # The summary pass counted the rows: Keras then knows each epoch's
      # steps (an unknown count makes it warn that the data ran out).
      rows = int(model.num_examples.numpy())
      shuffled = shuffled.apply(tf.data.experimental.assert_cardinality(
          -(-rows // size)))
      model.compile()
      bound = (None if num_examples is not None
               else lambda: float(model.elbo(stream)))
      _train_and_move(model, shuffled, bound, max_epochs, tol, verbose,
                      callbacks)
  except tf.errors.InvalidArgumentError as error:
    message = str(error).strip().splitlines()[0]
    raise ValueError(f"Cannot read `x`={x!r} as numbers: {message}") from None
  return model


def _train_and_move(model, data, bound, max_epochs, tol, verbose, callbacks):
  """`model.fit` on minibatches to convergence, then moves judged on all rows.

  The minibatch counterpart of `_converge_and_move`: where the
  initialisation searched a sample of fewer rows than the data hold and
  training converged (not stopped by a user callback), the trained fit
  gets a round of the search's moves on that sample
  (`initialization.polish`); training goes on from the moved posterior
  (`model.fit` from the next epoch, with the convergence test alone: the
  user's callbacks see the first run only, so that loggers and
  checkpoints never hold a rejected round) and is kept only if the bound
  of all rows then ends higher (by more than `tol` per unit of weight);
  rounds go on while one is kept (at most the search's birth budget,
  within `max_epochs` epochs in all). When all rows reject polish's move
  (or it has none), the finite Dirichlet prior's births are judged on all
  rows (`initialization.birth_candidates`), then the spherical and tied
  families' split-and-merge moves (`initialization.split_merge_candidates`,
  `ALL_ROW_RACE_ITER` epochs each to pass the fit's bound), and under the
  Dirichlet process merges and deletes then run on all rows
  (`initialization.prune_candidates`), as in `_converge_and_move`: each
  candidate trains at most `initialization.PROPOSAL_MAX_ITER` epochs from
  the same state, the one whose bound of all rows ends highest, if above
  the fit's, trains on to convergence and is kept (`_train_best`), and
  rounds go on while one is (at most the search's birth and merge
  budgets). A rejected round is undone: the model's
  variables, the optimizer's, `n_epochs`, `converged`, `training_history`
  and `history` are those before it. Kept rounds' epochs are in
  `training_history`.

  Args:
    model: the initialised, compiled `BayesianGMM`.
    data: the minibatch `tf.data.Dataset` to train on.
    bound: None (no moves: the rows stand for more, `num_examples`), or a
      callable giving the bound of all rows (one pass, `model.elbo`).
    max_epochs, tol, verbose, callbacks: as in `fit`.
  """
  def train(extra, cap=max_epochs):
    """`model.fit` from the epoch reached to convergence, `max_epochs` or
    `cap` more epochs."""
    model.fit(data, epochs=min(max_epochs, model.n_epochs + cap),
              initial_epoch=model.n_epochs, verbose=verbose,
              callbacks=[callbacks_lib.BoundConvergence(tol)] + extra)

  train(list(callbacks or []))
  search = model.initialization_search
  if (bound is None or search is None or not model.converged
      or search.sample.shape[0] >= search.total):
    return
  best = bound()
  threshold = tol * float(model.total_weight.numpy())
  model_args = (model.family, model.prior(), model.weight_prior,
                model.n_components, search)
  # The rounds of `_converge_and_move`, each judged by `_train_best`.
  for _ in range(search.moves["births"]):
    if model.n_epochs >= max_epochs:
      break
    moved = initialization.polish(*model_args, model.posterior())
    new = (None if moved is None else
           _train_best(model, [moved], train, bound, best, threshold,
                       max_epochs, cap=max_epochs))
    for candidates, cap in _all_row_candidates:
      if new is None:
        new = _train_best(model, candidates(*model_args, model.posterior()),
                          train, bound, best, threshold, max_epochs, cap)
    if new is None:
      break
    best = new
  for _ in range(_prune_rounds(model, search)):
    if model.n_epochs >= max_epochs:
      break
    new = _train_best(
        model, initialization.prune_candidates(*model_args,
                                               model.posterior()),
        train, bound, best, threshold, max_epochs)
    if new is None:
      break
    best = new


# The moves judged on all rows when all rows reject polish's (or it has
# none), in order, each tried only if those before kept nothing, with the
# iterations (epochs) each start has to pass the fit's bound: births the
# sample cannot pay for (a move's budget), then split-and-merge moves it
# ranks below the fit (proposed on every fit, so a short race).
_all_row_candidates = (
    (initialization.birth_candidates, initialization.PROPOSAL_MAX_ITER),
    (initialization.split_merge_candidates, initialization.ALL_ROW_RACE_ITER))


def _train_best(model, starts, train, bound, best, threshold, max_epochs,
                cap=initialization.PROPOSAL_MAX_ITER):
  """`_best_start` for minibatch training: the best start kept, or none.

  From the model's state now, each start (a posterior) trains at most `cap`
  epochs (`train(callbacks, cap)`); the one whose bound of all rows
  (`bound()`) ends highest, if above `best + threshold`, is kept and trains
  on to convergence. Otherwise the model's training state is put back as
  it was (`_training_state`).

  Returns:
    The kept start's bound of all rows, or None when none was kept.
  """
  before = _training_state(model)
  kept, tried = None, 0
  for start in starts:
    if tried:
      before()
    model.assign_posterior(start)
    train([], cap=cap)
    tried += 1
    new = bound()
    if new > best + threshold:
      best, kept = new, _training_state(model)
  if kept is None:
    if tried:
      before()
    return None
  kept()
  if not model.converged and model.n_epochs < max_epochs:
    train([])
    best = bound()
  return best


def _prune_rounds(model, search):
  """Rounds of merges and deletes judged on all rows
  (`initialization.prune_candidates`): the search's merge budget under the
  Dirichlet process, which alone chooses how many components to keep;
  none under the finite Dirichlet."""
  if model.weight_prior != "dirichlet_process":
    return 0
  return search.moves["merges"]


def _training_state(model):
  """A function that puts the model's training state back as it is now:
  its variables and its optimizer's, `n_epochs`, `converged`, the
  contents of each `training_history` list and `history` (Keras' `History`
  of the last `fit` kept). A state taken after a run and put back after
  another (`_train_best`'s kept start) has that run's epochs, not the
  other's."""
  variables = list(model.variables) + list(
      getattr(model.optimizer, "variables", None) or [])
  values = [v.numpy() for v in variables]
  epochs, converged = model.n_epochs, model.converged
  history = getattr(model, "history", None)
  lists = {key: list(v) for key, v in model.training_history.items()}

  def undo():
    for variable, value in zip(variables, values):
      variable.assign(value)
    model.n_epochs, model.converged = epochs, converged
    model.history = history
    for key, kept in lists.items():
      model.training_history[key][:] = kept
  return undo


def _cavi_streamed(model, stream, max_epochs, tol, verbose=0):
  """Full-data CAVI over a dataset of [B, D] batches in data units (or
  (x, y, w) elements with sample weights).

  `inference.cavi` with the E-step's statistics and log-likelihood summed
  over the batches (float64) before each global step: the same iterations
  as on the rows in memory, with memory bounded by a batch, and the same
  moves on all rows after it (`_converge_and_move`). Records history like
  `_fit_cavi`; with `verbose`, each pass counts its rows on stderr
  (`tfgmm.files.RowCounter`) and ends with its bound (per unit of weight).
  """
  family, prior, weight_prior = model.family, model.prior(), model.weight_prior
  loc, scale = model.feature_loc, model.feature_scale
  as64 = lambda p: family.cast_posterior(p, tf.float64)  # noqa: E731
  # (rows, their total weight, the weighted sum of row log-dets) per pass
  passes = []

  def run(q, epochs):
    """CAVI passes from q: (q, [T, 2] numpy history, converged)."""
    history, previous, converged = [], -np.inf, False
    model.assign_posterior(q)
    for _ in range(epochs):
      counter = (files_lib.RowCounter(f"CAVI pass {len(passes) + 1}")
                 if verbose else None)
      q = model.posterior()
      log_weights = weight_priors.expected_log_weights(
          tf.cast(q.weight_concentration, tf.float64),
          tf.cast(prior.weight_concentration, tf.float64), weight_prior)
      stats, total, rows, weight, log_det = None, 0.0, 0, 0.0, 0.0
      for batch in stream:
        w = data_lib.unpack_sample_weight(batch)                  # [B] or None
        z = predict_lib.standardize(data_lib.unpack_batch(batch), loc, scale,
                                    model.compute_dtype)          # [B, D]
        batch_stats, batch_total = loops.statistics(
            family, z, q, model.estep_chunk_rows, log_weights, w)
        stats = (batch_stats if stats is None
                 else family.add_statistics(stats, batch_stats))
        total += float(batch_total)
        rows += int(z.shape[0])
        w = tf.ones([z.shape[0]], tf.float64) if w is None else tf.cast(
            w, tf.float64)
        weight += float(tf.reduce_sum(w))
        log_det += float(tf.reduce_sum(w * tf.cast(
            predict_lib.row_log_det(z, scale), tf.float64)))
        if counter is not None:
          counter(z.shape[0])
      passes.append((rows, weight, log_det))
      kl = float(loops.kl_divergence(family, as64(q), as64(prior),
                                     weight_prior)) / weight
      bound = total / weight - kl
      if counter is not None:
        counter.close(f", bound {bound + log_det / weight:.6f} nats per row")
      history.append((total / weight, kl))
      model.assign_posterior(family.natural_update(q, stats, prior, 1.0, 1.0,
                                                   weight_prior))
      if abs(bound - previous) < tol:
        converged = True
        break
      previous = bound
    return model.posterior(), np.array(history).reshape(-1, 2), converged

  q, history, converged = _converge_and_move(
      model, run, lambda: passes[0][0], max_epochs, tol)
  _, weight, log_det = passes[0]
  model.assign_posterior(q)
  _record_cavi(model, history, log_det / weight, converged)


def _batch_size(x, batch_size):
  """Rows per minibatch of an array: a `batch_size` of None picks
  min(N, MAX_BATCH)."""
  return batch_size or min(x.shape[0], MAX_BATCH)


def _minibatches(model, x, batch_size, sample_weight):
  """`make_dataset` of an array, with the model's seed and missing values."""
  return data_lib.make_dataset(x, _batch_size(x, batch_size), seed=model.seed,
                               sample_weight=sample_weight,
                               missing=model.missing)


def _fit_backed_up(x, n_components, *, method, n_init, batch_size,
                   max_epochs, tol, seed, callbacks, verbose, num_examples,
                   sample_weight, init_labels, backup_dir, model_kwargs):
  """`fit`'s minibatch path with per-epoch backups in `backup_dir`.

  The steps of the minibatch path (model, `initialize`, `make_dataset` with
  the model's seed, `compile`, `model.fit` with the convergence test), so a
  fit never interrupted ends where `fit(callbacks=[...])`'s training does,
  before its polish rounds (`_train_and_move`), which a backed-up fit does
  not run: a round rejected after a crash could not be undone. A restart
  loads the latest backup instead of initialising, and resumes at its
  epoch.
  """
  seed = _validation.check_seed("seed", seed)
  run = _run_identity(
      x, n_components=n_components, method=method, n_init=n_init,
      batch_size=batch_size, max_epochs=max_epochs, tol=tol,
      num_examples=num_examples, sample_weight=sample_weight,
      init_labels=init_labels, model_kwargs=model_kwargs)
  backup = callbacks_lib.AtomicBackupAndRestore(backup_dir, run=run,
                                                seed=seed)
  model = model_lib.BayesianGMM(n_components, x.shape[1], method=method,
                                seed=backup.seed, **model_kwargs)
  # Compiled first, so the optimizer's slots are in every backup.
  model.compile()
  initial_epoch = backup.restore(model)
  if initial_epoch is None:
    model.initialize(x, n_init=n_init, num_examples=num_examples,
                     sample_weight=sample_weight, labels=init_labels)
    backup.backup(model)
    initial_epoch = 0
    if verbose:
      print(f"Backing up the training state in {backup.backup_dir} after "
            "every epoch; if interrupted, the same fit resumes from the last "
            "backup.", flush=True)
  elif verbose:
    print(f"Resuming from the backup in {backup.backup_dir}: "
          f"{initial_epoch} of {max_epochs} epochs done (seed {model.seed}).",
          flush=True)
  # The window Keras' step count would give, known before `fit` runs.
  convergence = callbacks_lib.ResumableBoundConvergence(
      tol, window=callbacks_lib.window_for_steps(
          -(-x.shape[0] // _batch_size(x, batch_size))))
  if convergence.replay(model.training_history[convergence.monitor]):
    # Stopped after its last backup, before it finished: no epoch to run.
    initial_epoch = max_epochs
  dataset = _minibatches(model, x, batch_size, sample_weight)
  # The backup comes first: it commits an epoch before a callback stops.
  model.fit(dataset, epochs=max_epochs, initial_epoch=initial_epoch,
            verbose=verbose,
            callbacks=[backup, convergence] + list(callbacks or []))
  return model


def _run_identity(x, *, model_kwargs, **arguments):
  """What a backup must match: the arguments and digests of the arrays."""
  run = {}
  for name, value in dict(arguments, x=x, **model_kwargs).items():
    if name in ("x", "sample_weight", "init_labels") and value is not None:
      array = np.ascontiguousarray(
          value, np.int64 if name == "init_labels" else np.float64)
      value = {"shape": list(array.shape),
               "sha256": hashlib.sha256(array.tobytes()).hexdigest()}
    run[name] = _jsonable(value)
  return run


def _jsonable(value):
  """`value` as JSON data: arrays as lists, anything else unknown as repr."""
  if isinstance(value, (np.ndarray, np.generic, tf.Tensor)):
    value = np.asarray(value).tolist()
  try:
    return json.loads(json.dumps(value))
  except (TypeError, ValueError):
    return repr(value)


def _fit_cavi(model, x, max_epochs, tol, sample_weight=None):
  """Full-data CAVI in one compiled loop, then the moves on all rows
  (`_converge_and_move`); records history like `model.fit`."""
  z = data_lib.standardized_tensor(x, model.feature_loc.numpy(),
                                   model.feature_scale.numpy(),
                                   model.compute_dtype)
  def run(q, epochs):
    """CAVI from q: (q, [T, 2] numpy history, converged)."""
    q, history, converged = loops.run_cavi(
        z, q, model.prior(), epochs, tol, model.estep_chunk_rows,
        model.weight_prior, sample_weight, model.family)
    return q, history.numpy(), bool(converged)

  q, history, converged = _converge_and_move(
      model, run, lambda: int(z.shape[0]), max_epochs, tol)
  model.assign_posterior(q)
  _record_cavi(model, history, predict_lib.mean_row_log_det(
      z, model.feature_scale, sample_weight), converged)


def _converge_and_move(model, run, n_rows, max_epochs, tol):
  """CAVI on all rows from the model's posterior, then moves on all rows.

  Where the initialisation searched a sample of fewer rows than the data
  hold, the converged fit gets one more round of the search's moves on that
  sample (`initialization.polish`); CAVI on all rows from the moved
  posterior is kept only if it ends with a higher bound (by more than
  `tol`), and rounds of polish go on while one is kept. When all rows
  reject what the sample accepted (or the sample accepts nothing), the
  finite Dirichlet prior's births the sample cannot pay for are judged on
  all rows (`initialization.birth_candidates`, capped like any move), and
  if none is kept, for spherical and tied covariances, the split-and-merge
  moves the sample ranks lower by less than its noise
  (`initialization.split_merge_candidates`, `ALL_ROW_RACE_ITER`
  iterations to pass the fit's bound). Under the Dirichlet process, merges
  and deletes then run on all rows
  (`initialization.prune_candidates`): each round keeps the best if its
  bound is higher, until none is (at most the search's merge budget).
  The rows in memory (`_fit_cavi`) and streamed ones (`_cavi_streamed`)
  share it, so both give the same answer.

  Args:
    model: the initialised `BayesianGMM`.
    run: `run(q, epochs)` -> (q, [T, 2] history, converged), CAVI on all
      rows from q for at most `epochs` iterations.
    n_rows: callable giving the number of rows (known after the first run).
    max_epochs, tol: CAVI settings of the whole fit.

  Returns:
    (q, [T, 2] history of every accepted run, converged).
  """
  q, history, converged = run(model.posterior(), max_epochs)
  search = model.initialization_search
  if (search is not None and search.sample.shape[0] < n_rows()
      and history.shape[0] < max_epochs):
    model_args = (model.family, model.prior(), model.weight_prior,
                  model.n_components, search)
    # Rounds of polish while all rows accept one (each at most one birth
    # and one merge; at most the search's birth budget): a fit can miss
    # two components the sample does not pay for. (Uncapped: one start,
    # run to convergence.)
    for _ in range(search.moves["births"]):
      moved = initialization.polish(*model_args, q)
      best = (None if moved is None else
              _best_start(run, [moved], history, max_epochs, tol,
                          cap=max_epochs))
      # Nothing the sample accepted raised the bound of all rows; a birth
      # or a split-and-merge the sample cannot pay for still may (capped,
      # like any move).
      for candidates, cap in _all_row_candidates:
        if best is None:
          best = _best_start(run, candidates(*model_args, q), history,
                             max_epochs, tol, cap)
      if best is None:
        break
      q, more, converged = best
      history = np.concatenate([history, more], 0)
    for _ in range(_prune_rounds(model, search)):
      best = _best_start(
          run, initialization.prune_candidates(*model_args, q), history,
          max_epochs, tol)
      if best is None:
        break
      q, more, converged = best
      history = np.concatenate([history, more], 0)
  return q, history, converged


def _best_start(run, starts, history, max_epochs, tol,
                cap=initialization.PROPOSAL_MAX_ITER):
  """CAVI on all rows from each start; the best that beats `history`'s end.

  Each start runs at most `cap` epochs (a move's budget, as in the search);
  the best, if it ends above the last bound of `history` by more than
  `tol`, runs on to convergence.

  Args:
    run: `run(q, epochs)` -> (q, [T, 2] history, converged), CAVI on all rows.
    starts: posteriors to start from.
    history: [T, 2] history of the fit so far; its last bound is the one to
      beat, its length counts against `max_epochs`.

  Returns:
    (q, [T', 2] history, converged) of the best run, or None when none
    ends higher.
  """
  left = max_epochs - history.shape[0]
  best, bound = None, history[-1, 0] - history[-1, 1]
  for start in starts if left > 0 else ():
    result = run(start, min(cap, left))
    end = result[1][-1, 0] - result[1][-1, 1]
    if end > bound + tol:
      best, bound = result, end
  if best is None or best[2] or best[1].shape[0] >= left:
    return best
  q, more, _ = best
  q, rest, converged = run(q, left - more.shape[0])
  return q, np.concatenate([more, rest], 0), converged


def _record_cavi(model, history, log_det, converged):
  """A finished CAVI run on the model: its [T, 2] history (as the metrics
  `model.fit` logs), epochs and convergence; components in canonical order."""
  for key, values in inference.history_dict(history, log_det).items():
    model.training_history[key].extend(values)
  model.n_epochs += history.shape[0]
  model.converged = converged
  model.sort_components()


def _fit_map(x, n_components, *, n_init, batch_size, max_epochs, tol, seed,
             callbacks, verbose, num_examples, sample_weight, init_labels,
             backup_dir, **options):
  """method="map": checks what MAP-EM does not take, then `map_lib.fit`."""
  for name, value in (("batch_size", batch_size), ("callbacks", callbacks),
                      ("num_examples", num_examples),
                      ("init_labels", init_labels),
                      ("backup_dir", backup_dir)):
    if value is not None and not (name == "callbacks" and not value):
      raise ValueError(
          f"`{name}` applies to the variational methods; method='map' runs "
          "EM on all rows of an array (in chunks). Received: "
          f"{name}={value!r}.")
  unknown = sorted(set(options) - set(map_lib.OPTIONS))
  if unknown:
    raise ValueError(
        f"method='map' does not take `{unknown[0]}`: it supports "
        f"{', '.join(map_lib.OPTIONS)}. Received: "
        f"{unknown[0]}={options[unknown[0]]!r}.")
  result = map_lib.fit(x, n_components, n_init=n_init, max_iter=max_epochs,
                       tol=tol, seed=seed, sample_weight=sample_weight,
                       **options)
  if verbose:
    print(f"MAP: log posterior {result.log_posterior:.6g} (restart "
          f"{result.best_restart} of {n_init}), {result.n_iter} EM "
          f"iterations, converged={result.converged}, "
          f"{int(result.active.sum())} of {n_components} components.")
  return result


def _check_callbacks(callbacks):
  """None, or a list or tuple of Keras callbacks."""
  if callbacks is None:
    return
  if not isinstance(callbacks, (list, tuple)) or not all(
      isinstance(c, keras.callbacks.Callback) for c in callbacks):
    raise TypeError("Expected `callbacks` to be a list of "
                    "keras.callbacks.Callback. Received: "
                    f"callbacks={callbacks!r}.")
