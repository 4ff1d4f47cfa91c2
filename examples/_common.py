"""Helpers shared by the examples of the `examples` package.

Used by every example (`from examples import _common`; not a public
module):

- argparse value types (`positive_int`, `seed`, `positive_float`, ...) and
  `check_out_dir` for the `--out DIR` flag;
- `parse_or_status`, `error`, `plots_dir_error`, `sklearn_error`,
  `run_interruptible`: the exit statuses of the examples whose `main`
  returns one (0, 1, 2, 130);
- `Plots`: writes the tfgmm.plotting figures of a run into `--out`;
- `format_table`, `pm`, `fill`: the printed tables and notes;
- `match_to_centres`: fitted components paired with known centres;
- `known_covariance_model`: tfgmm's arguments for the seeds' model (unit
  covariances, Normal means, fixed or Dirichlet weights);
- `reference_cavi`: the seeds' own CAVI algorithm for that model in NumPy
  (coordinate ascent on z, pi, mu with closed-form updates and the full
  evidence lower bound), the baseline the examples put tfgmm beside.
"""

import argparse
import importlib
import math
import os
import re
import sys
import textwrap

import numpy as np
from scipy import optimize
from scipy import special

# The seeds know each component's covariance (the identity). tfgmm learns a
# Gamma posterior over every precision; a Gamma(A, rate A) prior with this A
# pins tau at 1 (prior sd 1 / sqrt(A) = 0.001), which makes tfgmm's model
# the seeds' to about 1e-6 nats per point.
KNOWN_PRECISION_STRENGTH = 1e6
# The univariate lecture fixes the weights at 1 / K. A Dirichlet prior of
# this concentration per component holds them there (sd ~ 3e-4 for K = 3).
FIXED_WEIGHT_CONCENTRATION = 1e6


# -------------------------------------------------------------- arguments

def _int_in(text, low, high, what):
  try:
    value = int(text)
  except ValueError:
    raise argparse.ArgumentTypeError(
        f"expected an integer, got {text!r}") from None
  if value < low or (high is not None and value > high):
    raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
  return value


def positive_int(text):
  """argparse type: an integer >= 1."""
  return _int_in(text, 1, None, "an integer >= 1")


def int_at_least(low):
  """argparse type: an integer >= `low`."""
  return lambda text: _int_in(text, low, None, f"an integer >= {low}")


def seed(text):
  """argparse type: a seed for NumPy and TensorFlow, 0 <= seed < 2^31 - 1."""
  return _int_in(text, 0, 2**31 - 2, "0 <= seed < 2^31 - 1")


def positive_float(text):
  """argparse type: a finite float > 0."""
  try:
    value = float(text)
  except ValueError:
    raise argparse.ArgumentTypeError(
        f"expected a number, got {text!r}") from None
  if not (math.isfinite(value) and value > 0):
    raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
  return value


def parse_or_status(parser, argv):
  """(args, None), or (None, argparse's exit status: 0 --help, 2 misuse).

  For the examples whose `main` returns an exit status instead of exiting.
  """
  try:
    return parser.parse_args(argv), None
  except SystemExit as e:
    return None, e.code if isinstance(e.code, int) else 2


def error(prog, message, status=2):
  """Prints `prog: error: message` on stderr and returns `status`."""
  print(f"{prog}: error: {message}", file=sys.stderr)
  return status


def plots_dir_error(prog, path):
  """Status 2 with a message if `--plots` names a file, else None."""
  if path is not None and os.path.exists(path) and not os.path.isdir(path):
    return error(prog, f"--plots {path!r} exists and is not a directory")
  return None


def sklearn_error(prog, needed_for):
  """Status 1 with a message if scikit-learn is not installed, else None."""
  try:
    importlib.import_module("sklearn")
  except ImportError:
    return error(prog, f"needs scikit-learn, {needed_for} (pip install "
                 "scikit-learn, or the project's [dev] extra)", 1)
  return None


