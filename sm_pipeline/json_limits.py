"""JSON parsing with bounds: strict (no NaN/Infinity), nesting depth and integer size checked, never a RecursionError.

Python's ``json`` accepts ``NaN``, recurses once per nesting level (100k levels raise RecursionError)
and refuses integers over 4300 digits with a bare ValueError. Every JSON document airsage reads from
a user (definitions, config files, evaluation reports) goes through :func:`loads`, which turns each
of these into one :class:`JsonLimitError` line naming where the problem is.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Real pipeline definitions nest about 15 levels; 100 leaves ample room and keeps every recursive
# walk over a parsed document (expressions, references) far below Python's recursion limit.
MAX_DEPTH = 100
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


class JsonLimitError(ValueError):
    """A JSON document is malformed or exceeds a limit; the message is one line."""


def _reject_constant(name: str) -> Any:
    raise JsonLimitError(f"{name} is not valid JSON (numbers must be finite)")


def _parse_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:  # Python's int-digit limit (sys.get_int_max_str_digits)
        raise JsonLimitError(f"an integer of {len(text.lstrip('-'))} digits is too large") from None


def too_deep_at(text: str, max_depth: int = MAX_DEPTH) -> tuple[int, int] | None:
    """(line, column) where ``text`` first nests deeper than ``max_depth``, or None; iterative."""
    depth = 0
    for match in _TOKENS.finditer(text):
        part = match.group()
        if part in ("[", "{"):
            depth += 1
            if depth > max_depth:
                start = match.start()
                line = text.count("\n", 0, start) + 1
                return line, start - (text.rfind("\n", 0, start) + 1) + 1
        elif part in ("]", "}"):
            depth -= 1
    return None


def loads(text: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """Parse strict JSON; JsonLimitError for bad JSON, NaN/Infinity, huge integers or deep nesting."""
    value, too_deep = None, False
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_int=_parse_int)
    except json.JSONDecodeError as exc:
        raise JsonLimitError(f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except UnicodeDecodeError as exc:
        raise JsonLimitError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except RecursionError:
        too_deep = True  # nested far deeper than any limit: located below
    if too_deep or depth_exceeds(value, max_depth):
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        where = too_deep_at(text, max_depth)
        at = f" at line {where[0]} column {where[1]}" if where else ""
        raise JsonLimitError(f"JSON nested more than {max_depth} levels deep{at}")
    return value


def depth_exceeds(value: Any, max_depth: int = MAX_DEPTH) -> bool:
    """True if ``value`` (parsed JSON or any nest of dicts and lists) nests deeper than ``max_depth``; iterative."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth > max_depth:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list | tuple))
    return False
