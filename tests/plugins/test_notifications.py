"""On-call notifications: the Variable, the payload, the webhook (loopback server) and SNS (the emulated service → SQS)."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pytest
from airsage_test_support import FakeTI, WebhookInbox, sns_inbox

from airsage.exceptions import PipelineExecutionFailed, QualityGateFailed
from airsage.notifications.on_call import (
    OnCallConfigError,
    OnCallNotifier,
    OnCallTargets,
    build_payload,
    on_call_line,
    parse_targets,
)
from airsage.notifications.webhook import WebhookError, WebhookNotifier, redacted

PAYLOAD_KEYS = {"kind", "dag_id", "run_id", "logical_date", "task_id", "metric", "value", "threshold", "comparison",
                "failing_steps", "execution_arn", "execution_link", "message"}
EXECUTION = {"execution_arn": "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/abc",
             "console_url": "https://console.aws.amazon.com/sagemaker/home?region=us-east-1#/pipelines/p/executions/abc",
             "status": "Failed"}


def context(exception=None, task_id="alert_on_call"):
    from datetime import UTC, datetime

    return {"dag": SimpleNamespace(dag_id="abalone_pipeline"), "run_id": "manual__2026-11-01T10:00:00+00:00",
            "ds": "2026-11-01", "logical_date": datetime(2026, 11, 1, tzinfo=UTC), "ti": FakeTI(task_id, try_number=2),
            "params": {"mse_threshold": 6.0}, "exception": exception}


def gate_payload():
    return build_payload(context(), kind="quality_gate", metric="mse", value=7.123456789, threshold=6.0,
                         failing_steps=[{"name": "AbaloneMseFail", "status": "Failed", "reason": "MSE too high"}],
                         execution=EXECUTION, outcome_location="s3://b/p/reports/ds=2026-11-01/run=x/ALERT.json")


def logged(capfd) -> str:
    out, err = capfd.readouterr()
    return out + err


# -- configuration ---------------------------------------------------------------------------
@pytest.mark.parametrize(("raw", "targets"), [
    (None, None),
    ("", None),
    ("{}", None),
    ('{"webhook_url": "https://hooks.example/x"}', OnCallTargets(webhook_url="https://hooks.example/x")),
    ('{"sns_topic_arn": "arn:aws:sns:eu-west-1:123456789012:on-call", "aws_conn_id": "aws_alerts"}',
     OnCallTargets(sns_topic_arn="arn:aws:sns:eu-west-1:123456789012:on-call", aws_conn_id="aws_alerts")),
])
def test_targets_from_the_variable(raw, targets):
    assert parse_targets(raw) == targets


@pytest.mark.parametrize(("raw", "message"), [
    ("{oops", "Variable airsage_on_call is not JSON: Expecting property name enclosed in double quotes at line 1"),
    ('["https://x"]', "must be a JSON object with webhook_url, sns_topic_arn, aws_conn_id; got a list"),
    ('{"webhook": "https://x"}', "unknown key(s) ['webhook']"),
    ('{"webhook_url": "ftp://x/y"}', "webhook_url must be an http:// or https:// URL with a host"),
    ('{"webhook_url": 5}', "webhook_url must be a string, got int"),
    ('{"sns_topic_arn": "on-call"}', "sns_topic_arn 'on-call' is not an SNS topic ARN"),
])
def test_an_invalid_variable_is_named_clearly(raw, message):
    with pytest.raises(OnCallConfigError, match=re.escape(message)):
        parse_targets(raw)


# -- payload and line -------------------------------------------------------------------------
def test_the_payload_names_everything_on_call_needs_with_readable_numbers():
    payload = gate_payload()
    assert PAYLOAD_KEYS <= set(payload)
    assert (payload["kind"], payload["dag_id"], payload["run_id"], payload["task_id"], payload["try_number"]) == (
        "quality_gate", "abalone_pipeline", "manual__2026-11-01T10:00:00+00:00", "alert_on_call", 2)
    assert payload["logical_date"] == "2026-11-01T00:00:00+00:00"
    assert (payload["metric"], payload["value"], payload["threshold"]) == ("mse", 7.123456789, 6.0)  # raw numbers
    assert payload["failing_steps"] == ["AbaloneMseFail"]
    assert payload["execution_link"] == EXECUTION["console_url"]
    message = payload["message"]
    for fact in ("quality gate: mse 7.123 > threshold 6", "DAG: abalone_pipeline",
                 "run: manual__2026-11-01T10:00:00+00:00 (task alert_on_call, try 2)",
                 "logical date: 2026-11-01T00:00:00+00:00", "mse: 7.123; threshold (<=): 6",
                 "failing step(s): AbaloneMseFail (Failed: MSE too high)", f"execution: {EXECUTION['execution_arn']}",
                 f"link: {EXECUTION['console_url']}", "alert record: s3://b/p/reports/ds=2026-11-01/run=x/ALERT.json"):
        assert fact in message, fact
    line = on_call_line(payload)
    assert "\n" not in line and line.startswith("ON-CALL quality gate failed | quality gate: mse 7.123 > threshold 6")
    assert "| try 2 |" in line and EXECUTION["execution_arn"] in line and "failing step(s): AbaloneMseFail" in line


def test_the_payload_carries_what_changed_since_the_last_good_run():
    changed = {"summary": ["since the last good run 2026-10-31 (arn:…/execution/old):",
                           "parameter MseThreshold: 6.0 -> 0.5"]}
    payload = build_payload(context(), kind="quality_gate", metric="mse", value=7.0, threshold=0.5,
                            execution=EXECUTION, what_changed=changed)
    assert payload["what_changed"] == changed["summary"]
    assert payload["message"].endswith("what changed since the last good run:\n"
                                       "  since the last good run 2026-10-31 (arn:…/execution/old):\n"
                                       "  parameter MseThreshold: 6.0 -> 0.5")
    assert gate_payload()["what_changed"] is None  # not known: the key is there, empty
    assert "\n" not in on_call_line(payload)


# -- webhook ----------------------------------------------------------------------------------
def test_the_webhook_receives_the_json_payload_even_with_a_proxy_configured(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # a loopback target never goes through it
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    with WebhookInbox() as inbox:
        WebhookNotifier(url=inbox.url, payload=gate_payload()).notify(context())
    (received,) = inbox.received
    assert received == json.loads(json.dumps(gate_payload()))
    assert inbox.headers[0]["Content-Type"] == "application/json"


@pytest.mark.parametrize(("inbox", "message"), [
    (dict(status=500), "POST http://127.0.0.1:{port}/… answered HTTP 500 Internal Server Error"),
    (dict(status=302, location="http://127.0.0.1:9/elsewhere"), "POST http://127.0.0.1:{port}/… answered HTTP 302"),
    (dict(delay=2.0), "POST http://127.0.0.1:{port}/… timed out after 0.5 s"),
])
def test_a_failed_webhook_is_one_line_without_the_secret_path(inbox, message):
    with WebhookInbox(**inbox) as server, pytest.raises(WebhookError) as failed:
        WebhookNotifier(url=server.url, payload=gate_payload(), timeout=0.5).notify(context())
    port = server.url.split(":")[2].split("/")[0]
    assert str(failed.value).startswith(message.format(port=port))
    assert "secret-token" not in str(failed.value) and "\n" not in str(failed.value)


def test_a_closed_port_is_reported_and_urls_are_redacted():
    with pytest.raises(WebhookError, match=r"POST http://127.0.0.1:9/… failed: .*refused"):
        WebhookNotifier(url="http://127.0.0.1:9/hook/secret", payload={}).notify(context())
    assert redacted("https://user:pw@hooks.slack.com/services/T/B/X?token=1") == "https://hooks.slack.com/…"
    assert redacted("http://[::1]:8080") == "http://[::1]:8080"
    with pytest.raises(ValueError, match="http:// or https://"):
        WebhookNotifier(url="file:///etc/passwd", payload={})


# -- the notifier: one path for the gate and for failures -----------------------------------------
def test_no_variable_is_a_clear_log_line_not_an_error(monkeypatch, capfd):
    monkeypatch.delenv("AIRFLOW_VAR_AIRSAGE_ON_CALL", raising=False)
    notifier = OnCallNotifier(payload=gate_payload())
    notifier.notify(context())
    assert notifier.delivered == []
    assert "no on-call notification target is configured (Variable airsage_on_call" in logged(capfd)


def test_an_invalid_variable_or_a_dead_target_is_logged_and_the_others_still_get_it(monkeypatch, capfd):
    monkeypatch.setenv("AIRFLOW_VAR_AIRSAGE_ON_CALL", "{oops")
    OnCallNotifier(payload=gate_payload()).notify(context())
    assert "on-call notification not sent: Variable airsage_on_call is not JSON" in logged(capfd)

    with WebhookInbox(status=503) as inbox:
        monkeypatch.setenv("AIRFLOW_VAR_AIRSAGE_ON_CALL", json.dumps({"webhook_url": inbox.url}))
        notifier = OnCallNotifier(payload=gate_payload())
        notifier.notify(context())  # never raises: the failure being reported stays the task's failure
    assert notifier.delivered == [] and len(inbox.received) == 1
    assert "on-call notification to webhook http://127.0.0.1:" in logged(capfd)


def test_the_failure_callback_sends_a_task_failure_with_the_execution_and_failing_steps(monkeypatch, capfd):
    error = PipelineExecutionFailed(EXECUTION, "Step failure", [
        {"name": "TrainAbalone", "status": "Failed", "reason": "AlgorithmError: OOM\nstderr tail"}])
    with WebhookInbox() as inbox:
        monkeypatch.setenv("AIRFLOW_VAR_AIRSAGE_ON_CALL", json.dumps({"webhook_url": inbox.url}))
        OnCallNotifier(gate={"metric": "mse", "threshold_param": "mse_threshold", "comparison": "<="}).notify(
            context(error, task_id="wait_for_execution"))
    (payload,) = inbox.received
    assert (payload["kind"], payload["task_id"], payload["try_number"]) == ("task_failure", "wait_for_execution", 2)
    assert payload["failing_steps"] == ["TrainAbalone"] and payload["execution_arn"] == EXECUTION["execution_arn"]
    assert payload["execution_link"] == EXECUTION["console_url"] and payload["threshold"] == 6.0
    assert payload["metric"] == "mse"
    assert "ended Failed: Step failure" in payload["error"]
    assert "failing step(s): TrainAbalone (Failed: AlgorithmError: OOM" in payload["message"]
    line = next(x for x in logged(capfd).splitlines() if "ON-CALL task wait_for_execution failed" in x)
    assert EXECUTION["execution_arn"] in line and "failing step(s): TrainAbalone" in line


def test_the_failure_callback_does_not_notify_twice_for_the_quality_gate(monkeypatch):
    with WebhookInbox() as inbox:
        monkeypatch.setenv("AIRFLOW_VAR_AIRSAGE_ON_CALL", json.dumps({"webhook_url": inbox.url}))
        OnCallNotifier().notify(context(QualityGateFailed("mse", 7.1, 6.0)))
    assert inbox.received == []
    assert str(QualityGateFailed("mse", 7.123456, 0.001)) == "quality gate: mse 7.123 > threshold 0.001"
    assert str(QualityGateFailed("auc", 0.71, 0.8, ">=")) == "quality gate: auc 0.71 < threshold 0.8"


def test_sns_delivers_to_a_subscribed_queue(aws_connection, monkeypatch):
    topic_arn, receive = sns_inbox(aws_connection)
    monkeypatch.setenv("AIRFLOW_VAR_AIRSAGE_ON_CALL", json.dumps({"sns_topic_arn": topic_arn}))
    payload = gate_payload()
    payload["message"] += "\n{{ this is not a template }}"  # failure text is data, never Jinja
    notifier = OnCallNotifier(aws_conn_id="aws_default", payload=payload)
    notifier.notify(context())
    assert notifier.delivered == [f"SNS topic {topic_arn}"]
    (envelope,) = receive()
    assert envelope["Subject"] == "airsage: quality gate failed for abalone_pipeline 2026-11-01"
    assert envelope["Message"] == payload["message"]
    assert envelope["MessageAttributes"]["kind"]["Value"] == "quality_gate"
    assert envelope["MessageAttributes"]["run_id"]["Value"] == "manual__2026-11-01T10:00:00+00:00"
