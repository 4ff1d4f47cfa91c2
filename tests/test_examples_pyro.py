"""A reduced run of examples/pyro_gmm.py (Pyro's five-point mixture).

One run of `main` at reduced size (20 starts and restarts; NUTS 2 chains x
200 draws after 200 burn-in) is shared by the tests of this module.
"""

import contextlib
import io
import math
import re

import numpy as np
import pytest

from examples import pyro_gmm
from tests.helpers import PNG_SIGNATURE

X = np.array([0.0, 1.0, 10.0, 11.0, 12.0])
# Canonical order (decreasing weight): 0 is {10, 11, 12}, 1 is {0, 1}.
CLUSTERS = (np.array([10.0, 11.0, 12.0]), np.array([0.0, 1.0]))
MAP_LABELS = [1, 1, 0, 0, 0]
REDUCED = ["--n-init", "20", "--num-results", "200", "--num-burnin", "200",
           "--num-chains", "2", "--seed", "0"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  """(results, printed text, plot directory) of one reduced run."""
  out = tmp_path_factory.mktemp("pyro_gmm") / "plots"
  text = io.StringIO()
  with contextlib.redirect_stdout(text):
    results = pyro_gmm.main(REDUCED + ["--out", str(out)])
  return results, text.getvalue(), out


def ecm_fixed_point(points, a, b, lam, iterations=500):
  """tfgmm's MAP of one hard cluster, independent prior: (mu, tau).

  Iterates its conditional modes mu = tau S1 / (tau N + lambda0) and
  tau = (a - 1 + N / 2) / (b + sum (x - mu)^2 / 2) to their fixed point.
  """
  mu, tau = points.mean(), 1.0
  for _ in range(iterations):
    mu = tau * points.sum() / (tau * points.size + lam)
    tau = (a - 1.0 + 0.5 * points.size) / (
        b + 0.5 * np.square(points - mu).sum())
  return mu, tau


# ------------------------------------------------ Pyro's model, in NumPy

def test_log_joint_gives_pyro_printed_initial_loss():
  # The tutorial's best start (its seed 7): uniform weights, scale
  # sqrt(var(x) / 2), locs [1, 10]; it printed initial_loss =
  # 25.665584564208984 (float32: one unit in the last place is 1.9e-6).
  weights, _, scale = pyro_gmm.pyro_initial_state(
      X, np.random.default_rng(0))
  np.testing.assert_allclose(weights, [0.5, 0.5])
  assert scale == pytest.approx(math.sqrt(134.8 / 4 / 2), rel=1e-12)
  loss = -pyro_gmm.pyro_log_joint(X, weights, np.array([1.0, 10.0]), scale)
  assert loss == pytest.approx(pyro_gmm.PYRO_PRINTED["initial_loss"],
                               abs=2e-6)


def test_reference_reproduces_pyro_map(run):
  results, _, _ = run
  ref, printed = results["reference"], results["printed"]
  # No start of the tutorial's kind beats locs {1, 10} (the tutorial's).
  assert ref["initial_loss"] >= printed["initial_loss"] - 2e-6
  np.testing.assert_allclose(ref["weights"], [0.625, 0.375], atol=1e-6)
  # Pyro's 200 Adam steps stopped 7e-5 short of the mode on the loc near
  # 0.5; the others it printed to float32 precision.
  np.testing.assert_allclose(ref["locs"], printed["locs"][::-1], atol=1e-4)
  assert ref["scale"] == pytest.approx(printed["scale"], abs=1e-5)
  np.testing.assert_array_equal(ref["assign"], MAP_LABELS)
  np.testing.assert_array_equal(ref["sampled"], MAP_LABELS)  # as Pyro's
  # One shared scale: the boundary w0 N(x | l0) = w1 N(x | l1) is at
  # (l0 + l1) / 2 + s^2 ln(w1 / w0) / (l0 - l1); the tutorial: "~5.75".
  (w0, w1), (l0, l1), s = ref["weights"], ref["locs"], ref["scale"]
  exact = (l0 + l1) / 2 + s**2 * math.log(w1 / w0) / (l0 - l1)
  assert ref["boundary"] == pytest.approx(exact, abs=1e-4)
  assert ref["boundary"] == pytest.approx(5.75, abs=0.05)


# ------------------------------------------------------------- tfgmm MAP

def test_tfgmm_map(run):
  results, _, _ = run
  fit = results["map"]
  # (N_k + alpha0 - 1) / (N + K (alpha0 - 1)) = 2.5 / 4 and 1.5 / 4: the
  # tutorial's weights, whatever the scale prior.
  np.testing.assert_allclose(fit["weights"], [0.625, 0.375], atol=1e-6)
  assert fit["converged"] and fit["n_init"] == 20
  assert 1 <= fit["restarts_at_best"] <= 20
  prior = pyro_gmm.TFGMM_PRIOR
  for k, points in enumerate(CLUSTERS):
    mu, tau = ecm_fixed_point(points, prior["precision_concentration"],
                              prior["precision_rate"],
                              prior["mean_precision"])
    assert fit["means"][k] == pytest.approx(mu, rel=1e-6)
    assert fit["stddevs"][k] == pytest.approx(tau**-0.5, rel=1e-6)
  # 10.981322 and 0.499550: within 0.005 of Pyro's 10.984463 and 0.498874
  # (the scale priors differ: one shared scale there, one per cluster here).
  np.testing.assert_allclose(fit["means"], [10.981322, 0.499550], atol=1e-6)
  np.testing.assert_allclose(fit["means"], [10.984463, 0.49887404],
                             atol=0.005)
  np.testing.assert_array_equal(fit["assign"], MAP_LABELS)
  sampled = fit["sampled"]
  assert sampled.shape == (5,) and set(sampled.tolist()) <= {0, 1}
  # The clusters are 10 apart: a draw at temperature 1 is the MAP label
  # up to a probability below 1e-30.
  np.testing.assert_array_equal(sampled, MAP_LABELS)
  # Unequal sds move the boundary toward the narrow cluster.
  assert 1.0 < fit["boundary"] < results["reference"]["boundary"]


# ------------------------------------------------------------ VI and NUTS

def test_vi_and_nuts(run):
  results, _, _ = run
  vi, nuts = results["vi"]["summary"], results["nuts"]
  assert results["vi"]["converged"]
  # q(pi) = Dirichlet(0.5 + 3, 0.5 + 2): E[pi] = 3.5 / 6 and 2.5 / 6.
  np.testing.assert_allclose(vi["weights"], [3.5 / 6, 2.5 / 6], atol=1e-6)
  np.testing.assert_array_equal(results["vi"]["assign"], MAP_LABELS)
  sampled = results["vi"]["sampled"]
  assert sampled.shape == (5,) and set(sampled.tolist()) <= {0, 1}

  summary = nuts["summary"]
  for name in ("weights", "means", "stddevs"):
    assert np.all(np.isfinite(summary[name]["r_hat"])), name
    assert np.all(np.isfinite(summary[name]["ess"])), name
  # The posterior of the locs: NUTS within 3 sd of the VI means.
  gap = np.abs(summary["means"]["mean"] - vi["means"])
  assert np.all(gap < 3 * summary["means"]["sd"]), (gap, summary["means"])
  assert np.all(summary["means"]["sd"] > 0.1)
  assert np.all(np.abs(summary["weights"]["mean"] - vi["weights"]) < 0.1)
  # The chains stay in VI's labelling.
  assert nuts["swapped"] == 0
  assert nuts["result"].num_chains == 2 and nuts["result"].num_draws == 200

  p = nuts["assignment_probabilities"]
  np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-12)
  np.testing.assert_array_equal(nuts["labels"], MAP_LABELS)
  assert np.all(p[:2, 0] < 0.01) and np.all(p[2:, 0] > 0.99)
  assert np.all((nuts["entropy"] >= 0) & (nuts["entropy"] < 0.1))
  assert 1.0 < nuts["boundary"] < 10.0


