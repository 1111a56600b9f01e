"""Pipeline definition expressions: ``Get``, ``Std:Join`` and ``Std:JsonGet``, nested anywhere in a value.

Shared by the local runner (which resolves step arguments) and the Airflow PropertyFile reader (which
resolves an evaluation step's output S3Uri from parameters and execution variables alone).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sm_pipeline.errors import DefinitionError

EXECUTION_VARIABLES = (
    "PipelineExecutionId",
    "PipelineExecutionArn",
    "PipelineName",
    "PipelineArn",
    "StartDateTime",
    "CurrentDateTime",
    "TrainingJobName",
    "ProcessingJobName",
)
FUNCTIONS = ("Get", "Std:Join", "Std:JsonGet")
# The namespaces of ``Get`` the SDKs write: SDK 2.x and 3.x's ParameterX / ExecutionVariables / step
# Properties / PipelineExperimentConfigProperties, and the SDK 3.x's ForEachStep (CurrentItem inside a
# ForEach body, IterationOutput only as a ForEach Selector's Field).
NAMESPACES = ("Parameters", "Execution", "Steps", "PipelineExperimentConfig", "ForEach", "IterationOutput")
EXPERIMENT_CONFIG_FIELDS = ("ExperimentName", "TrialName")
# Execution variables as placeholders, for resolving a value from parameters alone before any run.
PLACEHOLDER_VARIABLES = {name: f"placeholder-{name.lower()}" for name in EXECUTION_VARIABLES}


class ExpressionError(DefinitionError):
    """An expression cannot be resolved (unknown reference, missing property, bad JSON path)."""


class _NoItem:
    """The current item outside a ForEach body: there is none."""

    def __repr__(self) -> str:
        return "NO_ITEM"


NO_ITEM = _NoItem()


@dataclass
class ExpressionContext:
    """What expressions resolve against.

    ``step_records`` maps a step name to its properties (shaped like the Describe* API response of the
    job it ran). ``read_property_file(step, name)`` returns a property file's parsed JSON;
    ``read_json_uri(uri)`` returns the parsed JSON object at an S3 URI (the ``Std:JsonGet`` S3Uri form).
    ``CurrentDateTime`` is the time of resolution unless given. ``experiment`` is the definition's resolved
    ``PipelineExperimentConfig`` (``Get PipelineExperimentConfig.ExperimentName``), ``current_item`` the item
    of a ForEach body step's iteration (``Get ForEach.CurrentItem``).
    """

    parameters: Mapping[str, Any] = field(default_factory=dict)
    execution_variables: Mapping[str, Any] = field(default_factory=dict)
    step_records: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    read_property_file: Callable[[str, str], Any] | None = None
    read_json_uri: Callable[[str], Any] | None = None
    experiment: Mapping[str, Any] | None = None
    current_item: Any = NO_ITEM


def resolve(value: Any, ctx: ExpressionContext) -> Any:
    """Return ``value`` with every expression inside it replaced by its value (input is not modified)."""
    if isinstance(value, list):
        return [resolve(item, ctx) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        (key, arg), = value.items()
        if key == "Get":
            return _get(arg, ctx)
        if key == "Std:Join":
            return _join(arg, ctx)
        if key == "Std:JsonGet":
            return _json_get(arg, ctx)
        if key.startswith("Std:"):
            raise ExpressionError(f"unknown function {key!r} (known: {', '.join(FUNCTIONS)})")
    return {key: resolve(item, ctx) for key, item in value.items()}


def render(value: Any) -> str:
    """A resolved value as SageMaker renders it inside ``Std:Join`` (booleans lowercase, None empty)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _get(reference: Any, ctx: ExpressionContext) -> Any:
    if not isinstance(reference, str):
        raise ExpressionError(f"Get expects a string reference, not {reference!r}")
    namespace, _, rest = reference.partition(".")
    if namespace == "Parameters":
        if rest not in ctx.parameters:
            raise ExpressionError(f"Get {reference!r}: no pipeline parameter named {rest!r}")
        return ctx.parameters[rest]
    if namespace == "Execution":
        if rest == "CurrentDateTime" and rest not in ctx.execution_variables:
            return datetime.now(UTC).isoformat()
        if rest not in ctx.execution_variables:
            raise ExpressionError(f"Get {reference!r}: execution variable {rest!r} is not available here")
        return ctx.execution_variables[rest]
    if namespace == "Steps":
        step, _, path = rest.partition(".")
        if not path:
            raise ExpressionError(f"Get {reference!r}: a step reference needs a property path")
        if path.startswith("PropertyFiles."):
            raise ExpressionError(f"Get {reference!r}: a property file is read with Std:JsonGet, not Get")
        if step not in ctx.step_records:
            raise ExpressionError(f"Get {reference!r}: step {step!r} has no record (not run, or not run yet)")
        return get_path(ctx.step_records[step], path, reference)
    if namespace == "PipelineExperimentConfig":
        if not isinstance(ctx.experiment, Mapping):
            raise ExpressionError(f"Get {reference!r}: the definition sets no PipelineExperimentConfig")
        if rest not in ctx.experiment:
            raise ExpressionError(f"Get {reference!r}: PipelineExperimentConfig has no {rest!r} "
                                  f"({' or '.join(EXPERIMENT_CONFIG_FIELDS)})")
        return ctx.experiment[rest]
    if namespace == "ForEach":
        return current_item_value(ctx.current_item, rest, reference)
    if namespace == "IterationOutput":
        raise ExpressionError(f"Get {reference!r}: an IterationOutput is read only by a ForEach step's Selector")
    raise ExpressionError(f"Get {reference!r}: unknown namespace {namespace!r} ({', '.join(NAMESPACES)})")


