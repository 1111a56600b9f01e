"""The project's own pipeline, end to end, with real training, against the served instance.

The definition comes from ``python -m sm_pipeline definition``; it is deployed with the project's
SageMakerPipelineHook (the provider's SageMakerHook underneath), its code and data go up with boto3,
and both gate paths run: MseThreshold 6.0 → Succeeded with a model package, 0.001 → Failed with the
Fail step's reason. Clients get nothing but ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pandas as pd
import pytest
from service_support import REPO, ROLE, TERMINAL, unique

pytestmark = pytest.mark.slow

BUCKET, PREFIX = "airsage-artifacts", "abalone"
GROUP = "airsage-abalone-models"


@pytest.fixture(scope="module")
def abalone_definition(tmp_path_factory) -> str:
    output = tmp_path_factory.mktemp("definition") / "definition.json"
    subprocess.run([sys.executable, "-m", "sm_pipeline", "definition", "--output", str(output)], cwd=REPO,
                   check=True, timeout=900, env=os.environ.copy(), capture_output=True)
    return output.read_text()


def run_to_end(sagemaker_client, name: str, display: str, threshold: str, data: dict) -> dict:
    arn = sagemaker_client.start_pipeline_execution(
        PipelineName=name, PipelineExecutionDisplayName=display,
        PipelineParameters=[{"Name": "InputData", "Value": data["input"]}, {"Name": "BatchData", "Value": data["batch"]},
                            {"Name": "MseThreshold", "Value": threshold}])["PipelineExecutionArn"]
    seen = []
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        status = sagemaker_client.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"]
        if not seen or seen[-1] != status:
            seen.append(status)
        if status in TERMINAL:
            break
        time.sleep(0.5)
    steps = sagemaker_client.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]
    return {"arn": arn, "statuses": seen, "describe": sagemaker_client.describe_pipeline_execution(PipelineExecutionArn=arn),
            "steps": {s["StepName"]: s for s in steps}}


@pytest.fixture(scope="module")
def abalone(sagemaker_service, abalone_definition, tmp_path_factory):
    """The pipeline deployed through the project's hook, run on both gate paths (once per module)."""
    import boto3

    from airsage.hooks.sagemaker_pipeline import SageMakerPipelineHook
    from sm_pipeline.local.staging import code_input_uris

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ENDPOINT_URL", sagemaker_service.url)
        # the connection names no endpoint: AWS_ENDPOINT_URL is the one setting that points it here
        patch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps({
            "conn_type": "aws", "login": "testing", "password": "testing", "extra": {"region_name": "us-east-1"}}))
        sagemaker_client, s3_client = boto3.client("sagemaker"), boto3.client("s3")
        s3_client.create_bucket(Bucket=BUCKET)
        definition = json.loads(abalone_definition)
        for uri in code_input_uris(definition):
            key = uri.removeprefix(f"s3://{BUCKET}/")
            s3_client.upload_file(str(REPO / "processing_code" / key.rsplit("/", 1)[1]), BUCKET, key)
        batch = tmp_path_factory.mktemp("data") / "batch.csv"
        pd.read_csv(REPO / "data" / "abalone.csv").drop(columns=["rings"]).head(60).to_csv(batch, index=False)
        s3_client.upload_file(str(REPO / "data" / "abalone.csv"), BUCKET, f"{PREFIX}/input/ds=2026-11-03/abalone.csv")
        s3_client.upload_file(str(batch), BUCKET, f"{PREFIX}/batch/ds=2026-11-03/batch.csv")
        data = {"input": f"s3://{BUCKET}/{PREFIX}/input/ds=2026-11-03/abalone.csv",
                "batch": f"s3://{BUCKET}/{PREFIX}/batch/ds=2026-11-03/batch.csv"}

        hook = SageMakerPipelineHook(aws_conn_id="aws_default")
        name = unique("airsage-abalone")
        deployed = hook.upsert_pipeline(name, abalone_definition, ROLE, tags={"cost-center": "ml"})
        passed = run_to_end(sagemaker_client, name, "gate-pass", "6.0", data)
        failed = run_to_end(sagemaker_client, name, "gate-fail", "0.001", data)
        yield {"sm": sagemaker_client, "s3": s3_client, "hook": hook, "name": name, "deployed": deployed, "passed": passed,
               "failed": failed, "definition": abalone_definition}


