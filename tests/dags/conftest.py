"""Fixtures for the DAG tests: a migrated SQLite metadata DB, the DAG file's DAGs, the AWS conn.

Emulated AWS is the project's own SageMaker service (``python -m sm_pipeline serve``), started once
per session on a free loopback port: SageMaker executions really run (real training, real failure
reasons and failing steps), S3 and SNS/SQS are served at the same endpoint. Nothing is stubbed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Airflow appends the DAG bundle (dags/) to sys.path when it parses or runs DAG files; the
# tests import the DAG file the same way. tests/plugins holds shared test helpers, tests/service
# the helper that starts the emulated service.
for _path in (REPO / "dags", REPO / "tests" / "plugins", REPO / "tests" / "service", Path(__file__).parent):
    if str(_path) not in sys.path:
        sys.path.append(str(_path))

from airsage_test_support import share_botocore_models  # noqa: E402

share_botocore_models()
# The SageMaker DAG's wait_for_execution polls every AIRSAGE_POLL_INTERVAL seconds (read when the DAG
# file is parsed, default 60); the service runs an execution in seconds, so poll often.
os.environ.setdefault("AIRSAGE_POLL_INTERVAL", "0.5")

FAKE_KEY_ID = "AKIAAIRSAGEFAKEKEY02"
FAKE_SECRET = "airsage-dag-fake-secret-do-not-log"  # noqa: S105 - grepped for by the secret-leak test
ARTIFACTS = REPO / "build" / "test-artifacts" / "dags"


@pytest.fixture(scope="session")
def airflow_db():
    """``airflow db migrate`` once per session on the session's SQLite DB (conftest's AIRFLOW_HOME)."""
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, env=os.environ.copy(),
                   capture_output=True, timeout=600)
    return os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]


@pytest.fixture(scope="session")
def dag_module(airflow_db):
    """The DAG file, imported the way Airflow imports it (factory by its module name)."""
    import abalone_pipeline

    return abalone_pipeline


@pytest.fixture(autouse=True)
def fresh_dag_params():
    """Give every test the DAGs' param defaults back.

    ``dag.test()`` runs all tasks in this one process, and Airflow's ``process_params`` resolves a
    run's conf onto the DAG's own Param objects (``ParamsDict.__setitem__`` → ``Param.resolve``), so
    one test's ``source`` would be the next test's default. In Airflow proper each task process
    parses the DAG afresh.
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
def local_root(tmp_path, monkeypatch):
    """A fresh object root for the local backend, set through the Variable the DAG reads."""
    root = tmp_path / "objects"
    monkeypatch.setenv("AIRFLOW_VAR_AIRSAGE_LOCAL_ROOT", str(root))
    return root


@pytest.fixture(scope="session")
def sagemaker_service(tmp_path_factory):
    """The emulated SageMaker service (with S3, SNS, SQS) for the session; its log is in build/test-artifacts."""
    from service_support import serve

    served = serve(tmp_path_factory.mktemp("sagemaker-service"), "dags")
    yield served
    assert served.stop() == 0, f"serve did not exit cleanly; log: {served.log}"


@pytest.fixture
def aws_endpoint(sagemaker_service, monkeypatch):
    """Every boto3 client created during the test goes to the service (replaces the moto server here).

    The service keeps its state for the session (it has no reset), so tests that deploy use their own
    bucket and pipeline name (``emulated_aws``) and their own SNS topic (``sns_inbox``).
    """
    monkeypatch.setenv("AWS_ENDPOINT_URL", sagemaker_service.url)
    return sagemaker_service.url


@pytest.fixture
def aws_default(aws_endpoint, monkeypatch):
    """``aws_default`` on the emulated service with fake key/secret."""
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({
        "conn_type": "aws", "login": FAKE_KEY_ID, "password": FAKE_SECRET,
        "extra": {"endpoint_url": aws_endpoint, "region_name": "us-east-1"},
    }))
    return aws_endpoint


@pytest.fixture
def emulated_aws(aws_default, monkeypatch, tmp_path):
    """This test's own bucket (Variable airsage_bucket) and pipeline name (AIRSAGE_PIPELINE_NAME) on the service.

    Also a tiny source CSV (``source``, pass it as the ``source`` param): the first rows of
    data/abalone.csv, so training is real but quick.
    """
    import boto3

    suffix = uuid.uuid4().hex[:10]
    bucket, pipeline = f"airsage-dags-{suffix}", f"airsage-abalone-{suffix}"
    monkeypatch.setenv("AIRFLOW_VAR_AIRSAGE_BUCKET", bucket)
    monkeypatch.setenv("AIRSAGE_PIPELINE_NAME", pipeline)
    s3 = boto3.client("s3", endpoint_url=aws_default, region_name="us-east-1")
    s3.create_bucket(Bucket=bucket)
    source = tmp_path / "abalone-small.csv"
    lines = (REPO / "data" / "abalone.csv").read_text().splitlines(keepends=True)
    source.write_text("".join(lines[:SMALL_ROWS + 1]))
    return {"s3": s3, "bucket": bucket, "pipeline": pipeline, "source": str(source),
            "sm": boto3.client("sagemaker", endpoint_url=aws_default, region_name="us-east-1")}


SMALL_ROWS = 400
