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


def test_executing_is_observable_until_the_run_succeeds(sm, s3, tmp_path):
    pipeline = gated_pipeline(sm, s3, tmp_path)
    arn = sm.start_pipeline_execution(PipelineName=pipeline["name"], PipelineExecutionDisplayName="gated-run",
                                      PipelineExecutionDescription="first run")["PipelineExecutionArn"]
    assert arn.startswith(f"arn:aws:sagemaker:us-east-1:000000000000:pipeline/{pipeline['name']}/execution/")
    describe = sm.describe_pipeline_execution(PipelineExecutionArn=arn)
    assert describe["PipelineExecutionStatus"] == "Executing"  # the gate is closed: nothing can end yet
    assert (describe["PipelineExecutionDisplayName"], describe["PipelineExecutionDescription"]) == ("gated-run", "first run")
    first = wait_for_step(sm, arn, "First", "Executing")
    assert "EndTime" not in first and first["AttemptCount"] == 1
    summary = sm.list_pipeline_executions(PipelineName=pipeline["name"])["PipelineExecutionSummaries"]
    assert [(s["PipelineExecutionArn"], s["PipelineExecutionStatus"]) for s in summary] == [(arn, "Executing")]

    pipeline["gate"].touch()
    describe = wait_for(sm, arn)
    assert describe["PipelineExecutionStatus"] == "Succeeded" and "FailureReason" not in describe
    steps = sm.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]
    assert [s["StepName"] for s in steps] == ["Second", "First"]  # newest first
    assert all(s["StepStatus"] == "Succeeded" and s["Metadata"]["ProcessingJob"]["Arn"] for s in steps)
    # the runner's output, written as files under the object root, is an S3 object for clients
    out = s3.get_object(Bucket=pipeline["bucket"], Key=f"executions/{arn.rsplit('/', 1)[1]}/Second/second.txt")
    assert out["Body"].read() == b"first step output + the needed object"


def test_stop_ends_a_running_execution_stopped_with_the_reason(sm, s3, tmp_path):
    pipeline = gated_pipeline(sm, s3, tmp_path)
    arn = sm.start_pipeline_execution(PipelineName=pipeline["name"])["PipelineExecutionArn"]
    wait_for_step(sm, arn, "First", "Executing")
    assert sm.stop_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionArn"] == arn
    assert sm.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"] in ("Stopping", "Stopped")
    describe = wait_for(sm, arn)
    assert describe["PipelineExecutionStatus"] == "Stopped"
    assert describe["FailureReason"] == "Stopped by a StopPipelineExecution request"
    (step,) = sm.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]
    assert (step["StepName"], step["StepStatus"]) == ("First", "Stopped") and step["EndTime"]
    with pytest.raises(ClientError) as caught:
        sm.stop_pipeline_execution(PipelineExecutionArn=arn)
    # the wording the amazon provider's SageMakerHook.stop_pipeline relies on
    assert "Only pipelines with 'Executing' status can be stopped" in caught.value.response["Error"]["Message"]


def test_retry_after_a_failure_reuses_the_succeeded_steps(sm, s3, tmp_path):
    pipeline = gated_pipeline(sm, s3, tmp_path, needed=False)
    pipeline["gate"].touch()
    arn = sm.start_pipeline_execution(PipelineName=pipeline["name"])["PipelineExecutionArn"]
    failed = wait_for(sm, arn)
    assert failed["PipelineExecutionStatus"] == "Failed"
    assert failed["FailureReason"].startswith("Step failure: Second: ")
    steps = {s["StepName"]: s for s in sm.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]}
    assert steps["Second"]["StepStatus"] == "Failed" and f"s3://{pipeline['bucket']}/needed/" in steps["Second"]["FailureReason"]
    job = steps["Second"]["Metadata"]["ProcessingJob"]["Arn"].rsplit("/", 1)[1]
    assert sm.describe_processing_job(ProcessingJobName=job)["ProcessingJobStatus"] == "Failed"

    s3.put_object(Bucket=pipeline["bucket"], Key="needed/needed.txt", Body=b"fixed")
    assert sm.retry_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionArn"] == arn
    describe = wait_for(sm, arn)
    assert describe["PipelineExecutionStatus"] == "Succeeded"
    after = {s["StepName"]: s for s in sm.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]}
    assert after["First"] == steps["First"]  # reused as it was: same start, same job
    assert after["Second"]["StepStatus"] == "Succeeded"
    assert (len(runs(pipeline["runs-first"])), len(runs(pipeline["runs-second"]))) == (1, 1)
    with pytest.raises(ClientError) as caught:
        sm.retry_pipeline_execution(PipelineExecutionArn=arn)
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert "is Succeeded; only a Failed or Stopped execution can be retried" in caught.value.response["Error"]["Message"]


def test_two_simultaneous_starts_with_one_token_give_one_execution(sm):
    name = unique("token")
    sm.create_pipeline(PipelineName=name, PipelineDefinition=json.dumps(FAIL_DEFINITION), RoleArn=ROLE)
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
    assert len(sm.list_pipeline_executions(PipelineName=name)["PipelineExecutionSummaries"]) == 1
    assert wait_for(sm, arns[0])["FailureReason"] == "once"
    with pytest.raises(ClientError, match="already used for a different StartPipelineExecution request"):
        sm.start_pipeline_execution(PipelineName=name, ClientRequestToken=token,
                                    PipelineParameters=[{"Name": "Why", "Value": "twice"}])


