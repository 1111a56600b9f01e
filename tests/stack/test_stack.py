"""The production topology for real: CeleryExecutor on PostgreSQL + Redis, two workers, driven by REST.

One stack for the module (``python -m launchers.stack up``, what ``make stack`` runs), then, from a
user's side: both DAGs triggered through /api/v2 succeed; a 4-date backfill lands on both
workers and finishes across a scheduler restart in its middle; a SIGKILLed worker's tasks are
retried on the other with exactly one pipeline execution per run; a deferred wait resumes
across a triggerer restart (needs executions that last: the emulated SageMaker service); and
``down`` leaves no process and no database. The tests run in file order and share the stack.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from stack_support import (
    REPO,
    emulated_executions,
    launcher_environment,
    local_executions,
    one_execution_per_run,
    tries,
    trigger,
    unpause,
    wait_for,
    wait_for_no_active_runs,
    wait_for_runs,
)

from launchers import stack as stack_module
from launchers.airflow_api import http_json
from launchers.supervisor import process_groups, processes_in_groups
from sm_pipeline.abalone.synthetic import write_abalone_like

pytestmark = [pytest.mark.stack, pytest.mark.slow]

LOCAL, SAGEMAKER = "abalone_pipeline_local", "abalone_pipeline"
RUN_TIMEOUT = 600
DEFERRED_ROWS = 1_000_000  # a 53 MB daily batch: its execution lasts long enough to defer on


def test_every_component_is_healthy_and_both_workers_consume_the_queue(stack, api):
    health = http_json(f"{stack.site.api_url}/api/v2/monitor/health")
    assert {part: health[part]["status"] for part in ("metadatabase", "scheduler", "triggerer", "dag_processor")} \
        == dict.fromkeys(("metadatabase", "scheduler", "triggerer", "dag_processor"), "healthy")
    workers = stack.workers()
    assert len(workers) == 2 and len({w["hostname"] for w in workers.values()}) == 2
    queues = stack.worker_queues()
    assert queues == {w["celery"]: ["default"] for w in workers.values()}
    assert {d["dag_id"] for d in api.get("/dags")["dags"]} >= {LOCAL, SAGEMAKER}
    assert api.get("/importErrors")["import_errors"] == []
    assert "airsage" in {p["name"] for p in api.get("/plugins")["plugins"]}
    # what `make stack` printed: where the logs are, the URL and the login
    assert str(stack.log_dir) in stack.up_output
    assert f"{stack.site.api_url}/  (login: airflow / {stack.password()})" in stack.up_output
    # and running it again changes nothing
    again = subprocess.run([sys.executable, "-m", "launchers.stack", "up", "--dir", str(stack.dir)], cwd=REPO,  # noqa: S603
                           env=launcher_environment(), capture_output=True, text=True, timeout=300, check=False)
    assert again.returncode == 0 and "already running" in again.stdout, again.stdout + again.stderr
    reloaded = stack_module.Stack.load(stack.dir)
    assert {n: c.pid for n, c in reloaded.components.items()} == {n: c.pid for n, c in stack.components.items()}
    assert {p.component for p in stack.processes()} == set(stack.components)


def test_both_dags_run_to_success_when_triggered_through_the_rest_api(stack, api, emulated_aws):
    for dag_id in (LOCAL, SAGEMAKER):
        unpause(api, dag_id)
    runs = {LOCAL: trigger(api, LOCAL, "2026-11-20"), SAGEMAKER: trigger(api, SAGEMAKER, "2026-11-20")}
    for dag_id, run_id in runs.items():
        assert wait_for_runs(api, dag_id, [run_id], RUN_TIMEOUT) == {run_id: "success"}, dag_id
        states = {ti["task_id"]: ti["state"] for ti in api.task_instances(dag_id, run_id)}
        assert states["publish_report"] == "success" and states["alert_on_call"] == "skipped", states
        assert states["approve_model"] == "success", states  # approved through the REST API by wait_for_runs
    one_execution_per_run(api, LOCAL, [runs[LOCAL]], lambda name: local_executions(stack.root, name))
    one_execution_per_run(api, SAGEMAKER, [runs[SAGEMAKER]], lambda name: emulated_executions(emulated_aws["url"], name))
    reports = stack.root / "airsage-artifacts" / "abalone" / "reports" / "ds=2026-11-20"
    assert list(reports.rglob("report.html")), f"no report under {reports}"


@pytest.mark.timeout(1200)
def test_a_four_date_backfill_lands_on_both_workers_and_finishes_across_a_scheduler_restart(stack, api):
    unpause(api, LOCAL)  # backfill create only queues runs: the scheduler runs them once unpaused
    backfill = api.post("/backfills", {
        "dag_id": LOCAL, "from_date": "2026-11-02T00:00:00Z", "to_date": "2026-11-05T00:00:00Z",
        "max_active_runs": 4, "run_backwards": False, "dag_run_conf": {}, "reprocess_behavior": "none",
    })
    assert backfill["dag_id"] == LOCAL and backfill["max_active_runs"] == 4

    def backfill_runs():
        runs = [r["dag_run_id"] for r in api.get(f"/dags/{LOCAL}/dagRuns?limit=100")["dag_runs"]
                if r["run_type"] == "backfill"]
        return runs if len(runs) == 4 else None

    runs = wait_for("the backfill's 4 runs", backfill_runs, 120)

    def a_task_running():
        return any(ti["state"] == "running" for run_id in runs for ti in api.task_instances(LOCAL, run_id))

    # the scheduler goes down mid-run (SIGTERM, as `docker compose restart airflow-scheduler`)
    wait_for("a task of the backfill to be running", a_task_running, 300, interval=0.5)
    stack.restart("scheduler")

    assert wait_for_runs(api, LOCAL, runs, RUN_TIMEOUT) == dict.fromkeys(runs, "success")
    approvals = {ti["state"] for run_id in runs for ti in api.task_instances(LOCAL, run_id)
                 if ti["task_id"] == "approve_model"}
    assert approvals == {"skipped"}, approvals  # backfills do not ask for approval
    finished = [ti for run_id in runs for ti in api.task_instances(LOCAL, run_id) if ti["state"] == "success"]
    assert {ti["hostname"] for ti in finished} == {w["hostname"] for w in stack.workers().values()}
    assert {ti["queue"] for ti in finished} == {"default"}
    one_execution_per_run(api, LOCAL, runs, lambda name: local_executions(stack.root, name))
    health = http_json(f"{stack.site.api_url}/api/v2/monitor/health")
    assert health["scheduler"]["status"] == "healthy"


@pytest.mark.timeout(1200)
def test_a_killed_worker_s_tasks_are_retried_on_the_other_with_one_execution_per_run(stack, api, emulated_aws):
    # The SageMaker DAG: its execution lives on the (emulated) service, not in the worker, so a
    # retry re-attaches to it. (The local backend's runner dies with its worker by design.)
    unpause(api, SAGEMAKER)
    wait_for_no_active_runs(api, SAGEMAKER, RUN_TIMEOUT)  # unpausing schedules a run: it asks for approval too
    before = len(emulated_executions(emulated_aws["url"]))
    runs = [trigger(api, SAGEMAKER, f"2026-11-{day}") for day in (12, 13, 14)]  # the DAG's max_active_runs
    victim, survivor = stack.workers()["worker1"], stack.workers()["worker2"]

    def victim_running_a_task():
        for run_id in runs:
            for ti in api.task_instances(SAGEMAKER, run_id):
                if ti["hostname"] == victim["hostname"] and ti["state"] == "running":
                    return run_id, ti["task_id"]
        return None

    run_id, task_id = wait_for("worker1 to run a task", victim_running_a_task, 300, interval=0.5)
    assert stack.kill("worker1") >= 2  # the worker, its pool, the task's processes: all at once
    wait_for("worker1's processes to be gone", lambda: not stack.processes("worker1"), 30, interval=0.5)

    assert wait_for_runs(api, SAGEMAKER, runs, 900) == dict.fromkeys(runs, "success")
    history = tries(api, SAGEMAKER, run_id, task_id)
    assert history[0]["hostname"] == victim["hostname"] and history[0]["state"] != "success", history
    assert history[-1]["hostname"] == survivor["hostname"] and history[-1]["state"] == "success", history
    one_execution_per_run(api, SAGEMAKER, runs, lambda name: emulated_executions(emulated_aws["url"], name))
    assert len(emulated_executions(emulated_aws["url"])) - before == len(runs)  # and none started besides

    stack.start("worker1")  # back to two workers, as compose's restart: always would do
    wait_for("worker1 to rejoin", lambda: victim["celery"] in stack.worker_queues(), 180)


def test_a_deferred_wait_resumes_after_a_triggerer_restart(stack, api, emulated_aws, tmp_path):
    # On the repository's 4,177 rows the emulated execution ends in about 1.2 s, before the sensor's
    # first describe (about 1 s after start_execution): the wait never defers. A 1M-row daily batch
    # keeps the execution running for many seconds, so the wait defers and the restart lands in it.
    source = write_abalone_like(DEFERRED_ROWS, 11, tmp_path / "source.csv")
    unpause(api, SAGEMAKER)
    run_id = trigger(api, SAGEMAKER, "2026-11-26", conf={"source": str(source)})

    def deferred():
        wait = next((ti for ti in api.task_instances(SAGEMAKER, run_id) if ti["task_id"] == "wait_for_execution"),
                    None)
        state = wait and wait["state"]
        if state in ("success", "failed", "up_for_retry", "upstream_failed", "skipped"):
            raise AssertionError(f"wait_for_execution ended {state} without deferring: the execution "
                                 "ended before the sensor's first describe (the test needs a longer one)")
        return state == "deferred"

    wait_for("wait_for_execution to defer", deferred, 300, interval=0.5)
    stack.restart("triggerer")
    assert wait_for_runs(api, SAGEMAKER, [run_id], RUN_TIMEOUT) == {run_id: "success"}
    # the execution went on through the restart: one execution, Succeeded (not Stopped, not twice)
    one_execution_per_run(api, SAGEMAKER, [run_id], lambda name: emulated_executions(emulated_aws["url"], name))


def test_stack_down_leaves_no_process_and_drops_the_database(stack):
    groups = process_groups(stack.processes())
    assert groups
    done = subprocess.run([sys.executable, "-m", "launchers.stack", "down", "--dir", str(stack.dir)], cwd=REPO,  # noqa: S603
                          env=launcher_environment(), capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no process left" in done.stdout
    assert stack.processes() == []
    assert processes_in_groups(groups) == []
    assert not stack_module.database_exists(stack.site.postgres, stack.site.database)
    assert stack_module.delete_redis_keys(stack.site.redis, stack.site.redis_prefix) == 0
    assert not (stack.dir / stack_module.Stack.STATE).exists()
