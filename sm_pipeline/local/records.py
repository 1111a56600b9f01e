"""Execution records: where they live, how they are written, how they are read.

The one layout, :class:`ExecutionRecords`: ``<root>/.airsage/executions/<pipeline>/<execution-id>/`` with

- ``describe.json`` shaped like DescribePipelineExecution (built by :func:`new_execution_describe`),
- ``steps.json`` like ListPipelineExecutionSteps (newest step first),
- ``definition.json`` the definition the execution ran,
- ``properties.json`` the properties (``Get Steps.X...``) and property files of every step that succeeded,
  which is what a resumed execution reuses (of the steps that succeeded only), and the resolved request of
  every job step from its start (what Describe<Job> answers while it runs, after it failed or was stopped),
- ``logs/`` each step's stdout and stderr, ``index.html`` a human view of it all,
- ``stop-request.json`` while a stop is pending, ``.run.lock`` held by the runner that owns the execution;

and beside them, per pipeline, ``<root>/.airsage/executions/<pipeline>/index.tsv`` (:class:`ExecutionIndex`):
one line per execution with what never changes (creation time, id, pipeline version, display name), appended
when its records are first written, so listings and display-name look-ups read the few records they return,
not every execution's (the emulated service's calls stay flat as records grow; ``bench/service_scale.py``).

The runner, the emulated service and the Airflow plugin all go through it. The runner's pid, host and
process start time are recorded (``LocalRunner``) so that a reader can tell a live "Executing" run from one
whose runner died (reported as Stopped).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sm_pipeline.arns import execution_arn, pipeline_arn
from sm_pipeline.errors import InvalidInput
from sm_pipeline.expressions import render
from sm_pipeline.local.execution_page import render_execution_page
from sm_pipeline.locks import Owner, owner_is_alive
from sm_pipeline.storage import INTERNAL_DIR
from sm_pipeline.storage_io import write_text_atomic
from sm_pipeline.timestamps import utc_now


def executions_dir(root: Path | str) -> Path:
    """``<root>/.airsage/executions``: the records of every pipeline's executions."""
    return Path(root) / INTERNAL_DIR / "executions"


def pipeline_records_dir(root: Path | str, pipeline_name: str) -> Path:
    """``<root>/.airsage/executions/<pipeline>``: the records of one pipeline's executions."""
    return executions_dir(root) / pipeline_name


class ExecutionRecords:
    """Where the records of one execution live; every reader and writer of them goes through here."""

    def __init__(self, root: Path | str, pipeline_name: str, execution_id: str):
        self.root = Path(root)
        self.pipeline_name = pipeline_name
        self.execution_id = execution_id
        self.dir = pipeline_records_dir(root, pipeline_name) / execution_id

    @classmethod
    def in_dir(cls, directory: Path | str) -> ExecutionRecords:
        """The records whose directory is ``directory`` (``<root>/.airsage/executions/<pipeline>/<id>``)."""
        directory = Path(directory)
        return cls(directory.parents[3], directory.parent.name, directory.name)

    @classmethod
    def of_pipeline(cls, root: Path | str, pipeline_name: str) -> list[ExecutionRecords]:
        """Every recorded execution of ``pipeline_name`` (those with a describe.json), by execution id."""
        base = pipeline_records_dir(root, pipeline_name)
        return [cls.in_dir(path.parent) for path in sorted(base.glob(f"*/{_DESCRIBE}"))] if base.is_dir() else []

    @classmethod
    def with_execution_id(cls, root: Path | str, execution_id: str) -> list[ExecutionRecords]:
        """The records of ``execution_id`` in any pipeline (execution ids are unique; a copy is not)."""
        base = executions_dir(root)
        return [cls.in_dir(path) for path in sorted(base.glob(f"*/{execution_id}"))] if base.is_dir() else []

    # The files of the layout (docs/CONTRACTS.md, "Records").
    describe_file = property(lambda self: self.dir / _DESCRIBE, doc="``describe.json``: DescribePipelineExecution's fields.")
    steps_file = property(lambda self: self.dir / "steps.json", doc="``steps.json``: ListPipelineExecutionSteps' entries.")
    definition_file = property(lambda self: self.dir / "definition.json", doc="The definition the execution ran.")
    properties_file = property(lambda self: self.dir / "properties.json",
                               doc="``properties.json``: what the succeeded steps left for later steps and a resume; "
                                   "the resolved request of the other job steps.")
    page_file = property(lambda self: self.dir / "index.html", doc="``index.html``: the execution page.")
    logs_dir = property(lambda self: self.dir / "logs", doc="``logs/``: ``<step>.log`` and ``<step>.stderr.log``.")
    run_lock_file = property(lambda self: self.dir / ".run.lock", doc="Held by the runner that owns the execution.")
    stop_request_file = property(lambda self: self.dir / "stop-request.json",
                                 doc="``stop-request.json``: a pending stop request from another process.")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ExecutionRecords) and other.dir == self.dir

    def __hash__(self) -> int:
        return hash(self.dir)

    def __repr__(self) -> str:
        return f"ExecutionRecords({str(self.dir)!r})"


