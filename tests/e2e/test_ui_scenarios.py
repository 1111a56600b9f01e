"""The Airflow UI as its users meet it, in a real browser, against the Airflow ``make ui`` starts.

Scenarios (they share one Airflow, except the last, which stops its own; each triggers what it
needs itself, the extra-link scenario reuses the default run when it ran before):
log in; trigger abalone_pipeline_local from the Trigger form with the defaults and see the
run succeed in the grid; trigger with mse_threshold 0.001 and see the run fail (red) and the
on-call webhook receive a notification naming the run; switch on Dry run in the form and see the run
succeed with run_local skipped; open run_local and follow its extra
link to the local execution page; run a two-day backfill from the backfill form and see both
runs finish; Ctrl-C make ui while a pipeline runs and see every process it started gone.

Waits are Playwright's web-first expectations (the UI refreshes itself while runs are
active) with generous timeouts; nothing asserts a duration. Each scenario prints its duration.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

import pytest
from playwright.sync_api import Page, expect

DAG_ID = "abalone_pipeline_local"
# a pipeline run takes minutes on a busy 2-core machine, longer with other runs beside it
RUN_TIMEOUT_MS = 20 * 60_000
SCENARIO_TIMEOUT_S = 45 * 60
STEPS = ("PreprocessAbalone", "TrainAbalone", "EvaluateAbalone", "CheckMseAbalone")
BACKFILL_DAYS = ("2026-11-10", "2026-11-11")  # after the DAG's start_date (2026-11-01), before today
STOP_DAY = "2026-11-20"
# what every on-call notification carries (docs: the common on-call payload)
NOTIFICATION_FIELDS = {"kind", "dag_id", "run_id", "logical_date", "task_id", "metric", "value", "threshold",
                       "failing_steps", "execution_arn", "execution_link", "message"}

pytestmark = pytest.mark.timeout(SCENARIO_TIMEOUT_S)

_runs: dict[str, str] = {}  # scenario name -> run id, for the scenarios that build on an earlier run


def shot(page: Page, artifacts, name: str) -> None:
    """A full-page screenshot of the scenario's end state into build/test-artifacts/e2e/."""
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)


def log_in(page: Page, airflow_ui) -> None:
    """The simple auth manager's form, with the password make ui's banner points at."""
    page.goto("/")
    expect(page.get_by_text("Sign into Airflow")).to_be_visible()
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(airflow_ui.password())
    page.get_by_role("button", name="Sign in").click()
    # the nav's link: the home page's stats ("0 Failed Dags", "Active Dags") are links whose names contain
    # "Dags" too, so a name match is ambiguous once they have rendered
    expect(page.get_by_test_id("nav-dags-link")).to_be_visible()


def open_trigger_form(page: Page):
    """The DAG page's Trigger button; returns the dialog."""
    page.goto(f"/dags/{DAG_ID}")
    page.get_by_role("button", name="Trigger Dag").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading", name=f"Trigger Dag - {DAG_ID}")).to_be_visible()
    return dialog


def submit_trigger_form(page: Page, dialog) -> str:
    """Click the form's Trigger button; returns the new run's id (the UI opens the run)."""
    # the DAG starts paused; while it is, the form offers to unpause it on trigger, checked by default
    unpause = dialog.get_by_role("checkbox", name=f"Unpause {DAG_ID} on trigger")
    if unpause.count():
        expect(unpause).to_be_checked()
    dialog.get_by_role("button", name="Trigger").click()
    page.wait_for_url(re.compile(rf".*/dags/{DAG_ID}/runs/[^/]+$"))
    return unquote(page.url.rsplit("/runs/", 1)[1])


def run_state_badge(page: Page):
    """The state badge in the header of the run (or task instance) page that is open."""
    return page.get_by_test_id("header-card").get_by_test_id("state-badge")


