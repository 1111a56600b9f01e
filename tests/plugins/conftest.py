"""Fixtures for the plugin tests: this test's own AWS names, a task context.

Emulated AWS is the project's own SageMaker service, from airsage's pytest kit (``airsage.testing``,
loaded for the whole suite by tests/conftest.py): ``sagemaker_service`` (one per session),
``aws_connection`` (``aws_default`` on it), ``sagemaker_client``, ``s3_client``. Executions really run,
steps are really listed, stops really stop: nothing SageMaker does is stubbed. The service has no
reset, so every test deploys under its own bucket and pipeline name (``names``).
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

# a site-packages distribution ships a top-level `tests` package, so helpers beside the tests
# are imported by unique module names from this directory instead of as tests.plugins.*
sys.path.insert(0, str(Path(__file__).parent))

from airsage_test_support import FakeTI  # noqa: E402


@pytest.fixture
def names(aws_connection):
    """This test's own bucket (created) and pipeline name; ``overrides`` are airsage_fake_source's config."""
    import boto3
    from airsage_fake_source import PREFIX

    suffix = uuid.uuid4().hex[:10]
    bucket, pipeline = f"airsage-test-{suffix}", f"airsage-test-abalone-{suffix}"
    boto3.client("s3", endpoint_url=aws_connection, region_name="us-east-1").create_bucket(Bucket=bucket)
    return SimpleNamespace(bucket=bucket, pipeline=pipeline, prefix=PREFIX,
                           overrides={"bucket": bucket, "pipeline_name": pipeline})


@pytest.fixture
def make_context():
    """Build a minimal task context: ``make_context(run_id=..., ds=...)``."""

    def make(run_id: str = "scheduled__2026-11-01T00:00:00+00:00", ds: str = "2026-11-01",
             dag_id: str = "abalone_pipeline"):
        return {"dag": SimpleNamespace(dag_id=dag_id), "run_id": run_id, "ds": ds, "ti": FakeTI(),
                "params": {}}

    return make
