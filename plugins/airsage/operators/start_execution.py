"""StartPipelineExecutionOperator: one SageMaker execution per DAG run, however often retried."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from airsage.links.pipeline_execution import SageMakerPipelineExecutionLink
from airsage.operators._aws import AWS_TEMPLATE_FIELDS, AwsPipelineMixin


def kill_reason(context) -> str:
    """What a stop caused by killing this task is logged and recorded with."""
    ti = context.get("ti")
    return (f"Airflow task {context['dag'].dag_id}.{getattr(ti, 'task_id', '?')} (run {context.get('run_id')}, "
            f"try {getattr(ti, 'try_number', '?')}) was killed: marked failed or cleared by a user, or timed out")


def pipeline_name_of(pipeline: str | dict) -> str:
    """Accept a pipeline name or upsert_pipeline's XCom dict."""
    return pipeline["pipeline_name"] if isinstance(pipeline, dict) else str(pipeline)


class SageMakerExecutions:
    """The execution policy's backend on SageMaker (``airsage.execution_policy.ExecutionBackend``), via the hook."""

    def __init__(self, hook, pipeline_name: str):
        self.hook = hook
        self.pipeline_name = pipeline_name

    def find(self, display_name: str) -> list[dict]:
        return self.hook.find_executions(self.pipeline_name, display_name)

    def list_by_prefix(self, display_prefix: str) -> list[dict]:
        return self.hook.list_executions(self.pipeline_name, display_prefix)

    def describe(self, arn: str) -> dict:
        return self.hook.describe_pipeline_exec(arn)

    def steps(self, arn: str) -> list[dict] | None:
        return self.hook.execution_steps(arn)

    def definition_of(self, arn: str) -> dict:
        from botocore.exceptions import ClientError

        from airsage.execution_policy import DefinitionUnreadable

        try:
            return self.hook.definition_for_execution(arn)
        except ClientError as err:
            raise DefinitionUnreadable(str(err)) from None

    def resume(self, arn: str, token: str) -> str:
        from botocore.exceptions import ClientError

        from airsage.execution_policy import ResumeConflict, ResumeRefused

        try:
            return self.hook.retry_execution(arn, token)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code", "") == "ConflictException":
                raise ResumeConflict(str(err)) from None
            raise ResumeRefused(str(err)) from None

    def start(self, display_name: str, parameters: dict[str, str], token: str, description: str, *,
              version: int | None = None, selective: dict | None = None) -> str:
        return self.hook.start_execution(self.pipeline_name, display_name, parameters, token, description=description,
                                         pipeline_version_id=version, selective=selective)

    def version_ids(self) -> list[int]:
        return self.hook.pipeline_version_ids(self.pipeline_name)

    def version_definition(self, version: int) -> dict:
        return self.hook.version_definition(self.pipeline_name, version)


