"""Controlling a local execution from outside its scheduler: name it in advance, stop it.

- ``new_execution_id()``: an id chosen before the run (its ARN: ``sm_pipeline.arns.execution_arn``), so a
  caller (the emulated SageMaker service, an Airflow task) can hand it out before the first step starts;
  pass it to ``run_pipeline(..., execution_id=...)``.
- ``StopHandle``: stops a run from any thread of the same process (``run_pipeline(..., stop=handle)``;
  ``handle.stop("reason")``). The runner checks it between scheduling rounds (about every 0.5 s), kills
  the running jobs' process groups and ends the execution ``Stopped`` with that reason.
- ``request_stop(root, pipeline, id, reason)``: the same from another process on this machine. It writes
  ``<records>/stop-request.json``; the runner that owns the execution polls for that file and honours it
  like a StopHandle. (A SIGTERM to the runner's process works too, but only when the runner runs in
  that process's main thread.)

Resuming a Failed or Stopped execution in place is the runner's (``sm_pipeline.local.runner.resume_pipeline``).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import string
import threading
from pathlib import Path

from sm_pipeline.errors import InvalidInput
from sm_pipeline.local.records import ExecutionRecords
from sm_pipeline.storage_io import write_text_atomic
from sm_pipeline.timestamps import utc_now

RESUMABLE_STATUSES = ("Failed", "Stopped")
# SageMaker's execution ids are 12 lowercase letters and digits; the id also names a directory.
_EXECUTION_ID_RE = re.compile(r"^[a-z0-9]{1,64}$")


def new_execution_id() -> str:
    """A fresh SageMaker-style execution id (12 lowercase letters and digits)."""
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(12))


def checked_execution_id(execution_id: str) -> str:
    """``execution_id`` if it can name an execution (1-64 lowercase letters/digits); InvalidInput otherwise."""
    if not isinstance(execution_id, str) or not _EXECUTION_ID_RE.match(execution_id):
        raise InvalidInput(f"execution id {execution_id!r} must be 1-64 lowercase letters or digits")
    return execution_id


class StopHandle:
    """Stops one running execution from any thread: ``handle.stop("why")``; safe to call more than once."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self.reason: str | None = None

    def stop(self, reason: str | None = None) -> None:
        """Ask the execution to stop; the first reason given is the one recorded."""
        with self._lock:
            if not self._event.is_set():
                self.reason = reason
                self._event.set()

    def is_set(self) -> bool:
        """True once a stop was asked for."""
        return self._event.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a stop is asked for (or ``timeout`` seconds); returns whether it was."""
        return self._event.wait(timeout)


def request_stop(root: Path | str, pipeline_name: str, execution_id: str, reason: str | None = None) -> Path:
    """Ask the runner of a local execution (in any process on this machine) to stop it; returns the request file.

    InvalidInput if the execution has no records under ``root``. The runner honours the request within
    about half a second; an execution that already ended ignores it.
    """
    records = ExecutionRecords(root, pipeline_name, checked_execution_id(execution_id))
    if not records.describe_file.is_file():
        raise InvalidInput(f"no local execution {pipeline_name}/{execution_id} under {root}")
    request = {"Reason": reason, "RequestedAt": utc_now(), "RequestedByPid": os.getpid()}
    return write_text_atomic(records.stop_request_file, json.dumps(request))


def read_stop_request(records: ExecutionRecords) -> dict | None:
    """The stop request left in an execution's records, if any."""
    try:
        request = json.loads(records.stop_request_file.read_text())
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError):
        request = {}  # a request we cannot read is still a request to stop
    return request if isinstance(request, dict) else {}
