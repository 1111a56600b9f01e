"""SageMakerPipelineHook against the moto server: upsert, absence, failure details."""

from __future__ import annotations

import json

import pytest
from airsage_fake_source import PIPELINE, ROLE, definition
from airsage_test_support import moto_execution
from botocore.exceptions import ClientError

from airsage.hooks.sagemaker_pipeline import DEFINITION_HASH_TAG, SageMakerPipelineHook
from airsage.pipeline_source import definition_sha256


@pytest.fixture
def hook(aws_conn):
    return SageMakerPipelineHook(aws_conn_id="aws_default")


def _tags(sm_client, arn):
    return {t["Key"]: t["Value"] for t in sm_client.list_tags(ResourceArn=arn)["Tags"]}


def test_upsert_creates_then_is_a_no_op_then_updates(hook, sm_client):
    first = hook.upsert_pipeline(PIPELINE, json.dumps(definition()), ROLE, tags={"team": "ml"})
    assert first["action"] == "created"
    assert _tags(sm_client, first["pipeline_arn"])[DEFINITION_HASH_TAG] == first["definition_sha256"]

    # the same definition with other key order/whitespace is the same definition: no write
    reordered = json.dumps(definition(), sort_keys=False, indent=2)
    before = sm_client.describe_pipeline(PipelineName=PIPELINE)["LastModifiedTime"]
    again = hook.upsert_pipeline(PIPELINE, reordered, ROLE)
    assert again["action"] == "unchanged"
    assert sm_client.describe_pipeline(PipelineName=PIPELINE)["LastModifiedTime"] == before

    changed = hook.upsert_pipeline(PIPELINE, json.dumps(definition(threshold=5.0)), ROLE)
    assert changed["action"] == "updated"
    deployed = sm_client.describe_pipeline(PipelineName=PIPELINE)["PipelineDefinition"]
    assert definition_sha256(deployed) == changed["definition_sha256"] == definition_sha256(definition(threshold=5.0))
    assert changed["definition_sha256"] in _tags(sm_client, changed["pipeline_arn"]).values()


def test_concurrent_create_falls_back_to_update(hook, sm_client, monkeypatch):
    # another DAG run creates the pipeline between our describe and our create
    real_describe = hook.describe_pipeline_or_none
    monkeypatch.setattr(hook, "describe_pipeline_or_none", lambda name: None)
    sm_client.create_pipeline(PipelineName=PIPELINE, PipelineDefinition=json.dumps(definition(threshold=1.0)),
                              RoleArn=ROLE)
    result = hook.upsert_pipeline(PIPELINE, json.dumps(definition()), ROLE)
    assert result["action"] == "updated"
    monkeypatch.setattr(hook, "describe_pipeline_or_none", real_describe)
    assert definition_sha256(hook.describe_pipeline_or_none(PIPELINE)["PipelineDefinition"]) == result["definition_sha256"]


def test_missing_pipeline_is_absent_but_other_errors_raise(hook):
    assert hook.describe_pipeline_or_none("no-such-pipeline") is None
    with pytest.raises(ValueError, match="'no-such-pipeline' does not exist: run upsert_pipeline first"):
        hook.pipeline_parameters("no-such-pipeline")
    with pytest.raises(ClientError):
        hook.conn.create_pipeline(PipelineName="x", RoleArn=ROLE)  # no definition: a real validation error


def test_find_executions_filters_by_display_name(hook):
    hook.upsert_pipeline(PIPELINE, json.dumps(definition()), ROLE)
    a = hook.start_execution(PIPELINE, "run-a", {}, "a" * 32)
    hook.start_execution(PIPELINE, "run-b", {}, "b" * 32)
    found = hook.find_executions(PIPELINE, "run-a")
    assert [s["PipelineExecutionArn"] for s in found] == [a]


def test_failure_details_never_say_unknown(hook):
    hook.upsert_pipeline(PIPELINE, json.dumps(definition()), ROLE)
    arn = hook.start_execution(PIPELINE, "run-f", {}, "f" * 32)
    record = moto_execution(arn)
    record.pipeline_execution_status = "Failed"
    details = hook.failure_details(arn)
    assert details["status"] == "Failed"
    assert details["reason"] == "the execution ended Failed and SageMaker gave no reason"
    assert details["steps_available"] is False  # moto lacks ListPipelineExecutionSteps

    record.pipeline_execution_failure_reason = "Step failure: One or multiple steps failed."
    assert hook.failure_details(arn)["reason"] == "Step failure: One or multiple steps failed."
