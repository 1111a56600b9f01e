"""A step's ``CacheConfig``, by SageMaker's rules: whether it is on, and the ``ExpireAfter`` duration; and the key.

The one reading of these durations: the validator refuses what SageMaker would refuse, the local
runner's step cache expires its entries by it, and the abalone config's ``cache_expire_after`` accepts
exactly the forms a definition may carry. The cache key's pure parts (:func:`cache_key`, where a step's
code is, the execution-variable placeholders) are here too: the local runner's cache
(:mod:`sm_pipeline.local.cache`) and the cache-impact plan (:mod:`sm_pipeline.plan`) compute the same key.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta
from typing import Any

from sm_pipeline.errors import DefinitionError
from sm_pipeline.expressions import EXECUTION_VARIABLES

# AWS's caching guide: "ExpireAfter is a string in ISO 8601 duration format ... a year, month, week, day,
# hour, or minute value": "30d", "5y", "T16m", "30dT5h" as well as "P30D". The leading P is optional,
# units are case-insensitive, "M" before T is months and after T minutes.
_DURATION_RE = re.compile(
    r"P?(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?",
    re.IGNORECASE,
)
DURATION_EXAMPLES = "e.g. 30d, 5y, T16m, 30dT5h, P30D, PT12H"


def parse_expire_after(text: object) -> timedelta:
    """A CacheConfig ExpireAfter (``30d``, ``5y``, ``T16m``, ``30dT5h``, ``P30D``, ``PT1H``) as a timedelta.

    AWS's short forms and ISO 8601, case-insensitive; a year is 365 days, a month 30. Raises
    DefinitionError with one line (without the step: callers add where it came from).
    """
    if not isinstance(text, str):
        raise DefinitionError(f"ExpireAfter must be a duration string ({DURATION_EXAMPLES}), not {text!r}")
    match = _DURATION_RE.fullmatch(text)
    parts = {k: float(v) for k, v in match.groupdict().items() if v} if match else {}
    if not parts:
        raise DefinitionError(f"ExpireAfter {text!r} is not a duration ({DURATION_EXAMPLES})")
    days = parts.get("years", 0) * 365 + parts.get("months", 0) * 30 + parts.get("weeks", 0) * 7 + parts.get("days", 0)
    try:
        return timedelta(days=days, hours=parts.get("hours", 0), minutes=parts.get("minutes", 0),
                         seconds=parts.get("seconds", 0))
    except OverflowError:
        raise DefinitionError(f"ExpireAfter {text!r} is too long a duration") from None


def cache_config(step: dict) -> tuple[bool, timedelta | None]:
    """``(enabled, expire_after)`` of a step's CacheConfig."""
    config = step.get("CacheConfig") or {}
    if not config.get("Enabled"):
        return False, None
    expire = config.get("ExpireAfter")
    return True, parse_expire_after(expire) if expire else None


# Execution variables in a cache key: placeholders, so an output URI built from PipelineExecutionId does not
# defeat the cache (the runner's key and the plan's, sm_pipeline.plan).
CACHE_PLACEHOLDERS = {name: f"<Execution.{name}>" for name in EXECUTION_VARIABLES}


def is_code_input(item: dict) -> bool:
    """True for a ProcessingInput that carries the step's code (named code/entrypoint, or mounted at .../code)."""
    local = str((item.get("S3Input") or {}).get("LocalPath", "")).rstrip("/")
    return item.get("InputName") in ("code", "entrypoint") or local.endswith(("/code", "/entrypoint"))


def code_uris(step_type: str, arguments: dict) -> list[str]:
    """The S3 URIs of the code a step runs (its code inputs, its submitted source), sorted; the one reading of
    "where a step's code is", for the cache key and for ``python -m sm_pipeline diff``.

    An entry that is not a plain string (an expression) is left out.
    """
    uris: list[object] = []
    if step_type == "Processing":
        for item in arguments.get("ProcessingInputs") or []:
            if isinstance(item, dict) and is_code_input(item):
                uris.append((item.get("S3Input") or {}).get("S3Uri", ""))
    elif step_type == "Training":
        submit = (arguments.get("HyperParameters") or {}).get("sagemaker_submit_directory")
        if isinstance(submit, str) and submit:
            uris.append(submit.strip('"'))
        for channel in arguments.get("InputDataConfig") or []:
            if isinstance(channel, dict) and channel.get("ChannelName") in ("code", "sm_drivers"):
                uris.append(((channel.get("DataSource") or {}).get("S3DataSource") or {}).get("S3Uri", ""))
    return sorted(uri for uri in uris if isinstance(uri, str))


def cache_key(step_type: str, cache_arguments: Any, code: str) -> str:
    """The cache key of one step invocation."""
    text = json.dumps({"type": step_type, "arguments": cache_arguments, "code": code}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()
