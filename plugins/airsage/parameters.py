"""Pipeline parameter values checked against the definition and cast to SageMaker's strings."""

from __future__ import annotations

import math
from typing import Any


class ParameterError(ValueError):
    """A parameter is unknown or its value does not fit the declared type."""


def cast_parameters(values: dict[str, Any] | None, declared: list[dict]) -> dict[str, str]:
    """``values`` as the strings StartPipelineExecution takes, checked against ``declared``.

    ``declared`` is the definition's ``Parameters`` list. Unknown names and values that do
    not parse as the declared type raise ParameterError naming the parameter; a None value
    means "use the pipeline's default" and is left out.
    """
    types = {p["Name"]: p.get("Type", "String") for p in declared}
    out: dict[str, str] = {}
    for name, value in (values or {}).items():
        if name not in types:
            raise ParameterError(f"unknown pipeline parameter {name!r}; the pipeline declares {sorted(types)}")
        if value is None:
            continue
        out[name] = _cast(name, types[name], value)
    return out


def _cast(name: str, kind: str, value: Any) -> str:
    text = str(value).strip()
    if kind == "Integer":
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if isinstance(value, bool) or not math.isfinite(number) or number != int(number):
            raise ParameterError(f"parameter {name!r} is Integer; {value!r} is not an integer")
        return str(int(number))
    if kind == "Float":
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if isinstance(value, bool) or not math.isfinite(number):
            raise ParameterError(f"parameter {name!r} is Float; {value!r} is not a finite number")
        return repr(number)
    if kind == "Boolean":
        lowered = text.lower()
        if lowered not in ("true", "false"):
            raise ParameterError(f"parameter {name!r} is Boolean; {value!r} is not true/false")
        return lowered
    if kind == "String":
        if isinstance(value, dict | list):
            raise ParameterError(f"parameter {name!r} is String; got a {type(value).__name__}")
        return str(value)
    raise ParameterError(f"parameter {name!r} has unsupported type {kind!r}")
