"""Execution records under ``<root>/.airsage/executions/<pipeline>/<execution-id>/``.

``describe.json`` is shaped like DescribePipelineExecution, ``steps.json`` like
ListPipelineExecutionSteps (newest step first), ``logs/`` holds each step's stdout and stderr,
``properties.json`` the properties (``Get Steps.X...``) and property files of every step that
succeeded, which is what a resumed execution reuses. The runner's pid, host and process start time are
recorded so that a reader can tell a live "Executing" run from one whose runner died (reported as Stopped).
"""

from __future__ import annotations

import json
import os
import socket
import threading
from datetime import UTC, datetime
from pathlib import Path

from sm_pipeline.local.execution_page import write_execution_page
from sm_pipeline.storage import INTERNAL_DIR
from sm_pipeline.storage_io import write_text_atomic

PROPERTIES_FILE = "properties.json"


def utc_now() -> str:
    """The current time as ISO-8601 UTC."""
    return datetime.now(UTC).isoformat()


def executions_dir(root: Path | str) -> Path:
    """``<root>/.airsage/executions``."""
    return Path(root) / INTERNAL_DIR / "executions"


def _process_start_time(pid: int) -> float | None:
    try:
        import psutil
    except ImportError:
        return None
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def runner_is_alive(runner: dict) -> bool:
    """True unless the recorded runner process is certainly gone (same host, pid dead or reused)."""
    if not runner or runner.get("Host") != socket.gethostname():
        return True  # another machine's run: we cannot tell, so do not call it dead
    pid = runner.get("Pid")
    if not isinstance(pid, int):
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    recorded, current = runner.get("ProcessStartTime"), _process_start_time(pid)
    return not (recorded and current and abs(recorded - current) > 1.0)


class ExecutionRecorder:
    """Writes one execution's records atomically as its state changes (thread-safe)."""

    def __init__(self, root: Path, describe: dict, steps: list[dict] | None = None):
        """Start the records of ``describe``'s execution; ``steps`` (newest first) carries over earlier entries."""
        self.dir = executions_dir(root) / describe["PipelineName"] / describe["PipelineExecutionId"]
        self.logs_dir = self.dir / "logs"
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        pid = os.getpid()
        self.describe = {**describe, "LocalRunner": {
            "Pid": pid, "Host": socket.gethostname(), "ProcessStartTime": _process_start_time(pid),
            "RecordsDir": str(self.dir), "LogsDir": str(self.logs_dir)}}
        self.steps: dict[str, dict] = {}
        self._order: list[str] = []
        for entry in reversed(steps or []):
            self.steps[entry["StepName"]] = dict(entry)
            self._order.append(entry["StepName"])
        self._flush_locked()  # nothing else can hold the recorder yet

    def save_step_properties(self, name: str, properties: dict, property_files: dict | None) -> None:
        """Persist what a succeeded step left for later steps (its properties and property files)."""
        with self._lock:
            path = self.dir / PROPERTIES_FILE
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
        write_text_atomic(self.dir / "describe.json", json.dumps(self.describe, indent=2, default=str))
        write_text_atomic(self.dir / "steps.json",
                          json.dumps({"PipelineExecutionSteps": self._step_list_locked()}, indent=2, default=str))
        write_execution_page(self.dir, self.describe, self._step_list_locked())  # index.html: a human view


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


class LocalExecutionStore:
    """Reads the execution records the local runner leaves under an object root."""

    def __init__(self, root: Path | str):
        self.root = Path(root)

    def find(self, pipeline_name: str, display_name: str | None = None) -> list[dict]:
        """Describe dicts of the pipeline's executions (optionally one display name), newest first."""
        base = executions_dir(self.root) / pipeline_name
        found = []
        for path in base.glob("*/describe.json") if base.is_dir() else []:
            describe = self._read(path)
            if describe is None:
                continue
            if display_name is not None and describe.get("PipelineExecutionDisplayName") != display_name:
                continue
            found.append(describe)
        return sorted(found, key=lambda d: d.get("CreationTime", ""), reverse=True)

    def describe(self, pipeline_name: str, execution_id: str) -> dict:
        """One execution's describe dict; FileNotFoundError if unknown."""
        describe = self._read(executions_dir(self.root) / pipeline_name / execution_id / "describe.json")
        if describe is None:
            raise FileNotFoundError(f"no local execution {pipeline_name}/{execution_id} under {self.root}")
        return describe

    def steps(self, pipeline_name: str, execution_id: str) -> list[dict]:
        """One execution's steps, as ListPipelineExecutionSteps returns them."""
        path = executions_dir(self.root) / pipeline_name / execution_id / "steps.json"
        return json.loads(path.read_text())["PipelineExecutionSteps"]

    def definition(self, pipeline_name: str, execution_id: str) -> dict:
        """The definition the execution ran with; FileNotFoundError if unknown."""
        return json.loads((executions_dir(self.root) / pipeline_name / execution_id / "definition.json").read_text())

    def step_properties(self, pipeline_name: str, execution_id: str) -> dict[str, dict]:
        """``{step: {"Properties": ..., "PropertyFiles": ...}}`` of the steps that succeeded (may be empty)."""
        return _read_json(executions_dir(self.root) / pipeline_name / execution_id / PROPERTIES_FILE) or {}

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
        if describe.get("PipelineExecutionStatus") == "Executing" and not runner_is_alive(describe.get("LocalRunner") or {}):
            describe["PipelineExecutionStatus"] = "Stopped"
            describe["FailureReason"] = (f"the local runner (pid {describe['LocalRunner'].get('Pid')}) is no longer "
                                         "running; the execution was interrupted")
        return describe
