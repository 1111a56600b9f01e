"""One step of a local execution: its arguments, its cache, its attempts and retries, its property files.

The scheduler (:mod:`sm_pipeline.local.runner`) decides *when* a step runs and records what happened;
:class:`StepRunner` does *what* running it means. Which function runs a step is the step kind's row in
:mod:`sm_pipeline.step_kinds` (imported when a step of that kind first runs), so a new kind needs no
change here:

1. a kind evaluated in place (Condition, ForEach) is called once, with the execution's expressions (a ForEach
   runs its body steps through ``ctx.run_child``, each as the child ``<body step>-<index>`` of an
   :class:`Iteration`, whose expressions see the iteration's item and its sibling children);
2. any other kind's Arguments are resolved and checked against the request shape SageMaker's
   Create*Job would accept (a failure is the step's ``ValidationException``);
3. a cacheable kind with ``CacheConfig`` enabled reuses an earlier execution's outcome for the same key;
4. otherwise the step is attempted in a sandbox ``<root>/.airsage/work/<execution>/<step>/attempt-<n>``,
   again while its RetryPolicies allow, and its property files are read from its outputs.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sm_pipeline.cache_config import cache_config
from sm_pipeline.definition_schema import argument_problems
from sm_pipeline.errors import InvalidInput, one_line
from sm_pipeline.expressions import (
    NO_ITEM,
    ExpressionContext,
    ExpressionError,
    render,
    resolve,
)
from sm_pipeline.json_limits import JsonLimitError
from sm_pipeline.json_limits import loads as json_loads
from sm_pipeline.local.cache import CACHE_PLACEHOLDERS, StepCache, cache_key, code_hash
from sm_pipeline.local.jobs import ExecutionInfo, JobContext, StepFailed, StepOutcome, job_name
from sm_pipeline.local.models import model_containers
from sm_pipeline.local.processes import JobProcesses, StopRequested
from sm_pipeline.step_graph import StepEntry
from sm_pipeline.step_kinds import StepKind, kind_of
from sm_pipeline.storage import ObjectStore, os_error_text

StepFunction = Callable[[Any, JobContext], StepOutcome]
_IMPLEMENTATIONS: dict[str, StepFunction] = {}


def implementation(kind: StepKind) -> StepFunction:
    """The local runner's function for ``kind`` (its ``"module:function"``, imported once); StepFailed if none."""
    if kind.local is None:
        raise StepFailed(f"step type {kind.type!r} is not runnable locally")
    if kind.local not in _IMPLEMENTATIONS:
        module, _, function = kind.local.partition(":")
        _IMPLEMENTATIONS[kind.local] = getattr(importlib.import_module(module), function)
    return _IMPLEMENTATIONS[kind.local]


def keep_sandbox() -> bool:
    """True when AIRSAGE_KEEP_SANDBOX=1 asks to keep the sandboxes of failed steps, for debugging."""
    # Off by default: inputs there are hard links anyway, and outputs were published or are worthless.
    return os.environ.get("AIRSAGE_KEEP_SANDBOX", "") == "1"


@dataclass(frozen=True)
class Iteration:
    """One item of a ForEach step: the scope in which its body steps run as children ``<body step>-<index>``.

    In a child's expressions ``ForEach.CurrentItem`` is ``item`` and ``Steps.<body step>...`` is that body
    step's child of the same iteration.
    """

    parent: str
    index: int
    item: Any
    body: tuple[str, ...]

    def child(self, body_step: str) -> str:
        """The name a body step runs under in this iteration (SageMaker's ``<body step>-<index>``)."""
        return f"{body_step}-{self.index}"

    def context(self) -> dict:
        """ListPipelineExecutionSteps' ``IterationContext`` of this iteration's children."""
        return {"ParentStepName": self.parent, "Index": self.index, "Item": render(self.item)}


