# Each target bootstraps the virtualenv it needs from nothing, and installs exactly uv.lock.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

# uv installs uv.lock. It lives in a venv of its own: `uv sync` makes $(VENV) exactly the lock,
# so uv inside $(VENV) would uninstall itself. Pinned, so every machine reads the lock the same.
UV_VERSION := 0.13.9
UV_VENV    ?= .venv-uv
UV         := $(UV_VENV)/bin/uv

# uv installs into $(VENV) with $(PYTHON)'s interpreter, never one it downloads itself (a fresh
# machine reaches PyPI, not uv's Python builds).
export UV_PROJECT_ENVIRONMENT := $(VENV)
export UV_PYTHON_DOWNLOADS := never

.PHONY: demo fleet-demo test lint typecheck pytest bench sandbox lock clean

$(UV):
	$(PYTHON) -m venv $(UV_VENV)
	$(UV_VENV)/bin/python -m pip install -q uv==$(UV_VERSION)

$(BIN)/python: | $(UV)
	$(UV) venv -q --python $(PYTHON) $(VENV)

# --compile-bytecode: this environment sets PYTHONDONTWRITEBYTECODE, so without it every process
# compiles Prefect's sources again (about 3.5 s of a CLI run here).
# --locked: stop with uv's message when pyproject.toml and uv.lock disagree, instead of
# installing something the tests never ran with. --inexact: `make demo` leaves the dev tools a
# developer already has; the dev target below is exact.
$(VENV)/.run-installed: pyproject.toml uv.lock | $(BIN)/python
	$(UV) sync -q --locked --inexact --compile-bytecode --extra fast
	touch $@

$(VENV)/.dev-installed: pyproject.toml uv.lock | $(BIN)/python
	$(UV) sync -q --locked --compile-bytecode --extra fast --extra dev
	touch $@ $(VENV)/.run-installed

## demo: start the sandbox, sync the sample extracts to both targets, show the audit trail
demo: $(VENV)/.run-installed
	$(BIN)/custsync demo

## fleet-demo: a Prefect server, two workers, 8 rate-limited merchants, one fleet run, an audit
fleet-demo: $(VENV)/.run-installed
	$(BIN)/python -m pipelines.fleet_demo

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

## lock: re-resolve uv.lock after editing pyproject.toml's dependencies (keeps the versions it can)
lock: | $(UV)
	$(UV) lock

clean:
	rm -rf $(VENV) $(UV_VENV) .pytest_cache .mypy_cache .ruff_cache data/*.duckdb data/*.duckdb.wal data/*.duckdb.tmp data/generated
