"""Controlling a local execution from outside its scheduler: name it in advance, stop it, resume it.

- ``new_execution_id()`` / ``execution_arn(pipeline, id)``: an id (and its ARN) chosen before the run, so a
  caller (the emulated SageMaker service, an Airflow task) can hand it out before the first step starts;
  pass it to ``run_pipeline(..., execution_id=...)``.
- ``StopHandle``: stops a run from any thread of the same process (``run_pipeline(..., stop=handle)``;
  ``handle.stop("reason")``). The runner checks it between scheduling rounds (about every 0.5 s), kills
  the running jobs' process groups and ends the execution ``Stopped`` with that reason.
- ``request_stop(root, pipeline, id, reason)``: the same from another process on this machine. It writes
  ``<records>/stop-request.json``; the runner that owns the execution polls for that file and honours it
  like a StopHandle. (A SIGTERM to the runner's process works too, but only when the runner runs in
  that process's main thread.)
- ``resume_pipeline(id, root, pipeline)``: RetryPipelineExecution's semantics for a Failed or Stopped
  local execution: the same execution id and ARN, the steps that Succeeded are reused (their records,
  outputs and property files), the failed, stopped and never-started steps run again.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import string
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sm_pipeline.errors import InvalidInput
from sm_pipeline.local.jobs import ACCOUNT_ID, local_region
from sm_pipeline.local.records import LocalExecutionStore, executions_dir, utc_now
from sm_pipeline.storage import DEFAULT_ROOT
from sm_pipeline.storage_io import write_text_atomic

if TYPE_CHECKING:
    from sm_pipeline.local.runner import PipelineResult

STOP_REQUEST_FILE = "stop-request.json"
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


def pipeline_arn(pipeline_name: str, region: str | None = None) -> str:
    """``arn:aws:sagemaker:<region>:000000000000:pipeline/<name in lower case>``, as SageMaker spells it."""
    return f"arn:aws:sagemaker:{region or local_region()}:{ACCOUNT_ID}:pipeline/{pipeline_name.lower()}"


def execution_arn(pipeline_name: str, execution_id: str, region: str | None = None) -> str:
    """The ARN of execution ``execution_id`` of ``pipeline_name``."""
    return f"{pipeline_arn(pipeline_name, region)}/execution/{execution_id}"


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


def records_dir(root: Path | str, pipeline_name: str, execution_id: str) -> Path:
    """``<root>/.airsage/executions/<pipeline>/<execution id>``."""
    return executions_dir(root) / pipeline_name / checked_execution_id(execution_id)


def request_stop(root: Path | str, pipeline_name: str, execution_id: str, reason: str | None = None) -> Path:
    """Ask the runner of a local execution (in any process on this machine) to stop it; returns the request file.

    InvalidInput if the execution has no records under ``root``. The runner honours the request within
    about half a second; an execution that already ended ignores it.
    """
    directory = records_dir(root, pipeline_name, execution_id)
    if not (directory / "describe.json").is_file():
        raise InvalidInput(f"no local execution {pipeline_name}/{execution_id} under {root}")
    request = {"Reason": reason, "RequestedAt": utc_now(), "RequestedByPid": os.getpid()}
    return write_text_atomic(directory / STOP_REQUEST_FILE, json.dumps(request))


def read_stop_request(directory: Path) -> dict | None:
    """The stop request left in an execution's records directory, if any."""
    try:
        request = json.loads((directory / STOP_REQUEST_FILE).read_text())
    except FileNotFoundError:
        return None
    except (OSError, json.JSONDecodeError):
        request = {}  # a request we cannot read is still a request to stop
    return request if isinstance(request, dict) else {}


def resume_pipeline(
    execution_id: str,
    root: Path | str | None = None,
    pipeline_name: str = "abalone-local",
    max_parallel: int | None = None,
    on_event: Callable[[dict], None] | None = None,
    *,
    lambdas: Mapping[str, Callable[[dict], dict]] | None = None,
    use_cache: bool = True,
    retry_interval_scale: float | None = None,
    stop: StopHandle | None = None,
) -> PipelineResult:
    """Run a Failed or Stopped local execution again in place, reusing the steps that Succeeded.

    The execution keeps its id and ARN, its definition and its parameters (those it was started with),
    so every ``Join`` over the execution id names the same output URIs. InvalidInput if the execution
    does not exist, is not Failed or Stopped, or is being run by another runner.
    """
    from sm_pipeline.local.runner import run_pipeline

    root = Path(root or os.environ.get("AIRSAGE_LOCAL_ROOT") or DEFAULT_ROOT)
    store = LocalExecutionStore(root)
    checked_execution_id(execution_id)
    try:
        describe = store.describe(pipeline_name, execution_id)
        definition = store.definition(pipeline_name, execution_id)
    except FileNotFoundError:
        raise InvalidInput(f"no local execution {pipeline_name}/{execution_id} under {root}") from None
    status = describe.get("PipelineExecutionStatus")
    if status not in RESUMABLE_STATUSES:
        raise InvalidInput(f"local execution {pipeline_name}/{execution_id} is {status}; "
                           f"only a {' or '.join(RESUMABLE_STATUSES)} execution can be resumed")
    parameters: dict[str, Any] = {p["Name"]: p["Value"] for p in describe.get("PipelineParameters") or []}
    if max_parallel is None:
        max_parallel = int((describe.get("ParallelismConfiguration") or {}).get("MaxParallelExecutionSteps") or 2)
    return run_pipeline(definition, parameters, root=root, pipeline_name=pipeline_name,
                        display_name=describe.get("PipelineExecutionDisplayName"), max_parallel=max_parallel,
                        on_event=on_event, lambdas=lambdas, use_cache=use_cache,
                        retry_interval_scale=retry_interval_scale, execution_id=execution_id, stop=stop,
                        resume=True)
