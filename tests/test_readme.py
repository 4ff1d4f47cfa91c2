"""Every Python block of README.md runs, in order, as a reader would.

The blocks are extracted from the file (not copied), executed in one
namespace (later blocks use the tour's `x` and `model`) in a scratch
directory. A block that needs a slow setting states a reduced one in the
README itself (e.g. `max_epochs=20`), so what runs here is what a reader
runs.
"""

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def python_blocks(text):
  """[(line, code)] of the ```python blocks of a Markdown text."""
  blocks = []
  for match in re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M):
    blocks.append((text.count("\n", 0, match.start()) + 2, match.group(1)))
  return blocks


def test_python_blocks_are_found():
  blocks = python_blocks("a\n```python\nx = 1\n```\n```none\ny\n```\n")
  assert blocks == [(3, "x = 1\n")]
  assert len(python_blocks(README.read_text())) >= 10


def test_readme_python_blocks_run(tmp_path, monkeypatch):
  pytest.importorskip("sklearn")
  monkeypatch.chdir(tmp_path)
  namespace = {"__name__": "readme"}
  for line, code in python_blocks(README.read_text()):
    try:
      exec(compile(code, f"README.md:{line}", "exec"), namespace)  # pylint: disable=exec-used
    except Exception as error:  # pylint: disable=broad-except
      pytest.fail(f"README.md block at line {line} failed: {error!r}\n{code}")
