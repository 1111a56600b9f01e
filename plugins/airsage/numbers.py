"""Numbers as people read them: 4 significant digits in reports, alerts, messages and logs.

Raw values are kept where machines read them (metrics.json, XCom, the payload's number fields).
"""

from __future__ import annotations

import math
from typing import Any


def readable(value: Any) -> str:
    """``value`` with 4 significant digits (``4.123456`` → ``4.123``, ``6.0`` → ``6``); text as is."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if isinstance(value, bool) or not math.isfinite(number):
        return str(value)
    return f"{number:.4g}"
