"""Stop from Airflow and resume, not restart, on the SageMaker backend: the project's operators on the service.

The pipeline is the gated two-step definition (``First`` waits for a gate file, ``Second`` needs an
object), so a test holds an execution running as long as it likes, or makes ``Second`` fail and then
fixes its cause without changing any input.
"""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import pytest
from airsage_test_support import FakeTI
from service_support import ROLE, gated_pipeline, runs, wait_for, wait_for_step

pytestmark = pytest.mark.slow


@pytest.fixture
def aws_default(aws_endpoint, monkeypatch):
    """``aws_default`` with fake keys and no endpoint: AWS_ENDPOINT_URL points it at the service."""
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({
        "conn_type": "aws", "login": "testing", "password": "testing", "extra": {"region_name": "us-east-1"}}))
    return "aws_default"


def context(task_id: str = "start_execution") -> dict:
    return {"dag": SimpleNamespace(dag_id="abalone_pipeline"), "run_id": "manual__2026-11-01", "ds": "2026-11-01",
            "ti": FakeTI(task_id), "params": {}}


def start(pipeline: dict):
    from airsage.operators.start_execution import StartPipelineExecutionOperator

    op = StartPipelineExecutionOperator(task_id="start_execution", pipeline=pipeline["name"],
                                        aws_conn_id="aws_default")
    return op, op.execute(context())


def sensor(execution: dict):
    from airsage.sensors.pipeline_execution import PipelineExecutionSensor

    return PipelineExecutionSensor(task_id="wait_for_execution", execution=execution, poke_interval=0.2,
                                   aws_conn_id="aws_default")


def logged(capfd) -> str:
    out, err = capfd.readouterr()
    return out + err


def test_killing_the_start_or_the_wait_task_stops_the_execution_and_the_wait_fails_with_the_reason(
        sagemaker_client, s3_client, tmp_path, aws_default):
    from airsage.exceptions import PipelineExecutionFailed

    pipeline = gated_pipeline(sagemaker_client, s3_client, tmp_path)
    op, execution = start(pipeline)
    wait_for_step(sagemaker_client, execution["execution_arn"], "First", "Executing")
    op.on_kill()  # the start task killed right after it started the execution
    describe = wait_for(sagemaker_client, execution["execution_arn"])
    assert describe["PipelineExecutionStatus"] == "Stopped"
    with pytest.raises(PipelineExecutionFailed, match="ended Stopped: Stopped by a StopPipelineExecution request"):
        sensor(execution).execute(context("wait_for_execution"))

    pipeline = gated_pipeline(sagemaker_client, s3_client, tmp_path)
    _, execution = start(pipeline)
    wait_for_step(sagemaker_client, execution["execution_arn"], "First", "Executing")
    sensor(execution).on_kill()  # the wait task killed while it polled (not deferred)
    assert wait_for(sagemaker_client, execution["execution_arn"])["PipelineExecutionStatus"] == "Stopped"
    steps = sagemaker_client.list_pipeline_execution_steps(PipelineExecutionArn=execution["execution_arn"])["PipelineExecutionSteps"]
    assert [(s["StepName"], s["StepStatus"]) for s in steps] == [("First", "Stopped")]


def test_the_trigger_stops_only_on_a_user_kill_not_on_cleanup(sagemaker_client, s3_client, tmp_path, aws_default):
    from airsage.triggers.pipeline_execution import PipelineExecutionTrigger

    pipeline = gated_pipeline(sagemaker_client, s3_client, tmp_path)
    arn = sagemaker_client.start_pipeline_execution(PipelineName=pipeline["name"])["PipelineExecutionArn"]
    wait_for_step(sagemaker_client, arn, "First", "Executing")
    trigger = PipelineExecutionTrigger(arn, poll_interval=0.2, aws_conn_id=aws_default)
    # a triggerer restart, a redistribution or the deferral ending: cleanup() only, the execution runs on
    asyncio.run(trigger.cleanup())
    assert sagemaker_client.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"] == "Executing"
    asyncio.run(trigger.on_kill())  # a user marked the deferred task failed, or cleared it
    describe = wait_for(sagemaker_client, arn)
    assert describe["PipelineExecutionStatus"] == "Stopped"
    assert describe["FailureReason"] == "Stopped by a StopPipelineExecution request"
    asyncio.run(trigger.on_kill())  # again, on an execution that already ended: nothing to stop, no error


def test_a_cleared_failed_run_resumes_with_retry_and_a_changed_definition_starts_anew(sagemaker_client, s3_client, tmp_path,
                                                                                      aws_default, capfd):
    from airsage.exceptions import PipelineExecutionFailed
    from airsage.hooks.sagemaker_pipeline import SageMakerPipelineHook

    pipeline = gated_pipeline(sagemaker_client, s3_client, tmp_path, needed=False)
    pipeline["gate"].touch()
    _, execution = start(pipeline)
    arn = execution["execution_arn"]
    with pytest.raises(PipelineExecutionFailed, match="ended Failed") as failed:
        wait_for(sagemaker_client, arn)
        sensor(execution).execute(context("wait_for_execution"))
    assert [s["name"] for s in failed.value.failed_steps] == ["Second"]
    assert (len(runs(pipeline["runs-first"])), len(runs(pipeline["runs-second"]))) == (1, 0)  # input missing

    s3_client.put_object(Bucket=pipeline["bucket"], Key="needed/needed.txt", Body=b"the needed object")  # fixed
    logged(capfd)
    _, resumed = start(pipeline)  # the run is cleared: start_execution runs again
    assert resumed["execution_arn"] == arn
    assert f"Resuming execution {arn} (definition unchanged; 1 steps succeeded)" in logged(capfd)
    assert wait_for(sagemaker_client, arn)["PipelineExecutionStatus"] == "Succeeded"
    assert sensor(resumed).execute(context("wait_for_execution"))["status"] == "Succeeded"
    # First was not run again
    assert (len(runs(pipeline["runs-first"])), len(runs(pipeline["runs-second"]))) == (1, 1)
    assert len(sagemaker_client.list_pipeline_executions(PipelineName=pipeline["name"])["PipelineExecutionSummaries"]) == 1

    # the same date with a changed definition: a new execution, and the log says why
    definition = json.loads(sagemaker_client.describe_pipeline(PipelineName=pipeline["name"])["PipelineDefinition"])
    definition["Steps"][1]["Description"] = "changed"
    SageMakerPipelineHook(aws_conn_id=aws_default).upsert_pipeline(pipeline["name"], json.dumps(definition), ROLE)
    _, fresh = start(pipeline)
    assert fresh["execution_arn"] != arn
    assert f"definition changed since {arn} (Succeeded)" in logged(capfd)
    assert wait_for(sagemaker_client, fresh["execution_arn"])["PipelineExecutionStatus"] == "Succeeded"
