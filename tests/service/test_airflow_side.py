"""What the Airflow side builds on: the project's deferrable trigger and the provider's stop, on the service."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import pytest
from service_support import gated_pipeline, wait_for, wait_for_step

pytestmark = pytest.mark.slow


@pytest.fixture
def aws_default(aws_endpoint, monkeypatch):
    """``aws_default`` with fake keys and no endpoint: AWS_ENDPOINT_URL points it at the service."""
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({
        "conn_type": "aws", "login": "testing", "password": "testing", "extra": {"region_name": "us-east-1"}}))
    return "aws_default"


def first_event(trigger) -> dict:
    async def run():
        async for event in trigger.run():
            return event.payload

    return asyncio.run(run())


def test_the_deferrable_trigger_sees_executing_turn_terminal(sagemaker_client, s3_client, tmp_path, aws_default, monkeypatch):
    from airsage.triggers import pipeline_execution

    pipeline = gated_pipeline(sagemaker_client, s3_client, tmp_path)
    arn = sagemaker_client.start_pipeline_execution(PipelineName=pipeline["name"])["PipelineExecutionArn"]
    wait_for_step(sagemaker_client, arn, "First", "Executing")
    waits = []
    real_sleep = asyncio.sleep

    async def sleep_then_open_the_gate(seconds):
        # the trigger sleeps only after a poll that was not terminal: it saw the execution Executing
        waits.append(seconds)
        pipeline["gate"].touch()
        await real_sleep(seconds)

    monkeypatch.setattr(pipeline_execution, "asyncio", SimpleNamespace(sleep=sleep_then_open_the_gate))
    trigger = pipeline_execution.PipelineExecutionTrigger(arn, poll_interval=0.2, aws_conn_id=aws_default)
    payload = first_event(trigger)
    assert waits  # at least one poll found it Executing
    assert payload == {"status": "done", "execution_status": "Succeeded", "execution_arn": arn}


def test_the_providers_stop_pipeline_stops_a_running_execution(sagemaker_client, s3_client, tmp_path, aws_default):
    from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

    pipeline = gated_pipeline(sagemaker_client, s3_client, tmp_path)
    arn = sagemaker_client.start_pipeline_execution(PipelineName=pipeline["name"])["PipelineExecutionArn"]
    wait_for_step(sagemaker_client, arn, "First", "Executing")
    hook = SageMakerHook(aws_conn_id=aws_default)
    assert hook.stop_pipeline(arn) in ("Stopping", "Stopped")
    assert wait_for(sagemaker_client, arn)["PipelineExecutionStatus"] == "Stopped"
    assert hook.stop_pipeline(arn) == "Stopped"  # not running any more: a warning, not an error