_DESCRIBE = "describe.json"


def new_execution_describe(pipeline_name: str, execution_id: str, *, region: str | None, display_name: str | None,
                           status: str, parameters: Mapping[str, Any], max_parallel: int, created: str,
                           fields: Mapping[str, Any] | None = None) -> dict:
    """A new execution's DescribePipelineExecution record; ``fields`` are added last (and win).

    The one builder of this record: the runner's for the executions it starts, the emulated service's for
    an execution that could not start (it exists for the client, Failed).
    """
    return {
        "PipelineName": pipeline_name,
        "PipelineExecutionId": execution_id,
        "PipelineArn": pipeline_arn(pipeline_name, region),
        "PipelineExecutionArn": execution_arn(pipeline_name, execution_id, region),
        "PipelineExecutionDisplayName": display_name or execution_id,
        "PipelineExecutionStatus": status,
        "ParallelismConfiguration": {"MaxParallelExecutionSteps": max_parallel},
        "PipelineParameters": [{"Name": k, "Value": render(v)} for k, v in parameters.items()],
        "CreationTime": created,
        "LastModifiedTime": created,
        "CreatedBy": {}, "LastModifiedBy": {},
        **(fields or {}),
    }


class ExecutionRecorder:
    """Writes one execution's records atomically as its state changes (thread-safe)."""

    def __init__(self, root: Path, describe: dict, steps: list[dict] | None = None):
        """Start the records of ``describe``'s execution; ``steps`` (newest first) carries over earlier entries."""
        self.records = ExecutionRecords(root, describe["PipelineName"], describe["PipelineExecutionId"])
        self.dir = self.records.dir
        self.logs_dir = self.records.logs_dir
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self.describe = {**describe, "LocalRunner": {
            **Owner.current().record(), "RecordsDir": str(self.dir), "LogsDir": str(self.logs_dir)}}
        self.steps: dict[str, dict] = {}
        self._order: list[str] = []
        self._definition: dict | None = None
        for entry in reversed(steps or []):
            self.steps[entry["StepName"]] = dict(entry)
            self._order.append(entry["StepName"])
        is_new = steps is None and not self.records.describe_file.exists()
        self._flush_locked()  # nothing else can hold the recorder yet
        if is_new:  # after the describe: an index line always names an execution with records
            ExecutionIndex(root, describe["PipelineName"]).append(describe)

    def save_step_properties(self, name: str, properties: dict, property_files: dict | None) -> None:
        """Persist what a succeeded step left for later steps (its properties and property files)."""
        with self._lock:
            path = self.records.properties_file
            saved = _read_json(path) or {}
            saved[name] = {"Properties": properties, "PropertyFiles": property_files or {}}
            write_text_atomic(path, json.dumps(saved, indent=2, default=str))

    def update_execution(self, **fields) -> None:
        """Change top-level fields (status, failure reason) and persist."""
        with self._lock:
            self.describe.update(fields)
            self.describe["LastModifiedTime"] = utc_now()
            self._flush_locked()

    def update_step(self, name: str, **fields) -> dict:
        """Create or change one step's entry and persist; returns a copy of the entry."""
        with self._lock:
            entry = self.steps.setdefault(name, {"StepName": name})
            if name not in self._order:
                self._order.append(name)
            entry.update({k: v for k, v in fields.items() if v is not None})
            self._flush_locked()
            return dict(entry)

    def step_list(self) -> list[dict]:
        """Steps like ListPipelineExecutionSteps: most recently started first."""
        with self._lock:
            return self._step_list_locked()

    def _step_list_locked(self) -> list[dict]:
        entries = [dict(self.steps[name]) for name in self._order]
        return sorted(entries, key=lambda e: e.get("StartTime") or "", reverse=True)

    def _flush_locked(self) -> None:
        write_text_atomic(self.records.describe_file, json.dumps(self.describe, indent=2, default=str))
        write_text_atomic(self.records.steps_file,
                          json.dumps({"PipelineExecutionSteps": self._step_list_locked()}, indent=2, default=str))
        try:  # index.html is a human view: it must never break a run
            if self._definition is None:  # written by the runner right after the first flush
                self._definition = _read_json(self.records.definition_file)
            write_text_atomic(self.records.page_file,
                              render_execution_page(self.describe, self._step_list_locked(), self.logs_dir,
                                                    self._definition))
        except Exception:  # noqa: S110, BLE001 - the page is a convenience; the records are the truth
            pass


