"""The covariance families, and `get`: the one place that picks a family.

Each module builds one `base.Family` (see `base` for the protocol):

- `diag`: diagonal precisions, Normal-Gamma (the default model);
- `diag_independent`: diagonal precisions with the seed blog's independent
  Normal prior on the means;
- `diag_missing`: `diag` trained and evaluated on the observed entries of
  rows with missing values (NaN);
- `full`: full precision matrices, Normal-Wishart;
- `spherical`: one Gamma precision per component, shared by its features;
- `tied`: one Wishart precision matrix shared by all components.

What each family supports is read from it (`Family.methods`,
`Family.sklearn`, ...): `supporting` lists the covariance types of a method,
so `tfgmm.map`, `tfgmm.mcmc` and the scikit-learn face keep no lists of
their own.
"""

from tfgmm.families import diag
from tfgmm.families import diag_independent
from tfgmm.families import diag_missing
from tfgmm.families import full
from tfgmm.families import spherical
from tfgmm.families import tied
from tfgmm.families.base import Family

COVARIANCE_TYPES = ("diag", "full", "spherical", "tied")
MEAN_PRIORS = ("conjugate", "independent")
MISSING = ("error", "marginalize")

# (covariance_type, mean_prior, missing) -> Family.
_REGISTRY = {
    ("diag", "conjugate", "error"): diag.FAMILY,
    ("diag", "conjugate", "marginalize"): diag_missing.FAMILY,
    ("diag", "independent", "error"): diag_independent.FAMILY,
    ("full", "conjugate", "error"): full.FAMILY,
    # Full covariances marginalise missing values in the predictive
    # (log_prob, responsibilities, exports) and train on complete rows.
    ("full", "conjugate", "marginalize"): full.FAMILY,
    ("spherical", "conjugate", "error"): spherical.FAMILY,
    ("tied", "conjugate", "error"): tied.FAMILY,
}


def get(covariance_type="diag", mean_prior="conjugate", missing="error"):
  """The `Family` of a model's settings.

  Args:
    covariance_type: one of `COVARIANCE_TYPES`.
    mean_prior: "conjugate" or "independent".
    missing: "error" or "marginalize".

  Returns:
    The `Family`.

  Raises:
    ValueError: for a combination no family implements, naming the
      argument, its value and the covariance type.
  """
  family = _REGISTRY.get((covariance_type, mean_prior, missing))
  if family is not None:
    return family
  if covariance_type not in COVARIANCE_TYPES:
    raise ValueError(f"Expected `covariance_type` to be one of "
                     f"{sorted(COVARIANCE_TYPES)}. Received: "
                     f"covariance_type={covariance_type!r}.")
  if (covariance_type, mean_prior, "error") not in _REGISTRY:
    raise ValueError(
        f"mean_prior={mean_prior!r} is not supported for covariance_type="
        f"{covariance_type!r}: expected `mean_prior='conjugate'` (the "
        "independent prior is the diagonal seed-blog model). Received: "
        f"mean_prior={mean_prior!r}.")
  if (covariance_type, "conjugate", missing) in _REGISTRY:
    raise ValueError(
        f"Expected mean_prior='conjugate' with missing={missing!r}: missing "
        f"values are not implemented for the {mean_prior} prior. "
        f"Received: mean_prior={mean_prior!r}.")
  marginalizing = [t for t in COVARIANCE_TYPES
                   if (t, "conjugate", missing) in _REGISTRY]
  raise ValueError(
      f"missing={missing!r} is not supported for covariance_type="
      f"{covariance_type!r}: impute or drop incomplete rows, or use "
      f"covariance_type in {marginalizing}. Received: missing={missing!r}.")


def supporting(method):
  """The covariance types whose family supports an inference method.

  Args:
    method: a `Family.methods` entry: "natural", "gradient", "sampled",
      "map" or "mcmc".

  Returns:
    The covariance types (a tuple, in `COVARIANCE_TYPES` order) whose
    conjugate family lists `method`.
  """
  return tuple(t for t in COVARIANCE_TYPES if method in get(t).methods)


def describe_types(covariance_types):
  """"covariance_type='diag' or covariance_type='full'": for messages."""
  return " or ".join(f"covariance_type={t!r}" for t in covariance_types)


__all__ = ["COVARIANCE_TYPES", "Family", "MEAN_PRIORS", "MISSING",
           "describe_types", "get", "supporting"]
