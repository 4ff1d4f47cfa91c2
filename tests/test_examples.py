"""Reduced runs of examples/tfp_blog.py (the 2019 TFP blog's mixture)."""

import math
import re
import sys

import numpy as np
import pytest

from examples import choosing_k
from examples import tfp_blog
from tests.helpers import PNG_SIGNATURE


def parse_table(text):
  """The comparison table of tfp_blog.py as {row: [cell (a), (b), (c)]}.

  Rows above the clusters are keyed by label; cluster rows by
  (centre, label), e.g. ("2, 0", "weight"). Cells are separated by at least
  two spaces; no cell or label holds two spaces in a row.
  """
  rows, cluster = {}, None
  for line in text.splitlines():
    match = re.fullmatch(r"  cluster at \((.+)\)", line)
    if match:
      cluster = match.group(1)
      continue
    parts = re.split(r"\s{2,}", line.strip())
    if len(parts) == 4:
      rows[parts[0] if cluster is None else (cluster, parts[0])] = parts[1:]
  return rows


def estimate(cell):
  """The number in a cell: "0.3325 ± 0.0086" -> 0.3325, "-3.9 [c]" -> -3.9."""
  return float(cell.split()[0])


def test_blog_data_reproduces_the_blog_points():
  x, labels = tfp_blog.blog_data(np.random.RandomState(12345))
  # The blog: np.random.seed(12345); X = np.random.randn(3000, 2) + shifts.
  raw = np.random.RandomState(12345).randn(3000, 2).astype(np.float32)
  np.testing.assert_array_equal(x[:1000], raw[:1000] + np.float32([2, 0]))
  np.testing.assert_array_equal(x[1000:2000],
                                raw[1000:2000] - np.float32([2, 4]))
  np.testing.assert_array_equal(x[2000:], raw[2000:] + np.float32([-2, 4]))
  assert x.dtype == np.float32
  np.testing.assert_array_equal(np.bincount(labels), [1000, 1000, 1000])


def test_reduced_run_prints_the_three_fits(tmp_path, capsys):
  pytest.importorskip("sklearn")
  plots = tmp_path / "plots"
  assert tfp_blog.main(["--epochs", "3", "--init", "tfgmm", "--plots",
                        str(plots)]) == 0
  out = capsys.readouterr().out
  rows = parse_table(out)

  assert rows["fit time (s)"] and "(a) blog recipe" in out
  header = next(line for line in out.splitlines()
                if "(a) blog recipe" in line and "(c) defaults" in line)
  assert "(b) CAVI" in header
  assert rows["epochs"][0] == "3 (fixed)"
  assert all(cell.endswith("(converged)") for cell in rows["epochs"][1:])
  for label in ("fit time (s)", "bound/point, elbo(x)/N", "-loss, last epoch",
                "held-out mean log p(x)", "ARI vs true labels"):
    assert all(math.isfinite(estimate(cell)) for cell in rows[label]), label

  # The natural (CAVI) fits recover the clusters. Clusters 5.7 units apart
  # overlap little: ~0.2% of the points lie nearer another centre, so
  # even a perfect fit scores ~0.99, and a merged or split cluster < 0.6.
  ari = [estimate(cell) for cell in rows["ARI vs true labels"]]
  assert ari[1] > 0.95 and ari[2] > 0.95, ari

  # (b) is CAVI's optimum of the bound (a) climbs, on the same model; 18
  # Adam(1e-3) steps from the same initialisation stay close to it.
  bound_a, bound_b, _ = [estimate(c) for c in rows["bound/point, elbo(x)/N"]]
  assert bound_a <= bound_b + 1e-4
  assert bound_a > bound_b - 0.01

  # Held-out: near the generator's own expected log density, log(1/3) minus
  # the 2-D unit Gaussian's entropy log(2 pi) + 1 = -3.9365 (ignoring the
  # clusters' tiny overlap). The mean of 3000 points has sd ~0.018 nats.
  expected = -math.log(3) - math.log(2 * math.pi) - 1
  for cell in rows["held-out mean log p(x)"]:
    assert abs(estimate(cell) - expected) < 0.06, cell

  for c, (cx, cy) in enumerate(tfp_blog.CENTRES):
    cluster = f"{cx:g}, {cy:g}"
    # Each cluster holds exactly 1000 of the 3000 points; the posterior sd
    # of its weight is sqrt((1/3)(2/3) / 3007) = 0.0086, so 0.02 is ~2.3
    # sd, while a fit that merged or split clusters is off by >= 0.16.
    for cell in rows[cluster, "weight"][:2]:
      assert abs(estimate(cell) - 1 / 3) < 0.02, (cluster, cell)
    # A mean of 1000 unit-variance points has sd 0.032: 0.15 is ~5 sd.
    for d, centre in enumerate((cx, cy)):
      for cell in rows[cluster, f"mean x{d}"]:
        assert abs(estimate(cell) - centre) < 0.15, (cluster, d, cell)
      for cell in rows[cluster, f"stddev x{d}"]:
        assert abs(estimate(cell) - 1.0) < 0.15, (cluster, d, cell)
    for label in ("weight", "mean x0", "stddev x1"):
      sds = [float(cell.split(" ± ")[1]) for cell in rows[cluster, label]]
      assert all(0 < sd < 0.1 for sd in sds), (cluster, label, sds)

  png = plots / "bound_per_epoch.png"
  assert png.is_file() and png.read_bytes()[:8] == PNG_SIGNATURE
  assert f"Plot: {png}" in out


