"""Run a SageMaker pipeline definition JSON locally: plan, schedule, record; resume a run that ended.

Everything that can be checked before a step runs is checked first (definition, parameters, step
types, images, entrypoints, Lambda functions), so an invalid run fails at once with one error. Steps
then run as soon as their dependencies succeeded, up to ``max_parallel`` at a time; what running one
step means (arguments, cache, retries, the kind's implementation) is :mod:`sm_pipeline.local.step_attempt`.
"""

from __future__ import annotations

import contextlib
import errno
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

from sm_pipeline.arns import default_region, execution_arn, pipeline_arn
from sm_pipeline.errors import DefinitionError, InvalidInput, StorageError, one_line
from sm_pipeline.expressions import ExpressionContext, ExpressionError, resolve
from sm_pipeline.json_limits import JsonLimitError
from sm_pipeline.json_limits import loads as json_loads
from sm_pipeline.local.cache import StepCache
from sm_pipeline.local.capabilities import require_runnable
from sm_pipeline.local.control import (
    RESUMABLE_STATUSES,
    StopHandle,
    checked_execution_id,
    new_execution_id,
    read_stop_request,
)
from sm_pipeline.local.jobs import ExecutionInfo, StepFailed, StepOutcome
from sm_pipeline.local.processes import JobProcesses, StopRequested, kill_stale_jobs
from sm_pipeline.local.records import (
    ExecutionRecorder,
    ExecutionRecords,
    LocalExecutionStore,
    new_execution_describe,
    utc_now,
)
from sm_pipeline.local.selective import Selection, check_selection
from sm_pipeline.local.step_attempt import Iteration, StepOutputs, StepRunner, keep_sandbox
from sm_pipeline.locks import FileLock, owner_is_alive
from sm_pipeline.parameters import cast_parameters
from sm_pipeline.step_graph import StepEntry, flatten_steps, load_definition, step_dependencies
from sm_pipeline.storage import (
    DEFAULT_ROOT,
    INTERNAL_DIR,
    ObjectStore,
    os_error_text,
    prepare_root,
    remove_stale_temp_files,
)
from sm_pipeline.storage_io import write_text_atomic
from sm_pipeline.validate import definition_max_parallel, require_valid

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
    selective: Mapping[str, Any] | None = None,
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

    ``selective`` is a SelectiveExecutionConfig (``SelectedSteps``, ``SourcePipelineExecutionArn``): only the
    selected steps run, the others they depend on take the reference execution's outputs
    (:mod:`sm_pipeline.local.selective`, whose rules are checked here: SelectionInvalid, one line).
    """
    definition, values, handlers = prepare_run(definition, parameters, lambdas=lambdas, source=source)
    max_parallel, parallel_source = parallelism_limit(definition, max_parallel)
    entries = flatten_steps(definition)
    if retry_interval_scale is None:
        retry_interval_scale = retry_scale_from_environment()
    root = root or os.environ.get("AIRSAGE_LOCAL_ROOT") or DEFAULT_ROOT
    selection = check_selection(selective, entries, root, pipeline_name) if selective is not None else None
    store_root = prepare_root(root)
    remove_stale_runs(store_root)
    fields = dict(describe_fields or {})
    if selection is not None:
        fields["SelectiveExecutionConfig"] = selection.config
    execution = _Execution(definition, entries, values, ObjectStore(store_root),
                           pipeline_name, display_name, max_parallel, on_event, handlers, use_cache, retry_interval_scale,
                           _Control(execution_id, stop or StopHandle(), resume, fields, parallel_source, selection))
    return execution.run()


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

    RetryPipelineExecution's semantics: the execution keeps its id and ARN, its definition and its
    parameters (those it was started with), so every ``Join`` over the execution id names the same output
    URIs; the failed, stopped and never-started steps run again. InvalidInput if the execution does not
    exist, is not Failed or Stopped, or is being run by another runner.
    """
    root = Path(root or os.environ.get("AIRSAGE_LOCAL_ROOT") or DEFAULT_ROOT)
    store = LocalExecutionStore(root)
    checked_execution_id(execution_id)
    try:
        describe = store.describe(pipeline_name, execution_id)
        definition = store.definition(pipeline_name, execution_id)
    except FileNotFoundError:
        raise InvalidInput(f"no local execution {pipeline_name}/{execution_id} under {root}") from None
    _require_resumable(describe, pipeline_name, execution_id)
    parameters: dict[str, Any] = {p["Name"]: p["Value"] for p in describe.get("PipelineParameters") or []}
    if max_parallel is None:
        max_parallel = int((describe.get("ParallelismConfiguration") or {}).get("MaxParallelExecutionSteps") or 2)
    return run_pipeline(definition, parameters, root=root, pipeline_name=pipeline_name,
                        display_name=describe.get("PipelineExecutionDisplayName"), max_parallel=max_parallel,
                        on_event=on_event, lambdas=lambdas, use_cache=use_cache,
                        retry_interval_scale=retry_interval_scale, execution_id=execution_id, stop=stop,
                        resume=True, selective=describe.get("SelectiveExecutionConfig"))


