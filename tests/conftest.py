"""Session-wide test setup: no real AWS, no telemetry, no network beyond loopback.

The environment is fixed here, at import time, before any test module imports boto3,
the SageMaker SDK or Airflow:
- pytest-socket (``--allow-hosts`` in pyproject) fails any connection to a non-loopback address;
- AWS_ENDPOINT_URL points at a closed loopback port, so a boto3 client that was not given the
  moto server's endpoint fails at once with "connection refused" instead of reaching AWS;
- credentials are fake, shared config files are ignored, the instance-metadata lookup is off;
- the SageMaker SDK's role validation and telemetry are off.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
CLOSED_LOOPBACK_ENDPOINT = "http://127.0.0.1:9"  # discard port: nothing listens, refused at once

_SESSION_TMP = Path(tempfile.mkdtemp(prefix="airsage-tests-"))

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",  # noqa: S105 - moto's fake credentials
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_RETRY_MODE": "standard",
        "AWS_ENDPOINT_URL": CLOSED_LOOPBACK_ENDPOINT,
        "SAGEMAKER_VALIDATE_ROLE": "false",
        "AIRSAGE_TELEMETRY": "off",
        "AIRFLOW_HOME": str(_SESSION_TMP / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_SESSION_TMP / 'airflow' / 'airflow.db'}",
        "MPLBACKEND": "Agg",
    }
)
for _var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
             "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"):
    os.environ.pop(_var, None)
(_SESSION_TMP / "airflow").mkdir(parents=True, exist_ok=True)


@pytest.fixture(autouse=True)
def fail_on_any_blocked_connection(request, monkeypatch):
    """Fail the test if anything tried a non-loopback connection, even if the code swallowed the error.

    pytest-socket raises at the attempt, but library code (the SageMaker SDK's telemetry, for
    one) catches broad exceptions; the attempt is recorded here and reported at teardown.
    """
    import pytest_socket

    attempts: list[str] = []
    original_init = pytest_socket.SocketConnectBlockedError.__init__

    def recording_init(self, allowed, host, *args, **kwargs):
        attempts.append(str(host))
        original_init(self, allowed, host, *args, **kwargs)

    monkeypatch.setattr(pytest_socket.SocketConnectBlockedError, "__init__", recording_init)
    yield
    if attempts and request.node.get_closest_marker("expects_blocked_connection") is None:
        pytest.fail(f"code under test tried to connect to non-loopback address(es): {sorted(set(attempts))}")


@pytest.fixture(autouse=True)
def fresh_boto3_default_session():
    """Each test starts with no boto3 default session and leaves none behind.

    ``boto3.client()`` reuses ``boto3.DEFAULT_SESSION``, whose region and credentials are fixed when
    it is created: a test that made one (say in eu-central-1) would otherwise decide the region of
    every later test's bare ``boto3.client()`` calls, depending on the order the tests run in.
    """
    import boto3

    boto3.DEFAULT_SESSION = None
    yield
    boto3.DEFAULT_SESSION = None


@pytest.fixture(scope="session")
def moto_server():
    """A moto server on 127.0.0.1 (emulated AWS) for the whole session; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws_endpoint(moto_server, monkeypatch):
    """Point every boto3 client created during the test at the moto server; reset its state after."""
    import requests

    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    yield moto_server
    requests.post(f"{moto_server}/moto-api/reset", timeout=10)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root."""
    return REPO_ROOT
