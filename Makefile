# airsage — the two commands a newcomer needs are `make demo` and `make test`.
# Both create the virtualenv from the lock (requirements.txt) first.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
# The venv follows the lock and pyproject.toml (the editable airsage install's entry points come from it).
STAMP := $(VENV)/.synced-$(shell cat requirements.txt pyproject.toml 2>/dev/null | sha256sum | cut -c1-16)


.PHONY: setup test lint demo ui airflow stack stack-down bench lock definition wheel clean

setup: $(STAMP) ## create/refresh .venv from requirements.txt (no-op when unchanged)
	@# the editable install's build leaves its metadata here (an older checkout's too); with the repository on
	@# sys.path (make ui's components, the tests) Airflow would find airsage twice and show its plugin as an
	@# import error in the UI. The venv has the installed copy.
	@rm -rf airsage.egg-info

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@# uv bootstraps itself once with the venv's pip; it is in the lock, and the sync removes pip (not in it)
	@test -x $(BIN)/uv || $(BIN)/python -m pip install -q --disable-pip-version-check "uv==$(UV_VERSION)"
	@echo "syncing $(VENV) from requirements.txt ..."
	@$(BIN)/uv pip sync -q --python $(BIN)/python requirements.txt
	@# sync keeps an editable install whose version did not change: rebuild airsage's metadata (entry points)
	@$(BIN)/uv pip install -q --python $(BIN)/python --reinstall-package airsage --no-deps -e .
	@rm -f $(VENV)/.synced-*
	@touch $@

ARTIFACTS := build/test-artifacts
# test processes sharing the suite out, module by module (pytest-xdist; tests/conftest.py says how):
# one per core, at most 4; TEST_WORKERS=0 runs everything in this process, in file order
TEST_WORKERS ?= $(shell n=$$(nproc 2>/dev/null || echo 1); [ $$n -gt 4 ] && n=4; echo $$n)

test: setup ## run the whole test suite (offline: AWS is a moto server on 127.0.0.1)
	@mkdir -p $(ARTIFACTS)
	@set -o pipefail; $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --junitxml=$(ARTIFACTS)/junit.xml \
	  $(PYTEST_ARGS) 2>&1 \
	  | tee $(ARTIFACTS)/pytest.log \
	  || { status=$$?; echo "make test: failed (exit $$status); logs and artifacts are in $(CURDIR)/$(ARTIFACTS)/ (pytest.log, junit.xml, one folder per area)"; exit $$status; }

lint: setup ## ruff, with the bandit (S) rules
	$(BIN)/ruff check .

BACKEND ?= local
demo: setup ## run the local DAG end to end on SQLite and print where the report is (BACKEND=sagemaker: the SageMaker DAG on the emulated service)
	@$(BIN)/python -m launchers.demo --backend $(BACKEND)

PORT ?= 8080
ui: setup ## Airflow with this project's DAGs on http://127.0.0.1:$(PORT)/ until Ctrl-C (make ui PORT=8081)
	@$(BIN)/python -m launchers.ui --port $(PORT)

airflow: setup ## any Airflow CLI command with make ui's environment: make airflow ARGS="dags list"
	@$(BIN)/python -m launchers.ui --port $(PORT) --airflow $(ARGS)

WORKERS ?= 2
stack: setup ## the production topology as processes: CeleryExecutor on local PostgreSQL + Redis, WORKERS=2 workers
	@$(BIN)/python -m launchers.stack up --workers $(WORKERS)

stack-down: setup ## stop every process `make stack` started and drop its database
	@$(BIN)/python -m launchers.stack down

bench: setup ## run the benchmarks (ratios, JSON on the last line of each)
	$(BIN)/python bench/local_runner.py --json
	$(BIN)/python bench/dag_parse.py --json
	$(BIN)/python bench/stack.py --json
	$(BIN)/python bench/sagemaker_vs_local.py --json
	$(BIN)/python bench/dag_end_to_end.py --json

definition: setup ## print the SageMaker pipeline definition for the default config
	@$(BIN)/python -m sm_pipeline definition

lock: setup ## re-resolve requirements.in into the pinned lock requirements.txt (uv is in the lock)
	$(BIN)/uv pip compile --python-version 3.11 --python-platform x86_64-manylinux_2_28 requirements.in -o requirements.txt

DIST ?= dist
WHEEL_SRC := build/wheel-src
wheel: setup ## build $(DIST)/airsage-<version>-py3-none-any.whl and $(DIST)/constraints.txt (the lock's versions, for pip -c)
	@rm -rf $(DIST) $(WHEEL_SRC) && mkdir -p $(DIST) $(WHEEL_SRC)
	@# built from a copy of what goes into it: setuptools writes airsage.egg-info beside the sources, and here
	@# it would be on sys.path (see setup); the lock's setuptools builds it (no isolated build env fetched from
	@# an index: offline, same versions)
	@tar -cf - --exclude=__pycache__ pyproject.toml README.md plugins sm_pipeline | tar -xf - -C $(WHEEL_SRC)
	@$(BIN)/uv build -q --wheel --no-build-isolation --python $(BIN)/python --out-dir "$(abspath $(DIST))" $(WHEEL_SRC)
	@rm -rf $(WHEEL_SRC)
	@grep -v '^-e ' requirements.txt > $(DIST)/constraints.txt
	@ls $(DIST)/*.whl

clean:
	rm -rf .airflow .airsage .pytest_cache build dist
