"""Run a SageMaker pipeline definition JSON locally: plan, schedule, execute, record.

Everything that can be checked before a step runs is checked first (definition, parameters, step
types, images, entrypoints, Lambda functions), so an invalid run fails at once with one error. Steps
then run as soon as their dependencies succeeded, up to ``max_parallel`` at a time.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import signal
import string
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sm_pipeline.errors import DefinitionError, InvalidInput
from sm_pipeline.expressions import EXECUTION_VARIABLES, ExpressionContext, ExpressionError, render, resolve
from sm_pipeline.local.cache import CACHEABLE_TYPES, StepCache, cache_config, cache_key, code_hash
from sm_pipeline.local.control_steps import lambda_callable, run_condition, run_fail, run_lambda
from sm_pipeline.local.images import has_local_equivalent, is_xgboost_image
from sm_pipeline.local.jobs import (
    ACCOUNT_ID,
    ExecutionInfo,
    JobContext,
    StepFailed,
    StepOutcome,
    StopRequested,
    is_runnable_entrypoint,
    job_name,
    local_region,
)
from sm_pipeline.local.models import model_containers, run_model
from sm_pipeline.local.parameters import cast_parameters
from sm_pipeline.local.processes import JobProcesses
from sm_pipeline.local.processing import run_processing
from sm_pipeline.local.records import ExecutionRecorder, utc_now
from sm_pipeline.local.registry import run_register_model
from sm_pipeline.local.training import run_training
from sm_pipeline.local.transform import run_transform
from sm_pipeline.storage import DEFAULT_ROOT, INTERNAL_DIR, ObjectStore
from sm_pipeline.storage_io import write_text_atomic
from sm_pipeline.validate import (
    StepEntry,
    flatten_steps,
    load_definition,
    step_dependencies,
    validate_definition,
)

SUPPORTED_STEP_TYPES = ("Processing", "Training", "Transform", "Condition", "Fail", "RegisterModel", "Model", "Lambda")
RETRY_SCALE_ENV = "AIRSAGE_RETRY_INTERVAL_SCALE"

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


def _new_execution_id() -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(12))


def run_pipeline(
    definition: dict | str | Path,
    parameters: Mapping[str, Any] | None = None,
    root: Path | str | None = None,
    pipeline_name: str = "abalone-local",
    display_name: str | None = None,
    max_parallel: int = 2,
    on_event: Callable[[dict], None] | None = None,
    *,
    lambdas: Mapping[str, Callable[[dict], dict]] | None = None,
    use_cache: bool = True,
    retry_interval_scale: float | None = None,
) -> PipelineResult:
    """Execute a pipeline definition locally and return its result (never raises for a failed step).

    Raises InvalidInput (DefinitionError for the definition) before any step runs when the definition,
    a parameter, a step type, an image or a Lambda function cannot be run locally.
    """
    definition, values, entries, handlers = preflight(definition, parameters, max_parallel, lambdas=lambdas)
    if retry_interval_scale is None:
        retry_interval_scale = float(os.environ.get(RETRY_SCALE_ENV, "1"))
    execution = _Execution(definition, entries, values, ObjectStore(root or os.environ.get("AIRSAGE_LOCAL_ROOT") or DEFAULT_ROOT),
                           pipeline_name, display_name, max_parallel, on_event, handlers, use_cache, retry_interval_scale)
    return execution.run()


def preflight(
    definition: dict | str | Path,
    parameters: Mapping[str, Any] | None = None,
    max_parallel: int = 2,
    *,
    lambdas: Mapping[str, Callable[[dict], dict]] | None = None,
) -> tuple[dict, dict[str, Any], list[StepEntry], dict[str, Callable[[dict], dict]]]:
    """Every check :func:`run_pipeline` makes before it writes anything; raises InvalidInput.

    Returns (definition, parameter values, flattened steps, Lambda handlers). Callers that prepare
    the object root for a run (``run-local --code-dir``/``--stage-data``) call it first, so an
    invalid run is refused before anything is written.
    """
    definition = load_definition(definition)
    problems = validate_definition(definition)
    if problems:
        raise DefinitionError("invalid pipeline definition: " + "; ".join(problems))
    if max_parallel < 1:
        raise InvalidInput(f"max_parallel must be at least 1, not {max_parallel}")
    values = cast_parameters(definition.get("Parameters") or [], parameters)
    handlers = {**_REGISTERED_LAMBDAS, **(lambdas or {})}
    entries = flatten_steps(definition)
    check_runnable(entries, values, handlers)
    return definition, values, entries, handlers


def check_runnable(entries: list[StepEntry], parameters: dict, lambdas: Mapping[str, Callable]) -> None:
    """DefinitionError naming every step that has no local equivalent (type, image, entrypoint, Lambda)."""
    ctx = ExpressionContext(parameters=parameters)
    problems: list[str] = []

    def literal(value: Any) -> Any:
        try:
            return resolve(value, ctx)
        except ExpressionError:
            return None  # depends on other steps: checked when the step runs

    for entry in entries:
        name, kind, step = entry.name, entry.type, entry.step
        arguments = step.get("Arguments") or {}
        if kind not in SUPPORTED_STEP_TYPES:
            problems.append(f"step {name!r}: step type {kind!r} is not runnable locally")
            continue
        try:
            cache_config(step)
        except DefinitionError as exc:
            problems.append(f"step {name!r}: {exc}")
        if kind == "Processing":
            image = literal((arguments.get("AppSpecification") or {}).get("ImageUri"))
            if image is not None and not has_local_equivalent(image):
                problems.append(f"step {name!r}: image {image!r} has no local equivalent")
            entrypoint = literal((arguments.get("AppSpecification") or {}).get("ContainerEntrypoint"))
            if not is_runnable_entrypoint(entrypoint):
                problems.append(f"step {name!r}: ContainerEntrypoint {entrypoint!r} has no local equivalent "
                                "(expected python/python3 or a shell)")
        elif kind == "Training":
            algorithm = arguments.get("AlgorithmSpecification") or {}
            image = literal(algorithm.get("TrainingImage"))
            if algorithm.get("AlgorithmName"):
                problems.append(f"step {name!r}: marketplace algorithm {algorithm['AlgorithmName']!r} has no local equivalent")
            elif image is not None and not has_local_equivalent(image):
                problems.append(f"step {name!r}: image {image!r} has no local equivalent")
            elif image is not None and not is_xgboost_image(image) and "sagemaker_program" not in (arguments.get("HyperParameters") or {}) \
                    and not algorithm.get("ContainerEntrypoint"):
                problems.append(f"step {name!r}: image {image!r} needs a training script (sagemaker_program) to run locally")
        elif kind == "Model":
            for container in model_containers(arguments):
                image = literal(container.get("Image"))
                if image is not None and not has_local_equivalent(image):
                    problems.append(f"step {name!r}: model image {image!r} has no local equivalent")
        elif kind == "Lambda" and lambda_callable(step, lambdas) is None:
            problems.append(f"step {name!r}: Lambda function {step.get('FunctionArn')!r} is not runnable locally "
                            "(register a Python callable with sm_pipeline.local.register_lambda)")
    if problems:
        raise DefinitionError("cannot run locally: " + "; ".join(problems))


class _Stopped(Exception):
    """Internal: the step was stopped."""


class _Execution:
    """One execution's state, scheduler and step runner."""

    def __init__(self, definition, entries, parameters, store, pipeline_name, display_name, max_parallel,
                 on_event, lambdas, use_cache, retry_interval_scale):
        self.entries = {entry.name: entry for entry in entries}
        self.order = [entry.name for entry in entries]
        self.deps = {entry.name: step_dependencies(entry) for entry in entries}
        self.parameters = parameters
        self.store = store
        self.max_parallel = max_parallel
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
        execution_id = _new_execution_id()
        pipeline_arn = f"arn:aws:sagemaker:{region}:{ACCOUNT_ID}:pipeline/{pipeline_name.lower()}"
        self.info = ExecutionInfo(pipeline_name, execution_id, f"{pipeline_arn}/execution/{execution_id}",
                                  region, utc_now())
        self.variables = {
            "PipelineExecutionId": execution_id, "PipelineExecutionArn": self.info.execution_arn,
            "PipelineName": pipeline_name, "PipelineArn": pipeline_arn, "StartDateTime": self.info.start_time,
        }
        experiment = resolve(definition.get("PipelineExperimentConfig"), ExpressionContext(parameters, self.variables))
        self.recorder = ExecutionRecorder(store.root, {
            "PipelineName": pipeline_name,
            "PipelineExecutionId": execution_id,
            "PipelineArn": pipeline_arn,
            "PipelineExecutionArn": self.info.execution_arn,
            "PipelineExecutionDisplayName": display_name or execution_id,
            "PipelineExecutionStatus": "Executing",
            "PipelineExperimentConfig": experiment,
            "ParallelismConfiguration": {"MaxParallelExecutionSteps": max_parallel},
            "PipelineParameters": [{"Name": k, "Value": render(v)} for k, v in parameters.items()],
            "CreationTime": self.info.start_time,
            "LastModifiedTime": self.info.start_time,
            "CreatedBy": {}, "LastModifiedBy": {},
        })
        write_text_atomic(self.recorder.dir / "definition.json", _json(definition))
        self.work_root = store.root / INTERNAL_DIR / "work" / execution_id

    # ---- events and records -------------------------------------------------------------------
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
                    self.recorder.update_step(name, StepStatus="NotExecuted", Metadata={}, FailureReason=None)
                    self.emit(event="step_not_executed", step=name, type=self.entries[name].type, reason=reason)
                    changed = True

    def run(self) -> PipelineResult:
        stopped = False
        previous_sigterm = _raise_keyboard_interrupt_on_sigterm()
        pool = ThreadPoolExecutor(max_workers=self.max_parallel, thread_name_prefix="airsage-step")
        running: dict[Future, str] = {}
        try:
            while True:
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
        except KeyboardInterrupt:
            stopped = True
            self.processes.stop_all()
            self._drain(running)
        finally:
            pool.shutdown(wait=True)
            _restore_sigterm(previous_sigterm)
        return self._conclude(stopped)

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
        # A bug in the runner itself: fail the step rather than hang the scheduler.
        failure = StepFailed(f"internal error in the local runner: {type(error).__name__}: {error}")
        self.status[name] = "Failed"
        self.failures.append((name, failure))
        self.recorder.update_step(name, StepStatus="Failed", EndTime=utc_now(), FailureReason=failure.reason)

    def _conclude(self, stopped: bool) -> PipelineResult:
        if stopped or (any(s == "Stopped" for s in self.status.values()) and not self.failures):
            status, reason = "Stopped", "Execution stopped by the user (Ctrl-C or SIGTERM)"
        elif self.failures:
            name, failure = self.failures[0]
            status = "Failed"
            reason = failure.reason if failure.error_type == "Fail" else f"Step failure: {name}: {failure.reason}"
        else:
            status, reason = "Succeeded", None
        self.recorder.update_execution(PipelineExecutionStatus=status, FailureReason=reason, EndTime=utc_now())
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
            return json.loads(self.store.read_bytes(uri))
        except json.JSONDecodeError as exc:
            raise ExpressionError(f"{uri}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc

    def _run_step(self, name: str) -> None:
        entry = self.entries[name]
        started = time.monotonic()
        self.recorder.update_step(name, StepStatus="Executing", StartTime=utc_now(), AttemptCount=1, Metadata={})
        self.emit(event="step_started", step=name, type=entry.type)
        cache_hit = False
        try:
            outcome, cache_hit, attempts = self._execute(entry)
        except (_Stopped, StopRequested):
            self.recorder.update_step(name, StepStatus="Stopped", EndTime=utc_now())
            self.emit(event="step_stopped", step=name, type=entry.type, duration=time.monotonic() - started)
            raise
        except StepFailed as failure:
            with self._lock:
                self.status[name] = "Failed"
                self.failures.append((name, failure))
            self.recorder.update_step(name, StepStatus="Failed", EndTime=utc_now(), FailureReason=failure.reason,
                                      Metadata=failure.metadata or None)
            self.emit(event="step_failed", step=name, type=entry.type, duration=time.monotonic() - started,
                      reason=failure.reason)
            return
        with self._lock:
            self.records[name] = outcome.properties
            self.status[name] = "Succeeded"
            if entry.type == "Condition":
                self.branch_taken[name] = "IfSteps" if outcome.properties["Outcome"] == "True" else "ElseSteps"
        fields = {"StepStatus": "Succeeded", "EndTime": utc_now(), "Metadata": outcome.metadata, "AttemptCount": attempts}
        if cache_hit:
            fields["CacheHitResult"] = {"SourcePipelineExecutionArn": outcome.metadata.get("_source")}
            fields["Metadata"] = {k: v for k, v in outcome.metadata.items() if k != "_source"}
        self.recorder.update_step(name, **fields)
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
                delay = self._retry_delay(step, failure, attempt, time.monotonic() - first_failure)
                if delay is None:
                    raise
                self.recorder.update_step(name, AttemptCount=attempt + 1)
                self.emit(event="step_retrying", step=name, attempt=attempt, delay=delay, reason=failure.reason)
                if self.processes.stop_event.wait(delay):
                    raise _Stopped() from None
                job = job_name(self.info.execution_id, name)
            except OSError as exc:
                raise StepFailed(f"Step.SERVICE_FAULT: {exc}", "Step.SERVICE_FAULT") from exc
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
