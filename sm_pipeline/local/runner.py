"""Run a SageMaker pipeline definition JSON locally: plan, schedule, execute, record.

Everything that can be checked before a step runs is checked first (definition, parameters, step
types, images, entrypoints, Lambda functions), so an invalid run fails at once with one error. Steps
then run as soon as their dependencies succeeded, up to ``max_parallel`` at a time.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import math
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sm_pipeline.errors import DefinitionError, InvalidInput, StorageError, one_line
from sm_pipeline.expressions import EXECUTION_VARIABLES, ExpressionContext, ExpressionError, render, resolve
from sm_pipeline.json_limits import JsonLimitError
from sm_pipeline.json_limits import loads as json_loads
from sm_pipeline.local.cache import CACHEABLE_TYPES, StepCache, cache_config, cache_key, code_hash
from sm_pipeline.local.control import (
    RESUMABLE_STATUSES,
    STOP_REQUEST_FILE,
    StopHandle,
    checked_execution_id,
    new_execution_id,
    pipeline_arn,
    read_stop_request,
    records_dir,
)
from sm_pipeline.local.control_steps import run_condition, run_fail, run_lambda
from sm_pipeline.local.jobs import (
    ExecutionInfo,
    JobContext,
    StepFailed,
    StepOutcome,
    StopRequested,
    job_name,
    local_region,
)
from sm_pipeline.local.models import model_containers, run_model
from sm_pipeline.local.parameters import cast_parameters
from sm_pipeline.local.processes import JobProcesses, kill_stale_jobs
from sm_pipeline.local.processing import run_processing
from sm_pipeline.local.records import ExecutionRecorder, LocalExecutionStore, runner_is_alive, utc_now
from sm_pipeline.local.registry import run_register_model
from sm_pipeline.local.training import run_training
from sm_pipeline.local.transform import run_transform
from sm_pipeline.storage import (
    DEFAULT_ROOT,
    INTERNAL_DIR,
    ObjectStore,
    os_error_text,
    prepare_root,
    remove_stale_temp_files,
)
from sm_pipeline.storage_io import write_text_atomic
from sm_pipeline.validate import (
    LOCAL_STEP_TYPES,
    StepEntry,
    argument_problems,
    definition_max_parallel,
    flatten_steps,
    load_definition,
    require_runnable,
    require_valid,
    step_dependencies,
)

SUPPORTED_STEP_TYPES = LOCAL_STEP_TYPES
log = logging.getLogger("sm_pipeline.local")
RETRY_SCALE_ENV = "AIRSAGE_RETRY_INTERVAL_SCALE"
OWNER_FILE = "owner.json"
# Space set aside at the start of a run and freed when the disk fills up, so that the run's final
# record ("Failed: No space left on device") can still be written over the "Executing" one.
_RESERVE_BYTES = 1 << 20

_REGISTERED_LAMBDAS: dict[str, Callable[[dict], dict]] = {}


def register_lambda(function: str, handler: Callable[[dict], dict]) -> None:
    """Make ``handler(inputs) -> outputs`` run Lambda steps whose FunctionArn is (or ends in) ``function``."""
    _REGISTERED_LAMBDAS[function] = handler


@dataclass
class PipelineResult:
    """The outcome of one local execution."""

    execution_id: str
    execution_arn: str
    pipeline_name: str
    status: str
    failure_reason: str | None
    steps: list[dict]
    property_files: dict[str, dict[str, Any]]
    root: Path
    records_dir: Path
    _describe: dict = field(repr=False, default_factory=dict)

    def describe(self) -> dict:
        """The execution as DescribePipelineExecution shapes it."""
        return dict(self._describe)

    def step(self, name: str) -> dict:
        """One step's ListPipelineExecutionSteps entry; KeyError if the step was never scheduled."""
        for entry in self.steps:
            if entry["StepName"] == name:
                return entry
        raise KeyError(name)

    def summary(self) -> dict:
        """What the CLI prints: id, status, failure reason, step statuses, property files read."""
        return {
            "execution_id": self.execution_id,
            "execution_arn": self.execution_arn,
            "pipeline_name": self.pipeline_name,
            "status": self.status,
            "failure_reason": self.failure_reason,
            "steps": {entry["StepName"]: entry["StepStatus"] for entry in reversed(self.steps)},
            "property_files": self.property_files,
            "records_dir": str(self.records_dir),
        }


