"""The pinned SDK's ModelStep (an ordinary Step since SDK 3.21) emits exactly the steps the runner and
the operators read: one RegisterModel and one Model step under the names we gave, no collection of
``-RegisterModel``/``-CreateModel``/``-RepackModel`` steps, with the argument keys the code reads.

The definition is the committed abalone.json, which tests/sm_pipeline/test_definition.py proves is what
sm_pipeline.abalone.definition builds with the pinned SDK today (test_model_steps_match_the_conformance_copy)."""

from __future__ import annotations

import importlib.metadata

from sm_pipeline.definition_schema import argument_problems
from sm_pipeline.step_graph import flatten_steps, step_dependencies

from .conftest import load


def test_the_pinned_sdk_has_modelstep_as_an_ordinary_step():
    major, minor = (int(part) for part in importlib.metadata.version("sagemaker-mlops").split(".")[:2])
    from sagemaker.mlops.workflow.model_step import ModelStep
    from sagemaker.mlops.workflow.step_collections import StepCollection
    from sagemaker.mlops.workflow.steps import Step

    assert issubclass(ModelStep, Step) and not issubclass(ModelStep, StepCollection), (major, minor)


def test_model_steps_are_single_steps_named_as_given():
    entries = {entry.name: entry for entry in flatten_steps(load("abalone"))}
    model_steps = {name: entry.type for name, entry in entries.items() if entry.type in ("RegisterModel", "Model")}
    assert model_steps == {"RegisterAbaloneModel": "RegisterModel", "CreateAbaloneModel": "Model"}
    assert not [name for name in entries if name.endswith(("-RegisterModel", "-CreateModel", "-RepackModel"))]
    for name in model_steps:
        assert entries[name].condition == "CheckMseAbalone" and entries[name].branch == "IfSteps"
        assert set(entries[name].step) <= {"Name", "Type", "Arguments", "RetryPolicies", "DependsOn"}


def test_register_model_arguments_are_what_the_registry_reads():
    step = next(e.step for e in flatten_steps(load("abalone")) if e.name == "RegisterAbaloneModel")
    arguments = step["Arguments"]
    # LocalModelRegistry.register reads these; argument_problems is the runner's check of the request
    assert arguments["ModelPackageGroupName"] == "airsage-abalone"
    assert arguments["ModelApprovalStatus"] == {"Get": "Parameters.ModelApprovalStatus"}
    (container,) = arguments["InferenceSpecification"]["Containers"]
    assert {"Image", "ModelDataUrl"} <= set(container)
    assert container["ModelDataUrl"] == {"Get": "Steps.TrainAbalone.ModelArtifacts.S3ModelArtifacts"}
    resolved = {**arguments, "ModelApprovalStatus": "PendingManualApproval",
                "InferenceSpecification": {"Containers": [{**container, "ModelDataUrl": "s3://bucket/model.tar.gz"}]}}
    assert argument_problems("RegisterModel", resolved) == []


def test_model_and_transform_arguments_are_what_the_runner_reads():
    entries = {e.name: e for e in flatten_steps(load("abalone"))}
    model = entries["CreateAbaloneModel"].step["Arguments"]
    # sm_pipeline.local.models.model_containers reads PrimaryContainer (or Containers)
    assert {"Image", "ModelDataUrl"} <= set(model["PrimaryContainer"])
    # the transform finds the model by the name the Model step's properties carry
    transform = entries["TransformAbalone"]
    assert transform.step["Arguments"]["ModelName"] == {"Get": "Steps.CreateAbaloneModel.ModelName"}
    assert step_dependencies(transform) >= {"CreateAbaloneModel", "PreprocessAbalone"}
