# Each target bootstraps the virtualenv it needs from nothing.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint typecheck pytest bench sandbox clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.run-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[fast]'
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@ $(VENV)/.run-installed

## demo: start the sandbox, sync the sample extracts to both targets, show the audit trail
demo: $(VENV)/.run-installed
	$(BIN)/custsync demo

## test: lint, format check, type check and the whole test suite
test: $(VENV)/.dev-installed lint typecheck pytest

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy

pytest: $(VENV)/.dev-installed
	$(BIN)/pytest

## bench: run every benchmark script (minutes; prints JSON figures)
bench: $(VENV)/.dev-installed
	for f in tests/benchmarks/*.py; do $(BIN)/python $$f || exit 1; done

sandbox: $(VENV)/.run-installed
	$(BIN)/custsync sandbox

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache data/*.duckdb data/*.duckdb.wal data/generated