def run_pipeline(
    definition: dict | str | Path,
    parameters: Mapping[str, Any] | None = None,
    root: Path | str | None = None,
    pipeline_name: str = "abalone-local",
    display_name: str | None = None,
    max_parallel: int | None = None,
    on_event: Callable[[dict], None] | None = None,
    *,
    lambdas: Mapping[str, Callable[[dict], dict]] | None = None,
    use_cache: bool = True,
    retry_interval_scale: float | None = None,
    execution_id: str | None = None,
    stop: StopHandle | None = None,
    resume: bool = False,
    describe_fields: Mapping[str, Any] | None = None,
    source: str | None = None,
) -> PipelineResult:
    """Execute a pipeline definition locally and return its result (never raises for a failed step).

    Raises InvalidInput before anything is written: :class:`~sm_pipeline.errors.DefinitionInvalid` with
    the lines ``validate`` prints (``source`` names the definition in them), a parameter that can never
    work, or an object root that is not a writable directory (StorageError).

    ``execution_id`` names the execution in advance (see ``sm_pipeline.local.control``); ``stop`` lets
    another thread stop it; ``resume=True`` (with ``execution_id``) continues that Failed or Stopped
    execution in place, reusing its succeeded steps (``resume_pipeline`` does this from the records
    alone); ``describe_fields`` are extra DescribePipelineExecution fields to record (a description,
    a pipeline version id). The first event is ``execution_started``, sent once the records exist.
    """
    definition, values, handlers = prepare_run(definition, parameters, lambdas=lambdas, source=source)
    max_parallel, parallel_source = parallelism_limit(definition, max_parallel)
    entries = flatten_steps(definition)
    if retry_interval_scale is None:
        retry_interval_scale = retry_scale_from_environment()
    store_root = prepare_root(root or os.environ.get("AIRSAGE_LOCAL_ROOT") or DEFAULT_ROOT)
    remove_stale_runs(store_root)
    execution = _Execution(definition, entries, values, ObjectStore(store_root),
                           pipeline_name, display_name, max_parallel, on_event, handlers, use_cache, retry_interval_scale,
                           _Control(execution_id, stop or StopHandle(), resume, dict(describe_fields or {}),
                                    parallel_source))
    return execution.run()


DEFAULT_MAX_PARALLEL = 2  # steps at a time when neither the start request nor the definition says (2 cores)


def parallelism_limit(definition: dict, requested: int | None) -> tuple[int, str]:
    """``(MaxParallelExecutionSteps, where it came from)``: the start request's, else the definition's, else 2.

    As in SageMaker, a StartPipelineExecution ParallelismConfiguration overrides the pipeline's.
    """
    if requested is not None:
        if isinstance(requested, bool) or not isinstance(requested, int) or requested < 1:
            raise InvalidInput(f"max_parallel (ParallelismConfiguration.MaxParallelExecutionSteps) must be an "
                               f"integer of at least 1, not {requested!r}")
        return requested, "start request"
    own = definition_max_parallel(definition)
    if own is not None:
        return own, "definition's ParallelismConfiguration"
    return DEFAULT_MAX_PARALLEL, "default"


@dataclass
class _Control:
    """How an execution is controlled from outside: its preassigned id, stop handle, resume flag."""

    execution_id: str | None
    stop: StopHandle
    resume: bool
    describe_fields: dict
    parallel_source: str = "start request"


def prepare_run(definition: dict | str | Path, parameters: Mapping[str, Any] | None = None, *,
                lambdas: Mapping[str, Callable[[dict], dict]] | None = None,
                source: str | None = None) -> tuple[dict, dict[str, Any], dict[str, Callable]]:
    """Everything checked before a run writes anything: ``(definition, parameter values, Lambda handlers)``.

    The same checks, in the same order, as ``validate --local``: the definition, the parameters, then
    what has no local equivalent; then the run's environment (``AIRSAGE_RETRY_INTERVAL_SCALE``).
    Raises InvalidInput.
    """
    where = source or (str(definition) if isinstance(definition, Path) else "definition")
    definition = load_definition(definition)
    require_valid(definition, where)
    values = cast_parameters(definition.get("Parameters") or [], parameters, definition)
    handlers = {**_REGISTERED_LAMBDAS, **(lambdas or {})}
    require_runnable(definition, values, handlers, where)
    retry_scale_from_environment()  # the environment is input too: refused here, before the object root exists
    return definition, values, handlers