def run_interruptible(prog, run, args):
  """run(args)'s status; 130 with a message on Ctrl-C."""
  try:
    return run(args)
  except KeyboardInterrupt:
    print(file=sys.stderr)
    return error(prog, "interrupted", 130)


def add_out_argument(parser, plots):
  """Adds `--out DIR`: where the plots go (`plots`: their file names)."""
  parser.add_argument("--out", metavar="DIR",
                      help="write the plots (" + ", ".join(plots) + ") to "
                           "this directory (created if needed)")


def check_out_dir(parser, path):
  """Exits with argparse's usage error if `path` is a file."""
  if path is not None and os.path.exists(path) and not os.path.isdir(path):
    parser.error(f"--out {path!r} exists and is not a directory")


class Plots:
  """Writes figures into one directory and remembers their paths.

  `save(name, plot_fn, *args, **kwargs)` calls `plot_fn(*args, path=...,
  **kwargs)` (a tfgmm.plotting function) with `path` = `directory/name`.
  Without a directory nothing is drawn.
  """

  def __init__(self, directory):
    self.directory = directory
    self.paths = {}

  def save(self, name, plot_fn, *args, **kwargs):
    if self.directory is None:
      return None
    os.makedirs(self.directory, exist_ok=True)
    path = os.path.join(self.directory, name)
    plot_fn(*args, path=path, **kwargs)
    self.paths[name] = path
    return path

  def report(self):
    """The lines that list the written files."""
    if not self.paths:
      return "Plots: none (pass --out DIR to write them)."
    return "\n".join(["Plots:"] + [f"  {p}" for p in self.paths.values()])


# ----------------------------------------------------------------- output

def format_table(header, rows, indent="  ", left=1):
  """Rows of cells as aligned text: `left` columns left, the others right.

  Cells are separated by at least two spaces, and no cell holds two spaces
  in a row, so `re.split(r"\\s{2,}", line.strip())` splits a line back into
  its cells. A row of one cell is a section title.
  """
  width = len(header)
  widths = [max(len(str(r[i])) for r in [header] + [r for r in rows
                                                       if len(r) == width])
            for i in range(width)]
  lines = []
  for row in [header, None] + list(rows):
    if row is None:
      lines.append(indent + "-" * (sum(widths) + 2 * (width - 1)))
    elif len(row) == 1:
      lines.append(indent + str(row[0]))
    else:
      cells = [str(c).ljust(w) if i < left else str(c).rjust(w)
               for i, (c, w) in enumerate(zip(row, widths))]
      lines.append((indent + "  ".join(cells)).rstrip())
  return "\n".join(lines)


def pm(mean, sd, decimals=3):
  """'mean ± sd' (one space each side of ±: a single table cell)."""
  return f"{mean:.{decimals}f} ± {sd:.{decimals}f}"


def fill(text, first="  - ", indent="    ", width=78):
  """Wraps a note; groups like "(2, 2)" stay on one line."""
  glued = re.sub(r"\(([^()\s]+), ([^()\s]+)\)", "(\\1\0\\2)", text)
  return "\n".join(line.replace("\0", ", ") for line in textwrap.wrap(
      glued, width, initial_indent=first, subsequent_indent=indent,
      break_on_hyphens=False))


# ------------------------------------------------------------- matching

def match_to_centres(means, centres):
  """The fitted component paired with each known centre.

  Args:
    means: fitted component means, [K, D].
    centres: known centres, [C, D], C <= K.

  Returns:
    int numpy array [C]: `order[c]` is the component matched to centre c,
    minimising the total squared distance (Hungarian algorithm).
  """
  means = np.asarray(means, np.float64)
  centres = np.asarray(centres, np.float64)
  cost = np.sum((centres[:, None, :] - means[None, :, :]) ** 2, -1)  # [C, K]
  rows, cols = optimize.linear_sum_assignment(cost)
  order = np.empty(len(centres), np.int64)
  order[rows] = cols
  return order


