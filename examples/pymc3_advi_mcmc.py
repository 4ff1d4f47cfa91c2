"""The PyMC3 notebook's 2-D mixture: variational fit against MCMC, with tfgmm.

The notebook (a Gaussian mixture with ADVI and MCMC, taken from PyMC3's
documentation) draws 100 points from a two-component mixture in 2-D,

  weights (0.2, 0.8), means (-1, -1.5) and (1, 1), identity covariances,

with `np.random.RandomState(123)` (a one-hot `multinomial` draw per point,
then `multivariate_normal` draws for every component, masked), and fits

  mu_k ~ Normal(0, I),  pi ~ Dirichlet(0.1, 0.1),  x_n ~ sum_k pi_k N(mu_k, I)

with the assignments summed out, by Metropolis (2 chains of 1,000 draws
after 500 tuning steps, from the MAP) and by mean-field ADVI (5,000 Adagrad
steps). It prints both posteriors. Then it draws 100,000 more points from
the same generator (the same RandomState, continued) and fits them by ADVI
on minibatches of 200 (1,500 steps, prior precision 0.1 on the means),
noting that Metropolis there takes minutes and does not converge.

This script draws the same points and fits the same model with tfgmm (the
unit covariances held by a Gamma(1e6, 1e6) prior on the precisions,
`mean_prior="independent"`, raw units):

  - VI: `tfgmm.fit` (CAVI, `method="natural"` on all the data), the
    closed-form counterpart of the notebook's ADVI;
  - random-walk Metropolis: `tfgmm.mcmc.sample(kernel="rwm")`;
  - NUTS: `tfgmm.mcmc.sample(kernel="nuts")`;

both samplers with the notebook's chains, draws and burn-in, started from
draws of the VI posterior, and prints every posterior mean ± sd beside the
notebook's, with the samplers' smallest effective sample size and largest
R-hat. On the 100,000 points it trains by natural-gradient steps on
minibatches of 200 for the notebook's 1,500 steps (`BayesianGMM.fit` on
`tfgmm.make_dataset`), beside CAVI on all of them.

Examples:

  python -m examples.pymc3_advi_mcmc                # about 25 s
  python -m examples.pymc3_advi_mcmc --out plots/pymc3
  python -m examples.pymc3_advi_mcmc --chains 4 --draws 2000

`main(argv)` returns a dict of the results (see `main`); bad arguments exit
with argparse's status 2.
"""

# Heavy imports (TensorFlow, scikit-learn) wait until main() runs.
# pylint: disable=import-outside-toplevel

import argparse
import os
import time

import numpy as np

from examples import _common

PROG = "python -m examples.pymc3_advi_mcmc"

NOTEBOOK_SEED = 123
TRUE_MEANS = np.array([[-1.0, -1.5], [1.0, 1.0]])
TRUE_WEIGHTS = np.array([0.2, 0.8])
SMALL_N = 100
LARGE_N = 100_000
WEIGHT_CONCENTRATION = 0.1      # pi ~ Dirichlet(0.1, 0.1)
MEAN_PRECISION = 1.0            # mu_k ~ Normal(0, I)
MINIBATCH_MEAN_PRECISION = 0.1  # the minibatch model's tau=0.1 I
MINIBATCH_SIZE = 200
MINIBATCH_STEPS = 1500          # the notebook's pm.fit(n=1500)
DRAWS, BURNIN, CHAINS = 1000, 500, 2

# The notebook's fitted labelling: its mu_0 and pi[0] landed on the large
# cluster at (1, 1), its mu_1 and pi[1] on the small one.
NOTEBOOK_ORDER = np.array([1, 0])          # index into TRUE_MEANS

