"""Airflow Assets: an approved-model event triggers a deployment DAG scheduled on it, which reads the package ARN.

The approval task itself is another issue's; here a test task emits the approved-model event the way it
will (``airsage.assets.emit_approved_model`` on ``approved_model_alias``). The scheduler's own code creates
the asset-triggered run (``SchedulerJobRunner._create_dag_runs_asset_triggered``), and the deployment task
is called with that run's triggering events, as Airflow hands them to it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from airsage import assets

PRODUCER = "abalone_pipeline_local"
ARN = "arn:aws:sagemaker:us-east-1:000000000000:model-package/airsage-abalone/7"


def deploy(triggering_asset_events=None):
    """The deployment DAG's task: the package ARN of the approval that triggered it."""
    (event,) = triggering_asset_events[assets.approved_model(PRODUCER)]
    return event.extra[assets.MODEL_PACKAGE_ARN]


def approval_and_deployment_dags():
    from airflow.sdk import DAG, task

    with DAG("airsage_test_approval", schedule=None, start_date=datetime(2026, 11, 1)) as approval:
        @task(outlets=[assets.approved_model_alias(PRODUCER)])
        def approve(**context):
            assert assets.emit_approved_model(context, context["task"].outlets, ARN, "Approved", dag_id=PRODUCER,
                                              ds=context["ds"])

        approve()
    with DAG("airsage_test_deployment", schedule=[assets.approved_model(PRODUCER)],
             start_date=datetime(2026, 11, 1)) as deployment:
        task(deploy)()
    return approval, deployment


def write_to_db(*dags):
    """What the DAG processor does for a parsed file: the DAGs and their asset references in the metadata DB."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.collection import update_dag_parsing_results_in_db
    from airflow.serialization.serialized_objects import LazyDeserializedDAG
    from airflow.utils.session import create_session

    DagBundlesManager().sync_bundles_to_db()
    with create_session() as session:
        update_dag_parsing_results_in_db("dags-folder", None, [LazyDeserializedDAG.from_dag(d) for d in dags], {},
                                         None, set(), session=session)


@pytest.mark.slow
def test_an_approved_model_event_triggers_the_deployment_dag_which_reads_the_package_arn(airflow_metadata_db):
    from airflow.jobs.job import Job
    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
    from airflow.models.asset import AssetEvent
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    approval, deployment = approval_and_deployment_dags()
    write_to_db(approval, deployment)
    run = approval.test(logical_date=datetime(2026, 11, 5, tzinfo=UTC))
    assert str(getattr(run.state, "value", run.state)) == "success"

    with create_session() as session:
        (event,) = session.scalars(select(AssetEvent).where(AssetEvent.source_run_id == run.run_id)).all()
        assert event.asset.uri == assets.approved_model(PRODUCER).uri
        assert event.extra == {"model_package_arn": ARN, "approval_status": "Approved", "ds": "2026-11-05"}
        # the scheduler's step: the asset-triggered run of the deployment DAG
        runner = SchedulerJobRunner(job=Job())
        runner._create_dag_runs_asset_triggered(dag_models=[DagModel.get_dagmodel("airsage_test_deployment",
                                                                                   session=session)],
                                                session=session)
        session.flush()
        from airflow.models.dagrun import DagRun

        (triggered,) = session.scalars(select(DagRun).where(DagRun.dag_id == "airsage_test_deployment")).all()
        assert str(triggered.run_type) in ("asset_triggered", "DagRunType.ASSET_TRIGGERED")
        consumed = {assets.approved_model(PRODUCER): list(triggered.consumed_asset_events)}
        assert deploy(triggering_asset_events=consumed) == ARN


def test_asset_names_and_extras_are_spelled_in_one_place():
    assert assets.approved_model("d").uri == "x-airsage://d/approved-model"
    assert {assets.input_partition("d").uri, assets.metrics("d").uri, assets.model_package("d").uri,
            assets.report("d").uri} == {"x-airsage://d/input-partition", "x-airsage://d/metrics",
                                        "x-airsage://d/model-package", "x-airsage://d/report"}
    assert assets.approved_model_extra(ARN, "Approved") == {"model_package_arn": ARN, "approval_status": "Approved"}
    with pytest.raises(ValueError, match="needs the model package ARN"):
        assets.approved_model_extra("", "Approved")


def test_the_model_package_asset_is_declared_so_it_exists_before_any_event(dag_module):
    """Only declared assets are created when a DAG is parsed; one reached only through an alias is created by the
    first event, and two runs' first events race to create it (one task then fails on the duplicate)."""
    for dag in (dag_module.abalone_pipeline, dag_module.abalone_pipeline_local):
        declared = {asset for task in dag.tasks for asset in [*task.inlets, *task.outlets]}
        assert assets.model_package(dag.dag_id) in declared, dag.dag_id