def wait_until_finished(page: Page, state: str) -> None:
    """Wait (the page refreshes itself) until the open run/task page shows a final state, then
    check it is ``state`` -- a wrong outcome fails at once instead of after the timeout."""
    badge = run_state_badge(page)
    expect(badge).to_have_text(re.compile(r"^\s*(Success|Failed|Upstream Failed|Skipped)\s*$"),
                               timeout=RUN_TIMEOUT_MS)
    expect(badge).to_have_text(state, timeout=5_000)


def grid_tooltip_of(page: Page, run_id: str):
    """Hover the run's bar in the DAG's grid; returns the tooltip that names run and state."""
    page.goto(f"/dags/{DAG_ID}")
    # the bar itself (the link around it is an inline box that can sit over the task cells)
    bar = page.locator(f'a[href="/dags/{DAG_ID}/runs/{run_id}/"] > div')
    bar.hover()
    tooltip = page.get_by_test_id("basic-tooltip").filter(has_text=f"Run ID: {run_id}")
    expect(tooltip).to_be_visible()
    return tooltip


def pick_datetime(page: Page, dialog, label: str, day: str) -> None:
    """Type ``day`` (YYYY-MM-DD), 00:00, into the form's date-time picker field ``label``."""
    dialog.get_by_role("group").filter(has_text=label).get_by_test_id("datetime-input").click()
    picker = page.get_by_role("dialog").filter(has=page.get_by_role("textbox", name=label))
    picker.get_by_role("textbox", name=label).fill(day.replace("-", "/"))
    picker.get_by_role("textbox", name="HH:mm").fill("00:00")
    page.keyboard.press("Escape")
    expect(picker).to_be_hidden()


def trigger_with_defaults(page: Page) -> str:
    """Trigger from the form without touching any field; returns the run id."""
    return submit_trigger_form(page, open_trigger_form(page))


def test_log_in(page, airflow_ui, artifacts):
    """The login form takes user admin and the generated password; the home page follows, with no plugin or
    DAG import error to show."""
    log_in(page, airflow_ui)
    expect(page.get_by_role("heading", name="Welcome")).to_be_visible()
    shot(page, artifacts, "01-logged-in")
    # what the home page's "Plugin Import Error" and "DAG import errors" badges count: nothing
    from launchers.airflow_api import AirflowApi

    api = AirflowApi(airflow_ui.url, "admin", airflow_ui.password())
    assert api.get("/plugins/importErrors")["import_errors"] == []
    assert api.get("/importErrors")["import_errors"] == []


def test_trigger_with_defaults_succeeds(page, airflow_ui, artifacts):
    """One click on Trigger with every param at its default; the run goes green in the grid."""
    log_in(page, airflow_ui)
    dialog = open_trigger_form(page)
    expect(dialog.get_by_role("spinbutton", name="MSE threshold")).to_have_value("6")
    expect(dialog.get_by_role("button", name="Trigger")).to_be_enabled()
    shot(page, artifacts, "02-trigger-form-defaults")
    run_id = submit_trigger_form(page, dialog)
    wait_until_finished(page, "Success")
    _runs["default"] = run_id

    tooltip = grid_tooltip_of(page, run_id)
    expect(tooltip).to_contain_text("State: Success")
    shot(page, artifacts, "02-default-run-succeeded-in-grid")


def test_failed_quality_gate_is_a_red_run_and_notifies_on_call(page, airflow_ui, artifacts, webhook):
    """mse_threshold 0.001: the run ends Failed (red in the grid) after the webhook got the alert."""
    log_in(page, airflow_ui)
    dialog = open_trigger_form(page)
    dialog.get_by_role("spinbutton", name="MSE threshold").fill("0.001")
    run_id = submit_trigger_form(page, dialog)
    wait_until_finished(page, "Failed")

    tooltip = grid_tooltip_of(page, run_id)
    expect(tooltip).to_contain_text("State: Failed")
    shot(page, artifacts, "03-failed-gate-run-red-in-grid")

    # sent before the run failed, so it is there by now; the wait only absorbs delivery
    payload = webhook.wait_for(lambda p: isinstance(p, dict) and p.get("run_id") == run_id, timeout=60)
    assert NOTIFICATION_FIELDS <= payload.keys(), payload
    assert payload["kind"] == "quality_gate", payload
    assert payload["dag_id"] == DAG_ID, payload
    assert float(payload["threshold"]) == pytest.approx(0.001), payload
    assert payload["metric"] == "mse" and float(payload["value"]) > 0.001, payload
    assert DAG_ID in payload["message"] and run_id in payload["message"], payload


