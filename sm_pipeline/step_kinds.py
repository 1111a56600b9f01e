"""The one table of step kinds: every step ``Type`` SageMaker Pipelines knows, and what this project does with it.

Adding a step kind is one row here, plus its implementation: the local runner's function (named here
as ``"module:function"`` and imported only when a step of that kind runs, so this table, the validator
and ``python -m sm_pipeline --help`` import nothing of the runner) and, when the runner reads its
Arguments, their shape in :data:`sm_pipeline.definition_schema.STEP_SCHEMAS`.

The rows are the values of the SageMaker Python SDK 3.x's ``StepTypeEnum`` (kept as data: importing the
SDK takes seconds) plus ``NotebookJob`` (the SDK's NotebookJobStep) and the kinds botocore's SageMaker model
lists in ListPipelineExecutionSteps' ``PipelineExecutionStepMetadata`` without an SDK class (the Bedrock
steps and Athena of SageMaker Studio's pipeline designer, whose ``Type`` is their metadata key). A kind
without a local runner is valid for SageMaker and refused by ``run-local`` with ``step type 'X' is not
runnable locally``. Kinds with neither a local runner nor a schema (Tuning, EMR, Endpoint, ...) get the
checks every step gets (name, references, DependsOn, CacheConfig, RetryPolicies, ...) and, when SageMaker
passes their Arguments to an API, the presence of that request's required members (``required_arguments``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StepKind:
    """One step ``Type`` of a pipeline definition.

    - ``local``: ``"module:function"`` running one attempt of such a step locally,
      ``function(arguments, ctx: sm_pipeline.local.jobs.JobContext) -> StepOutcome``; None when the local
      runner cannot run it.
    - ``metadata``: the step's key in ListPipelineExecutionSteps' ``Metadata`` (``ProcessingJob``, ``Model``).
    - ``arn_resource``: the resource part of the ARN of what the step makes (``processing-job``), if any.
    - ``cacheable``: whether SageMaker honours the step's ``CacheConfig``.
    - ``in_place``: the scheduler evaluates the step itself, once: its Arguments are not resolved up front
      (a Condition's hold the steps of its branches, a ForEach's its body), no sandbox, no cache, no retries.
    - ``request``: the SageMaker API the step's Arguments are the request of (``CreateProcessingJob``), if any;
      ``required_arguments`` that request's required members, less the name SageMaker Pipelines gives the
      resource itself (botocore's service model; ``tests/sm_pipeline/test_step_kinds.py`` holds them equal).
      A definition whose step lacks one of them is refused, as CreatePipeline refuses it.
    - ``images``: where the step's container image(s) sit in its Arguments, as dotted paths (``[]`` walks a list):
      what ``python -m sm_pipeline diff`` reports as the step's image.
    - ``resources``: the dotted path of the step's instance configuration (``InstanceType``, ``InstanceCount``).
    - ``billed``: how SageMaker bills the step's own compute (:mod:`sm_pipeline.cost`): ``"processing"``,
      ``"training"`` or ``"transform"`` (per instance-second of that usage), ``"none"`` (no instance of its
      own: a definition, a registration, a decision), or None: not estimated (billed elsewhere or otherwise).
    """

    type: str
    local: str | None = None
    metadata: str | None = None
    arn_resource: str | None = None
    cacheable: bool = False
    in_place: bool = False
    request: str | None = None
    required_arguments: tuple[str, ...] = ()
    billed: str | None = None
    images: tuple[str, ...] = ()
    resources: str | None = None

    @property
    def job(self) -> str | None:
        """The API noun of the job the step runs (``ProcessingJob``: DescribeProcessingJob), or None."""
        return self.metadata if self.metadata and self.metadata.endswith("Job") else None


_LOCAL = "sm_pipeline.local"

STEP_KINDS: tuple[StepKind, ...] = (
    # runnable locally
    StepKind("Processing", f"{_LOCAL}.processing:run_processing", "ProcessingJob", "processing-job", cacheable=True,
             request="CreateProcessingJob", required_arguments=("ProcessingResources", "AppSpecification", "RoleArn"),
             billed="processing", images=("AppSpecification.ImageUri",),
             resources="ProcessingResources.ClusterConfig"),
    StepKind("Training", f"{_LOCAL}.training:run_training", "TrainingJob", "training-job", cacheable=True,
             request="CreateTrainingJob", required_arguments=("RoleArn", "OutputDataConfig"), billed="training",
             images=("AlgorithmSpecification.TrainingImage",), resources="ResourceConfig"),
    StepKind("Transform", f"{_LOCAL}.transform:run_transform", "TransformJob", "transform-job", cacheable=True,
             request="CreateTransformJob",
             required_arguments=("ModelName", "TransformInput", "TransformOutput", "TransformResources"),
             billed="transform", resources="TransformResources"),
    StepKind("Model", f"{_LOCAL}.models:run_model", "Model", "model", request="CreateModel", billed="none",
             images=("PrimaryContainer.Image", "Containers[].Image")),
    StepKind("RegisterModel", f"{_LOCAL}.registry:run_register_model", "RegisterModel", "model-package",
             request="CreateModelPackage", billed="none", images=("InferenceSpecification.Containers[].Image",)),
    StepKind("Condition", f"{_LOCAL}.control_steps:run_condition", "Condition", in_place=True, billed="none"),
    StepKind("Fail", f"{_LOCAL}.control_steps:run_fail", "Fail", billed="none"),
    StepKind("Lambda", f"{_LOCAL}.control_steps:run_lambda", "Lambda"),
    StepKind("ForEach", f"{_LOCAL}.for_each:run_for_each", "ForEach", in_place=True, billed="none"),
    # valid for SageMaker, not runnable locally
    StepKind("Tuning", None, "TuningJob", "hyper-parameter-tuning-job", cacheable=True,
             request="CreateHyperParameterTuningJob", required_arguments=("HyperParameterTuningJobConfig",),
             images=("TrainingJobDefinition.AlgorithmSpecification.TrainingImage",),
             resources="TrainingJobDefinition.ResourceConfig"),
    StepKind("AutoML", None, "AutoMLJob", "automl-job", cacheable=True, request="CreateAutoMLJob",
             required_arguments=("InputDataConfig", "OutputDataConfig", "RoleArn")),
    StepKind("Callback", None, "Callback"),
    StepKind("QualityCheck", None, "QualityCheck", cacheable=True),
    StepKind("ClarifyCheck", None, "ClarifyCheck", cacheable=True),
    StepKind("EMR", None, "EMR", cacheable=True),
    StepKind("EMRServerless", None, "EMRServerless"),
    StepKind("NotebookJob", None),
    StepKind("EndpointConfig", None, "EndpointConfig", "endpoint-config", request="CreateEndpointConfig",
             required_arguments=("ProductionVariants",), billed="none"),
    StepKind("Endpoint", None, "Endpoint", "endpoint", request="CreateEndpoint",
             required_arguments=("EndpointConfigName",)),
    StepKind("InferenceComponent", None, "InferenceComponent", "inference-component",
             request="CreateInferenceComponent", required_arguments=("EndpointName",)),
    StepKind("Lineage", None, "Lineage"),
    StepKind("Job", None, "Job"),
    StepKind("Cleanup", None, "Cleanup"),
    # no SDK class: SageMaker Studio's pipeline designer (botocore's PipelineExecutionStepMetadata members)
    StepKind("BedrockCustomModel", None, "BedrockCustomModel"),
    StepKind("BedrockCustomModelDeployment", None, "BedrockCustomModelDeployment"),
    StepKind("BedrockProvisionedModelThroughput", None, "BedrockProvisionedModelThroughput"),
    StepKind("BedrockModelImport", None, "BedrockModelImport"),
    StepKind("Athena", None, "Athena"),
)

KINDS: dict[str, StepKind] = {kind.type: kind for kind in STEP_KINDS}
KNOWN_STEP_TYPES = frozenset(KINDS)
# In the table's order: the order in which messages list them.
LOCAL_STEP_TYPES = tuple(kind.type for kind in STEP_KINDS if kind.local)


def kind_of(step_type: object) -> StepKind | None:
    """The row of ``step_type``, or None for a type SageMaker does not know."""
    return KINDS.get(step_type) if isinstance(step_type, str) else None
