# TicketRemaster — developer commands. `make run` and `make test` are the two that matter.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTHON := $(BIN)/python
GEN := build/gen
STAMP := $(VENV)/.installed

.PHONY: run test unit integration e2e proto setup migrate seed audit topup bench lint contracts-doc clean help

help:
	@echo "make run    - install, create databases, migrate, load broker topology, seed demo data, start everything"
	@echo "make test   - run unit, integration and end-to-end tests against local PostgreSQL and RabbitMQ"
	@echo "make proto  - regenerate the gRPC code from proto/inventory.proto into $(GEN)/trproto"
	@echo "make audit  - check the invariants across the four databases (exit 1 on any violation)"
	@echo "make topup EMAIL=you@example.com AMOUNT=1000 - credit a user of the running system (development)"
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

setup: proto
	$(PYTHON) -m trcommon.manage setup

migrate: proto
	$(PYTHON) -m trcommon.manage migrate

seed: proto
	$(PYTHON) -m trcommon.manage seed

run: proto
	$(PYTHON) -m trcommon.devstack run

test: proto
	$(PYTHON) -m pytest $(PYTEST_ARGS)

unit: proto
	$(PYTHON) -m pytest -m "not integration and not e2e" $(PYTEST_ARGS)

integration: proto
	$(PYTHON) -m pytest -m integration $(PYTEST_ARGS)

e2e: proto
	$(PYTHON) -m pytest e2e-tests $(PYTEST_ARGS)

audit: proto
	$(PYTHON) -m trcommon.audit

# Development stand-in for Stripe: a signed payment_intent.succeeded webhook to the running system.
topup: proto
	@test -n "$(EMAIL)" -a -n "$(AMOUNT)" || { echo "usage: make topup EMAIL=you@example.com AMOUNT=1000"; exit 2; }
	@$(PYTHON) -m trcommon.devtools topup --email "$(EMAIL)" --amount "$(AMOUNT)"
# The internal API reference is generated from the contracts (a unit test fails when it is stale).
contracts-doc: proto
	$(PYTHON) -m trcontracts.docs > docs/internal-api.md.new && mv docs/internal-api.md.new docs/internal-api.md

# Pyflakes rules: unused or undefined names, shadowing, broken imports.
lint: $(STAMP)
	$(BIN)/ruff check --select F libs e2e-tests *-service

clean:
	rm -rf $(VENV) build .pytest_cache
