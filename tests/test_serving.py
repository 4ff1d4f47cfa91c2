"""Serving an export: through the TensorFlow C API, and with saved_model_cli.

`tests/serving/client.c` is a small client on the TensorFlow C API, the
library TensorFlow Serving embeds. It is compiled against the headers and
shared libraries inside the installed TensorFlow wheel, loads a versioned
export with the "serve" tag, reads the signature's tensor names from the
loaded MetaGraphDef (as TF Serving does) and runs the session on a batch.
"""

import ctypes
import os
import re
import shutil
import subprocess
import sys
import types

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

import tfgmm

CLIENT_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                             "serving", "client.c")
# The C API's session and graph half lives in libtensorflow_cc, its tensor
# and status half in libtensorflow_framework.
C_API_LIBRARIES = ("libtensorflow_cc.so.2", "libtensorflow_framework.so.2")
C_API_SYMBOLS = (
    "TF_LoadSessionFromSavedModel", "TF_SessionRun", "TF_GraphOperationByName",
    "TF_CloseSession", "TF_DeleteSession", "TF_NewSessionOptions",
    "TF_NewGraph", "TF_NewBuffer", "TF_NewStatus", "TF_GetCode", "TF_Message",
    "TF_AllocateTensor", "TF_TensorData", "TF_TensorByteSize", "TF_TensorType",
    "TF_NumDims", "TF_Dim", "TF_DeleteTensor")
TF_FLOAT, TF_INT32 = 1, 3  # TF_DataType

# The saved_model_cli commands of the README's "Export and serving" section,
# exactly as printed there. They run from the repository root, where
# `saved_models/gmm/1` is the export and `.venv` the virtual environment.
README_SAVED_MODEL_CLI = r"""
.venv/bin/saved_model_cli run --dir saved_models/gmm/1 --tag_set serve \
    --signature_def serving_default \
    --input_exprs 'x=[[2.0, 0.0], [-2.0, 0.0]]'

.venv/bin/saved_model_cli run --dir saved_models/gmm/1 --tag_set serve \
    --signature_def responsibilities \
    --input_exprs 'x=[[2.0, 0.0], [-2.0, 0.0]]'

.venv/bin/saved_model_cli run --dir saved_models/gmm/1 --tag_set serve \
    --signature_def assign \
    --input_exprs 'x=[[2.0, 0.0], [-2.0, 0.0]]'

.venv/bin/saved_model_cli run --dir saved_models/gmm/1 --tag_set serve \
    --signature_def sample --input_exprs 'n=3;seed=7'
"""
README_QUERY = [[2.0, 0.0], [-2.0, 0.0]]  # the x of the commands above

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


class Export(types.SimpleNamespace):

  def __repr__(self):
    return f"Export({self.path!r})"


@pytest.fixture(scope="module")
def exported(blog, tmp_path_factory):
  """A fitted model and its export at <root>/saved_models/gmm/1."""
  x, _ = blog
  model = tfgmm.fit(x, 3, seed=0, n_init=1)
  root = tmp_path_factory.mktemp("serving")
  path = model.export(root / "saved_models" / "gmm", version=1)
  assert path == str(root / "saved_models" / "gmm" / "1")
  with open(os.path.join(path, "saved_model.pb"), "rb") as f:
    saved_model = saved_model_pb2.SavedModel.FromString(f.read())
  (meta_graph,) = saved_model.meta_graphs
  assert list(meta_graph.meta_info_def.tags) == ["serve"]
  return Export(model=model, x=x, root=root, path=path,
                signatures=meta_graph.signature_def)


def _c_api_libraries():
  """The wheel's C API libraries; fails if the wheel does not ship them."""
  lib_dir = tf.sysconfig.get_lib()
  paths = [os.path.join(lib_dir, name) for name in C_API_LIBRARIES]
  missing = [p for p in paths if not os.path.exists(p)]
  if missing:
    pytest.fail(f"The TensorFlow {tf.__version__} wheel has no "
                f"{', '.join(map(os.path.basename, missing))} in {lib_dir}: "
                "no TensorFlow C API to serve the export with.")
  handles = [ctypes.CDLL(p) for p in paths]
  absent = [name for name in C_API_SYMBOLS
            if not any(hasattr(h, name) for h in handles)]
  if absent:
    pytest.fail(f"The TensorFlow {tf.__version__} wheel's "
                f"{' and '.join(C_API_LIBRARIES)} do not export the C API "
                f"functions {', '.join(absent)}: cannot serve the export "
                "through the C API.")
  return paths