# ---------------------------------------------------------------- output

def test_printed_tables_and_plots(run):
  results, text, out = run
  rows = {}
  for line in text.splitlines():
    cells = re.split(r"\s{2,}", line.strip())
    rows.setdefault(cells[0], cells[1:])
  assert rows["weight, cluster near 11"][:3] == ["0.625000"] * 3
  assert rows["weight, cluster near 0.5"][:3] == ["0.375000"] * 3
  assert rows["loc, cluster near 11"] == ["10.984463", "10.984462",
                                          "10.981322"]
  assert rows["best initial loss, -log p"][0] == "25.665585"
  for value in ("0", "1"):
    assert rows[value][:4] == ["1/1"] * 4
  for value in ("10", "11", "12"):
    assert rows[value][:4] == ["0/0"] * 4
  assert "R-hat" in text and "Notes:" in text

  names = {"posterior.png", "assignment_uncertainty.png", "density.png"}
  assert set(results["plots"]) == names
  for name in names:
    path = out / name
    assert path.read_bytes()[:8] == PNG_SIGNATURE, name
    assert str(path) in text


@pytest.mark.parametrize("argv", [["--num-chains", "1"], ["--n-init", "0"],
                                  ["--seed", "-1"], ["--nonsense"]])
def test_bad_arguments_exit_2(argv, capsys):
  with pytest.raises(SystemExit) as error:
    pyro_gmm.main(argv)
  assert error.value.code == 2
  assert "error" in capsys.readouterr().err


def test_out_path_that_is_a_file_exits_2(tmp_path, capsys):
  path = tmp_path / "taken"
  path.write_text("not a directory")
  with pytest.raises(SystemExit) as error:
    pyro_gmm.main(["--out", str(path)])
  assert error.value.code == 2
  assert "not a directory" in capsys.readouterr().err
