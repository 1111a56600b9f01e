"""How records, the registry and the service stamp times: ISO-8601 in UTC (one home, below every record module)."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> str:
    """The current time as ISO-8601 UTC."""
    return datetime.now(UTC).isoformat()
