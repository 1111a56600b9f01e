"""Fixtures for the DAG tests: a migrated SQLite metadata DB, the DAG file's DAGs, the AWS conn."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Airflow appends the DAG bundle (dags/) to sys.path when it parses or runs DAG files; the
# tests import the DAG file the same way. tests/plugins holds shared test helpers.
for _path in (REPO / "dags", REPO / "tests" / "plugins", Path(__file__).parent):
    if str(_path) not in sys.path:
        sys.path.append(str(_path))

from airsage_test_support import share_botocore_models  # noqa: E402

share_botocore_models()

FAKE_KEY_ID = "AKIAAIRSAGEFAKEKEY02"
FAKE_SECRET = "airsage-dag-fake-secret-do-not-log"  # noqa: S105 - grepped for by the secret-leak test


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
def fresh_param_values(request):
    """Give every test the DAGs' params at their declared defaults.

    In one process, Airflow 3.3's ``process_params`` resolves ``dag_run.conf`` into the DAG's own
    ``Param`` objects (``ParamsDict.__setitem__`` calls ``Param.resolve(value=...)``, which stores the
    value), so a conf key given to one ``dag.test()`` becomes the default of the next run that omits it.
    A scheduler never sees this (each task runs in a fresh process); a test module does.
    """
    if "dag_module" not in request.fixturenames:
        yield
        return
    dag_module = request.getfixturevalue("dag_module")
    dags = [value for value in vars(dag_module).values() if hasattr(value, "task_dict") and hasattr(value, "params")]
    saved = [(param, param.value) for dag in dags
             for params in (dag.params, *(task.params for task in dag.tasks))
             for param in params.values() if hasattr(param, "resolve")]
    yield
    for param, value in saved:
        param.value = value


@pytest.fixture
def local_root(tmp_path, monkeypatch):
    """A fresh object root for the local backend, set through the Variable the DAG reads."""
    root = tmp_path / "objects"
    monkeypatch.setenv("AIRFLOW_VAR_AIRSAGE_LOCAL_ROOT", str(root))
    return root


@pytest.fixture
def aws_default(aws_endpoint, monkeypatch):
    """``aws_default`` on the moto server with fake key/secret."""
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({
        "conn_type": "aws", "login": FAKE_KEY_ID, "password": FAKE_SECRET,
        "extra": {"endpoint_url": aws_endpoint, "region_name": "us-east-1"},
    }))
    return aws_endpoint


@pytest.fixture
def emulated_aws(aws_default, monkeypatch):
    """moto with the bucket, and an EvaluateAbalone stand-in hooked to StartPipelineExecution.

    moto marks every execution Succeeded at once and runs no step, so this plays the
    EvaluateAbalone step: when an execution starts, it writes evaluation.json and
    predictions.csv where CONTRACTS.md says that step's output goes.
    """
    import boto3
    from conftest_sagemaker import BUCKET, MSE, PREFIX

    from airsage.hooks.sagemaker_pipeline import SageMakerPipelineHook

    s3 = boto3.client("s3", endpoint_url=aws_default, region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    started = []
    fail_next: list[str] = []  # a test appends a failure reason: the next execution ends Failed
    real_start = SageMakerPipelineHook.start_execution

    def start_and_evaluate(self, *args, **kwargs):
        arn = real_start(self, *args, **kwargs)
        started.append(arn)
        if fail_next:
            from airsage_test_support import moto_execution

            record = moto_execution(arn)
            record.pipeline_execution_status = "Failed"
            record.pipeline_execution_failure_reason = fail_next.pop(0)
            return arn
        base = f"{PREFIX}/executions/{arn.rsplit('/', 1)[-1]}/EvaluateAbalone/evaluation"
        report = {"regression_metrics": {"mse": {"value": MSE, "standard_deviation": 1.0}}}
        s3.put_object(Bucket=BUCKET, Key=f"{base}/evaluation.json", Body=json.dumps(report).encode())
        s3.put_object(Bucket=BUCKET, Key=f"{base}/predictions.csv", Body=b"actual,predicted\n9,8.5\n11,12\n7,7\n")
        return arn

    monkeypatch.setattr(SageMakerPipelineHook, "start_execution", start_and_evaluate)
    return {"s3": s3, "started": started, "fail_next": fail_next,
            "sm": boto3.client("sagemaker", endpoint_url=aws_default, region_name="us-east-1")}