@pytest.fixture(scope="session")
def c_client(tmp_path_factory):
  """The compiled C client and the environment it runs in."""
  compiler = shutil.which("cc") or shutil.which("gcc")
  if compiler is None:
    pytest.skip("No C compiler (cc or gcc) on PATH: cannot build the "
                "TensorFlow C API client tests/serving/client.c.")
  include = tf.sysconfig.get_include()
  if not os.path.exists(os.path.join(include, "tensorflow", "c", "c_api.h")):
    pytest.fail(f"The TensorFlow {tf.__version__} wheel ships no C API "
                f"headers (no tensorflow/c/c_api.h under {include}).")
  libraries = _c_api_libraries()
  lib_dirs = sorted({os.path.dirname(p) for p in libraries})
  exe = str(tmp_path_factory.mktemp("c_client") / "client")
  command = [compiler, "-std=c11", "-O1", "-Wall", "-Wextra", f"-I{include}",
             CLIENT_SOURCE, "-o", exe]
  command += [f"-L{d}" for d in lib_dirs]
  command += [f"-l:{os.path.basename(p)}" for p in libraries]
  # GNU ld takes ~10 s (and 1 GB) to read libtensorflow_cc's symbols, gold a
  # fifth of that: try gold first where it exists.
  attempts = [command + ["-fuse-ld=gold"]] if shutil.which("ld.gold") else []
  for attempt in attempts + [command]:
    done = subprocess.run(attempt, capture_output=True, text=True,
                          timeout=300, check=False)
    if done.returncode == 0:
      break
  assert done.returncode == 0, (
      f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  env["LD_LIBRARY_PATH"] = os.pathsep.join(
      lib_dirs + [p for p in [os.environ.get("LD_LIBRARY_PATH")] if p])
  return exe, env


def run_client(c_client, path, signature, batch, tmp_path):
  exe, env = c_client
  batch = np.ascontiguousarray(batch, np.float32)
  in_path, out_path = tmp_path / "batch.f32", tmp_path / f"{signature}.out"
  batch.tofile(in_path)
  return subprocess.run(
      [exe, path, signature, str(in_path), *map(str, batch.shape),
       str(out_path)], capture_output=True, text=True, timeout=300, env=env,
      check=False), out_path


def test_the_c_api_client_serves_the_export_like_the_model(c_client, exported,
                                                           tmp_path):
  model, batch = exported.model, exported.x[::15].astype(np.float32)  # [200, 2]
  expected = {
      "serving_default": ("log_prob", TF_FLOAT, np.float32,
                          model.log_prob(batch), [200]),
      "responsibilities": ("responsibilities", TF_FLOAT, np.float32,
                           model.responsibilities(batch), [200, 3]),
      "assign": ("labels", TF_INT32, np.int32, model.assign(batch), [200]),
  }
  for signature, (key, dtype, np_dtype, want, shape) in expected.items():
    done, out_path = run_client(c_client, exported.path, signature, batch,
                                tmp_path)
    assert done.returncode == 0, f"{signature}:\n{done.stderr[-3000:]}"
    # The tensor names the client read from the MetaGraphDef are the
    # SignatureDef's.
    sig = exported.signatures[signature]
    assert done.stdout.splitlines() == [
        f"input x {sig.inputs['x'].name}",
        f"output {key} {sig.outputs[key].name} {dtype} "
        + ",".join(map(str, shape))], signature
    got = np.fromfile(out_path, np_dtype).reshape(shape)
    if np_dtype == np.int32:
      np.testing.assert_array_equal(got, want, err_msg=signature)
    else:
      np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7,
                                 err_msg=signature)


def test_the_c_api_client_reports_what_it_cannot_serve(c_client, exported,
                                                       tmp_path):
  batch = exported.x[:4]
  done, _ = run_client(c_client, exported.path, "no_such_signature", batch,
                       tmp_path)
  assert done.returncode == 1
  assert "error: no signature no_such_signature in the SavedModel" in (
      done.stderr)
  done, _ = run_client(c_client, exported.path, "sample", batch, tmp_path)
  assert done.returncode == 1
  assert "error: signature sample has more than one input" in done.stderr


def _printed_values(stdout, key):
  """The numbers saved_model_cli printed for output `key`."""
  header = f"Result for output key {key}:\n"
  assert header in stdout, stdout
  return np.array([float(v) for v in _NUMBER.findall(
      stdout.split(header, 1)[1].split("Result for output key", 1)[0])])


def test_the_readme_saved_model_cli_commands_work_as_printed(exported):
  # Lay out the repository root the README's commands run from: the export
  # is already at saved_models/gmm/1; .venv/bin/saved_model_cli is this
  # environment's.
  bin_dir = exported.root / ".venv" / "bin"
  bin_dir.mkdir(parents=True, exist_ok=True)
  if not (bin_dir / "saved_model_cli").exists():
    os.symlink(os.path.join(os.path.dirname(sys.executable), "saved_model_cli"),
               bin_dir / "saved_model_cli")
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  commands = {re.search(r"--signature_def (\w+)", command).group(1): command
              for command in README_SAVED_MODEL_CLI.strip().split("\n\n")}
  assert sorted(commands) == sorted(
      name for name in exported.signatures if not name.startswith("__"))
  # One process per command, side by side; each loads TensorFlow (~7 s).
  running = {
      signature: subprocess.Popen(["sh", "-c", command], cwd=exported.root,
                                  env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
      for signature, command in commands.items()}
  results = {}
  try:
    for signature, process in running.items():
      results[signature] = (*process.communicate(timeout=300),
                            process.returncode)
  finally:
    for process in running.values():
      if process.poll() is None:
        process.kill()
        process.communicate()
  stdout = {}
  for signature, (out, err, returncode) in results.items():
    assert returncode == 0, f"{commands[signature]}\n{err[-3000:]}"
    stdout[signature] = out
  model, query = exported.model, np.array(README_QUERY)
  np.testing.assert_allclose(
      _printed_values(stdout["serving_default"], "log_prob"),
      model.log_prob(query), rtol=1e-5)
  np.testing.assert_allclose(
      _printed_values(stdout["responsibilities"], "responsibilities"),
      np.ravel(model.responsibilities(query)), rtol=1e-5, atol=1e-7)
  np.testing.assert_array_equal(_printed_values(stdout["assign"], "labels"),
                                model.assign(query))
  np.testing.assert_allclose(_printed_values(stdout["sample"], "samples"),
                             np.ravel(model.sample(3, seed=7)), rtol=1e-5)
