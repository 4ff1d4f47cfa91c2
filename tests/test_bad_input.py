"""Every public entry point's input checks: one parametrised test per row.

The rows are the rows of the README's "Bad input" table (a test below keeps
the two in step). Each case calls the entry point with one bad argument and
expects a `ValueError` or `TypeError` whose message names the argument and
echoes what it received. The command line's checks (exit status 2, one
line) are parametrised in tests/test_train_cli.py; resumable fits'
`backup_dir` in tests/test_fit_backup.py.
"""

import pathlib
import re

import numpy as np
import pytest
import tensorflow as tf

import tfgmm

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module")
def fitted():
  rng = np.random.default_rng(0)
  return tfgmm.fit(rng.normal(size=(200, 2)), 2, seed=0, n_init=1)


def _ragged_batches():
  batches = [np.zeros((4, 2), np.float32), np.zeros((4, 3), np.float32)]
  return tf.data.Dataset.from_generator(
      lambda: iter(batches), output_signature=tf.TensorSpec([None, None]))


X = np.random.default_rng(1).normal(size=(20, 2))

# Bad data: every entry point that takes data runs these (id, x, error, match).
BAD_DATA = [
    ("nan", np.array([[0.0, np.nan], [1.0, 2.0]]), ValueError,
     r"x\[0, 1\]=nan"),
    ("inf", np.array([[0.0, 1.0], [np.inf, 2.0]]), ValueError,
     r"x\[1, 0\]=inf"),
    ("rank1", np.zeros(5), ValueError, r"2 (or more )?dims.*x.shape=\(5,\)"),
    ("rank3", np.zeros((2, 2, 2)), ValueError, r"x.shape=\(2, 2, 2\)"),
    ("width", np.zeros((4, 3)), ValueError, r"2 features.*x.shape=\(4, 3\)"),
    ("empty", np.zeros((0, 2)), ValueError, r"at least one row.*\(0, 2\)"),
    ("strings", np.array([["a", "b"]]), TypeError, "numeric array.*'a'"),
    ("filename", "data.csv", TypeError, "numeric array.*'data.csv'"),
    ("objects", np.array([[None, 1.0]], dtype=object), TypeError,
     "dtype object"),
    ("complex", np.zeros((2, 2), complex), TypeError, "dtype complex128"),
    ("ragged", [[1.0, 2.0], [3.0]], ValueError, r"rectangular.*\[\[1.0, 2.0\]"),
]

# Row -> (how it takes data, the BAD_DATA ids that do not apply). Entry
# points without a model learn the width from the data.
DATA_ENTRY_POINTS = {
    # A str is a file path there (see the "files" cases below).
    "tfgmm.fit": (lambda m, x: tfgmm.fit(x, 2, n_init=1),
                  {"width", "filename"}),
    "BayesianGMM.initialize": (
        lambda m, x: tfgmm.BayesianGMM(2, 2).initialize(x), set()),
    "BayesianGMM.fit": (lambda m, x: tfgmm.BayesianGMM(2, 2).fit(x), set()),
    # Leading axes are batch axes here: [2, 2, 2] is a valid batch.
    "log_prob, responsibilities, assign": (lambda m, x: [
        m.log_prob(x), m.responsibilities(x), m.assign(x)], {"rank3"}),
    "BayesianGMM.elbo": (lambda m, x: m.elbo(x), set()),
    "tfgmm.make_dataset": (lambda m, x: tfgmm.make_dataset(x, 10),
                           {"width", "filename"}),
    # No rows (or x=None) is valid here: the chains then sample the prior.
    "tfgmm.mcmc.sample": (lambda m, x: tfgmm.mcmc.sample(
        m, x, num_results=1, num_burnin_steps=0), {"empty"}),
}

