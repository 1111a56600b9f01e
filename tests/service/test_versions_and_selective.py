"""Pipeline versions and selective execution through boto3 on the emulated service, as botocore's model shapes them."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError
from selective_builders import chain_definition, runs
from service_support import ROLE, unique, wait_for

from sm_pipeline.storage import ObjectStore


def fail_definition(message: str) -> str:
    return json.dumps({"Version": "2020-12-01", "Parameters": [],
                       "Steps": [{"Name": "End", "Type": "Fail", "Arguments": {"ErrorMessage": message}}]})


def test_a_version_per_definition_change_listed_described_and_started(sagemaker_client):
    name = unique("versions")
    sagemaker_client.create_pipeline(PipelineName=name, PipelineDefinition=fail_definition("one"), RoleArn=ROLE)
    updated = sagemaker_client.update_pipeline(PipelineName=name, PipelineDefinition=fail_definition("two"))
    assert updated["PipelineVersionId"] == 2
    # a change of the display name only is no new version
    assert sagemaker_client.update_pipeline(PipelineName=name, PipelineDisplayName="renamed")["PipelineVersionId"] == 2
    assert json.loads(sagemaker_client.describe_pipeline(PipelineName=name)["PipelineDefinition"]) == json.loads(
        fail_definition("two"))
    first = sagemaker_client.describe_pipeline(PipelineName=name, PipelineVersionId=1)
    assert first["PipelineDefinition"] == fail_definition("one")  # exactly as sent

    pinned = sagemaker_client.start_pipeline_execution(PipelineName=name, PipelineVersionId=1)["PipelineExecutionArn"]
    latest = sagemaker_client.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    assert wait_for(sagemaker_client, pinned)["FailureReason"] == "one"
    assert wait_for(sagemaker_client, latest)["FailureReason"] == "two"
    assert sagemaker_client.describe_pipeline_execution(PipelineExecutionArn=pinned)["PipelineVersionId"] == 1
    assert sagemaker_client.describe_pipeline_execution(PipelineExecutionArn=latest)["PipelineVersionId"] == 2

    listed = sagemaker_client.list_pipeline_versions(PipelineName=name)["PipelineVersionSummaries"]
    assert [(v["PipelineVersionId"], v["LastExecutionPipelineExecutionArn"]) for v in listed] == [
        (2, latest), (1, pinned)]  # newest first by default
    assert {v["PipelineArn"] for v in listed} == {sagemaker_client.describe_pipeline(PipelineName=name)["PipelineArn"]}
    pages = sagemaker_client.get_paginator("list_pipeline_versions").paginate(
        PipelineName=name, SortOrder="Ascending", PaginationConfig={"PageSize": 1})
    assert [v["PipelineVersionId"] for page in pages for v in page["PipelineVersionSummaries"]] == [1, 2]
    after = listed[1]["CreationTime"]
    assert [v["PipelineVersionId"] for v in sagemaker_client.list_pipeline_versions(
        PipelineName=name, CreatedAfter=after)["PipelineVersionSummaries"]] == [2]

    with pytest.raises(ClientError, match="has no version 3") as raised:
        sagemaker_client.start_pipeline_execution(PipelineName=name, PipelineVersionId=3)
    assert raised.value.response["Error"]["Code"] == "ResourceNotFound"
    with pytest.raises(ClientError) as raised:
        sagemaker_client.list_pipeline_versions(PipelineName=unique("nosuch"))
    assert raised.value.response["Error"]["Code"] == "ResourceNotFound"


@pytest.fixture
def chain(sagemaker_service, sagemaker_client, tmp_path):
    """A pipeline Prep -> Train -> Evaluate on the service, and one Succeeded execution of it (the reference)."""
    bucket = unique("chain")
    logs = tmp_path / "logs"
    logs.mkdir()
    definition = chain_definition(ObjectStore(sagemaker_service.root), logs, bucket=f"s3://{bucket}")
    name = unique("chain")
    sagemaker_client.create_pipeline(PipelineName=name, PipelineDefinition=json.dumps(definition), RoleArn=ROLE)
    reference = sagemaker_client.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"]
    assert wait_for(sagemaker_client, reference)["PipelineExecutionStatus"] == "Succeeded"
    return {"name": name, "reference": reference, "logs": logs, "bucket": bucket, "root": sagemaker_service.root}


def test_a_selective_execution_runs_the_selected_step_on_the_references_outputs(sagemaker_client, chain):
    config = {"SourcePipelineExecutionArn": chain["reference"], "SelectedSteps": [{"StepName": "Train"}]}
    arn = sagemaker_client.start_pipeline_execution(PipelineName=chain["name"],
                                                    SelectiveExecutionConfig=config)["PipelineExecutionArn"]
    described = wait_for(sagemaker_client, arn)
    assert described["PipelineExecutionStatus"] == "Succeeded"
    assert described["SelectiveExecutionConfig"] == config
    steps = sagemaker_client.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]
    assert {s["StepName"]: (s["StepStatus"], s.get("SelectiveExecutionResult")) for s in steps} == {
        "Prep": ("Succeeded", {"SourcePipelineExecutionArn": chain["reference"]}), "Train": ("Succeeded", None)}
    execution_id = arn.rsplit("/", 1)[1]
    assert runs(chain["logs"])[3:] == [("Train", execution_id)]
    out = chain["root"] / chain["bucket"] / "out" / execution_id / "Train" / "Train.txt"
    assert out.read_text() == f"Prep@{chain['reference'].rsplit('/', 1)[1]};Train@{execution_id};"


@pytest.mark.parametrize(("selected", "reference", "expected"), [
    (["Nope"], "reference", "Nope is not a step of pipeline"),
    (["Prep", "Evaluate"], "reference", "step Train lies on a path between the selected steps Prep and Evaluate"),
    (["Train"], None, "selected step(s) depend on step Prep, which is not selected"),
    (["Train"], "of another pipeline", "the reference must be an execution of the same pipeline"),
    (["Train"], "failed at Prep", "step Prep did not succeed in execution"),
])
def test_each_broken_rule_is_a_one_line_validation_exception(sagemaker_client, chain, selected, reference, expected):
    arn = chain["reference"]
    if reference == "of another pipeline":
        arn = arn.replace(chain["name"].lower(), "another-pipeline")
    elif reference == "failed at Prep":
        (chain["root"] / chain["bucket"] / "code" / "chain.py").write_text("raise SystemExit('no')\n")
        arn = sagemaker_client.start_pipeline_execution(PipelineName=chain["name"])["PipelineExecutionArn"]
        assert wait_for(sagemaker_client, arn)["PipelineExecutionStatus"] == "Failed"
    config = {"SelectedSteps": [{"StepName": step} for step in selected]}
    if reference:
        config["SourcePipelineExecutionArn"] = arn
    before = sagemaker_client.list_pipeline_executions(PipelineName=chain["name"])["PipelineExecutionSummaries"]
    with pytest.raises(ClientError) as raised:
        sagemaker_client.start_pipeline_execution(PipelineName=chain["name"], SelectiveExecutionConfig=config)
    error = raised.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert expected in error["Message"] and "\n" not in error["Message"]
    assert sagemaker_client.list_pipeline_executions(PipelineName=chain["name"])["PipelineExecutionSummaries"] == before


def test_listing_executions_by_arn_pages_over_the_index(sagemaker_client):
    name = unique("byarn")
    sagemaker_client.create_pipeline(PipelineName=name, PipelineDefinition=fail_definition("x"), RoleArn=ROLE)
    started = [sagemaker_client.start_pipeline_execution(PipelineName=name)["PipelineExecutionArn"] for _ in range(3)]
    for arn in started:
        wait_for(sagemaker_client, arn)
    for order in ("Ascending", "Descending"):
        pages = sagemaker_client.get_paginator("list_pipeline_executions").paginate(
            PipelineName=name, SortBy="PipelineExecutionArn", SortOrder=order, PaginationConfig={"PageSize": 2})
        listed = [s["PipelineExecutionArn"] for page in pages for s in page["PipelineExecutionSummaries"]]
        assert listed == sorted(started, reverse=order == "Descending")
