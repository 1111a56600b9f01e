"""OpenLineage, the Airflow way: the provider's file transport, the whole graph of a run on both backends.

Airflow task run → pipeline execution (a run whose parent is the task that started it) → each step (a run whose
parent is the execution, root the DAG run) with its S3 datasets; the evaluation PropertyFile with its metrics
facet; the registered model package version named by its ARN; run ids derived from the ARN, so a re-run that
re-attaches speaks of the same runs; a Failed execution ends FAIL.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from conftest_sagemaker import PREFIX

pytestmark = pytest.mark.slow

NAMESPACE = "airsage-tests"
STEPS = ("PreprocessAbalone", "TrainAbalone", "EvaluateAbalone", "CheckMseAbalone", "RegisterAbaloneModel",
         "CreateAbaloneModel", "TransformAbalone")


@pytest.fixture
def lineage_events(tmp_path, monkeypatch):
    """The provider configured the standard way ([openlineage] transport = file, namespace); returns a reader."""
    from airflow.listeners.listener import get_listener_manager as core_listeners
    from airflow.providers.openlineage import conf
    from airflow.providers.openlineage.plugins.listener import get_openlineage_listener
    from airflow.sdk.listener import get_listener_manager as task_listeners

    path = tmp_path / "openlineage.jsonl"
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__TRANSPORT",
                       json.dumps({"type": "file", "log_file_path": str(path), "append": True}))
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__NAMESPACE", NAMESPACE)
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD", "True")  # no fork inside pytest

    def reset():
        for function in vars(conf).values():
            if hasattr(function, "cache_clear"):
                function.cache_clear()
        get_openlineage_listener().adapter._client = None

    reset()
    # the session loaded its plugins before this test configured a transport: register the provider's
    # listener with the task runner's and the scheduler side's listener managers, as its plugin would
    listener = get_openlineage_listener()
    added = [manager for manager in (core_listeners(), task_listeners()) if not manager.pm.is_registered(listener)]
    for manager in added:
        manager.add_listener(listener)
    yield lambda: [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    for manager in added:
        manager.pm.unregister(listener)
    monkeypatch.undo()
    reset()


def runs(events, job_name):
    return [e for e in events if e["job"]["name"] == job_name]


def one_run_id(events, job_name) -> str:
    ids = {e["run"]["runId"] for e in runs(events, job_name)}
    assert len(ids) == 1, (job_name, ids)
    return ids.pop()


def parent_of(event) -> tuple[str, str]:
    parent = event["run"]["facets"]["parent"]
    return parent["job"]["name"], parent["run"]["runId"]


def datasets(event, side) -> set[tuple[str, str]]:
    return {(d["namespace"], d["name"]) for d in event[side]}


def check_graph(events, *, dag_id, task_id, pipeline, bucket, execution_arn, model_package_arn):
    """The whole graph of one run: parents, datasets, facets."""
    task_run = one_run_id(events, f"{dag_id}.{task_id}")
    execution = runs(events, pipeline)
    assert [e["eventType"] for e in execution] == ["START", "COMPLETE"]
    assert {parent_of(e) for e in execution} == {(f"{dag_id}.{task_id}", task_run)}
    assert execution[0]["run"]["facets"]["externalQuery"]["externalQueryId"] == execution_arn
    assert all(e["job"]["namespace"] == NAMESPACE for e in execution)
    assert (f"s3://{bucket}", f"{PREFIX}/input/ds=2026-11-06/abalone.csv") in datasets(execution[0], "inputs")
    namespace = ":".join(model_package_arn.split(":")[:5])
    assert datasets(execution[-1], "outputs") == {(namespace, model_package_arn)}
    execution_run = one_run_id(events, pipeline)
    for step in STEPS:
        step_events = runs(events, f"{pipeline}.{step}")
        assert [e["eventType"] for e in step_events] == ["START", "COMPLETE"], step
        assert {parent_of(e) for e in step_events} == {(pipeline, execution_run)}
        root = step_events[0]["run"]["facets"]["parent"]["root"]
        assert root["job"]["name"] == dag_id  # the DAG run
    train = runs(events, f"{pipeline}.TrainAbalone")[-1]
    assert any(ns == f"s3://{bucket}" and "/PreprocessAbalone/" in name for ns, name in datasets(train, "inputs"))
    assert any(name.endswith("model.tar.gz") for _, name in datasets(train, "outputs"))
    register = runs(events, f"{pipeline}.RegisterAbaloneModel")[-1]
    assert (namespace, model_package_arn) in datasets(register, "outputs")
    # the evaluation PropertyFile, with its numbers as a facet (read_metrics' input)
    (read,) = [e for e in runs(events, f"{dag_id}.read_metrics") if e["eventType"] == "COMPLETE"]
    (evaluation,) = read["inputs"]
    assert evaluation["name"].endswith("/EvaluateAbalone/evaluation/evaluation.json")
    assert evaluation["facets"]["evaluationMetrics"]["metrics"]["regression_metrics.mse"] > 0
    return execution_run


def test_a_local_run_is_one_graph_and_a_rerun_speaks_of_the_same_runs(dag_module, local_object_root, lineage_events):
    day = datetime(2026, 11, 6, tzinfo=UTC)
    run = dag_module.abalone_pipeline_local.test(logical_date=day, run_after=day, run_conf={"mse_threshold": 50.0})
    assert str(getattr(run.state, "value", run.state)) == "success"
    events = lineage_events()
    result = run.get_task_instance("run_local").xcom_pull(task_ids="run_local")
    execution_run = check_graph(events, dag_id="abalone_pipeline_local", task_id="run_local",
                                pipeline="airsage-abalone", bucket="airsage-artifacts",
                                execution_arn=result["execution_arn"], model_package_arn=result["model_package_arn"])

    # the same run again re-attaches: the same execution and step runs, no fork of the graph
    again = dag_module.abalone_pipeline_local.test(logical_date=day, run_after=day, run_conf={"mse_threshold": 50.0})
    assert str(getattr(again.state, "value", again.state)) == "success"
    later = lineage_events()[len(events):]
    assert {e["run"]["runId"] for e in runs(later, "airsage-abalone")} == {execution_run}
    assert {e["run"]["runId"] for e in runs(later, "airsage-abalone.TrainAbalone")} == {
        e["run"]["runId"] for e in runs(events, "airsage-abalone.TrainAbalone")}

    # a Failed execution (the pipeline's own quality gate) ends FAIL, with its reason
    gate = dag_module.abalone_pipeline_local.test(logical_date=datetime(2026, 11, 7, tzinfo=UTC),
                                                  run_after=datetime(2026, 11, 7, tzinfo=UTC),
                                                  run_conf={"mse_threshold": 0.01})
    assert str(getattr(gate.state, "value", gate.state)) == "failed"
    failed = [e for e in runs(lineage_events(), "airsage-abalone") if e["eventType"] == "FAIL"]
    assert len(failed) == 1 and "MseThreshold" in failed[0]["run"]["facets"]["errorMessage"]["message"]
    (fail_step,) = [e for e in runs(lineage_events(), "airsage-abalone.AbaloneMseFail") if e["eventType"] == "FAIL"]
    assert parent_of(fail_step) == ("airsage-abalone", failed[0]["run"]["runId"])


def test_an_emulated_sagemaker_run_is_the_same_graph_under_the_task_that_started_it(dag_module, emulated_aws,
                                                                                     lineage_events):
    day = datetime(2026, 11, 6, tzinfo=UTC)
    run = dag_module.abalone_pipeline.test(logical_date=day, run_after=day,
                                           run_conf={"mse_threshold": 50.0, "source": emulated_aws["source"]})
    assert str(getattr(run.state, "value", run.state)) == "success"
    result = run.get_task_instance("wait_for_execution").xcom_pull(task_ids="wait_for_execution")
    events = lineage_events()
    check_graph(events, dag_id="abalone_pipeline", task_id="start_execution", pipeline=emulated_aws["pipeline"],
                bucket=emulated_aws["bucket"], execution_arn=result["execution_arn"],
                model_package_arn=result["model_package_arn"])
    # the wait task names the start task's run as the execution's parent (from start_execution's XCom)
    assert result["lineage_parent"]["name"] == "abalone_pipeline.start_execution"
