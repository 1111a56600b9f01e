"""Pinned pipeline versions and selective re-runs through both DAGs (``dag.test()``, nothing stubbed).

A date runs with version 1; the definition then changes (the training instance type: version 2); a re-run of
the date with ``pipeline_version=first`` (and a changed threshold, so that it is a new execution) runs version
1; a re-run with ``rerun_steps=["EvaluateAbalone"]`` runs only the evaluation, on the training and
preprocessing outputs of the date's newest execution, and re-running that same request re-attaches.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

pytestmark = pytest.mark.slow

DAY = datetime(2026, 11, 5, tzinfo=UTC)
CHANGED_INSTANCE = "ml.m5.2xlarge"
REUSED = {"PreprocessAbalone", "TrainAbalone"}


def states(dag_run):
    return {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dag_run.get_task_instances()}


def training_instance(definition: dict) -> str:
    train = next(s for s in definition["Steps"] if s["Name"] == "TrainAbalone")
    return train["Arguments"]["ResourceConfig"]["InstanceType"]



def test_local_dag_pins_the_first_version_and_reruns_one_step(dag_module, tmp_path, small_source, monkeypatch):
    from sm_pipeline.local import LocalExecutionStore
    from sm_pipeline.pipeline_versions import PipelineVersions, local_versions_dir

    root = tmp_path / "objects"
    monkeypatch.setenv("AIRFLOW_VAR_AIRSAGE_LOCAL_ROOT", str(root))
    pipeline = "airsage-abalone"
    store = LocalExecutionStore(root)

    def run(threshold, hours, **conf):
        return dag_module.abalone_pipeline_local.test(
            logical_date=DAY, run_after=DAY + timedelta(hours=hours),
            run_conf={"mse_threshold": threshold, "source": small_source, **conf})

    first = run(50.0, 0)
    assert states(first)["publish_report"] == "success", states(first)
    assert first.get_task_instance("run_local").xcom_pull(task_ids="run_local")["pipeline_version_id"] == 1

    monkeypatch.setenv("AIRSAGE_TRAINING_INSTANCE_TYPE", CHANGED_INSTANCE)  # the definition changes: version 2
    pinned = run(40.0, 1, pipeline_version="first")
    assert states(pinned)["publish_report"] == "success", states(pinned)
    result = pinned.get_task_instance("run_local").xcom_pull(task_ids="run_local")
    assert PipelineVersions(local_versions_dir(root, pipeline)).ids() == [1, 2]
    assert result["pipeline_version_id"] == 1
    ran = store.definition(pipeline, result["execution_id"])
    assert training_instance(ran) != CHANGED_INSTANCE  # version 1's definition, not the deployed one
    assert store.describe(pipeline, result["execution_id"])["PipelineVersionId"] == 1

    count = len(store.find(pipeline))
    rerun = run(40.0, 2, rerun_steps=["EvaluateAbalone"])
    assert states(rerun)["publish_report"] == "success", states(rerun)
    selective = rerun.get_task_instance("run_local").xcom_pull(task_ids="run_local")
    assert selective["selective_execution_config"] == {
        "SelectedSteps": [{"StepName": "EvaluateAbalone"}], "SourcePipelineExecutionArn": result["execution_arn"]}
    steps = {s["StepName"]: s for s in store.steps(pipeline, selective["execution_id"])}
    assert {n for n, s in steps.items() if "SelectiveExecutionResult" in s} == REUSED
    assert steps["EvaluateAbalone"]["StepStatus"] == "Succeeded" and "SelectiveExecutionResult" not in steps[
        "EvaluateAbalone"]
    assert {n for n, s in steps.items() if s["StepStatus"] == "NotExecuted"} == {
        "CheckMseAbalone", "RegisterAbaloneModel", "CreateAbaloneModel", "TransformAbalone", "AbaloneMseFail"}
    reused = store.step_properties(pipeline, selective["execution_id"])["TrainAbalone"]
    assert reused == store.step_properties(pipeline, result["execution_id"])["TrainAbalone"]  # the reference's model
    assert len(store.find(pipeline)) == count + 1

    again = run(40.0, 3, rerun_steps=["EvaluateAbalone"], rerun_reference=result["execution_arn"])
    assert states(again)["publish_report"] == "success"
    assert again.get_task_instance("run_local").xcom_pull(task_ids="run_local")["execution_arn"] == \
        selective["execution_arn"]  # the same selective re-run: re-attached
    assert len(store.find(pipeline)) == count + 1

    bad = run(40.0, 4, rerun_steps=["NoSuchStep"])
    assert states(bad)["run_local"] == "failed"

    # a re-run that leaves the evaluation out has no metric: read_metrics says so instead of reading a stale file
    no_metric = run(40.0, 5, rerun_steps=["PreprocessAbalone"])
    assert states(no_metric)["run_local"] == "success" and states(no_metric)["read_metrics"] == "failed"


def test_sagemaker_dag_pins_the_first_version_and_reruns_one_step(dag_module, emulated_aws, monkeypatch):
    sm, pipeline = emulated_aws["sm"], emulated_aws["pipeline"]

    def run(threshold, hours, **conf):
        return dag_module.abalone_pipeline.test(
            logical_date=DAY, run_after=DAY + timedelta(hours=hours),
            run_conf={"mse_threshold": threshold, "source": emulated_aws["source"], **conf})

    first = run(50.0, 0)
    assert states(first)["publish_report"] == "success", states(first)
    monkeypatch.setenv("AIRSAGE_TRAINING_INSTANCE_TYPE", CHANGED_INSTANCE)
    pinned = run(40.0, 1, pipeline_version="first")
    assert states(pinned)["publish_report"] == "success", states(pinned)
    versions = sm.list_pipeline_versions(PipelineName=pipeline)["PipelineVersionSummaries"]
    assert [v["PipelineVersionId"] for v in versions] == [2, 1]
    arn = pinned.get_task_instance("start_execution").xcom_pull(task_ids="start_execution")["execution_arn"]
    assert pinned.get_task_instance("wait_for_execution").xcom_pull(
        task_ids="wait_for_execution")["pipeline_version_id"] == 1
    assert sm.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineVersionId"] == 1
    ran = json.loads(sm.describe_pipeline_definition_for_execution(PipelineExecutionArn=arn)["PipelineDefinition"])
    assert training_instance(ran) != CHANGED_INSTANCE

    rerun = run(40.0, 2, rerun_steps=["EvaluateAbalone"])
    assert states(rerun)["publish_report"] == "success", states(rerun)
    selective_arn = rerun.get_task_instance("start_execution").xcom_pull(task_ids="start_execution")["execution_arn"]
    described = sm.describe_pipeline_execution(PipelineExecutionArn=selective_arn)
    assert described["SelectiveExecutionConfig"] == {"SourcePipelineExecutionArn": arn,
                                                     "SelectedSteps": [{"StepName": "EvaluateAbalone"}]}
    steps = sm.list_pipeline_execution_steps(PipelineExecutionArn=selective_arn)["PipelineExecutionSteps"]
    assert {s["StepName"]: (s.get("SelectiveExecutionResult") or {}).get("SourcePipelineExecutionArn")
            for s in steps} == {"PreprocessAbalone": arn, "TrainAbalone": arn, "EvaluateAbalone": None}
