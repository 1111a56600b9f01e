"""Step caching (CacheConfig): same resolved arguments and same code → the earlier outputs are reused.

The key is computed from the step's arguments resolved with execution variables left as placeholders
(an output URI built from PipelineExecutionId must not defeat the cache), plus the content hash of
the step's code objects and of the emulator that runs it. A hit returns the earlier step's properties,
so downstream steps read the earlier outputs, exactly as SageMaker does. Entries live under
``<root>/.airsage/cache/<pipeline>/`` and are used only while every output they name still exists.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sm_pipeline.errors import DefinitionError
from sm_pipeline.storage import INTERNAL_DIR, ObjectStore
from sm_pipeline.storage_io import write_text_atomic

CACHEABLE_TYPES = ("Processing", "Training", "Transform")
_EMULATORS = ("builtin_xgboost.py", "processing.py", "training.py", "transform.py", "jobs.py")
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

    The one parser of these durations: the validator, the cache and the config use it. Raises
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


def _hash_file(digest: Any, path: Path) -> None:
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)


def is_code_input(item: dict) -> bool:
    """True for a ProcessingInput that carries the step's code (named code/entrypoint, or mounted at .../code)."""
    local = str((item.get("S3Input") or {}).get("LocalPath", "")).rstrip("/")
    return item.get("InputName") in ("code", "entrypoint") or local.endswith(("/code", "/entrypoint"))


def code_hash(step_type: str, arguments: dict, store: ObjectStore) -> str:
    """Content hash of the code a step runs: its code inputs, its submitted source, the local emulator."""
    digest = hashlib.sha256()
    uris: list[str] = []
    if step_type == "Processing":
        for item in arguments.get("ProcessingInputs") or []:
            if is_code_input(item):
                uris.append((item.get("S3Input") or {}).get("S3Uri", ""))
    elif step_type == "Training":
        submit = (arguments.get("HyperParameters") or {}).get("sagemaker_submit_directory")
        if submit:
            uris.append(str(submit).strip('"'))
        for channel in arguments.get("InputDataConfig") or []:
            if channel.get("ChannelName") in ("code", "sm_drivers"):
                uris.append(((channel.get("DataSource") or {}).get("S3DataSource") or {}).get("S3Uri", ""))
    for uri in sorted(uris):
        digest.update(uri.encode())
        for _, path in store.list_with_paths(uri):
            _hash_file(digest, path)
    here = Path(__file__).resolve().parent
    for name in _EMULATORS:
        _hash_file(digest, here / name)
    return digest.hexdigest()


def cache_key(step_type: str, cache_arguments: Any, code: str) -> str:
    """The cache key of one step invocation."""
    text = json.dumps({"type": step_type, "arguments": cache_arguments, "code": code}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class StepCache:
    """Cache entries of one pipeline."""

    def __init__(self, store: ObjectStore, pipeline_name: str):
        self.store = store
        self.dir = store.root / INTERNAL_DIR / "cache" / pipeline_name

    def lookup(self, key: str, expire_after: timedelta | None) -> dict | None:
        """The entry for ``key`` if it is fresh and its outputs still exist."""
        path = self.dir / f"{key}.json"
        try:
            entry = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        created = datetime.fromisoformat(entry["CreatedTime"])
        if expire_after is not None and datetime.now(UTC) - created > expire_after:
            return None
        if not all(self.store.path_for(uri).exists() for uri in entry.get("OutputUris", [])):
            return None
        return entry

    def save(self, key: str, *, properties: dict, metadata: dict, output_uris: list[str], execution_arn: str) -> None:
        """Record a successful step for later executions."""
        write_text_atomic(self.dir / f"{key}.json", json.dumps({
            "CreatedTime": datetime.now(UTC).isoformat(), "SourcePipelineExecutionArn": execution_arn,
            "Properties": properties, "Metadata": metadata, "OutputUris": output_uris}, default=str))
