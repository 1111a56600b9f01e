"""The suite-wide guard: nothing under test may reach a non-loopback address."""

import socket
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from pytest_socket import SocketConnectBlockedError

REPO = Path(__file__).resolve().parents[1]
pytest_plugins = ["pytester"]


@pytest.mark.expects_blocked_connection
def test_non_loopback_connection_is_blocked():
    with pytest.raises(SocketConnectBlockedError):
        socket.create_connection(("192.0.2.1", 443), timeout=1)  # TEST-NET-1, never routable


@pytest.mark.expects_blocked_connection
def test_non_loopback_ipv6_connection_is_blocked():
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    try:
        with pytest.raises(SocketConnectBlockedError):
            sock.connect(("2001:db8::1", 443))  # documentation prefix, never routable
    finally:
        sock.close()


def test_boto3_without_endpoint_fails_fast_on_loopback():
    client = boto3.client("s3", region_name="us-east-1")
    assert client.meta.endpoint_url.startswith("http://127.0.0.1:")
    with pytest.raises(EndpointConnectionError):
        client.list_buckets()


def test_the_emulated_endpoint_is_reachable(aws_endpoint):
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket="guard-check")
    assert "guard-check" in [b["Name"] for b in client.list_buckets()["Buckets"]]


def test_a_swallowed_blocked_connection_still_fails_the_test(pytester):
    pytester.makeconftest((REPO / "tests" / "conftest.py").read_text())
    pytester.makepyfile(
        """
        import socket

        def test_swallows():
            try:
                socket.create_connection(("192.0.2.1", 443), timeout=1)
            except Exception:
                pass  # what a telemetry sender does
        """
    )
    result = pytester.runpytest_subprocess("--allow-hosts=127.0.0.1", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*tried to connect to non-loopback address(es)*192.0.2.1*"])