def test_blog_start_runs(capsys):
  assert tfp_blog.main(["--epochs", "2", "--init", "blog", "--seed", "7"]) == 0
  out = capsys.readouterr().out
  rows = parse_table(out)
  assert rows["CAVI iterations in init"][0] == "- (blog start)"
  assert rows["epochs"][0] == "2 (fixed)"
  # Two epochs from a random start: far from fitted, but finite.
  for label in ("bound/point, elbo(x)/N", "-loss, last epoch",
                "held-out mean log p(x)"):
    assert all(math.isfinite(estimate(cell)) for cell in rows[label]), label


def test_blog_start_draws_the_blog_distributions():
  import tfgmm  # pylint: disable=import-outside-toplevel

  x, _ = tfp_blog.blog_data(np.random.RandomState(0), n_per_cluster=50)
  model = tfgmm.BayesianGMM(3, 2, method="sampled", mean_prior="independent",
                            standardize=False, seed=0, **tfp_blog.BLOG_PRIOR)
  model.initialize(x, n_init=1, max_iter=1, births=0)
  tfp_blog.blog_start(model, seed=0)
  q = model.posterior()
  np.testing.assert_allclose(q.weight_concentration.numpy(), 2.0, rtol=1e-6)
  for field in (q.precision_concentration, q.precision_rate):
    assert np.all((field.numpy() >= 4) & (field.numpy() <= 6))
  assert np.all(np.abs(q.mean_loc.numpy()) < 5)
  assert np.all(q.mean_precision.numpy() > 0)


def test_ari_is_skipped_without_scikit_learn(monkeypatch):
  monkeypatch.setitem(sys.modules, "sklearn", None)  # import raises
  assert tfp_blog.adjusted_rand_index([0, 0, 1], [1, 1, 0]) is None
  assert "ARI skipped" in tfp_blog.format_notes(3000, ari_missing=True)
  assert "ARI skipped" not in tfp_blog.format_notes(3000, ari_missing=False)


@pytest.mark.parametrize("argv", [["--epochs", "0"], ["--seed", "-1"],
                                  ["--init", "kmeans"], ["--nonsense"]])
def test_bad_arguments_exit_2(argv, capsys):
  assert tfp_blog.main(argv) == 2
  assert "error" in capsys.readouterr().err


def test_plots_path_that_is_a_file_exits_2(tmp_path, capsys):
  path = tmp_path / "taken"
  path.write_text("not a directory")
  assert tfp_blog.main(["--plots", str(path)]) == 2
  assert "is not a directory" in capsys.readouterr().err


# ------------------------------------------------------------- choosing K

def test_choosing_k_reduced_run(tmp_path, capsys):
  assert choosing_k.main(["--quick", "--plots", str(tmp_path)]) == 0
  out = capsys.readouterr().out
  rows = [re.split(r"\s{2,}", line.strip()) for line in out.splitlines()
          if line.strip().startswith(choosing_k.DATASETS)]
  assert [row[0].split()[0] for row in rows] == list(choosing_k.DATASETS), out
  for row in rows:
    picks = [int(k) for k in row[1:]]
    assert len(picks) == 5 and all(1 <= k <= 5 for k in picks), row
  # Measured (seed 0): iris 2-3 by every criterion, the two overlapping
  # species merged or not; never 1 or 5.
  assert all(2 <= int(k) <= 3 for k in rows[0][1:]), out
  # Old Faithful's short and long eruptions: the default criterion finds
  # the two groups, and no way of choosing sees one or more than three.
  assert int(rows[2][1]) == 2, out
  assert all(2 <= int(k) <= 3 for k in rows[2][1:]), out
  for name in choosing_k.DATASETS:
    assert (tmp_path / f"selection_{name}.png").read_bytes()[:8] == (
        PNG_SIGNATURE)


def test_choosing_k_bad_arguments_exit_2(capsys):
  assert choosing_k.main(["--seed", "x"]) == 2
  assert "error" in capsys.readouterr().err