def retry_scale_from_environment() -> float:
    """AIRSAGE_RETRY_INTERVAL_SCALE as a number >= 0 (default 1); InvalidInput naming the variable otherwise."""
    raw = os.environ.get(RETRY_SCALE_ENV, "1")
    try:
        scale = float(raw)
    except ValueError:
        scale = math.nan
    if not math.isfinite(scale) or scale < 0:
        raise InvalidInput(f"environment variable {RETRY_SCALE_ENV}={raw!r}: expected a number >= 0")
    return scale


def remove_stale_runs(root: Path) -> list[str]:
    """Clean up after runs on this object root whose runner died (SIGKILL, a crash); returns their ids.

    For each sandbox under ``<root>/.airsage/work`` whose recorded owner process is certainly gone:
    its job processes are killed (where the parent-death signal could not do it) and the sandbox is
    removed. Staging files of dead writers anywhere in the root go too. Live runs are never touched.
    """
    removed = []
    work = root / INTERNAL_DIR / "work"
    for sandbox in sorted(work.iterdir()) if work.is_dir() else []:
        try:
            owner = json_loads((sandbox / OWNER_FILE).read_bytes())
        except (OSError, JsonLimitError):
            continue  # no owner yet (a run starting right now) or unreadable: not provably dead
        if not isinstance(owner, dict) or runner_is_alive(owner):
            continue
        kill_stale_jobs(sandbox)
        shutil.rmtree(sandbox, ignore_errors=True)
        removed.append(sandbox.name)
    remove_stale_temp_files(root)
    return removed


class _Stopped(Exception):
    """Internal: the step was stopped."""


class _StopExecution(Exception):
    """Internal: a stop was requested through the StopHandle or a stop-request file."""


