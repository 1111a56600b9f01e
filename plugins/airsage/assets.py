"""The Airflow Assets of a factory DAG: the one place their names, URIs and event extras are spelled.

Airflow 3's data-aware scheduling chains DAGs on these (``schedule=[approved_model("abalone_pipeline")]``).
Every asset is keyed by the producing DAG's id, known when the DAG file is parsed (the bucket and prefix
are not: they come from Variables at run time), so each URI is ``x-airsage://<dag id>/<what>`` (an ``x-``
scheme: Airflow normalises it without loading every provider's URI handlers, which would import boto3 when the
DAG file is parsed) and the concrete location rides in the event's ``extra``:

============================  =====================  ==================================================
asset (function)              emitted by             ``extra``
============================  =====================  ==================================================
``input_partition``           stage_input            ``ds``, ``uri`` (the staged object), ``hashes``
``metrics``                   read_metrics           ``ds``, ``metric``, ``value``, ``report_uri``, ``execution_arn``
``model_package``             run_local / wait        ``ds``, ``model_package_arn``, ``execution_arn`` — only when
                              (through the alias      the execution registered a version (a quality-gate failure
                              ``model_package_alias``) registers none, so no event)
``report``                    publish_report         ``ds``, ``run_id``, ``uri``, ``location``
``approved_model``            the approval step      ``model_package_arn``, ``approval_status`` (+ ``ds``, ...)
                              (through ``approved_model_alias``, with :func:`emit_approved_model`)
============================  =====================  ==================================================

A downstream DAG reads the triggering event::

    @task
    def deploy(triggering_asset_events=None):
        (event,) = triggering_asset_events[approved_model("abalone_pipeline")]
        arn = event.extra["model_package_arn"]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

SCHEME = "x-airsage"
NAME_PREFIX = GROUP = "airsage"
# the extra keys of an approved-model event
MODEL_PACKAGE_ARN, APPROVAL_STATUS = "model_package_arn", "approval_status"


def _asset(dag_id: str, role: str):
    from airflow.sdk import Asset

    return Asset(name=f"{NAME_PREFIX}.{dag_id}.{role}", uri=f"{SCHEME}://{dag_id}/{role}", group=GROUP)


def _alias(dag_id: str, role: str):
    from airflow.sdk import AssetAlias

    return AssetAlias(name=f"{NAME_PREFIX}.{dag_id}.{role}.alias", group=GROUP)


def input_partition(dag_id: str):
    """The date's staged input (one event per run; ``extra``: ``ds``, ``uri``, ``hashes``)."""
    return _asset(dag_id, "input-partition")


def metrics(dag_id: str):
    """The evaluation metrics the quality gate reads (``extra``: ``ds``, ``metric``, ``value``, ...)."""
    return _asset(dag_id, "metrics")


def model_package(dag_id: str):
    """The registered model package version (``extra``: ``ds``, ``model_package_arn``, ``execution_arn``)."""
    return _asset(dag_id, "model-package")


def model_package_alias(dag_id: str):
    """The execution task's outlet: it adds a :func:`model_package` event only when a version was registered."""
    return _alias(dag_id, "model-package")


def report(dag_id: str):
    """The published report (``extra``: ``ds``, ``run_id``, ``uri``, ``location``)."""
    return _asset(dag_id, "report")


def approved_model(dag_id: str):
    """A model package version of ``dag_id``'s pipeline was approved: what a deployment DAG is scheduled on."""
    return _asset(dag_id, "approved-model")


def approved_model_alias(dag_id: str):
    """The approval task's outlet: :func:`emit_approved_model` adds an :func:`approved_model` event through it."""
    return _alias(dag_id, "approved-model")


def approved_model_extra(model_package_arn: str, approval_status: str, **more: Any) -> dict[str, Any]:
    """The ``extra`` of an approved-model event: the package ARN and its approval status (plus ``more``)."""
    if not model_package_arn or not approval_status:
        raise ValueError("an approved-model event needs the model package ARN and its approval status")
    return {**more, MODEL_PACKAGE_ARN: model_package_arn, APPROVAL_STATUS: approval_status}


def emit(context: Mapping[str, Any], outlets: Iterable[Any], role: str, extra: Mapping[str, Any],
         dag_id: str | None = None) -> bool:
    """Attach ``extra`` to the task's outlet for ``role`` of ``dag_id`` (default: this task's DAG): an Asset's
    event, or an event added through an AssetAlias. True when the task declares such an outlet (else nothing
    happens)."""
    from airflow.sdk import Asset, AssetAlias

    dag_id = dag_id or context["dag"].dag_id
    target = _asset(dag_id, role)
    for outlet in outlets or ():
        if isinstance(outlet, Asset) and outlet.name == target.name:
            context["outlet_events"][outlet].extra.update(dict(extra))
            return True
        if isinstance(outlet, AssetAlias) and outlet.name == _alias(dag_id, role).name:
            context["outlet_events"][outlet].add(target, extra=dict(extra))
            return True
    return False


def emit_approved_model(context: Mapping[str, Any], outlets: Iterable[Any], model_package_arn: str,
                        approval_status: str, *, dag_id: str | None = None, **more: Any) -> bool:
    """The approval step's event: :func:`approved_model` of ``dag_id`` (default: this task's DAG, the pipeline's)
    with :func:`approved_model_extra` (see :func:`emit`)."""
    return emit(context, outlets, "approved-model", approved_model_extra(model_package_arn, approval_status, **more),
                dag_id=dag_id)
