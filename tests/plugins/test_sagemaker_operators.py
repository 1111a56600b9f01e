"""The SageMaker-backend operators against the emulated SageMaker service, run outside a DAG run.

Every outcome comes from a real execution of airsage_fake_source's small pipeline on the service:
a failing processing script, StopPipelineExecution, the pipeline's own MSE Fail step, a step that
sleeps, the evaluation report a processing job wrote, the version a RegisterModel step registered.
No SageMaker call is stubbed and no service record is edited.
"""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException, TaskDeferred
from airsage_fake_source import PREFIX

from airsage.exceptions import PipelineExecutionFailed
from airsage.hooks.sagemaker_pipeline import SageMakerPipelineHook
from airsage.links.pipeline_execution import SageMakerPipelineExecutionLink
from airsage.naming import date_display_prefix
from airsage.operators.gate import MetricGateOperator
from airsage.operators.read_metrics import ReadPropertyFileOperator
from airsage.operators.start_execution import StartPipelineExecutionOperator
from airsage.operators.upsert_pipeline import UpsertPipelineOperator
from airsage.sensors.pipeline_execution import PipelineExecutionSensor
from airsage.testing import wait_for_execution as wait_for
from airsage.testing import wait_for_step
from airsage.triggers.pipeline_execution import PipelineExecutionTrigger

SOURCE = "airsage_fake_source:build"
RUN_ID = "scheduled__2026-11-01T00:00:00+00:00"
DEFAULT = {"MseThreshold": "6", "ProcessingInstanceCount": 1}


@pytest.fixture
def deployed(names, make_context):
    op = UpsertPipelineOperator(task_id="upsert_pipeline", backend="sagemaker", source=SOURCE,
                                config_overrides=names.overrides)
    return {**op.execute(make_context()), "names": names}


def start(make_context, deployed, parameters=None, run_id=RUN_ID, ds="2026-11-01", display_name=None):
    op = StartPipelineExecutionOperator(
        task_id="start_execution", pipeline=deployed["names"].pipeline,
        parameters=parameters if parameters is not None else DEFAULT, display_name=display_name,
    )
    ctx = make_context(run_id=run_id, ds=ds)
    return op.execute(ctx), ctx


def finished(sagemaker_client, result) -> dict:
    """Wait until the service ran the execution to its end; returns DescribePipelineExecution."""
    return wait_for(sagemaker_client, result["execution_arn"], timeout=120)


def executions(sagemaker_client, deployed):
    return sagemaker_client.list_pipeline_executions(PipelineName=deployed["names"].pipeline)["PipelineExecutionSummaries"]


def test_upsert_operator_stages_code_once_and_deploys_once(names, make_context, s3_client, sagemaker_client):
    op = UpsertPipelineOperator(task_id="upsert_pipeline", backend="sagemaker", source=SOURCE,
                                config_overrides=names.overrides)
    first = op.execute(make_context())
    assert (first["action"], first["code_uploaded"], first["bucket"], first["prefix"]) == ("created", 1, names.bucket,
                                                                                          PREFIX)
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=names.bucket, Prefix=f"{PREFIX}/code/")["Contents"]]
    assert len(keys) == 1 and keys[0].endswith("/evaluate.py")
    second = UpsertPipelineOperator(task_id="upsert_pipeline", backend="sagemaker", source=SOURCE,
                                    config_overrides=names.overrides).execute(make_context())
    assert (second["action"], second["code_uploaded"]) == ("unchanged", 0)
    changed = UpsertPipelineOperator(task_id="upsert_pipeline", backend="sagemaker", source=SOURCE,
                                     config_overrides={**names.overrides, "mse": 3}).execute(make_context())
    assert changed["action"] == "updated"


def test_start_derives_display_name_casts_parameters_and_pushes_link(deployed, make_context, sagemaker_client):
    result, ctx = start(make_context, deployed)
    assert result["display_name"].startswith(date_display_prefix("abalone_pipeline", "2026-11-01"))
    assert result["parameters"] == {"MseThreshold": "6.0", "ProcessingInstanceCount": "1"}
    assert result["inputs"]["parameters"] == result["parameters"]
    assert result["inputs"]["definition"] == deployed["definition_sha256"][:16]
    assert result["execution_id"] == result["execution_arn"].rsplit("/", 1)[-1]
    assert result["console_url"].startswith("https://console.aws.amazon.com/sagemaker/home?region=us-east-1#/pipelines/")
    sent = sagemaker_client.list_pipeline_parameters_for_execution(PipelineExecutionArn=result["execution_arn"])
    assert {p["Name"]: p["Value"] for p in sent["PipelineParameters"]}.items() >= result["parameters"].items()
    link = ctx["ti"].xcoms[SageMakerPipelineExecutionLink.key]
    assert SageMakerPipelineExecutionLink().format_link(**link) == result["console_url"]


