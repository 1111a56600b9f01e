"""The wire protocol as clients meet it: AWS-shaped errors boto3 raises as ClientError with the right codes."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from service_support import ROLE, unique

FAIL_DEFINITION = {"Version": "2020-12-01", "Steps": [{"Name": "Boom", "Type": "Fail", "Arguments": {"ErrorMessage": "no"}}]}


def raw_call(url: str, target: str | None, body: bytes) -> tuple[int, dict]:
    """POST a JSON 1.1 request without botocore (which refuses unknown actions before sending)."""
    headers = {"Content-Type": "application/x-amz-json-1.1"}
    if target is not None:
        headers["X-Amz-Target"] = target
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - http loopback
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - the loopback service
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def error_of(call) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Message"]


@pytest.fixture
def unchecked(aws_endpoint):
    """A SageMaker client that sends what it is given (no client-side validation), to reach the server's."""
    import boto3

    return boto3.client("sagemaker", config=Config(parameter_validation=False))


def test_unknown_action_and_malformed_requests_get_aws_shaped_errors(aws_endpoint):
    status, body = raw_call(aws_endpoint, "SageMaker.NoSuchAction", b"{}")
    assert (status, body["__type"]) == (400, "UnknownOperationException") and "NoSuchAction" in body["message"]
    status, body = raw_call(aws_endpoint + "/", "SageMaker.ListPipelines", b"{not json")
    assert (status, body["__type"]) == (400, "SerializationException")
    status, body = raw_call(aws_endpoint, "SageMaker.ListPipelines", b"[]")
    assert (status, body["__type"]) == (400, "SerializationException")
    status, body = raw_call(aws_endpoint, "SageMaker.ListPipelines", b"")  # no body is an empty request
    assert status == 200 and "PipelineSummaries" in body


def test_actions_sagemaker_has_but_the_emulator_does_not_are_501(sagemaker_client):
    code, status, message = error_of(lambda: sagemaker_client.list_training_jobs())
    assert (code, status) == ("NotImplemented", 501)
    assert "SageMaker.ListTrainingJobs is not emulated" in message


def test_invalid_parameters_are_rejected_as_sagemaker_rejects_them(unchecked, aws_endpoint):
    code, status, message = error_of(lambda: unchecked.describe_pipeline())
    assert (code, status) == ("ValidationException", 400)
    assert "Value null at 'pipelineName' failed to satisfy constraint: Member must not be null" in message
    code, _, message = error_of(lambda: unchecked.list_pipeline_executions(PipelineName="p", MaxResults=1000,
                                                                          SortOrder="Sideways"))
    assert code == "ValidationException" and message.startswith("2 validation errors detected")
    assert "Member must have value less than or equal to 100" in message and "enum value set" in message
    code, _, message = error_of(lambda: unchecked.describe_pipeline(PipelineName="not a name!"))
    assert code == "ValidationException" and "regular expression pattern" in message
    code, _, message = error_of(lambda: unchecked.describe_pipeline(PipelineName=7))
    assert code == "SerializationException" and "Expected a string for 'pipelineName'" in message
    status, body = raw_call(aws_endpoint, "SageMaker.ListPipelines", b'{"Bogus": 1}')  # botocore cannot send it
    assert (status, body["__type"]) == (400, "ValidationException") and "Unknown member 'Bogus'" in body["message"]


def test_unknown_resources_are_resource_not_found(sagemaker_client):
    with pytest.raises(sagemaker_client.exceptions.ResourceNotFound):
        sagemaker_client.describe_pipeline(PipelineName=unique("missing"))
    code, status, message = error_of(lambda: sagemaker_client.list_pipeline_executions(PipelineName="missing-pipeline"))
    assert (code, status) == ("ResourceNotFound", 400) and "'missing-pipeline' does not exist" in message
    arn = "arn:aws:sagemaker:us-east-1:000000000000:pipeline/missing-pipeline/execution/abc123"
    for call in (lambda: sagemaker_client.describe_pipeline_execution(PipelineExecutionArn=arn),
                 lambda: sagemaker_client.list_pipeline_execution_steps(PipelineExecutionArn=arn),
                 lambda: sagemaker_client.stop_pipeline_execution(PipelineExecutionArn=arn)):
        assert error_of(call)[0] == "ResourceNotFound"
    code, _, message = error_of(lambda: sagemaker_client.describe_processing_job(ProcessingJobName="pipelines-nosuchjob-x"))
    assert code == "ResourceNotFound"


