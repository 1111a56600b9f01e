"""RunLocalPipelineOperator: the local backend's start + wait, on ``sm_pipeline.local``."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from airsage.links.local_execution import LocalExecutionLink


class LocalExecutions:
    """The execution policy's backend on an object root (``airsage.execution_policy.ExecutionBackend``).

    Reads are the runner's records; ``start`` and ``resume`` run the execution in this process (the
    operator's ``_run``) and keep its result in :attr:`last_run`.
    """

    def __init__(self, operator: RunLocalPipelineOperator, pipeline_name: str, definition: dict):
        from sm_pipeline.local import LocalExecutionStore

        self.operator = operator
        self.pipeline_name = pipeline_name
        self.definition = definition
        self.records = LocalExecutionStore(Path(operator.local_root))
        self.last_run = None
        # the version upsert_pipeline stored the definition as (recorded on a run of the latest definition)
        self.deployed_version = (operator.pipeline or {}).get("pipeline_version_id")

    @staticmethod
    def _id(arn: str) -> str:
        from sm_pipeline.arns import execution_id_of

        return execution_id_of(arn)

    def find(self, display_name: str) -> list[dict]:
        return self.records.find(self.pipeline_name, display_name=display_name)

    def list_by_prefix(self, display_prefix: str) -> list[dict]:
        return self.records.find(self.pipeline_name, display_prefix=display_prefix)

    def describe(self, arn: str) -> dict:
        return self.records.describe(self.pipeline_name, self._id(arn))

    def steps(self, arn: str) -> list[dict] | None:
        try:
            return self.records.steps(self.pipeline_name, self._id(arn))
        except (FileNotFoundError, ValueError):
            return []  # a runner that died before writing its steps

    def definition_of(self, arn: str) -> dict:
        from airsage.execution_policy import DefinitionUnreadable

        try:
            return self.records.definition(self.pipeline_name, self._id(arn))
        except (FileNotFoundError, ValueError) as err:
            raise DefinitionUnreadable(str(err)) from None

    def resume(self, arn: str, token: str) -> str:
        self.last_run = self.operator._run(self.definition, {}, self.pipeline_name, None, resume=self._id(arn))
        return arn

    def start(self, display_name: str, parameters: dict[str, str], token: str, description: str, *,
              version: int | None = None, selective: dict | None = None) -> str:
        self.last_run = self.operator._run(self.definition, parameters, self.pipeline_name, display_name,
                                           description=description, version=version or self.deployed_version,
                                           selective=selective)
        return self.last_run.execution_arn

    def _versions(self):
        from sm_pipeline.pipeline_versions import PipelineVersions, local_versions_dir

        return PipelineVersions(local_versions_dir(self.operator.local_root, self.pipeline_name))

    def version_ids(self) -> list[int]:
        return self._versions().ids()

    def version_definition(self, version: int) -> dict:
        record = self._versions().get(version)
        if record is None:
            raise ValueError(f"local pipeline {self.pipeline_name} has no version {version}")
        return json.loads(record["PipelineDefinition"])


class RunLocalPipelineOperator(BaseOperator):
    """Run the stored definition with the docker-free local runner; same XCom as start + wait.

    Idempotent per logical date and inputs, by the execution policy both backends share
    (``airsage.execution_policy``): the display name comes from (dag id, ds, fingerprint of the
    inputs: staged data hashes, definition hash, parameter values), see ``airsage.execution_inputs``.
    A Succeeded execution with that name is re-attached instead of run again, so no second model
    version is registered.

    Concurrency: the execution of a display name is claimed first (``sm_pipeline.local.claims``,
    an flock the kernel releases when its owner dies). A second try, or a second run with the
    same inputs, that overlaps waits for the owner and adopts its execution's result (Succeeded
    or Failed); if the owner died, its claim is free and the execution is taken over (started
    afresh). Failed/Stopped fail the task with the reason and the failing steps, except a
    Failed execution whose only failed steps are in ``quality_gate_steps``.

    Resume, not restart: a Failed or Stopped execution with the same inputs (a cleared run, a
    retry after the worker died) whose stored definition is the one to run is resumed in place
    (``run_pipeline(..., resume=True)``: its succeeded steps are reused, not run again); one that
    failed only at the quality gate is re-attached. ``on_kill`` (the task killed, marked failed
    or cleared) stops the running execution; it ends Stopped and the task fails with that reason.

    :param pipeline: upsert_pipeline's XCom dict (``definition_uri``, ``pipeline_name``), templated.
    :param local_root: the object root (``s3://b/k`` lives at ``<root>/b/k``).
    :param inputs: the stage task's XCom (``parameters``, ``hashes``: ``airsage.operators.stage_input``),
        templated; its parameters are passed on (``parameters`` win) and its hashes are part of the inputs
        fingerprint.
    :param max_parallel: steps at a time, as a start request's ParallelismConfiguration; None: the
        definition's ParallelismConfiguration, else 2.
    :param pipeline_version: ``latest`` (default), ``first`` (the version this date first ran with) or a
        version number (templated; ``airsage.execution_policy.version_to_run``).
    :param rerun_steps: re-run only these steps (a list or its JSON text, templated), on the outputs of
        ``rerun_reference`` (an execution ARN, or ``last``: this date's newest execution): a selective execution.
    """

    template_fields: Sequence[str] = ("pipeline", "parameters", "display_name", "local_root", "quality_gate_steps",
                                      "inputs", "pipeline_version", "rerun_steps", "rerun_reference")
    template_fields_renderers = {"parameters": "json"}
    operator_extra_links = (LocalExecutionLink(),)
    ui_color = "#eef8e8"

    def __init__(self, *, pipeline: dict | Any, local_root: str, parameters: dict[str, Any] | None = None,
                 display_name: str | None = None, quality_gate_steps: Sequence[str] = (),
                 inputs: dict | Any = None, max_parallel: int | None = None, claim_poll_interval: float = 0.5,
                 pipeline_version: str | int | None = None, rerun_steps: Any = None, rerun_reference: str | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        self.pipeline_version = pipeline_version
        self.rerun_steps = rerun_steps
        self.rerun_reference = rerun_reference
        self.pipeline = pipeline
        self.local_root = local_root
        self.parameters = parameters or {}
        self.display_name = display_name
        self.quality_gate_steps = tuple(quality_gate_steps)
        self.inputs = inputs
        self.max_parallel = max_parallel
        self.claim_poll_interval = claim_poll_interval
        self._running: tuple[str, str] | None = None  # (pipeline name, execution id) of this try's run
        self._stop = None
        self._kill_reason = "its Airflow task was killed"

    def on_kill(self) -> None:
        """The task was killed (marked failed, cleared, timed out): stop this try's execution.

        Runs in the task process's SIGTERM handler while ``execute`` still runs the execution: the
        stop handle ends it Stopped with the reason, ``execute`` then fails the task with it. The
        stop-request file does the same for a runner that is not this thread's.
        """
        from sm_pipeline.errors import InvalidInput
        from sm_pipeline.local import request_stop

        if self._running is None:
            return
        name, execution_id = self._running
        self.log.warning("Stopping local execution %s/%s: %s", name, execution_id, self._kill_reason)
        if self._stop is not None:
            self._stop.stop(self._kill_reason)
        try:
            request_stop(Path(self.local_root), name, execution_id, self._kill_reason)
        except InvalidInput:
            pass  # no records yet: the stop handle is enough

    def execute(self, context) -> dict[str, Any]:
        from airsage.execution_inputs import ExecutionInputs, run_parameters
        from airsage.execution_policy import RUNNING, selection_to_run, start_or_reattach, version_to_run
        from airsage.hooks.artifact_store import ArtifactStore
        from airsage.naming import run_ds
        from airsage.operators.start_execution import kill_reason
        from airsage.pipeline_source import definition_sha256
        from sm_pipeline.errors import InvalidInput
        from sm_pipeline.local.claims import ExecutionClaim
        from sm_pipeline.local.selective import check_selection
        from sm_pipeline.parameters import start_request_values
        from sm_pipeline.step_graph import flatten_steps

        name = self.pipeline["pipeline_name"]
        root = Path(self.local_root)
        definition = json.loads(ArtifactStore("local", local_root=self.local_root).read_bytes(
            self.pipeline["definition_uri"]))
        backend = LocalExecutions(self, name, definition)
        where = {"dag_id": context["dag"].dag_id, "ds": run_ds(context), "log": self.log}
        try:
            version = version_to_run(backend, self.pipeline_version, **where)
            if version is not None:
                definition = backend.definition = backend.version_definition(version)
            selective = selection_to_run(backend, self.rerun_steps, self.rerun_reference, **where)
            if selective:  # SageMaker's rules, before anything starts (one line)
                check_selection(selective, flatten_steps(definition), root, name)
            values = start_request_values(definition.get("Parameters", []),
                                          run_parameters(self.parameters, self.inputs))
        except (InvalidInput, ValueError) as err:
            raise AirflowFailException(str(err)) from None
        inputs = ExecutionInputs.for_run(context, definition_sha256=definition_sha256(definition), parameters=values,
                                         staged=self.inputs, selective=selective)
        display = self.display_name or inputs.display_name()
        self._kill_reason = kill_reason(context)
        # Executions that had ended before this try waited: a Failed one among them is history (resume or
        # start afresh); one that ends while we wait belongs to a concurrent owner (adopt it).
        ended_before = frozenset(d["PipelineExecutionArn"] for d in backend.find(display)
                                 if d.get("PipelineExecutionStatus") not in RUNNING)

        def waiting(owner: dict | None, waited: float) -> None:
            who = f"pid {owner.get('Pid')} on {owner.get('Host')}" if owner else "another process"
            self.log.info("Execution %s is claimed by %s (a concurrent try or run with the same inputs); "
                          "waiting for it (%.0f s so far)", display, who, waited)

        claim = ExecutionClaim(root, name, display)
        claim.acquire(poll_interval=self.claim_poll_interval, on_wait=waiting)
        try:
            self._wait_for_unclaimed_runner(backend, display)
            decision = start_or_reattach(backend, display_name=display, inputs=inputs, definition=definition,
                                         parameters=values, quality_gate_steps=self.quality_gate_steps,
                                         log=self.log, ended_before=ended_before, version=version,
                                         selective=selective)
        finally:
            claim.release()
        if decision.ran_now:
            run = backend.last_run
            result = self._result_for(run.describe(), inputs)
            result["property_files"] = run.property_files or {}
            status, steps = run.status, run.steps
            reason = (run.failure_reason or f"the local execution ended {run.status} without a reason"
                      if run.status != "Succeeded" else "")
        else:
            describe = backend.describe(decision.arn)
            result = self._result_for(describe, inputs)
            status, steps = describe["PipelineExecutionStatus"], backend.steps(decision.arn)
            reason = describe.get("FailureReason") or ""
        return self._settle(result, context, status=status, reason=reason, steps=steps)

    def get_openlineage_facets_on_complete(self, task_instance):
        """OpenLineage (the provider calls it): the execution and its steps as runs under this task run."""
        from airsage.lineage import execution_lineage

        return execution_lineage(self, task_instance)

    def get_openlineage_facets_on_failure(self, task_instance):
        """OpenLineage for a Failed/Stopped execution: its run and its steps end FAIL / ABORT."""
        from airsage.lineage import execution_lineage

        return execution_lineage(self, task_instance)

    # -- helpers ---------------------------------------------------------------------------
    def _wait_for_unclaimed_runner(self, backend: LocalExecutions, display: str) -> None:
        """Wait while the newest execution of ``display`` runs in a runner outside the claims (``run-local``)."""
        from airsage.execution_policy import RUNNING

        found = backend.find(display)
        while found and found[0].get("PipelineExecutionStatus") in RUNNING:
            self.log.info("Execution %s is running in pid %s without a claim; waiting for it to finish",
                          found[0]["PipelineExecutionArn"], (found[0].get("LocalRunner") or {}).get("Pid"))
            time.sleep(max(self.claim_poll_interval, 0.5))
            found = backend.find(display)

    def _result_for(self, describe: dict, inputs) -> dict[str, Any]:
        from airsage.execution_result import new_result
        from airsage.links.local_execution import execution_page_url
        from sm_pipeline.local.records import ExecutionRecords

        name, arn = describe["PipelineName"], describe["PipelineExecutionArn"]
        execution_id = describe["PipelineExecutionId"]
        values = {p["Name"]: p["Value"] for p in describe.get("PipelineParameters") or []}
        result = new_result(
            "local", pipeline_name=name, execution_arn=arn, display_name=describe.get("PipelineExecutionDisplayName"),
            status=describe["PipelineExecutionStatus"], console_url=execution_page_url(name, execution_id),
            region=None, parameters=values,
        )
        result["execution_page"] = str(ExecutionRecords(self.local_root, name, execution_id).page_file.resolve())
        result["object_root"] = str(Path(self.local_root).resolve())
        result["inputs"] = inputs.record()
        # which pipeline version ran this date (durably: the execution's own record)
        result["pipeline_version_id"] = describe.get("PipelineVersionId")
        result["selective_execution_config"] = describe.get("SelectiveExecutionConfig")
        return result

    def _run(self, definition: dict, values: dict, name: str, display: str | None, *, resume: str | None = None,
             description: str | None = None, version: int | None = None, selective: dict | None = None):
        """Run (or with ``resume``, resume) the execution in this process; its PipelineResult."""
        from airsage.links.local_execution import execution_page_url
        from sm_pipeline.local import StopHandle, new_execution_id, resume_pipeline, run_pipeline

        announced: list[str] = []

        def on_event(event: dict) -> None:
            if not announced and event.get("execution_id"):
                announced.append(event["execution_id"])
                self.log.info("Execution page: %s", execution_page_url(name, event["execution_id"]))
            self.log.info("local runner: %s", json.dumps(event, default=str, sort_keys=True))

        # named in advance and stoppable, so that on_kill can stop it
        execution_id = resume or new_execution_id()
        self._stop = StopHandle()
        self._running = (name, execution_id)
        try:
            if resume:
                # the execution's own definition, parameters and display name, as RetryPipelineExecution
                return resume_pipeline(execution_id, Path(self.local_root), name, self.max_parallel, on_event,
                                       stop=self._stop)
            fields = {"PipelineExecutionDescription": description, "PipelineVersionId": version}
            return run_pipeline(definition, parameters=values, root=Path(self.local_root), pipeline_name=name,
                                display_name=display, max_parallel=self.max_parallel, on_event=on_event,
                                execution_id=execution_id, stop=self._stop,
                                describe_fields={k: v for k, v in fields.items() if v is not None} or None,
                                selective=selective)
        finally:
            self._running = None

    def _settle(self, result: dict, context, *, status: str, reason: str, steps: list[dict] | None) -> dict[str, Any]:
        from airsage.execution_result import add_steps_and_cost, failed_steps, model_package_arn, settle
        from sm_pipeline.local import LocalExecutionStore

        result["model_package_arn"] = model_package_arn(steps)
        store = LocalExecutionStore(self.local_root)
        try:
            definition = store.definition(result["pipeline_name"], result["execution_id"])
        except (OSError, ValueError):
            definition = None
        add_steps_and_cost(result, definition=definition, steps=steps, log=self.log)
        # what get_openlineage_facets_on_* reads (the provider's listener calls them after execute)
        self._lineage_result = result
        try:
            describe = store.describe(result["pipeline_name"], result["execution_id"])
        except FileNotFoundError:
            describe = None
        records = {name: saved.get("Properties") or {} for name, saved in
                   store.step_properties(result["pipeline_name"], result["execution_id"]).items()}
        self._lineage_raw = {"describe": describe, "steps": steps or [], "records": records} if describe else None
        LocalExecutionLink.persist(context=context, operator=self, url=result["console_url"])
        return settle(result, context, self.log, status=status, reason=reason, failed_steps=failed_steps(steps),
                      steps_available=True, quality_gate_steps=self.quality_gate_steps, outlets=self.outlets)
