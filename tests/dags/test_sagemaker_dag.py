"""``dag.test()`` of abalone_pipeline against the moto server (emulated AWS on 127.0.0.1).

moto marks every execution Succeeded at once and runs no step, so the test plays the
EvaluateAbalone step: when an execution starts, it writes evaluation.json and
predictions.csv where CONTRACTS.md says that step's output goes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from airsage_test_support import WebhookInbox, sns_inbox
from conftest_sagemaker import BUCKET, MSE, PREFIX

pytestmark = pytest.mark.slow

DAY = datetime(2026, 11, 3, tzinfo=UTC)


def states(dag_run):
    return {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dag_run.get_task_instances()}


def state(dag_run) -> str:
    return str(getattr(dag_run.state, "value", dag_run.state))


def keys(s3, prefix):
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", []))


def read_json(s3, key):
    return json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


@pytest.fixture
def on_call(emulated_aws, aws_default, monkeypatch):
    """The Variable airsage_on_call pointing at a loopback webhook and an SNS topic with a queue."""
    topic_arn, receive = sns_inbox(aws_default)
    with WebhookInbox() as inbox:
        monkeypatch.setenv("AIRFLOW_VAR_AIRSAGE_ON_CALL",
                           json.dumps({"webhook_url": inbox.url, "sns_topic_arn": topic_arn}))
        yield inbox, receive


def test_pass_path_deploys_runs_and_reports_in_s3(dag_module, emulated_aws):
    from airsage.naming import run_path_segment

    s3, sm = emulated_aws["s3"], emulated_aws["sm"]
    run = dag_module.abalone_pipeline.test(logical_date=DAY, run_conf={"mse_threshold": 6.0})
    assert states(run) == {
        "stage_input": "success", "upsert_pipeline": "success", "start_execution": "success",
        "wait_for_execution": "success", "read_metrics": "success", "gate": "success",
        "publish_report": "success", "alert_on_call": "skipped",
    }
    assert sm.describe_pipeline(PipelineName="airsage-abalone")["PipelineArn"]
    assert keys(s3, f"{PREFIX}/code/") and all(k.endswith(".py") for k in keys(s3, f"{PREFIX}/code/"))
    assert keys(s3, f"{PREFIX}/input/") == [f"{PREFIX}/input/ds=2026-11-03/abalone.csv"]
    folder = f"{PREFIX}/reports/ds=2026-11-03/{run_path_segment(run.run_id)}"
    assert keys(s3, f"{PREFIX}/reports/") == sorted([
        *(f"{folder}/{name}" for name in ("metrics.json", "predicted_vs_actual.png", "report.html",
                                          "residual_histogram.png")),
        f"{PREFIX}/reports/ds=2026-11-03/latest.json"])
    pointer = read_json(s3, f"{PREFIX}/reports/ds=2026-11-03/latest.json")
    assert (pointer["run_id"], pointer["kind"], pointer["uri"]) == (run.run_id, "report",
                                                                    f"s3://{BUCKET}/{folder}/report.html")
    (execution,) = sm.list_pipeline_executions(PipelineName="airsage-abalone")["PipelineExecutionSummaries"]
    params = {p["Name"]: p["Value"] for p in sm.list_pipeline_parameters_for_execution(
        PipelineExecutionArn=execution["PipelineExecutionArn"])["PipelineParameters"]}
    assert params == {"InputData": f"s3://{BUCKET}/{PREFIX}/input/ds=2026-11-03/abalone.csv",
                      "BatchData": f"s3://{BUCKET}/{PREFIX}/batch/ds=2026-11-03/batch.csv",
                      "MseThreshold": "6.0"}
    assert execution["PipelineExecutionDisplayName"].startswith("abalone-pipeline-2026-11-03-")


def test_a_second_run_of_a_date_reattaches_and_a_changed_threshold_starts_anew(dag_module, emulated_aws):
    started = emulated_aws["started"]
    first = dag_module.abalone_pipeline.test(logical_date=DAY, run_conf={"mse_threshold": 6.0})
    second = dag_module.abalone_pipeline.test(logical_date=DAY, run_after=DAY + timedelta(hours=5),
                                              run_conf={"mse_threshold": 6.0})
    assert second.run_id != first.run_id and states(second)["publish_report"] == "success"
    assert len(started) == 1  # same inputs: re-attached, no second execution (so no second model version)
    changed = dag_module.abalone_pipeline.test(logical_date=DAY, run_after=DAY + timedelta(hours=6),
                                               run_conf={"mse_threshold": 7.5})
    assert states(changed)["publish_report"] == "success" and len(started) == 2
    summaries = emulated_aws["sm"].list_pipeline_executions(PipelineName="airsage-abalone")[
        "PipelineExecutionSummaries"]
    assert len(summaries) == 2


def test_a_failed_gate_notifies_on_call_and_fails_the_run(dag_module, emulated_aws, on_call):
    from airsage.naming import run_path_segment

    inbox, receive = on_call
    s3, sm = emulated_aws["s3"], emulated_aws["sm"]
    dag_module.abalone_pipeline.test(logical_date=DAY)
    modified = sm.describe_pipeline(PipelineName="airsage-abalone")["LastModifiedTime"]
    run = dag_module.abalone_pipeline.test(logical_date=DAY + timedelta(days=1), run_conf={"mse_threshold": 1.0})
    assert state(run) == "failed"
    assert states(run)["publish_report"] == "skipped" and states(run)["alert_on_call"] == "failed"
    assert sm.describe_pipeline(PipelineName="airsage-abalone")["LastModifiedTime"] == modified
    folder = f"{PREFIX}/reports/ds=2026-11-04/{run_path_segment(run.run_id)}"
    assert keys(s3, f"{PREFIX}/reports/ds=2026-11-04/") == sorted([f"{folder}/ALERT.json",
                                                                   f"{PREFIX}/reports/ds=2026-11-04/latest.json"])
    alert = read_json(s3, f"{folder}/ALERT.json")
    assert (alert["mse"], alert["threshold"], alert["kind"]) == (MSE, 1.0, "quality_gate")
    assert alert["execution_link"].startswith("https://console.aws.amazon.com/sagemaker/")

    (payload,) = inbox.received  # exactly one: the failure callback skips the gate failure
    assert {k: payload[k] for k in ("kind", "dag_id", "run_id", "task_id", "mse", "threshold")} == {
        "kind": "quality_gate", "dag_id": "abalone_pipeline", "run_id": run.run_id, "task_id": "alert_on_call",
        "mse": MSE, "threshold": 1.0}
    assert payload["execution_arn"] == alert["execution_arn"] and payload["logical_date"].startswith("2026-11-04")
    assert "quality gate: mse 4.75 > threshold 1" in payload["message"]
    (envelope,) = receive()
    assert envelope["Message"] == payload["message"]


def test_a_failed_execution_notifies_on_call_through_the_failure_callback(dag_module, emulated_aws, on_call):
    inbox, receive = on_call
    emulated_aws["fail_next"].append("Step failure: One or multiple steps failed.")
    run = dag_module.abalone_pipeline.test(logical_date=DAY + timedelta(days=2))
    assert state(run) == "failed" and states(run)["wait_for_execution"] == "failed"
    (payload,) = inbox.received
    (arn,) = emulated_aws["started"]
    assert (payload["kind"], payload["task_id"], payload["execution_arn"]) == ("task_failure", "wait_for_execution",
                                                                               arn)
    assert payload["execution_link"].startswith("https://console.aws.amazon.com/sagemaker/")
    assert "ended Failed: Step failure: One or multiple steps failed." in payload["error"]
    (envelope,) = receive()
    assert envelope["Subject"] == "airsage: task wait_for_execution failed in abalone_pipeline 2026-11-05"
    assert arn in envelope["Message"]
