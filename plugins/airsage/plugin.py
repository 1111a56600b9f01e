"""The Airflow plugin: airsage's operator extra links and the local execution pages.

Registered by the provider (``airsage.provider_info``) when airsage is installed, else by the
plugins-folder entry ``airsage_plugin.py`` beside this file. The operators
already attach the link instances, the plugin makes the UI able to deserialize them. The
execution pages (``/airsage/executions/<pipeline>/<execution id>``, what run_local's
"Local Execution" link opens) are a FastAPI app the API server mounts; it is built on its
first request, so the other components importing this plugin do not pay for it.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from airsage.execution_pages import LazyApp
from airsage.links.local_execution import URL_PREFIX, LocalExecutionLink
from airsage.links.pipeline_execution import SageMakerPipelineExecutionLink


class AirsagePlugin(AirflowPlugin):
    """airsage: SageMaker Pipelines from Airflow, with a local twin."""

    name = "airsage"
    operator_extra_links = [SageMakerPipelineExecutionLink(), LocalExecutionLink()]
    fastapi_apps = [{"name": "airsage local execution pages", "app": LazyApp(), "url_prefix": URL_PREFIX}]