def test_bad_parameters_are_refused_before_an_execution_exists(sm):
    name = unique("params")
    sm.create_pipeline(PipelineName=name, PipelineDefinition=json.dumps(FAIL_DEFINITION), RoleArn=ROLE)
    for parameters, expected in (([{"Name": "Nope", "Value": "1"}], "unknown parameter(s) Nope"),
                                 ([{"Name": "Count", "Value": "many"}], "Count")):
        with pytest.raises(ClientError) as caught:
            sm.start_pipeline_execution(PipelineName=name, PipelineParameters=parameters)
        assert caught.value.response["Error"]["Code"] == "ValidationException"
        assert expected in caught.value.response["Error"]["Message"]
    assert sm.list_pipeline_executions(PipelineName=name)["PipelineExecutionSummaries"] == []


def test_listings_sort_filter_and_paginate_as_the_api_defines(sm):
    name = unique("pages")
    sm.create_pipeline(PipelineName=name, PipelineDefinition=json.dumps(FAIL_DEFINITION), RoleArn=ROLE)
    started = [sm.start_pipeline_execution(PipelineName=name, PipelineParameters=[{"Name": "Why", "Value": f"run {i}"}])
               ["PipelineExecutionArn"] for i in range(3)]
    for arn in started:
        wait_for(sm, arn)
    seen, token = [], None
    while True:
        page = sm.list_pipeline_executions(PipelineName=name, MaxResults=1, **({"NextToken": token} if token else {}))
        assert len(page["PipelineExecutionSummaries"]) == 1
        seen += [s["PipelineExecutionArn"] for s in page["PipelineExecutionSummaries"]]
        token = page.get("NextToken")
        if not token:
            break
    assert seen == started[::-1]  # newest first by default
    ascending = sm.list_pipeline_executions(PipelineName=name, SortOrder="Ascending")["PipelineExecutionSummaries"]
    assert [s["PipelineExecutionArn"] for s in ascending] == started
    paginator = sm.get_paginator("list_pipeline_executions")
    assert sum(len(p["PipelineExecutionSummaries"]) for p in paginator.paginate(
        PipelineName=name, PaginationConfig={"PageSize": 2})) == 3
    later = sm.describe_pipeline_execution(PipelineExecutionArn=started[1])["CreationTime"]
    newer = sm.list_pipeline_executions(PipelineName=name, CreatedAfter=later)["PipelineExecutionSummaries"]
    assert [s["PipelineExecutionArn"] for s in newer] == [started[2]]
    assert [s["PipelineExecutionFailureReason"] for s in ascending] == ["run 0", "run 1", "run 2"]
    with pytest.raises(ClientError, match="Invalid NextToken"):
        sm.list_pipeline_executions(PipelineName=name, NextToken="garbage")


def test_an_execution_keeps_its_definition_and_parameters(sm):
    name = unique("keeps")
    sm.create_pipeline(PipelineName=name, PipelineDefinition=json.dumps(FAIL_DEFINITION), RoleArn=ROLE)
    arn = sm.start_pipeline_execution(PipelineName=name, PipelineParameters=[{"Name": "Why", "Value": "v1"}])[
        "PipelineExecutionArn"]
    wait_for(sm, arn)
    changed = {**FAIL_DEFINITION, "Steps": [{**FAIL_DEFINITION["Steps"][0], "Name": "Renamed"}]}
    sm.update_pipeline(PipelineName=name, PipelineDefinition=json.dumps(changed))
    ran = sm.describe_pipeline_definition_for_execution(PipelineExecutionArn=arn)["PipelineDefinition"]
    assert ran == json.dumps(FAIL_DEFINITION)  # the version it ran, exactly as sent, not the current one
    parameters = sm.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)["PipelineParameters"]
    assert parameters == [{"Name": "Why", "Value": "v1"}]  # what it was started with
    assert sm.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineVersionId"] == 1


def test_max_parallel_steps_come_from_the_start_request_the_pipeline_or_its_definition(sm):
    def started(definition: dict, pipeline_config: dict | None, request_config: dict | None) -> int:
        name = unique("parallel")
        sm.create_pipeline(PipelineName=name, PipelineDefinition=json.dumps(definition), RoleArn=ROLE,
                           **({"ParallelismConfiguration": pipeline_config} if pipeline_config else {}))
        arn = sm.start_pipeline_execution(
            PipelineName=name, **({"ParallelismConfiguration": request_config} if request_config else {}))[
            "PipelineExecutionArn"]
        wait_for(sm, arn)
        return sm.describe_pipeline_execution(PipelineExecutionArn=arn)["ParallelismConfiguration"][
            "MaxParallelExecutionSteps"]

    own = {**FAIL_DEFINITION, "ParallelismConfiguration": {"MaxParallelExecutionSteps": 3}}
    assert started(FAIL_DEFINITION, None, None) == 2  # nobody says: the local default
    assert started(own, None, None) == 3
    assert started(own, {"MaxParallelExecutionSteps": 5}, None) == 5
    assert started(own, {"MaxParallelExecutionSteps": 5}, {"MaxParallelExecutionSteps": 4}) == 4
