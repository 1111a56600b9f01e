"""references.json (SDK v3): every Get namespace the SDK writes outside a ForEach — Parameters, Execution (each
variable), Steps and PipelineExperimentConfig (ExperimentName, TrialName) — resolved as SageMaker resolves them."""

from __future__ import annotations

from datetime import datetime

from sm_pipeline.arns import execution_arn, pipeline_arn
from sm_pipeline.local import LocalExecutionStore, run_pipeline

from .conftest import load


def test_the_sdk_writes_the_experiment_config_and_references_to_it():
    definition = load("references")
    assert definition["PipelineExperimentConfig"] == {
        "ExperimentName": {"Std:Join": {"On": "-", "Values": ["experiment", {"Get": "Execution.PipelineName"}]}},
        "TrialName": {"Std:Join": {"On": "-", "Values": ["trial", {"Get": "Execution.PipelineExecutionId"}]}}}
    values = definition["Steps"][1]["Arguments"]["AppSpecification"]["ContainerArguments"][2]["Std:Join"]["Values"]
    assert [value["Get"] for value in values] == [
        "Parameters.Tag", "Execution.PipelineName", "Execution.PipelineArn", "Execution.PipelineExecutionId",
        "Execution.PipelineExecutionArn", "Execution.StartDateTime", "Execution.CurrentDateTime",
        "Steps.FirstStep.ProcessingJobName", "PipelineExperimentConfig.ExperimentName",
        "PipelineExperimentConfig.TrialName"]


def test_every_namespace_resolves(store):
    result = run_pipeline(load("references"), {"Tag": "given"}, root=store.root, pipeline_name="conf-references")
    assert result.status == "Succeeded", result.failure_reason
    properties = LocalExecutionStore(store.root).step_properties("conf-references", result.execution_id)
    joined = properties["EchoReferences"]["Properties"]["AppSpecification"]["ContainerArguments"][2].split("|")
    execution_id = result.execution_id
    (tag, name, arn, given_id, given_arn, start, current, job, experiment, trial) = joined
    assert (tag, name, arn, given_id, given_arn) == (
        "given", "conf-references", pipeline_arn("conf-references"), execution_id,
        execution_arn("conf-references", execution_id))
    assert datetime.fromisoformat(start) <= datetime.fromisoformat(current)
    assert job == properties["FirstStep"]["Properties"]["ProcessingJobName"]
    assert (experiment, trial) == ("experiment-conf-references", f"trial-{execution_id}")
    assert result.describe()["PipelineExperimentConfig"] == {"ExperimentName": experiment, "TrialName": trial}