# ------------------------------------------- the seeds' model and its CAVI

def known_covariance_model(*, mean_precision=1.0, weight_concentration=None,
                           fixed_weights=False):
  """tfgmm arguments for the seeds' mixture with unit covariances.

  ```none
  pi      ~ Dirichlet(alpha0)        (or fixed at 1 / K: fixed_weights)
  mu_k    ~ Normal(0, I / nu0)       (mean_prior="independent", nu0 =
                                      mean_precision, an absolute precision)
  tau_kd  ~ Gamma(A, A), A = 1e6     (pins the unit precision)
  x_n     ~ Normal(mu_{z_n}, I)
  ```
  in raw units (standardize=False), float64.
  """
  if fixed_weights:
    weight_concentration = FIXED_WEIGHT_CONCENTRATION
  return dict(mean_prior="independent", mean_loc=0.0,
              mean_precision=mean_precision,
              precision_concentration=KNOWN_PRECISION_STRENGTH,
              precision_rate=KNOWN_PRECISION_STRENGTH,
              weight_concentration=weight_concentration,
              standardize=False, dtype="float64")


def start_tfgmm_at(model, x, mean_loc, mean_variance, weight_concentration):
  """Initialises `model` (known-covariance arguments) at a given q.

  `initialize` records N and marks the model fitted; q is then replaced by
  q(mu_k) = Normal(mean_loc[k], mean_variance[k] I), q(pi) =
  Dirichlet(weight_concentration) and q(tau) at its prior.
  """
  k, d = model.n_components, model.n_features
  model.initialize(x, n_init=1, max_iter=1, births=0, merges=0)
  q = model.posterior()
  strength = np.full((k, d), KNOWN_PRECISION_STRENGTH)
  model.assign_posterior(q._replace(
      weight_concentration=np.asarray(weight_concentration, np.float64),
      mean_loc=np.asarray(mean_loc, np.float64).reshape(k, d),
      mean_precision=np.broadcast_to(
          1.0 / np.asarray(mean_variance, np.float64)[:, None], (k, d)),
      precision_concentration=strength, precision_rate=strength))


class CaviResult:
  """What `reference_cavi` returns.

  Attributes:
    bounds: the evidence lower bound (total nats) after each local step,
      L(q(z)_t, q(pi, mu)_{t-1}), [T]: what tfgmm's training history
      records per epoch, times N.
    iterations: T.
    converged: the change fell below `tol` before `max_iter`.
    responsibilities: q(z), [N, K], from the last local step.
    means: E[mu_k], [K, D]; mean_variance: Var[mu_kd], [K].
    weight_concentration: q(pi)'s Dirichlet, [K] (None: fixed weights).
  """

  def __init__(self, **fields):
    self.__dict__.update(fields)

  @property
  def weights(self):
    """E[pi_k], [K] (1 / K for fixed weights)."""
    if self.weight_concentration is None:
      k = self.means.shape[0]
      return np.full(k, 1.0 / k)
    return self.weight_concentration / self.weight_concentration.sum()