def test_dry_run_from_the_trigger_form_runs_nothing(page, airflow_ui, artifacts):
    """The form's Dry run switch: the run succeeds with run_local skipped; upsert_pipeline logged the plan."""
    log_in(page, airflow_ui)
    dialog = open_trigger_form(page)
    switch = dialog.get_by_role("checkbox", name="Dry run")
    expect(switch).not_to_be_checked()  # a normal run by default
    switch.press("Space")  # as a keyboard user does: the switch's input is visually hidden behind its track
    expect(switch).to_be_checked()
    shot(page, artifacts, "03b-trigger-form-dry-run")
    run_id = submit_trigger_form(page, dialog)
    wait_until_finished(page, "Success")

    page.goto(f"/dags/{DAG_ID}/runs/{run_id}/tasks/run_local")
    expect(page.get_by_role("heading", name="run_local", exact=True)).to_be_visible()
    expect(run_state_badge(page)).to_have_text("Skipped")
    page.goto(f"/dags/{DAG_ID}/runs/{run_id}/tasks/upsert_pipeline")
    expect(page.get_by_text("Dry run: pipeline").first).to_be_visible(timeout=60_000)
    shot(page, artifacts, "03b-dry-run-upsert-log")


def test_run_local_extra_link_opens_the_local_execution_page(page, airflow_ui, artifacts):
    """From the grid to run_local, then its extra link: the API server's page of the execution's steps."""
    log_in(page, airflow_ui)
    run_id = _runs.get("default")
    if run_id is None:  # run alone: make the succeeded run this scenario needs
        run_id = trigger_with_defaults(page)
        wait_until_finished(page, "Success")

    page.goto(f"/dags/{DAG_ID}")
    page.get_by_test_id(f"grid-{run_id}-run_local").click()
    expect(page.get_by_role("heading", name="run_local", exact=True)).to_be_visible()
    expect(run_state_badge(page)).to_have_text("Success")
    page.get_by_role("link", name="Details", exact=True).click()  # the task instance's tab
    extra_links = page.get_by_role("heading", name="Extra Links").locator("xpath=..")
    expect(extra_links.get_by_role("link").first).to_be_visible()
    # the local execution page is served by the API server itself: same origin, so it opens here
    local = extra_links.locator(f'a[href^="{airflow_ui.url}"], a[href^="/"]')
    expect(local).to_have_count(1)
    shot(page, artifacts, "04-run-local-extra-links")
    local.click()

    page.wait_for_url(re.compile("^" + re.escape(airflow_ui.url)))
    for step in STEPS:
        expect(page.get_by_text(step).first).to_be_visible()
    expect(page.get_by_text("Succeeded").first).to_be_visible()
    shot(page, artifacts, "04-local-execution-page")


