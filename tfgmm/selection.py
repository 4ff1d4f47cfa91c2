"""Choosing the number of components: `select_components`.

Each candidate K is fitted as `tfgmm.fit` fits (same restarts and search)
and scored by one criterion; the best K's model is returned with the whole
table.

#### Mathematical Details

```none
"elbo"     L(q_K) + log(K_eff!)        (higher is better)
"heldout"  (1 / M) sum_m log p(x_m | train)  on a held-out split (higher)
"bic"      -2 log p(x | theta_MAP) + P log N  (lower is better)
```

L(q_K) is the evidence lower bound of all the data (data units, all
constants). Under a symmetric Dirichlet prior the posterior is invariant
under the K! relabellings of the components, and a mean-field q sits in one
of those modes: the evidence is about K_eff! times the single-mode bound,
with K_eff the components that hold data (soft count >= 1), since
relabelling components without data changes nothing. The Dirichlet-process
prior orders its sticks, so it gets no such term. "bic" scores the MAP fit
(`method="map"`, diagonal covariances) with P = (K - 1) + 2 K D free
parameters, K counting the components MAP kept.

Data files (a path, glob pattern or list, as `tfgmm.fit` takes them) are
streamed, never loaded whole: each K is a streamed fit, and its bound one
more streamed pass (`model.elbo` of the files' dataset). They take the
"elbo" criterion only: "heldout" needs a split of the rows, "bic" a MAP
fit of an array.
"""

import dataclasses
import math
import time
import warnings
from typing import Any, Dict, List

import numpy as np

from tfgmm import _validation
from tfgmm import api
from tfgmm import files as files_lib
from tfgmm import map as map_lib
from tfgmm._engine import weight_priors

CRITERIA = ("elbo", "heldout", "bic")


@dataclasses.dataclass
class Selection:
  """The outcome of `select_components`.

  Attributes:
    n_components: the chosen K.
    model: its fitted model (a `BayesianGMM`; a `MAPMixture` for "bic"),
      fitted on all the data.
    criterion: the criterion used.
    table: dict of lists, one entry per candidate in the given order:
      `n_components`, `score` (the criterion's value), `effective_components`
      (components with a soft count >= 1) and `seconds` (fit time).
  """
  n_components: int
  model: Any
  criterion: str
  table: Dict[str, List[Any]]


def _occupied(model, n_rows):
  """Components holding at least one row's worth of data (soft count)."""
  if hasattr(model, "posterior"):         # soft counts N_k (weighted)
    counts = (model.posterior().weight_concentration.numpy()
              - weight_priors.weight_offset(
                  float(model.prior().weight_concentration),
                  model.weight_prior))
  else:                                    # MAPMixture: pi_k N
    counts = model.weights * n_rows
  return int(np.sum(counts >= 1.0 - 1e-9))


def _score(criterion, model, x, validation, weight_prior):
  """The criterion's value for a model fitted on the training rows (x: an
  array, or for "elbo" a dataset of them)."""
  if criterion == "elbo":
    bound = float(model.elbo(x))
    if weight_prior == "dirichlet":
      bound += math.lgamma(_occupied(model, None) + 1)
    return bound
  if criterion == "heldout":
    return float(np.mean(model.log_prob(validation).numpy()))
  n, d = x.shape
  k = int(np.sum(model.active))            # MAP can empty components
  log_likelihood = float(np.sum(model.log_prob(x).numpy()))
  return -2.0 * log_likelihood + ((k - 1) + 2 * k * d) * math.log(n)


