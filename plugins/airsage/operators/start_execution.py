"""StartPipelineExecutionOperator: one SageMaker execution per DAG run, however often retried."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from airsage.links.pipeline_execution import SageMakerPipelineExecutionLink
from airsage.operators._aws import AWS_TEMPLATE_FIELDS, AwsPipelineMixin


def pipeline_name_of(pipeline: str | dict) -> str:
    """Accept a pipeline name or upsert_pipeline's XCom dict."""
    return pipeline["pipeline_name"] if isinstance(pipeline, dict) else str(pipeline)


class StartPipelineExecutionOperator(AwsPipelineMixin, BaseOperator):
    """Start the pipeline for this DAG run, or re-attach to the execution an earlier try started.

    The display name is derived from dag_id + run_id. Before starting, executions with that
    display name are looked up: the newest one is re-attached when Executing, Stopping or
    Succeeded; a fresh start happens only when there is none or the newest Failed/Stopped.
    The ClientRequestToken covers the gap the lookup cannot: a start whose response was
    lost. Returns the execution result dict (see ``airsage.execution_result``).

    :param pipeline: pipeline name, or upsert_pipeline's XCom dict (templated).
    :param parameters: pipeline parameters; checked against the deployed definition and cast
        to strings. Unknown names fail the task.
    """

    template_fields: Sequence[str] = ("pipeline", "parameters", "display_name", *AWS_TEMPLATE_FIELDS)
    template_fields_renderers = {"parameters": "json"}
    operator_extra_links = (SageMakerPipelineExecutionLink(),)
    ui_color = "#fdf1e8"

    def __init__(self, *, pipeline: str | dict, parameters: dict[str, Any] | None = None,
                 display_name: str | None = None, aws_conn_id: str | None = "aws_default",
                 region_name: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.pipeline = pipeline
        self.parameters = parameters or {}
        self.display_name = display_name
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name

    def execute(self, context) -> dict[str, Any]:
        from airsage.execution_result import new_result
        from airsage.hooks.sagemaker_pipeline import REATTACHABLE, TERMINAL_FAILURES
        from airsage.links.pipeline_execution import execution_console_url
        from airsage.naming import client_request_token, execution_display_name
        from airsage.parameters import ParameterError, cast_parameters

        name = pipeline_name_of(self.pipeline)
        display = self.display_name or execution_display_name(context["dag"].dag_id, context["run_id"])
        try:
            values = cast_parameters(self.parameters, self.hook.pipeline_parameters(name))
        except (ParameterError, ValueError) as err:
            raise AirflowFailException(str(err)) from None

        existing = self.hook.find_executions(name, display)
        newest = existing[0] if existing else None
        if newest and newest["PipelineExecutionStatus"] in REATTACHABLE:
            arn, status = newest["PipelineExecutionArn"], newest["PipelineExecutionStatus"]
            self.log.info("Re-attaching to %s execution %s (display name %s)", status, arn, display)
        else:
            generation = sum(1 for s in existing if s["PipelineExecutionStatus"] in TERMINAL_FAILURES)
            token = client_request_token(display, generation)
            arn = self.hook.start_execution(name, display, values, token)
            status = "Executing"
            self.log.info("Started execution %s (display name %s, attempt generation %d)", arn, display, generation)

        region = self.resolved_region
        result = new_result(
            "sagemaker", pipeline_name=name, execution_arn=arn, display_name=display, status=status,
            console_url=execution_console_url(region, name, arn.rsplit("/", 1)[-1]), region=region,
            parameters=values,
        )
        SageMakerPipelineExecutionLink.persist(
            context=context, operator=self, region_name=region, aws_partition=self.hook.conn_partition,
            pipeline_name=name, execution_id=result["execution_id"],
        )
        return result
