"""StartPipelineExecutionOperator: one SageMaker execution per DAG run, however often retried."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from airsage.links.pipeline_execution import SageMakerPipelineExecutionLink
from airsage.naming import run_ds
from airsage.operators._aws import AWS_TEMPLATE_FIELDS, AwsPipelineMixin


def pipeline_name_of(pipeline: str | dict) -> str:
    """Accept a pipeline name or upsert_pipeline's XCom dict."""
    return pipeline["pipeline_name"] if isinstance(pipeline, dict) else str(pipeline)


class StartPipelineExecutionOperator(AwsPipelineMixin, BaseOperator):
    """Start this logical date's execution, or re-attach to the one with the same inputs.

    The display name comes from (dag id, ds, fingerprint of the inputs: staged data hashes,
    the deployed definition's hash, the parameter values), see ``airsage.execution_inputs``.
    Executions with that display name are looked up first: the newest one is re-attached
    when Executing, Stopping or Succeeded (a retry, a second manual run, a re-created backfill
    with unchanged inputs: no new execution, no new model version); a fresh start happens only
    when there is none (an input changed, or the first run of the date) or the newest
    Failed/Stopped. The ClientRequestToken covers what the lookup cannot: a start whose response
    was lost, or two runs with the same inputs starting together. The execution's description
    records its inputs, so a later start can say what changed. Returns the execution result
    dict (see ``airsage.execution_result``).

    :param pipeline: pipeline name, or upsert_pipeline's XCom dict (templated).
    :param parameters: pipeline parameters; checked against the deployed definition and cast
        to strings. Unknown names fail the task.
    :param inputs: stage_input's XCom dict (``sha256``, ``batch_sha256``), templated; part of
        the inputs fingerprint when given.
    """

    template_fields: Sequence[str] = ("pipeline", "parameters", "display_name", "inputs", *AWS_TEMPLATE_FIELDS)
    template_fields_renderers = {"parameters": "json"}
    operator_extra_links = (SageMakerPipelineExecutionLink(),)
    ui_color = "#fdf1e8"

    def __init__(self, *, pipeline: str | dict, parameters: dict[str, Any] | None = None,
                 display_name: str | None = None, inputs: dict | Any = None, aws_conn_id: str | None = "aws_default",
                 region_name: str | None = None, **kwargs):
        super().__init__(**kwargs)
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

        existing = self.hook.find_executions(name, display)
        newest = existing[0] if existing else None
        if newest and newest["PipelineExecutionStatus"] in REATTACHABLE:
            arn, status = newest["PipelineExecutionArn"], newest["PipelineExecutionStatus"]
            self.log.info("Re-attaching to %s execution %s: same inputs (%s)", status, arn, inputs.summary())
        else:
            generation = sum(1 for s in existing if s["PipelineExecutionStatus"] in TERMINAL_FAILURES)
            token = client_request_token(display, generation)
            self.log.info("Starting a new execution (display name %s): %s", display,
                          self._why_new(name, inputs, newest, context))
            arn = self.hook.start_execution(name, display, values, token, description=inputs.description())
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
        return (f"inputs changed since {last['PipelineExecutionArn']} ({last.get('PipelineExecutionStatus')}): "
                f"{changed_inputs(record_from_description(description), inputs.record())}")
