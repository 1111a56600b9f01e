"""The Airflow plugin: registers airsage's operator extra links with the API server.

Airflow imports this file by itself (see ``.airflowignore`` beside it); the operators
already attach the link instances, the plugin makes the UI able to deserialize them.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from airsage.links.pipeline_execution import SageMakerPipelineExecutionLink


class AirsagePlugin(AirflowPlugin):
    """airsage: SageMaker Pipelines from Airflow, with a local twin."""

    name = "airsage"
    operator_extra_links = [SageMakerPipelineExecutionLink()]
