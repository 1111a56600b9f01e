"""Settings airsage reads from Airflow Variables: a JSON object with known keys, checked the same way for every one."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any


def json_object(raw: str | None, variable: str, known_keys: Sequence[str],
                error: type[Exception]) -> dict[str, Any] | None:
    """The Variable's value as a dict, or None when it is unset or empty; ``error`` (one line naming the Variable)
    when it is not JSON, not an object, or has a key outside ``known_keys``."""
    if raw is None or not str(raw).strip():
        return None
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as err:
        raise error(f"Variable {variable} is not JSON: {err.msg} at line {err.lineno} column {err.colno}") from None
    if not isinstance(value, dict):
        raise error(f"Variable {variable} must be a JSON object with {', '.join(known_keys)}; "
                    f"got a {type(value).__name__}")
    unknown = sorted(set(value) - set(known_keys))
    if unknown:
        raise error(f"Variable {variable} has unknown key(s) {unknown}; known: {', '.join(known_keys)}")
    return value
