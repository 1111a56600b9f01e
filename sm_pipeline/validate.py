"""The one validator of pipeline definitions: every problem is one string naming the step or reference.

``python -m sm_pipeline validate`` prints these problems and the local runner refuses a definition
with the very same ones, before it writes anything. Three layers, each one function:

- :func:`validate_definition` — what SageMaker would reject: JSON limits (size, depth, non-finite
  numbers), the shape of every step the runner reads (``STEP_SCHEMAS``), names, references, cycles
  and parameter defaults that can never work where they are used.
- :func:`parameter_value_problems` — given parameter values that can never work where the
  definition uses them (an InstanceCount of 0, an S3 URI with a newline), by parameter name.
- :func:`local_problems` — valid for SageMaker but without a local equivalent (step types, images,
  entrypoints, Lambda functions). ``validate`` prints them as
  ``cannot run locally: ...`` lines (exit 0, or 2 with ``--local``); ``run-local`` refuses them with
  the same lines.

To add a check of single steps, write ``def _check_x(entry, ctx) -> Iterator[str]`` and append it to
``STEP_CHECKS``; the runner's argument check (:func:`argument_problems`) uses ``STEP_SCHEMAS``.
"""

from __future__ import annotations

import json
import math
import re
import reprlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sm_pipeline.errors import DefinitionError, DefinitionInvalid, InvalidInput
from sm_pipeline.expressions import (
    EXECUTION_VARIABLES,
    FUNCTIONS,
    ExpressionContext,
    ExpressionError,
    references,
    resolve,
)
from sm_pipeline.json_limits import MAX_DEPTH, JsonLimitError, depth_exceeds
from sm_pipeline.json_limits import loads as json_loads

# Every step type SageMaker Pipelines accepts (the SDK's StepTypeEnum); the local runner supports a subset.
KNOWN_STEP_TYPES = frozenset({
    "Processing", "Training", "Transform", "Tuning", "AutoML", "Model", "RegisterModel", "Condition",
    "Fail", "Lambda", "Callback", "QualityCheck", "ClarifyCheck", "EMR", "EMRServerless", "NotebookJob",
})
LOCAL_STEP_TYPES = ("Processing", "Training", "Transform", "Condition", "Fail", "RegisterModel", "Model", "Lambda")
PARAMETER_TYPES = {"String": (str,), "Integer": (int,), "Float": (float, int), "Boolean": (bool,)}
CONDITION_TYPES = ("Equals", "GreaterThan", "GreaterThanOrEqualTo", "LessThan", "LessThanOrEqualTo", "In", "Not", "Or")
APPROVAL_STATUSES = ("Approved", "Rejected", "PendingManualApproval")
# SageMaker's CreatePipeline/UpdatePipeline: PipelineDefinition is at most 1,048,576 characters.
MAX_DEFINITION_CHARS = 1_048_576
# StartPipelineExecution: a parameter value is at most 1024 characters.
MAX_PARAMETER_VALUE_CHARS = 1024
_STEP_NAME = re.compile(r"^[A-Za-z0-9\-_]{1,64}$")
_PARAMETER_NAME = re.compile(r"^[A-Za-z0-9\-_]{1,256}$")
# SageMaker's patterns for names, URIs and parameter values are Java ".*": no line terminators.
# C0 controls (NUL, ESC, ...) and DEL are refused too: no S3 key, path or name needs them.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]")
# Execution variables as placeholders when a value is resolved from parameters alone.
_PLACEHOLDERS = {name: f"placeholder-{name.lower()}" for name in EXECUTION_VARIABLES}


def control_character(text: str) -> str | None:
    """The first control character (line break, NUL, ...) in ``text``, escaped for printing; None if none."""
    match = _CONTROL.search(text)
    return ascii(match.group())[1:-1] if match else None


_SHORT = reprlib.Repr()  # Python 3.11: limits are attributes, not constructor arguments
_SHORT.maxlevel, _SHORT.maxdict, _SHORT.maxlist, _SHORT.maxtuple = 3, 4, 6, 6
_SHORT.maxstring, _SHORT.maxother, _SHORT.maxlong = 80, 80, 40


def shown(value: Any) -> str:
    """A value as one short, escaped line for a message (bounded however large or deep the value is)."""
    return _SHORT.repr(value)


# ----------------------------------------------------------------------------- reading