def test_unknown_parameter_fails_without_starting(deployed, make_context, sagemaker_client):
    with pytest.raises(AirflowFailException, match=re.escape("unknown parameter(s) MseTreshold (declared:")):
        start(make_context, deployed, {"MseTreshold": 5})
    with pytest.raises(AirflowFailException, match=re.escape("parameter ProcessingInstanceCount (Integer): expected an integer")):
        start(make_context, deployed, {"ProcessingInstanceCount": "one"})
    assert executions(sagemaker_client, deployed) == []


STAGED = {"hashes": {"input data": "a" * 64, "batch data": "b" * 64}}


def logged(capfd) -> str:
    """What the operators logged (Airflow's task loggers are structlog loggers writing to stdout/stderr)."""
    out, err = capfd.readouterr()
    return out + err


def test_same_inputs_reattach_a_changed_input_starts_anew(deployed, make_context, sagemaker_client, capfd):
    sleeping = {**DEFAULT, "Sleep": "20"}  # the first execution stays Executing while the test re-attaches
    first, _ = start(make_context, deployed, sleeping)
    again, _ = start(make_context, deployed, sleeping)  # a retry of the same run
    assert again["execution_arn"] == first["execution_arn"] and again["status"] == "Executing"
    other_run, _ = start(make_context, deployed, sleeping, run_id="manual__2026-11-01T08:00:00+00:00")  # same date
    assert other_run["execution_arn"] == first["execution_arn"]
    text = logged(capfd)
    assert "Re-attaching to Executing execution" in text and "same inputs (no staged data, definition" in text

    changed, _ = start(make_context, deployed, {**sleeping, "MseThreshold": "0.5"})
    assert changed["execution_arn"] != first["execution_arn"]
    text = logged(capfd)
    assert f"inputs changed since {first['execution_arn']}" in text
    assert "parameter MseThreshold (6.0 -> 0.5)" in text
    other_date, _ = start(make_context, deployed, run_id="scheduled__2026-11-02T00:00:00+00:00", ds="2026-11-02")
    assert other_date["execution_arn"] not in (first["execution_arn"], changed["execution_arn"])
    assert len(executions(sagemaker_client, deployed)) == 3
    for result in (first, changed):  # leave nothing running behind
        SageMakerPipelineHook(aws_conn_id="aws_default").stop_execution(result["execution_arn"], "test over")


def test_the_staged_data_hashes_are_inputs_too(deployed, make_context, sagemaker_client):
    def start_with(staged):
        op = StartPipelineExecutionOperator(task_id="start_execution", pipeline=deployed["names"].pipeline,
                                            parameters={"MseThreshold": "6"}, inputs=staged)
        return op.execute(make_context())

    first = start_with(STAGED)
    assert start_with(dict(STAGED))["execution_arn"] == first["execution_arn"]
    assert first["inputs"]["input data"] == "a" * 16
    assert start_with({"hashes": {**STAGED["hashes"], "input data": "c" * 64}})["execution_arn"] != first["execution_arn"]
    assert start_with({"hashes": {**STAGED["hashes"], "batch data": "c" * 64}})["execution_arn"] != first["execution_arn"]
    assert len(executions(sagemaker_client, deployed)) == 3


def test_a_killed_then_retried_start_creates_no_second_execution(deployed, make_context, sagemaker_client, monkeypatch):
    # fault injection around the REAL call: the start reaches the service, then the worker dies
    real_start = SageMakerPipelineHook.start_execution
    tokens = []

    def start_then_die(self, *args, **kwargs):
        tokens.append(args[-1])
        real_start(self, *args, **kwargs)
        raise KeyboardInterrupt("worker killed after StartPipelineExecution, before the XCom push")

    monkeypatch.setattr(SageMakerPipelineHook, "start_execution", start_then_die)
    with pytest.raises(KeyboardInterrupt):
        start(make_context, deployed)
    monkeypatch.setattr(SageMakerPipelineHook, "start_execution", real_start)
    retried, _ = start(make_context, deployed)
    assert len(executions(sagemaker_client, deployed)) == 1
    assert executions(sagemaker_client, deployed)[0]["PipelineExecutionArn"] == retried["execution_arn"]
    assert len(tokens) == 1