def current_item_value(item: Any, rest: str, reference: str) -> Any:
    """``ForEach.CurrentItem[.field...]``: the whole item, or a field of an item that is (or holds) a JSON object.

    SDK 3.x's ``CurrentItem``: the bare reference is the item itself (an object item as its JSON text, the
    form ListPipelineExecutionSteps' ``IterationContext.Item`` shows); ``CurrentItem.a.b`` / ``['a']`` drill
    into an item given as a JSON object or as the JSON text of one.
    """
    match = re.fullmatch(r"CurrentItem(.*)", rest, re.DOTALL)
    if not match:
        raise ExpressionError(f"Get {reference!r}: the ForEach namespace has only CurrentItem")
    if item is NO_ITEM:
        raise ExpressionError(f"Get {reference!r}: only a ForEach body step has a current item")
    path = match.group(1)
    if not path:
        return json.dumps(item) if isinstance(item, dict | list) else item
    document = item
    if isinstance(item, str):
        try:
            document = json.loads(item)
        except ValueError:
            raise ExpressionError(f"Get {reference!r}: the current item {item!r} is not a JSON object") from None
    return get_json_path(document, path, f"Get {reference!r}")


def _join(arg: Any, ctx: ExpressionContext) -> str:
    if not isinstance(arg, dict) or not isinstance(arg.get("Values"), list):
        raise ExpressionError(f"Std:Join expects {{'On': str, 'Values': [...]}}, not {arg!r}")
    separator = arg.get("On", "")
    if not isinstance(separator, str):
        raise ExpressionError(f"Std:Join 'On' must be a string, not {separator!r}")
    return separator.join(render(resolve(item, ctx)) for item in arg["Values"])


def _json_get(arg: Any, ctx: ExpressionContext) -> Any:
    if not isinstance(arg, dict) or not isinstance(arg.get("Path"), str):
        raise ExpressionError(f"Std:JsonGet expects a 'Path' string and a PropertyFile or S3Uri, not {arg!r}")
    if "PropertyFile" in arg:
        step, name = property_file_reference(arg["PropertyFile"])
        if ctx.read_property_file is None:
            raise ExpressionError(f"Std:JsonGet: property file {step}.{name} cannot be read in this context")
        document = ctx.read_property_file(step, name)
        where = f"property file {name} of step {step}"
    elif "S3Uri" in arg:
        uri = resolve(arg["S3Uri"], ctx)
        if ctx.read_json_uri is None:
            raise ExpressionError(f"Std:JsonGet: {uri} cannot be read in this context")
        document = ctx.read_json_uri(uri)
        where = str(uri)
    else:
        raise ExpressionError(f"Std:JsonGet needs a PropertyFile or an S3Uri, not {sorted(arg)}")
    return get_json_path(document, arg["Path"], where)


def property_file_reference(value: Any) -> tuple[str, str]:
    """``(step, property_file)`` of a JsonGet ``PropertyFile`` field (``{"Get": "Steps.X.PropertyFiles.Y"}``)."""
    reference = value.get("Get") if isinstance(value, dict) else None
    match = re.fullmatch(r"Steps\.([^.]+)\.PropertyFiles\.([^.]+)", reference if isinstance(reference, str) else "")
    if not match:
        raise ExpressionError(f"Std:JsonGet PropertyFile must be {{'Get': 'Steps.<step>.PropertyFiles.<name>'}}, not {value!r}")
    return match.group(1), match.group(2)