class StepOutputs:
    """What the succeeded steps of one execution left for later ones: their properties and property files.

    Shared by the steps running in parallel and the scheduler, hence the lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.properties: dict[str, dict] = {}
        self.property_files: dict[str, dict[str, Any]] = {}

    def add(self, step: str, properties: dict, property_files: dict | None = None) -> None:
        """A succeeded step's properties (what ``Get Steps.<step>...`` reads) and, if any, its property files."""
        with self._lock:
            self.properties[step] = properties
            if property_files:
                self.property_files[step] = property_files

    def add_property_files(self, step: str, property_files: dict[str, Any]) -> None:
        """The property files read from a step's outputs (before its properties are known to be final)."""
        with self._lock:
            self.property_files[step] = property_files

    def property_files_of(self, step: str) -> dict[str, Any] | None:
        """The property files a step left, or None."""
        with self._lock:
            return self.property_files.get(step)

    def properties_snapshot(self) -> dict[str, dict]:
        """Every succeeded step's properties, as they are now."""
        with self._lock:
            return dict(self.properties)

    def read_property_file(self, step: str, name: str) -> Any:
        """The parsed property file ``name`` of ``step``; ExpressionError if it was not read."""
        with self._lock:
            files = self.property_files.get(step, {})
        if name not in files:
            raise ExpressionError(f"property file {name} of step {step} was not read (did the step succeed?)")
        return files[name]


