# Stackwire: `make run` starts everything, `make test` proves it. `make help` lists the rest.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
TEST_WORKERS ?= 2

.DEFAULT_GOAL := help
.PHONY: help install run test lint format typecheck bench chaos clean all

help: ## show the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 12

$(STAMP): pyproject.toml devtools/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev,local]' -e ./devtools
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install the project with its dev tools

run: $(STAMP) ## start the whole system (embedded PostgreSQL/Redis unless DATABASE_URL/REDIS_URL are set)
	$(BIN)/stackwire up

test: $(STAMP) ## the whole test suite (real PostgreSQL, Redis and worker processes), in parallel
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile -m "not chaos"

lint: $(STAMP) ## ruff (lint, format, banned APIs), import-linter (the layering) and mypy (tests too)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

format: $(STAMP) ## apply ruff's formatting and safe fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: $(STAMP) ## mypy only
	$(BIN)/mypy

bench: $(STAMP) ## benchmarks on the real servers; writes docs/benchmarks.md
	$(BIN)/stackwire bench --output docs/benchmarks.md

chaos: $(STAMP) ## fault-injection scenarios against the running system (slow)
	$(BIN)/pytest -m chaos -p no:cacheprovider

all: lint test ## lint, then test

clean: ## remove the virtualenv, caches and local data
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache var
