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
from airsage.naming import run_ds

ADOPTABLE_AFTER_WAIT = frozenset({"Succeeded", "Failed"})


class RunLocalPipelineOperator(BaseOperator):
    """Run the stored definition with the docker-free local runner; same XCom as start + wait.

    Idempotent per logical date and inputs, like the SageMaker path: the display name comes
    from (dag id, ds, fingerprint of the inputs: staged data hashes, definition hash,
    parameter values), see ``airsage.execution_inputs``. A Succeeded execution with that name
    is re-attached instead of run again, so no second model version is registered.

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
    :param inputs: stage_input's XCom dict (``sha256``, ``batch_sha256``), templated; part of the
        inputs fingerprint when given.
    :param max_parallel: steps at a time, as a start request's ParallelismConfiguration; None: the
        definition's ParallelismConfiguration, else 2.
    """

    template_fields: Sequence[str] = ("pipeline", "parameters", "display_name", "local_root", "quality_gate_steps",
                                      "inputs")
    template_fields_renderers = {"parameters": "json"}
    operator_extra_links = (LocalExecutionLink(),)
    ui_color = "#eef8e8"

    def __init__(self, *, pipeline: dict | Any, local_root: str, parameters: dict[str, Any] | None = None,
                 display_name: str | None = None, quality_gate_steps: Sequence[str] = (),
                 inputs: dict | Any = None, max_parallel: int | None = None, claim_poll_interval: float = 0.5, **kwargs):
        super().__init__(**kwargs)
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
        from airsage.execution_inputs import ExecutionInputs
        from airsage.hooks.artifact_store import ArtifactStore
        from airsage.operators.start_execution import kill_reason
        from airsage.parameters import ParameterError, cast_parameters
        from airsage.pipeline_source import definition_sha256
        from sm_pipeline.local import LocalExecutionStore
        from sm_pipeline.local.claims import ExecutionClaim

        name = self.pipeline["pipeline_name"]
        root = Path(self.local_root)
        definition = json.loads(ArtifactStore("local", local_root=self.local_root).read_bytes(
            self.pipeline["definition_uri"]))
        try:
            values = cast_parameters(self.parameters, definition.get("Parameters", []))
        except ParameterError as err:
            raise AirflowFailException(str(err)) from None
        inputs = ExecutionInputs.for_run(context, definition_sha256=definition_sha256(definition), parameters=values,
                                         staged=self.inputs)
        display = self.display_name or inputs.display_name()
        self._kill_reason = kill_reason(context)
        records = LocalExecutionStore(root)
        # Terminal executions seen before the claim: a Failed one among them is history (start
        # afresh); one that ends while we wait belongs to a concurrent owner (adopt it).
        seen = {d["PipelineExecutionId"] for d in records.find(name, display_name=display)
                if d.get("PipelineExecutionStatus") != "Executing"}

        def waiting(owner: dict | None, waited: float) -> None:
            who = f"pid {owner.get('Pid')} on {owner.get('Host')}" if owner else "another process"
            self.log.info("Execution %s is claimed by %s (a concurrent try or run with the same inputs); "
                          "waiting for it (%.0f s so far)", display, who, waited)

        claim = ExecutionClaim(root, name, display)
        claim.acquire(poll_interval=self.claim_poll_interval, on_wait=waiting)
        try:
            previous = self._settled_newest(records, name, display)
            if previous is not None:
                adopted = self._adopt(previous, seen, inputs, context, records)
                if adopted is not None:
                    return adopted
                if self._resumable(previous, definition, records):
                    claim.set_note(inputs=inputs.record(), dag_id=context["dag"].dag_id, run_id=context["run_id"])
                    return self._run(definition, values, name, display, inputs, context,
                                     resume=previous["PipelineExecutionId"])
            self.log.info("Starting a new execution (display name %s): %s", display,
                          self._why_new(records, name, display, inputs, previous, context))
            claim.set_note(inputs=inputs.record(), dag_id=context["dag"].dag_id, run_id=context["run_id"])
            return self._run(definition, values, name, display, inputs, context)
        finally:
            claim.release()

    # -- helpers ---------------------------------------------------------------------------
    def _settled_newest(self, records, name: str, display: str) -> dict | None:
        """The newest execution of ``display``; an Executing one (a runner outside the claims) is waited for."""
        found = records.find(name, display_name=display)
        while found and found[0].get("PipelineExecutionStatus") in ("Executing", "Stopping"):
            self.log.info("Execution %s is running in pid %s without a claim; waiting for it to finish",
                          found[0]["PipelineExecutionArn"], (found[0].get("LocalRunner") or {}).get("Pid"))
            time.sleep(max(self.claim_poll_interval, 0.5))
            found = records.find(name, display_name=display)
        return found[0] if found else None

    def _adopt(self, previous: dict, seen: set[str], inputs, context, records) -> dict | None:
        from airsage.execution_result import failed_steps, model_package_arn

        status = previous.get("PipelineExecutionStatus")
        arn = previous["PipelineExecutionArn"]
        concurrent = previous["PipelineExecutionId"] not in seen
        try:
            steps = records.steps(previous["PipelineName"], previous["PipelineExecutionId"])
        except (FileNotFoundError, ValueError):
            steps = []  # a runner that died before writing its steps
        failed = failed_steps(steps)
        gate = set(self.quality_gate_steps)
        if status == "Succeeded":
            self.log.info("Re-attaching to Succeeded execution %s: same inputs (%s)", arn, inputs.summary())
        elif status == "Failed" and failed and gate and all(s["name"] in gate for s in failed):
            self.log.info("Re-attaching to Failed execution %s: it failed only at the pipeline's quality gate (%s); "
                          "running it again would fail the same way. Same inputs (%s)", arn,
                          "; ".join(f"{s['name']}: {s.get('reason') or 'no reason given'}" for s in failed),
                          inputs.summary())
        elif concurrent and status in ADOPTABLE_AFTER_WAIT:
            self.log.info("Adopting execution %s, which a concurrent try or run with the same inputs owned: "
                          "it ended %s", arn, status)
        else:
            return None
        result = self._result_for(previous, records.root, inputs)
        result["model_package_arn"] = model_package_arn(steps)
        LocalExecutionLink.persist(context=context, operator=self, url=result["console_url"])
        return self._settle(result, context, status=status, reason=previous.get("FailureReason") or "",
                            failed=failed_steps(steps))

    def _resumable(self, previous: dict, definition: dict, records) -> bool:
        """True (and the INFO line saying so) when ``previous`` Failed/Stopped and ran ``definition``."""
        from airsage.pipeline_source import ran_the_same_definition

        arn, status = previous["PipelineExecutionArn"], previous.get("PipelineExecutionStatus")
        if status not in ("Failed", "Stopped"):
            return False
        name, execution_id = previous["PipelineName"], previous["PipelineExecutionId"]
        try:
            ran = records.definition(name, execution_id)
        except (FileNotFoundError, ValueError) as err:
            self.log.info("Starting a new execution: the definition %s ran with cannot be read (%s)", arn, err)
            return False
        if not ran_the_same_definition(self.log, arn, status, ran, definition):
            return False
        try:
            succeeded = sum(1 for s in records.steps(name, execution_id) if s.get("StepStatus") == "Succeeded")
        except (FileNotFoundError, ValueError):
            succeeded = 0
        died = "no longer running" in (previous.get("FailureReason") or "")
        self.log.info("Resuming execution %s (definition unchanged; %d steps succeeded): it ended %s: %s%s", arn,
                      succeeded, status, previous.get("FailureReason") or "no reason given",
                      " (its runner died)" if died else "")
        return True

    def _why_new(self, records, name: str, display: str, inputs, previous: dict | None, context) -> str:
        from airsage.execution_inputs import changed_inputs
        from airsage.naming import date_display_prefix
        from sm_pipeline.local.claims import ExecutionClaim

        if previous is not None:
            arn, status = previous["PipelineExecutionArn"], previous.get("PipelineExecutionStatus")
            if "no longer running" in (previous.get("FailureReason") or ""):
                return f"the runner of {arn} died (its claim was released); taking over; inputs: {inputs.summary()}"
            return f"the last execution with the same inputs, {arn}, ended {status}; inputs: {inputs.summary()}"
        prefix = date_display_prefix(context["dag"].dag_id, run_ds(context))
        same_date = [d for d in records.find(name)
                     if str(d.get("PipelineExecutionDisplayName", "")).startswith(prefix)]
        if not same_date:
            return f"no execution for ds={run_ds(context)} yet; inputs: {inputs.summary()}"
        last = same_date[0]
        note = ExecutionClaim(records.root, name, last["PipelineExecutionDisplayName"]).note() or {}
        changes = changed_inputs(note.get("inputs"), inputs.record())
        what = "definition" if "definition" in changes.split(", ") else "inputs"
        return f"{what} changed since {last['PipelineExecutionArn']} ({last.get('PipelineExecutionStatus')}): {changes}"

    def _result_for(self, describe: dict, root: Path, inputs) -> dict[str, Any]:
        from airsage.execution_result import new_result
        from airsage.links.local_execution import execution_page_url
        from sm_pipeline.local.execution_page import PAGE_NAME
        from sm_pipeline.local.records import executions_dir

        name, arn = describe["PipelineName"], describe["PipelineExecutionArn"]
        execution_id = arn.rsplit("/", 1)[-1]
        values = {p["Name"]: p["Value"] for p in describe.get("PipelineParameters") or []}
        result = new_result(
            "local", pipeline_name=name, execution_arn=arn, display_name=describe.get("PipelineExecutionDisplayName"),
            status=describe["PipelineExecutionStatus"], console_url=execution_page_url(name, execution_id),
            region=None, parameters=values,
        )
        result["execution_page"] = str((executions_dir(root) / name / execution_id / PAGE_NAME).resolve())
        result["inputs"] = inputs.record()
        return result

    def _run(self, definition: dict, values: dict, name: str, display: str, inputs, context,
             resume: str | None = None) -> dict[str, Any]:
        from airsage.execution_result import failed_steps, model_package_arn
        from airsage.links.local_execution import execution_page_url
        from sm_pipeline.local import StopHandle, new_execution_id, run_pipeline

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
            run = run_pipeline(definition, parameters=values, root=Path(self.local_root), pipeline_name=name,
                               display_name=display, max_parallel=self.max_parallel, on_event=on_event,
                               execution_id=execution_id, stop=self._stop, resume=resume is not None)
        finally:
            self._running = None
        result = self._result_for(run.describe(), Path(self.local_root), inputs)
        result["property_files"] = run.property_files or {}
        result["model_package_arn"] = model_package_arn(run.steps)
        LocalExecutionLink.persist(context=context, operator=self, url=result["console_url"])
        reason = run.failure_reason or f"the local execution ended {run.status} without a reason"
        return self._settle(result, context, status=run.status, reason=reason if run.status != "Succeeded" else "",
                            failed=failed_steps(run.steps))

    def _settle(self, result: dict, context, *, status: str, reason: str, failed: list[dict]) -> dict[str, Any]:
        from airsage.execution_result import settle

        return settle(result, context, self.log, status=status, reason=reason, failed_steps=failed,
                      steps_available=True, quality_gate_steps=self.quality_gate_steps)
