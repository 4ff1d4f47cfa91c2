"""tfgmm: Bayesian Gaussian mixture models on TensorFlow and Keras 3.

The public API:

- `BayesianGMM`: the variational posterior as a `keras.Model`.
- `fit`: one call from data to a fitted `BayesianGMM`.
- `make_dataset`: a shuffled, resumable `tf.data` minibatch pipeline.
- `BoundConvergence`: the Keras callback that stops when the bound settles.
"""

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
