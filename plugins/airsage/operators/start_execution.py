"""StartPipelineExecutionOperator: one SageMaker execution per DAG run, however often retried."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from airsage.links.pipeline_execution import SageMakerPipelineExecutionLink
from airsage.naming import run_ds
from airsage.operators._aws import AWS_TEMPLATE_FIELDS, AwsPipelineMixin


def kill_reason(context) -> str:
    """What a stop caused by killing this task is logged and recorded with."""
    ti = context.get("ti")
    return (f"Airflow task {context['dag'].dag_id}.{getattr(ti, 'task_id', '?')} (run {context.get('run_id')}, "
            f"try {getattr(ti, 'try_number', '?')}) was killed: marked failed or cleared by a user, or timed out")


def pipeline_name_of(pipeline: str | dict) -> str:
    """Accept a pipeline name or upsert_pipeline's XCom dict."""
    return pipeline["pipeline_name"] if isinstance(pipeline, dict) else str(pipeline)


class StartPipelineExecutionOperator(AwsPipelineMixin, BaseOperator):
    """Start this logical date's execution, re-attach to the one with the same inputs, or resume it.

    The display name comes from (dag id, ds, fingerprint of the inputs: staged data hashes,
    the deployed definition's hash, the parameter values), see ``airsage.execution_inputs``.
    Executions with that display name are looked up first: the newest one is re-attached
    when Executing, Stopping or Succeeded (a retry, a second manual run, a re-created backfill
    with unchanged inputs: no new execution, no new model version), and when it Failed only at
    the pipeline's quality gate (``quality_gate_steps``: re-running would fail the same way).
    A Failed/Stopped one whose definition hashes like the deployed one is resumed in place with
    RetryPipelineExecution (its succeeded steps are not run again): clearing a failed run resumes
    it. A fresh start happens when there is none (an input changed, or the first run of the
    date), when its definition changed, or when the endpoint cannot retry. The log says which
    and why. The ClientRequestToken covers what the lookup cannot: a start whose response
    was lost, or two runs with the same inputs starting together. The execution's description
    records its inputs, so a later start can say what changed. Returns the execution result
    dict (see ``airsage.execution_result``).

    ``on_kill`` (the task killed, marked failed or cleared while it runs) stops the execution
    this try started or resumed.

    :param pipeline: pipeline name, or upsert_pipeline's XCom dict (templated).
    :param parameters: pipeline parameters; checked against the deployed definition and cast
        to strings. Unknown names fail the task.
    :param inputs: stage_input's XCom dict (``sha256``, ``batch_sha256``), templated; part of
        the inputs fingerprint when given.
    :param quality_gate_steps: the pipeline's own quality-gate Fail steps (see the sensor).
    """

    template_fields: Sequence[str] = ("pipeline", "parameters", "display_name", "inputs", "quality_gate_steps",
                                      *AWS_TEMPLATE_FIELDS)
    template_fields_renderers = {"parameters": "json"}
    operator_extra_links = (SageMakerPipelineExecutionLink(),)
    ui_color = "#fdf1e8"

    def __init__(self, *, pipeline: str | dict, parameters: dict[str, Any] | None = None,
                 display_name: str | None = None, inputs: dict | Any = None, aws_conn_id: str | None = "aws_default",
                 region_name: str | None = None, quality_gate_steps: Sequence[str] = (), **kwargs):
        super().__init__(**kwargs)
        self.quality_gate_steps = tuple(quality_gate_steps)
        self._started_arn: str | None = None
        self._kill_reason = "its Airflow task was killed"
        self.pipeline = pipeline
        self.parameters = parameters or {}
        self.display_name = display_name
        self.inputs = inputs
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name

    def execute(self, context) -> dict[str, Any]:
        from airsage.execution_inputs import ExecutionInputs
        from airsage.execution_result import new_result
        from airsage.hooks.sagemaker_pipeline import REATTACHABLE, TERMINAL_FAILURES
        from airsage.links.pipeline_execution import execution_console_url
        from airsage.naming import client_request_token
        from airsage.parameters import ParameterError, cast_parameters
        from airsage.pipeline_source import definition_sha256

        name = pipeline_name_of(self.pipeline)
        try:
            definition = self.hook.deployed_definition(name)
            values = cast_parameters(self.parameters, definition.get("Parameters", []))
        except (ParameterError, ValueError) as err:
            raise AirflowFailException(str(err)) from None
        inputs = ExecutionInputs.for_run(context, definition_sha256=definition_sha256(definition), parameters=values,
                                         staged=self.inputs)
        display = self.display_name or inputs.display_name()

        self._kill_reason = kill_reason(context)
        existing = self.hook.find_executions(name, display)
        newest = existing[0] if existing else None
        if newest and newest["PipelineExecutionStatus"] in REATTACHABLE:
            arn, status = newest["PipelineExecutionArn"], newest["PipelineExecutionStatus"]
            self.log.info("Re-attaching to %s execution %s: same inputs (%s)", status, arn, inputs.summary())
        elif newest and (gate := self._failed_at_quality_gate(newest)):
            arn, status = newest["PipelineExecutionArn"], "Failed"
            self.log.info("Re-attaching to Failed execution %s: it failed only at the pipeline's quality gate (%s); "
                          "running it again would fail the same way. Same inputs (%s)", arn, gate, inputs.summary())
        elif newest and (resumed := self._resume(newest, definition)):
            arn, status = resumed, "Executing"
            self._started_arn = arn
        else:
            generation = sum(1 for s in existing if s["PipelineExecutionStatus"] in TERMINAL_FAILURES)
            token = client_request_token(display, generation)
            self.log.info("Starting a new execution (display name %s): %s", display,
                          self._why_new(name, inputs, newest, context))
            arn = self.hook.start_execution(name, display, values, token, description=inputs.description())
            self._started_arn = arn
            status = "Executing"
            self.log.info("Started execution %s (attempt generation %d)", arn, generation)

        region = self.resolved_region
        result = new_result(
            "sagemaker", pipeline_name=name, execution_arn=arn, display_name=display, status=status,
            console_url=execution_console_url(region, name, arn.rsplit("/", 1)[-1]), region=region,
            parameters=values,
        )
        result["inputs"] = inputs.record()
        SageMakerPipelineExecutionLink.persist(
            context=context, operator=self, region_name=region, aws_partition=self.hook.conn_partition,
            pipeline_name=name, execution_id=result["execution_id"],
        )
        return result

    def on_kill(self) -> None:
        """The task was killed (marked failed, cleared, timed out): stop the execution this try started."""
        if self._started_arn:
            self.hook.stop_execution(self._started_arn, self._kill_reason)

    def _failed_at_quality_gate(self, newest: dict) -> str:
        """The failing steps' text when ``newest`` Failed only at the quality-gate steps, else ''."""
        from airsage.execution_result import failed_steps

        if newest["PipelineExecutionStatus"] != "Failed" or not self.quality_gate_steps:
            return ""
        failed = failed_steps(self.hook.execution_steps(newest["PipelineExecutionArn"]))
        if failed and all(s["name"] in self.quality_gate_steps for s in failed):
            return "; ".join(f"{s['name']}: {s.get('reason') or 'no reason given'}" for s in failed)
        return ""

    def _resume(self, newest: dict, definition: dict) -> str | None:
        """RetryPipelineExecution of a Failed/Stopped ``newest`` whose definition is the deployed one; its ARN.

        None (and an INFO line saying why) when it must start fresh instead.
        """
        from botocore.exceptions import ClientError

        from airsage.naming import client_request_token
        from airsage.pipeline_source import ran_the_same_definition

        arn, status = newest["PipelineExecutionArn"], newest["PipelineExecutionStatus"]
        if status not in ("Failed", "Stopped"):
            return None
        try:
            ran = self.hook.definition_for_execution(arn)
        except ClientError as err:
            self.log.info("Starting a new execution: the definition %s ran with cannot be read (%s)", arn, err)
            return None
        if not ran_the_same_definition(self.log, arn, status, ran, definition):
            return None
        steps = self.hook.execution_steps(arn)
        succeeded = sum(1 for s in steps or [] if s.get("StepStatus") == "Succeeded")
        describe = self.hook.describe_pipeline_exec(arn)
        # one token per ended attempt: two clears racing send the same token and resume it once
        token = client_request_token(f"{arn}#retry@{describe.get('LastModifiedTime')}", 0)
        try:
            resumed = self.hook.retry_execution(arn, token)
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            if code == "ConflictException":  # a concurrent clear resumed it first
                self.log.info("Re-attaching to execution %s: it is running again (resumed concurrently)", arn)
                return arn
            self.log.warning("Starting a new execution: RetryPipelineExecution of %s was refused (%s)", arn, err)
            return None
        self.log.info("Resuming execution %s (definition unchanged; %s steps succeeded): it ended %s: %s", arn,
                      succeeded if steps is not None else "unknown", status,
                      describe.get("FailureReason") or "no reason given")
        return resumed

    def _why_new(self, name: str, inputs, newest: dict | None, context) -> str:
        from airsage.execution_inputs import changed_inputs, record_from_description
        from airsage.naming import date_display_prefix

        if newest is not None:
            return (f"the last execution with the same inputs, {newest['PipelineExecutionArn']}, ended "
                    f"{newest['PipelineExecutionStatus']}; inputs: {inputs.summary()}")
        same_date = self.hook.list_executions(name, date_display_prefix(context["dag"].dag_id, run_ds(context)))
        if not same_date:
            return f"no execution for ds={run_ds(context)} yet; inputs: {inputs.summary()}"
        last = same_date[0]
        try:
            description = self.hook.describe_pipeline_exec(last["PipelineExecutionArn"]).get(
                "PipelineExecutionDescription")
        except Exception:  # noqa: BLE001 - the explanation is for the log; the start does not depend on it
            description = None
        changes = changed_inputs(record_from_description(description), inputs.record())
        what = "definition" if "definition" in changes.split(", ") else "inputs"
        return f"{what} changed since {last['PipelineExecutionArn']} ({last.get('PipelineExecutionStatus')}): {changes}"
