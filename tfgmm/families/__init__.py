"""The covariance families, and `get`: the one place that picks a family.

Each module builds one `base.Family` (see `base` for the protocol):

- `diag`: diagonal precisions, Normal-Gamma (the default model);
- `diag_independent`: diagonal precisions with the seed blog's independent
  Normal prior on the means;
- `diag_missing`: `diag` trained and evaluated on the observed entries of
  rows with missing values (NaN);
- `full`: full precision matrices, Normal-Wishart.
"""

from tfgmm.families import diag
from tfgmm.families import diag_independent
from tfgmm.families import diag_missing
from tfgmm.families import full
from tfgmm.families.base import Family

COVARIANCE_TYPES = ("diag", "full")
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
    ValueError: for a combination no family implements, naming it.
  """
  family = _REGISTRY.get((covariance_type, mean_prior, missing))
  if family is not None:
    return family
  if (covariance_type, mean_prior, "error") not in _REGISTRY:
    raise ValueError(
        f"Expected `mean_prior='conjugate'` with covariance_type="
        f"{covariance_type!r} (the independent prior is the diagonal "
        f"seed-blog model). Received: mean_prior={mean_prior!r}.")
  raise ValueError(
      f"Expected mean_prior='conjugate' with missing='marginalize': missing "
      f"values are not implemented for the {mean_prior} prior. "
      f"Received: mean_prior={mean_prior!r}.")


__all__ = ["COVARIANCE_TYPES", "Family", "MEAN_PRIORS", "MISSING", "get"]
