"""Fixtures for the DAG tests: the DAG file's DAGs and their param defaults, this test's own AWS names.

Emulated AWS is the project's own SageMaker service, from airsage's pytest kit (``airsage.testing``,
loaded for the whole suite by tests/conftest.py): one ``python -m sm_pipeline serve`` for the session
(``sagemaker_service``), the connection ``aws_default`` on it (``aws_connection``), a fresh bucket
(``s3_bucket``), a fresh local object root (``local_object_root``), the migrated metadata DB
(``airflow_metadata_db``). SageMaker executions really run (real training, real failure reasons and
failing steps), S3 and SNS/SQS are served at the same endpoint. Nothing is stubbed.
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Airflow appends the DAG bundle (dags/) to sys.path when it parses or runs DAG files; the
# tests import the DAG file the same way. tests/plugins holds shared test helpers.
for _path in (REPO / "dags", REPO / "tests" / "plugins", Path(__file__).parent):
    if str(_path) not in sys.path:
        sys.path.append(str(_path))

# The SageMaker DAG's wait_for_execution polls every AIRSAGE_POLL_INTERVAL seconds (read when the DAG
# file is parsed, default 60); the service runs an execution in seconds, so poll often.
os.environ.setdefault("AIRSAGE_POLL_INTERVAL", "0.5")

ARTIFACTS = REPO / "build" / "test-artifacts" / "dags"
SMALL_ROWS = 400


@pytest.fixture(scope="session")
def dag_module(airflow_metadata_db):
    """The DAG file, imported the way Airflow imports it (by its module name)."""
    import abalone_pipeline

    return abalone_pipeline


@pytest.fixture(autouse=True)
def fresh_dag_params():
    """Give every test the DAGs' param defaults back.

    ``dag.test()`` runs all tasks in this one process, and Airflow's ``process_params`` resolves a
    run's conf onto the DAG's own Param objects (``ParamsDict.__setitem__`` → ``Param.resolve``), so
    one test's ``source`` would be the next test's default. In Airflow proper each task process
    parses the DAG afresh. (The kit's ``run_dag`` restores them itself; these tests call ``dag.test()``.)
    """
    module = sys.modules.get("abalone_pipeline")
    dags = [v for v in vars(module).values() if type(v).__name__ == "DAG"] if module else []
    saved = [(param, param.value) for dag in dags
             for params in (dag.params, *(task.params for task in dag.tasks))
             for param in (params.get_param(k) for k in params)] if dags else []
    yield
    for param, value in saved:
        param.value = value


@pytest.fixture
def emulated_aws(s3_bucket, s3_client, sagemaker_client, monkeypatch, small_source):
    """This test's own bucket (the kit's ``s3_bucket``) and pipeline name (AIRSAGE_PIPELINE_NAME) on the service.

    Also a tiny source CSV (``source``, pass it as the ``source`` param): the first rows of
    data/abalone.csv, so training is real but quick. The service keeps its state for the session (it
    has no reset), so every test deploys under names of its own.
    """
    pipeline = f"airsage-abalone-{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("AIRSAGE_PIPELINE_NAME", pipeline)
    return {"s3": s3_client, "bucket": s3_bucket, "pipeline": pipeline, "source": small_source, "sm": sagemaker_client}


@pytest.fixture
def small_source(tmp_path) -> str:
    """A tiny source CSV (pass it as the ``source`` param): the first SMALL_ROWS rows of data/abalone.csv, so
    training is real but quick."""
    source = tmp_path / "abalone-small.csv"
    lines = (REPO / "data" / "abalone.csv").read_text().splitlines(keepends=True)
    source.write_text("".join(lines[:SMALL_ROWS + 1]))
    return str(source)
