# The two commands in the README: `make demo` (a short sweep on the bundled real data into
# ./sweep.db) and `make test` (the whole suite, fault suite included). Both create the
# virtualenv and install the project on a fresh machine. `make test-unit` is the fast tier (no
# training, no PostgreSQL, no fault tests; tiers are set in tests/conftest.py).
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test test-unit test-fast test-faults lint install clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev,dashboard,notebook]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/sweep launch --study demo --n-trials 6
	$(VENV)/bin/sweep status demo
	@echo
	@echo "Next, on the demo study:"
	@echo "  $(VENV)/bin/sweep report demo --out report.html            # one HTML file: tables and figures"
	@echo "  $(VENV)/bin/sweep export demo --out demo-model             # the best trial's Keras model"
	@echo "  $(VENV)/bin/sweep confirm demo --top 1 --set epochs=2      # fresh seeds, scored on the test split"

test: $(STAMP)
	$(VENV)/bin/pytest tests

test-unit: $(STAMP)
	$(VENV)/bin/pytest tests -m unit -q

test-fast: $(STAMP)
	$(VENV)/bin/pytest tests -m "not faults"

test-faults: $(STAMP)
	$(VENV)/bin/pytest tests -m faults

lint: $(STAMP)
	$(VENV)/bin/ruff check sweep tests benchmarks
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) sweep.db sweep.db-* sweep.db.lock sweep.db.artifacts .pytest_cache
