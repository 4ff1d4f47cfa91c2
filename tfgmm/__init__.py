"""tfgmm: Bayesian Gaussian mixture models on TensorFlow and Keras 3.

The public API:

- `BayesianGMM`: the variational posterior as a `keras.Model`.
- `fit`: one call from data to a fitted `BayesianGMM`.
- `make_dataset`: a shuffled, resumable `tf.data` minibatch pipeline.
- `BoundConvergence`: the Keras callback that stops when the bound settles.
- `tfgmm.mcmc`: NUTS, HMC and random-walk Metropolis on the collapsed model
  (loaded on first use: it imports TensorFlow Probability).
- `tfgmm.sklearn`: scikit-learn's `BayesianGaussianMixture` face (import it
  explicitly; needs `pip install tfgmm[sklearn]`).
"""

import importlib


from tfgmm._version import __version__
from tfgmm.api import fit
from tfgmm.callbacks import BoundConvergence
from tfgmm.data import make_dataset
from tfgmm.model import BayesianGMM

__all__ = [
    "BayesianGMM",
    "BoundConvergence",
    "__version__",
    "fit",
    "make_dataset",
]


def __getattr__(name):
  # `tfgmm.mcmc` on first use, so `import tfgmm` does not import TFP.
  if name == "mcmc":
    return importlib.import_module("tfgmm.mcmc")
  raise AttributeError(f"module 'tfgmm' has no attribute {name!r}")
