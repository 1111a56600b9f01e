"""Executions on the served instance: Executing → terminal, stop, retry, idempotent starts, listings."""

from __future__ import annotations

import json
import threading

import pytest
from botocore.exceptions import ClientError
from service_support import ROLE, gated_pipeline, runs, unique, wait_for, wait_for_step

FAIL_DEFINITION = {"Version": "2020-12-01",
                   "Parameters": [{"Name": "Why", "Type": "String", "DefaultValue": "no reason"},
                                  {"Name": "Count", "Type": "Integer", "DefaultValue": 1}],
                   "Steps": [{"Name": "Boom", "Type": "Fail", "Arguments": {"ErrorMessage": {"Get": "Parameters.Why"}}}]}


def test_executing_is_observable_until_the_run_succeeds(sagemaker_client, s3_client, tmp_path):
    pipeline = gated_pipeline(sagemaker_client, s3_client, tmp_path)
    arn = sagemaker_client.start_pipeline_execution(PipelineName=pipeline["name"], PipelineExecutionDisplayName="gated-run",
                                      PipelineExecutionDescription="first run")["PipelineExecutionArn"]
    assert arn.startswith(f"arn:aws:sagemaker:us-east-1:000000000000:pipeline/{pipeline['name']}/execution/")
    describe = sagemaker_client.describe_pipeline_execution(PipelineExecutionArn=arn)
    assert describe["PipelineExecutionStatus"] == "Executing"  # the gate is closed: nothing can end yet
    assert (describe["PipelineExecutionDisplayName"], describe["PipelineExecutionDescription"]) == ("gated-run", "first run")
    first = wait_for_step(sagemaker_client, arn, "First", "Executing")
    assert "EndTime" not in first and first["AttemptCount"] == 1
    summary = sagemaker_client.list_pipeline_executions(PipelineName=pipeline["name"])["PipelineExecutionSummaries"]
    assert [(s["PipelineExecutionArn"], s["PipelineExecutionStatus"]) for s in summary] == [(arn, "Executing")]

    pipeline["gate"].touch()
    describe = wait_for(sagemaker_client, arn)
    assert describe["PipelineExecutionStatus"] == "Succeeded" and "FailureReason" not in describe
    steps = sagemaker_client.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]
    assert [s["StepName"] for s in steps] == ["Second", "First"]  # newest first
    assert all(s["StepStatus"] == "Succeeded" and s["Metadata"]["ProcessingJob"]["Arn"] for s in steps)
    # the runner's output, written as files under the object root, is an S3 object for clients
    out = s3_client.get_object(Bucket=pipeline["bucket"], Key=f"executions/{arn.rsplit('/', 1)[1]}/Second/second.txt")
    assert out["Body"].read() == b"first step output + the needed object"


def test_stop_ends_a_running_execution_stopped_with_the_reason(sagemaker_client, s3_client, tmp_path):
    pipeline = gated_pipeline(sagemaker_client, s3_client, tmp_path)
    arn = sagemaker_client.start_pipeline_execution(PipelineName=pipeline["name"])["PipelineExecutionArn"]
    wait_for_step(sagemaker_client, arn, "First", "Executing")
    assert sagemaker_client.stop_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionArn"] == arn
    assert sagemaker_client.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"] in ("Stopping", "Stopped")
    describe = wait_for(sagemaker_client, arn)
    assert describe["PipelineExecutionStatus"] == "Stopped"
    assert describe["FailureReason"] == "Stopped by a StopPipelineExecution request"
    (step,) = sagemaker_client.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]
    assert (step["StepName"], step["StepStatus"]) == ("First", "Stopped") and step["EndTime"]
    with pytest.raises(ClientError) as caught:
        sagemaker_client.stop_pipeline_execution(PipelineExecutionArn=arn)
    # the wording the amazon provider's SageMakerHook.stop_pipeline relies on
    assert "Only pipelines with 'Executing' status can be stopped" in caught.value.response["Error"]["Message"]


