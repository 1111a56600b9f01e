"""PipelineExecutionSensor: wait for a SageMaker pipeline execution; Failed/Stopped fail loudly."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowException

from airsage.links.pipeline_execution import SageMakerPipelineExecutionLink
from airsage.operators._aws import AWS_TEMPLATE_FIELDS, AwsPipelineMixin

TERMINAL = frozenset({"Succeeded", "Failed", "Stopped"})


class PipelineExecutionSensor(AwsPipelineMixin, BaseSensorOperator):
    """Wait until the execution is terminal; return the execution result dict with its status.

    Deferrable by default (PipelineExecutionTrigger in the triggerer, no worker slot held);
    with ``deferrable=False`` it pokes in ``reschedule`` mode. Stopped is a failure, unlike
    the provider's sensor. Failed/Stopped raise PipelineExecutionFailed carrying the
    FailureReason and the failing steps' names and reasons, except a Failed execution whose
    only failed steps are in ``quality_gate_steps`` (the pipeline's own MSE Fail step):
    that returns normally with ``quality_gate_failed`` so the DAG's gate can alert on-call.

    :param execution: start_execution's XCom dict (templated).
    """

    template_fields: Sequence[str] = ("execution", "quality_gate_steps", *AWS_TEMPLATE_FIELDS)
    operator_extra_links = (SageMakerPipelineExecutionLink(),)
    ui_color = "#fdf1e8"

    def __init__(self, *, execution: dict | Any, quality_gate_steps: Sequence[str] = (),
                 deferrable: bool = True, aws_conn_id: str | None = "aws_default",
                 region_name: str | None = None, max_attempts: int = 2880, **kwargs):
        kwargs.setdefault("mode", "reschedule")
        kwargs.setdefault("poke_interval", 30)
        kwargs.setdefault("timeout", timedelta(days=1))
        super().__init__(**kwargs)
        self.execution = execution
        self.quality_gate_steps = tuple(quality_gate_steps)
        self.deferrable = deferrable
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.max_attempts = max_attempts

    def execute(self, context) -> Any:
        # the extra link reads this task's own XCom, so the sensor persists it too
        SageMakerPipelineExecutionLink.persist(
            context=context, operator=self, region_name=self.execution.get("region") or self.resolved_region,
            aws_partition=self.hook.conn_partition, pipeline_name=self.execution["pipeline_name"],
            execution_id=self.execution["execution_id"],
        )
        if not self.deferrable:
            return super().execute(context)
        # one describe first: a finished execution (a re-attach, or moto) needs no deferral
        describe = self.hook.describe_pipeline_exec(self.execution["execution_arn"])
        if describe["PipelineExecutionStatus"] in TERMINAL:
            return self._settle(describe, context)
        from airsage.triggers.pipeline_execution import PipelineExecutionTrigger

        self.defer(
            trigger=PipelineExecutionTrigger(
                execution_arn=self.execution["execution_arn"],
                poll_interval=float(self.poke_interval),
                max_attempts=self.max_attempts,
                aws_conn_id=self.aws_conn_id,
                region_name=self.region_name,
            ),
            method_name="execute_complete",
            # the sensor's timeout also bounds the deferral, not only poke mode
            timeout=timedelta(seconds=float(self.timeout)) if self.timeout else None,
        )

    def execute_complete(self, context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume after the trigger: settle the execution's status as DescribePipelineExecution reports it now.

        The event is a hint, never the truth: a resume without an event (a triggerer restart,
        a cleared deferral) or with a timeout event re-checks the execution first. Only an
        execution that is still running after the trigger gave up fails the task; one resumed
        without an event while still running is deferred again.
        """
        arn = self.execution["execution_arn"]
        describe = self.hook.describe_pipeline_exec(arn)
        status = describe["PipelineExecutionStatus"]
        if status in TERMINAL:
            if not event or event.get("status") != "done":
                self.log.info("Resumed with %s; execution %s is %s", f"event {event}" if event else "no event",
                              arn, status)
            return self._settle(describe, context)
        if not event:
            self.log.warning("Resumed without an event while execution %s is %s; waiting again", arn, status)
            return self.execute(context)
        raise AirflowException(
            f"Gave up waiting for {arn} after {self.max_attempts} polls (status now {status}); "
            f"console: {self.execution.get('console_url')}"
        )

    def on_kill(self) -> None:
        """The task was killed while it ran (marked failed, cleared, timed out): stop the execution.

        While deferred, the trigger's ``on_kill`` does this instead; a deferral itself, or a
        triggerer restart, stops nothing.
        """
        execution = self.execution if isinstance(self.execution, dict) else {}
        if execution.get("execution_arn"):
            self.hook.stop_execution(execution["execution_arn"], "the wait task was killed")

    def poke(self, context) -> PokeReturnValue | bool:
        describe = self.hook.describe_pipeline_exec(self.execution["execution_arn"])
        status = describe["PipelineExecutionStatus"]
        if status not in TERMINAL:
            self.log.info("Execution %s is %s", self.execution["execution_arn"], status)
            return False
        return PokeReturnValue(is_done=True, xcom_value=self._settle(describe, context))

    def _settle(self, describe: dict, context) -> dict[str, Any]:
        from airsage.execution_result import model_package_arn, settle

        arn = self.execution["execution_arn"]
        status = describe["PipelineExecutionStatus"]
        self._lineage_describe = describe
        if status == "Succeeded":
            result = dict(self.execution)
            steps = self.hook.execution_steps(arn)
            result["model_package_arn"] = model_package_arn(steps)
            self._add_steps_and_cost(result, steps)
            return settle(result, context, self.log, status=status, reason="", failed_steps=[], steps_available=True,
                          quality_gate_steps=self.quality_gate_steps, outlets=self.outlets)
        details = self.hook.failure_details(arn, describe)
        result = self._add_steps_and_cost(dict(self.execution), details["steps"])
        return settle(
            result, context, self.log, status=status, reason=details["reason"],
            failed_steps=details["failed_steps"], steps_available=details["steps_available"],
            quality_gate_steps=self.quality_gate_steps, outlets=self.outlets,
        )

    def get_openlineage_facets_on_complete(self, task_instance):
        """OpenLineage (the provider calls it): the execution, under the task run that started it, and its steps."""
        from airsage.lineage import execution_lineage

        return execution_lineage(self, task_instance, parent=(self.execution or {}).get("lineage_parent"))

    def get_openlineage_facets_on_failure(self, task_instance):
        """OpenLineage for a Failed/Stopped execution: its run and its steps end FAIL / ABORT."""
        from airsage.lineage import execution_lineage

        return execution_lineage(self, task_instance, parent=(self.execution or {}).get("lineage_parent"))

    def _add_steps_and_cost(self, result: dict, steps: list[dict] | None) -> dict:
        """Step summaries and the cost (the definition the execution ran, each job's billed time) on ``result``."""
        from botocore.exceptions import BotoCoreError, ClientError

        from airsage.execution_result import add_steps_and_cost

        self._lineage_result = result
        try:
            definition = self.hook.definition_for_execution(result["execution_arn"])
            jobs = self.hook.step_jobs(steps)
        except (ClientError, BotoCoreError, ValueError) as err:
            self.log.warning("No cost for execution %s: %s", result["execution_arn"], err)
            definition, jobs = None, None
        self._lineage_raw = {"describe": getattr(self, "_lineage_describe", None), "steps": steps or [],
                             "records": jobs or {}}
        if self._lineage_raw["describe"] is None:
            self._lineage_raw = None
        return add_steps_and_cost(result, definition=definition, steps=steps, log=self.log, jobs=jobs)