# (row, id, call(fitted), error, match)
ARGUMENT_CASES = [
    # ------------------------------------------------------------ constructor
    ("BayesianGMM(...)", "K<1", lambda m: tfgmm.BayesianGMM(0, 2), ValueError,
     "n_components` >= 1. Received: n_components=0"),
    ("BayesianGMM(...)", "K float", lambda m: tfgmm.BayesianGMM(2.5, 2),
     TypeError, "n_components=2.5"),
    ("BayesianGMM(...)", "K bool", lambda m: tfgmm.BayesianGMM(True, 2),
     TypeError, "n_components=True of type bool"),
    ("BayesianGMM(...)", "D<1", lambda m: tfgmm.BayesianGMM(2, -1),
     ValueError, "n_features=-1"),
    ("BayesianGMM(...)", "alpha0", lambda m: tfgmm.BayesianGMM(
        2, 2, weight_concentration=0.0), ValueError, "weight_concentration=0.0"),
    ("BayesianGMM(...)", "beta0", lambda m: tfgmm.BayesianGMM(
        2, 2, mean_precision=-1.0), ValueError, "mean_precision=-1.0"),
    ("BayesianGMM(...)", "a0", lambda m: tfgmm.BayesianGMM(
        2, 2, precision_concentration=0), ValueError,
     "precision_concentration=0"),
    ("BayesianGMM(...)", "b0 array", lambda m: tfgmm.BayesianGMM(
        2, 2, precision_rate=[1.0, -2.0]), ValueError,
     r"precision_rate=\[1.0, -2.0\]"),
    ("BayesianGMM(...)", "b0 nan", lambda m: tfgmm.BayesianGMM(
        2, 2, precision_rate=np.nan), ValueError, "finite.*precision_rate=nan"),
    ("BayesianGMM(...)", "m0 shape", lambda m: tfgmm.BayesianGMM(
        2, 2, mean_loc=[1.0, 2.0, 3.0]), ValueError, r"mean_loc.*shape \(3,\)"),
    ("BayesianGMM(...)", "m0 string", lambda m: tfgmm.BayesianGMM(
        2, 2, mean_loc="zero"), TypeError, "mean_loc='zero'"),
    ("BayesianGMM(...)", "method", lambda m: tfgmm.BayesianGMM(
        2, 2, method="em"), ValueError, "method.*Received: method='em'"),
    ("BayesianGMM(...)", "dtype", lambda m: tfgmm.BayesianGMM(
        2, 2, dtype="float16"), ValueError, "dtype='float16'"),
    ("BayesianGMM(...)", "step_size", lambda m: tfgmm.BayesianGMM(
        2, 2, step_size=1.5), ValueError, "step_size=1.5"),
    ("BayesianGMM(...)", "standardize", lambda m: tfgmm.BayesianGMM(
        2, 2, standardize="yes"), TypeError, "standardize='yes'"),
    ("BayesianGMM(...)", "seed<0", lambda m: tfgmm.BayesianGMM(
        2, 2, seed=-1), ValueError, "seed=-1"),
    ("BayesianGMM(...)", "seed str", lambda m: tfgmm.BayesianGMM(
        2, 2, seed="7"), TypeError, "seed='7'"),
    ("BayesianGMM(...)", "covariance_type", lambda m: tfgmm.BayesianGMM(
        2, 2, covariance_type="block"), ValueError, "covariance_type='block'"),
    ("BayesianGMM(...)", "weight_prior", lambda m: tfgmm.BayesianGMM(
        2, 2, weight_prior="dp"), ValueError, "weight_prior='dp'"),
    ("BayesianGMM(...)", "mean_prior", lambda m: tfgmm.BayesianGMM(
        2, 2, mean_prior="flat"), ValueError, "mean_prior='flat'"),
    ("BayesianGMM(...)", "missing", lambda m: tfgmm.BayesianGMM(
        2, 2, missing="drop"), ValueError, "missing='drop'"),
    ("BayesianGMM(...)", "nu0", lambda m: tfgmm.BayesianGMM(
        2, 2, covariance_type="full", degrees_of_freedom=0.5), ValueError,
     "degrees_of_freedom=0.5"),
    ("BayesianGMM(...)", "W0", lambda m: tfgmm.BayesianGMM(
        2, 2, covariance_type="full", scale_matrix=-np.eye(2)), ValueError,
     r"positive definite.*scale_matrix=\[\[-1.0"),
    ("BayesianGMM(...)", "independent+marginalize", lambda m: tfgmm.BayesianGMM(
        2, 2, mean_prior="independent", missing="marginalize"), ValueError,
     "mean_prior='independent'"),
    # -------------------------------------------------------------- tfgmm.fit
    ("tfgmm.fit", "no such file", lambda m: tfgmm.fit("no-such-*.csv", 2),
     ValueError, "x='no-such-\\*.csv', which matches none"),
    ("tfgmm.fit", "file options without files", lambda m: tfgmm.fit(
        X, 2, file_options={"columns": [0]}), ValueError, "file_options="),
    ("tfgmm.fit", "K<1", lambda m: tfgmm.fit(X, 0), ValueError,
     "n_components=0"),
    ("tfgmm.fit", "K str", lambda m: tfgmm.fit(X, "3"), TypeError,
     "n_components='3'"),
    ("tfgmm.fit", "method", lambda m: tfgmm.fit(X, 2, method="cavi2"),
     ValueError, "method='cavi2'"),
    ("tfgmm.fit", "tol", lambda m: tfgmm.fit(X, 2, tol=-1.0), ValueError,
     "tol=-1.0"),
    ("tfgmm.fit", "n_init", lambda m: tfgmm.fit(X, 2, n_init=0), ValueError,
     "n_init=0"),
    ("tfgmm.fit", "max_epochs", lambda m: tfgmm.fit(X, 2, max_epochs=0),
     ValueError, "max_epochs=0"),
    ("tfgmm.fit", "batch_size", lambda m: tfgmm.fit(X, 2, batch_size=-1),
     ValueError, "batch_size=-1"),
    ("tfgmm.fit", "weights<0", lambda m: tfgmm.fit(
        X, 2, sample_weight=-np.ones(20)), ValueError,
     r"sample_weight.*>= 0.*sample_weight\[0\]=-1.0"),
    ("tfgmm.fit", "weights length", lambda m: tfgmm.fit(
        X, 2, sample_weight=np.ones(3)), ValueError,
     r"shape \(20,\).*sample_weight.shape=\(3,\)"),
    ("tfgmm.fit", "weights nan", lambda m: tfgmm.fit(
        X, 2, sample_weight=np.full(20, np.nan)), ValueError,
     r"sample_weight\[0\]=nan"),
    ("tfgmm.fit", "weights zero", lambda m: tfgmm.fit(
        X, 2, sample_weight=np.zeros(20)), ValueError,
     "sample_weight.*positive sum"),
    ("tfgmm.fit", "weights strings", lambda m: tfgmm.fit(
        X, 2, sample_weight=["a"] * 20), TypeError, "sample_weight"),
    ("tfgmm.fit", "callbacks", lambda m: tfgmm.fit(X, 2, callbacks=3),
     TypeError, "callbacks=3"),
    ("tfgmm.fit", "verbose", lambda m: tfgmm.fit(X, 2, verbose="loud"),
     ValueError, "verbose='loud'"),
    ("tfgmm.fit", "unknown option", lambda m: tfgmm.fit(X, 2, colour=1),
     ValueError, "colour"),
    ("tfgmm.fit", "backup_dir file", lambda m: tfgmm.fit(
        X, 2, backup_dir=__file__), ValueError, "not a directory.*backup_dir="),
    ("tfgmm.fit", "backup_dir type", lambda m: tfgmm.fit(
        X, 2, backup_dir=3), TypeError, "backup_dir=3"),
    # -------------------------------------------------------------- initialize
    ("BayesianGMM.initialize", "n_init", lambda m: tfgmm.BayesianGMM(
        2, 2).initialize(X, n_init=0), ValueError, "n_init=0"),
    ("BayesianGMM.initialize", "births", lambda m: tfgmm.BayesianGMM(
        2, 2).initialize(X, births=-1), ValueError, "births=-1"),
    ("BayesianGMM.initialize", "split_merges", lambda m: tfgmm.BayesianGMM(
        2, 2).initialize(X, split_merges=-1), ValueError, "split_merges=-1"),
    ("BayesianGMM.initialize", "deletes", lambda m: tfgmm.BayesianGMM(
        2, 2).initialize(X, deletes=1.5), TypeError, "deletes=1.5"),
    ("BayesianGMM.initialize", "labels", lambda m: tfgmm.BayesianGMM(
        2, 2).initialize(X, labels=np.full(len(X), 2)), ValueError,
     r"`labels`.*values 2 to 2"),
    ("BayesianGMM.initialize", "max_iter", lambda m: tfgmm.BayesianGMM(
        2, 2).initialize(X, max_iter=0), ValueError, "max_iter=0"),
    ("BayesianGMM.initialize", "num_examples", lambda m: tfgmm.BayesianGMM(
        2, 2).initialize(X, num_examples=0), ValueError, "num_examples=0"),
    ("BayesianGMM.initialize", "sample_size", lambda m: tfgmm.BayesianGMM(
        2, 2).initialize(X, sample_size=0), ValueError, "sample_size=0"),
    ("BayesianGMM.initialize", "unbatched dataset",
     lambda m: tfgmm.BayesianGMM(2, 2).initialize(
         tf.data.Dataset.from_tensor_slices(X)), ValueError,
     r"x \(batch 0\)` with 2 dims.*shape=\(2,\)"),
    ("BayesianGMM.initialize", "batches change width",
     lambda m: tfgmm.BayesianGMM(2, 2).initialize(_ragged_batches()),
     ValueError, r"batch 1.*2 features.*\(4, 3\)"),
    ("BayesianGMM.initialize", "infinite dataset",
     lambda m: tfgmm.BayesianGMM(2, 2).initialize(
         tf.data.Dataset.from_tensor_slices(X).batch(2).repeat()), ValueError,
     "`x` to be a finite dataset.*Received an infinite dataset"),
    # -------------------------------------------------------------- model.fit
    ("BayesianGMM.fit", "weights", lambda m: tfgmm.BayesianGMM(2, 2).fit(
        X, sample_weight=np.ones(5)), ValueError,
     r"sample_weight.shape=\(5,\)"),
    ("BayesianGMM.fit", "batches change width", lambda m: tfgmm.BayesianGMM(
        2, 2).fit(_ragged_batches()), ValueError, r"batch 1.*\(4, 3\)"),
    ("BayesianGMM.fit", "unbatched dataset", lambda m: tfgmm.BayesianGMM(
        2, 2).fit(tf.data.Dataset.from_tensor_slices(X)), ValueError,
     r"\[B, D\] batches"),
    # -------------------------------------------------------------- inference
    ("log_prob, responsibilities, assign", "before fitting",
     lambda m: tfgmm.BayesianGMM(2, 2).log_prob(X), ValueError,
     "never initialised"),
    ("log_prob, responsibilities, assign", "temperature<0",
     lambda m: m.assign(X, temperature=-1), ValueError, "temperature=-1"),
    ("log_prob, responsibilities, assign", "temperature nan",
     lambda m: m.assign(X, temperature=np.nan), ValueError, "temperature=nan"),
    ("log_prob, responsibilities, assign", "seed",
     lambda m: m.assign(X, temperature=1.0, seed="a"), TypeError, "seed='a'"),
    ("model(x)", "before fitting", lambda m: tfgmm.BayesianGMM(2, 2)(
        tf.constant(X)), ValueError, "never initialised"),
    ("model(x)", "width", lambda m: m(tf.zeros((3, 3))), ValueError,
     r"\[N, 2\].*inputs.shape=\(3, 3\)"),
    ("model(x)", "rank", lambda m: m(tf.zeros((3,))), ValueError,
     r"inputs.shape=\(3,\)"),
    ("model(x)", "nan", lambda m: m(tf.constant([[0.0, 1.0], [np.nan, 0.0]])),
     ValueError, r"inputs\[1, 0\]=nan"),
    ("BayesianGMM.predict, evaluate", "predict before fitting",
     lambda m: tfgmm.BayesianGMM(2, 2).predict(X, verbose=0), ValueError,
     "`predict` needs a fitted model"),
    ("BayesianGMM.predict, evaluate", "evaluate before fitting",
     lambda m: tfgmm.BayesianGMM(2, 2).evaluate(X, verbose=0), ValueError,
     "`evaluate` needs a fitted model"),
    ("BayesianGMM.sample", "before fitting",
     lambda m: tfgmm.BayesianGMM(2, 2).sample(3), ValueError,
     "never initialised"),
    ("BayesianGMM.sample", "n<1", lambda m: m.sample(0), ValueError, "n=0"),
    ("BayesianGMM.sample", "n str", lambda m: m.sample("3"), TypeError,
     "n='3'"),
    ("BayesianGMM.sample", "seed<0", lambda m: m.sample(3, seed=-1),
     ValueError, "seed=-1"),
    ("BayesianGMM.elbo", "before fitting",
     lambda m: tfgmm.BayesianGMM(2, 2).elbo(X), ValueError,
     "never initialised"),
    ("BayesianGMM.elbo", "weights", lambda m: m.elbo(
        X, sample_weight=np.ones(4)), ValueError,
     r"sample_weight.shape=\(4,\)"),
    ("posterior_mean, posterior_summary", "before fitting",
     lambda m: tfgmm.BayesianGMM(2, 2).posterior_mean(), ValueError,
     "never initialised"),
    ("posterior_mean, posterior_summary", "summary before fitting",
     lambda m: tfgmm.BayesianGMM(2, 2).posterior_summary(), ValueError,
     "never initialised"),
    # ----------------------------------------------------------------- export
    ("BayesianGMM.export", "before fitting",
     lambda m: tfgmm.BayesianGMM(2, 2).export("never-written"), ValueError,
     "never initialised"),
    ("BayesianGMM.export", "version<0", lambda m: m.export(
        "never-written", version=-1), ValueError, "version=-1"),
    ("BayesianGMM.export", "version str", lambda m: m.export(
        "never-written", version="a"), TypeError, "version='a'"),
    ("BayesianGMM.export", "foreign directory", lambda m: m.export(
        pathlib.Path(__file__).parent), ValueError,
     "filepath=.*holds other files"),
    # ------------------------------------------------------------ make_dataset
    ("tfgmm.make_dataset", "batch_size", lambda m: tfgmm.make_dataset(X, 0),
     ValueError, "batch_size=0"),
    ("tfgmm.make_dataset", "seed", lambda m: tfgmm.make_dataset(
        X, 10, seed=-2), ValueError, "seed=-2"),
    ("tfgmm.make_dataset", "no such file", lambda m: tfgmm.make_dataset(
        "no-such-file.csv", 10), ValueError,
     "x='no-such-file.csv', which matches none"),
    ("tfgmm.make_dataset", "shuffle", lambda m: tfgmm.make_dataset(
        X, 10, shuffle="yes"), TypeError, "shuffle='yes'"),
    ("tfgmm.make_dataset", "missing", lambda m: tfgmm.make_dataset(
        X, 10, missing="drop"), ValueError, "missing='drop'"),
    ("tfgmm.make_dataset", "weights", lambda m: tfgmm.make_dataset(
        X, 10, sample_weight=np.ones(2)), ValueError,
     r"sample_weight.shape=\(2,\)"),
    # -------------------------------------------------------------------- mcmc
    ("tfgmm.mcmc.sample", "model", lambda m: tfgmm.mcmc.sample("m", X),
     TypeError, "model of type str"),
    ("tfgmm.mcmc.sample", "before fitting", lambda m: tfgmm.mcmc.sample(
        tfgmm.BayesianGMM(2, 2), X), ValueError, "needs a fitted model"),
    ("tfgmm.mcmc.sample", "num_results", lambda m: tfgmm.mcmc.sample(
        m, X, num_results=0), ValueError, "num_results=0"),
    ("tfgmm.mcmc.sample", "kernel", lambda m: tfgmm.mcmc.sample(
        m, X, kernel="gibbs"), ValueError, "kernel='gibbs'"),
    ("tfgmm.mcmc.sample", "target_accept_prob", lambda m: tfgmm.mcmc.sample(
        m, X, target_accept_prob=1.5), ValueError, "target_accept_prob=1.5"),
]