# What the notebook prints (its pm.summary and ADVI's approximation).
NOTEBOOK_METROPOLIS = {
    "weights": np.array([0.858311, 0.141689]),
    "weights_sd": np.array([0.044657, 0.044657]),
    "means": np.array([[0.815877, 1.003558], [-0.788941, -1.448982]]),
    "means_sd": np.array([[0.110761, 0.107124], [0.311106, 0.348317]]),
    "min_ess": 112.0, "max_r_hat": 1.014715,
}
# ADVI's weights are the stick-breaking mean mapped back, without an sd.
NOTEBOOK_ADVI = {
    "weights": np.array([0.86564287, 0.13435713]),
    "weights_sd": None,
    "means": np.array([[0.8211505, 0.98282181], [-0.79336909, -1.48984231]]),
    "means_sd": np.array([[0.11278951, 0.11620921],
                          [0.28764002, 0.32206536]]),
}
NOTEBOOK_SHARES = (0.13, 0.87)   # zs[0].mean(), zs[1].mean() of the 100

PLOTS = ("density.png", "posterior_nuts.png", "posterior_rwm.png",
         "assignment_uncertainty.png", "minibatch_training.png")


# ------------------------------------------------------------------- data

def notebook_draw(rng, n):
  """n points drawn as the notebook draws them, from `rng` (RandomState).

  Returns:
    (x [n, 2], zs [2, n]): the points and their one-hot components.
  """
  zs = np.array([rng.multinomial(1, TRUE_WEIGHTS) for _ in range(n)]).T
  parts = [z[:, None] * rng.multivariate_normal(m, np.eye(2), size=n)
           for z, m in zip(zs, TRUE_MEANS)]
  return np.sum(np.dstack(parts), axis=2), zs


# -------------------------------------------------------------------- fits

def _model_arguments(mean_precision):
  return _common.known_covariance_model(
      mean_precision=mean_precision,
      weight_concentration=WEIGHT_CONCENTRATION)


def fit_vi(x, seed):
  import tfgmm

  began = time.perf_counter()
  model = tfgmm.fit(x, 2, seed=seed, **_model_arguments(MEAN_PRECISION))
  return model, time.perf_counter() - began


def fit_minibatch(x, seed, batch_size, epochs):
  """Natural-gradient steps on minibatches, `epochs` passes over x."""
  import tfgmm

  began = time.perf_counter()
  model = tfgmm.BayesianGMM(2, 2, seed=seed, method="natural",
                            **_model_arguments(MINIBATCH_MEAN_PRECISION))
  model.fit(tfgmm.make_dataset(x, batch_size, seed=seed), epochs=epochs,
            verbose=0)
  return model, time.perf_counter() - began


def fit_large_cavi(x, seed):
  import tfgmm

  began = time.perf_counter()
  model = tfgmm.fit(x, 2, seed=seed,
                    **_model_arguments(MINIBATCH_MEAN_PRECISION))
  return model, time.perf_counter() - began


def vi_numbers(model, seconds):
  """Posterior mean and sd of the weights and means, in NOTEBOOK_ORDER."""
  summary = model.posterior_summary()
  order = _common.match_to_centres(summary["means"],
                                   TRUE_MEANS[NOTEBOOK_ORDER])
  return {name: summary[name][order]
          for name in ("weights", "weights_sd", "means", "means_sd")} | {
              "seconds": seconds, "order": order}


def mcmc_numbers(result, order):
  """The sampler's summary in the same order, and its diagnostics."""
  table = result.summary()
  numbers = {
      "weights": table["weights"]["mean"][order],
      "weights_sd": table["weights"]["sd"][order],
      "means": table["means"]["mean"][order],
      "means_sd": table["means"]["sd"][order],
      # Over the parameters the notebook's table lists: weights and means.
      "min_ess": float(min(np.min(table["weights"]["ess"]),
                           np.min(table["means"]["ess"]))),
      "max_r_hat": float(max(np.max(table["weights"]["r_hat"]),
                             np.max(table["means"]["r_hat"]))),
      "acceptance": float(np.mean(result.acceptance_rate)),
      "seconds": result.seconds,
  }
  if result.num_divergences is not None:
    numbers["divergences"] = int(np.sum(result.num_divergences))
  return numbers


