"""PipelineExecutionTrigger: waits in the triggerer until a pipeline execution finishes.

The provider's SageMakerPipelineTrigger raises inside the triggerer on Failed/Stopped, which
reaches the task as a bare "Trigger failure" without the pipeline's FailureReason, and it
lists the steps on every poll (an API moto lacks). This trigger only polls
DescribePipelineExecution and *reports* every terminal status; the sensor's
``execute_complete`` then fails the task with the reason and failing steps.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

TERMINAL = frozenset({"Succeeded", "Failed", "Stopped"})


class PipelineExecutionTrigger(BaseTrigger):
    """Fires once the execution is Succeeded, Failed or Stopped, or after ``max_attempts`` polls."""

    def __init__(
        self,
        execution_arn: str,
        poll_interval: float = 30,
        max_attempts: int = 2880,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
    ):
        super().__init__()
        self.execution_arn = execution_arn
        self.poll_interval = poll_interval
        self.max_attempts = max_attempts
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and kwargs, so the triggerer can rebuild this trigger."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "execution_arn": self.execution_arn,
                "poll_interval": self.poll_interval,
                "max_attempts": self.max_attempts,
                "aws_conn_id": self.aws_conn_id,
                "region_name": self.region_name,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll DescribePipelineExecution until a terminal status."""
        from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

        hook = SageMakerHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name)
        status = "unknown"
        async with await hook.get_async_conn() as conn:
            for attempt in range(1, self.max_attempts + 1):
                response = await conn.describe_pipeline_execution(PipelineExecutionArn=self.execution_arn)
                status = response["PipelineExecutionStatus"]
                if status in TERMINAL:
                    yield TriggerEvent(
                        {"status": "done", "execution_status": status, "execution_arn": self.execution_arn}
                    )
                    return
                self.log.info("Pipeline execution %s is %s (poll %d)", self.execution_arn, status, attempt)
                await asyncio.sleep(self.poll_interval)
        yield TriggerEvent(
            {"status": "timeout", "execution_status": status, "execution_arn": self.execution_arn}
        )

    async def on_kill(self) -> None:
        """A user marked the deferred task failed/succeeded or cleared it: stop the execution.

        Only user actions call this; a triggerer restart or redistribution, a timeout and
        ``cleanup()`` do not, so the execution survives them. An execution that already ended is
        left alone.
        """
        from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook
        from botocore.exceptions import ClientError

        hook = SageMakerHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name)
        async with await hook.get_async_conn() as conn:
            try:
                await conn.stop_pipeline_execution(PipelineExecutionArn=self.execution_arn)
            except ClientError as err:
                if "Only pipelines with 'Executing' status can be stopped" not in str(err):
                    raise
                self.log.info("Execution %s is not running; nothing to stop", self.execution_arn)
                return
        self.log.warning("Stopped pipeline execution %s: its task was killed by a user action",
                         self.execution_arn)
