"""The definition schema: the expected shape of every field of a pipeline definition the local runner reads.

``Spec`` objects describe a value (``Str``, ``Int``, ``Obj``, ``Lst``, ...); ``walk`` collects one line per
problem, with the field's path. :data:`STEP_SCHEMAS` holds the Arguments of the step kinds whose request
the runner reads (CreateProcessingJob, CreateTrainingJob, ...), keyed by step type (every key is a row of
:mod:`sm_pipeline.step_kinds`); :data:`STEP_FIELDS` the fields every step may have. The validator
(:mod:`sm_pipeline.validate`) walks a definition with them, the local runner checks a step's resolved
request with :func:`argument_problems`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from sm_pipeline.errors import InvalidInput, shown

# SageMaker's patterns for names, URIs and parameter values are Java ".*": no line terminators.
# C0 controls (NUL, ESC, ...) and DEL are refused too: no S3 key, path or name needs them.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]")
CONDITION_TYPES = ("Equals", "GreaterThan", "GreaterThanOrEqualTo", "LessThan", "LessThanOrEqualTo", "In", "Not", "Or")
APPROVAL_STATUSES = ("Approved", "Rejected", "PendingManualApproval")


def control_character(text: str) -> str | None:
    """The first control character (line break, NUL, ...) in ``text``, escaped for printing; None if none."""
    match = _CONTROL.search(text)
    return ascii(match.group())[1:-1] if match else None


def is_expression(value: Any) -> bool:
    """True for ``{"Get": ...}``, ``{"Std:Join": ...}`` and the other one-key pipeline functions."""
    if not isinstance(value, dict) or len(value) != 1:
        return False
    (key,) = value
    return isinstance(key, str) and (key == "Get" or key.startswith("Std:"))


@dataclass
class Use:
    """A scalar field whose value is an expression: checked once parameter values are known."""

    step: str
    path: str
    spec: Spec
    expression: Any


class Spec:
    """The expected shape of one value; ``problem`` says what is wrong with a literal, or None."""

    scalar = True

    def problem(self, value: Any) -> str | None:
        return None

    def walk(self, value: Any, path: str, out: list[str], uses: list[Use] | None, step: str, runtime: bool) -> None:
        if is_expression(value) and not runtime:
            if uses is not None and self.scalar:
                uses.append(Use(step, path, self, value))
            return
        problem = self.problem(value)
        if problem:
            out.append(f"{path} {problem}")
        else:
            self.walk_children(value, path, out, uses, step, runtime)

    def walk_children(self, value, path, out, uses, step, runtime) -> None:
        return None


class AnyValue(Spec):
    """Anything (checked by the step itself)."""


@dataclass
class Str(Spec):
    """A string; ``uri`` for S3 URIs, ``enum`` for fixed values."""

    uri: bool = False
    enum: tuple[str, ...] = ()

    def problem(self, value: Any) -> str | None:
        if not isinstance(value, str):
            return f"must be a string, not {shown(value)}"
        if self.enum and value not in self.enum:
            return f"must be one of {', '.join(self.enum)}, not {shown(value)}"
        if self.uri:
            return uri_problem(value)
        return None


def uri_problem(value: str) -> str | None:
    """Why ``value`` cannot be an S3Uri, or None."""
    bad = control_character(value)
    if bad:
        return f"must not contain a control character ({bad}), as {shown(value)} does"
    if value.startswith("s3://"):
        from sm_pipeline.storage import parse_s3_uri

        try:
            parse_s3_uri(value)
        except InvalidInput as exc:
            return f"must be a valid S3 URI: {shown(value)}: {str(exc).removeprefix(repr(value) + ': ')}"
        return None
    if not value.startswith(("https://", "file://")):
        return f"must be an s3:// URI, not {shown(value)}"
    return None


@dataclass
class ContainerPath(Str):
    """A path inside the container that must lie under ``under`` (SageMaker: processing paths under /opt/ml/processing/)."""

    under: str = "/opt/ml/processing/"

    def problem(self, value: Any) -> str | None:
        problem = super().problem(value)
        if problem:
            return problem
        bad = control_character(value)
        if bad:
            return f"must not contain a control character ({bad}), as {shown(value)} does"
        if not value.startswith(self.under) or ".." in value.split("/"):
            return f"must be a path under {self.under}, not {shown(value)}"
        return None


@dataclass
class Int(Spec):
    """An integer (not a boolean) within bounds."""

    minimum: int | None = None
    maximum: int | None = None

    def problem(self, value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return f"must be an integer, not {shown(value)}"
        if self.minimum is not None and value < self.minimum:
            return f"must be at least {self.minimum}, not {value}"
        if self.maximum is not None and value > self.maximum:
            return f"must be at most {self.maximum}, not {value}"
        return None


@dataclass
class Num(Spec):
    """A finite number (not a boolean)."""

    minimum: float | None = None

    def problem(self, value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"must be a number, not {shown(value)}"
        if isinstance(value, float) and not math.isfinite(value):
            return f"must be a finite number, not {value}"
        if self.minimum is not None and value < self.minimum:
            return f"must be at least {self.minimum}, not {value}"
        return None


class Bool(Spec):
    """true or false."""

    def problem(self, value: Any) -> str | None:
        return None if isinstance(value, bool) else f"must be true or false, not {shown(value)}"


@dataclass
class Obj(Spec):
    """An object with known fields (other fields are allowed); ``required`` is enforced on resolved arguments."""

    fields: dict[str, Spec] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    always_required: tuple[str, ...] = ()
    scalar = False

    def problem(self, value: Any) -> str | None:
        return None if isinstance(value, dict) else f"must be an object, not {shown(value)}"

    def walk_children(self, value, path, out, uses, step, runtime) -> None:
        for key in (*self.always_required, *(self.required if runtime else ())):
            if key not in value:
                out.append(f"{_join(path, key)} is required")
        for key, spec in self.fields.items():
            if key in value:
                spec.walk(value[key], _join(path, key), out, uses, step, runtime)


@dataclass
class Lst(Spec):
    """A list of items of one shape."""

    item: Spec = field(default_factory=AnyValue)
    scalar = False

    def problem(self, value: Any) -> str | None:
        return None if isinstance(value, list) else f"must be a list, not {shown(value)}"

    def walk_children(self, value, path, out, uses, step, runtime) -> None:
        for index, item in enumerate(value):
            self.item.walk(item, f"{path}[{index}]", out, uses, step, runtime)


@dataclass
class Map(Spec):
    """An object of string keys to values of one shape."""

    value: Spec = field(default_factory=AnyValue)
    scalar = False

    def problem(self, value: Any) -> str | None:
        return None if isinstance(value, dict) else f"must be an object, not {shown(value)}"

    def walk_children(self, value, path, out, uses, step, runtime) -> None:
        for key, item in value.items():
            self.value.walk(item, f"{path}[{key!r}]", out, uses, step, runtime)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


_STR, _URI = Str(), Str(uri=True)
_PROCESSING_PATH = ContainerPath()  # CreateProcessingJob: "LocalPath ... must begin with /opt/ml/processing/"
_ENVIRONMENT = Map(Str())
_CONTAINER = Obj({"Image": _STR, "ModelDataUrl": _URI, "Environment": _ENVIRONMENT, "Mode": _STR})
_S3_DATA_SOURCE = Obj({"S3Uri": _URI, "S3DataType": _STR, "S3DataDistributionType": _STR}, required=("S3Uri",))

# The request shapes (CreateProcessingJob, CreateTrainingJob, ...) as far as the local runner reads them:
# every field it uses has its type here, so a step implementation can rely on it once
# argument_problems() found nothing. Fields the runner does not read are not checked.
STEP_SCHEMAS: dict[str, Spec] = {
    "Processing": Obj({
        "ProcessingResources": Obj({"ClusterConfig": Obj({
            "InstanceCount": Int(1, 100), "InstanceType": _STR, "VolumeSizeInGB": Int(1, 16384)})}),
        "AppSpecification": Obj({"ImageUri": _STR, "ContainerEntrypoint": Lst(_STR), "ContainerArguments": Lst(_STR)}),
        "ProcessingInputs": Lst(Obj({
            "InputName": _STR,
            "S3Input": Obj({"S3Uri": _URI, "LocalPath": _PROCESSING_PATH, "S3DataType": _STR, "S3InputMode": _STR,
                            "S3DataDistributionType": Str(enum=("FullyReplicated", "ShardedByS3Key"))},
                           required=("S3Uri", "LocalPath")),
        })),
        "ProcessingOutputConfig": Obj({"Outputs": Lst(Obj({
            "OutputName": _STR,
            "S3Output": Obj({"S3Uri": _URI, "LocalPath": _PROCESSING_PATH, "S3UploadMode": _STR}, required=("S3Uri", "LocalPath")),
        }, always_required=("OutputName",)))}),
        "Environment": _ENVIRONMENT,
        "RoleArn": _STR,
    }, required=("AppSpecification",)),
    "Training": Obj({
        "AlgorithmSpecification": Obj({"TrainingImage": _STR, "AlgorithmName": _STR, "TrainingInputMode": _STR,
                                       "ContainerEntrypoint": Lst(_STR), "ContainerArguments": Lst(_STR)}),
        "HyperParameters": Map(_STR),
        "InputDataConfig": Lst(Obj({
            "ChannelName": _STR, "DataSource": Obj({"S3DataSource": _S3_DATA_SOURCE}, required=("S3DataSource",)),
            "ContentType": _STR, "CompressionType": _STR, "InputMode": _STR, "RecordWrapperType": _STR,
        }, required=("ChannelName", "DataSource"))),
        "OutputDataConfig": Obj({"S3OutputPath": _URI, "KmsKeyId": _STR}, required=("S3OutputPath",)),
        "ResourceConfig": Obj({"InstanceCount": Int(1), "InstanceType": _STR, "VolumeSizeInGB": Int(1)}),
        "Environment": _ENVIRONMENT,
        "RoleArn": _STR,
    }, required=("OutputDataConfig",)),
    "Transform": Obj({
        "ModelName": _STR,
        "TransformInput": Obj({"DataSource": Obj({"S3DataSource": _S3_DATA_SOURCE}, required=("S3DataSource",)),
                               "ContentType": _STR, "SplitType": _STR, "CompressionType": _STR},
                              required=("DataSource",)),
        "TransformOutput": Obj({"S3OutputPath": _URI, "Accept": _STR, "AssembleWith": _STR},
                               required=("S3OutputPath",)),
        "TransformResources": Obj({"InstanceCount": Int(1), "InstanceType": _STR}),
        "DataProcessing": Obj({"InputFilter": _STR, "OutputFilter": _STR, "JoinSource": _STR}),
        "Environment": _ENVIRONMENT,
    }, required=("ModelName", "TransformInput", "TransformOutput")),
    "Model": Obj({"PrimaryContainer": _CONTAINER, "Containers": Lst(_CONTAINER), "ExecutionRoleArn": _STR}),
    "RegisterModel": Obj({
        "ModelPackageGroupName": _STR, "ModelApprovalStatus": Str(enum=APPROVAL_STATUSES),
        "InferenceSpecification": Obj({"Containers": Lst(_CONTAINER)}),
    }),
    "Fail": Obj({"ErrorMessage": AnyValue()}),
}
_ARGUMENTS = Obj()
STEP_FIELDS = Obj({
    "Arguments": _ARGUMENTS,
    "CacheConfig": Obj({"Enabled": Bool(), "ExpireAfter": _STR}),
    "RetryPolicies": Lst(Obj({
        "StepExceptionTypes": Lst(_STR), "ExceptionType": Lst(_STR), "IntervalSeconds": Int(0),
        "BackoffRate": Num(0), "MaxAttempts": Int(0), "ExpireAfterMin": Int(0)})),
    "PropertyFiles": Lst(Obj({"PropertyFileName": _STR, "OutputName": _STR, "FilePath": _STR},
                             always_required=("PropertyFileName", "OutputName", "FilePath"))),
    "FunctionArn": _STR,
    "OutputParameters": Lst(Obj({"OutputName": _STR, "OutputType": Str(enum=("String", "Integer", "Float", "Boolean"))},
                                always_required=("OutputName",))),
    "DisplayName": _STR,
    "Description": _STR,
})


def argument_problems(kind: str, arguments: Any) -> list[str]:
    """Problems of a step's resolved arguments (required fields included); empty when the runner can use them."""
    out: list[str] = []
    STEP_SCHEMAS.get(kind, _ARGUMENTS).walk(arguments, "Arguments", out, None, "", runtime=True)
    return out


# The top-level fields of a definition (the SDK's Pipeline.definition() writes all but the last one).
# ParallelismConfiguration belongs to CreatePipeline/StartPipelineExecution; a definition may carry it
# too (hand-edited ones do), and the local runner honours it there.
TOP_LEVEL_FIELDS = ("Version", "Metadata", "Parameters", "PipelineExperimentConfig", "MlflowConfig", "Steps",
                    "ParallelismConfiguration")
MLFLOW_CONFIG = Obj({"MlflowResourceArn": _STR, "MlflowExperimentName": _STR})
PARALLELISM_CONFIGURATION = Obj({"MaxParallelExecutionSteps": Int(1, 1000)},
                                always_required=("MaxParallelExecutionSteps",))
