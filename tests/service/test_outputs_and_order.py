"""Every emulated action's answer carries every member botocore's model marks required (nested ones too), and
ListPipelineExecutionSteps never lists a step as starting before a step it depends on ended — on the
conformance definitions run by the service: the abalone pipeline (Processing, Training, Model, RegisterModel,
Transform), a ForEach (children <body>-<i> with their IterationContext), a stopped and retried execution."""

from __future__ import annotations

import csv
import json
import sys
import time

import pytest
from service_support import REPO, ROLE, serve, unique, wait_for

from sm_pipeline.local.staging import stage_code_objects
from sm_pipeline.service.api import ACTIONS
from sm_pipeline.service.protocol import missing_required_members
from sm_pipeline.storage import ObjectStore

sys.path.insert(0, str(REPO / "tests"))
from conformance.step_order import step_order_problems  # noqa: E402

CONFORMANCE = REPO / "tests" / "conformance"


def token() -> str:
    """A ClientRequestToken (32 to 128 characters)."""
    return unique("token-of-32-characters-at-least")


def load(name: str) -> dict:
    return json.loads((CONFORMANCE / "definitions" / f"{name}.json").read_text())


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A service of its own over a root holding what the conformance definitions read."""
    root = tmp_path_factory.mktemp("outputs-root")
    store = ObjectStore(root)
    abalone = load("abalone")
    defaults = {p["Name"]: p.get("DefaultValue") for p in abalone["Parameters"]}
    store.put_file(defaults["InputData"], REPO / "data" / "abalone.csv")
    with open(REPO / "data" / "abalone.csv", newline="") as fh:
        rows = list(csv.reader(fh))[:41]
    rings = rows[0].index("rings")
    store.put_bytes(defaults["BatchData"], "".join(",".join(r[:rings] + r[rings + 1:]) + "\n" for r in rows).encode())
    stage_code_objects(abalone, root, [REPO / "processing_code"])
    store.put_file("s3://airsage-conformance/code/conformance_step.py", CONFORMANCE / "code" / "conformance_step.py")
    sagemaker_service = serve(root, "outputs")
    yield sagemaker_service
    assert sagemaker_service.stop() == 0, f"serve did not exit cleanly; log: {sagemaker_service.log}"


@pytest.fixture(scope="module")
def sagemaker_client(served):
    import boto3

    return boto3.client("sagemaker", endpoint_url=served.url)


class Answers:
    """Calls the service and keeps every answer, by action, for the required-members check."""

    def __init__(self, client) -> None:
        self.client = client
        self.seen: dict[str, list[dict]] = {}

    def __call__(self, action: str, **params) -> dict:
        method = "".join(f"_{c.lower()}" if c.isupper() else c for c in action).lstrip("_")
        method = method.replace("_m_l", "_ml")
        answer = getattr(self.client, method)(**params)
        answer.pop("ResponseMetadata", None)
        self.seen.setdefault(action, []).append(answer)
        return answer


def steps_of(call: Answers, arn: str) -> list[dict]:
    return call("ListPipelineExecutionSteps", PipelineExecutionArn=arn, MaxResults=100)["PipelineExecutionSteps"]


def run(call: Answers, definition: dict, prefix: str, **start) -> tuple[str, str]:
    name = unique(prefix)
    call("CreatePipeline", PipelineName=name, PipelineDefinition=json.dumps(definition), RoleArn=ROLE,
         ClientRequestToken=token(), Tags=[{"Key": "team", "Value": "conformance"}])
    arn = call("StartPipelineExecution", PipelineName=name, ClientRequestToken=token(),
               **start)["PipelineExecutionArn"]
    return name, arn


def test_every_action_answers_every_required_member_and_steps_are_listed_in_order(sagemaker_client):
    call = Answers(sagemaker_client)
    # The abalone pipeline: every job kind the runner runs, the model registry.
    abalone, abalone_arn = run(call, load("abalone"), "outputs-abalone")
    call("UpdatePipeline", PipelineName=abalone, PipelineDisplayName="abalone", RoleArn=ROLE)
    call("DescribePipeline", PipelineName=abalone)
    call("ListPipelines", PipelineNamePrefix="outputs")
    # A ForEach, and a run stopped and retried.
    for_each, for_each_arn = run(call, load("for_each_jobs"), "outputs-for-each")
    slow = load("parallelism")
    slow["Steps"][0]["Arguments"]["AppSpecification"]["ContainerArguments"][-1] = "30"
    sleepy, sleepy_arn = run(call, slow, "outputs-stop")
    while not any(s["StepStatus"] == "Executing" for s in steps_of(call, sleepy_arn)):
        time.sleep(0.2)
    call("StopPipelineExecution", PipelineExecutionArn=sleepy_arn, ClientRequestToken=token())
    assert wait_for(sagemaker_client, sleepy_arn)["PipelineExecutionStatus"] == "Stopped"
    stopped_job = next(s["Metadata"]["ProcessingJob"]["Arn"] for s in steps_of(call, sleepy_arn)
                       if s["StepStatus"] == "Stopped")
    call("DescribeProcessingJob", ProcessingJobName=stopped_job.rsplit("/", 1)[1])
    call("RetryPipelineExecution", PipelineExecutionArn=sleepy_arn, ClientRequestToken=token())
    call("StopPipelineExecution", PipelineExecutionArn=sleepy_arn, ClientRequestToken=token())

    for arn in (abalone_arn, for_each_arn, sleepy_arn):
        wait_for(sagemaker_client, arn)
    assert call("DescribePipelineExecution", PipelineExecutionArn=abalone_arn)["PipelineExecutionStatus"] == "Succeeded"
    assert call("DescribePipelineExecution", PipelineExecutionArn=for_each_arn)["PipelineExecutionStatus"] == "Succeeded"
    call("ListPipelineExecutions", PipelineName=abalone)
    # A selective execution of its evaluation, reusing the reference's preprocessing and training; versions.
    selective_arn = call("StartPipelineExecution", PipelineName=abalone, ClientRequestToken=token(),
                         SelectiveExecutionConfig={"SourcePipelineExecutionArn": abalone_arn,
                                                   "SelectedSteps": [{"StepName": "EvaluateAbalone"}]},
                         PipelineVersionId=1)["PipelineExecutionArn"]
    assert wait_for(sagemaker_client, selective_arn)["PipelineExecutionStatus"] == "Succeeded"
    selective = call("DescribePipelineExecution", PipelineExecutionArn=selective_arn)
    assert selective["SelectiveExecutionConfig"]["SourcePipelineExecutionArn"] == abalone_arn
    assert {s["StepName"]: s.get("SelectiveExecutionResult") for s in steps_of(call, selective_arn)} == {
        "PreprocessAbalone": {"SourcePipelineExecutionArn": abalone_arn},
        "TrainAbalone": {"SourcePipelineExecutionArn": abalone_arn}, "EvaluateAbalone": None}
    versions = call("ListPipelineVersions", PipelineName=abalone)["PipelineVersionSummaries"]
    assert [(v["PipelineVersionId"], v.get("LastExecutionPipelineExecutionArn")) for v in versions] == [
        (1, selective_arn)]
    call("DescribePipelineDefinitionForExecution", PipelineExecutionArn=abalone_arn)
    call("ListPipelineParametersForExecution", PipelineExecutionArn=abalone_arn)

    # Every step, as the service lists it, in dependency order.
    for name, arn in ((abalone, abalone_arn), (for_each, for_each_arn), (sleepy, sleepy_arn)):
        definition = json.loads(call("DescribePipelineDefinitionForExecution", PipelineExecutionArn=arn)
                                ["PipelineDefinition"])
        assert step_order_problems(definition, steps_of(call, arn)) == [], name

    # The jobs the steps ran.
    listed = {s["StepName"]: s for s in steps_of(call, abalone_arn)}
    for job, action in (("ProcessingJob", "DescribeProcessingJob"), ("TrainingJob", "DescribeTrainingJob"),
                        ("TransformJob", "DescribeTransformJob")):
        arn = next(s["Metadata"][job]["Arn"] for s in listed.values() if job in s.get("Metadata", {}))
        call(action, **{f"{job}Name": arn.rsplit("/", 1)[1]})

    # The ForEach's children and metadata, as SageMaker lists them.
    children = {s["StepName"]: s for s in steps_of(call, for_each_arn) if "IterationContext" in s}
    assert sorted(children) == ["ItemOnHosts-0", "ItemOnHosts-1", "ItemOnHosts-2"]
    assert children["ItemOnHosts-1"]["IterationContext"] == {
        "ParentStepName": "EachOnHosts", "Index": 1, "Item": '{"name": "south", "hosts": 1}'}
    each = next(s for s in steps_of(call, for_each_arn) if s["StepName"] == "EachOnHosts")
    assert each["Metadata"]["ForEach"] == {
        "Status": "Succeeded", "InputItemCount": 3, "TotalStepCount": 3, "SucceededStepCount": 3,
        "FailedStepCount": 0, "StoppedStepCount": 0, "Selector": {"StepName": "ItemOnHosts", "Index": 1}}

    # The model registry.
    group = load("abalone")["Steps"][3]["Arguments"]["IfSteps"][0]["Arguments"]["ModelPackageGroupName"]
    packages = call("ListModelPackages", ModelPackageGroupName=group)["ModelPackageSummaryList"]
    package = packages[0]["ModelPackageArn"]
    call("DescribeModelPackage", ModelPackageName=package)
    call("UpdateModelPackage", ModelPackageArn=package, ModelApprovalStatus="Approved")
    call("ListModelPackageGroups")
    call("DescribeModelPackageGroup", ModelPackageGroupName=group)

    # Tags, then the end of a pipeline.
    pipeline_arn = call("DescribePipeline", PipelineName=sleepy)["PipelineArn"]
    call("AddTags", ResourceArn=pipeline_arn, Tags=[{"Key": "stage", "Value": "test"}])
    call("ListTags", ResourceArn=pipeline_arn)
    call("DeleteTags", ResourceArn=pipeline_arn, TagKeys=["stage"])
    call("DeletePipeline", PipelineName=sleepy, ClientRequestToken=token())

    assert set(call.seen) == set(ACTIONS), f"not exercised: {sorted(set(ACTIONS) - set(call.seen))}"
    missing = {action: problems for action, answers in call.seen.items()
               for problems in [sorted({p for answer in answers for p in missing_required_members(action, answer)})]
               if problems}
    assert missing == {}