def test_two_day_backfill_from_the_backfill_form(page, airflow_ui, artifacts):
    """The Trigger dialog's Backfill form, two days, one click on Run Backfill; both runs succeed."""
    log_in(page, airflow_ui)
    dialog = open_trigger_form(page)
    dialog.get_by_text("Backfill", exact=True).click()
    expect(dialog.get_by_role("heading", name=f"Run Backfill - {DAG_ID}")).to_be_visible()
    for label, day in zip(("From", "To"), BACKFILL_DAYS, strict=True):
        pick_datetime(page, dialog, label, day)
    expect(dialog.get_by_text("2 runs will be triggered.")).to_be_visible()
    shot(page, artifacts, "05-backfill-form")
    dialog.get_by_role("button", name="Run Backfill").click()
    # the toast can be in the DOM twice for a moment while it animates in (same id): either copy will do
    expect(page.get_by_text("Backfill generated").first).to_be_visible()

    page.goto(f"/dags/{DAG_ID}/runs")
    for day in BACKFILL_DAYS:
        row = page.get_by_role("row").filter(has_text=f"backfill__{day}T00:00:00+00:00")
        expect(row).to_contain_text(re.compile("Success|Failed"), timeout=RUN_TIMEOUT_MS)
        expect(row).to_contain_text("Success", timeout=5_000)
    shot(page, artifacts, "05-backfill-runs-succeeded")
    for day in BACKFILL_DAYS:
        tooltip = grid_tooltip_of(page, f"backfill__{day}T00:00:00+00:00")
        expect(tooltip).to_contain_text("State: Success")
    shot(page, artifacts, "05-backfill-runs-in-grid")


def test_ctrl_c_stops_every_process_make_ui_started(own_airflow_ui, page, artifacts):
    """Ctrl-C while a pipeline runs: make ui exits and no process it started is left, in its
    tree or in any session it created (task processes and runner jobs start their own)."""
    airflow_ui = own_airflow_ui
    log_in(page, airflow_ui)
    # a date of its own (not today's, which unpausing schedules): nothing in the local runner's
    # step cache or execution records matches its input partition, so its steps really run as jobs
    dialog = open_trigger_form(page)
    pick_datetime(page, dialog, "Logical Date", STOP_DAY)
    run_id = submit_trigger_form(page, dialog)
    # Ctrl-C while run_local runs a pipeline step: the task's own process group and the local
    # runner's job session (its own) exist then
    job = airflow_ui.wait_for_job_session(timeout=RUN_TIMEOUT_MS / 1000)
    page.goto(f"/dags/{DAG_ID}/runs/{run_id}/tasks/run_local")
    expect(page.get_by_role("heading", name="run_local", exact=True)).to_be_visible()
    shot(page, artifacts, "06-before-ctrl-c")
    running = airflow_ui.snapshot()

    seconds = airflow_ui.interrupt(timeout=120)
    survivors = airflow_ui.survivors()
    print(f"\n[e2e] Ctrl-C while the job {job[:120]!r} ran: make ui and {running} processes below it "
          f"stopped in {seconds:.1f} s "
          f"({len(airflow_ui.seen)} processes seen over the session; machine shared)")
    assert survivors == [], survivors
    assert airflow_ui.process.returncode is not None
    assert "no Airflow process left" in "".join(airflow_ui.output[-5:]), airflow_ui.output[-5:]


def test_a_component_that_dies_stops_make_ui_and_ends_the_scenario_at_once(own_airflow_ui, page):
    """The scheduler dies while a user waits for a run in the grid: make ui says which component exited and
    stops the others; the scenario's long wait ends then (the page fixture closes the browser), not after
    its time-out. Last in the module: the browser does not outlive it."""
    import psutil

    airflow_ui = own_airflow_ui
    log_in(page, airflow_ui)
    make = psutil.Process(airflow_ui.process.pid)
    scheduler = next(p for p in make.children(recursive=True)
                     if "--exec-airflow-component" in p.cmdline() and "scheduler" in p.cmdline())
    scheduler.kill()
    # expect() reports the browser's end as its own failure, with Playwright's reason in the call log
    with pytest.raises(AssertionError, match="Target page, context or browser has been closed"):
        expect(page.get_by_text("a run that never comes")).to_be_visible(timeout=RUN_TIMEOUT_MS)
    assert airflow_ui.exited_unasked() not in (None, 0)
    said = "".join(airflow_ui.output)
    assert "the scheduler exited" in said and "no Airflow process left" in said, said[-2000:]
