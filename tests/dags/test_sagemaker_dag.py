"""``dag.test()`` of abalone_pipeline against the emulated SageMaker service (loopback), nothing stubbed.

Executions really run in the service (the local runner trains XGBoost on a small slice of the
abalone data); failure reasons and failing steps are the service's; the deferrable trigger polls it.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from airsage_test_support import WebhookInbox, asset_events, sns_inbox
from conftest_sagemaker import PREFIX

pytestmark = pytest.mark.slow

DAY = datetime(2026, 11, 3, tzinfo=UTC)
PASS, FAIL = 50.0, 0.5  # MSE thresholds: above any MSE of the small slice / below any


def states(dag_run):
    return {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dag_run.get_task_instances()}


def state(dag_run) -> str:
    return str(getattr(dag_run.state, "value", dag_run.state))


def keys(s3, bucket, prefix):
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []))


def read_json(s3, bucket, key):
    return json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def executions(aws) -> list[dict]:
    return aws["sm"].list_pipeline_executions(PipelineName=aws["pipeline"], MaxResults=100)[
        "PipelineExecutionSummaries"]


def run(dag_module, aws, logical_date, threshold, run_after=None, source=None):
    return dag_module.abalone_pipeline.test(logical_date=logical_date, run_after=run_after or logical_date,
                                            run_conf={"mse_threshold": threshold, "source": source or aws["source"]})


@pytest.fixture
def on_call(emulated_aws, aws_connection, monkeypatch):
    """The Variable airsage_on_call pointing at a loopback webhook and an SNS topic with a queue (on the service)."""
    topic_arn, receive = sns_inbox(aws_connection)
    with WebhookInbox() as inbox:
        monkeypatch.setenv("AIRFLOW_VAR_AIRSAGE_ON_CALL",
                           json.dumps({"webhook_url": inbox.url, "sns_topic_arn": topic_arn}))
        yield inbox, receive


@pytest.fixture
def trigger_events(monkeypatch):
    """The events PipelineExecutionTrigger yielded in this test (it runs only when the sensor deferred)."""
    from airsage.triggers.pipeline_execution import PipelineExecutionTrigger

    events: list[dict] = []
    real_run = PipelineExecutionTrigger.run

    async def recording_run(self):
        async for event in real_run(self):
            events.append(event.payload)
            yield event

    monkeypatch.setattr(PipelineExecutionTrigger, "run", recording_run)
    return events


def test_pass_path_trains_in_the_service_and_reports_in_s3(dag_module, emulated_aws, trigger_events):
    from airsage.naming import run_path_segment

    s3, sm, bucket = emulated_aws["s3"], emulated_aws["sm"], emulated_aws["bucket"]
    dag_run = run(dag_module, emulated_aws, DAY, PASS)
    assert states(dag_run) == {
        "stage_input": "success", "upsert_pipeline": "success", "start_execution": "success",
        "wait_for_execution": "success", "read_metrics": "success", "gate": "success",
        "publish_report": "success", "alert_on_call": "skipped",
        "approve_model": "skipped",  # approval is off in-process (tests/conftest.py)
    }
    assert sm.describe_pipeline(PipelineName=emulated_aws["pipeline"])["PipelineArn"]
    assert keys(s3, bucket, f"{PREFIX}/code/") and all(k.endswith(".py") for k in keys(s3, bucket, f"{PREFIX}/code/"))
    assert keys(s3, bucket, f"{PREFIX}/input/") == [f"{PREFIX}/input/ds=2026-11-03/abalone.csv"]
    folder = f"{PREFIX}/reports/ds=2026-11-03/{run_path_segment(dag_run.run_id)}"
    assert keys(s3, bucket, f"{PREFIX}/reports/") == sorted([
        *(f"{folder}/{name}" for name in ("metrics.json", "report.html")),
        f"{PREFIX}/reports/ds=2026-11-03/latest.json"])
    pointer = read_json(s3, bucket, f"{PREFIX}/reports/ds=2026-11-03/latest.json")
    assert (pointer["run_id"], pointer["kind"], pointer["uri"]) == (dag_run.run_id, "report",
                                                                    f"s3://{bucket}/{folder}/report.html")

    (execution,) = executions(emulated_aws)
    arn = execution["PipelineExecutionArn"]
    assert execution["PipelineExecutionStatus"] == "Succeeded"
    assert execution["PipelineExecutionDisplayName"].startswith("abalone-pipeline-2026-11-03-")
    params = {p["Name"]: p["Value"] for p in sm.list_pipeline_parameters_for_execution(
        PipelineExecutionArn=arn)["PipelineParameters"]}
    assert params == {"InputData": f"s3://{bucket}/{PREFIX}/input/ds=2026-11-03/abalone.csv",
                      "BatchData": f"s3://{bucket}/{PREFIX}/batch/ds=2026-11-03/batch.csv",
                      "MseThreshold": str(PASS)}
    # real work happened in the service: every step ran, a training job completed, a model was registered
    steps = {s["StepName"]: s for s in sm.list_pipeline_execution_steps(PipelineExecutionArn=arn)[
        "PipelineExecutionSteps"]}
    assert {"PreprocessAbalone", "TrainAbalone", "EvaluateAbalone", "RegisterAbaloneModel"} <= set(steps)
    assert all(s["StepStatus"] == "Succeeded" for s in steps.values())
    training = steps["TrainAbalone"]["Metadata"]["TrainingJob"]["Arn"].rsplit("/", 1)[1]
    assert sm.describe_training_job(TrainingJobName=training)["TrainingJobStatus"] == "Completed"
    metrics = read_json(s3, bucket, f"{folder}/metrics.json")
    evaluation_key = next(k for k in keys(s3, bucket, f"{PREFIX}/executions/{arn.rsplit('/', 1)[1]}/")
                          if k.endswith("evaluation.json"))
    evaluated = read_json(s3, bucket, evaluation_key)["regression_metrics"]["mse"]["value"]
    assert json.dumps(metrics).count(str(evaluated)) >= 1

    # the Airflow Assets the run updated; the registered version's ARN rides in its event
    events = asset_events(dag_run)
    registered = steps["RegisterAbaloneModel"]["Metadata"]["RegisterModel"]["Arn"]
    assert events["x-airsage://abalone_pipeline/model-package"]["model_package_arn"] == registered
    assert {"x-airsage://abalone_pipeline/input-partition", "x-airsage://abalone_pipeline/metrics",
            "x-airsage://abalone_pipeline/report"} < set(events)
    # the XCom's cost: the service's job times, the step kinds' billing, the repository's us-east-1 prices
    cost = dag_run.get_task_instance("wait_for_execution").xcom_pull(task_ids="wait_for_execution")["cost"]
    estimate = {line["step"]: line for line in cost["estimate"]["steps"]}
    assert estimate["RegisterAbaloneModel"]["usd"] == 0.0 and estimate["TrainAbalone"]["usage"] == "training"
    assert estimate["TrainAbalone"]["usd"] > 0 and cost["estimate"]["complete"]

    # the sensor deferred (its first describe found the execution Executing) and the trigger saw it end
    assert trigger_events == [{"status": "done", "execution_status": "Succeeded", "execution_arn": arn}]


def test_a_second_run_reattaches_a_changed_threshold_starts_anew_and_one_token_gives_one_execution(
        dag_module, emulated_aws):
    from airsage.hooks.sagemaker_pipeline import SageMakerPipelineHook
    from airsage.naming import client_request_token

    first = run(dag_module, emulated_aws, DAY, PASS)
    second = run(dag_module, emulated_aws, DAY, PASS, run_after=DAY + timedelta(hours=5))
    assert second.run_id != first.run_id and states(second)["publish_report"] == "success"
    assert len(executions(emulated_aws)) == 1  # same inputs: re-attached, no second execution
    changed = run(dag_module, emulated_aws, DAY, 40.0, run_after=DAY + timedelta(hours=6))
    assert states(changed)["publish_report"] == "success" and len(executions(emulated_aws)) == 2

    # two starts racing with one ClientRequestToken (what two runs with the same inputs send): one execution
    hook = SageMakerPipelineHook(aws_conn_id="aws_default")
    barrier, arns = threading.Barrier(2), []

    def start():
        barrier.wait()
        arns.append(hook.start_execution(emulated_aws["pipeline"], "racing", {"MseThreshold": "45.0"},
                                         client_request_token("racing", 0)))

    threads = [threading.Thread(target=start) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(arns) == 2 and arns[0] == arns[1]
    assert [e["PipelineExecutionArn"] for e in executions(emulated_aws)
            if e.get("PipelineExecutionDisplayName") == "racing"] == [arns[0]]
    assert len(executions(emulated_aws)) == 3


def test_a_failed_gate_notifies_on_call_and_fails_the_run(dag_module, emulated_aws, on_call):
    from airsage.naming import run_path_segment

    inbox, receive = on_call
    s3, sm, bucket = emulated_aws["s3"], emulated_aws["sm"], emulated_aws["bucket"]
    run(dag_module, emulated_aws, DAY, PASS)
    modified = sm.describe_pipeline(PipelineName=emulated_aws["pipeline"])["LastModifiedTime"]
    dag_run = run(dag_module, emulated_aws, DAY + timedelta(days=1), FAIL)
    assert state(dag_run) == "failed"
    assert states(dag_run)["wait_for_execution"] == "success"  # the pipeline's own gate: an outcome, not an error
    assert states(dag_run)["publish_report"] == "skipped" and states(dag_run)["alert_on_call"] == "failed"
    assert sm.describe_pipeline(PipelineName=emulated_aws["pipeline"])["LastModifiedTime"] == modified
    folder = f"{PREFIX}/reports/ds=2026-11-04/{run_path_segment(dag_run.run_id)}"
    assert keys(s3, bucket, f"{PREFIX}/reports/ds=2026-11-04/") == sorted(
        [f"{folder}/ALERT.json", f"{PREFIX}/reports/ds=2026-11-04/latest.json"])
    alert = read_json(s3, bucket, f"{folder}/ALERT.json")
    assert alert["value"] > FAIL and (alert["metric"], alert["threshold"], alert["kind"]) == ("mse", FAIL, "quality_gate")
    assert alert["execution_link"].startswith("https://console.aws.amazon.com/sagemaker/")

    # the execution really Failed at the Fail step, with the service's reason
    execution = sm.describe_pipeline_execution(PipelineExecutionArn=alert["execution_arn"])
    assert execution["PipelineExecutionStatus"] == "Failed"
    failed = [s for s in sm.list_pipeline_execution_steps(PipelineExecutionArn=alert["execution_arn"])[
        "PipelineExecutionSteps"] if s["StepStatus"] == "Failed"]
    assert [s["StepName"] for s in failed] == ["AbaloneMseFail"]
    assert failed[0]["FailureReason"] == execution["FailureReason"] and str(FAIL) in execution["FailureReason"]

    (payload,) = inbox.received  # exactly one: the failure callback skips the gate failure
    assert {k: payload[k] for k in ("kind", "dag_id", "run_id", "task_id", "metric", "value", "threshold")} == {
        "kind": "quality_gate", "dag_id": "abalone_pipeline", "run_id": dag_run.run_id, "task_id": "alert_on_call",
        "metric": "mse", "value": alert["value"], "threshold": FAIL}
    assert payload["execution_arn"] == alert["execution_arn"] and payload["logical_date"].startswith("2026-11-04")
    assert "quality gate: mse " in payload["message"] and f"> threshold {FAIL:g}" in payload["message"]
    (envelope,) = receive()
    assert envelope["Message"] == payload["message"]

    # clearing the run: the execution failed only at the quality gate, so it is re-attached, not re-run
    again = run(dag_module, emulated_aws, DAY + timedelta(days=1), FAIL, run_after=DAY + timedelta(days=1, hours=3))
    assert state(again) == "failed" and states(again)["alert_on_call"] == "failed"
    assert len(executions(emulated_aws)) == 2


def test_a_failing_step_fails_the_wait_with_the_services_reason_and_notifies(dag_module, emulated_aws, on_call,
                                                                              tmp_path):
    inbox, receive = on_call
    # stage_input checks the header and the label; the Preprocess step checks every cell and fails
    bad = tmp_path / "bad.csv"
    lines = open(emulated_aws["source"]).read().splitlines()
    lines[5] = "Q" + lines[5][1:]
    bad.write_text("\n".join(lines) + "\n")
    dag_run = run(dag_module, emulated_aws, DAY + timedelta(days=2), PASS, source=str(bad))
    assert state(dag_run) == "failed" and states(dag_run)["wait_for_execution"] == "failed"
    (execution,) = executions(emulated_aws)
    arn = execution["PipelineExecutionArn"]
    describe = emulated_aws["sm"].describe_pipeline_execution(PipelineExecutionArn=arn)
    assert describe["PipelineExecutionStatus"] == "Failed"
    assert "PreprocessAbalone" in describe["FailureReason"] and "unknown sex code 'Q'" in describe["FailureReason"]

    (payload,) = inbox.received
    assert (payload["kind"], payload["task_id"], payload["execution_arn"]) == ("task_failure", "wait_for_execution",
                                                                               arn)
    assert payload["execution_link"].startswith("https://console.aws.amazon.com/sagemaker/")
    assert "ended Failed: " in payload["error"] and "unknown sex code 'Q'" in payload["error"]
    assert payload["failing_steps"] == ["PreprocessAbalone"]
    (envelope,) = receive()
    assert envelope["Subject"] == "airsage: task wait_for_execution failed in abalone_pipeline 2026-11-05"
    assert arn in envelope["Message"] and "PreprocessAbalone" in envelope["Message"]