def test_a_failed_execution_is_resumed_then_replaced_with_a_new_token_once_the_definition_changed(
        deployed, make_context, sagemaker_client, monkeypatch, capfd):
    # a fixed display name, so that the same "run" meets its failed execution after the definition changed
    failing, display = {**DEFAULT, "Outcome": "fail"}, "abalone-pipeline-2026-11-01-fixed"
    first, _ = start(make_context, deployed, failing, display_name=display)
    assert finished(sagemaker_client, first)["PipelineExecutionStatus"] == "Failed"
    resumed, _ = start(make_context, deployed, failing, display_name=display)  # unchanged: RetryPipelineExecution
    assert resumed["execution_arn"] == first["execution_arn"]
    assert f"Resuming execution {first['execution_arn']} (definition unchanged" in logged(capfd)
    assert finished(sagemaker_client, first)["PipelineExecutionStatus"] == "Failed"

    UpsertPipelineOperator(task_id="upsert_pipeline", backend="sagemaker", source=SOURCE,
                           config_overrides={**deployed["names"].overrides, "mse": 3}).execute(make_context())
    tokens = []
    real_start = SageMakerPipelineHook.start_execution
    monkeypatch.setattr(SageMakerPipelineHook, "start_execution",
                        lambda self, *a, **kw: tokens.append(a[-1]) or real_start(self, *a, **kw))
    second, _ = start(make_context, deployed, failing, display_name=display)
    assert second["execution_arn"] != first["execution_arn"]
    assert "Starting a new execution: definition changed since" in logged(capfd)
    assert len(executions(sagemaker_client, deployed)) == 2
    from airsage.naming import client_request_token

    assert tokens == [client_request_token(display, 1)]
    finished(sagemaker_client, second)


def wait(execution, **kwargs):
    return PipelineExecutionSensor(task_id="wait_for_execution", execution=execution,
                                   quality_gate_steps=("AbaloneMseFail",), poke_interval=0.01, **kwargs)


def test_wait_returns_the_succeeded_result(deployed, make_context, sagemaker_client):
    result, _ = start(make_context, deployed)
    finished(sagemaker_client, result)
    ctx = make_context()
    done = wait(result).execute(ctx)
    assert done["status"] == "Succeeded" and done["execution_arn"] == result["execution_arn"]
    link = ctx["ti"].xcoms[SageMakerPipelineExecutionLink.key]
    assert SageMakerPipelineExecutionLink().format_link(**link) == result["console_url"]


def test_a_failed_execution_fails_with_the_services_reason_and_failing_step(deployed, make_context, sagemaker_client):
    result, _ = start(make_context, deployed, {**DEFAULT, "Outcome": "fail"})
    describe = finished(sagemaker_client, result)
    assert describe["PipelineExecutionStatus"] == "Failed"
    with pytest.raises(PipelineExecutionFailed) as failed:
        wait(result).execute(make_context())
    message = str(failed.value)
    assert f"ended Failed: {describe['FailureReason']}." in message
    assert describe["FailureReason"].startswith("Step failure: EvaluateAbalone")
    assert re.search(r"Failing steps: EvaluateAbalone \(Failed: [^)]*ClientError: AlgorithmError: train data has no "
                     r"rows", message), message
    assert result["console_url"] in message and "Unknown" not in message


def test_a_stopped_execution_fails_with_the_reason_and_the_stopped_step(deployed, make_context, sagemaker_client):
    result, _ = start(make_context, deployed, {**DEFAULT, "Sleep": "60"})
    wait_for_step(sagemaker_client, result["execution_arn"], "EvaluateAbalone", "Executing", timeout=60)
    SageMakerPipelineHook(aws_conn_id="aws_default").stop_execution(result["execution_arn"], "stopped by the test")
    assert finished(sagemaker_client, result)["PipelineExecutionStatus"] == "Stopped"
    with pytest.raises(PipelineExecutionFailed) as failed:
        wait(result, deferrable=False).execute(make_context())
    message = str(failed.value)
    assert "ended Stopped: Stopped by a StopPipelineExecution request." in message
    assert "Failing steps: EvaluateAbalone (Stopped: " in message
    assert result["console_url"] in message and "Unknown" not in message


