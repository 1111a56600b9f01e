"""What the emulated service keeps besides the runner's records: pipelines, tags, idempotency tokens.

Everything lives under ``<root>/.airsage/service/`` as JSON files written atomically, so a restart
loses nothing:

- ``pipelines/<name>/pipeline.json``: DescribePipeline's fields (without the definition text);
  ``pipelines/<name>/versions/<n>.json``: each version's definition, exactly as the client sent it;
- ``tags/<sha256 of the ARN>.json``: AddTags/ListTags per resource ARN;
- ``tokens/<sha256 of action and token>.json``: the first answer to each ClientRequestToken, so the same
  token gets the same answer, across restarts too;
- ``deleted/``: pipelines removed by DeletePipeline, with their executions' records.

Executions are not here: their one record is the local runner's (``<root>/.airsage/executions/``).
The caller serializes writes (one lock in ``api.SageMakerApi``).
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from sm_pipeline.arns import pipeline_name_of
from sm_pipeline.local.records import pipeline_records_dir
from sm_pipeline.pipeline_versions import PipelineVersions
from sm_pipeline.service.protocol import ApiError, not_found, to_datetime, validation_error
from sm_pipeline.storage import INTERNAL_DIR
from sm_pipeline.storage_io import write_text_atomic
from sm_pipeline.timestamps import utc_now

SERVICE_DIR = "service"


def service_dir(root: Path) -> Path:
    """``<root>/.airsage/service``."""
    return Path(root) / INTERNAL_DIR / SERVICE_DIR


def read_json(path: Path) -> Any:
    """The JSON in ``path``, or None when it is missing or unreadable."""
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def write_json(path: Path, value: Any) -> None:
    """Write ``value`` as JSON atomically."""
    write_text_atomic(path, json.dumps(value, indent=2, default=str))


def digest(*parts: str) -> str:
    """A file-name-safe digest of ``parts``."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


class PipelineStore:
    """Pipelines and their definition versions."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.dir = service_dir(root) / "pipelines"

    def names(self) -> list[str]:
        """Every pipeline's name."""
        if not self.dir.is_dir():
            return []
        return sorted(p.parent.name for p in self.dir.glob("*/pipeline.json"))

    def find(self, name_or_arn: str) -> dict | None:
        """The stored pipeline named (case-insensitively, as SageMaker does) or ARN'd, else None."""
        wanted = pipeline_name_of(name_or_arn).lower()
        for name in self.names():
            if name.lower() == wanted:
                return read_json(self.dir / name / "pipeline.json")
        return None

    def get(self, name_or_arn: str) -> dict:
        """The stored pipeline; ResourceNotFound if there is none."""
        pipeline = self.find(name_or_arn)
        if pipeline is None:
            raise not_found(f"Pipeline '{name_or_arn}' does not exist.")
        return pipeline

    def save(self, pipeline: dict) -> None:
        """Persist a pipeline's fields."""
        write_json(self.dir / pipeline["PipelineName"] / "pipeline.json", pipeline)

    def versions(self, pipeline: dict) -> PipelineVersions:
        """The pipeline's versions (``sm_pipeline.pipeline_versions``)."""
        return PipelineVersions(self.dir / pipeline["PipelineName"] / "versions")

    def add_version(self, pipeline: dict, definition: str) -> int:
        """Store ``definition`` as the pipeline's next version; returns its id."""
        version = self.versions(pipeline).add(definition, after=int(pipeline.get("PipelineVersionId") or 0))
        pipeline["PipelineVersionId"] = version
        return version

    def definition(self, pipeline: dict, version: int | None = None) -> str:
        """The definition text of a version (default: the latest); ResourceNotFound for an unknown version."""
        version = int(version or pipeline["PipelineVersionId"])
        stored = self.versions(pipeline).get(version)
        if stored is None:
            raise not_found(f"Pipeline '{pipeline['PipelineArn']}' has no version {version}.")
        return stored["PipelineDefinition"]

    def remove(self, pipeline: dict) -> None:
        """Move a pipeline and its executions' records under ``deleted/`` (a re-created pipeline starts empty)."""
        grave = service_dir(self.root) / "deleted" / f"{pipeline['PipelineName']}-{digest(utc_now())[:12]}"
        grave.mkdir(parents=True, exist_ok=True)
        os.replace(self.dir / pipeline["PipelineName"], grave / "pipeline")
        executions = pipeline_records_dir(self.root, pipeline["PipelineName"])
        if executions.is_dir():
            shutil.move(str(executions), str(grave / "executions"))


class TagStore:
    """Tags per resource ARN."""

    def __init__(self, root: Path):
        self.dir = service_dir(root) / "tags"

    def _path(self, arn: str) -> Path:
        return self.dir / f"{digest(arn)[:40]}.json"

    def list(self, arn: str) -> list[dict]:
        """The resource's tags, in the order they were first added."""
        stored = read_json(self._path(arn)) or {}
        return list(stored.get("Tags") or [])

    def add(self, arn: str, tags: Iterable[dict]) -> list[dict]:
        """Add or overwrite tags by key; returns all of the resource's tags."""
        merged = {t["Key"]: t.get("Value", "") for t in self.list(arn)}
        merged.update({t["Key"]: t.get("Value", "") for t in tags})
        if len(merged) > 50:
            raise validation_error(f"Resource {arn} would have {len(merged)} tags; at most 50 are allowed.")
        result = [{"Key": k, "Value": v} for k, v in merged.items()]
        write_json(self._path(arn), {"ResourceArn": arn, "Tags": result})
        return result

    def delete(self, arn: str, keys: Iterable[str]) -> None:
        """Remove the tags with these keys (absent keys are ignored, as in SageMaker)."""
        drop = set(keys)
        write_json(self._path(arn), {"ResourceArn": arn, "Tags": [t for t in self.list(arn) if t["Key"] not in drop]})

    def forget(self, arn: str) -> None:
        """Drop every tag of a deleted resource."""
        self._path(arn).unlink(missing_ok=True)


