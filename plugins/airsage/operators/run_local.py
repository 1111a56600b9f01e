"""RunLocalPipelineOperator: the local backend's start + wait, on ``sm_pipeline.local``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException


class RunLocalPipelineOperator(BaseOperator):
    """Run the stored definition with the docker-free local runner; same XCom as start + wait.

    Idempotent per DAG run like the SageMaker path: the display name comes from dag_id +
    run_id, and a Succeeded local execution with that name is re-attached instead of run
    again. An ``Executing`` record means an earlier try died mid-run (the runner lives in
    the task process), so it is not waited for; a fresh execution starts. Failed/Stopped
    fail the task with the reason and the failing steps, except a Failed execution whose
    only failed steps are in ``quality_gate_steps``.

    :param pipeline: upsert_pipeline's XCom dict (``definition_uri``, ``pipeline_name``,
        ``bucket``, ``prefix``), templated.
    :param local_root: the object root (``s3://b/k`` lives at ``<root>/b/k``).
    """

    template_fields: Sequence[str] = ("pipeline", "parameters", "display_name", "local_root", "quality_gate_steps")
    template_fields_renderers = {"parameters": "json"}
    ui_color = "#eef8e8"

    def __init__(self, *, pipeline: dict | Any, local_root: str, parameters: dict[str, Any] | None = None,
                 display_name: str | None = None, quality_gate_steps: Sequence[str] = (),
                 max_parallel: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.pipeline = pipeline
        self.local_root = local_root
        self.parameters = parameters or {}
        self.display_name = display_name
        self.quality_gate_steps = tuple(quality_gate_steps)
        self.max_parallel = max_parallel

    def execute(self, context) -> dict[str, Any]:
        from airsage.execution_result import failed_steps, finish, model_package_arn, new_result
        from airsage.hooks.artifact_store import ArtifactStore
        from airsage.naming import execution_display_name
        from airsage.parameters import ParameterError, cast_parameters
        from sm_pipeline.local import LocalExecutionStore, run_pipeline
        from sm_pipeline.local.records import executions_dir

        name = self.pipeline["pipeline_name"]
        display = self.display_name or execution_display_name(context["dag"].dag_id, context["run_id"])
        store = ArtifactStore("local", local_root=self.local_root)
        definition = json.loads(store.read_bytes(self.pipeline["definition_uri"]))
        try:
            values = cast_parameters(self.parameters, definition.get("Parameters", []))
        except ParameterError as err:
            raise AirflowFailException(str(err)) from None

        def result_for(describe: dict) -> dict[str, Any]:
            arn = describe["PipelineExecutionArn"]
            # the local "console": the execution record (describe.json, steps.json, step logs)
            record_dir = executions_dir(Path(self.local_root)) / name / arn.rsplit("/", 1)[-1]
            return new_result(
                "local", pipeline_name=name, execution_arn=arn, display_name=display,
                status=describe["PipelineExecutionStatus"],
                console_url=record_dir.resolve().as_uri(), region=None, parameters=values,
            )

        records = LocalExecutionStore(Path(self.local_root))
        previous = records.find(name, display_name=display)
        if previous and previous[0].get("PipelineExecutionStatus") == "Succeeded":
            self.log.info("Re-attaching to succeeded local execution %s", previous[0]["PipelineExecutionArn"])
            result = result_for(previous[0])
            result["model_package_arn"] = model_package_arn(records.steps(name, result["execution_id"]))
            return finish(result, status="Succeeded", reason="", failed_steps=[],
                          steps_available=True, quality_gate_steps=self.quality_gate_steps)
        if previous and previous[0].get("PipelineExecutionStatus") == "Executing":
            self.log.warning("Local execution %s was left Executing by a dead try; starting a fresh one",
                             previous[0]["PipelineExecutionArn"])

        def on_event(event: dict) -> None:
            self.log.info("local runner: %s", json.dumps(event, default=str, sort_keys=True))

        run = run_pipeline(definition, parameters=values, root=Path(self.local_root), pipeline_name=name,
                           display_name=display, max_parallel=self.max_parallel, on_event=on_event)
        result = result_for(run.describe())
        result["property_files"] = run.property_files or {}
        result["model_package_arn"] = model_package_arn(run.steps)
        reason = run.failure_reason or f"the local execution ended {run.status} without a reason"
        self.log.info("Local execution %s ended %s; record: %s", result["execution_arn"], run.status,
                      result["console_url"])
        return finish(result, status=run.status, reason=reason if run.status != "Succeeded" else "",
                      failed_steps=failed_steps(run.steps), steps_available=True, quality_gate_steps=self.quality_gate_steps)
