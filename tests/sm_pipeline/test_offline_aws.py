"""offline_aws(): inside, botocore finds no credentials and looks nowhere; outside, nothing changed."""

from __future__ import annotations

import os

import boto3
import pytest

from sm_pipeline.offline_aws import HIDDEN_VARIABLES, OFFLINE_VARIABLES, offline_aws


@pytest.fixture
def aws_user_env(monkeypatch):
    """A shell with credentials, a profile variable and a container-credentials URI set."""
    values = {"AWS_ACCESS_KEY_ID": "AKIAUSER", "AWS_SECRET_ACCESS_KEY": "user-secret",
              "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/abc", "AWS_REGION": "eu-west-1"}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_EC2_METADATA_DISABLED", raising=False)
    return values


def test_inside_no_credentials_are_found_and_nothing_is_asked(aws_user_env):
    with offline_aws({"AWS_DEFAULT_REGION": "us-west-2"}):
        assert not [name for name in HIDDEN_VARIABLES if name in os.environ]
        assert {name: os.environ[name] for name in OFFLINE_VARIABLES} == OFFLINE_VARIABLES
        assert os.environ["AWS_DEFAULT_REGION"] == "us-west-2"
        session = boto3.Session()
        assert session.get_credentials() is None  # the guard in conftest fails the test on any connect
        assert session.client("sagemaker").meta.region_name == "us-west-2"


def test_outside_the_environment_and_the_default_session_are_as_before(aws_user_env):
    boto3.setup_default_session(region_name="eu-central-1")
    default = boto3.DEFAULT_SESSION
    before = dict(os.environ)
    with offline_aws({"AWS_DEFAULT_REGION": "us-west-2"}):
        boto3.client("sagemaker")  # what the SDK does at import: a default session of the window's own
        assert boto3.DEFAULT_SESSION is not default
    assert dict(os.environ) == before
    assert boto3.DEFAULT_SESSION is default
    assert boto3.Session().get_credentials().access_key == "AKIAUSER"


def test_restored_after_an_exception_and_reentrant(aws_user_env):
    before = dict(os.environ)
    with pytest.raises(RuntimeError), offline_aws():
        with offline_aws():
            pass
        assert "AWS_ACCESS_KEY_ID" not in os.environ  # the inner block did not restore early
        raise RuntimeError("build failed")
    assert dict(os.environ) == before