class TokenStore:
    """The first answer given to each ClientRequestToken of each action."""

    def __init__(self, root: Path):
        self.dir = service_dir(root) / "tokens"

    def answer(self, action: str, token: str | None, request: dict, compute: Callable[[], dict]) -> dict:
        """``compute()``'s answer, or the stored one when this token was used before for the same request.

        The same token with a different request is a ValidationException, as in SageMaker: a token
        identifies one request, not one resource. Callers hold the service lock.
        """
        if not token:
            return compute()
        path = self.dir / f"{digest(action, token)}.json"
        fingerprint = digest(json.dumps({k: v for k, v in request.items() if k != "ClientRequestToken"},
                                        sort_keys=True, default=str))
        stored = read_json(path)
        if stored is not None:
            if stored.get("Fingerprint") != fingerprint:
                raise validation_error(f"ClientRequestToken {token!r} was already used for a different "
                                       f"{action} request; use a new token for a new request.")
            return stored["Answer"]
        answer = compute()
        write_json(path, {"Action": action, "Fingerprint": fingerprint, "Answer": answer, "Time": utc_now()})
        return answer


def expire_tokens(root: Path, max_age_seconds: float) -> int:
    """Forget ClientRequestToken answers older than ``max_age_seconds`` (SageMaker's tokens expire too)."""
    import time

    directory = service_dir(root) / "tokens"
    removed = 0
    cutoff = time.time() - max_age_seconds
    for path in directory.glob("*.json") if directory.is_dir() else []:
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except OSError:
            continue
    return removed


def paginate(items: list[dict], sort_key: Callable[[dict], tuple], descending: bool, max_results: int | None,
             next_token: str | None, default_max: int = 10) -> tuple[list[dict], str | None]:
    """One page of ``items`` in sort order, and the NextToken of the next page (None on the last).

    The token names the last item returned (its sort key), not an offset, so items added between two
    pages neither repeat nor shift the next page.
    """
    ordered = sorted(items, key=sort_key, reverse=descending)
    if next_token:
        try:
            after = tuple(json.loads(base64.urlsafe_b64decode(next_token.encode()).decode()))
        except (ValueError, TypeError):
            raise validation_error(f"Invalid NextToken {next_token!r}.") from None
        try:
            ordered = [item for item in ordered
                       if (sort_key(item) < after if descending else sort_key(item) > after)]
        except TypeError:
            raise validation_error(f"Invalid NextToken {next_token!r}.") from None
    size = max_results or default_max
    page, rest = ordered[:size], ordered[size:]
    if not rest:
        return page, None
    token = base64.urlsafe_b64encode(json.dumps(list(sort_key(page[-1]))).encode()).decode()
    return page, token


def paginate_sorted(ordered: list, sort_key: Callable[[Any], tuple], descending: bool, max_results: int | None,
                    next_token: str | None, default_max: int = 10) -> tuple[list, str | None]:
    """:func:`paginate` over ``ordered``, which is already in ascending ``sort_key`` order: a page costs a
    binary search and the page itself, not a sort of every item (listings over thousands of executions)."""
    after = _token_key(next_token) if next_token else None
    try:
        if descending:
            end = bisect.bisect_left(ordered, after, key=sort_key) if after is not None else len(ordered)
            size = max_results or default_max
            page = ordered[max(end - size, 0):end][::-1]
            more = end - size > 0
        else:
            start = bisect.bisect_right(ordered, after, key=sort_key) if after is not None else 0
            size = max_results or default_max
            page = ordered[start:start + size]
            more = start + size < len(ordered)
    except TypeError:
        raise validation_error(f"Invalid NextToken {next_token!r}.") from None
    if not more or not page:
        return page, None
    return page, base64.urlsafe_b64encode(json.dumps(list(sort_key(page[-1]))).encode()).decode()


def _token_key(next_token: str) -> tuple:
    try:
        return tuple(json.loads(base64.urlsafe_b64decode(next_token.encode()).decode()))
    except (ValueError, TypeError):
        raise validation_error(f"Invalid NextToken {next_token!r}.") from None


def time_key(value: Any) -> float:
    """A stored or sent timestamp as a sortable number."""
    return to_datetime(value).timestamp() if value else 0.0


def in_time_window(value: Any, after: Any, before: Any) -> bool:
    """True if ``value`` is after ``after`` and before ``before`` (each optional)."""
    when = time_key(value)
    return (after is None or when > time_key(after)) and (before is None or when < time_key(before))


__all__ = ["ApiError", "PipelineStore", "TagStore", "TokenStore", "expire_tokens", "in_time_window", "paginate",
           "paginate_sorted",
           "read_json", "service_dir", "time_key", "write_json"]
