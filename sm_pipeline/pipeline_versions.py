"""Pipeline versions: one per definition change, numbered 1, 2, ... as SageMaker's ``PipelineVersionId``.

The one home of the numbering and of a version's record, for the emulated service (every CreatePipeline
and every UpdatePipeline with a definition makes one, as in SageMaker) and for the local backend
(``UpsertPipelineOperator`` makes one when the definition's text changed). A version is a JSON file
``<versions dir>/<n>.json``: ``PipelineVersionId``, ``CreationTime``, ``PipelineDefinition`` (the text,
exactly as deployed), optional ``DefinitionUri`` (where the local backend stored it) and
``LastExecutionPipelineExecutionArn`` (set by whoever starts an execution of it). Writes are atomic;
the caller serializes them per pipeline (the service's lock; a local upsert holds :meth:`locked`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sm_pipeline.storage import INTERNAL_DIR
from sm_pipeline.storage_io import write_text_atomic


def local_versions_dir(root: Path | str, pipeline_name: str) -> Path:
    """``<root>/.airsage/pipelines/<name>/versions``: the local backend's versions of a pipeline."""
    return Path(root) / INTERNAL_DIR / "pipelines" / pipeline_name / "versions"


class PipelineVersions:
    """The versions of one pipeline, in ``directory``."""

    def __init__(self, directory: Path | str):
        self.dir = Path(directory)

    def _path(self, version: int) -> Path:
        return self.dir / f"{int(version)}.json"

    def ids(self) -> list[int]:
        """Every version id, ascending."""
        if not self.dir.is_dir():
            return []
        return sorted(int(p.stem) for p in self.dir.glob("*.json") if p.stem.isdigit())

    def latest_id(self) -> int | None:
        """The newest version id, or None before the first."""
        ids = self.ids()
        return ids[-1] if ids else None

    def get(self, version: int) -> dict | None:
        """One version's record, or None when there is no such version."""
        try:
            return json.loads(self._path(version).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def all(self) -> list[dict]:
        """Every version's record, oldest first."""
        return [record for record in (self.get(v) for v in self.ids()) if record is not None]

    def add(self, definition: str, after: int | None = None, **fields: Any) -> int:
        """Store ``definition`` as the next version (after ``after``, default the newest); returns its id."""
        version = (after if after is not None else self.latest_id() or 0) + 1
        self._write({"PipelineVersionId": version, "CreationTime": datetime.now(UTC).isoformat(),
                     "PipelineDefinition": definition, **fields})
        return version

    def add_if_changed(self, definition: str, **fields: Any) -> tuple[int, bool]:
        """``(version id, created)``: a new version only when ``definition`` differs from the newest one's text."""
        latest = self.latest_id()
        if latest is not None and (self.get(latest) or {}).get("PipelineDefinition") == definition:
            return latest, False
        return self.add(definition, **fields), True

    def note_execution(self, version: int, execution_arn: str) -> None:
        """Record ``execution_arn`` as the newest execution started from ``version`` (ListPipelineVersions)."""
        record = self.get(version)
        if record is not None:
            self._write({**record, "LastExecutionPipelineExecutionArn": execution_arn})

    @contextlib.contextmanager
    def locked(self) -> Iterator[PipelineVersions]:
        """Hold the pipeline's version lock (two local upserts of one change make one version)."""
        from sm_pipeline.locks import FileLock

        with FileLock(self.dir.parent / ".versions.lock"):
            yield self

    def _write(self, record: dict) -> None:
        write_text_atomic(self._path(record["PipelineVersionId"]), json.dumps(record, indent=2, default=str))


def resolve_version(wanted: Any, *, latest: int | None, first_ran: int | None, exists, where: str) -> int:
    """The version id ``wanted`` names: ``'latest'`` (or empty), ``'first'`` (``first_ran``: the version the
    date first ran with, else the latest), or a version number for which ``exists(n)`` is true.

    The one rule for both backends (the DAG param ``pipeline_version``). ValueError, one line naming
    ``where``, for anything else.
    """
    if latest is None:
        raise ValueError(f"{where}: the pipeline has no version yet")
    text = str(wanted).strip().lower() if wanted is not None else "latest"
    if text in ("", "latest", "none"):
        return latest
    if text == "first":
        return first_ran if first_ran is not None else latest
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{where}: pipeline_version must be 'latest', 'first' or a version number, not {wanted!r}")
    if not exists(int(text)):
        raise ValueError(f"{where}: pipeline version {int(text)} does not exist (the latest is {latest})")
    return int(text)