def test_stopped_without_step_listing_still_names_status_and_reason():
    # The service always gives a reason and lists steps, so "SageMaker gave no reason" (the fallback
    # wording of SageMakerPipelineHook.failure_details) and "not listed" (an endpoint without
    # ListPipelineExecutionSteps) cannot be produced by a real execution: the message's formatting is
    # covered here with plain values, no hook and no boto.
    execution = {"execution_arn": "arn:aws:sagemaker:us-east-1:000000000000:pipeline/p/execution/x",
                 "status": "Stopped", "console_url": "https://console.example/x"}
    failed = PipelineExecutionFailed(execution, "the execution ended Stopped and SageMaker gave no reason", [],
                                     steps_available=False)
    assert re.search("ended Stopped: the execution ended Stopped and SageMaker gave no reason. Failing steps: not listed",
                     str(failed))


def test_the_pipelines_own_mse_fail_step_is_an_outcome_not_an_error(deployed, make_context, sagemaker_client):
    result, _ = start(make_context, deployed, {**DEFAULT, "Mse": "7.1"})
    assert finished(sagemaker_client, result)["PipelineExecutionStatus"] == "Failed"
    done = wait(result).execute(make_context())
    assert done["status"] == "Failed" and done["quality_gate_failed"] is True


def test_executing_defers_to_the_trigger_which_reports_the_terminal_status(deployed, make_context, sagemaker_client):
    result, _ = start(make_context, deployed, {**DEFAULT, "Sleep": "60"})
    sensor = wait(result)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(make_context())
    trigger = deferred.value.trigger
    assert isinstance(trigger, PipelineExecutionTrigger)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airsage.triggers.pipeline_execution.PipelineExecutionTrigger"

    async def first_event():
        async for event in PipelineExecutionTrigger(**{**kwargs, "max_attempts": 3}).run():
            return event.payload

    assert asyncio.run(first_event())["status"] == "timeout"
    SageMakerPipelineHook(aws_conn_id="aws_default").stop_execution(result["execution_arn"], "stopped by the test")
    finished(sagemaker_client, result)
    event = asyncio.run(first_event())
    assert event == {"status": "done", "execution_status": "Stopped", "execution_arn": result["execution_arn"]}
    with pytest.raises(PipelineExecutionFailed, match="ended Stopped"):
        sensor.execute_complete(make_context(), event)


REPORT = {"regression_metrics": {"mse": {"value": 4.25, "standard_deviation": 0.5},
                                 "rmse": {"value": 2.06, "standard_deviation": 0.1}}}


def read_metrics(execution):
    return ReadPropertyFileOperator(task_id="read_metrics", execution=execution, backend="sagemaker",
                                    step_name="EvaluateAbalone", property_file="EvaluationReport",
                                    json_path="regression_metrics.mse.value", metric="mse")


def test_read_metrics_resolves_the_report_from_the_executions_definition(deployed, make_context, sagemaker_client):
    result, _ = start(make_context, deployed)  # the evaluate script reports mse 4.25 by default
    finished(sagemaker_client, result)
    ctx = make_context()
    metrics = read_metrics(result).execute(ctx)
    assert metrics["value"] == 4.25 and ctx["ti"].xcoms["value"] == 4.25
    names = deployed["names"]
    uri = f"s3://{names.bucket}/{PREFIX}/executions/{result['execution_id']}/EvaluateAbalone/evaluation/evaluation.json"
    assert metrics["report"] == REPORT and metrics["report_uri"] == uri


@pytest.mark.parametrize(("body", "message"), [
    ("missing", "PropertyFile EvaluationReport of step EvaluateAbalone is missing: s3://{bucket}/abalone/executions/"),
    ("{oops", "is not valid JSON: Expecting property name enclosed in double quotes at line 1 column 2"),
    ('{"regression_metrics": {"rmse": {"value": 1}}}', "JSON path 'regression_metrics.mse.value' not found: no key 'mse'"),
    ('{"regression_metrics": {"mse": {"value": NaN}}}', "regression_metrics.mse.value is nan, not a finite number"),
    ('{"regression_metrics": {"mse": {"value": "4.2"}}}', "regression_metrics.mse.value is '4.2' (str), not a number"),
])
def test_read_metrics_fails_clearly_on_bad_reports(deployed, make_context, sagemaker_client, body, message):
    # the processing job writes the report (or none); the execution's end does not matter to read_metrics
    result, _ = start(make_context, deployed, {**DEFAULT, "Report": body})
    finished(sagemaker_client, result)
    with pytest.raises(AirflowFailException) as failed:
        read_metrics(result).execute(make_context())
    assert message.format(bucket=deployed["names"].bucket) in str(failed.value)


