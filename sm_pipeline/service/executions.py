"""Pipeline executions of the emulated service: run in the background by the local runner.

Each execution is one ``run_pipeline`` (or ``resume_pipeline`` for RetryPipelineExecution) in a thread
of the service, with a preassigned id and a StopHandle. Its only record is the runner's
(``<root>/.airsage/executions/<pipeline>/<id>/``): Describe/List read it, so a restart loses nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sm_pipeline import arns
from sm_pipeline.arns import execution_arn
from sm_pipeline.errors import InvalidInput
from sm_pipeline.local.control import StopHandle, new_execution_id
from sm_pipeline.local.records import (
    ExecutionIndex,
    ExecutionRecorder,
    ExecutionRecords,
    LocalExecutionStore,
    new_execution_describe,
    utc_now,
)
from sm_pipeline.locks import owner_is_alive
from sm_pipeline.service.protocol import ApiError, conflict, not_found, validation_error

log = logging.getLogger("sm_pipeline.service")

TERMINAL = frozenset({"Succeeded", "Failed", "Stopped"})
_READY_TIMEOUT = 120.0  # validating a definition and writing the first record takes milliseconds
RESTART_REASON = ("the emulated SageMaker service stopped while this execution was {status}; "
                  "RetryPipelineExecution resumes it from its last succeeded steps")


def parse_execution_arn(arn: str) -> tuple[str, str]:
    """``(pipeline name in lower case, execution id)`` of an execution ARN; ValidationException if malformed."""
    try:
        return arns.parse_execution_arn(arn)
    except ValueError as exc:
        raise validation_error(str(exc)) from None


@dataclass
class _Live:
    """An execution this service is running right now."""

    pipeline_name: str
    execution_id: str
    stop: StopHandle = field(default_factory=StopHandle)
    ready: threading.Event = field(default_factory=threading.Event)
    error: Exception | None = None
    thread: threading.Thread | None = None


class Executions:
    """Starts, stops, retries and reads the executions of the service's pipelines."""

    def __init__(self, root: Path, region: str):
        self.root = Path(root)
        self.region = region
        self.records = LocalExecutionStore(self.root)
        self._live: dict[str, _Live] = {}  # by execution ARN
        self._lock = threading.Lock()
        self._closing = False

    # ---- lifecycle -------------------------------------------------------------------------
    def recover(self, pipeline_names: list[str]) -> list[str]:
        """End the executions whose runner died while they ran (a killed service); returns their ARNs.

        They become Stopped with a reason saying so, their running steps Stopped, so clients see a
        final state and RetryPipelineExecution can resume them. Each pipeline's execution index is
        rebuilt from its records first. Executions whose runner still lives
        (another process running the same pipeline locally) are left alone.
        """
        from sm_pipeline.service.state import read_json

        ended = []
        for name in pipeline_names:
            ExecutionIndex(self.root, name).rebuild()  # whatever a killed writer left, the index matches the records
            for records in ExecutionRecords.of_pipeline(self.root, name):
                raw = read_json(records.describe_file) or {}
                status = raw.get("PipelineExecutionStatus")
                if status is None or status in TERMINAL or owner_is_alive(raw.get("LocalRunner")):
                    continue
                self.records.mark_interrupted(name, records.execution_id, "Stopped",
                                              RESTART_REASON.format(status=status))
                ended.append(raw.get("PipelineExecutionArn", records.execution_id))
        return ended

    def shutdown(self, reason: str, timeout: float = 60.0, only_prefix: str = "") -> None:
        """Stop every running execution (whose ARN starts with ``only_prefix``) and wait for their runners.

        Each ends Stopped with ``reason``; its running jobs are killed.
        """
        with self._lock:
            if not only_prefix:
                self._closing = True  # no execution starts after this snapshot
            live = [execution for arn, execution in self._live.items() if arn.startswith(only_prefix)]
        for execution in live:
            execution.stop.stop(reason)
        for execution in live:
            if execution.thread is not None:
                execution.thread.join(timeout)

    # ---- start / retry / stop --------------------------------------------------------------
    def start(self, pipeline_name: str, definition: dict, parameters: dict[str, str], display_name: str | None,
              max_parallel: int | None, describe_fields: dict, selective: dict | None = None) -> str:
        """Start an execution in the background (``selective``: a SelectiveExecutionConfig); returns its ARN once
        its record exists."""
        from sm_pipeline.local.runner import run_pipeline

        execution_id = new_execution_id()
        live = _Live(pipeline_name, execution_id)

        def run(on_event: Callable[[dict], None]) -> None:
            run_pipeline(definition, parameters, root=self.root, pipeline_name=pipeline_name,
                         display_name=display_name, max_parallel=max_parallel, on_event=on_event,
                         execution_id=execution_id, stop=live.stop, describe_fields=describe_fields,
                         selective=selective)

        def failed_to_start(error: Exception) -> None:
            # The execution exists for the client (it has its ARN): it fails, as a SageMaker execution
            # with a step SageMaker cannot run would, with the reason in its record.
            self._record_failed_start(pipeline_name, execution_id, definition, parameters, display_name,
                                      max_parallel, describe_fields, error)

        self._launch(live, run, failed_to_start)
        return execution_arn(pipeline_name, execution_id, self.region)

    def retry(self, pipeline_name: str, execution_id: str, max_parallel: int | None) -> str:
        """RetryPipelineExecution: resume a Failed or Stopped execution in place; returns its ARN."""
        from sm_pipeline.local.runner import resume_pipeline

        arn = execution_arn(pipeline_name, execution_id, self.region)
        describe = self.describe(pipeline_name, execution_id)
        status = describe["PipelineExecutionStatus"]
        if status in ("Executing", "Stopping"):
            raise conflict(f"Pipeline execution {arn} is {status}; only a Failed or Stopped execution can be retried.")
        if status not in ("Failed", "Stopped"):
            raise validation_error(f"Pipeline execution {arn} is {status}; only a Failed or Stopped "
                                   "execution can be retried.")
        live = _Live(pipeline_name, execution_id)

        def run(on_event: Callable[[dict], None]) -> None:
            resume_pipeline(execution_id, self.root, pipeline_name, max_parallel, on_event, stop=live.stop)

        self._launch(live, run, None)
        if live.error is not None:
            raise conflict(f"Pipeline execution {arn} cannot be retried now: {live.error}")
        return arn

    def stop(self, pipeline_name: str, execution_id: str, reason: str) -> str:
        """StopPipelineExecution: ask the runner to stop; the execution goes Stopping, then Stopped."""
        from sm_pipeline.local.control import request_stop

        arn = execution_arn(pipeline_name, execution_id, self.region)
        with self._lock:
            live = self._live.get(arn)
        status = self.describe(pipeline_name, execution_id)["PipelineExecutionStatus"]
        if status != "Executing":
            raise validation_error(f"Only pipelines with 'Executing' status can be stopped. "
                                   f"Pipeline execution {arn} is {status}.")
        if live is not None:
            live.stop.stop(reason)
        else:  # run by a local runner in another process on this machine: its stop-request file
            request_stop(self.root, pipeline_name, execution_id, reason)
        return arn

    def _launch(self, live: _Live, run: Callable, failed_to_start: Callable | None) -> None:
        arn = execution_arn(live.pipeline_name, live.execution_id, self.region)

        def on_event(event: dict) -> None:
            if event.get("event") == "execution_started":
                live.ready.set()
            _log_event(arn, event)

        def target() -> None:
            try:
                run(on_event)
            except InvalidInput as error:
                if not live.ready.is_set():
                    live.error = error
                    if failed_to_start is not None:
                        failed_to_start(error)
                log.warning("execution %s could not run: %s", arn, error)
            except Exception as error:  # a bug in the runner: the execution must still end
                log.exception("execution %s: internal error", arn)
                if not live.ready.is_set():
                    live.error = error
                    if failed_to_start is not None:
                        failed_to_start(error)
                self._fail_if_still_running(live, error)
            finally:
                live.ready.set()
                with self._lock:
                    self._live.pop(arn, None)

        with self._lock:
            if self._closing:
                raise ApiError("ServiceUnavailable", "the emulated SageMaker service is shutting down", 503)
            if arn in self._live:
                raise conflict(f"Pipeline execution {arn} is already running.")
            self._live[arn] = live
        live.thread = threading.Thread(target=target, name=f"execution-{live.execution_id}", daemon=True)
        live.thread.start()
        if not live.ready.wait(_READY_TIMEOUT):
            log.warning("execution %s: its runner has not started after %.0f s", arn, _READY_TIMEOUT)

    def _fail_if_still_running(self, live: _Live, error: Exception) -> None:
        try:
            describe = self.records.describe(live.pipeline_name, live.execution_id)
        except FileNotFoundError:
            return
        if describe.get("PipelineExecutionStatus") not in TERMINAL:
            self.records.mark_interrupted(live.pipeline_name, live.execution_id, "Failed",
                                          f"InternalServerError: the local runner failed: {error}")

    def _record_failed_start(self, pipeline_name, execution_id, definition, parameters, display_name, max_parallel,
                             describe_fields, error: Exception) -> None:
        from sm_pipeline.local.runner import DEFAULT_MAX_PARALLEL
        from sm_pipeline.service.state import write_json
        from sm_pipeline.validate import definition_max_parallel

        if max_parallel is None:
            own = definition_max_parallel(definition) if isinstance(definition, dict) else None
            max_parallel = own or DEFAULT_MAX_PARALLEL

        now = utc_now()
        recorder = ExecutionRecorder(self.root, new_execution_describe(
            pipeline_name, execution_id, region=self.region, display_name=display_name, status="Failed",
            parameters=parameters, max_parallel=max_parallel, created=now,
            fields={"FailureReason": str(error), "EndTime": now, **describe_fields}))
        write_json(recorder.records.definition_file, definition)

    # ---- reads -----------------------------------------------------------------------------
    def describe(self, pipeline_name: str, execution_id: str) -> dict:
        """The execution's DescribePipelineExecution dict (Stopping while a stop is pending)."""
        arn = execution_arn(pipeline_name, execution_id, self.region)
        with self._lock:
            live = self._live.get(arn)
        if live is not None:
            live.ready.wait(_READY_TIMEOUT)  # a second caller of the same token may ask before the record exists
        try:
            describe = self.records.describe(pipeline_name, execution_id)
        except FileNotFoundError:
            raise not_found(f"Pipeline execution '{arn}' does not exist.") from None
        if live is not None and live.stop.is_set() and describe.get("PipelineExecutionStatus") == "Executing":
            describe["PipelineExecutionStatus"] = "Stopping"
        return describe

    def steps(self, pipeline_name: str, execution_id: str) -> list[dict]:
        """The execution's steps as SageMaker lists them (steps of branches not taken are not listed)."""
        self.describe(pipeline_name, execution_id)
        return [s for s in self.records.steps(pipeline_name, execution_id) if s.get("StepStatus") != "NotExecuted"]

    def definition_text(self, pipeline_name: str, execution_id: str) -> str:
        """The definition the execution ran with, as JSON text."""
        return self.records.definition_text(pipeline_name, execution_id)

    def running(self) -> list[str]:
        """ARNs of the executions running now."""
        with self._lock:
            return list(self._live)


def _log_event(arn: str, event: dict) -> None:
    kind = event.get("event")
    if kind in ("step_started", "step_succeeded", "step_failed", "step_stopped", "step_retrying"):
        reason = f": {str(event['reason']).splitlines()[0]}" if event.get("reason") else ""
        log.info("%s [%s] %s%s", arn.rsplit("/", 1)[-1], event.get("step"), kind.removeprefix("step_"), reason)
    elif kind == "execution_finished":
        reason = f": {str(event['reason']).splitlines()[0]}" if event.get("reason") else ""
        log.info("%s ended %s%s", arn, event.get("status"), reason)
    elif kind == "execution_started":
        resumed, reused = event.get("resumed_steps") or [], event.get("reused_steps") or []
        log.info("%s started%s%s", arn, f" (resuming; reusing {', '.join(resumed)})" if resumed else "",
                 f" (selective; outputs of {', '.join(reused)} from the reference)" if reused else "")
