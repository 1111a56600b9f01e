"""What the SageMaker-facing operators share: connection id, region and a lazily built hook."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airsage.hooks.sagemaker_pipeline import SageMakerPipelineHook

AWS_TEMPLATE_FIELDS = ("aws_conn_id", "region_name")


class AwsPipelineMixin:
    """``aws_conn_id``/``region_name`` attributes and a ``hook`` built on first use.

    The hook module imports boto3 and the provider, so it is imported here, at run time,
    never when a DAG file that uses the operator is parsed.
    """

    aws_conn_id: str | None
    region_name: str | None

    @cached_property
    def hook(self) -> SageMakerPipelineHook:
        """The SageMakerPipelineHook for this task's connection and region."""
        from airsage.hooks.sagemaker_pipeline import SageMakerPipelineHook

        return SageMakerPipelineHook(aws_conn_id=self.aws_conn_id, region_name=self.region_name)

    @property
    def resolved_region(self) -> str:
        """The region the hook's client actually uses (connection, env or argument)."""
        return self.hook.conn.meta.region_name