def render_records_page(records: ExecutionRecords) -> str:
    """The execution page of ``records``, from its files (describe.json, steps.json, logs/)."""
    describe = json.loads(records.describe_file.read_text(encoding="utf-8"))
    try:
        steps = json.loads(records.steps_file.read_text(encoding="utf-8"))["PipelineExecutionSteps"]
    except (OSError, ValueError, KeyError, TypeError):
        steps = []
    return render_execution_page(describe, steps, records.logs_dir, _read_json(records.definition_file),
                                 model_packages=_registered_packages(records.root, steps))


def _registered_packages(root: Path, steps: list) -> list[dict]:
    """The current registry descriptions of the versions the execution's RegisterModel steps created (read
    when the page is served: the approval state changes after the execution ended)."""
    from sm_pipeline.local.registry import LocalModelRegistry

    registry, found = LocalModelRegistry(root), []
    for step in steps:
        arn = ((step.get("Metadata") or {}).get("RegisterModel") or {}).get("Arn") if isinstance(step, dict) else None
        if arn:
            try:
                found.append(registry.describe_model_package(arn))
            except (InvalidInput, OSError, ValueError):
                continue
    return found


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


class IndexEntry(tuple):
    """One line of :class:`ExecutionIndex`: ``(creation time, execution id, pipeline version id, display name)``."""

    __slots__ = ()
    created = property(lambda self: self[0])
    execution_id = property(lambda self: self[1])
    version = property(lambda self: self[2])
    display_name = property(lambda self: self[3])


# {index path: (inode, bytes read, entries)}: a long-lived reader (the emulated service) reads only what was
# appended since its last look; the file only grows, except when :meth:`ExecutionIndex.rebuild` replaces it.
_INDEX_CACHE: dict[Path, tuple[int, int, list[IndexEntry]]] = {}
_INDEX_LOCK = threading.Lock()


class ExecutionIndex:
    """``<root>/.airsage/executions/<pipeline>/index.tsv``: the pipeline's executions by creation time.

    Each line holds what never changes once an execution exists, so the index cannot go stale: the
    describe.json of an execution stays the truth for its status. Lines are appended (one ``write`` with
    ``O_APPEND``, atomic between processes) by :class:`ExecutionRecorder` when an execution's records are
    first written; :meth:`rebuild` (the emulated service's recover) writes it afresh from the records.
    """

    FILE = "index.tsv"

    def __init__(self, root: Path | str, pipeline_name: str):
        self.root = Path(root)
        self.pipeline_name = pipeline_name
        self.path = pipeline_records_dir(root, pipeline_name) / self.FILE

    @staticmethod
    def _line(describe: Mapping[str, Any]) -> str:
        fields = (describe.get("CreationTime") or "", describe["PipelineExecutionId"],
                  describe.get("PipelineVersionId") or "", describe.get("PipelineExecutionDisplayName") or "")
        return "\t".join(str(f).replace("\t", " ").replace("\n", " ") for f in fields) + "\n"

    @contextlib.contextmanager
    def _locked(self):
        # appends and rebuilds exclude each other, so no append lands in a file a rebuild is replacing
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_name(".index.lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the flock

    def append(self, describe: Mapping[str, Any]) -> None:
        """Add a new execution (its first describe record)."""
        with self._locked():
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, self._line(describe).encode("utf-8"))
            finally:
                os.close(fd)

    def entries(self) -> list[IndexEntry]:
        """Every indexed execution, oldest first (by creation time, then id); reads only new lines."""
        try:
            handle = open(self.path, "rb")  # noqa: SIM115 - closed below; stat and read the same file
        except FileNotFoundError:
            if not any(ExecutionRecords.of_pipeline(self.root, self.pipeline_name)):
                return []
            self.rebuild()  # records written before the index existed
            return self.entries()
        with handle:
            stat = os.fstat(handle.fileno())
            with _INDEX_LOCK:
                cached = _INDEX_CACHE.get(self.path)
                fresh = cached is None or cached[0] != stat.st_ino or cached[1] > stat.st_size  # replaced
                offset, entries = (0, []) if fresh else (cached[1], list(cached[2]))
                handle.seek(offset)
                data = handle.read()
                complete = data[:data.rfind(b"\n") + 1]  # a line being appended right now is read next time
                known = {entry[1] for entry in entries}
                added = []
                for parts in (line.split("\t") for line in complete.decode("utf-8").splitlines()):
                    # a line appended while a rebuild also found the execution is there twice: keep one
                    if len(parts) == 4 and parts[1] not in known:
                        known.add(parts[1])
                        added.append(IndexEntry((*parts[:2], int(parts[2]) if parts[2].isdigit() else None, parts[3])))
                if added:
                    start = max(len(entries) - 1, 0)
                    entries.extend(added)
                    # appends come nearly in time order: sort only when a line arrived out of order
                    if any(entries[i][:2] > entries[i + 1][:2] for i in range(start, len(entries) - 1)):
                        entries.sort(key=lambda e: (e[0], e[1]))
                _INDEX_CACHE[self.path] = (stat.st_ino, offset + len(complete), entries)
                return list(entries)

    def rebuild(self) -> int:
        """Write the index afresh from the records (those with a describe.json); returns how many it holds."""
        with self._locked():
            lines = []
            for records in ExecutionRecords.of_pipeline(self.root, self.pipeline_name):
                describe = _read_json(records.describe_file)
                if isinstance(describe, dict) and describe.get("PipelineExecutionId"):
                    lines.append(self._line(describe))
            write_text_atomic(self.path, "".join(sorted(lines)))
            return len(lines)


