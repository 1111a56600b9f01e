"""Model approval in a real Airflow: the REST API, the Required Actions page in Chromium, the registry.

One ``make ui`` of this module's own, with approval on (the suite's other Airflows run with it off), and one
DAG run of ``abalone_pipeline_local`` whose ``approve_model`` task is asked again by clearing it, so every
scenario after the first costs seconds, not a pipeline run:

1. the request: awaiting_input (no slot), subject and Markdown body (MSE and threshold, ARN and version, report,
   execution, cost, what changed, date), who may answer, the approvers' notification with the Required Actions
   link;
2. Approve through ``PATCH .../hitlDetails`` → Approved in the registry with who, which run, when; a second
   answer is refused (409); the report and the XCom show it; the approved-model asset event;
3. clearing the task asks again; Reject through the REST API → Rejected;
4. a decision made in the registry while the task waits (boto3 ``UpdateModelPackage`` on the emulated service
   over the same object root, as the console or the CLI would) ends the task within a poll interval, saying who
   (the Airflow request stays unanswered: a task cannot answer it in Airflow 3.3);
5. time-out: no answer within ``timeout_hours`` → the task fails (no retry), the version keeps its status;
6. the browser: the Required Actions page's Approve button → Approved in the registry.

The retry and backfill rules are tested without Airflow (tests/plugins/test_approve_model_operator.py); the
stack test answers through the REST API (tests/stack).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

sys.path.insert(0, str(Path(__file__).parent))
import test_ui_scenarios as scenarios  # noqa: E402 - the screenshot step, shared
from ui_under_test import AirflowUnderTest  # noqa: E402

from launchers.airflow_api import quoted, wait_until  # noqa: E402

DAG_ID = "abalone_pipeline_local"
TASK = "approve_model"
DAY = "2026-11-16"
START_TIMEOUT = 600.0
RUN_TIMEOUT = 20 * 60.0
POLL_SECONDS = 4  # the scenarios that wait for a registry decision or the time-out look often
QUIET_POLL_SECONDS = 600  # the others answer while the task stays parked (see answer())
SMALL_ROWS = 400
# an answer or a registry decision reaches the task within a poll interval plus the scheduler's sweep
# (2 s here) plus a task start on a busy machine: generous, never asserted as a duration
DECISION_TIMEOUT = 180.0

pytestmark = pytest.mark.timeout(45 * 60)
_state: dict = {}


@pytest.fixture(scope="module")
def airflow_ui(repo_root, tmp_path_factory, artifacts, webhook):
    """This module's ``make ui`` (overrides the shared one): approval on, the scheduler's awaiting-input
    sweep every 2 s, approvers told through the webhook receiver."""
    scratch = tmp_path_factory.mktemp("e2e-approval")
    ui = AirflowUnderTest(repo=repo_root, home=scratch / "home", root=scratch / "objects",
                          artifacts=artifacts / "approval",
                          extra_env={"AIRFLOW_VAR_AIRSAGE_ON_CALL": json.dumps({"webhook_url": webhook.url}),
                                     "AIRFLOW__SCHEDULER__TRIGGER_TIMEOUT_CHECK_INTERVAL": "2"})
    off = os.environ.pop("AIRFLOW_VAR_AIRSAGE_APPROVAL", None)  # the suite's "approval off": not here
    try:
        ui.start(timeout=START_TIMEOUT)
    except Exception:
        ui.kill_everything()
        ui.save_logs(artifacts / "approval" / "startup-failure")
        raise
    finally:
        if off is not None:
            os.environ["AIRFLOW_VAR_AIRSAGE_APPROVAL"] = off
    yield ui
    try:
        if ui.process.poll() is None:
            ui.interrupt(timeout=60)
    finally:
        ui.kill_everything()
        ui.save_logs(artifacts / "approval" / "airflow")


@pytest.fixture(scope="module")
def api(airflow_ui):
    from launchers.airflow_api import AirflowApi

    return AirflowApi(airflow_ui.url, "admin", airflow_ui.password())


def set_settings(api, **settings) -> None:
    """The Variable airsage_approval, through the REST API (read by the task when it runs)."""
    body = {"key": "airsage_approval", "value": json.dumps(settings)}
    try:
        api.patch("/variables/airsage_approval", body)
    except Exception:  # noqa: BLE001 - not there yet
        api.post("/variables", body)


def hitl_path(run_id: str) -> str:
    return f"/dags/{DAG_ID}/dagRuns/{quoted(run_id)}/taskInstances/{TASK}/-1/hitlDetails"


def task_state(api, run_id: str) -> str | None:
    return next((ti["state"] for ti in api.task_instances(DAG_ID, run_id) if ti["task_id"] == TASK), None)


def wait_for_state(api, run_id: str, states: tuple[str, ...], timeout: float, fail_on: tuple[str, ...] = ()) -> str:
    deadline = time.monotonic() + timeout
    while True:
        state = task_state(api, run_id)
        if state in states:
            return state
        if state in fail_on:
            raise AssertionError(f"{TASK} ended {state}, expected {states}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{TASK} is {state} after {timeout:.0f} s, expected {states}")
        time.sleep(2)


def answer(api, run_id: str, option: str) -> dict:
    """Answer through the REST API as an approver would, a few seconds after the request appeared.

    Airflow 3.3 loses an answer given within about a second of the task parking: the API resumes the task
    before the scheduler has handled the parking process's exit, which it then takes for a killed task
    (up_for_retry; the retry asks again). A human never answers that fast; the settle wait keeps the test off it.
    """
    time.sleep(5)
    assert task_state(api, run_id) == "awaiting_input"
    return api.patch(hitl_path(run_id), {"chosen_options": [option], "params_input": {}})


def clear(api, run_id: str) -> None:
    """Clear approve_model (the UI's Clear, through the REST API) once the run shows as ended, as a user
    clears it from the grid: it asks again.

    The task's end is recorded before the scheduler marks the run ended; a clear in between is
    the race of a lost update on SQLite (the scheduler writes the run's state it decided from the earlier
    read and the run stays success with the task cleared; launchers.ui explains what make ui does about it).
    """
    wait_until(f"{DAG_ID} run {run_id} to end", lambda: api.run_state(DAG_ID, run_id) in ("success", "failed"),
               timeout=DECISION_TIMEOUT, interval=1)
    api.post(f"/dags/{DAG_ID}/clearTaskInstances", {"dry_run": False, "dag_run_id": run_id, "task_ids": [TASK],
                                                     "only_failed": False, "reset_dag_runs": True})


def registry(airflow_ui):
    from sm_pipeline.local.registry import LocalModelRegistry

    return LocalModelRegistry(airflow_ui.root)


def package(airflow_ui) -> dict:
    return registry(airflow_ui).describe_model_package(_state["arn"])


def reset_to_pending(airflow_ui) -> None:
    """The version back to PendingManualApproval (as a registry admin would), so the next ask waits."""
    registry(airflow_ui).update_model_package(_state["arn"], {"ModelApprovalStatus": "PendingManualApproval"})


@pytest.fixture(scope="module")
def waiting_run(api, airflow_ui, repo_root, tmp_path_factory):
    """One DAG run of the local DAG on a small CSV, up to its approval task waiting for input."""
    set_settings(api, assigned_users=["admin"], poll_seconds=QUIET_POLL_SECONDS, timeout_hours=1)
    source = tmp_path_factory.mktemp("approval-data") / "abalone-small.csv"
    lines = (repo_root / "data" / "abalone.csv").read_text().splitlines(keepends=True)
    source.write_text("".join(lines[:SMALL_ROWS + 1]))
    # a small CSV trains a worse model: a threshold it passes (the gate is not what is tested here)
    run = api.post(f"/dags/{DAG_ID}/dagRuns", {"logical_date": f"{DAY}T00:00:00Z",
                                               "conf": {"source": str(source), "mse_threshold": 100}})
    run_id = run["dag_run_id"]
    api.patch(f"/dags/{DAG_ID}", {"is_paused": False})
    stop_scheduled_runs(api)
    wait_for_state(api, run_id, ("awaiting_input",), RUN_TIMEOUT, fail_on=("failed", "skipped", "upstream_failed"))
    _state["arn"] = xcom(api, run_id, "run_local")["model_package_arn"]
    assert _state["arn"]
    return run_id


def stop_scheduled_runs(api) -> None:
    """Unpausing schedules the latest daily run: fail it at once (it is not this module's run)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        runs = [r for r in api.get(f"/dags/{DAG_ID}/dagRuns?limit=20")["dag_runs"] if r["run_type"] == "scheduled"]
        for run in runs:
            if run["state"] in ("queued", "running"):
                api.patch(f"/dags/{DAG_ID}/dagRuns/{quoted(run['dag_run_id'])}", {"state": "failed"})
        if runs:
            return
        time.sleep(1)


def xcom(api, run_id: str, task_id: str) -> dict:
    """A task's return value in ``run_id``, through the REST API."""
    value = api.get(f"/dags/{DAG_ID}/dagRuns/{quoted(run_id)}/taskInstances/{task_id}/xcomEntries/return_value"
                    "?deserialize=true")["value"]
    return json.loads(value) if isinstance(value, str) else value


def test_the_request_waits_in_awaiting_input_with_the_facts_and_tells_approvers(api, airflow_ui, waiting_run,
                                                                                 webhook):
    detail = api.get(hitl_path(waiting_run))
    version = _state["arn"].rsplit("/", 1)[1]
    assert detail["options"] == ["Approve", "Reject"] and detail["response_received"] is False
    assert detail["subject"] == f"Approve {DAG_ID} model version {version} ({DAY})?"
    body = detail["body"]
    for fact in ("Quality gate", "threshold 100", "(passed)", _state["arn"], "| Version | " + version, "| Report |",
                 "report.html", "| Execution |", "/airsage/executions/", "| Cost |", "estimated", DAY,
                 "What changed since the last approved version", "no earlier approved version"):
        assert fact in body, (fact, body)
    assert [u["id"] for u in detail["assigned_users"]] == ["admin"]
    assert package(airflow_ui)["ModelApprovalStatus"] == "PendingManualApproval"
    told = webhook.wait_for(lambda p: p.get("kind") == "approval_request" and p.get("run_id") == waiting_run, 60)
    assert told["subject"] == detail["subject"] and told["model_package_arn"] == _state["arn"]
    assert told["required_actions_url"].startswith(airflow_ui.url.rstrip("/") + f"/dags/{DAG_ID}/runs/")
    assert told["required_actions_url"].split("?")[0].endswith(f"/tasks/{TASK}/required_actions")


def test_approve_through_the_rest_api_reaches_the_registry_once(api, airflow_ui, waiting_run):
    from launchers import LauncherError

    answered = answer(api, waiting_run, "Approve")
    assert answered["chosen_options"] == ["Approve"] and answered["responded_by"]["name"] == "admin"
    with pytest.raises(LauncherError, match="HTTP 409"):  # already answered
        api.patch(hitl_path(waiting_run), {"chosen_options": ["Reject"], "params_input": {}})
    wait_for_state(api, waiting_run, ("success",), DECISION_TIMEOUT, fail_on=("failed",))
    approved = package(airflow_ui)
    assert approved["ModelApprovalStatus"] == "Approved"
    assert re.match(rf"Approved by admin in Airflow \(DAG {DAG_ID}, run {re.escape(waiting_run)}\) at 20\d\d-",
                    approved["ApprovalDescription"]), approved["ApprovalDescription"]
    # the version records the execution that made it: what the next request compares with
    assert approved["CustomerMetadataProperties"] == {
        "airsage:execution": xcom(api, waiting_run, "run_local")["execution_arn"]}
    assert api.run_state(DAG_ID, waiting_run) == "success"
    # the report shows it, the XCom carries it, the asset event names it, the event log has it
    report = next(airflow_ui.root.rglob(f"reports/ds={DAY}/run=*/report.html")).read_text()
    assert "<b>Approved</b> by admin" in report
    result = xcom(api, waiting_run, TASK)
    assert (result["approval_status"], result["decided_by"], result["source"]) == ("Approved", "admin", "written")
    events = api.get("/assets/events?limit=50")["asset_events"]
    assert any(e["extra"].get("model_package_arn") == _state["arn"] and e["extra"].get("approval_status") == "Approved"
               for e in events), events
    assert [e["detail"]["ModelApprovalStatus"] for e in registry(airflow_ui).read_events()] == [
        "PendingManualApproval", "Approved"]


def test_clearing_asks_again_and_reject_through_the_rest_api(api, airflow_ui, waiting_run):
    clear(api, waiting_run)
    wait_for_state(api, waiting_run, ("awaiting_input",), DECISION_TIMEOUT, fail_on=("failed", "success"))
    detail = api.get(hitl_path(waiting_run))
    assert detail["response_received"] is False  # Airflow emptied the earlier answer
    answer(api, waiting_run, "Reject")
    wait_for_state(api, waiting_run, ("success",), DECISION_TIMEOUT, fail_on=("failed",))
    rejected = package(airflow_ui)
    assert rejected["ModelApprovalStatus"] == "Rejected"
    assert rejected["ApprovalDescription"].startswith("Rejected by admin in Airflow")
    assert rejected["ApprovalDescription"].endswith(" clear=1]")  # the run's clear_number: cleared once
    # Airflow kept the first request's text (apache/airflow#73235); the task noticed and logged the current one
    assert "Airflow kept an earlier try's request text" in task_log(airflow_ui, waiting_run)
    assert "Asked again after the run was cleared" in task_log(airflow_ui, waiting_run)


def test_a_decision_in_the_registry_while_waiting_ends_the_task(api, airflow_ui, waiting_run, tmp_path):
    import boto3

    from airsage.testing import start_service

    set_settings(api, assigned_users=["admin"], poll_seconds=POLL_SECONDS, timeout_hours=1)
    clear(api, waiting_run)
    wait_for_state(api, waiting_run, ("awaiting_input",), DECISION_TIMEOUT, fail_on=("failed", "success"))
    service = start_service(airflow_ui.root, tmp_path)  # the emulated service over the same object root
    try:
        console = boto3.client("sagemaker", endpoint_url=service.url, region_name="us-east-1",
                               aws_access_key_id="CONSOLEUSER", aws_secret_access_key="x")  # noqa: S106 - fake
        console.update_model_package(ModelPackageArn=_state["arn"], ModelApprovalStatus="Approved",
                                     ApprovalDescription="approved in the console")
    finally:
        service.stop()
    wait_for_state(api, waiting_run, ("success",), DECISION_TIMEOUT, fail_on=("failed",))
    result = xcom(api, waiting_run, TASK)
    assert (result["approval_status"], result["decided_by"], result["source"]) == ("Approved", "CONSOLEUSER", "elsewhere")
    assert result["decided_where"] == "outside Airflow (console, CLI or another tool)"
    assert package(airflow_ui)["ApprovalDescription"] == "approved in the console"  # not overwritten
    assert "Decided elsewhere while waiting" in task_log(airflow_ui, waiting_run)


def test_no_answer_in_time_fails_the_task_and_leaves_the_version(api, airflow_ui, waiting_run):
    reset_to_pending(airflow_ui)  # a decided version is not asked about (decided before the request)
    set_settings(api, assigned_users=["admin"], poll_seconds=POLL_SECONDS, timeout_hours=0.002)  # 7.2 s
    try:
        clear(api, waiting_run)
        wait_for_state(api, waiting_run, ("failed",), DECISION_TIMEOUT, fail_on=("success", "up_for_retry"))
    finally:
        set_settings(api, assigned_users=["admin"], poll_seconds=QUIET_POLL_SECONDS, timeout_hours=1)
    assert package(airflow_ui)["ModelApprovalStatus"] == "PendingManualApproval"
    assert "no approval answer within 0.002 h" in task_log(airflow_ui, waiting_run)


def task_log(airflow_ui, run_id: str) -> str:
    """approve_model's log files of ``run_id`` (every try), as text."""
    return "".join(p.read_text(errors="replace") for p in (airflow_ui.home / "logs").rglob("*.log")
                   if f"task_id={TASK}" in str(p) and run_id in str(p))


def test_approve_from_the_required_actions_page_in_the_browser(page, api, airflow_ui, waiting_run, artifacts):
    # between two looks at the registry the task is briefly not awaiting input, and the page disables the
    # buttons then: the quiet poll interval (longer than the scenario) keeps it waiting throughout
    reset_to_pending(airflow_ui)
    clear(api, waiting_run)
    wait_for_state(api, waiting_run, ("awaiting_input",), DECISION_TIMEOUT, fail_on=("failed", "success"))
    scenarios.log_in(page, airflow_ui)
    page.goto(f"/dags/{DAG_ID}/runs/{waiting_run}/tasks/{TASK}/required_actions")
    expect(page.get_by_text(re.compile(r"Approve abalone_pipeline_local model version"))).to_be_visible()
    scenarios.shot(page, artifacts, "approval-01-required-actions")
    approve = page.get_by_role("button", name="Approve")
    expect(approve).to_be_enabled()
    approve.click()
    wait_for_state(api, waiting_run, ("success",), DECISION_TIMEOUT, fail_on=("failed",))
    approved = package(airflow_ui)
    assert approved["ModelApprovalStatus"] == "Approved"
    assert approved["ApprovalDescription"].startswith("Approved by admin in Airflow")
    page.reload()
    scenarios.shot(page, artifacts, "approval-02-answered")
