"""Permanent AWS errors fail the task at once with one line naming what and how to fix it; transient ones stay
retried. Against the emulated service (a missing bucket, a pipeline that does not exist, a ValidationException)
and a loopback server answering 503 and ThrottlingException."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from airflow.sdk.exceptions import AirflowFailException
from botocore.exceptions import ClientError

from airsage.aws_errors import PermanentAwsError, is_permanent, permanent_error_line


def test_the_classification():
    assert all(is_permanent(code) for code in ("NoSuchBucket", "AccessDenied", "AccessDeniedException",
                                               "ValidationException", "ResourceNotFound", "InvalidClientTokenId"))
    assert not any(is_permanent(code) for code in ("ThrottlingException", "Throttling", "SlowDown",
                                                   "InternalFailure", "ServiceUnavailable", "500", "503"))
    line = permanent_error_line(service="sagemaker", operation="StartPipelineExecution", code="AccessDeniedException",
                                message="User: x is not\nauthorized", params={"PipelineName": "p"},
                                endpoint="https://api.sagemaker.eu-west-1.amazonaws.com", conn_id="aws_default")
    assert line == ("AWS sagemaker StartPipelineExecution (PipelineName 'p') at https://api.sagemaker.eu-west-1."
                    "amazonaws.com: access denied (AccessDeniedException: User: x is not authorized); grant the "
                    "identity of connection 'aws_default' sagemaker:StartPipelineExecution on PipelineName 'p' "
                    "(docs/aws/airflow-orchestrator-policy.json). Not retried: a permanent error")


def test_a_missing_bucket_fails_at_once_naming_the_bucket_and_the_fix(aws_connection):
    from airsage.hooks.artifact_store import ArtifactStore

    store = ArtifactStore("sagemaker", "aws_default")
    with pytest.raises(AirflowFailException) as caught:
        store.put_bytes("s3://airsage-no-such-bucket-23/abalone/input.csv", b"x")
    error = caught.value
    assert isinstance(error, ClientError) and error.response["Error"]["Code"] == "NoSuchBucket"
    assert str(error) == (
        f"AWS s3 PutObject (Bucket 'airsage-no-such-bucket-23', Key 'abalone/input.csv') at {aws_connection}: bucket "
        "'airsage-no-such-bucket-23' does not exist (NoSuchBucket: The specified bucket does not exist); create "
        "bucket 'airsage-no-such-bucket-23' or point the task at one that exists (the bucket param or Variable "
        "airsage_bucket). Not retried: a permanent error")
    with pytest.raises(PermanentAwsError, match="bucket 'airsage-no-such-bucket-23' does not exist"):
        store.read_bytes("s3://airsage-no-such-bucket-23/abalone/input.csv")


def test_a_pipeline_that_does_not_exist_and_an_invalid_definition_fail_at_once(aws_connection, names):
    from airsage.hooks.sagemaker_pipeline import SageMakerPipelineHook

    hook = SageMakerPipelineHook(aws_conn_id="aws_default")
    assert hook.describe_pipeline_or_none(names.pipeline) is None  # absence the hook handles stays an answer
    with pytest.raises(AirflowFailException) as caught:
        hook.start_execution(names.pipeline, "display", {}, "t" * 40)
    assert str(caught.value).startswith(f"AWS sagemaker StartPipelineExecution at {aws_connection}: PipelineName "
                                        f"'{names.pipeline}' does not exist (ResourceNotFound: ")
    assert str(caught.value).endswith("check the name and the region, or create it first (upsert_pipeline creates "
                                      "the pipeline). Not retried: a permanent error")
    definition = json.dumps({"Version": "2020-12-01", "Steps": [{"Name": "X", "Type": "Teleport"}]})
    with pytest.raises(AirflowFailException) as caught:
        hook.upsert_pipeline(names.pipeline, definition, "arn:aws:iam::000000000000:role/AirsageTest")
    assert "CreatePipeline (PipelineName" in str(caught.value)
    assert "AWS refused the request as invalid (ValidationException: Invalid pipeline definition: step 'X': " \
           "unknown step type 'Teleport')" in str(caught.value)
    assert "\n" not in str(caught.value)


class _Answers(BaseHTTPRequestHandler):
    """503 to S3, ThrottlingException to SageMaker: what a busy AWS answers."""

    def _answer(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("X-Amz-Target", "").startswith("SageMaker."):
            body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
            self.send_response(400)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
        else:
            body = b"<Error><Code>ServiceUnavailable</Code><Message>Please try again</Message></Error>"
            self.send_response(503)
            self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_HEAD = _answer  # noqa: N815 - http.server's naming

    def log_message(self, *args):
        pass


@pytest.fixture
def busy_endpoint(monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({
        "conn_type": "aws", "login": "AKIAAIRSAGEFAKEKEY01", "password": "fake",
        "extra": {"endpoint_url": url, "region_name": "us-east-1"}}))
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    yield url
    server.shutdown()
    server.server_close()


def test_5xx_and_throttling_stay_retried(busy_endpoint):
    from airsage.hooks.artifact_store import ArtifactStore
    from airsage.hooks.sagemaker_pipeline import SageMakerPipelineHook

    with pytest.raises(ClientError) as caught:
        ArtifactStore("sagemaker", "aws_default").read_bytes("s3://airsage-busy/key.csv")
    assert not isinstance(caught.value, AirflowFailException)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    with pytest.raises(ClientError) as caught:
        SageMakerPipelineHook(aws_conn_id="aws_default").describe_pipeline_or_none("busy")
    assert not isinstance(caught.value, AirflowFailException)
    assert caught.value.response["Error"]["Code"] == "ThrottlingException"


def test_an_operator_fails_at_once_on_a_missing_bucket(aws_connection, tmp_path, make_context):
    """stage_input to a bucket that does not exist: AirflowFailException, which the task runner never retries."""
    from airsage.operators.stage_input import StageInputOperator

    source = tmp_path / "abalone.csv"
    source.write_bytes(b"sex,length,rings\nM,0.45,15\n")
    operator = StageInputOperator(task_id="stage_input", source=str(source), backend="sagemaker", retries=3,
                                  input_uri="s3://airsage-missing-23/p/input/ds=2026-11-01/abalone.csv")
    with pytest.raises(AirflowFailException, match=r"^AWS s3 GetObject \(Bucket 'airsage-missing-23', Key "
                                                   r"'p/input/ds=2026-11-01/abalone.csv'\) at .*: bucket "
                                                   "'airsage-missing-23' does not exist"):
        operator.execute(make_context())