# Rows whose parametrised test lives beside the rest of their tests:
# row -> (test file, test function).
TESTED_ELSEWHERE = {
    "tfgmm.cli": ("test_train_cli.py", "test_data_errors_exit_2_with_one_line"),
    'tfgmm.fit(method="map")': ("test_map.py", "test_bad_arguments"),
    "tfgmm.layers.MixtureLoss": ("test_layers.py", "test_bad_arguments"),
    "tfgmm.select_components": ("test_selection.py", "test_bad_arguments"),
    "tfgmm.metrics": ("test_metrics.py",
                      "test_bad_input_raises_naming_the_argument"),
    "tfgmm.plotting": ("test_plotting.py",
                       "test_plot_density_2d_argument_errors"),
}


def _rows_of_the_readme_table():
  text = README.read_text()
  section = text.split("### Bad input", 1)[1].split("\n#", 1)[0]
  rows = re.findall(r"^\| `([^`]+)` \|", section, re.M)
  return [row for row in rows if row != "entry point"]


def test_the_readme_table_lists_exactly_the_tested_entry_points():
  tested = ({row for row, *_ in ARGUMENT_CASES} | set(DATA_ENTRY_POINTS)
            | set(TESTED_ELSEWHERE))
  assert sorted(_rows_of_the_readme_table()) == sorted(tested)


@pytest.mark.parametrize("row", sorted(TESTED_ELSEWHERE))
def test_rows_tested_elsewhere_have_a_parametrised_test(row):
  filename, function = TESTED_ELSEWHERE[row]
  source = (pathlib.Path(__file__).parent / filename).read_text()
  definition = source.index(f"\ndef {function}(")
  decorators = source[:definition].rsplit("\n\n", 1)[-1]
  assert decorators.lstrip().startswith("@pytest.mark.parametrize("), (
      filename, function)


@pytest.mark.parametrize(
    "row, x, error, match",
    [pytest.param(row, x, error, match, id=f"{row}: {case}")
     for row, (_, skip) in DATA_ENTRY_POINTS.items()
     for case, x, error, match in BAD_DATA if case not in skip])
def test_bad_data(fitted, row, x, error, match):
  call, _ = DATA_ENTRY_POINTS[row]
  with pytest.raises(error, match=match):
    call(fitted, x)


@pytest.mark.parametrize(
    "call, error, match",
    [pytest.param(call, error, match, id=f"{row}: {case}")
     for row, case, call, error, match in ARGUMENT_CASES])
def test_bad_argument(fitted, call, error, match):
  with pytest.raises(error, match=match):
    call(fitted)
