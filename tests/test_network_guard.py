"""The suite-wide guard: nothing under test may reach a non-loopback address."""

import socket

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from pytest_socket import SocketConnectBlockedError


def test_non_loopback_connection_is_blocked():
    with pytest.raises(SocketConnectBlockedError):
        socket.create_connection(("192.0.2.1", 443), timeout=1)  # TEST-NET-1, never routable


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


def test_moto_endpoint_is_reachable(aws_endpoint):
    client = boto3.client("s3", region_name="us-east-1")
    client.create_bucket(Bucket="guard-check")
    assert [b["Name"] for b in client.list_buckets()["Buckets"]] == ["guard-check"]