class StepRunner:
    """Runs the steps of one execution: ``run(entry) -> (outcome, cache hit, attempts)``; StepFailed when it fails.

    ``record_step(name, **fields)`` updates the step's record, ``emit(**event)`` tells the caller's listener.
    """

    def __init__(self, *, info: ExecutionInfo, variables: dict[str, Any], parameters: dict[str, Any],
                 entries: dict[str, StepEntry], store: ObjectStore, outputs: StepOutputs, processes: JobProcesses,
                 cache: StepCache, use_cache: bool, retry_interval_scale: float, lambdas: dict[str, Callable],
                 logs_dir: Path, work_root: Path, record_step: Callable[..., None], emit: Callable[..., None],
                 experiment: dict | None = None, run_child: Callable[..., StepOutcome] | None = None,
                 record_request: Callable[[str, dict], None] | None = None):
        self.info = info
        self.variables = variables
        self.parameters = parameters
        self.entries = entries
        self.store = store
        self.outputs = outputs
        self.processes = processes
        self.cache = cache
        self.use_cache = use_cache
        self.retry_interval_scale = retry_interval_scale
        self.lambdas = lambdas
        self.logs_dir = logs_dir
        self.work_root = work_root
        self.record_step = record_step
        self.emit = emit
        self.experiment = experiment
        self.run_child = run_child
        self.record_request = record_request

    def run(self, entry: StepEntry, iteration: Iteration | None = None) -> tuple[StepOutcome, bool, int]:
        """Run one step (or, with ``iteration``, a ForEach body step's child) to its outcome.

        StepFailed when it fails, StopRequested when the execution stops.
        """
        kind = kind_of(entry.type)
        function = implementation(kind)
        step = entry.step
        name = iteration.child(entry.name) if iteration else entry.name
        if kind.in_place:
            ctx = self._context(entry, kind, job="", work_dir=self.work_root / name)
            return function(None, ctx), False, 1
        job = job_name(self.info.execution_id, name)
        try:
            arguments = resolve(step.get("Arguments") or {}, self._expression_context(job, iteration=iteration))
        except ExpressionError as exc:
            raise StepFailed(f"arguments could not be resolved: {exc}") from exc
        problems = argument_problems(kind.type, arguments)
        if problems:
            # What SageMaker's Create*Job would refuse; checked here so that no step implementation
            # meets a value of the wrong shape.
            raise StepFailed("ValidationException: " + one_line("; ".join(problems)))

        enabled, expire_after = cache_config(step) if self.use_cache and kind.cacheable else (False, None)
        key = None
        if enabled:
            key = cache_key(kind.type, resolve(step.get("Arguments") or {},
                                               self._expression_context(placeholders=True, iteration=iteration)),
                            code_hash(kind.type, arguments, self.store))
            cached = self.cache.lookup(key, expire_after)
            if cached is not None:
                outcome = StepOutcome(cached["Properties"],
                                      {**cached["Metadata"], "_source": cached["SourcePipelineExecutionArn"]},
                                      cached["OutputUris"])
                self._read_property_files(entry, outcome, name)
                return outcome, True, 1

        attempt = 0
        first_failure = time.monotonic()
        while True:
            attempt += 1
            work_dir = self.work_root / name / f"attempt-{attempt}"
            ctx = self._context(entry, kind, job=job, work_dir=work_dir, name=name)
            if kind.job and self.record_request is not None:
                # What Describe<Job> answers while the job runs, and after it failed or was stopped.
                self.record_request(name, {**arguments, f"{kind.job}Name": job, f"{kind.job}Arn": ctx.made_arn()})
            try:
                if self.processes.stop_event.is_set():
                    raise StopRequested()
                work_dir.mkdir(parents=True, exist_ok=True)
                outcome = function(arguments, ctx)
                self._read_property_files(entry, outcome, name)
                break
            except StopRequested as stop:
                if kind.job:  # SageMaker lists a stopped job's ARN as well
                    stop.metadata = ctx.step_metadata(Arn=ctx.made_arn())
                raise
            except StepFailed as failure:
                if not failure.metadata and kind.job:
                    # SageMaker lists the failed job's ARN in the step's metadata, as for a succeeded one.
                    failure.metadata = ctx.step_metadata(Arn=ctx.made_arn())
                delay = self._retry_delay(step, failure, attempt, time.monotonic() - first_failure)
                if delay is None:
                    raise
                self.record_step(name, AttemptCount=attempt + 1)
                self.emit(event="step_retrying", step=name, attempt=attempt, delay=delay, reason=failure.reason)
                if self.processes.stop_event.wait(delay):
                    raise StopRequested() from None
                job = job_name(self.info.execution_id, name)
            except OSError as exc:
                raise StepFailed(f"Step.SERVICE_FAULT: {one_line(os_error_text(exc))}", "Step.SERVICE_FAULT") from exc
            finally:
                if self.processes.stop_event.is_set() or not keep_sandbox():
                    shutil.rmtree(work_dir, ignore_errors=True)
        if key is not None:
            self.cache.save(key, properties=outcome.properties, metadata=outcome.metadata,
                            output_uris=outcome.output_uris, execution_arn=self.info.execution_arn)
        return outcome, False, attempt

    def _context(self, entry: StepEntry, kind: StepKind, *, job: str, work_dir: Path, name: str | None = None) -> JobContext:
        return JobContext(name=name or entry.name, execution=self.info, store=self.store, work_dir=work_dir,
                          logs_dir=self.logs_dir, processes=self.processes, job_name=job, kind=kind, step=entry.step,
                          expressions=self._expression_context() if kind.in_place else None, lambdas=self.lambdas,
                          run_child=self.run_child)

    def _expression_context(self, job: str | None = None, placeholders: bool = False,
                            iteration: Iteration | None = None) -> ExpressionContext:
        variables = dict(self.variables)
        if placeholders:
            variables = dict(CACHE_PLACEHOLDERS)
        elif job:
            variables.update(TrainingJobName=job, ProcessingJobName=job)
        records = self.outputs.properties_snapshot()
        if placeholders:
            # Every execution names its models anew; for the cache a model is what it contains.
            for name, record in records.items():
                entry = self.entries.get(name)
                if entry is not None and entry.type == "Model":
                    content = hashlib.sha256(_json(model_containers(record)).encode()).hexdigest()[:16]
                    records[name] = {**record, "ModelName": f"<model {content}>", "ModelArn": f"<model {content}>"}
        if iteration is not None:
            # Inside an iteration a body step's name means its child of the same iteration.
            records.update({body: records[iteration.child(body)] for body in iteration.body
                            if iteration.child(body) in records})
        return ExpressionContext(parameters=self.parameters, execution_variables=variables, step_records=records,
                                 read_property_file=self._property_file_reader(iteration),
                                 read_json_uri=self._read_json_uri, experiment=self.experiment,
                                 current_item=iteration.item if iteration is not None else NO_ITEM)

    def _property_file_reader(self, iteration: Iteration | None) -> Callable[[str, str], Any]:
        if iteration is None:
            return self.outputs.read_property_file
        return lambda step, name: self.outputs.read_property_file(
            iteration.child(step) if step in iteration.body else step, name)

    def _read_json_uri(self, uri: str) -> Any:
        try:
            return json_loads(self.store.read_bytes(uri))
        except JsonLimitError as exc:
            raise ExpressionError(f"{uri}: {exc}") from None

    def _read_property_files(self, entry: StepEntry, outcome: StepOutcome, name: str) -> None:
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
        self.outputs.add_property_files(name, read)

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


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, default=str)