def sample(model, x, kernel, args):
  from tfgmm import mcmc

  return mcmc.sample(model, x, kernel=kernel, num_results=args.draws,
                     num_burnin_steps=args.burnin, num_chains=args.chains,
                     seed=args.seed)


# ------------------------------------------------------------------ output

def _cells(fit, name, index, decimals=3):
  mean = fit[name][index]
  sd = fit[name + "_sd"]
  if sd is None:
    return f"{mean:.{decimals}f}"
  return _common.pm(mean, sd[index], decimals)


def format_small_table(fits):
  keys = ("metropolis", "advi", "vi", "rwm", "nuts")
  header = ["", "notebook Metropolis", "notebook ADVI", "tfgmm CAVI",
            "tfgmm RWM", "tfgmm NUTS"]
  rows = []
  for k in range(2):
    rows.append([f"weight {k}"] + [_cells(fits[f], "weights", k)
                                   for f in keys])
  for k in range(2):
    for d in range(2):
      rows.append([f"mean {k}, x{d}"] + [_cells(fits[f], "means", (k, d))
                                         for f in keys])

  def diag(name, fmt):
    return [fmt(fits[f][name]) if name in fits[f] else "-" for f in keys]

  rows.append(["min ESS"] + diag("min_ess", lambda v: f"{v:.0f}"))
  rows.append(["max R-hat"] + diag("max_r_hat", lambda v: f"{v:.3f}"))
  rows.append(["acceptance"] + diag("acceptance", lambda v: f"{v:.2f}"))
  rows.append(["seconds"] + diag("seconds", lambda v: f"{v:.1f}"))
  return _common.format_table(header, rows)


def format_large_table(truth, shares, fits):
  header = ["", "truth (drawn share)", "tfgmm minibatch", "tfgmm CAVI"]
  rows = []
  for k in range(2):
    rows.append([f"weight {k}",
                 f"{truth['weights'][k]:.3f} ({shares[k]:.4f})"]
                + [_cells(fits[f], "weights", k, 4)
                   for f in ("minibatch", "cavi")])
  for k in range(2):
    for d in range(2):
      rows.append([f"mean {k}, x{d}", f"{truth['means'][k, d]:.3f}"]
                  + [_cells(fits[f], "means", (k, d), 4)
                     for f in ("minibatch", "cavi")])
  rows.append(["steps", "-", f"{fits['minibatch']['steps']} of "
               f"{fits['minibatch']['batch_size']}",
               f"{fits['cavi']['steps']} epochs"])
  rows.append(["seconds", "-", f"{fits['minibatch']['seconds']:.1f}",
               f"{fits['cavi']['seconds']:.1f}"])
  return _common.format_table(header, rows)


def small_notes(fits, args, agreement):
  rwm, nuts = fits["rwm"], fits["nuts"]
  items = [
      "Components are in the notebook's labelling: 0 is the large cluster "
      "(true mean (1, 1), weight 0.8), 1 the small one. Cells read "
      "'posterior mean ± posterior sd'; the notebook's ADVI weights are its "
      "stick-breaking mean mapped back (no sd).",
      f"Samplers: {args.chains} chains x {args.draws} draws after "
      f"{args.burnin} burn-in steps, as the notebook's Metropolis, started "
      "from draws of the VI posterior (the notebook starts from the MAP). "
      "ESS and R-hat cover the weights and means (tfp's cross-chain ESS "
      "and split R-hat). tfgmm's RWM moves all 9 coordinates at once (4 "
      "means, 4 log precisions held near 0, 1 weight logit) where PyMC3's "
      "Metropolis steps one variable at a time.",
      f"NUTS has {nuts['min_ess'] / max(rwm['min_ess'], 1e-9):.0f} times "
      "the smallest ESS of random-walk Metropolis on the same draws. CAVI's "
      "means lie within "
      f"{agreement['means']:.2f} NUTS posterior sds of NUTS's, its weights "
      f"within {agreement['weights']:.2f}. Its sds are smaller than "
      f"NUTS's (weight {fits['vi']['weights_sd'][0]:.3f} against "
      f"{nuts['weights_sd'][0]:.3f}, the small cluster's means "
      f"{fits['vi']['means_sd'][1].max():.3f} against up to "
      f"{nuts['means_sd'][1].max():.3f}): the mean-field q leaves out the "
      "posterior's correlations through the assignments, the usual "
      "underestimate of mean-field VI (ADVI's too).",
  ]
  return "\n".join(["Notes:"] + [_common.fill(t) for t in items])


