"""Pipeline parameters: declared types enforced, CLI strings cast, unknown and missing names refused.

Values that can never succeed are refused too, before any step runs, naming the parameter: NaN or
infinity for a Float, control characters or more than 1024 characters in a String, and any value
that breaks the field it feeds (an InstanceCount below 1, an S3Uri that is not one, a
ModelApprovalStatus SageMaker does not know) — see :func:`sm_pipeline.validate.parameter_value_problems`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sm_pipeline.errors import InvalidInput
from sm_pipeline.storage import parse_s3_uri


def shown(value: Any) -> str:
    """A value as one short, escaped line."""
    from sm_pipeline.validate import shown as _shown

    return _shown(value)


_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


def cast_value(name: str, declared_type: str, value: Any) -> Any:
    """``value`` as the declared type; strings are parsed, other mismatches are refused."""
    where = f"parameter {name} ({declared_type})"
    value = _checked(where, declared_type, _cast(where, declared_type, value))
    return value


def _checked(where: str, declared_type: str, value: Any) -> Any:
    from sm_pipeline.validate import parameter_value_problem

    problem = parameter_value_problem(declared_type, value)
    if problem:
        raise InvalidInput(f"{where}: {problem}")
    return value


def _cast(where: str, declared_type: str, value: Any) -> Any:
    if declared_type == "String":
        if isinstance(value, str):
            return value
        raise InvalidInput(f"{where}: expected a string, got {type(value).__name__} {shown(value)}")
    if declared_type == "Boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        raise InvalidInput(f"{where}: expected true or false, got {shown(value)}")
    if declared_type == "Integer":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise InvalidInput(f"{where}: expected an integer, got {shown(value)}")
    if declared_type == "Float":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise InvalidInput(f"{where}: expected a number, got {shown(value)}")
    raise InvalidInput(f"{where}: unknown parameter type")


def cast_parameters(declared: list[dict], given: Mapping[str, Any] | None,
                    definition: dict | None = None) -> dict[str, Any]:
    """Values for every declared parameter: given ones cast, the rest defaulted; all problems in one error.

    With ``definition``, given values are also checked against every field they feed.
    """
    given = dict(given or {})
    types = {p["Name"]: p.get("Type", "String") for p in declared}
    problems: list[str] = []
    unknown = sorted(set(given) - set(types))
    if unknown:
        problems.append(f"unknown parameter(s) {', '.join(unknown)} (declared: {', '.join(sorted(types)) or 'none'})")
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
        from sm_pipeline.validate import parameter_value_problems

        problems.extend(parameter_value_problems(definition, values, set(given)))
    if problems:
        raise InvalidInput("; ".join(problems))
    return values
