"""The SageMaker wire protocol, checked against botocore's own service model for SageMaker.

AWS JSON 1.1: ``POST /`` with ``X-Amz-Target: SageMaker.<Action>`` and a JSON body. Every request is
validated against the action's input shape the way the service does it (required members, types,
lengths, ranges, enums, patterns, unknown members) before a handler sees it, and every answer is cut to
the action's output shape (members the API does not define are dropped, timestamps become epoch
seconds), so what clients parse is what SageMaker would send.
"""

from __future__ import annotations

import functools
import json
import re
from datetime import UTC, datetime
from typing import Any

try:  # SageMaker's patterns use Java classes such as \\p{L}; the regex module understands them
    import regex as _regex
except ImportError:  # pragma: no cover - regex is in the lock; without it those patterns are skipped
    _regex = None

TARGET_PREFIX = "SageMaker."
JSON_CONTENT_TYPE = "application/x-amz-json-1.1"
_MAX_SHOWN = 100  # characters of a rejected value quoted back in an error message


class ApiError(Exception):
    """An AWS-shaped error: ``{"__type": code, "message": message}`` with an HTTP status."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    def body(self) -> dict:
        """The JSON body; modeled SageMaker errors carry their ``Message`` member too."""
        return {"__type": self.code, "message": self.message, "Message": self.message}


def validation_error(message: str) -> ApiError:
    """ValidationException (HTTP 400): the request is well-formed but not acceptable."""
    return ApiError("ValidationException", message)


def not_found(message: str) -> ApiError:
    """ResourceNotFound (HTTP 400), SageMaker's code for an unknown pipeline or execution."""
    return ApiError("ResourceNotFound", message)


def conflict(message: str) -> ApiError:
    """ConflictException (HTTP 400): the resource is in a state that does not allow the call."""
    return ApiError("ConflictException", message)


def not_emulated(what: str) -> ApiError:
    """NotImplemented (HTTP 501): valid for SageMaker, but beyond what this emulator does."""
    return ApiError("NotImplemented", f"{what} is not emulated by airsage's emulated SageMaker service "
                                      "(see docs/EMULATED_SAGEMAKER.md)", 501)


@functools.cache
def service_model():
    """botocore's SageMaker service model (the same one boto3 clients use)."""
    import botocore.session

    return botocore.session.get_session().get_service_model("sagemaker")


def operation_model(action: str):
    """The operation model of ``action``; UnknownOperationException if SageMaker has no such action."""
    model = service_model()
    if action not in model.operation_names:
        raise ApiError("UnknownOperationException", f"SageMaker has no operation {action!r}")
    return model.operation_model(action)


def parse_request(target: str | None, body: bytes) -> tuple[str, dict]:
    """``(action, input)`` of a JSON 1.1 request; the error SageMaker gives when it cannot be parsed."""
    if not target or not target.startswith(TARGET_PREFIX) or not target[len(TARGET_PREFIX):]:
        raise ApiError("UnknownOperationException",
                       f"missing or foreign X-Amz-Target {target!r}: expected {TARGET_PREFIX}<Action>")
    action = target[len(TARGET_PREFIX):]
    operation_model(action)
    try:
        params = json.loads(body.decode("utf-8")) if body.strip() else {}
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError("SerializationException", f"request body is not valid JSON: {exc}") from None
    if not isinstance(params, dict):
        raise ApiError("SerializationException", "request body must be a JSON object")
    return action, params


def validate_input(action: str, params: dict) -> None:
    """Raise the ValidationException/SerializationException SageMaker would give for ``params``."""
    shape = operation_model(action).input_shape
    if shape is None:
        if params:
            raise validation_error(f"{action} takes no parameters, got {', '.join(sorted(params))}")
        return
    problems = _Problems()
    _check(shape, params, "", problems)
    if problems.type_errors:
        # A value of the wrong JSON type never reaches validation in SageMaker: it fails to deserialize.
        raise ApiError("SerializationException", problems.type_errors[0])
    if problems:
        count = len(problems)
        raise validation_error(f"{count} validation error{'s' if count > 1 else ''} detected: " + "; ".join(problems))


class _Problems(list):
    """Constraint violations (the list) and type errors (``type_errors``) found in one request."""

    def __init__(self) -> None:
        super().__init__()
        self.type_errors: list[str] = []


def _member_path(parent: str, name: str) -> str:
    # SageMaker names members in lower camel case in its messages: 'pipelineName', 'tags.1.member.key'.
    name = name[:1].lower() + name[1:]
    return f"{parent}.{name}" if parent else name


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "..."


def _type_error(problems: _Problems, path: str, expected: str, value: Any) -> None:
    problems.type_errors.append(f"Expected {expected} for '{path or 'input'}', "
                                f"found {type(value).__name__} {_shown(value)!r}")


