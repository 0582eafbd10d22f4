# Pigeon Node. `make` lists the targets; `make run` and `make test` are all a new user needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FUZZ_SECONDS ?= 30
# Debian packages the default test tier needs, as FILE:PACKAGE (FILE may be a glob): the browser
# tests drive Debian's Chromium; the BLE tests run BlueZ's D-Bus side on a private dbus-daemon;
# the relay's tests start a throwaway PostgreSQL (initdb, pg_ctl: off PATH on Debian).
APT_PACKAGES := /usr/bin/chromium:chromium /usr/bin/dbus-daemon:dbus-daemon \
	/usr/lib/postgresql/*/bin/pg_ctl:postgresql

.DEFAULT_GOAL := help
.PHONY: help setup system-packages run test test-bluez lint bench fuzz wheels image image-test image-wear image-pulled-plugs image-read-only image-first-boot-plugs test-ansible clean \
	host-tools-image host-tools-image-test host-tools-ansible host-tools-bluez

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11 or newer is needed"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --only-binary=sqlcipher3 -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP) system-packages ## Create .venv and install the project with its dev tools

system-packages: ## Install APT_PACKAGES that are missing (as root), or say what to install
	@missing=""; for pair in $(APT_PACKAGES); do \
		compgen -G "$${pair%%:*}" >/dev/null || missing="$$missing $${pair##*:}"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "Installing$$missing"; apt-get update -qq && apt-get install -y$$missing; \
	else \
		echo "Missing Debian packages:$$missing (sudo apt-get install$$missing); the tests that need them are skipped"; \
	fi

run: setup ## Demo: your node's page on https://localhost:8443 in a simulated neighbourhood
	$(BIN)/pigeon demo --data build/demo

lint: setup ## ruff, ruff format, mypy --strict, import-linter room contracts
	$(BIN)/ruff check node tests bench fuzz
	$(BIN)/ruff format --check node tests bench fuzz
	$(BIN)/mypy
	$(BIN)/lint-imports

test: setup ## Lint, then the default test tier (no hardware, root or network needed)
	$(MAKE) --no-print-directory lint
	$(BIN)/pytest

test-bluez: host-tools-bluez setup ## Real BlueZ tier: BLE nodes, app and bitchat phones in a QEMU VM (root; ~3 min build once, ~10-14 min run)
	PIP=$(BIN)/pip bash tests/bluez/build-rootfs.sh
	$(BIN)/pytest -m bluez tests/bluez -v -s -p no:cacheprovider

bench: setup ## Benchmarks; each writes JSON to bench/results/
	@for f in bench/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

fuzz: setup ## Short atheris runs of every parser (FUZZ_SECONDS each)
	@for f in fuzz/fuzz_*.py; do echo "== $$f"; $(BIN)/python $$f -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 || exit 1; done

wheels: setup ## The aarch64 wheelhouse a Pi installs from (build/wheels/aarch64; used by ansible/)
	bash image/wheels.sh

image: host-tools-image setup ## Build the SD-card image in build/ (root; 15-30 min the first time, cached after)
	bash image/build.sh

image-test: host-tools-image-test ## Boot the built image under QEMU virt and raspi3b (aarch64, emulated): READY, selftest, web page
	bash image/test.sh virt
	bash image/test.sh raspi3b

image-wear: host-tools-image-test ## SD-card wear of the built image under QEMU: bytes written idle, per 1,000 envelopes and texts (~20 min)
	nice -n 10 bash image/wear.sh

image-pulled-plugs: host-tools-image-test ## Power cuts: kill QEMU under traffic 20 times, check every acknowledged item (root; 1-2 h)
	nice -n 10 bash image/pulled-plugs.sh

image-read-only: host-tools-image-test ## A card that turns read-only under the node, then boots read-only: what the owner sees (root; ~20 min)
	nice -n 10 bash image/read-only.sh

image-first-boot-plugs: host-tools-image-test ## Power cuts during the first boots (root fs growth, keys, the node's first start): the card comes up by itself (root; ~20 min)
	nice -n 10 bash image/first-boot-plugs.sh

test-ansible: host-tools-ansible ## Lint both Ansible roles; apply pigeon_relay twice to the image root (after make image)
	bash ansible/test-roles.sh

# Each root-level target's host tools (image/host-tools.sh): installed as root, else named.
host-tools-image host-tools-image-test host-tools-ansible host-tools-bluez:
	bash image/host-tools.sh $(@:host-tools-%=%)

clean: ## Remove the venv and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis build dist