class _Execution:
    """One execution's state, scheduler and step runner."""

    def __init__(self, definition, entries, parameters, store, pipeline_name, display_name, max_parallel,
                 on_event, lambdas, use_cache, retry_interval_scale, control: _Control):
        self.entries = {entry.name: entry for entry in entries}
        self.order = [entry.name for entry in entries]
        self.deps = {entry.name: step_dependencies(entry) for entry in entries}
        self.parameters = parameters
        self.store = store
        self.max_parallel = max_parallel
        self.parallel_source = control.parallel_source
        mlflow = definition.get("MlflowConfig")
        self.mlflow = {k: v for k, v in mlflow.items() if v is not None} if isinstance(mlflow, dict) else None
        self.on_event = on_event
        self.lambdas = lambdas
        self.use_cache = use_cache
        self.retry_interval_scale = retry_interval_scale
        self.processes = JobProcesses()
        self.cache = StepCache(store, pipeline_name)
        self._lock = threading.Lock()
        self._event_lock = threading.Lock()
        self.records: dict[str, dict] = {}
        self.property_files: dict[str, dict[str, Any]] = {}
        self.status: dict[str, str] = {}
        self.branch_taken: dict[str, str] = {}
        self.failures: list[tuple[str, StepFailed]] = []

        region = local_region()
        self.stop = control.stop
        if control.resume and not control.execution_id:
            raise InvalidInput("resume=True needs the execution_id of the Failed or Stopped execution to resume")
        execution_id = checked_execution_id(control.execution_id) if control.execution_id else new_execution_id()
        # Held until the run ends: a second runner of the same execution (a double resume) fails at once.
        self._run_lock = _lock_records(records_dir(store.root, pipeline_name, execution_id), execution_id)
        try:
            self._start_records(definition, parameters, store, pipeline_name, display_name, max_parallel, region,
                                execution_id, control)
        except BaseException:
            _unlock(self._run_lock)
            raise

    def _start_records(self, definition, parameters, store, pipeline_name, display_name, max_parallel, region,
                       execution_id, control: _Control) -> None:
        previous = self._read_for_resume(store, pipeline_name, execution_id) if control.resume else None
        if not previous and (records_dir(store.root, pipeline_name, execution_id) / "describe.json").exists():
            raise InvalidInput(f"execution id {execution_id} of pipeline {pipeline_name} is already taken "
                               "(to continue that execution, resume it)")
        arn = pipeline_arn(pipeline_name, region)
        # A resumed execution keeps its start time: Execution.StartDateTime must resolve as before.
        start_time = previous["describe"]["CreationTime"] if previous else utc_now()
        self.info = ExecutionInfo(pipeline_name, execution_id, f"{arn}/execution/{execution_id}", region, start_time)
        self.variables = {
            "PipelineExecutionId": execution_id, "PipelineExecutionArn": self.info.execution_arn,
            "PipelineName": pipeline_name, "PipelineArn": arn, "StartDateTime": self.info.start_time,
        }
        try:
            experiment = resolve(definition.get("PipelineExperimentConfig"), ExpressionContext(parameters, self.variables))
        except ExpressionError as exc:
            raise DefinitionError(f"PipelineExperimentConfig: {exc}") from None
        describe = {
            "PipelineName": pipeline_name,
            "PipelineExecutionId": execution_id,
            "PipelineArn": arn,
            "PipelineExecutionArn": self.info.execution_arn,
            "PipelineExecutionDisplayName": display_name or execution_id,
            "PipelineExecutionStatus": "Executing",
            "PipelineExperimentConfig": experiment,
            "ParallelismConfiguration": {"MaxParallelExecutionSteps": max_parallel},
            "PipelineParameters": [{"Name": k, "Value": render(v)} for k, v in parameters.items()],
            "CreationTime": self.info.start_time,
            "LastModifiedTime": self.info.start_time,
            "CreatedBy": {}, "LastModifiedBy": {},
            **control.describe_fields,
        }
        kept_steps = self._adopt(previous) if previous else None
        if previous:
            describe = {**{k: v for k, v in previous["describe"].items() if k not in ("FailureReason", "EndTime")},
                        "PipelineExecutionStatus": "Executing", "LastModifiedTime": utc_now(),
                        "ParallelismConfiguration": {"MaxParallelExecutionSteps": max_parallel},
                        **control.describe_fields}
        self.work_root = store.root / INTERNAL_DIR / "work" / execution_id
        if previous:
            shutil.rmtree(self.work_root, ignore_errors=True)  # sandboxes of the interrupted run
        try:
            # The sandbox's owner first: a run killed from here on is recognised as dead by the next one.
            self.work_root.mkdir(parents=True)
            self.reserve = self.work_root / ".reserve"
            with open(self.reserve, "wb") as fh:  # freed on ENOSPC so the final record can still be written
                fh.write(b"\0" * _RESERVE_BYTES)
            self.recorder = ExecutionRecorder(store.root, describe, steps=kept_steps)
            write_text_atomic(self.work_root / OWNER_FILE, _json(self.recorder.describe["LocalRunner"]))
            (self.recorder.dir / STOP_REQUEST_FILE).unlink(missing_ok=True)  # a stale request from an earlier run
            write_text_atomic(self.recorder.dir / "definition.json", _json(definition))
        except OSError as exc:
            # Nothing half-made stays behind: the run never started (a resumed execution keeps its records).
            made = [self.work_root] if previous else [self.work_root, records_dir(store.root, pipeline_name, execution_id)]
            for path in made:
                shutil.rmtree(path, ignore_errors=True)
                _remove_empty_parents(path, store.root)
            raise StorageError(f"object root {store.root}: {os_error_text(exc)}") from None

    # ---- resume -------------------------------------------------------------------------------
    @staticmethod
    def _read_for_resume(store: ObjectStore, pipeline_name: str, execution_id: str) -> dict:
        """What a Failed/Stopped execution left (read under the run lock, so no runner changes it meanwhile)."""
        records = LocalExecutionStore(store.root)
        try:
            describe = records.describe(pipeline_name, execution_id)
        except FileNotFoundError:
            raise InvalidInput(f"no local execution {pipeline_name}/{execution_id} under {store.root} to resume") from None
        status = describe.get("PipelineExecutionStatus")
        if status not in RESUMABLE_STATUSES:
            raise InvalidInput(f"local execution {pipeline_name}/{execution_id} is {status}; "
                               f"only a {' or '.join(RESUMABLE_STATUSES)} execution can be resumed")
        return {"describe": describe, "steps": records.steps(pipeline_name, execution_id),
                "properties": records.step_properties(pipeline_name, execution_id)}

    def _adopt(self, previous: dict) -> list[dict]:
        """Take over the succeeded steps of the execution being resumed; returns their step entries."""
        kept = []
        for entry in previous["steps"]:
            name = entry.get("StepName")
            saved = previous["properties"].get(name)
            if entry.get("StepStatus") != "Succeeded" or name not in self.entries or saved is None:
                continue  # failed, stopped, skipped or unknown: runs (or is skipped) again
            self.records[name] = saved["Properties"]
            if saved.get("PropertyFiles"):
                self.property_files[name] = saved["PropertyFiles"]
            self.status[name] = "Succeeded"
            if self.entries[name].type == "Condition":
                self.branch_taken[name] = "IfSteps" if saved["Properties"].get("Outcome") == "True" else "ElseSteps"
            kept.append(entry)
        return kept

    def _stop_requested(self) -> bool:
        if self.stop.is_set():
            return True
        request = read_stop_request(self.recorder.dir)
        if request is None:
            return False
        self.stop.stop(request.get("Reason") or "Execution stopped by a stop request (sm_pipeline.local.request_stop)")
        return True

    # ---- events and records -------------------------------------------------------------------
    def _record_step(self, name: str, **fields) -> None:
        self._with_reserve(lambda: self.recorder.update_step(name, **fields))

    def _record_execution(self, **fields) -> None:
        self._with_reserve(lambda: self.recorder.update_execution(**fields))

    def _with_reserve(self, write: Callable[[], Any]) -> None:
        try:
            write()
        except OSError as exc:
            if exc.errno != errno.ENOSPC or not self.reserve.exists():
                raise
            self.reserve.unlink(missing_ok=True)  # the disk is full: spend the reserve on the record
            write()

    def emit(self, **event) -> None:
        if self.on_event is None:
            return
        event.setdefault("execution_id", self.info.execution_id)
        with self._event_lock:
            try:
                self.on_event(event)
            except Exception:  # noqa: S110 - a progress printer must never break the run
                pass

    # ---- scheduling -------------------------------------------------------------------------
    def _skip_reason(self, name: str) -> str | None:
        entry = self.entries[name]
        if entry.condition and entry.condition in self.branch_taken and self.branch_taken[entry.condition] != entry.branch:
            return f"condition {entry.condition} took {self.branch_taken[entry.condition]}"
        for dep in self.deps[name]:
            if self.status.get(dep) == "NotExecuted":
                return f"depends on {dep}, which was not executed"
        return None

    def _ready(self, name: str) -> bool:
        return all(self.status.get(dep) == "Succeeded" for dep in self.deps[name])

    def _propagate_skips(self) -> None:
        changed = True
        while changed:
            changed = False
            for name in self.order:
                if name in self.status:
                    continue
                reason = self._skip_reason(name)
                if reason:
                    self.status[name] = "NotExecuted"
                    self._record_step(name, StepStatus="NotExecuted", Metadata={}, FailureReason=None)
                    self.emit(event="step_not_executed", step=name, type=self.entries[name].type, reason=reason)
                    changed = True

    def run(self) -> PipelineResult:
        stopped = False
        previous_sigterm = _raise_keyboard_interrupt_on_sigterm()
        pool = ThreadPoolExecutor(max_workers=self.max_parallel, thread_name_prefix="airsage-step")
        running: dict[Future, str] = {}
        self.emit(event="execution_started", execution_arn=self.info.execution_arn,
                  records_dir=str(self.recorder.dir), resumed_steps=sorted(self.status))
        for kind, message in self._notices():
            log.info("%s: %s", self.info.execution_id, message)
            self.emit(event=kind, message=message, max_parallel=self.max_parallel, source=self.parallel_source)
        try:
            while True:
                if self._stop_requested():
                    raise _StopExecution()
                self._propagate_skips()
                if not self.failures:
                    for name in self.order:
                        if len(running) >= self.max_parallel:
                            break
                        if name not in self.status and self._ready(name):
                            self.status[name] = "Executing"
                            running[pool.submit(self._run_step, name)] = name
                if not running:
                    break
                done, _ = wait(list(running), timeout=0.5, return_when=FIRST_COMPLETED)
                for future in done:
                    self._finish(running.pop(future), future)
        except (KeyboardInterrupt, _StopExecution):
            stopped = True
            self.recorder.update_execution(PipelineExecutionStatus="Stopping")
            self.processes.stop_all()
            self._drain(running)
        except Exception as exc:  # the scheduler itself failed (a record that cannot be written, ...)
            cause = os_error_text(exc) if isinstance(exc, OSError) else f"{type(exc).__name__}: {exc}"
            self.failures.append(("", StepFailed(f"the local runner failed: {one_line(cause)}", "Runner")))
            self.processes.stop_all()
            self._drain(running)
        finally:
            pool.shutdown(wait=True)
            _restore_sigterm(previous_sigterm)
        try:
            return self._conclude(stopped)
        finally:
            _unlock(self._run_lock)

    def _notices(self) -> list[tuple[str, str]]:
        """What the run tells its user once at the start: the parallelism limit, what it ignores."""
        notices = [("parallelism", f"at most {self.max_parallel} step(s) at a time (MaxParallelExecutionSteps from "
                                   f"the {self.parallel_source})")]
        if self.mlflow:
            notices.append(("mlflow_ignored", f"MlflowConfig {json.dumps(self.mlflow, default=str)} is ignored "
                                              "locally: no step logs to an MLflow tracking server"))
        return notices

    def _drain(self, running: dict[Future, str]) -> None:
        while running:
            try:
                done, _ = wait(list(running), timeout=0.5)
            except KeyboardInterrupt:
                self.processes.stop_all()  # a second Ctrl-C while stopping: keep stopping
                continue
            for future in done:
                self._finish(running.pop(future), future)

    def _finish(self, name: str, future: Future) -> None:
        error = future.exception()
        if error is None:
            return
        if isinstance(error, _Stopped | StopRequested):
            self.status[name] = "Stopped"
            return
        if isinstance(error, OSError):  # the record of the step could not be written (disk full, ...)
            failure = StepFailed(f"Step.SERVICE_FAULT: {one_line(os_error_text(error))}", "Step.SERVICE_FAULT")
        else:  # a bug in the runner itself: fail the step rather than hang the scheduler
            failure = StepFailed(one_line(f"internal error in the local runner: {type(error).__name__}: {error}"))
        self.status[name] = "Failed"
        self.failures.append((name, failure))
        with contextlib.suppress(OSError):  # the run's outcome below still says Failed
            self._record_step(name, StepStatus="Failed", EndTime=utc_now(), FailureReason=failure.reason)

    def _conclude(self, stopped: bool) -> PipelineResult:
        if stopped or (any(s == "Stopped" for s in self.status.values()) and not self.failures):
            status, reason = "Stopped", self.stop.reason or "Execution stopped by the user (Ctrl-C or SIGTERM)"
        elif self.failures:
            name, failure = self.failures[0]
            status = "Failed"
            reason = failure.reason if failure.error_type in ("Fail", "Runner") else f"Step failure: {name}: {failure.reason}"
        else:
            status, reason = "Succeeded", None
        try:
            self._record_execution(PipelineExecutionStatus=status, FailureReason=reason, EndTime=utc_now())
        except OSError as exc:
            # Even the reserve did not suffice; the record stays "Executing" and readers report it
            # Stopped once this process is gone (LocalExecutionStore). The caller still learns why.
            reason = f"{reason or status}; the execution record could not be updated: {one_line(os_error_text(exc))}"
        (self.recorder.dir / STOP_REQUEST_FILE).unlink(missing_ok=True)  # honoured (or too late): the record says so
        if not _keep_sandbox():
            shutil.rmtree(self.work_root, ignore_errors=True)
        self.emit(event="execution_finished", status=status, reason=reason)
        return PipelineResult(
            execution_id=self.info.execution_id, execution_arn=self.info.execution_arn,
            pipeline_name=self.info.pipeline_name, status=status, failure_reason=reason,
            steps=self.recorder.step_list(), property_files=self.property_files, root=self.store.root,
            records_dir=self.recorder.dir, _describe=dict(self.recorder.describe),
        )

    # ---- one step --------------------------------------------------------------------------
    def _expression_context(self, job: str | None = None, placeholders: bool = False) -> ExpressionContext:
        variables = dict(self.variables)
        if placeholders:
            variables = {name: f"<Execution.{name}>" for name in EXECUTION_VARIABLES}
        elif job:
            variables.update(TrainingJobName=job, ProcessingJobName=job)
        with self._lock:
            records = dict(self.records)
        if placeholders:
            # Every execution names its models anew; for the cache a model is what it contains.
            for name, record in records.items():
                if self.entries[name].type == "Model":
                    content = hashlib.sha256(_json(model_containers(record)).encode()).hexdigest()[:16]
                    records[name] = {**record, "ModelName": f"<model {content}>", "ModelArn": f"<model {content}>"}
        return ExpressionContext(parameters=self.parameters, execution_variables=variables, step_records=records,
                                 read_property_file=self._read_property_file, read_json_uri=self._read_json_uri)

    def _read_property_file(self, step: str, name: str) -> Any:
        with self._lock:
            files = self.property_files.get(step, {})
        if name not in files:
            raise ExpressionError(f"property file {name} of step {step} was not read (did the step succeed?)")
        return files[name]

    def _read_json_uri(self, uri: str) -> Any:
        try:
            return json_loads(self.store.read_bytes(uri))
        except JsonLimitError as exc:
            raise ExpressionError(f"{uri}: {exc}") from None

    def _run_step(self, name: str) -> None:
        entry = self.entries[name]
        started = time.monotonic()
        self._record_step(name, StepStatus="Executing", StartTime=utc_now(), AttemptCount=1, Metadata={})
        self.emit(event="step_started", step=name, type=entry.type)
        cache_hit = False
        try:
            outcome, cache_hit, attempts = self._execute(entry)
        except (_Stopped, StopRequested):
            self._record_step(name, StepStatus="Stopped", EndTime=utc_now())
            self.emit(event="step_stopped", step=name, type=entry.type, duration=time.monotonic() - started)
            raise
        except StepFailed as failure:
            with self._lock:
                self.status[name] = "Failed"
                self.failures.append((name, failure))
            self._record_step(name, StepStatus="Failed", EndTime=utc_now(), FailureReason=failure.reason,
                                      Metadata=failure.metadata or None)
            self.emit(event="step_failed", step=name, type=entry.type, duration=time.monotonic() - started,
                      reason=failure.reason)
            return
        with self._lock:
            self.records[name] = outcome.properties
            self.status[name] = "Succeeded"
            if entry.type == "Condition":
                self.branch_taken[name] = "IfSteps" if outcome.properties["Outcome"] == "True" else "ElseSteps"
            property_files = self.property_files.get(name)
        self.recorder.save_step_properties(name, outcome.properties, property_files)  # what a resume reuses
        fields = {"StepStatus": "Succeeded", "EndTime": utc_now(), "Metadata": outcome.metadata, "AttemptCount": attempts}
        if cache_hit:
            fields["CacheHitResult"] = {"SourcePipelineExecutionArn": outcome.metadata.get("_source")}
            fields["Metadata"] = {k: v for k, v in outcome.metadata.items() if k != "_source"}
        self._record_step(name, **fields)
        self.emit(event="step_succeeded", step=name, type=entry.type, duration=time.monotonic() - started,
                  cache_hit=cache_hit)

    def _execute(self, entry: StepEntry) -> tuple[StepOutcome, bool, int]:
        name, kind, step = entry.name, entry.type, entry.step
        if kind == "Condition":
            try:
                return run_condition(step, self._expression_context()), False, 1
            except ExpressionError as exc:
                raise StepFailed(f"condition could not be evaluated: {exc}") from exc
        job = job_name(self.info.execution_id, name)
        try:
            arguments = resolve(step.get("Arguments") or {}, self._expression_context(job))
        except ExpressionError as exc:
            raise StepFailed(f"arguments could not be resolved: {exc}") from exc
        problems = argument_problems(kind, arguments)
        if problems:
            # What SageMaker's Create*Job would refuse; checked here so that no step implementation
            # meets a value of the wrong shape.
            raise StepFailed("ValidationException: " + one_line("; ".join(problems)))
        if kind == "Fail":
            run_fail(arguments)

        enabled, expire_after = cache_config(step) if self.use_cache and kind in CACHEABLE_TYPES else (False, None)
        key = None
        if enabled:
            key = cache_key(kind, resolve(step.get("Arguments") or {}, self._expression_context(placeholders=True)),
                            code_hash(kind, arguments, self.store))
            entry_cached = self.cache.lookup(key, expire_after)
            if entry_cached is not None:
                outcome = StepOutcome(entry_cached["Properties"],
                                      {**entry_cached["Metadata"], "_source": entry_cached["SourcePipelineExecutionArn"]},
                                      entry_cached["OutputUris"])
                self._read_property_files(entry, outcome)
                return outcome, True, 1

        attempt = 0
        first_failure = time.monotonic()
        while True:
            attempt += 1
            work_dir = self.work_root / name / f"attempt-{attempt}"
            ctx = JobContext(name=name, execution=self.info, store=self.store, work_dir=work_dir,
                             logs_dir=self.recorder.logs_dir, processes=self.processes, job_name=job,
                             lambdas=self.lambdas)
            try:
                outcome = self._dispatch(kind, step, arguments, ctx)
                self._read_property_files(entry, outcome)
                break
            except StepFailed as failure:
                if not failure.metadata and kind in _JOB_METADATA:
                    # SageMaker lists the failed job's ARN in the step's metadata, as for a succeeded one.
                    key, resource = _JOB_METADATA[kind]
                    failure.metadata = {key: {"Arn": ctx.arn(f"{resource}/{ctx.job_name}")}}
                delay = self._retry_delay(step, failure, attempt, time.monotonic() - first_failure)
                if delay is None:
                    raise
                self._record_step(name, AttemptCount=attempt + 1)
                self.emit(event="step_retrying", step=name, attempt=attempt, delay=delay, reason=failure.reason)
                if self.processes.stop_event.wait(delay):
                    raise _Stopped() from None
                job = job_name(self.info.execution_id, name)
            except OSError as exc:
                raise StepFailed(f"Step.SERVICE_FAULT: {one_line(os_error_text(exc))}", "Step.SERVICE_FAULT") from exc
            finally:
                if self.processes.stop_event.is_set() or not _keep_sandbox():
                    shutil.rmtree(work_dir, ignore_errors=True)
        if key is not None:
            self.cache.save(key, properties=outcome.properties, metadata=outcome.metadata,
                            output_uris=outcome.output_uris, execution_arn=self.info.execution_arn)
        return outcome, False, attempt

    def _dispatch(self, kind: str, step: dict, arguments: dict, ctx: JobContext) -> StepOutcome:
        if self.processes.stop_event.is_set():
            raise _Stopped()
        ctx.work_dir.mkdir(parents=True, exist_ok=True)
        if kind == "Processing":
            return run_processing(arguments, ctx)
        if kind == "Training":
            return run_training(arguments, ctx)
        if kind == "Transform":
            return run_transform(arguments, ctx)
        if kind == "Model":
            return run_model(arguments, ctx)
        if kind == "RegisterModel":
            return run_register_model(arguments, ctx)
        if kind == "Lambda":
            return run_lambda(step, arguments, ctx)
        raise StepFailed(f"step type {kind!r} is not runnable locally")

    def _read_property_files(self, entry: StepEntry, outcome: StepOutcome) -> None:
        declared = entry.step.get("PropertyFiles") or []
        if not declared:
            return
        outputs = (outcome.properties.get("ProcessingOutputConfig") or {}).get("Outputs") or []
        uris = {o.get("OutputName"): (o.get("S3Output") or {}).get("S3Uri") for o in outputs}
        read: dict[str, Any] = {}
        for pf in declared:
            base = uris.get(pf.get("OutputName"))
            uri = f"{str(base).rstrip('/')}/{pf.get('FilePath', '').lstrip('/')}"
            try:
                read[pf["PropertyFileName"]] = self._read_json_uri(uri)
            except InvalidInput as exc:
                raise StepFailed(f"property file {pf.get('PropertyFileName')}: {exc}") from exc
        with self._lock:
            self.property_files[entry.name] = read

    def _retry_delay(self, step: dict, failure: StepFailed, attempt: int, elapsed: float) -> float | None:
        for policy in step.get("RetryPolicies") or []:
            types = list(policy.get("StepExceptionTypes") or []) + list(policy.get("ExceptionType") or [])
            if failure.error_type not in types:
                continue
            retries_done = attempt - 1
            max_attempts = policy.get("MaxAttempts")
            expire_minutes = policy.get("ExpireAfterMin")
            if max_attempts is not None and retries_done >= int(max_attempts):
                return None
            if expire_minutes is not None and elapsed >= float(expire_minutes) * 60 * self.retry_interval_scale:
                return None
            interval = float(policy.get("IntervalSeconds", 1)) * float(policy.get("BackoffRate", 2.0)) ** retries_done
            return interval * self.retry_interval_scale
        return None