@pytest.mark.parametrize(("value", "threshold", "branch"), [
    (4.25, "6.0", "publish_report"), (6.0, 6, "publish_report"), (7.5, "6.0", "alert_on_call"),
])
def test_gate_branches_on_value_against_threshold(make_context, value, threshold, branch):
    gate = MetricGateOperator(task_id="gate", value=value, threshold=threshold,
                              pass_task_id="publish_report", fail_task_id="alert_on_call")
    assert gate.choose_branch(make_context()) == branch


def test_gate_rejects_non_numbers(make_context):
    gate = MetricGateOperator(task_id="gate", value="nan", threshold="6",
                              pass_task_id="publish_report", fail_task_id="alert_on_call")
    with pytest.raises(AirflowFailException, match="finite numbers"):
        gate.choose_branch(make_context())


def test_reports_per_run_with_a_latest_pointer_and_never_a_mixed_folder(deployed, make_context, s3_client, sagemaker_client):
    from airsage.exceptions import QualityGateFailed
    from airsage.operators.alert import OnCallAlertOperator
    from airsage.operators.publish_report import PublishReportOperator

    bucket = deployed["names"].bucket
    report_body = {"regression_metrics": {"mse": {"value": 4.123456789, "standard_deviation": 0.5123456},
                                          "rmse": {"value": 2.0306}}}
    result, _ = start(make_context, deployed, {**DEFAULT, "Report": json.dumps(report_body)})
    finished(sagemaker_client, result)
    metrics = read_metrics(result).execute(make_context())
    prefix = f"s3://{bucket}/{PREFIX}/reports/ds=2026-11-01"
    date_key = f"{PREFIX}/reports/ds=2026-11-01"

    def publish(run_id=RUN_ID, op=PublishReportOperator, threshold="6.0"):
        extra = {"predictions_file": "predictions.csv"} if op is PublishReportOperator else {}
        return op(task_id=op.__name__, metrics=metrics, threshold=threshold, report_prefix=prefix,
                  backend="sagemaker", **extra).execute(make_context(run_id=run_id))

    def body(key):
        return s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()

    report = publish()
    run_key = f"{date_key}/run=scheduled__2026-11-01T00-00-00-00-00-"
    assert report["report_uri"].startswith(f"s3://{bucket}/{run_key}") and report["report_uri"].endswith("/report.html")
    folder = report["report_uri"].rsplit("/", 1)[0][len(f"s3://{bucket}/"):]
    assert sorted(report["written"]) == ["metrics.json", "report.html"]  # the plots are inline SVG
    html = body(f"{folder}/report.html").decode()
    assert html.count("<svg") == 3 and "Predicted vs actual" in html and "mse history" in html
    assert result["console_url"] in html.replace("&amp;", "&")
    assert "<b>mse 4.123 &lt;= threshold 6</b>" in html and "0.5123" in html and "4.1234" not in html  # 4 digits
    assert "regression_metrics.rmse" in html and "2.031" in html
    assert json.loads(body(f"{folder}/metrics.json"))["value"] == 4.123456789  # raw value kept
    latest = json.loads(body(f"{date_key}/latest.json"))
    assert {k: latest[k] for k in ("run_id", "kind", "uri", "location")} == {
        "run_id": RUN_ID, "kind": "report", "uri": report["report_uri"], "location": report["report_uri"]}
    assert latest["updated"]

    assert publish()["written"] == []  # the same run again rewrites nothing, not even latest.json
    assert json.loads(body(f"{date_key}/latest.json")) == latest

    manual = publish(run_id="manual__2026-11-01T09:30:00+00:00")  # another run of the date: its own folder
    assert manual["report_uri"] != report["report_uri"] and len(manual["written"]) == 2
    assert json.loads(body(f"{date_key}/latest.json"))["run_id"] == "manual__2026-11-01T09:30:00+00:00"

    # the first run, re-done with another outcome, flips its own folder to an alert: never both
    with pytest.raises(QualityGateFailed, match=r"^quality gate: mse 4.123 > threshold 4$"):
        publish(op=OnCallAlertOperator, threshold=4)
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket, Prefix=f"{folder}/")["Contents"]]
    assert keys == [f"{folder}/ALERT.json"]
    alert = json.loads(body(f"{folder}/ALERT.json"))
    assert (alert["kind"], alert["metric"], alert["value"], alert["threshold"], alert["comparison"]) == (
        "quality_gate", "mse", 4.123456789, 4.0, "<=")
    assert alert["execution_link"] == alert["console_url"] == result["console_url"]
    assert "quality gate: mse 4.123 > threshold 4" in alert["message"]
    latest = json.loads(body(f"{date_key}/latest.json"))
    assert (latest["run_id"], latest["kind"], latest["uri"]) == (RUN_ID, "alert", f"s3://{bucket}/{folder}/ALERT.json")
    with pytest.raises(AirflowFailException, match="not this run's ds=2026-11-01"):
        PublishReportOperator(task_id="publish_report", metrics=metrics, threshold="6.0",
                              report_prefix=prefix.replace("11-01", "11-02"), backend="sagemaker").execute(make_context())


