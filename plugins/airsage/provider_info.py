"""airsage as an Airflow provider: what ``airflow providers list`` and the UI learn about it.

Registered by the ``apache_airflow_provider`` entry point of the installed distribution
(``pip install airsage``); its Airflow plugin (extra links, execution pages) by the
``airflow.plugins`` entry point. The repository's ``plugins/`` folder serves the same code to an
Airflow that has not installed it (the project template's use).

The hook is listed under the connection type ``airsage``; it uses AWS connections (type ``aws``,
``aws_default`` by default), which is why the form of that type is the AWS form.
"""

from __future__ import annotations


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("airsage")
    except PackageNotFoundError:  # imported from the plugins folder, not installed
        return "0.0.0"


def get_provider_info() -> dict:
    """The provider info dict Airflow's ProvidersManager reads (``provider_info.schema.json``)."""
    integration = "Amazon SageMaker Pipelines (airsage)"
    return {
        "package-name": "airsage",
        "name": "airsage",
        "description": "Run Amazon SageMaker Pipelines from Apache Airflow, and the same pipeline locally "
                       "without Docker: a DAG factory, operators, a deferrable sensor, on-call notifications, "
                       "and a pytest kit on an emulated SageMaker service.",
        "versions": [_version()],
        "integrations": [{"integration-name": integration, "external-doc-url": "https://aws.amazon.com/sagemaker/pipelines/",
                          "tags": ["aws"]}],
        "operators": [{"integration-name": integration, "python-modules": [
            "airsage.operators.stage_input", "airsage.operators.upsert_pipeline", "airsage.operators.start_execution",
            "airsage.operators.run_local", "airsage.operators.read_metrics", "airsage.operators.gate",
            "airsage.operators.publish_report", "airsage.operators.alert"]}],
        "sensors": [{"integration-name": integration, "python-modules": ["airsage.sensors.pipeline_execution"]}],
        "triggers": [{"integration-name": integration, "python-modules": ["airsage.triggers.pipeline_execution"]}],
        "hooks": [{"integration-name": integration, "python-modules": ["airsage.hooks.sagemaker_pipeline",
                                                                           "airsage.hooks.cost_explorer"]}],
        "connection-types": [{
            "connection-type": "airsage",
            "hook-class-name": "airsage.hooks.sagemaker_pipeline.SageMakerPipelineHook",
            "ui-field-behaviour": {"hidden-fields": ["host", "schema", "port"],
                                   "relabeling": {"login": "AWS Access Key ID", "password": "AWS Secret Access Key"}},
        }],
        "extra-links": ["airsage.links.pipeline_execution.SageMakerPipelineExecutionLink",
                        "airsage.links.local_execution.LocalExecutionLink"],
        "notifications": ["airsage.notifications.on_call.OnCallNotifier",
                          "airsage.notifications.webhook.WebhookNotifier"],
    }