def test_retry_after_a_failure_reuses_the_succeeded_steps(sagemaker_client, s3_client, tmp_path):
    pipeline = gated_pipeline(sagemaker_client, s3_client, tmp_path, needed=False)
    pipeline["gate"].touch()
    arn = sagemaker_client.start_pipeline_execution(PipelineName=pipeline["name"])["PipelineExecutionArn"]
    failed = wait_for(sagemaker_client, arn)
    assert failed["PipelineExecutionStatus"] == "Failed"
    assert failed["FailureReason"].startswith("Step failure: Second: ")
    steps = {s["StepName"]: s for s in sagemaker_client.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]}
    assert steps["Second"]["StepStatus"] == "Failed" and f"s3://{pipeline['bucket']}/needed/" in steps["Second"]["FailureReason"]
    job = steps["Second"]["Metadata"]["ProcessingJob"]["Arn"].rsplit("/", 1)[1]
    assert sagemaker_client.describe_processing_job(ProcessingJobName=job)["ProcessingJobStatus"] == "Failed"

    s3_client.put_object(Bucket=pipeline["bucket"], Key="needed/needed.txt", Body=b"fixed")
    assert sagemaker_client.retry_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionArn"] == arn
    describe = wait_for(sagemaker_client, arn)
    assert describe["PipelineExecutionStatus"] == "Succeeded"
    after = {s["StepName"]: s for s in sagemaker_client.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]}
    assert after["First"] == steps["First"]  # reused as it was: same start, same job
    assert after["Second"]["StepStatus"] == "Succeeded"
    assert (len(runs(pipeline["runs-first"])), len(runs(pipeline["runs-second"]))) == (1, 1)
    with pytest.raises(ClientError) as caught:
        sagemaker_client.retry_pipeline_execution(PipelineExecutionArn=arn)
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert "is Succeeded; only a Failed or Stopped execution can be retried" in caught.value.response["Error"]["Message"]


def test_two_simultaneous_starts_with_one_token_give_one_execution(sagemaker_client):
    name = unique("token")
    sagemaker_client.create_pipeline(PipelineName=name, PipelineDefinition=json.dumps(FAIL_DEFINITION), RoleArn=ROLE)
    token = unique("dag-run-token-0123456789abcdef")
    barrier, arns, errors = threading.Barrier(2), [], []

    def start():
        import boto3

        client = boto3.client("sagemaker")  # a client per thread, like two Airflow task tries
        barrier.wait()
        try:
            arns.append(client.start_pipeline_execution(PipelineName=name, ClientRequestToken=token,
                                                        PipelineParameters=[{"Name": "Why", "Value": "once"}])
                        ["PipelineExecutionArn"])
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors and len(arns) == 2 and arns[0] == arns[1]
    assert len(sagemaker_client.list_pipeline_executions(PipelineName=name)["PipelineExecutionSummaries"]) == 1
    assert wait_for(sagemaker_client, arns[0])["FailureReason"] == "once"
    with pytest.raises(ClientError, match="already used for a different StartPipelineExecution request"):
        sagemaker_client.start_pipeline_execution(PipelineName=name, ClientRequestToken=token,
                                    PipelineParameters=[{"Name": "Why", "Value": "twice"}])


def test_bad_parameters_are_refused_before_an_execution_exists(sagemaker_client):
    name = unique("params")
    sagemaker_client.create_pipeline(PipelineName=name, PipelineDefinition=json.dumps(FAIL_DEFINITION), RoleArn=ROLE)
    for parameters, expected in (([{"Name": "Nope", "Value": "1"}], "unknown parameter(s) Nope"),
                                 ([{"Name": "Count", "Value": "many"}], "Count")):
        with pytest.raises(ClientError) as caught:
            sagemaker_client.start_pipeline_execution(PipelineName=name, PipelineParameters=parameters)
        assert caught.value.response["Error"]["Code"] == "ValidationException"
        assert expected in caught.value.response["Error"]["Message"]
    assert sagemaker_client.list_pipeline_executions(PipelineName=name)["PipelineExecutionSummaries"] == []


