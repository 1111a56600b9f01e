"""Fixtures of the emulated-service tests: ``python -m sm_pipeline serve --port 0`` as a subprocess.

Clients reach it the way users do: ``AWS_ENDPOINT_URL`` set to the URL the service printed, fake
credentials (tests/conftest.py), no endpoint argument anywhere. The service's log goes to
``build/test-artifacts/service/``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# This directory's helpers, the small definitions shared with the runner tests, the plugin test support.
for _path in (Path(__file__).parent, REPO / "tests" / "local", REPO / "tests" / "plugins"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from service_support import serve  # noqa: E402


@pytest.fixture(scope="session")
def service(tmp_path_factory):
    """One service for the session's tests (each test uses its own pipeline names and buckets)."""
    served = serve(tmp_path_factory.mktemp("service-root"), "session")
    yield served
    assert served.stop() == 0, f"serve did not exit cleanly; log: {served.log}"


@pytest.fixture
def endpoint(service, monkeypatch):
    """``AWS_ENDPOINT_URL`` pointing at the session's service; yields its URL."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", service.url)
    return service.url


@pytest.fixture
def sm(endpoint):
    """A boto3 SageMaker client created with no endpoint argument (AWS_ENDPOINT_URL does it)."""
    import boto3

    return boto3.client("sagemaker")


@pytest.fixture
def s3(endpoint):
    """A boto3 S3 client created with no endpoint argument."""
    import boto3

    return boto3.client("s3")


