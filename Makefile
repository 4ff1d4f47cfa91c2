# Two commands set everything up: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test benchmark clean

$(STAMP): setup.cfg setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) scripts/train.py --demo --export saved_models/demo --plots plots

# Two workers (CI has two cores); a module's tests stay on one worker, so
# its module-scoped fixtures are built once.
test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile

benchmark: $(STAMP)
	$(PY) scripts/benchmark.py

clean:
	rm -rf $(VENV) plots build *.egg-info
