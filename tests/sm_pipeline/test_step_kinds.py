"""The step kinds' required Arguments are botocore's: the required members of each kind's API request, less the
name SageMaker Pipelines gives the resource; and every metadata key botocore lists is a kind."""

from __future__ import annotations

import botocore.session
import pytest

from sm_pipeline.step_kinds import KINDS, STEP_KINDS


def sagemaker_model():
    return botocore.session.get_session().get_service_model("sagemaker")


@pytest.mark.parametrize("kind", [kind for kind in STEP_KINDS if kind.request], ids=lambda kind: kind.type)
def test_required_arguments_are_the_requests_required_members(kind):
    required = sagemaker_model().operation_model(kind.request).input_shape.required_members
    # The resource's own name (CreateProcessingJob: ProcessingJobName) is the one SageMaker Pipelines fills;
    # other names (Transform's ModelName, Endpoint's EndpointConfigName) are inputs the step must give.
    own_name = kind.request.removeprefix("Create") + "Name"
    assert kind.required_arguments == tuple(name for name in required if name != own_name)


def test_every_step_metadata_key_of_the_api_is_a_kind():
    members = set(sagemaker_model().shape_for("PipelineExecutionStepMetadata").members)
    metadata_keys = {kind.metadata for kind in STEP_KINDS if kind.metadata}
    assert members - metadata_keys == set()
    assert {"ForEach", "Lineage", "EndpointConfig", "Endpoint", "InferenceComponent", "BedrockCustomModel",
            "BedrockModelImport"} <= set(KINDS)


def test_every_kind_billed_per_instance_says_where_its_instances_are():
    """The cost estimate reads a billed step's instances where its kind says (StepKind.resources), nowhere else."""
    from sm_pipeline.cost import USAGES
    from sm_pipeline.step_kinds import STEP_KINDS

    billed = [kind for kind in STEP_KINDS if kind.billed in USAGES]
    assert billed and all(kind.resources for kind in billed), [kind.type for kind in billed if not kind.resources]