@dataclass(frozen=True)
class StepEntry:
    """A step of the definition with its place: top level, or inside a Condition step's If/Else branch."""

    step: dict
    condition: str | None = None
    branch: str | None = None  # "IfSteps" | "ElseSteps"

    @property
    def name(self) -> str:
        """The step's name."""
        name = self.step.get("Name", "")
        return name if isinstance(name, str) else ""

    @property
    def type(self) -> str:
        """The step's type."""
        kind = self.step.get("Type", "")
        return kind if isinstance(kind, str) else ""


def load_definition_file(path: Path | str) -> dict:
    """Read a definition JSON file; DefinitionError (one line naming the file) if it cannot be used."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_DEFINITION_CHARS * 4 + 1)  # UTF-8 takes at most 4 bytes a character
    except OSError as exc:
        raise DefinitionError(f"{path}: cannot read definition: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DefinitionError(f"{path}: cannot read definition: not UTF-8 text (byte {exc.start})") from None
    return parse_definition(text, str(path))


def parse_definition(text: str, where: str = "definition") -> dict:
    """Parse definition JSON text; DefinitionError naming the line on bad JSON, the size or depth limit."""
    if len(text) > MAX_DEFINITION_CHARS:
        raise DefinitionError(f"{where}: {_size_problem(len(text), at_least=len(text) > MAX_DEFINITION_CHARS * 4)}")
    try:
        obj = json_loads(text)
    except JsonLimitError as exc:
        raise DefinitionError(f"{where}: {exc}") from None
    if not isinstance(obj, dict):
        raise DefinitionError(f"{where}: a pipeline definition must be a JSON object, not {type(obj).__name__}")
    return obj


def _size_problem(chars: int, at_least: bool = False) -> str:
    more = "more than " if at_least else ""
    return (f"definition is {more}{chars:,} characters; SageMaker's limit for a PipelineDefinition "
            f"is {MAX_DEFINITION_CHARS:,}")


def load_definition(definition: dict | str | Path) -> dict:
    """A definition given as a dict, JSON text or a file path, as a dict."""
    if isinstance(definition, dict):
        return definition
    if isinstance(definition, Path):
        return load_definition_file(definition)
    if isinstance(definition, str):
        if definition.lstrip().startswith("{"):
            return parse_definition(definition)
        return load_definition_file(Path(definition))
    raise DefinitionError(f"a definition must be a dict, JSON text or a path, not {type(definition).__name__}")


def _obj(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def flatten_steps(definition: dict) -> list[StepEntry]:
    """All steps, including those nested in Condition branches, in definition order (non-objects skipped)."""
    return list(_walk(definition.get("Steps") or [], None, None))


def _walk(steps: Any, condition: str | None, branch: str | None) -> Iterator[StepEntry]:
    if not isinstance(steps, list):
        return
    for step in steps:
        if not isinstance(step, dict):
            continue
        entry = StepEntry(step, condition, branch)
        yield entry
        if entry.type == "Condition":
            arguments = _obj(step.get("Arguments"))
            for key in ("IfSteps", "ElseSteps"):
                yield from _walk(arguments.get(key) or [], entry.name, key)


def expression_scope(entry: StepEntry) -> Any:
    """The part of a step whose expressions the step itself evaluates (a Condition's branches excluded)."""
    step = entry.step
    if entry.type == "Condition":
        return {"Conditions": _obj(step.get("Arguments")).get("Conditions")}
    return {key: value for key, value in step.items() if key not in ("Name", "Type", "DependsOn")}


def step_dependencies(entry: StepEntry) -> set[str]:
    """Names of the steps that must finish before this one: data references, DependsOn, its condition."""
    deps = {ref.name for ref in references(expression_scope(entry)) if ref.kind == "Steps"}
    depends_on = entry.step.get("DependsOn") or []
    if isinstance(depends_on, list):
        deps.update(name for name in depends_on if isinstance(name, str))
    if entry.condition:
        deps.add(entry.condition)
    deps.discard(entry.name)
    return deps


# ----------------------------------------------------------------------------- shapes

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


# ----------------------------------------------------------------------------- the definition

@dataclass
class _Context:
    """What the step checks share."""

    by_name: dict[str, StepEntry]
    parameters: dict[str, dict]
    uses: list[Use]


def validate_definition(obj: Any) -> list[str]:
    """Every problem SageMaker would reject a definition for (empty when it is well-formed)."""
    if not isinstance(obj, dict):
        return [f"a pipeline definition must be a JSON object, not {type(obj).__name__}"]
    limit = _json_limit_problem(obj)
    if limit:
        return [limit]
    problems: list[str] = []
    _check_top_level(obj, problems)
    parameters = _check_parameters(obj.get("Parameters", []), problems)
    steps = obj.get("Steps")
    if not isinstance(steps, list) or not steps:
        problems.append("definition has no 'Steps' list (or it is empty)")
        return problems
    _check_step_lists(steps, "Steps", problems)
    entries = flatten_steps(obj)
    by_name: dict[str, StepEntry] = {}
    for index, entry in enumerate(entries):
        name, step_type = entry.step.get("Name"), entry.step.get("Type")
        if not isinstance(name, str) or not name:
            problems.append(f"step #{index + 1} has no Name")
            continue
        if name in by_name:
            problems.append(f"duplicate step name {name!r}")
        by_name.setdefault(name, entry)
        if not _STEP_NAME.fullmatch(name):
            problems.append(f"step {name!r}: a step name is 1-64 letters, digits, '-' or '_'")
        if not isinstance(step_type, str) or step_type not in KNOWN_STEP_TYPES:
            problems.append(f"step {name!r}: unknown step type {shown(step_type)}")
    ctx = _Context(by_name, parameters, [])
    for entry in entries:
        if entry.name in by_name and by_name[entry.name] is entry:
            for check in STEP_CHECKS:
                problems.extend(check(entry, ctx))
    for cycle in find_cycles(by_name):
        problems.append("dependency cycle: " + " -> ".join(cycle))
    if not problems:
        defaults = {name: p["DefaultValue"] for name, p in parameters.items() if "DefaultValue" in p}
        problems.extend(_use_problems(ctx.uses, defaults, "DefaultValue "))
    return problems


# The top-level fields of a definition (the SDK's Pipeline.definition() writes all but the last one).
# ParallelismConfiguration belongs to CreatePipeline/StartPipelineExecution; a definition may carry it
# too (hand-edited ones do), and the local runner honours it there.
TOP_LEVEL_FIELDS = ("Version", "Metadata", "Parameters", "PipelineExperimentConfig", "MlflowConfig", "Steps",
                    "ParallelismConfiguration")
_MLFLOW_CONFIG = Obj({"MlflowResourceArn": _STR, "MlflowExperimentName": _STR})
PARALLELISM_CONFIGURATION = Obj({"MaxParallelExecutionSteps": Int(1, 1000)},
                                always_required=("MaxParallelExecutionSteps",))


def _check_top_level(obj: dict, problems: list[str]) -> None:
    """Unknown top-level fields are refused; MlflowConfig and ParallelismConfiguration have their shapes."""
    for key in obj:
        if key not in TOP_LEVEL_FIELDS:
            problems.append(f"unknown top-level field {shown(key)} (known: {', '.join(TOP_LEVEL_FIELDS)})")
    mlflow = obj.get("MlflowConfig")
    if mlflow is not None:
        # the SDK writes null for an unset field: {"MlflowResourceArn": null, "MlflowExperimentName": "x"}
        set_fields = {k: v for k, v in mlflow.items() if v is not None} if isinstance(mlflow, dict) else mlflow
        _MLFLOW_CONFIG.walk(set_fields, "MlflowConfig", problems, None, "", runtime=False)
    parallelism = obj.get("ParallelismConfiguration")
    if parallelism is not None:
        PARALLELISM_CONFIGURATION.walk(parallelism, "ParallelismConfiguration", problems, None, "", runtime=False)


def definition_max_parallel(definition: dict) -> int | None:
    """The definition's own ``ParallelismConfiguration.MaxParallelExecutionSteps``, or None."""
    parallelism = definition.get("ParallelismConfiguration")
    value = parallelism.get("MaxParallelExecutionSteps") if isinstance(parallelism, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _json_limit_problem(obj: dict) -> str | None:
    if depth_exceeds(obj, MAX_DEPTH):
        return f"JSON nested more than {MAX_DEPTH} levels deep"
    try:
        text = json.dumps(obj, separators=(",", ":"), allow_nan=False)
    except ValueError:
        return "the definition holds a non-finite number (NaN or Infinity), which JSON cannot carry"
    except TypeError as exc:
        return f"the definition holds a value JSON cannot carry ({exc})"
    if len(text) > MAX_DEFINITION_CHARS:
        return _size_problem(len(text))
    return None


def _check_step_lists(steps: list, where: str, problems: list[str]) -> None:
    """Non-object entries of Steps and of Condition branches (the walk skips them, so say so here)."""
    for index, step in enumerate(steps):
        if not isinstance(step, dict):
            problems.append(f"{where}[{index}] must be a step object, not {shown(step)}")
            continue
        if step.get("Type") == "Condition" and isinstance(step.get("Arguments"), dict):
            name = step.get("Name")
            for key in ("IfSteps", "ElseSteps"):
                branch = step["Arguments"].get(key)
                if branch is None:
                    continue
                if not isinstance(branch, list):
                    problems.append(f"step {name!r}: Arguments.{key} must be a list of steps, not {shown(branch)}")
                else:
                    _check_step_lists(branch, f"step {name!r}: Arguments.{key}", problems)


def _check_parameters(parameters: Any, problems: list[str]) -> dict[str, dict]:
    declared: dict[str, dict] = {}
    if not isinstance(parameters, list):
        problems.append("'Parameters' must be a list")
        return declared
    for index, parameter in enumerate(parameters):
        name = parameter.get("Name") if isinstance(parameter, dict) else None
        if not isinstance(name, str) or not name:
            problems.append(f"parameter #{index + 1} has no Name")
            continue
        if name in declared:
            problems.append(f"duplicate parameter {name!r}")
        if not _PARAMETER_NAME.fullmatch(name):
            problems.append(f"parameter {name!r}: a parameter name is 1-256 letters, digits, '-' or '_'")
        declared.setdefault(name, parameter)
        ptype = parameter.get("Type")
        if not isinstance(ptype, str) or ptype not in PARAMETER_TYPES:
            problems.append(f"parameter {name!r}: unknown type {shown(ptype)} (String, Integer, Float or Boolean)")
            continue
        if "DefaultValue" in parameter:
            default = parameter["DefaultValue"]
            expected = PARAMETER_TYPES[ptype]
            if not isinstance(default, expected) or (ptype != "Boolean" and isinstance(default, bool)):
                problems.append(f"parameter {name!r}: DefaultValue {shown(default)} is not a {ptype}")
            else:
                problem = parameter_value_problem(ptype, default)
                if problem:
                    problems.append(f"parameter {name!r}: DefaultValue {problem}")
        enum = parameter.get("EnumValues")
        if enum is not None and not isinstance(enum, list):
            problems.append(f"parameter {name!r}: EnumValues must be a list")
    return declared


def parameter_value_problem(ptype: str, value: Any) -> str | None:
    """Why a value of the declared type can never be a parameter value (NaN, a newline, too long), or None."""
    if ptype == "Float" and isinstance(value, float) and not math.isfinite(value):
        return f"{value} is not a finite number"
    if ptype == "String" and isinstance(value, str):
        if len(value) > MAX_PARAMETER_VALUE_CHARS:
            return f"{shown(value)} is {len(value)} characters; SageMaker allows at most {MAX_PARAMETER_VALUE_CHARS}"
        bad = control_character(value)
        if bad:
            return f"{shown(value)} contains a control character ({bad})"
    return None


def _check_shape(entry: StepEntry, ctx: _Context) -> Iterator[str]:
    """The step's fields and Arguments have the types SageMaker (and the local runner) expect."""
    out: list[str] = []
    STEP_FIELDS.walk(entry.step, "", out, ctx.uses, entry.name, runtime=False)
    arguments = entry.step.get("Arguments")
    if isinstance(arguments, dict):
        if entry.type == "Condition":
            _check_condition_arguments(arguments, out)
        elif entry.type in STEP_SCHEMAS:
            STEP_SCHEMAS[entry.type].walk(arguments, "Arguments", out, ctx.uses, entry.name, runtime=False)
    elif "Arguments" not in entry.step and entry.type == "Condition":
        out.append("a Condition step needs an Arguments.Conditions list")
    for line in out:
        yield f"step {entry.name!r}: {line}"


def _check_condition_arguments(arguments: dict, out: list[str]) -> None:
    conditions = arguments.get("Conditions")
    if not isinstance(conditions, list):
        out.append("a Condition step needs an Arguments.Conditions list")
        return
    for index, condition in enumerate(conditions):
        _check_condition(condition, f"Arguments.Conditions[{index}]", out)


def _check_condition(condition: Any, path: str, out: list[str]) -> None:
    if not isinstance(condition, dict):
        out.append(f"{path} must be a condition object, not {shown(condition)}")
        return
    kind = condition.get("Type")
    if kind not in CONDITION_TYPES:
        out.append(f"{path}: unknown condition type {shown(kind)} (known: {', '.join(CONDITION_TYPES)})")
    elif kind == "Not":
        inner = condition.get("Condition", condition.get("Expression"))
        _check_condition(inner, f"{path}.Condition", out)
    elif kind == "Or":
        inner = condition.get("Conditions")
        if not isinstance(inner, list):
            out.append(f"{path}.Conditions must be a list of conditions, not {shown(inner)}")
        else:
            for index, item in enumerate(inner):
                _check_condition(item, f"{path}.Conditions[{index}]", out)
    elif kind == "In":
        values = condition.get("Values")
        if not isinstance(values, list) and not is_expression(values):
            out.append(f"{path}.Values must be a list, not {shown(values)}")
        if "QueryValue" not in condition:
            out.append(f"{path}.QueryValue is required")
    else:
        for key in ("LeftValue", "RightValue"):
            if key not in condition:
                out.append(f"{path}.{key} is required")


def _check_references(entry: StepEntry, ctx: _Context) -> Iterator[str]:
    """Every Get names a declared parameter, an execution variable, another step or a declared property file."""
    name, by_name = entry.name, ctx.by_name
    scope = expression_scope(entry)
    for ref in references(scope):
        if ref.kind == "Parameters" and ref.name not in ctx.parameters:
            yield f"step {name!r}: Get references unknown parameter {ref.name!r}"
        elif ref.kind == "Execution" and ref.name not in EXECUTION_VARIABLES:
            yield f"step {name!r}: Get references unknown execution variable {ref.name!r}"
        elif ref.kind == "Steps":
            if ref.name == name:
                yield f"step {name!r}: references itself"
            elif ref.name not in by_name:
                yield f"step {name!r}: Get references unknown step {ref.name!r}"
            elif not ref.detail:
                yield f"step {name!r}: Get of step {ref.name!r} has no property path"
        elif ref.kind == "PropertyFile" and ref.name in by_name:
            files = by_name[ref.name].step.get("PropertyFiles")
            declared = [pf.get("PropertyFileName") for pf in files if isinstance(pf, dict)] if isinstance(files, list) else []
            if ref.detail not in declared:
                yield f"step {name!r}: step {ref.name!r} has no property file {ref.detail!r}"
        elif ref.kind == "Invalid":
            yield f"step {name!r}: malformed Std:JsonGet PropertyFile {ref.name}"
        elif ref.kind not in ("Parameters", "Execution", "Steps", "PropertyFile"):
            yield f"step {name!r}: Get references unknown namespace {ref.kind!r}"
    for function in _functions(scope):
        if function not in FUNCTIONS:
            yield f"step {name!r}: unknown function {function!r}"


def _check_depends_on(entry: StepEntry, ctx: _Context) -> Iterator[str]:
    """DependsOn is a list of the names of other steps."""
    name = entry.name
    depends_on = entry.step.get("DependsOn") or []
    if not isinstance(depends_on, list):
        yield f"step {name!r}: DependsOn must be a list of step names"
        return
    for dep in depends_on:
        if not isinstance(dep, str):
            yield f"step {name!r}: DependsOn entries must be step names, not {shown(dep)}"
        elif dep == name:
            yield f"step {name!r}: DependsOn itself"
        elif dep not in ctx.by_name:
            yield f"step {name!r}: DependsOn unknown step {dep!r}"


def _check_property_files(entry: StepEntry, ctx: _Context) -> Iterator[str]:
    """Each PropertyFile names one of the step's processing outputs."""
    declared = entry.step.get("PropertyFiles") or []
    if not isinstance(declared, list):
        return
    config = _obj(_obj(entry.step.get("Arguments")).get("ProcessingOutputConfig"))
    outputs = config.get("Outputs")
    names = [o.get("OutputName") for o in outputs if isinstance(o, dict)] if isinstance(outputs, list) else []
    for pf in declared:
        if isinstance(pf, dict) and "OutputName" in pf and pf.get("OutputName") not in names:
            yield (f"step {entry.name!r}: property file {shown(pf.get('PropertyFileName'))} names unknown output "
                   f"{shown(pf.get('OutputName'))}")


def _check_cache_config(entry: StepEntry, ctx: _Context) -> Iterator[str]:
    """CacheConfig.ExpireAfter is a duration SageMaker accepts (the parser the cache itself uses)."""
    from sm_pipeline.local.cache import parse_expire_after

    config = entry.step.get("CacheConfig")
    if isinstance(config, dict) and isinstance(config.get("ExpireAfter"), str):
        try:
            parse_expire_after(config["ExpireAfter"])
        except DefinitionError as exc:
            yield f"step {entry.name!r}: CacheConfig.{exc}"


# Checks of one step each; the definition's problems are their lines in this order.
STEP_CHECKS: list[Callable[[StepEntry, _Context], Iterator[str]]] = [
    _check_shape,
    _check_references,
    _check_depends_on,
    _check_property_files,
    _check_cache_config,
]


def _functions(value: Any) -> Iterator[str]:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        elif isinstance(item, dict):
            if len(item) == 1:
                (key,) = item
                if isinstance(key, str) and (key == "Get" or key.startswith("Std:")):
                    yield key
            stack.extend(reversed(list(item.values())))


def find_cycles(by_name: dict[str, StepEntry]) -> list[list[str]]:
    """Dependency cycles among steps, each as the list of names around it (first name repeated last)."""
    graph = {name: sorted(dep for dep in step_dependencies(entry) if dep in by_name) for name, entry in by_name.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []
    for start in graph:
        if state.get(start):
            continue
        stack: list[tuple[str, Iterator[str]]] = [(start, iter(graph[start]))]
        path = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(child) == 1:
                cycles.append(path[path.index(child):] + [child])
            elif not state.get(child):
                state[child] = 1
                stack.append((child, iter(graph[child])))
                path.append(child)
    return cycles


# ----------------------------------------------------------------------------- parameter values

def parameter_uses(definition: dict) -> list[Use]:
    """The fields of a valid definition whose value is an expression (S3 URIs, instance counts, ...)."""
    uses: list[Use] = []
    ctx = _Context({}, {}, uses)
    for entry in flatten_steps(definition):
        list(_check_shape(entry, ctx))
    return uses


def parameter_value_problems(definition: dict, values: Mapping[str, Any], given: set[str] | None = None) -> list[str]:
    """Parameter values that can never work where the definition uses them, each naming the parameter."""
    return _use_problems(parameter_uses(definition), values, "", given)


def _use_problems(uses: list[Use], values: Mapping[str, Any], label: str, only: set[str] | None = None) -> list[str]:
    ctx = ExpressionContext(parameters=values, execution_variables=_PLACEHOLDERS)
    problems: list[str] = []
    reported: set[tuple[str, ...]] = set()
    for use in uses:
        names = sorted({ref.name for ref in references(use.expression) if ref.kind == "Parameters"})
        if not names or (only is not None and not set(names) & only) or tuple(names) in reported:
            continue  # one line per parameter: the first field it breaks
        try:
            value = resolve(use.expression, ctx)
        except (ExpressionError, RecursionError):
            continue  # depends on other steps: checked on the resolved arguments when the step runs
        problem = use.spec.problem(value)
        if not problem:
            continue
        if use.expression == {"Get": f"Parameters.{names[0]}"}:
            line = f"parameter {names[0]}: {label}{shown(value)} feeds step {use.step!r} {use.path}, which {problem}"
        else:
            line = (f"parameter {', '.join(names)}: {label.lower() or 'the '}value(s) make step {use.step!r} "
                    f"{use.path} {shown(value)}, which {problem}")
        problems.append(line)
        reported.add(tuple(names))
    return problems


# ----------------------------------------------------------------------------- runnable locally

def local_problems(definition: dict, parameters: Mapping[str, Any] | None = None,
                   lambdas: Mapping[str, Callable] | None = None) -> list[str]:
    """Why a valid definition cannot run locally: step types, images, entrypoints, Lambda functions."""
    from sm_pipeline.local.control_steps import lambda_callable
    from sm_pipeline.local.images import has_local_equivalent, is_xgboost_image
    from sm_pipeline.local.jobs import is_runnable_entrypoint
    from sm_pipeline.local.models import model_containers

    ctx = ExpressionContext(parameters=dict(parameters or {}), execution_variables=_PLACEHOLDERS)
    lambdas = lambdas or {}
    problems: list[str] = []

    def literal(value: Any) -> Any:
        try:
            return resolve(value, ctx)
        except ExpressionError:
            return None  # depends on other steps (or a parameter without value): checked when the step runs

    for entry in flatten_steps(definition):
        name, kind, step = entry.name, entry.type, entry.step
        arguments = _obj(step.get("Arguments"))
        if kind not in LOCAL_STEP_TYPES:
            problems.append(f"step {name!r}: step type {kind!r} is not runnable locally")
            continue
        if kind == "Processing":
            app = _obj(arguments.get("AppSpecification"))
            image = literal(app.get("ImageUri"))
            if isinstance(image, str) and not has_local_equivalent(image):
                problems.append(f"step {name!r}: image {image!r} has no local equivalent")
            entrypoint = literal(app.get("ContainerEntrypoint"))
            if not is_runnable_entrypoint(entrypoint):
                problems.append(f"step {name!r}: ContainerEntrypoint {shown(entrypoint)} has no local equivalent "
                                "(expected python/python3 or a shell)")
        elif kind == "Training":
            algorithm = _obj(arguments.get("AlgorithmSpecification"))
            image = literal(algorithm.get("TrainingImage"))
            hyperparameters = _obj(arguments.get("HyperParameters"))
            if algorithm.get("AlgorithmName"):
                problems.append(f"step {name!r}: marketplace algorithm {shown(algorithm['AlgorithmName'])} has no local equivalent")
            elif isinstance(image, str) and not has_local_equivalent(image):
                problems.append(f"step {name!r}: image {image!r} has no local equivalent")
            elif isinstance(image, str) and not is_xgboost_image(image) and "sagemaker_program" not in hyperparameters \
                    and not algorithm.get("ContainerEntrypoint"):
                problems.append(f"step {name!r}: image {image!r} needs a training script (sagemaker_program) to run locally")
        elif kind == "Model":
            for container in model_containers(arguments):
                image = literal(_obj(container).get("Image"))
                if isinstance(image, str) and not has_local_equivalent(image):
                    problems.append(f"step {name!r}: model image {image!r} has no local equivalent")
        elif kind == "Lambda" and lambda_callable(step, lambdas) is None:
            problems.append(f"step {name!r}: Lambda function {step.get('FunctionArn')!r} is not runnable locally "
                            "(register a Python callable with sm_pipeline.local.register_lambda)")
    return problems


def require_valid(definition: dict, where: str = "definition") -> None:
    """DefinitionInvalid with every problem of :func:`validate_definition`, if there is any."""
    problems = validate_definition(definition)
    if problems:
        raise DefinitionInvalid(problems, where=where)


def require_runnable(definition: dict, parameters: Mapping[str, Any] | None, lambdas: Mapping[str, Callable] | None,
                     where: str = "definition") -> None:
    """DefinitionInvalid(local=True) with every problem of :func:`local_problems`, if there is any."""
    problems = local_problems(definition, parameters, lambdas)
    if problems:
        raise DefinitionInvalid(problems, local=True, where=where)


def validate_file(path: str, *, local: bool = False) -> tuple[int, list[str]]:
    """``python -m sm_pipeline validate [--local] FILE``: (exit code, stderr lines).

    SageMaker problems are ``FILE: <problem>`` (exit 2). A definition SageMaker accepts but the local
    runner cannot run gets ``FILE: cannot run locally: <problem>`` lines — the very lines ``run-local``
    refuses it with — and exit 0 (``--local``: exit 2). Parameters take their defaults.
    """
    from sm_pipeline.errors import InvalidInput, error_lines

    try:
        definition = load_definition_file(Path(path))
        require_valid(definition, path)
        defaults = {p["Name"]: p["DefaultValue"] for p in definition.get("Parameters") or [] if "DefaultValue" in p}
        require_runnable(definition, defaults, None, path)
    except DefinitionInvalid as exc:
        if exc.local and not local:
            return 0, [*exc.lines(), f"{path}: ok for SageMaker (run-local would refuse it: see above)"]
        return 2, exc.lines()
    except InvalidInput as exc:
        return 2, error_lines(exc)
    return 0, [f"{path}: ok"]