def test_listings_sort_filter_and_paginate_as_the_api_defines(sagemaker_client):
    name = unique("pages")
    sagemaker_client.create_pipeline(PipelineName=name, PipelineDefinition=json.dumps(FAIL_DEFINITION), RoleArn=ROLE)
    started = [sagemaker_client.start_pipeline_execution(PipelineName=name, PipelineParameters=[{"Name": "Why", "Value": f"run {i}"}])
               ["PipelineExecutionArn"] for i in range(3)]
    for arn in started:
        wait_for(sagemaker_client, arn)
    seen, token = [], None
    while True:
        page = sagemaker_client.list_pipeline_executions(PipelineName=name, MaxResults=1, **({"NextToken": token} if token else {}))
        assert len(page["PipelineExecutionSummaries"]) == 1
        seen += [s["PipelineExecutionArn"] for s in page["PipelineExecutionSummaries"]]
        token = page.get("NextToken")
        if not token:
            break
    assert seen == started[::-1]  # newest first by default
    ascending = sagemaker_client.list_pipeline_executions(PipelineName=name, SortOrder="Ascending")["PipelineExecutionSummaries"]
    assert [s["PipelineExecutionArn"] for s in ascending] == started
    paginator = sagemaker_client.get_paginator("list_pipeline_executions")
    assert sum(len(p["PipelineExecutionSummaries"]) for p in paginator.paginate(
        PipelineName=name, PaginationConfig={"PageSize": 2})) == 3
    later = sagemaker_client.describe_pipeline_execution(PipelineExecutionArn=started[1])["CreationTime"]
    newer = sagemaker_client.list_pipeline_executions(PipelineName=name, CreatedAfter=later)["PipelineExecutionSummaries"]
    assert [s["PipelineExecutionArn"] for s in newer] == [started[2]]
    assert [s["PipelineExecutionFailureReason"] for s in ascending] == ["run 0", "run 1", "run 2"]
    with pytest.raises(ClientError, match="Invalid NextToken"):
        sagemaker_client.list_pipeline_executions(PipelineName=name, NextToken="garbage")


def test_an_execution_keeps_its_definition_and_parameters(sagemaker_client):
    name = unique("keeps")
    sagemaker_client.create_pipeline(PipelineName=name, PipelineDefinition=json.dumps(FAIL_DEFINITION), RoleArn=ROLE)
    arn = sagemaker_client.start_pipeline_execution(PipelineName=name, PipelineParameters=[{"Name": "Why", "Value": "v1"}])[
        "PipelineExecutionArn"]
    wait_for(sagemaker_client, arn)
    changed = {**FAIL_DEFINITION, "Steps": [{**FAIL_DEFINITION["Steps"][0], "Name": "Renamed"}]}
    sagemaker_client.update_pipeline(PipelineName=name, PipelineDefinition=json.dumps(changed))
    ran = sagemaker_client.describe_pipeline_definition_for_execution(PipelineExecutionArn=arn)["PipelineDefinition"]
    assert ran == json.dumps(FAIL_DEFINITION)  # the version it ran, exactly as sent, not the current one
    parameters = sagemaker_client.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)["PipelineParameters"]
    assert parameters == [{"Name": "Why", "Value": "v1"}]  # what it was started with
    assert sagemaker_client.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineVersionId"] == 1


def test_max_parallel_steps_come_from_the_start_request_the_pipeline_or_its_definition(sagemaker_client):
    def started(definition: dict, pipeline_config: dict | None, request_config: dict | None) -> int:
        name = unique("parallel")
        sagemaker_client.create_pipeline(PipelineName=name, PipelineDefinition=json.dumps(definition), RoleArn=ROLE,
                           **({"ParallelismConfiguration": pipeline_config} if pipeline_config else {}))
        arn = sagemaker_client.start_pipeline_execution(
            PipelineName=name, **({"ParallelismConfiguration": request_config} if request_config else {}))[
            "PipelineExecutionArn"]
        wait_for(sagemaker_client, arn)
        return sagemaker_client.describe_pipeline_execution(PipelineExecutionArn=arn)["ParallelismConfiguration"][
            "MaxParallelExecutionSteps"]

    own = {**FAIL_DEFINITION, "ParallelismConfiguration": {"MaxParallelExecutionSteps": 3}}
    assert started(FAIL_DEFINITION, None, None) == 2  # nobody says: the local default
    assert started(own, None, None) == 3
    assert started(own, {"MaxParallelExecutionSteps": 5}, None) == 5
    assert started(own, {"MaxParallelExecutionSteps": 5}, {"MaxParallelExecutionSteps": 4}) == 4
