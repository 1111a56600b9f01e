"""SageMakerPipelineHook against the emulated SageMaker service: upsert, absence, failure details."""

from __future__ import annotations

import json

import pytest
from airsage_fake_source import ROLE, SCRIPT, code_uri, definition
from botocore.exceptions import ClientError

from airsage.hooks.sagemaker_pipeline import DEFINITION_HASH_TAG, SageMakerPipelineHook
from airsage.pipeline_source import definition_sha256
from airsage.testing import wait_for_execution as wait_for


@pytest.fixture
def hook(aws_connection):
    return SageMakerPipelineHook(aws_conn_id="aws_default")


def _tags(sagemaker_client, arn):
    return {t["Key"]: t["Value"] for t in sagemaker_client.list_tags(ResourceArn=arn)["Tags"]}


def test_upsert_creates_then_is_a_no_op_then_updates(hook, sagemaker_client, names):
    first = hook.upsert_pipeline(names.pipeline, json.dumps(definition()), ROLE, tags={"team": "ml"})
    assert first["action"] == "created"
    assert _tags(sagemaker_client, first["pipeline_arn"])[DEFINITION_HASH_TAG] == first["definition_sha256"]

    # the same definition with other key order/whitespace is the same definition: no write
    reordered = json.dumps(definition(), sort_keys=False, indent=2)
    before = sagemaker_client.describe_pipeline(PipelineName=names.pipeline)["LastModifiedTime"]
    again = hook.upsert_pipeline(names.pipeline, reordered, ROLE)
    assert again["action"] == "unchanged"
    assert sagemaker_client.describe_pipeline(PipelineName=names.pipeline)["LastModifiedTime"] == before

    changed = hook.upsert_pipeline(names.pipeline, json.dumps(definition(threshold=5.0)), ROLE)
    assert changed["action"] == "updated"
    deployed = sagemaker_client.describe_pipeline(PipelineName=names.pipeline)["PipelineDefinition"]
    assert definition_sha256(deployed) == changed["definition_sha256"] == definition_sha256(definition(threshold=5.0))
    assert changed["definition_sha256"] in _tags(sagemaker_client, changed["pipeline_arn"]).values()


def test_concurrent_create_falls_back_to_update(hook, sagemaker_client, monkeypatch, names):
    # another DAG run creates the pipeline between our describe and our create: the REAL describe
    # runs (the pipeline is absent), then the other run's create lands before ours
    real_describe, raced = hook.describe_pipeline_or_none, []

    def describe_then_lose_the_race(name):
        found = real_describe(name)
        if not raced:
            raced.append(name)
            sagemaker_client.create_pipeline(PipelineName=names.pipeline, PipelineDefinition=json.dumps(definition(threshold=1.0)),
                                      RoleArn=ROLE)
        return found

    monkeypatch.setattr(hook, "describe_pipeline_or_none", describe_then_lose_the_race)
    result = hook.upsert_pipeline(names.pipeline, json.dumps(definition()), ROLE)
    assert result["action"] == "updated"
    monkeypatch.setattr(hook, "describe_pipeline_or_none", real_describe)
    assert definition_sha256(hook.describe_pipeline_or_none(names.pipeline)["PipelineDefinition"]) == result["definition_sha256"]


def test_missing_pipeline_is_absent_but_other_errors_raise(hook):
    assert hook.describe_pipeline_or_none("no-such-pipeline") is None
    with pytest.raises(ValueError, match="'no-such-pipeline' does not exist: run upsert_pipeline first"):
        hook.pipeline_parameters("no-such-pipeline")
    with pytest.raises(ClientError):
        hook.conn.create_pipeline(PipelineName="x", RoleArn=ROLE)  # no definition: a real validation error


def test_find_executions_filters_by_display_name(hook, names):
    hook.upsert_pipeline(names.pipeline, json.dumps(definition()), ROLE)
    a = hook.start_execution(names.pipeline, "run-a", {}, "a" * 32)
    hook.start_execution(names.pipeline, "run-b", {}, "b" * 32)
    found = hook.find_executions(names.pipeline, "run-a")
    assert [s["PipelineExecutionArn"] for s in found] == [a]


def test_failure_details_never_say_unknown(hook, names, s3_client, sagemaker_client):
    # a real failing execution: the evaluate script exits with a reason. The "SageMaker gave no reason"
    # fallback cannot be produced by the service (it always gives one); its message is covered in
    # test_sagemaker_operators.test_stopped_without_step_listing_still_names_status_and_reason.
    bucket, pipeline = names.bucket, names.pipeline
    s3_client.put_object(Bucket=bucket, Key=code_uri(bucket).split("/", 3)[3], Body=SCRIPT.read_bytes())
    hook.upsert_pipeline(pipeline, json.dumps(definition(bucket, group=pipeline)), ROLE)
    arn = hook.start_execution(pipeline, "run-f", {"Outcome": "fail"}, "f" * 32)
    assert wait_for(sagemaker_client, arn, timeout=120)["PipelineExecutionStatus"] == "Failed"
    details = hook.failure_details(arn)
    assert details["status"] == "Failed"
    assert details["reason"].startswith("Step failure: EvaluateAbalone")
    assert "ClientError: AlgorithmError: train data has no rows" in details["reason"]
    assert details["steps_available"] is True
    assert [s["name"] for s in details["failed_steps"]] == ["EvaluateAbalone"]
    assert "train data has no rows" in details["failed_steps"][0]["reason"]
