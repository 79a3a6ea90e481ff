# The verbs people type. `make run` and `make test` work on a fresh machine: they make the virtualenv,
# install from uv.lock and start or test the whole system.

PYTHON      ?= python3
VENV        := .venv
TOOLS       := .tools
UV_VERSION  := 0.13.9
UV          := $(TOOLS)/bin/uv
SYNCED      := $(VENV)/.synced-$(shell cat uv.lock pyproject.toml 2>/dev/null | cksum | cut -d' ' -f1)
export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))

# `make run PORT=5001` when 5000 is taken.
PORT        ?= 5000

# Tests use 2 processes (the machines have 2 cores); T=tests/domain narrows the run.
T           ?= tests
PYTEST_ARGS ?= -n 2

.PHONY: help install run test test-fast lint fmt migrate revision soak bench clean system-deps

help:
	@echo "make run       migrate and start API, dashboard, worker and beat with demo data (Ctrl-C stops all)"
	@echo "               PostgreSQL/Redis: DATABASE_URL/REDIS_URL, else local ones, else embedded (.env.example)"
	@echo "make test      the whole suite (installs what it needs first)"
	@echo "make lint      ruff, mypy (strict) on the files pyproject.toml names, and the layer contract (lint-imports)"
	@echo "make migrate   upgrade the database to head"
	@echo "make revision m='add nudges'   autogenerate a migration (review it!)"

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(SYNCED): pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --python $(PYTHON)
	rm -f $(VENV)/.synced-*
	touch $@

install: $(SYNCED)

# Debian packages the suite drives for real (a browser, the compose validator); installed only when missing.
system-deps:
	@bash .ci/system-deps

run: install
	$(VENV)/bin/companion up --demo --port $(PORT)

test: install system-deps
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS) $(T)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

fmt: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

migrate: install
	$(VENV)/bin/companion db upgrade

revision: install
	$(VENV)/bin/python -c "import sys; from companion.cli import _services; from companion import migrate; \
	c, s = _services(); migrate.revision(c.database_url, sys.argv[1])" "$(m)"

# The fault ledger (tests/reliability) for minutes instead of seconds: worker SIGKILL, Redis and
# PostgreSQL restarts on private servers. `make test` runs a short one. Figures in SOAK_FIGURES.
SOAK_FIGURES ?= /tmp/companion-soak-figures.json
soak: install
	FAULT_PHASE_SECONDS=$${FAULT_PHASE_SECONDS:-30} FAULT_CLIENTS=$${FAULT_CLIENTS:-6} FAULT_FIGURES_FILE=$(SOAK_FIGURES) \
		$(VENV)/bin/python -m pytest -p no:randomly -q tests/reliability
	@cat $(SOAK_FIGURES)

clean:
	rm -rf $(VENV) $(TOOLS) .pytest-instance .pytest_cache

# Every benchmark at sizes that fit in 15 minutes on 2 cores; one table, bench/results.json (issue 8).
bench: install
	$(VENV)/bin/python bench/run_all.py