class LocalExecutionStore:
    """Reads the execution records the local runner leaves under an object root."""

    def __init__(self, root: Path | str):
        self.root = Path(root)

    def records(self, pipeline_name: str, execution_id: str) -> ExecutionRecords:
        """Where one execution's records are (whether or not it exists)."""
        return ExecutionRecords(self.root, pipeline_name, execution_id)

    def find(self, pipeline_name: str, display_name: str | None = None, display_prefix: str | None = None) -> list[dict]:
        """Describe dicts of the pipeline's executions (optionally one display name, or a prefix of it), newest first.

        Only the records the index names for the display name are read.
        """
        found = []
        for entry in ExecutionIndex(self.root, pipeline_name).entries():
            if display_name is not None and entry.display_name != display_name:
                continue
            if display_prefix is not None and not entry.display_name.startswith(display_prefix):
                continue
            describe = self._read(self.records(pipeline_name, entry.execution_id).describe_file)
            if describe is not None:
                found.append(describe)
        return sorted(found, key=lambda d: d.get("CreationTime", ""), reverse=True)

    def describe(self, pipeline_name: str, execution_id: str) -> dict:
        """One execution's describe dict; FileNotFoundError if unknown."""
        describe = self._read(self.records(pipeline_name, execution_id).describe_file)
        if describe is None:
            raise FileNotFoundError(f"no local execution {pipeline_name}/{execution_id} under {self.root}")
        return describe

    def steps(self, pipeline_name: str, execution_id: str) -> list[dict]:
        """One execution's steps, as ListPipelineExecutionSteps returns them."""
        return json.loads(self.records(pipeline_name, execution_id).steps_file.read_text())["PipelineExecutionSteps"]

    def definition_text(self, pipeline_name: str, execution_id: str) -> str:
        """The definition the execution ran with, as JSON text; FileNotFoundError if unknown."""
        return self.records(pipeline_name, execution_id).definition_file.read_text()

    def definition(self, pipeline_name: str, execution_id: str) -> dict:
        """The definition the execution ran with; FileNotFoundError if unknown."""
        return json.loads(self.definition_text(pipeline_name, execution_id))

    def step_properties(self, pipeline_name: str, execution_id: str) -> dict[str, dict]:
        """``{step: {"Properties": ..., "PropertyFiles": ...}}`` of the steps that succeeded, and of the job steps
        that did not their resolved request (may be empty; steps.json says which step is which)."""
        return _read_json(self.records(pipeline_name, execution_id).properties_file) or {}

    def mark_interrupted(self, pipeline_name: str, execution_id: str, status: str, reason: str) -> dict:
        """End an execution whose runner died while it was Executing: ``status`` and ``reason`` on it,
        and ``Stopped`` on the steps that were still running. Returns the new describe dict."""
        describe = self.describe(pipeline_name, execution_id)
        now = utc_now()
        steps = [{**entry, "StepStatus": "Stopped", "EndTime": now}
                 if entry.get("StepStatus") in ("Starting", "Executing", "Stopping") else entry
                 for entry in self.steps(pipeline_name, execution_id)]
        fields = {"PipelineExecutionStatus": status, "FailureReason": reason, "EndTime": now, "LastModifiedTime": now}
        recorder = ExecutionRecorder(self.root, {**describe, **fields}, steps=steps)
        return dict(recorder.describe)

    @staticmethod
    def _read(path: Path) -> dict | None:
        try:
            describe = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None
        if describe.get("PipelineExecutionStatus") == "Executing" and not owner_is_alive(describe.get("LocalRunner")):
            describe["PipelineExecutionStatus"] = "Stopped"
            describe["FailureReason"] = (f"the local runner (pid {describe['LocalRunner'].get('Pid')}) is no longer "
                                         "running; the execution was interrupted")
        return describe
