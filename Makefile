# Pigeon Node. `make` lists the targets; `make run` and `make test` are all a new user needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FUZZ_SECONDS ?= 30

.DEFAULT_GOAL := help
.PHONY: help setup run test lint bench fuzz clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11 or newer is needed"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --only-binary=sqlcipher3 -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP) ## Create .venv and install the project with its dev tools

run: setup ## Demo: the most complete thing that exists so far
	$(BIN)/pigeon selftest

lint: setup ## ruff, ruff format, mypy --strict, import-linter room contracts
	$(BIN)/ruff check node tests bench fuzz
	$(BIN)/ruff format --check node tests bench fuzz
	$(BIN)/mypy
	$(BIN)/lint-imports

test: setup ## Lint, then the default test tier (no hardware, root or network needed)
	$(MAKE) --no-print-directory lint
	$(BIN)/pytest

bench: setup ## Benchmarks; each writes JSON to bench/results/
	@for f in bench/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

fuzz: setup ## Short atheris runs of every parser (FUZZ_SECONDS each)
	@for f in fuzz/fuzz_*.py; do echo "== $$f"; $(BIN)/python $$f -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 || exit 1; done

clean: ## Remove the venv and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis build dist