def large_notes(fits):
  items = [
      "Minibatch: natural-gradient steps (the closed-form counterpart of "
      "the notebook's minibatch ADVI) on batches of "
      f"{fits['minibatch']['batch_size']} from tfgmm.make_dataset, step "
      "size max(B/N, (t + 2)^-0.7); prior precision 0.1 on the means, as "
      "the notebook's minibatch model. CAVI: tfgmm.fit on all rows, same "
      "prior.",
      "The notebook reports no numbers for its minibatch fit ('almost the "
      "same'); its Metropolis on the 100,000 points took about 4 minutes "
      "and did not converge (R-hat above 1.4).",
  ]
  return "\n".join(["Notes:"] + [_common.fill(t) for t in items])


# -------------------------------------------------------------- arguments

def build_parser():
  parser = argparse.ArgumentParser(
      prog=PROG,
      description="Reproduce the PyMC3 notebook's mixture: tfgmm's CAVI, "
                  "random-walk Metropolis and NUTS beside its Metropolis and "
                  "ADVI, and a minibatch fit on 100,000 points.")
  parser.add_argument("--data-seed", type=_common.seed,
                      default=NOTEBOOK_SEED,
                      help=f"RandomState seed of the data (default: "
                           f"{NOTEBOOK_SEED}, the notebook's)")
  parser.add_argument("--seed", type=_common.seed, default=0,
                      help="seed of tfgmm's fits and samplers (default: 0)")
  parser.add_argument("--draws", type=_common.int_at_least(4), default=DRAWS,
                      help=f"draws per chain (default: {DRAWS})")
  parser.add_argument("--burnin", type=_common.int_at_least(0),
                      default=BURNIN,
                      help=f"burn-in steps per chain (default: {BURNIN})")
  parser.add_argument("--chains", type=_common.int_at_least(2),
                      default=CHAINS,
                      help=f"chains (default: {CHAINS}, the notebook's)")
  parser.add_argument("--large-n", type=_common.int_at_least(100),
                      default=LARGE_N,
                      help=f"points of the large data set (default: "
                           f"{LARGE_N:,})")
  parser.add_argument("--batch-size", type=_common.positive_int,
                      default=MINIBATCH_SIZE,
                      help=f"minibatch rows (default: {MINIBATCH_SIZE})")
  parser.add_argument("--epochs", type=_common.positive_int, default=None,
                      help="passes of the minibatch fit (default: enough "
                           f"for the notebook's {MINIBATCH_STEPS} steps)")
  _common.add_out_argument(parser, PLOTS)
  return parser


# -------------------------------------------------------------------- main

