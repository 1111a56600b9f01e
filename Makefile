# airsage — the two commands a newcomer needs are `make demo` and `make test`.
# Both create the virtualenv from the lock (requirements.txt) first.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.synced-$(shell sha256sum requirements.txt 2>/dev/null | cut -c1-16)


.PHONY: setup test lint demo ui airflow stack stack-down bench lock definition clean

setup: $(STAMP) ## create/refresh .venv from requirements.txt (no-op when unchanged)

$(STAMP): requirements.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check "uv==$(UV_VERSION)"
	@echo "syncing $(VENV) from requirements.txt ..."
	@$(BIN)/uv pip sync -q --python $(BIN)/python requirements.txt
	@rm -f $(VENV)/.synced-*
	@touch $@

ARTIFACTS := build/test-artifacts

test: setup ## run the whole test suite (offline: AWS is a moto server on 127.0.0.1)
	@mkdir -p $(ARTIFACTS)
	@set -o pipefail; $(BIN)/python -m pytest --junitxml=$(ARTIFACTS)/junit.xml $(PYTEST_ARGS) 2>&1 \
	  | tee $(ARTIFACTS)/pytest.log \
	  || { status=$$?; echo "make test: failed (exit $$status); logs and artifacts are in $(CURDIR)/$(ARTIFACTS)/ (pytest.log, junit.xml, one folder per area)"; exit $$status; }

lint: setup ## ruff, with the bandit (S) rules
	$(BIN)/ruff check .

BACKEND ?= local
demo: setup ## run the local DAG end to end on SQLite and print where the report is (BACKEND=sagemaker: the SageMaker DAG on the emulated service)
	@$(BIN)/python -m dags.demo --backend $(BACKEND)

PORT ?= 8080
ui: setup ## Airflow with this project's DAGs on http://127.0.0.1:$(PORT)/ until Ctrl-C (make ui PORT=8081)
	@$(BIN)/python -m dags.demo --ui --port $(PORT)

airflow: setup ## any Airflow CLI command with make ui's environment: make airflow ARGS="dags list"
	@$(BIN)/python -m dags.demo --port $(PORT) --airflow $(ARGS)

WORKERS ?= 2
stack: setup ## the production topology as processes: CeleryExecutor on local PostgreSQL + Redis, WORKERS=2 workers
	@$(BIN)/python -m dags.stack up --workers $(WORKERS)

stack-down: setup ## stop every process `make stack` started and drop its database
	@$(BIN)/python -m dags.stack down

bench: setup ## run the benchmarks (ratios, JSON on the last line of each)
	$(BIN)/python bench/local_runner.py --json
	$(BIN)/python bench/dag_parse.py --json
	$(BIN)/python bench/stack.py --json
	$(BIN)/python bench/sagemaker_vs_local.py --json

definition: setup ## print the SageMaker pipeline definition for the default config
	@$(BIN)/python -m sm_pipeline definition

lock: setup ## re-resolve requirements.in into the pinned lock requirements.txt (uv is in the lock)
	$(BIN)/uv pip compile --python-version 3.11 --python-platform x86_64-manylinux_2_28 requirements.in -o requirements.txt

clean:
	rm -rf .airflow .airsage .pytest_cache build
