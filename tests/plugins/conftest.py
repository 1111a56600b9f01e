"""Fixtures for the plugin tests: an Airflow AWS connection on the emulated SageMaker service, a task context.

Emulated AWS is the project's own SageMaker service (``python -m sm_pipeline serve``), started once per
session on a free loopback port: executions really run, steps are really listed, stops really stop.
Nothing SageMaker does is stubbed. The service has no reset, so every test deploys under its own
bucket and pipeline name (``names``).
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

# a site-packages distribution ships a top-level `tests` package, so helpers beside the tests
# are imported by unique module names from this directory instead of as tests.plugins.*
sys.path.insert(0, str(Path(__file__).parent))
# tests/service holds the helper that starts the emulated service (as tests/dags uses it)
sys.path.append(str(Path(__file__).parents[1] / "service"))

from airsage_test_support import FakeTI, share_botocore_models  # noqa: E402

share_botocore_models()

FAKE_KEY_ID = "AKIAAIRSAGEFAKEKEY01"
FAKE_SECRET = "airsage-fake-secret-do-not-log"  # noqa: S105 - grepped for by the secret-leak test


@pytest.fixture(scope="session")
def sagemaker_service(tmp_path_factory):
    """The emulated SageMaker service (with S3, SNS, SQS) for the session; its log is in build/test-artifacts/plugins."""
    from service_support import REPO, serve

    served = serve(tmp_path_factory.mktemp("sagemaker-service"), "service",
                   artifacts=REPO / "build" / "test-artifacts" / "plugins")
    yield served
    assert served.stop() == 0, f"serve did not exit cleanly; log: {served.log}"


@pytest.fixture
def aws_endpoint(sagemaker_service, monkeypatch):
    """Every boto3 client created during the test goes to the service (replaces the moto server here)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", sagemaker_service.url)
    return sagemaker_service.url


@pytest.fixture
def aws_conn(aws_endpoint, monkeypatch):
    """``aws_default`` pointing at the emulated service (fake key/secret)."""
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({
        "conn_type": "aws", "login": FAKE_KEY_ID, "password": FAKE_SECRET,
        "extra": {"endpoint_url": aws_endpoint, "region_name": "us-east-1"},
    }))
    return aws_endpoint


@pytest.fixture
def names(aws_conn):
    """This test's own bucket (created) and pipeline name; ``overrides`` are airsage_fake_source's config."""
    import boto3
    from airsage_fake_source import PREFIX

    suffix = uuid.uuid4().hex[:10]
    bucket, pipeline = f"airsage-test-{suffix}", f"airsage-test-abalone-{suffix}"
    boto3.client("s3", endpoint_url=aws_conn, region_name="us-east-1").create_bucket(Bucket=bucket)
    return SimpleNamespace(bucket=bucket, pipeline=pipeline, prefix=PREFIX,
                           overrides={"bucket": bucket, "pipeline_name": pipeline})


@pytest.fixture
def sm_client(aws_conn):
    """A boto3 SageMaker client on the emulated service (for arranging and asserting)."""
    import boto3

    return boto3.client("sagemaker", endpoint_url=aws_conn, region_name="us-east-1")


@pytest.fixture
def s3_client(aws_conn):
    """A boto3 S3 client on the emulated service."""
    import boto3

    return boto3.client("s3", endpoint_url=aws_conn, region_name="us-east-1")


@pytest.fixture
def make_context():
    """Build a minimal task context: ``make_context(run_id=..., ds=...)``."""

    def make(run_id: str = "scheduled__2026-11-01T00:00:00+00:00", ds: str = "2026-11-01",
             dag_id: str = "abalone_pipeline"):
        return {"dag": SimpleNamespace(dag_id=dag_id), "run_id": run_id, "ds": ds, "ti": FakeTI(),
                "params": {}}

    return make
