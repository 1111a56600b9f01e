"""Step caching (CacheConfig): same resolved arguments and same code → the earlier outputs are reused.

The key is computed from the step's arguments resolved with execution variables left as placeholders
(an output URI built from PipelineExecutionId must not defeat the cache), plus the content hash of
the step's code objects and of the emulator that runs it. A hit returns the earlier step's properties,
so downstream steps read the earlier outputs, exactly as SageMaker does. Entries live under
``<root>/.airsage/cache/<pipeline>/`` and are used only while every output they name still exists.
Which step kinds are cached and a step's ``CacheConfig`` are SageMaker's rules
(:mod:`sm_pipeline.step_kinds`, :mod:`sm_pipeline.cache_config`).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# the key's pure parts live with SageMaker's cache rules (the plan, sm_pipeline.plan, computes the same key)
from sm_pipeline.cache_config import CACHE_PLACEHOLDERS, cache_key, code_uris, is_code_input  # noqa: F401
from sm_pipeline.storage import INTERNAL_DIR, ObjectStore
from sm_pipeline.storage_io import write_text_atomic

_EMULATORS = ("builtin_xgboost.py", "processing.py", "training.py", "transform.py", "jobs.py")


def _hash_file(digest: Any, path: Path) -> None:
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)


def code_hash(step_type: str, arguments: dict, store: ObjectStore) -> str:
    """Content hash of the code a step runs: its code inputs, its submitted source, the local emulator."""
    digest = hashlib.sha256()
    for uri in code_uris(step_type, arguments):
        digest.update(uri.encode())
        for _, path in store.list_with_paths(uri):
            _hash_file(digest, path)
    here = Path(__file__).resolve().parent
    for name in _EMULATORS:
        _hash_file(digest, here / name)
    return digest.hexdigest()


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