def _check(shape, value: Any, path: str, problems: _Problems) -> None:
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            _type_error(problems, path, "an object", value)
            return
        for name in shape.required_members:
            if value.get(name) is None:
                problems.append(f"Value null at '{_member_path(path, name)}' failed to satisfy constraint: "
                                "Member must not be null")
        for name, member_value in value.items():
            member = shape.members.get(name)
            if member is None:
                problems.append(f"Unknown member '{name}' at '{path or 'input'}' failed to satisfy constraint: "
                                f"Member must be one of: {', '.join(shape.members)}")
            elif member_value is not None:
                _check(member, member_value, _member_path(path, name), problems)
    elif kind == "list":
        if not isinstance(value, list):
            _type_error(problems, path, "a list", value)
            return
        _check_length(shape, value, path, problems)
        for index, item in enumerate(value, start=1):
            _check(shape.member, item, f"{path}.{index}.member", problems)
    elif kind == "map":
        if not isinstance(value, dict):
            _type_error(problems, path, "a map", value)
            return
        _check_length(shape, value, path, problems)
        for key, item in value.items():
            _check(shape.key, key, f"{path}.{key}.key", problems)
            _check(shape.value, item, f"{path}.{key}.value", problems)
    elif kind == "string":
        if not isinstance(value, str):
            _type_error(problems, path, "a string", value)
            return
        _check_length(shape, value, path, problems)
        enum = shape.metadata.get("enum")
        if enum and value not in enum:
            problems.append(f"Value '{_shown(value)}' at '{path}' failed to satisfy constraint: "
                            f"Member must satisfy enum value set: [{', '.join(enum)}]")
        pattern = _compiled(shape.metadata.get("pattern"))
        if pattern is not None and not pattern.fullmatch(value):
            problems.append(f"Value '{_shown(value)}' at '{path}' failed to satisfy constraint: "
                            f"Member must satisfy regular expression pattern: {shape.metadata['pattern']}")
    elif kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            _type_error(problems, path, "an integer", value)
            return
        _check_range(shape, value, path, problems)
    elif kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            _type_error(problems, path, "a number", value)
            return
        _check_range(shape, value, path, problems)
    elif kind == "boolean":
        if not isinstance(value, bool):
            _type_error(problems, path, "a boolean", value)
    elif kind == "timestamp":
        try:
            to_datetime(value)
        except (TypeError, ValueError):
            _type_error(problems, path, "a timestamp (epoch seconds or ISO 8601)", value)
    elif kind == "blob" and not isinstance(value, str):
        _type_error(problems, path, "a base64 string", value)


def _check_length(shape, value, path: str, problems: _Problems) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and len(value) < low:
        problems.append(f"Value '{_shown(value)}' at '{path}' failed to satisfy constraint: "
                        f"Member must have length greater than or equal to {low}")
    if high is not None and len(value) > high:
        problems.append(f"Value '{_shown(value)}' at '{path}' failed to satisfy constraint: "
                        f"Member must have length less than or equal to {high}")


def _check_range(shape, value, path: str, problems: _Problems) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and value < low:
        problems.append(f"Value '{value}' at '{path}' failed to satisfy constraint: "
                        f"Member must have value greater than or equal to {low}")
    if high is not None and value > high:
        problems.append(f"Value '{value}' at '{path}' failed to satisfy constraint: "
                        f"Member must have value less than or equal to {high}")


@functools.cache
def _compiled(pattern: str | None):
    if not pattern:
        return None
    engines = [_regex] if _regex is not None else []
    engines.append(re)
    for engine in engines:
        try:
            return engine.compile(pattern)
        except Exception:  # noqa: S112 - a Java-only construct: try the next engine, else skip the check
            continue
    return None


def to_datetime(value: Any) -> datetime:
    """A timestamp as sent by clients (epoch seconds or ISO 8601) or stored in records (ISO 8601)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, bool):
        raise TypeError("a boolean is not a timestamp")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise TypeError(f"{type(value).__name__} is not a timestamp")


def epoch(value: Any) -> float:
    """A timestamp as epoch seconds, the JSON protocol's wire format."""
    return to_datetime(value).timestamp()


def missing_required_members(action: str, output: dict) -> list[str]:
    """The members botocore's model marks required that ``output`` (an answer of ``action``) lacks, as paths.

    Nested structures count too: a structure that is present must carry its own required members.
    """
    shape = operation_model(action).output_shape
    missing: list[str] = []
    if shape is not None:
        _missing(shape, output, action, missing)
    return missing


def _missing(shape, value: Any, path: str, missing: list[str]) -> None:
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        for name in shape.required_members:
            if value.get(name) is None:
                missing.append(f"{path}.{name}")
        for name, member in shape.members.items():
            if value.get(name) is not None:
                _missing(member, value[name], f"{path}.{name}", missing)
    elif kind == "list" and isinstance(value, list):
        for index, item in enumerate(value):
            _missing(shape.member, item, f"{path}[{index}]", missing)
    elif kind == "map" and isinstance(value, dict):
        for key, item in value.items():
            _missing(shape.value, item, f"{path}[{key!r}]", missing)


def shape_output(action: str, data: dict) -> dict:
    """``data`` cut to the action's output shape, with timestamps as epoch seconds."""
    shape = operation_model(action).output_shape
    return _shaped(shape, data) if shape is not None else {}


def _shaped(shape, value: Any) -> Any:
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            return None
        out = {}
        for name, member in shape.members.items():
            if value.get(name) is not None:
                shaped = _shaped(member, value[name])
                if shaped is not None:
                    out[name] = shaped
        return out
    if kind == "list":
        return [item for item in (_shaped(shape.member, v) for v in value or []) if item is not None]
    if kind == "map":
        return {str(k): _shaped(shape.value, v) for k, v in (value or {}).items()}
    if kind == "timestamp":
        return epoch(value)
    if kind in ("integer", "long"):
        return int(value)
    if kind in ("float", "double"):
        return float(value)
    if kind == "boolean":
        return bool(value)
    if kind == "string":
        return value if isinstance(value, str) else json.dumps(value) if isinstance(value, dict | list) else str(value)
    return value
