"""Operator extra link to a SageMaker pipeline execution in the AWS console."""

from __future__ import annotations

from airflow.providers.amazon.aws.links.base_aws import BASE_AWS_CONSOLE_LINK, BaseAwsLink

EXECUTION_PATH = "/sagemaker/home?region={region_name}#/pipelines/{pipeline_name}/executions/{execution_id}"


class SageMakerPipelineExecutionLink(BaseAwsLink):
    """"SageMaker Pipeline Execution" button on the start and wait tasks."""

    name = "SageMaker Pipeline Execution"
    key = "airsage_pipeline_execution"
    format_str = BASE_AWS_CONSOLE_LINK + EXECUTION_PATH


def execution_console_url(region_name: str, pipeline_name: str, execution_id: str, partition: str = "aws") -> str:
    """The console URL of one execution (the same URL the extra link shows)."""
    domain = BaseAwsLink.get_aws_domain(partition) or "aws.amazon.com"
    return SageMakerPipelineExecutionLink.format_str.format(
        aws_domain=domain, region_name=region_name, pipeline_name=pipeline_name, execution_id=execution_id
    )