_TOKEN_RE = re.compile(r"\.?([A-Za-z_][A-Za-z0-9_\-]*)|\[\s*'([^']*)'\s*\]|\[\s*\"([^\"]*)\"\s*\]|\[\s*(\d+)\s*\]")

# SageMaker property paths index lists of outputs/channels by name: Outputs['train'] is the entry whose
# OutputName is 'train'.
_LIST_KEY_FIELDS = ("OutputName", "InputName", "ChannelName", "Name", "MetricName", "PropertyFileName")


def _tokens(path: str, where: str) -> list[str | int]:
    tokens: list[str | int] = []
    pos = 0
    while pos < len(path):
        match = _TOKEN_RE.match(path, pos)
        if not match or match.end() == pos:
            raise ExpressionError(f"{where}: cannot parse property path {path!r} at {path[pos:]!r}")
        name, single, double, index = match.groups()
        tokens.append(int(index) if index is not None else (name or single or double or ""))
        pos = match.end()
    return tokens


def get_path(record: Any, path: str, where: str = "") -> Any:
    """Follow a SageMaker property path (``A.B['key'].C[0]``) through a Describe-shaped record."""
    current = record
    for token in _tokens(path, where or path):
        current = _step_into(current, token, path, where or path)
    return current


def _step_into(current: Any, token: str | int, path: str, where: str) -> Any:
    if isinstance(token, int):
        if isinstance(current, list) and -len(current) <= token < len(current):
            return current[token]
        raise ExpressionError(f"{where}: index [{token}] of {path!r} is out of range")
    if isinstance(current, dict):
        if token in current:
            return current[token]
    elif isinstance(current, list):
        for item in current:
            if isinstance(item, dict) and any(item.get(key) == token for key in _LIST_KEY_FIELDS):
                return item
    raise ExpressionError(f"{where}: property path {path!r} has no {token!r}")


def get_json_path(document: Any, path: str, where: str) -> Any:
    """Follow a JsonGet path (``a.b[0].c``, ``a['b c']``) through parsed JSON."""
    current = document
    for token in _tokens(path, where):
        if isinstance(token, int):
            if isinstance(current, list) and -len(current) <= token < len(current):
                current = current[token]
                continue
        elif isinstance(current, dict) and token in current:
            current = current[token]
            continue
        raise ExpressionError(f"{where}: JSON path {path!r} not found (at {token!r})")
    return current


@dataclass(frozen=True)
class Reference:
    """One ``Get`` reference found in a value: ``kind`` is a namespace of :data:`NAMESPACES` or PropertyFile.

    ``Steps`` and ``IterationOutput``: ``name`` is the step, ``detail`` the property path after it; ``ForEach``:
    ``name`` is ``CurrentItem``, ``detail`` the field path; otherwise ``name`` is the rest of the reference.
    """

    kind: str
    name: str
    detail: str = ""


def references(value: Any) -> Iterator[Reference]:
    """Every reference inside ``value``: parameters, execution variables, steps and property files."""
    if isinstance(value, list):
        for item in value:
            yield from references(item)
        return
    if not isinstance(value, dict):
        return
    if len(value) == 1 and "Get" in value and isinstance(value["Get"], str):
        namespace, _, rest = value["Get"].partition(".")
        if namespace in ("Steps", "IterationOutput"):
            step, _, path = rest.partition(".")
            yield Reference(namespace, step, path)
        elif namespace == "ForEach":
            match = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)(.*)", rest, re.DOTALL)
            yield Reference(namespace, *(match.groups() if match else (rest, "")))
        else:
            yield Reference(namespace, rest)
        return
    if len(value) == 1 and isinstance(value.get("Std:JsonGet"), dict) and "PropertyFile" in value["Std:JsonGet"]:
        arg = value["Std:JsonGet"]
        try:
            step, name = property_file_reference(arg["PropertyFile"])
        except ExpressionError:
            yield Reference("Invalid", json.dumps(arg["PropertyFile"]))
        else:
            yield Reference("Steps", step, f"PropertyFiles.{name}")
            yield Reference("PropertyFile", step, name)
        yield from references(arg.get("Path"))
        return
    for item in value.values():
        yield from references(item)