def select_components(x, candidates=range(1, 11), *, criterion="elbo",
                      validation_fraction=0.2, seed=0, **fit_kwargs):
  """Fits each candidate number of components and picks the best.

  Args:
    x: array [N, D], or data files (a path, glob pattern or list of them;
      criterion "elbo" only; `file_options` in `fit_kwargs`).
    candidates: the K to try, ints >= 1 (an iterable; duplicates removed).
    criterion: "elbo" (default), "heldout" or "bic" (see the module
      docstring).
    validation_fraction: for "heldout", the share of rows held out, in
      (0, 1); the chosen K is then refitted on all rows.
    seed: int seed of every fit and of the split.
    **fit_kwargs: passed to `tfgmm.fit` (priors, `covariance_type`,
      `weight_prior`, `n_init`, ...); for "bic", to its MAP fit.

  Returns:
    A `Selection`: `n_components`, `model`, `criterion`, `table`.

  Raises:
    ValueError: bad arguments, or "bic" with an option MAP does not take.
  """
  criterion = _validation.check_choice("criterion", criterion, CRITERIA)
  files = files_lib.is_file_input(x)
  if files:
    if criterion != "elbo":
      raise ValueError(
          "Data files are streamed: select_components scores them by "
          f"criterion 'elbo' only ('heldout' needs a split of the rows, "
          f"'bic' a MAP fit of an array). Received: criterion={criterion!r}.")
    stream, _ = files_lib.file_dataset(x, **(fit_kwargs.get("file_options")
                                             or {}))
  else:
    x = _validation.check_data(
        x, dtype=np.float64,
        allow_nan=fit_kwargs.get("missing") == "marginalize")
  seed = _validation.check_non_negative_int("seed", seed)
  try:
    ks = sorted({_validation.check_positive_int("candidates", k)
                 for k in candidates})
  except TypeError:
    raise TypeError("Expected `candidates` to be an iterable of ints >= 1. "
                    f"Received: candidates={candidates!r}.") from None
  if not ks:
    raise ValueError("Expected at least one candidate. Received: "
                     f"candidates={candidates!r}.")
  if "method" in fit_kwargs:
    raise ValueError("`select_components` picks the method from the "
                     "criterion (MAP for 'bic'); do not pass `method`. "
                     f"Received: method={fit_kwargs['method']!r}.")
  method = "map" if criterion == "bic" else "natural"
  weight_prior = fit_kwargs.get("weight_prior", "dirichlet")
  train, validation = x, None
  if criterion == "heldout":
    fraction = float(_validation.check_finite_number(
        "validation_fraction", validation_fraction, ()))
    if not 0 < fraction < 1:
      raise ValueError("Expected `validation_fraction` in (0, 1). Received: "
                       f"validation_fraction={validation_fraction!r}.")
    order = np.random.default_rng(seed).permutation(x.shape[0])
    held = max(1, int(round(fraction * x.shape[0])))
    if held >= x.shape[0] - max(ks):
      raise ValueError(
          f"Holding out {held} of {x.shape[0]} rows leaves too few to fit "
          f"{max(ks)} components: lower `validation_fraction`.")
    validation, train = x[order[:held]], x[order[held:]]
  table = {"n_components": [], "score": [], "effective_components": [],
           "seconds": []}
  models = {}
  for k in ks:
    start = time.perf_counter()
    with warnings.catch_warnings():
      # A K above the data's makes MAP empty components: expected here
      # (BIC counts the kept ones; the table shows them).
      warnings.simplefilter("ignore", map_lib.ComponentsDroppedWarning)
      model = api.fit(train, k, method=method, seed=seed, **fit_kwargs)
    table["seconds"].append(time.perf_counter() - start)
    table["n_components"].append(k)
    rows = int(model.num_examples.numpy()) if files else train.shape[0]
    table["score"].append(_score(criterion, model, stream if files else train,
                                 validation, weight_prior))
    table["effective_components"].append(_occupied(model, rows))
    models[k] = model
  scores = np.asarray(table["score"])
  best = ks[int(np.argmin(scores) if criterion == "bic"
                else np.argmax(scores))]
  model = models[best]
  if criterion == "heldout":
    model = api.fit(x, best, method=method, seed=seed, **fit_kwargs)
  return Selection(best, model, criterion, table)