def _require_resumable(describe: dict, pipeline_name: str, execution_id: str) -> None:
    status = describe.get("PipelineExecutionStatus")
    if status not in RESUMABLE_STATUSES:
        raise InvalidInput(f"local execution {pipeline_name}/{execution_id} is {status}; "
                           f"only a {' or '.join(RESUMABLE_STATUSES)} execution can be resumed")


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
    selection: Selection | None = None


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
    removed. Staging files of dead writers anywhere in the root go too, on the first run of each process
    in that root: that sweep walks the whole root (every execution's records), which would make each start
    of a long-lived process (the emulated service) slower as records grow, while a dead writer's leftovers
    are invisible to every listing meanwhile and the next write of the same file removes them anyway.
    Live runs are never touched.
    """
    removed = []
    work = root / INTERNAL_DIR / "work"
    for sandbox in sorted(work.iterdir()) if work.is_dir() else []:
        try:
            owner = json_loads((sandbox / OWNER_FILE).read_bytes())
        except (OSError, JsonLimitError):
            continue  # no owner yet (a run starting right now) or unreadable: not provably dead
        if not isinstance(owner, dict) or owner_is_alive(owner):
            continue
        kill_stale_jobs(sandbox)
        shutil.rmtree(sandbox, ignore_errors=True)
        removed.append(sandbox.name)
    with _SWEPT_LOCK:
        first = root not in _SWEPT_ROOTS
        _SWEPT_ROOTS.add(root)
    if first:
        remove_stale_temp_files(root)
    return removed


_SWEPT_ROOTS: set[Path] = set()  # object roots this process swept for dead writers' staging files
_SWEPT_LOCK = threading.Lock()


class _StopExecution(Exception):
    """Internal: a stop was requested through the StopHandle or a stop-request file."""


class _Execution:
    """One execution's state, scheduler and step runner."""

    def __init__(self, definition, entries, parameters, store, pipeline_name, display_name, max_parallel,
                 on_event, lambdas, use_cache, retry_interval_scale, control: _Control):
        self.entries = {entry.name: entry for entry in entries}
        # Body steps of a ForEach are run by their ForEach step, once per item, never by the scheduler.
        self.order = [entry.name for entry in entries if entry.for_each is None]
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
        self._lock = threading.Lock()
        self._event_lock = threading.Lock()
        self.outputs = StepOutputs()
        self.status: dict[str, str] = {}
        self.branch_taken: dict[str, str] = {}
        self.failures: list[tuple[str, StepFailed]] = []

        region = default_region()
        self.stop = control.stop
        if control.resume and not control.execution_id:
            raise InvalidInput("resume=True needs the execution_id of the Failed or Stopped execution to resume")
        execution_id = checked_execution_id(control.execution_id) if control.execution_id else new_execution_id()
        records = ExecutionRecords(store.root, pipeline_name, execution_id)
        # Held until the run ends: a second runner of the same execution (a double resume) fails at once.
        self._run_lock = FileLock(records.run_lock_file)
        try:
            acquired = self._run_lock.try_acquire()
        except OSError as exc:
            raise StorageError(f"object root {store.root}: {os_error_text(exc)}") from None
        if not acquired:
            raise InvalidInput(f"execution {execution_id} is being run by another runner right now")
        try:
            self._start_records(definition, parameters, store, records, display_name, max_parallel, region, control)
        except BaseException:
            self._run_lock.release()
            raise
        self.steps = StepRunner(
            info=self.info, variables=self.variables, parameters=parameters, entries=self.entries, store=store,
            outputs=self.outputs, processes=self.processes, cache=StepCache(store, pipeline_name),
            use_cache=use_cache, retry_interval_scale=retry_interval_scale, lambdas=lambdas,
            logs_dir=self.recorder.logs_dir, work_root=self.work_root, record_step=self._record_step, emit=self.emit,
            experiment=self.experiment, run_child=self._attempt,
            record_request=lambda name, request: self.recorder.save_step_properties(name, request, None))
        self.reused: list[str] = []  # steps a selective execution took from its reference
        if control.selection is not None:
            self._apply_selection(control.selection)

    def _apply_selection(self, selection: Selection) -> None:
        """A selective execution: the steps not selected take the reference's outputs, or do not run."""
        for name in self.order:
            if name in selection.selected or self.status.get(name) == "Succeeded":  # selected, or kept by a resume
                continue
            reused = selection.reused.get(name)
            if reused is None:
                self.status[name] = "NotExecuted"
                self._record_step(name, StepStatus="NotExecuted", Metadata={}, FailureReason=None)
                continue
            properties, property_files = reused["Properties"], reused["PropertyFiles"] or None
            self.reused.append(name)
            self.outputs.add(name, properties, property_files)
            self.status[name] = "Succeeded"
            if self.entries[name].type == "Condition":
                self.branch_taken[name] = "IfSteps" if properties.get("Outcome") == "True" else "ElseSteps"
            self.recorder.save_step_properties(name, properties, property_files)  # what a resume reuses
            entry = reused["Entry"]
            self._record_step(name, StepStatus="Succeeded", StartTime=entry.get("StartTime"),
                              EndTime=entry.get("EndTime"), Metadata=entry.get("Metadata") or {},
                              AttemptCount=entry.get("AttemptCount"),
                              SelectiveExecutionResult={"SourcePipelineExecutionArn": selection.reference_arn})

    def _start_records(self, definition, parameters, store, records: ExecutionRecords, display_name, max_parallel,
                       region, control: _Control) -> None:
        pipeline_name, execution_id = records.pipeline_name, records.execution_id
        previous = self._read_for_resume(store, pipeline_name, execution_id) if control.resume else None
        if not previous and records.describe_file.exists():
            raise InvalidInput(f"execution id {execution_id} of pipeline {pipeline_name} is already taken "
                               "(to continue that execution, resume it)")
        arn = pipeline_arn(pipeline_name, region)
        # A resumed execution keeps its start time: Execution.StartDateTime must resolve as before.
        start_time = previous["describe"]["CreationTime"] if previous else utc_now()
        self.info = ExecutionInfo(pipeline_name, execution_id, execution_arn(pipeline_name, execution_id, region),
                                  region, start_time)
        self.variables = {
            "PipelineExecutionId": execution_id, "PipelineExecutionArn": self.info.execution_arn,
            "PipelineName": pipeline_name, "PipelineArn": arn, "StartDateTime": self.info.start_time,
        }
        try:
            experiment = resolve(definition.get("PipelineExperimentConfig"), ExpressionContext(parameters, self.variables))
        except ExpressionError as exc:
            raise DefinitionError(f"PipelineExperimentConfig: {exc}") from None
        self.experiment = experiment if isinstance(experiment, dict) else None
        describe = new_execution_describe(
            pipeline_name, execution_id, region=region, display_name=display_name, status="Executing",
            parameters=parameters, max_parallel=max_parallel, created=self.info.start_time,
            fields={"PipelineExperimentConfig": experiment, **control.describe_fields})
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
            records.stop_request_file.unlink(missing_ok=True)  # a stale request from an earlier run
            write_text_atomic(records.definition_file, _json(definition))
        except OSError as exc:
            # Nothing half-made stays behind: the run never started (a resumed execution keeps its records).
            made = [self.work_root] if previous else [self.work_root, records.dir]
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
        _require_resumable(describe, pipeline_name, execution_id)
        return {"describe": describe, "steps": records.steps(pipeline_name, execution_id),
                "properties": records.step_properties(pipeline_name, execution_id)}

    def _adopt(self, previous: dict) -> list[dict]:
        """Take over the succeeded steps of the execution being resumed; returns their step entries."""
        kept = []
        for entry in previous["steps"]:
            name = entry.get("StepName")
            saved = previous["properties"].get(name)
            if entry.get("StepStatus") != "Succeeded" or name not in self.order or saved is None:
                continue  # failed, stopped, skipped or unknown: runs (or is skipped) again
            self.outputs.add(name, saved["Properties"], saved.get("PropertyFiles"))
            self.status[name] = "Succeeded"
            if self.entries[name].type == "Condition":
                self.branch_taken[name] = "IfSteps" if saved["Properties"].get("Outcome") == "True" else "ElseSteps"
            kept.append(entry)
        # The children of a ForEach step that succeeded stay listed with it; those of one that runs again go.
        kept.extend(entry for entry in previous["steps"]
                    if self.status.get((entry.get("IterationContext") or {}).get("ParentStepName")) == "Succeeded")
        return kept

    def _stop_requested(self) -> bool:
        if self.stop.is_set():
            return True
        request = read_stop_request(self.recorder.records)
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
                  records_dir=str(self.recorder.dir),
                  resumed_steps=sorted(name for name, status in self.status.items()
                                       if status == "Succeeded" and name not in self.reused),
                  reused_steps=sorted(self.reused))
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
            self._run_lock.release()

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
        if isinstance(error, StopRequested):
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
        self.recorder.records.stop_request_file.unlink(missing_ok=True)  # honoured (or too late): the record says so
        if not keep_sandbox():
            shutil.rmtree(self.work_root, ignore_errors=True)
        self.emit(event="execution_finished", status=status, reason=reason)
        return PipelineResult(
            execution_id=self.info.execution_id, execution_arn=self.info.execution_arn,
            pipeline_name=self.info.pipeline_name, status=status, failure_reason=reason,
            steps=self.recorder.step_list(), property_files=self.outputs.property_files, root=self.store.root,
            records_dir=self.recorder.dir, _describe=dict(self.recorder.describe),
        )

    # ---- one step --------------------------------------------------------------------------
    def _run_step(self, name: str) -> None:
        entry = self.entries[name]
        try:
            outcome = self._attempt(entry)
        except StepFailed as failure:
            with self._lock:
                self.status[name] = "Failed"
                self.failures.append((name, failure))
            return
        # Only now, with its EndTime recorded, does the step count as Succeeded: the scheduler releases its
        # dependents then, so no dependent is ever recorded as starting before that EndTime.
        with self._lock:
            self.status[name] = "Succeeded"
            if entry.type == "Condition":
                self.branch_taken[name] = "IfSteps" if outcome.properties["Outcome"] == "True" else "ElseSteps"

    def _attempt(self, entry: StepEntry, iteration: Iteration | None = None) -> StepOutcome:
        """Run one step (or a ForEach body step's child) and record it from start to end; returns its outcome.

        StepFailed and StopRequested are raised once the step's end is recorded.
        """
        name = iteration.child(entry.name) if iteration else entry.name
        extra = {"IterationContext": iteration.context()} if iteration else {}
        started = time.monotonic()
        self._record_step(name, StepStatus="Executing", StartTime=utc_now(), AttemptCount=1, Metadata={}, **extra)
        self.emit(event="step_started", step=name, type=entry.type)
        try:
            outcome, cache_hit, attempts = self.steps.run(entry, iteration)
        except StopRequested as stop:
            self._record_step(name, StepStatus="Stopped", EndTime=utc_now(), Metadata=stop.metadata)
            self.emit(event="step_stopped", step=name, type=entry.type, duration=time.monotonic() - started)
            raise
        except StepFailed as failure:
            self._record_step(name, StepStatus="Failed", EndTime=utc_now(), FailureReason=failure.reason,
                              Metadata=failure.metadata or None)
            self.emit(event="step_failed", step=name, type=entry.type, duration=time.monotonic() - started,
                      reason=failure.reason)
            raise
        self.outputs.add(name, outcome.properties)
        property_files = self.outputs.property_files_of(name)
        self.recorder.save_step_properties(name, outcome.properties, property_files)  # what a resume reuses
        fields = {"StepStatus": "Succeeded", "EndTime": utc_now(), "Metadata": outcome.metadata, "AttemptCount": attempts}
        if cache_hit:
            fields["CacheHitResult"] = {"SourcePipelineExecutionArn": outcome.metadata.get("_source")}
            fields["Metadata"] = {k: v for k, v in outcome.metadata.items() if k != "_source"}
        self._record_step(name, **fields)
        self.emit(event="step_succeeded", step=name, type=entry.type, duration=time.monotonic() - started,
                  cache_hit=cache_hit)
        return outcome


def _remove_empty_parents(path: Path, stop: Path) -> None:
    """Remove the now-empty directories between ``path`` and ``stop`` (exclusive)."""
    for parent in path.parents:
        if parent == stop or stop not in parent.parents:
            return
        try:
            parent.rmdir()
        except OSError:
            return


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