def main(argv=None):
  """Runs the comparison and prints its two tables.

  Args:
    argv: arguments without the program name; None reads sys.argv.

  Returns:
    dict with
    - "shares": the drawn share of each true component in the 100 points
      (the notebook: 0.13, 0.87), [2];
    - "small": per fit ("metropolis", "advi": the notebook's numbers;
      "vi", "rwm", "nuts": tfgmm's) "weights", "weights_sd" [2], "means",
      "means_sd" [2, 2] in the notebook's labelling, and for the samplers
      "min_ess", "max_r_hat", "acceptance", "seconds";
    - "agreement": the largest |CAVI - NUTS| posterior mean, in NUTS
      posterior sds, over "means" and over "weights";
    - "large": "truth" (weights, means), "shares" [2], and per fit
      ("minibatch", "cavi") the same fields as above plus "steps";
    - "plots": file name -> path.
  """
  parser = build_parser()
  args = parser.parse_args(argv)
  _common.check_out_dir(parser, args.out)

  from tfgmm import plotting

  rng = np.random.RandomState(args.data_seed)
  x, zs = notebook_draw(rng, SMALL_N)
  shares = zs.mean(1)
  print(f"Data: {SMALL_N} points, weights (0.2, 0.8), means (-1, -1.5) and "
        f"(1, 1), identity covariances\n(RandomState({args.data_seed})). "
        f"Drawn shares {shares[0]:.2f}, {shares[1]:.2f} (the notebook: "
        f"{NOTEBOOK_SHARES[0]:.2f}, {NOTEBOOK_SHARES[1]:.2f}).\n",
        flush=True)

  fits = {"metropolis": dict(NOTEBOOK_METROPOLIS),
          "advi": dict(NOTEBOOK_ADVI)}
  print("Fitting: CAVI, then random-walk Metropolis and NUTS...",
        flush=True)
  vi_model, seconds = fit_vi(x, args.seed)
  fits["vi"] = vi_numbers(vi_model, seconds)
  order = fits["vi"].pop("order")
  results = {}
  for kernel in ("rwm", "nuts"):
    results[kernel] = sample(vi_model, x, kernel, args)
    fits[kernel] = mcmc_numbers(results[kernel], order)
  nuts = fits["nuts"]
  agreement = {
      name: float(np.max(np.abs(fits["vi"][name] - nuts[name])
                         / nuts[name + "_sd"]))
      for name in ("means", "weights")}
  print()
  print(format_small_table(fits))
  print()
  print(small_notes(fits, args, agreement))

  x_large, zs_large = notebook_draw(rng, args.large_n)
  large_shares = zs_large.mean(1)[NOTEBOOK_ORDER]
  steps_per_epoch = -(-args.large_n // args.batch_size)
  epochs = args.epochs or max(1, round(MINIBATCH_STEPS / steps_per_epoch))
  print(f"\n{args.large_n:,} more points from the same generator (the "
        f"same RandomState, continued):\na minibatch fit ({epochs} epochs "
        f"of {steps_per_epoch} steps) beside CAVI on all of them...",
        flush=True)
  minibatch, seconds = fit_minibatch(x_large, args.seed, args.batch_size,
                                     epochs)
  large = {"minibatch": vi_numbers(minibatch, seconds)}
  large["minibatch"].pop("order")
  large["minibatch"].update(steps=epochs * steps_per_epoch,
                            batch_size=args.batch_size)
  cavi, seconds = fit_large_cavi(x_large, args.seed)
  large["cavi"] = vi_numbers(cavi, seconds)
  large["cavi"].pop("order")
  large["cavi"]["steps"] = len(cavi.training_history["loss"])
  truth = {"weights": TRUE_WEIGHTS[NOTEBOOK_ORDER],
           "means": TRUE_MEANS[NOTEBOOK_ORDER]}
  print()
  print(format_large_table(truth, large_shares, large))
  print()
  print(large_notes(large))

  plots = _common.Plots(args.out)
  plots.save("density.png", plotting.plot_density_2d, vi_model, x)
  plots.save("posterior_nuts.png", plotting.plot_posterior, vi_model,
             results["nuts"])
  plots.save("posterior_rwm.png", plotting.plot_posterior, vi_model,
             results["rwm"])
  plots.save("assignment_uncertainty.png",
             plotting.plot_assignment_uncertainty, vi_model, x,
             mcmc=results["nuts"])
  plots.save("minibatch_training.png", plotting.plot_training, minibatch)
  print()
  print(plots.report())
  return {"shares": shares, "small": fits, "agreement": agreement,
          "large": {"truth": truth, "shares": large_shares, **large},
          "plots": dict(plots.paths)}


if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  main()