def test_the_pass_path_trains_registers_and_transforms(abalone):
    sagemaker_client, passed = abalone["sm"], abalone["passed"]
    assert passed["statuses"][0] == "Executing" and passed["statuses"][-1] == "Succeeded"
    assert passed["describe"]["PipelineExecutionDisplayName"] == "gate-pass"
    steps = passed["steps"]
    assert set(steps) == {"PreprocessAbalone", "TrainAbalone", "EvaluateAbalone", "CheckMseAbalone",
                          "RegisterAbaloneModel", "CreateAbaloneModel", "TransformAbalone"}  # not the Fail step
    assert all(s["StepStatus"] == "Succeeded" for s in steps.values())
    assert steps["CheckMseAbalone"]["Metadata"]["Condition"]["Outcome"] == "True"

    training = steps["TrainAbalone"]["Metadata"]["TrainingJob"]["Arn"].rsplit("/", 1)[1]
    job = sagemaker_client.describe_training_job(TrainingJobName=training)
    assert job["TrainingJobStatus"] == "Completed"
    artifact = job["ModelArtifacts"]["S3ModelArtifacts"]
    assert abalone["s3"].head_object(Bucket=BUCKET, Key=artifact.removeprefix(f"s3://{BUCKET}/"))["ContentLength"] > 0

    package_arn = steps["RegisterAbaloneModel"]["Metadata"]["RegisterModel"]["Arn"]
    group = package_arn.split(":model-package/")[1].rsplit("/", 1)[0]
    # the session's service is shared with other tests registering abalone versions: this run's is one of them
    listed = {p["ModelPackageArn"]: p for p in
              sagemaker_client.list_model_packages(ModelPackageGroupName=group, MaxResults=100)["ModelPackageSummaryList"]}
    assert listed[package_arn]["ModelApprovalStatus"] == "PendingManualApproval"
    # other tests' groups come first (newest first, one page of ten): read every page, as a user's script would
    pages = sagemaker_client.get_paginator("list_model_package_groups").paginate()
    assert group in [g["ModelPackageGroupName"].lower() for page in pages for g in page["ModelPackageGroupSummaryList"]]
    sagemaker_client.update_model_package(ModelPackageArn=package_arn, ModelApprovalStatus="Approved",
                            ApprovalDescription="mse within the threshold")
    package = sagemaker_client.describe_model_package(ModelPackageName=package_arn)
    assert (package["ModelApprovalStatus"], package["ApprovalDescription"]) == ("Approved", "mse within the threshold")
    assert package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"] == artifact


def test_the_fail_path_fails_with_the_fail_steps_reason(abalone):
    failed, passed = abalone["failed"], abalone["passed"]
    assert failed["statuses"][-1] == "Failed"
    reason = failed["describe"]["FailureReason"]
    assert "MseThreshold" in reason and "0.001" in reason
    steps = failed["steps"]
    assert steps["AbaloneMseFail"]["StepStatus"] == "Failed"
    assert steps["AbaloneMseFail"]["FailureReason"] == reason
    assert steps["AbaloneMseFail"]["Metadata"]["Fail"]["ErrorMessage"] == reason
    assert steps["CheckMseAbalone"]["Metadata"]["Condition"]["Outcome"] == "False"
    assert "RegisterAbaloneModel" not in steps  # the branch not taken is not listed, as in SageMaker
    cached = {name for name, s in steps.items() if s.get("CacheHitResult")}
    assert cached == {"PreprocessAbalone", "TrainAbalone", "EvaluateAbalone"}
    assert all(steps[name]["CacheHitResult"]["SourcePipelineExecutionArn"] == passed["arn"] for name in cached)


def test_the_project_and_provider_hooks_work_against_the_service(abalone):
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    hook, failed = abalone["hook"], abalone["failed"]
    assert abalone["deployed"]["action"] == "created"
    again = hook.upsert_pipeline(abalone["name"], abalone["definition"], ROLE)
    assert again["action"] == "unchanged"
    tags = {t["Key"]: t["Value"] for t in abalone["sm"].list_tags(ResourceArn=again["pipeline_arn"])["Tags"]}
    assert tags["cost-center"] == "ml" and tags["airsage:definition-sha256"] == again["definition_sha256"]

    details = hook.failure_details(failed["arn"])
    assert details["status"] == "Failed" and details["reason"] == failed["describe"]["FailureReason"]
    assert details["steps_available"] and [s["name"] for s in details["failed_steps"]] == ["AbaloneMseFail"]
    uri = hook.processing_output_uri(details["steps"], "EvaluateAbalone", "evaluation")
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    report = json.loads(S3Hook(aws_conn_id="aws_default").read_key(f"{key.rstrip('/')}/evaluation.json", bucket))
    assert str(report["regression_metrics"]["mse"]["value"]) in details["reason"]

    assert hook.describe_pipeline_exec(failed["arn"], verbose=True)["PipelineExecutionStatus"] == "Failed"
    found = hook.find_executions(abalone["name"], "gate-fail")
    assert [e["PipelineExecutionArn"] for e in found] == [failed["arn"]]
    assert hook.definition_for_execution(failed["arn"]) == json.loads(abalone["definition"])
    assert hook.execution_parameters(failed["arn"])["MseThreshold"] == "0.001"


def test_the_sagemaker_sdk_reads_the_pipeline_and_its_execution(abalone):
    from sagemaker.core.resources import Pipeline, PipelineExecution

    pipeline = Pipeline.get(pipeline_name=abalone["name"])
    assert (pipeline.pipeline_arn, pipeline.pipeline_status) == (abalone["deployed"]["pipeline_arn"], "Active")
    execution = PipelineExecution.get(pipeline_execution_arn=abalone["passed"]["arn"])
    assert execution.pipeline_execution_status == "Succeeded"
    assert {s.step_name for s in execution.get_all_steps()} == set(abalone["passed"]["steps"])
