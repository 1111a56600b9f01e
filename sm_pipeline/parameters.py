"""Pipeline parameters: the one cast of a value to its declared type, by SageMaker's rules.

Every caller goes through here: the local runner and the emulated service (typed values for every
declared parameter, defaults filled in: :func:`cast_parameters`) and the Airflow tasks that start an
execution (the strings StartPipelineExecution takes, for the values given: :func:`start_request_values`).

The rules (one argument order everywhere: name, declared type, value):

- ``String``: a string.
- ``Integer``: an int, an integral float (``3.0``), or a string holding an integer (``"7"``); never a bool.
- ``Float``: an int or float, or a string holding a number; never a bool; never NaN or infinity.
- ``Boolean``: a bool, or the words ``true`` / ``false`` in any case (what SageMaker writes and reads).

Values that can never succeed are refused too, before any step runs, naming the parameter: control
characters or more than 1024 characters in a String, and any value that breaks the field it feeds
(an InstanceCount below 1, an S3Uri that is not one, a ModelApprovalStatus SageMaker does not know) —
see :func:`sm_pipeline.validate.parameter_value_problems`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from sm_pipeline.errors import InvalidInput, shown
from sm_pipeline.expressions import render
from sm_pipeline.storage import parse_s3_uri
from sm_pipeline.validate import parameter_value_problem, parameter_value_problems

BOOLEAN_WORDS = {"true": True, "false": False}


class ParameterError(InvalidInput):
    """A parameter is unknown, missing or its value does not fit the declared type; the message names it."""


def cast_value(name: str, declared_type: str, value: Any) -> Any:
    """``value`` as ``declared_type``'s Python value; ParameterError naming the parameter otherwise."""
    where = f"parameter {name} ({declared_type})"
    typed = _cast(where, declared_type, value)
    problem = parameter_value_problem(declared_type, typed)
    if problem:
        raise ParameterError(f"{where}: {problem}")
    return typed


def _cast(where: str, declared_type: str, value: Any) -> Any:
    if declared_type == "String":
        if isinstance(value, str):
            return value
        raise ParameterError(f"{where}: expected a string, got {type(value).__name__} {shown(value)}")
    if declared_type == "Boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in BOOLEAN_WORDS:
            return BOOLEAN_WORDS[value.strip().lower()]
        raise ParameterError(f"{where}: expected true or false, got {shown(value)}")
    if declared_type == "Integer":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and math.isfinite(value) and value == int(value):
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise ParameterError(f"{where}: expected an integer, got {shown(value)}")
    if declared_type == "Float":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise ParameterError(f"{where}: expected a number, got {shown(value)}")
    raise ParameterError(f"{where}: unknown parameter type (String, Integer, Float or Boolean)")


def _declared_types(declared: list[dict]) -> dict[str, str]:
    return {p["Name"]: p.get("Type", "String") for p in declared}


def _unknown(given: Mapping[str, Any], types: Mapping[str, str]) -> str | None:
    unknown = sorted(set(given) - set(types))
    if not unknown:
        return None
    return f"unknown parameter(s) {', '.join(unknown)} (declared: {', '.join(sorted(types)) or 'none'})"


def cast_parameters(declared: list[dict], given: Mapping[str, Any] | None,
                    definition: dict | None = None) -> dict[str, Any]:
    """Typed values for every declared parameter: given ones cast, the rest defaulted; all problems in one error.

    With ``definition``, given values are also checked against every field they feed.
    """
    given = dict(given or {})
    types = _declared_types(declared)
    problems: list[str] = []
    if unknown := _unknown(given, types):
        problems.append(unknown)
    values: dict[str, Any] = {}
    for parameter in declared:
        name = parameter["Name"]
        try:
            if name in given:
                values[name] = cast_value(name, types[name], given[name])
            elif "DefaultValue" in parameter:
                values[name] = cast_value(name, types[name], parameter["DefaultValue"])
            else:
                problems.append(f"parameter {name} ({types[name]}) is required: it has no default value")
                continue
        except InvalidInput as exc:
            problems.append(str(exc))
            continue
        allowed = parameter.get("EnumValues")
        if allowed and values[name] not in allowed:
            problems.append(f"parameter {name}: {shown(values[name])} is not one of {allowed}")
        # A String parameter holding an S3 URI is checked now, before any step runs, rather than
        # when the step that reads it fails halfway through the execution.
        if isinstance(values[name], str) and values[name].startswith("s3://"):
            try:
                parse_s3_uri(values[name])
            except InvalidInput as exc:
                problems.append(f"parameter {name}: {exc}")
    if not problems and definition is not None and given:
        problems.extend(parameter_value_problems(definition, values, set(given)))
    if problems:
        raise ParameterError("; ".join(problems))
    return values


def start_request_values(declared: list[dict], given: Mapping[str, Any] | None) -> dict[str, str]:
    """The given values as StartPipelineExecution's ``PipelineParameters`` strings, checked against ``declared``.

    A None value means "the pipeline's default" and is left out; unknown names and values that do not
    fit their declared type raise ParameterError naming the parameter (all problems in one error).
    """
    given = {name: value for name, value in (given or {}).items() if value is not None}
    types = _declared_types(declared)
    problems: list[str] = []
    if unknown := _unknown(given, types):
        problems.append(unknown)
    out: dict[str, str] = {}
    for name, value in given.items():
        if name not in types:
            continue
        try:
            out[name] = render_value(cast_value(name, types[name], value))
        except InvalidInput as exc:
            problems.append(str(exc))
    if problems:
        raise ParameterError("; ".join(problems))
    return out


def render_value(value: Any) -> str:
    """A typed parameter value as SageMaker writes it in a request or record (``true``, ``7``, ``6.0``)."""
    if isinstance(value, float):
        return repr(value)
    return render(value)
