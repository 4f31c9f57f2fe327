# personalize: two commands for a newcomer (see README.md).
#   make quickstart   set up the locked environment and run the platform's main job locally
#   make test         set up the same environment and run the whole suite (ruff + pytest)
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
# uv never downloads an interpreter: the machine's Python 3.11 is the one we use.
export UV_PYTHON_DOWNLOADS := never
# sync compiles the libraries' bytecode once (~40 s on 2 cores): each command then starts without
# compiling what it imports (~6 s for GX + Feast + MLflow + Airflow), even under
# PYTHONDONTWRITEBYTECODE, which keeps Python from caching that compilation itself
export UV_COMPILE_BYTECODE := 1
UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/bin/uv)
VENV := $(CURDIR)/.venv
PERSONALIZE := $(VENV)/bin/personalize
# pytest-xdist workers for make test (tests/conftest.py keeps the shared-Airflow tests on one)
TEST_WORKERS ?= 2
export PERSONALIZE_HOME ?= $(CURDIR)/.personalize

.PHONY: help quickstart test test-cluster lint format bench sync clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(CURDIR)/.tools/bin/uv:
	@echo "uv not found: installing it into .tools/ (a private venv; the system Python is untouched)"
	$(PYTHON) -m venv $(CURDIR)/.tools
	$(CURDIR)/.tools/bin/pip install --quiet --disable-pip-version-check "uv>=0.5,<1"

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --python "$(PYTHON)"
	@touch $@

sync: $(VENV)/.synced ## create .venv from uv.lock

quickstart: sync ## set up and tell the platform's story on the embedded default (no servers)
	@echo "state dir: $(PERSONALIZE_HOME) (reset for a fresh start)"
	rm -rf "$(PERSONALIZE_HOME)"
	PERSONALIZE_TRAIN_TIME_BUDGET_SECONDS=5 $(PERSONALIZE) story --users 2000 --items 500 --seed 42

test: sync ## lint, check declared dependencies, and run the whole test suite
	$(VENV)/bin/ruff check .
	$(VENV)/bin/deptry pipelines dags feature_repo
	$(VENV)/bin/lint-imports
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadgroup -m "not cluster"

test-cluster: sync ## the prod cycle on a real Celery cluster and the prod story (PostgreSQL, Redis, MLflow server; ~12 min on 2 cores)
	$(VENV)/bin/pytest -p no:xdist -m cluster tests/integration

lint: sync ## ruff check and format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: sync ## apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: sync ## run every benchmark in bench/ (JSON lands in bench/results/)
	@for script in bench/*.py; do $(VENV)/bin/python $$script || exit 1; done

clean: ## remove the environment and local state
	rm -rf $(VENV) $(CURDIR)/.tools "$(PERSONALIZE_HOME)" .pytest_cache .ruff_cache
