"""Fixtures for the plugin tests: an Airflow AWS connection on the moto server, a task context."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

# a site-packages distribution ships a top-level `tests` package, so helpers beside the tests
# are imported by unique module names from this directory instead of as tests.plugins.*
sys.path.insert(0, str(Path(__file__).parent))

from airsage_test_support import FakeTI, share_botocore_models  # noqa: E402

share_botocore_models()

FAKE_KEY_ID = "AKIAAIRSAGEFAKEKEY01"
FAKE_SECRET = "airsage-fake-secret-do-not-log"  # noqa: S105 - grepped for by the secret-leak test


@pytest.fixture
def aws_conn(aws_endpoint, monkeypatch):
    """``aws_default`` pointing at the moto server (fake key/secret), with the test bucket created."""
    import boto3

    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({
        "conn_type": "aws", "login": FAKE_KEY_ID, "password": FAKE_SECRET,
        "extra": {"endpoint_url": aws_endpoint, "region_name": "us-east-1"},
    }))
    from airsage_fake_source import BUCKET

    boto3.client("s3", endpoint_url=aws_endpoint, region_name="us-east-1").create_bucket(Bucket=BUCKET)
    return aws_endpoint


@pytest.fixture
def sm_client(aws_conn):
    """A boto3 SageMaker client on the moto server (for arranging and asserting)."""
    import boto3

    return boto3.client("sagemaker", endpoint_url=aws_conn, region_name="us-east-1")


@pytest.fixture
def s3_client(aws_conn):
    """A boto3 S3 client on the moto server."""
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
