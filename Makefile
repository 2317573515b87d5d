# TicketRemaster — developer commands. `make run` and `make test` are the two that matter.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTHON := $(BIN)/python
GEN := build/gen
STAMP := $(VENV)/.installed
# The gate page (GET /scanner): sources and lock file in web/scanner, built into $(STATIC)/scanner, which the
# orchestrator serves (OrchestratorSettings.static_dir).
WEB := web/scanner
STATIC := build/static

.PHONY: run test unit integration e2e proto static setup migrate seed audit topup bench lint contracts-doc clean help

help:
	@echo "make run    - install, create databases, migrate, load broker topology, seed demo data, start everything"
	@echo "make test   - run unit, integration and end-to-end tests against local PostgreSQL and RabbitMQ"
	@echo "make proto  - regenerate the gRPC code from proto/inventory.proto into $(GEN)/trproto"
	@echo "make static - install the gate page's packages (npm ci) and bundle it into $(STATIC)/scanner"
	@echo "make audit  - check the invariants across the four databases (exit 1 on any violation)"
	@echo "make topup EMAIL=you@example.com AMOUNT=1000 - credit a user of the running system (development)"
	@echo "make bench  - measure throughput, latency, CPU and memory of the whole system (bench/results/)"
	@echo "make contracts-doc - regenerate docs/internal-api.md from the contracts in libs/trcontracts"

# The virtual environment; the .pth file puts the shared library, the generated gRPC package and every
# service package on the path (one install, no per-service copies).
$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(PYTHON) || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@site=$$($(PYTHON) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'); \
	  printf '%s\n' "$(CURDIR)/libs" "$(CURDIR)/$(GEN)" "$(CURDIR)/event-service" "$(CURDIR)/user-service" \
	    "$(CURDIR)/order-service" "$(CURDIR)/inventory-service" "$(CURDIR)/orchestrator-service" \
	    "$(CURDIR)" > $$site/ticketremaster.pth
	@touch $(STAMP)

# One generated package for servers and clients; never edited by hand, never copied per service.
$(GEN)/trproto/inventory_pb2.py: proto/inventory.proto $(STAMP)
	@mkdir -p $(GEN)/trproto
	$(PYTHON) -m grpc_tools.protoc -Itrproto=proto --python_out=$(GEN) --grpc_python_out=$(GEN) \
	  --pyi_out=$(GEN) proto/inventory.proto
	@touch $(GEN)/trproto/__init__.py

proto: $(GEN)/trproto/inventory_pb2.py

# Exactly the packages package-lock.json names (npm ci), again only when the lock file changes.
$(WEB)/node_modules/.installed: $(WEB)/package.json $(WEB)/package-lock.json
	cd $(WEB) && npm ci --no-audit --no-fund
	@touch $@

# build.mjs writes index.html last, so its time stamp stands for the whole folder.
$(STATIC)/scanner/index.html: $(WEB)/node_modules/.installed $(WEB)/build.mjs $(wildcard $(WEB)/src/*)
	cd $(WEB) && node build.mjs "$(CURDIR)/$(STATIC)/scanner"

static: $(STATIC)/scanner/index.html

setup: proto
	$(PYTHON) -m trcommon.manage setup

migrate: proto
	$(PYTHON) -m trcommon.manage migrate

seed: proto
	$(PYTHON) -m trcommon.manage seed

run: proto static
	$(PYTHON) -m trcommon.devstack run

test: proto static
	$(PYTHON) -m pytest $(PYTEST_ARGS)

unit: proto
	$(PYTHON) -m pytest -m "not integration and not e2e" $(PYTEST_ARGS)

integration: proto
	$(PYTHON) -m pytest -m integration $(PYTEST_ARGS)

e2e: proto static
	$(PYTHON) -m pytest e2e-tests $(PYTEST_ARGS)

audit: proto
	$(PYTHON) -m trcommon.audit

# Every speed figure of the spec in one run, on fresh databases and free ports (bench/README in the main README).
bench: proto
	$(BIN)/pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	$(PYTHON) -m bench $(BENCH_ARGS)

# Development stand-in for Stripe: a signed payment_intent.succeeded webhook to the running system.
topup: proto
	@test -n "$(EMAIL)" -a -n "$(AMOUNT)" || { echo "usage: make topup EMAIL=you@example.com AMOUNT=1000"; exit 2; }
	@$(PYTHON) -m trcommon.devtools topup --email "$(EMAIL)" --amount "$(AMOUNT)"
# The internal API reference is generated from the contracts (a unit test fails when it is stale).
contracts-doc: proto
	$(PYTHON) -m trcontracts.docs > docs/internal-api.md.new && mv docs/internal-api.md.new docs/internal-api.md

# Pyflakes rules: unused or undefined names, shadowing, broken imports.
lint: $(STAMP)
	$(BIN)/ruff check --select F libs e2e-tests bench *-service

clean:
	rm -rf $(VENV) build .pytest_cache $(WEB)/node_modules
