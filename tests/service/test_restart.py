"""Restarts: finished executions survive, running ones end with a clear reason, one service per root."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest
from service_support import REPO, ROLE, end_orphans, gated_pipeline, serve, unique, wait_for, wait_for_step

from sm_pipeline.local import LocalExecutionStore

FAIL_DEFINITION = {"Version": "2020-12-01", "Steps": [{"Name": "Boom", "Type": "Fail", "Arguments": {"ErrorMessage": "no"}}]}

pytestmark = pytest.mark.slow


def clients(url: str, monkeypatch):
    import boto3

    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    return boto3.client("sagemaker"), boto3.client("s3")


def test_a_killed_service_loses_nothing_finished_and_its_running_execution_ends_stopped(tmp_path, monkeypatch):
    root = tmp_path / "root"
    first = serve(root, "restart-first")
    try:
        sagemaker_client, s3_client = clients(first.url, monkeypatch)
        finished_name = unique("finished")
        sagemaker_client.create_pipeline(PipelineName=finished_name, PipelineDefinition=json.dumps(FAIL_DEFINITION), RoleArn=ROLE)
        finished = sagemaker_client.start_pipeline_execution(PipelineName=finished_name)["PipelineExecutionArn"]
        before = wait_for(sagemaker_client, finished)
        pipeline = gated_pipeline(sagemaker_client, s3_client, tmp_path)
        running = sagemaker_client.start_pipeline_execution(PipelineName=pipeline["name"])["PipelineExecutionArn"]
        wait_for_step(sagemaker_client, running, "First", "Executing")
    finally:
        first.stop(signal.SIGKILL)  # no chance to clean up: as if the machine went down
    end_orphans(pipeline["runs-first"])  # its job process outlived it

    second = serve(root, "restart-second")
    try:
        sagemaker_client, s3_client = clients(second.url, monkeypatch)
        after = sagemaker_client.describe_pipeline_execution(PipelineExecutionArn=finished)
        assert {k: after[k] for k in ("PipelineExecutionStatus", "FailureReason", "CreationTime")} ==\
               {k: before[k] for k in ("PipelineExecutionStatus", "FailureReason", "CreationTime")}
        assert sagemaker_client.list_pipeline_execution_steps(PipelineExecutionArn=finished)["PipelineExecutionSteps"][0][
            "StepName"] == "Boom"
        assert s3_client.get_object(Bucket=pipeline["bucket"], Key="needed/needed.txt")["Body"].read() == b"the needed object"

        interrupted = sagemaker_client.describe_pipeline_execution(PipelineExecutionArn=running)
        assert interrupted["PipelineExecutionStatus"] == "Stopped"
        assert "the emulated SageMaker service stopped while this execution was Executing" in interrupted["FailureReason"]
        (step,) = sagemaker_client.list_pipeline_execution_steps(PipelineExecutionArn=running)["PipelineExecutionSteps"]
        assert step["StepStatus"] == "Stopped"

        pipeline["gate"].touch()
        sagemaker_client.retry_pipeline_execution(PipelineExecutionArn=running)
        assert wait_for(sagemaker_client, running)["PipelineExecutionStatus"] == "Succeeded"

        # a second service on the same root is refused, in one line, with exit code 2
        refused = subprocess.run([sys.executable, "-m", "sm_pipeline", "serve", "--port", "0", "--root", str(root)],
                                 cwd=REPO, capture_output=True, text=True, timeout=300)
        assert refused.returncode == 2 and refused.stdout == ""
        assert refused.stderr.strip().splitlines()[-1].endswith(
            "another emulated SageMaker service is already serving this object root")
    finally:
        assert second.stop() == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_running_executions_and_records_them_stopped(tmp_path, monkeypatch, sig):
    root = tmp_path / "root"
    served = serve(root, "signal")
    try:
        sagemaker_client, s3_client = clients(served.url, monkeypatch)
        pipeline = gated_pipeline(sagemaker_client, s3_client, tmp_path)
        arn = sagemaker_client.start_pipeline_execution(PipelineName=pipeline["name"])["PipelineExecutionArn"]
        wait_for_step(sagemaker_client, arn, "First", "Executing")
    finally:
        assert served.stop(sig) == 0
    describe = LocalExecutionStore(root).describe(pipeline["name"], arn.rsplit("/", 1)[1])
    assert describe["PipelineExecutionStatus"] == "Stopped"
    assert describe["FailureReason"] == (f"the emulated SageMaker service was stopped ({sig.name}) while this "
                                         "execution was running")
    log = served.log.read_text()
    assert "Traceback" not in log and f"stopping ({sig.name})" in log