def test_read_metrics_prefers_the_steps_processing_job_output(deployed, make_context, sagemaker_client):
    # where SageMaker lists the steps, the report is wherever the step's processing job wrote it
    # (for a cached step: the source job), not where this execution's definition would put it.
    # The second execution (another date, same arguments) reuses the first one's EvaluateAbalone.
    first, _ = start(make_context, deployed, {**DEFAULT, "Mse": "3.5"})
    finished(sagemaker_client, first)
    second, _ = start(make_context, deployed, {**DEFAULT, "Mse": "3.5"}, run_id="scheduled__2026-11-02T00:00:00+00:00",
                      ds="2026-11-02")
    assert second["execution_arn"] != first["execution_arn"]
    assert finished(sagemaker_client, second)["PipelineExecutionStatus"] == "Succeeded"
    steps = {s["StepName"]: s for s in sagemaker_client.list_pipeline_execution_steps(
        PipelineExecutionArn=second["execution_arn"])["PipelineExecutionSteps"]}
    assert steps["EvaluateAbalone"]["CacheHitResult"]["SourcePipelineExecutionArn"] == first["execution_arn"]
    metrics = read_metrics(second).execute(make_context())
    bucket = deployed["names"].bucket
    assert (metrics["value"], metrics["report_uri"]) == (
        3.5, f"s3://{bucket}/{PREFIX}/executions/{first['execution_id']}/EvaluateAbalone/evaluation/evaluation.json")


def test_wait_records_the_registered_model_package(deployed, make_context, sagemaker_client):
    result, _ = start(make_context, deployed)
    finished(sagemaker_client, result)
    group = deployed["names"].pipeline  # airsage_fake_source registers in a group named after the pipeline
    (package,) = sagemaker_client.list_model_packages(ModelPackageGroupName=group)["ModelPackageSummaryList"]
    assert re.fullmatch(rf"arn:aws:sagemaker:us-east-1:\d{{12}}:model-package/{group}/1", package["ModelPackageArn"])
    assert wait(result).execute(make_context())["model_package_arn"] == package["ModelPackageArn"]


@pytest.mark.parametrize("event", [None, {}, {"status": "timeout", "execution_status": "Executing"}])
def test_a_resumed_wait_rechecks_the_execution_instead_of_trusting_the_event(deployed, make_context, sagemaker_client, event):
    result, _ = start(make_context, deployed)
    finished(sagemaker_client, result)
    done = wait(result).execute_complete(make_context(), event)
    assert done["status"] == "Succeeded" and done["execution_arn"] == result["execution_arn"]


def test_a_resumed_wait_on_a_running_execution_defers_again_or_gives_up_with_the_real_status(deployed, make_context,
                                                                                            sagemaker_client):
    # the evaluate script sleeps, then fails: Executing for a while, then Failed
    result, _ = start(make_context, deployed, {**DEFAULT, "Sleep": "5", "Outcome": "fail"})
    with pytest.raises(TaskDeferred):
        wait(result).execute_complete(make_context(), None)
    with pytest.raises(AirflowException, match=r"Gave up waiting for .* after 2880 polls \(status now Executing\)"):
        wait(result).execute_complete(make_context(), {"status": "timeout", "execution_status": "Executing"})
    finished(sagemaker_client, result)
    with pytest.raises(PipelineExecutionFailed, match="ended Failed"):
        wait(result).execute_complete(make_context(), None)