def test_pipeline_definitions_are_checked_and_names_are_unique(sagemaker_client):
    name = unique("proto")
    code, _, message = error_of(lambda: sagemaker_client.create_pipeline(PipelineName=name, PipelineDefinition="{oops",
                                                           RoleArn=ROLE))
    assert code == "ValidationException" and "not valid JSON" in message
    bad = {"Version": "2020-12-01", "Steps": [{"Name": "X", "Type": "Teleport", "Arguments": {}}]}
    code, _, message = error_of(lambda: sagemaker_client.create_pipeline(PipelineName=name, PipelineDefinition=json.dumps(bad),
                                                           RoleArn=ROLE))
    assert code == "ValidationException" and "unknown step type 'Teleport'" in message
    arn = sagemaker_client.create_pipeline(PipelineName=name, PipelineDefinition=json.dumps(FAIL_DEFINITION), RoleArn=ROLE,
                             Tags=[{"Key": "team", "Value": "ml"}])["PipelineArn"]
    assert arn == f"arn:aws:sagemaker:us-east-1:000000000000:pipeline/{name}"
    code, _, message = error_of(lambda: sagemaker_client.create_pipeline(PipelineName=name.upper(),
                                                           PipelineDefinition=json.dumps(FAIL_DEFINITION), RoleArn=ROLE))
    assert code == "ValidationException" and "already exists" in message  # what SDK and hook look for
    assert sagemaker_client.list_tags(ResourceArn=arn)["Tags"] == [{"Key": "team", "Value": "ml"}]
    described = sagemaker_client.describe_pipeline(PipelineName=arn)  # by ARN works too
    assert described["PipelineDefinition"] == json.dumps(FAIL_DEFINITION)  # the text exactly as sent
    assert described["PipelineStatus"] == "Active"
    updated = sagemaker_client.update_pipeline(PipelineName=name, PipelineDefinition=json.dumps(FAIL_DEFINITION, indent=1))
    assert updated["PipelineVersionId"] == 2
    assert sagemaker_client.describe_pipeline(PipelineName=name, PipelineVersionId=1)["PipelineDefinition"] == json.dumps(FAIL_DEFINITION)
    assert name in [s["PipelineName"] for s in sagemaker_client.list_pipelines(PipelineNamePrefix=name)["PipelineSummaries"]]
    sagemaker_client.delete_pipeline(PipelineName=name)
    assert error_of(lambda: sagemaker_client.describe_pipeline(PipelineName=name))[0] == "ResourceNotFound"


def test_a_client_request_token_means_one_request(sagemaker_client):
    name = unique("token")
    token = "t" * 40
    first = sagemaker_client.create_pipeline(PipelineName=name, PipelineDefinition=json.dumps(FAIL_DEFINITION), RoleArn=ROLE,
                               ClientRequestToken=token)
    again = sagemaker_client.create_pipeline(PipelineName=name, PipelineDefinition=json.dumps(FAIL_DEFINITION), RoleArn=ROLE,
                               ClientRequestToken=token)
    assert first["PipelineArn"] == again["PipelineArn"]
    code, _, message = error_of(lambda: sagemaker_client.create_pipeline(PipelineName=unique("other"), RoleArn=ROLE,
                                                           PipelineDefinition=json.dumps(FAIL_DEFINITION),
                                                           ClientRequestToken=token))
    assert code == "ValidationException" and "already used for a different CreatePipeline request" in message


def test_a_health_path_answers_for_healthchecks(aws_endpoint):
    with urllib.request.urlopen(aws_endpoint + "/_airsage/health", timeout=60) as response:  # noqa: S310 - loopback
        assert response.status == 200 and json.loads(response.read())["status"] == "ok"


def test_missing_required_members_are_named_by_their_path():
    from sm_pipeline.service.protocol import missing_required_members

    answer = {"ModelPackageName": "g", "ModelPackageArn": "arn:aws:sagemaker:us-east-1:000000000000:model-package/g/1",
              "CreationTime": 0, "ModelPackageStatus": "Completed",
              "InferenceSpecification": {}}
    assert missing_required_members("DescribeModelPackage", answer) == [
        "DescribeModelPackage.ModelPackageStatusDetails", "DescribeModelPackage.InferenceSpecification.Containers"]