class StartPipelineExecutionOperator(AwsPipelineMixin, BaseOperator):
    """Start this logical date's execution, re-attach to the one with the same inputs, or resume it.

    The display name comes from (dag id, ds, fingerprint of the inputs: staged data hashes,
    the deployed definition's hash, the parameter values), see ``airsage.execution_inputs``; what
    happens to it is the execution policy both backends share (``airsage.execution_policy``):
    re-attach to an Executing, Stopping or Succeeded one, or one that Failed only at the pipeline's
    quality gate (``quality_gate_steps``); resume a Failed/Stopped one that ran the deployed
    definition with RetryPipelineExecution (clearing a failed run resumes it); otherwise start one.
    The log says which and why. The ClientRequestToken covers what the lookup cannot: a start whose
    response was lost, or two runs with the same inputs starting together. The execution's
    description records its inputs, so a later start can say what changed. Returns the execution
    result dict (see ``airsage.execution_result``).

    ``on_kill`` (the task killed, marked failed or cleared while it runs) stops the execution
    this try started or resumed.

    :param pipeline: pipeline name, or upsert_pipeline's XCom dict (templated).
    :param parameters: pipeline parameters; checked against the deployed definition and cast
        to strings. Unknown names fail the task.
    :param inputs: the stage task's XCom (``parameters``, ``hashes``: ``airsage.operators.stage_input``),
        templated; its parameters are passed on (``parameters`` win) and its hashes are part of the inputs
        fingerprint.
    :param quality_gate_steps: the pipeline's own quality-gate Fail steps (see the sensor).
    :param pipeline_version: ``latest`` (default), ``first`` (the version this date first ran with) or a
        version number (templated; ``airsage.execution_policy.version_to_run``).
    :param rerun_steps: re-run only these steps (a list or its JSON text, templated), on the outputs of
        ``rerun_reference`` (an execution ARN, or ``last``: this date's newest execution): a selective execution.
    """

    template_fields: Sequence[str] = ("pipeline", "parameters", "display_name", "inputs", "quality_gate_steps",
                                      "pipeline_version", "rerun_steps", "rerun_reference", *AWS_TEMPLATE_FIELDS)
    template_fields_renderers = {"parameters": "json"}
    operator_extra_links = (SageMakerPipelineExecutionLink(),)
    ui_color = "#fdf1e8"

    def __init__(self, *, pipeline: str | dict, parameters: dict[str, Any] | None = None,
                 display_name: str | None = None, inputs: dict | Any = None, aws_conn_id: str | None = "aws_default",
                 region_name: str | None = None, quality_gate_steps: Sequence[str] = (),
                 pipeline_version: str | int | None = None, rerun_steps: Any = None, rerun_reference: str | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        self.pipeline_version = pipeline_version
        self.rerun_steps = rerun_steps
        self.rerun_reference = rerun_reference
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
        from airsage.execution_inputs import ExecutionInputs, run_parameters
        from airsage.execution_policy import selection_to_run, start_or_reattach, version_to_run
        from airsage.execution_result import new_result
        from airsage.links.pipeline_execution import execution_console_url
        from airsage.naming import run_ds
        from airsage.pipeline_source import definition_sha256
        from sm_pipeline.arns import execution_id_of
        from sm_pipeline.errors import InvalidInput
        from sm_pipeline.parameters import start_request_values

        name = pipeline_name_of(self.pipeline)
        backend = SageMakerExecutions(self.hook, name)
        where = {"dag_id": context["dag"].dag_id, "ds": run_ds(context), "log": self.log}
        try:
            version = version_to_run(backend, self.pipeline_version, **where)
            definition = (backend.version_definition(version) if version is not None
                          else self.hook.deployed_definition(name))
            selective = selection_to_run(backend, self.rerun_steps, self.rerun_reference, **where)
            values = start_request_values(definition.get("Parameters", []),
                                          run_parameters(self.parameters, self.inputs))
        except (InvalidInput, ValueError) as err:
            raise AirflowFailException(str(err)) from None
        inputs = ExecutionInputs.for_run(context, definition_sha256=definition_sha256(definition), parameters=values,
                                         staged=self.inputs, selective=selective)
        display = self.display_name or inputs.display_name()
        self._kill_reason = kill_reason(context)
        decision = start_or_reattach(backend, display_name=display, inputs=inputs,
                                     definition=definition, parameters=values,
                                     quality_gate_steps=self.quality_gate_steps, log=self.log,
                                     version=version, selective=selective)
        if decision.ran_now:
            self._started_arn = decision.arn

        region = self.resolved_region
        result = new_result(
            "sagemaker", pipeline_name=name, execution_arn=decision.arn, display_name=display,
            status=decision.status, console_url=execution_console_url(region, name, execution_id_of(decision.arn)),
            region=region, parameters=values,
        )
        result["inputs"] = inputs.record()
        # which pipeline version ran this date (durably: the execution's own PipelineVersionId)
        result["pipeline_version_id"] = self.hook.describe_pipeline_exec(decision.arn).get("PipelineVersionId")
        result["selective_execution_config"] = selective
        from airsage.lineage import task_run

        # the Airflow task run the execution's OpenLineage run hangs under (None without the provider)
        result["lineage_parent"] = task_run(context["ti"])
        self._lineage_result = result
        SageMakerPipelineExecutionLink.persist(
            context=context, operator=self, region_name=region, aws_partition=self.hook.conn_partition,
            pipeline_name=name, execution_id=result["execution_id"],
        )
        return result

    def get_openlineage_facets_on_complete(self, task_instance):
        """OpenLineage (the provider calls it): the execution's START under this task run; its S3 inputs."""
        from airflow.providers.openlineage import conf

        from airsage.lineage import emit, execution_events, operator_lineage, s3_datasets, task_run

        result = getattr(self, "_lineage_result", None)
        if not result:
            return operator_lineage()
        parent = result.get("lineage_parent") or task_run(task_instance)
        describe = self.hook.describe_pipeline_exec(result["execution_arn"])
        if parent:
            # only the START: the wait task emits the steps and the end
            emit(execution_events(describe={**describe, "PipelineExecutionStatus": "Executing"}, steps=[], records={},
                                  parameters=result.get("parameters") or {}, model_package_arn=None, parent=parent,
                                  namespace=conf.namespace())[:1])
        return operator_lineage(inputs=s3_datasets((result.get("parameters") or {}).values()))

    def on_kill(self) -> None:
        """The task was killed (marked failed, cleared, timed out): stop the execution this try started."""
        if self._started_arn:
            self.hook.stop_execution(self._started_arn, self._kill_reason)
