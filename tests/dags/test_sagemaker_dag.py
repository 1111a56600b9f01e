"""``dag.test()`` of abalone_pipeline against the moto server (emulated AWS on 127.0.0.1).

moto marks every execution Succeeded at once and runs no step, so the test plays the
EvaluateAbalone step: when an execution starts, it writes evaluation.json and
predictions.csv where CONTRACTS.md says that step's output goes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from conftest_sagemaker import BUCKET, MSE, PREFIX

pytestmark = pytest.mark.slow


def states(dag_run):
    return {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dag_run.get_task_instances()}


def keys(s3, prefix):
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", []))


def test_pass_path_deploys_runs_and_reports_in_s3(dag_module, emulated_aws):
    s3, sm = emulated_aws["s3"], emulated_aws["sm"]
    run = dag_module.abalone_pipeline.test(logical_date=datetime(2026, 11, 3, tzinfo=UTC),
                                          run_conf={"mse_threshold": 6.0})
    assert states(run) == {
        "stage_input": "success", "upsert_pipeline": "success", "start_execution": "success",
        "wait_for_execution": "success", "read_metrics": "success", "gate": "success",
        "publish_report": "success", "alert_on_call": "skipped",
    }
    assert sm.describe_pipeline(PipelineName="airsage-abalone")["PipelineArn"]
    assert keys(s3, f"{PREFIX}/code/") and all(k.endswith(".py") for k in keys(s3, f"{PREFIX}/code/"))
    assert keys(s3, f"{PREFIX}/input/") == [f"{PREFIX}/input/ds=2026-11-03/abalone.csv"]
    assert keys(s3, f"{PREFIX}/reports/") == [
        f"{PREFIX}/reports/ds=2026-11-03/{name}"
        for name in ("metrics.json", "predicted_vs_actual.png", "report.html", "residual_histogram.png")]
    (execution,) = sm.list_pipeline_executions(PipelineName="airsage-abalone")["PipelineExecutionSummaries"]
    params = {p["Name"]: p["Value"] for p in sm.list_pipeline_parameters_for_execution(
        PipelineExecutionArn=execution["PipelineExecutionArn"])["PipelineParameters"]}
    assert params == {"InputData": f"s3://{BUCKET}/{PREFIX}/input/ds=2026-11-03/abalone.csv",
                      "BatchData": f"s3://{BUCKET}/{PREFIX}/batch/ds=2026-11-03/batch.csv",
                      "MseThreshold": "6.0"}


def test_fail_path_alerts_and_redeploys_nothing(dag_module, emulated_aws):
    s3, sm = emulated_aws["s3"], emulated_aws["sm"]
    dag_module.abalone_pipeline.test(logical_date=datetime(2026, 11, 3, tzinfo=UTC))
    modified = sm.describe_pipeline(PipelineName="airsage-abalone")["LastModifiedTime"]
    run = dag_module.abalone_pipeline.test(logical_date=datetime(2026, 11, 4, tzinfo=UTC),
                                          run_conf={"mse_threshold": 1.0})
    assert states(run)["publish_report"] == "skipped" and states(run)["alert_on_call"] == "success"
    assert sm.describe_pipeline(PipelineName="airsage-abalone")["LastModifiedTime"] == modified
    assert keys(s3, f"{PREFIX}/reports/ds=2026-11-04/") == [f"{PREFIX}/reports/ds=2026-11-04/ALERT.json"]
    alert = json.loads(s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/reports/ds=2026-11-04/ALERT.json")["Body"].read())
    assert (alert["value"], alert["threshold"]) == (MSE, 1.0)
    assert alert["console_url"].startswith("https://console.aws.amazon.com/sagemaker/")