def reference_cavi(x, mean_loc, mean_variance, *, prior_precision=1.0,
                   weight_concentration=None, max_iter=100, tol=1e-5,
                   weight_start=None):
  """CAVI for the unit-covariance Gaussian mixture, as the CAVI seeds run it.

  Model: x_n ~ Normal(mu_{z_n}, I), mu_k ~ Normal(0, I / nu0), z_n ~
  Categorical(pi) with pi ~ Dirichlet(alpha0) or, for
  `weight_concentration=None`, fixed at 1 / K (the univariate lecture).
  Mean field q(pi) q(mu) q(z) with q(mu_k) = Normal(m_k, s2_k I). One
  iteration:

  ```none
  q(z_n = k) propto exp(E[log pi_k] - (|x_n - m_k|^2 + D s2_k) / 2)
  N_k = sum_n r_nk;   alpha_k = alpha0 + N_k
  s2_k = 1 / (nu0 + N_k);   m_k = s2_k sum_n r_nk x_n
  ```

  The bound is the full ELBO, E[log p(x, z, pi, mu)] - E[log q], with
  E[log pi_k] = digamma(alpha_k) - digamma(sum alpha) under q(pi).

  Args:
    x: data, [N, D].
    mean_loc, mean_variance: the start, q(mu_k) = Normal(m_k, s2_k I),
      [K, D] and [K].
    prior_precision: nu0.
    weight_concentration: alpha0 (scalar or [K]), or None for fixed
      uniform weights.
    max_iter: at most this many iterations.
    tol: stop when |L_t - L_{t-1}| <= tol (total nats).
    weight_start: q(pi)'s concentration at the start, [K] (default alpha0).

  Returns:
    `CaviResult`.
  """
  x = np.asarray(x, np.float64)
  n, d = x.shape
  m = np.array(mean_loc, np.float64).reshape(-1, d)
  s2 = np.array(mean_variance, np.float64).reshape(-1)
  k = m.shape[0]
  fixed = weight_concentration is None
  if not fixed:
    alpha0 = np.broadcast_to(np.asarray(weight_concentration, np.float64),
                             (k,)).copy()
    alpha = alpha0.copy() if weight_start is None else np.asarray(
        weight_start, np.float64).copy()
  else:
    alpha0 = alpha = None
  nu0 = float(prior_precision)
  sq_x = np.sum(x * x, 1)                                         # [N]
  bounds = []
  converged = False
  for _ in range(max_iter):
    if fixed:
      e_log_pi = np.full(k, -math.log(k))
    else:
      e_log_pi = special.digamma(alpha) - special.digamma(alpha.sum())
    # E[log N(x_n | mu_k, I)] = -D/2 log 2 pi - (|x_n - m_k|^2 + D s2_k) / 2.
    sq_dist = sq_x[:, None] - 2.0 * x @ m.T + np.sum(m * m, 1)    # [N, K]
    e_log_lik = -0.5 * d * math.log(2 * math.pi) - 0.5 * (sq_dist + d * s2)
    log_rho = e_log_pi + e_log_lik                                # [N, K]
    log_norm = special.logsumexp(log_rho, 1)                      # [N]
    r = np.exp(log_rho - log_norm[:, None])
    # With q(z) at its optimum, the z terms collapse to sum_n log_norm_n.
    bound = float(np.sum(log_norm)) - _global_kl(m, s2, nu0, alpha, alpha0)
    bounds.append(bound)
    counts = r.sum(0)                                             # [K]
    if not fixed:
      alpha = alpha0 + counts
    s2 = 1.0 / (nu0 + counts)
    m = s2[:, None] * (r.T @ x)
    if len(bounds) > 1 and abs(bounds[-1] - bounds[-2]) <= tol:
      converged = True
      break
  return CaviResult(bounds=np.asarray(bounds), iterations=len(bounds),
                    converged=converged, responsibilities=r, means=m,
                    mean_variance=s2, weight_concentration=alpha)


def _global_kl(m, s2, nu0, alpha, alpha0):
  """KL(q(mu) || p(mu)) + KL(q(pi) || p(pi)) (the latter 0 if fixed)."""
  d = m.shape[1]
  # Normal(m, s2 I) against Normal(0, I / nu0), per component.
  kl = 0.5 * np.sum(d * (nu0 * s2 - 1.0 - np.log(nu0 * s2))
                    + nu0 * np.sum(m * m, 1))
  if alpha is not None:
    e_log_pi = special.digamma(alpha) - special.digamma(alpha.sum())
    kl += (special.gammaln(alpha.sum()) - special.gammaln(alpha).sum()
           - special.gammaln(alpha0.sum()) + special.gammaln(alpha0).sum()
           + np.sum((alpha - alpha0) * e_log_pi))
  return float(kl)
