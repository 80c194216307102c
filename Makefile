# Developer entry points. Every target creates .venv on first use, so on a fresh
# clone each one is a single command. The venv is reinstalled whenever
# pyproject.toml changes (the stamp file below depends on it).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.sqlml-installed
PYTEST_ARGS ?=

.DEFAULT_GOAL := test
.PHONY: venv demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/sqlml demo

# Starts a private PostgreSQL server for the run unless SQLML_TEST_POSTGRES_URI is set.
test: $(STAMP)
	scripts/with-postgres.sh $(BIN)/pytest $(PYTEST_ARGS)

# Runs all four checks and fails at the end if any of them failed.
lint: $(STAMP)
	@status=0; \
	echo '$$ ruff check .'; $(BIN)/ruff check . || status=1; \
	echo '$$ ruff format --check .'; $(BIN)/ruff format --check . || status=1; \
	echo '$$ mypy'; $(BIN)/mypy || status=1; \
	echo '$$ lint-imports'; $(BIN)/lint-imports --no-cache || status=1; \
	exit $$status

bench: $(STAMP)
	scripts/with-postgres.sh $(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache src/*.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