_JOB_METADATA = {"Processing": ("ProcessingJob", "processing-job"), "Training": ("TrainingJob", "training-job"),
                 "Transform": ("TransformJob", "transform-job")}


def _lock_records(directory: Path, execution_id: str) -> int:
    """Hold ``<records>/.run.lock`` while this runner owns the execution; InvalidInput if another runner does."""
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / ".run.lock", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise InvalidInput(f"execution {execution_id} is being run by another runner right now") from None
    return fd


def _unlock(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)  # closing the descriptor releases the flock


def _remove_empty_parents(path: Path, stop: Path) -> None:
    """Remove the now-empty directories between ``path`` and ``stop`` (exclusive)."""
    for parent in path.parents:
        if parent == stop or stop not in parent.parents:
            return
        try:
            parent.rmdir()
        except OSError:
            return


def _keep_sandbox() -> bool:
    # Failed steps keep their sandbox for debugging only on request; inputs there are hard links anyway.
    return os.environ.get("AIRSAGE_KEEP_SANDBOX", "") == "1"


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, default=str)


def _raise_keyboard_interrupt_on_sigterm():
    """SIGTERM (Airflow killing the task, ``kill``) stops the run like Ctrl-C; main thread only."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):
        raise KeyboardInterrupt()

    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:
        return None


def _restore_sigterm(previous) -> None:
    if previous is not None and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, previous)
