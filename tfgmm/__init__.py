"""tfgmm: Bayesian Gaussian mixture models on TensorFlow and Keras 3.

The public API:

- `BayesianGMM`: the variational posterior as a `keras.Model`.
- `fit`: one call from data to a fitted `BayesianGMM` (with method="map",
  to MAP point estimates, a `tfgmm.map.MAPMixture`).
- `make_dataset`: a shuffled, resumable `tf.data` minibatch pipeline.
- `select_components`: fits several K and picks one (ELBO, held-out
  log-likelihood or BIC).
- `BoundConvergence`: the Keras callback that stops when the bound settles.
- `tfgmm.layers.MixtureLoss`: a mixture's negative ELBO as a Keras layer's
  loss, for Functional and Sequential models.
- `tfgmm.mcmc`: NUTS, HMC and random-walk Metropolis on the collapsed model
  (loaded on first use: it imports TensorFlow Probability).
- `tfgmm.metrics`: label matching (Hungarian), accuracy, ARI, log loss,
  held-out log-likelihood, fit comparison (loaded on first use).
- `tfgmm.plotting`: matplotlib figures of fits (loaded on first use).
- `tfgmm.sklearn`: scikit-learn's `BayesianGaussianMixture` face (import it
  explicitly; needs `pip install tfgmm[sklearn]`).
"""

import importlib


from tfgmm._version import __version__
from tfgmm import layers
from tfgmm.api import fit
from tfgmm.callbacks import BoundConvergence
from tfgmm.data import make_dataset
from tfgmm.model import BayesianGMM
from tfgmm.selection import select_components

__all__ = [
    "BayesianGMM",
    "BoundConvergence",
    "__version__",
    "fit",
    "layers",
    "make_dataset",
    "select_components",
]


_LAZY_MODULES = ("mcmc", "metrics", "plotting")


def __getattr__(name):
  # Submodules on first use: `import tfgmm` does not import TFP (mcmc),
  # scipy.optimize (metrics) or matplotlib (plotting).
  if name in _LAZY_MODULES:
    return importlib.import_module(f"tfgmm.{name}")
  raise AttributeError(f"module 'tfgmm' has no attribute {name!r}")
