"""``make demo``: the local DAG end to end on a project-local Airflow, no Docker, no AWS, told briefly.

``python -m launchers.demo [--date YYYY-MM-DD] [--mse-threshold X]`` runs ``airflow dags test
abalone_pipeline_local <date>`` against ``.airflow/`` (SQLite) with the environment of
:mod:`launchers.airflow_env`. ``--backend sagemaker`` (``make demo BACKEND=sagemaker``) runs the
SageMaker DAG ``abalone_pipeline`` instead, against the emulated SageMaker service that the demo
starts on a free loopback port over ``<object root>-sagemaker`` and stops at the end.

What a person sees is short: what runs and where Airflow's log is, one line per task as it ends
(state, duration), the pipeline execution's steps with their status, then where the report (or
the on-call alert) is and the exit status. Airflow's own output -- its log, third-party warnings
-- goes whole to ``<AIRFLOW_HOME>/logs/demo/<date>-<time>-<backend>.log``.

How the task lines are derived: ``airflow dags test`` runs in a child process (one supervisor
component) whose output goes straight to that file, and the demo polls the metadata DB, read
only, for the task instances of the run it created: their state, try and duration are Airflow's
record, the one the UI shows, not words of a log line. Only what the DB does not hold comes
from the log: a failed task's error, the exception line of its last traceback in the section
``dags test`` brackets with ``[DAG TEST] starting task_id=...`` / ``[DAG TEST] end task ...``.
The steps come from the execution records (local backend) or from ListPipelineExecutionSteps
(the emulated service), for the execution named in the run's XCom.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sqlite3
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from launchers import SQLITE_LOCK_WAIT_SECONDS, LauncherError
from launchers.airflow_env import DAG_IDS, airflow, airflow_env, default_home, default_root, ensure_db
from launchers.emulated_aws import (
    EMULATED_KEY_ID,
    EMULATED_REGION,
    EMULATED_SECRET,
    EmulatedSageMaker,
    sagemaker_demo_env,
    service_root,
)
from launchers.supervisor import Component, StopRequest, Supervisor

DAG_ID = DAG_IDS["local"]
#: the task whose XCom is the run's execution result (same shape on both backends), best first
EXECUTION_TASKS = ("run_local", "wait_for_execution", "start_execution")
ALERT_TASK = "alert_on_call"
#: task instance states after which a task does nothing more in this try
ENDED_STATES = ("success", "failed", "skipped", "upstream_failed", "removed", "up_for_retry")
POLL_SECONDS = 0.3
STOP_GRACE_SECONDS = 5.0


def say(line: str = "", out=None) -> None:
    """One line of the demo's own output."""
    print(f"airsage demo: {line}" if line else "", file=out or sys.stdout, flush=True)


def outcome(root: Path, ds: str, env: Mapping[str, str]) -> tuple[str, Path | None, dict]:
    """(kind, local path, latest.json) of the newest run for ``ds``; kind "report" | "alert" | "none".

    ``reports/ds=<ds>/latest.json`` (written by the run's last task) names the run and where
    its report.html or ALERT.json is; ``uri`` is mapped into the object root.
    """
    bucket = env.get("AIRFLOW_VAR_AIRSAGE_BUCKET", "airsage-artifacts")
    prefix = env.get("AIRFLOW_VAR_AIRSAGE_PREFIX", "abalone")
    latest_file = root / bucket / prefix / "reports" / f"ds={ds}" / "latest.json"
    try:
        latest = json.loads(latest_file.read_text())
    except (OSError, ValueError):
        return "none", None, {}
    if not isinstance(latest, dict) or latest.get("kind") not in ("report", "alert"):
        return "none", None, {}
    path = _local_path(root, str(latest.get("uri", "")))
    if path is not None and path.is_dir():
        path = path / ("report.html" if latest["kind"] == "report" else "ALERT.json")
    return latest["kind"], path, latest


def _local_path(root: Path, uri: str) -> Path | None:
    """``s3://bucket/key`` → ``root/bucket/key`` (the local backend's mapping); a plain path as is."""
    if uri.startswith("s3://"):
        return root / uri.removeprefix("s3://")
    if uri.startswith("file://"):
        return Path(uri.removeprefix("file://"))
    return Path(uri) if uri else None


# ---- the run's task instances, from the metadata DB --------------------------------------------

@dataclass(frozen=True)
class TaskEnd:
    """One task instance that ended a try: its id, state, try and seconds (None when it never ran)."""

    task_id: str
    state: str
    try_number: int
    seconds: float | None


class RunProgress:
    """The DAG run ``airflow dags test`` creates, read from the metadata DB (SQLite, read only) while it runs.

    ``after`` is the highest dag_run id before the test started, so the run is the test's own even
    when the home's DB has other runs of the DAG (a ``make ui`` on the same home, earlier demos).
    """

    def __init__(self, db: Path, dag_id: str, ds: str, after: int):
        self.db, self.dag_id, self.ds, self.after = db, dag_id, ds, after
        self.run_id: str | None = None
        self.unreadable = False  # said once when the DB cannot be read
        self._reported: set[tuple[str, int, int, str]] = set()

    @staticmethod
    def last_run_id(db: Path) -> int:
        """The highest dag_run id in the DB (0 when there is none)."""
        with _read_only(db) as conn:
            return conn.execute("SELECT COALESCE(MAX(id), 0) FROM dag_run").fetchone()[0]

    def ended(self) -> list[TaskEnd]:
        """Task instances that ended a try since the last call, in the order they ended."""
        with _read_only(self.db) as conn:
            if self.run_id is None:
                row = conn.execute("SELECT run_id FROM dag_run WHERE dag_id = ? AND id > ? AND logical_date LIKE ? "
                                   "ORDER BY id LIMIT 1", (self.dag_id, self.after, f"{self.ds}%")).fetchone()
                if row is None:
                    return []
                self.run_id = row[0]
            rows = conn.execute(
                "SELECT task_id, map_index, state, try_number, duration, end_date, priority_weight "
                "FROM task_instance WHERE dag_id = ? AND run_id = ?", (self.dag_id, self.run_id)).fetchall()
        new = []
        for task_id, map_index, state, try_number, duration, end_date, weight in rows:
            key = (task_id, map_index, try_number or 0, state)
            if state in ENDED_STATES and key not in self._reported:
                self._reported.add(key)
                # a skip (or upstream failure) is decided by the task before it: told after that one, and
                # never ran; ties in DAG order (upstream tasks weigh more under the default weight rule)
                decided = state in ("skipped", "upstream_failed")
                order = (decided, end_date or "", -(weight or 0))
                new.append((order, TaskEnd(task_id, state, try_number or 0, None if decided else duration)))
        return [end for _, end in sorted(new, key=lambda item: item[0])]

    def execution(self) -> dict | None:
        """The run's execution result (XCom ``return_value`` of its run/wait/start task), if one was pushed."""
        if self.run_id is None:
            return None
        with _read_only(self.db) as conn:
            rows = dict(conn.execute(
                f"SELECT task_id, value FROM xcom WHERE dag_id = ? AND run_id = ? AND key = 'return_value' "  # noqa: S608 - placeholders only
                f"AND task_id IN ({', '.join('?' * len(EXECUTION_TASKS))})",
                (self.dag_id, self.run_id, *EXECUTION_TASKS)).fetchall())
        for task_id in EXECUTION_TASKS:
            try:
                value = json.loads(rows[task_id]) if task_id in rows else None
            except (TypeError, ValueError):
                continue
            if isinstance(value, dict) and value.get("execution_arn"):
                return value
        return None


def _read_only(db: Path) -> contextlib.closing[sqlite3.Connection]:
    """A read-only connection, closed after its ``with``; it waits (as Airflow's own do) while ``dags test`` writes."""
    return contextlib.closing(sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True, timeout=SQLITE_LOCK_WAIT_SECONDS))


# ---- a failed task's error, from Airflow's log ----------------------------------------------------

def task_error(log: Path, task_id: str) -> str | None:
    """The error ``task_id``'s latest try ended with: the exception line of the last traceback in its section."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return None
    starts = [i for i, line in enumerate(lines) if f"[DAG TEST] starting task_id={task_id} " in line]
    if not starts:
        return None
    section = lines[starts[-1]:]
    end = next((i for i, line in enumerate(section) if f"[DAG TEST] end task task_id={task_id} " in line), len(section))
    error, in_traceback = None, False
    for line in section[:end]:
        if line.startswith("Traceback (most recent call last):"):
            in_traceback = True
        elif in_traceback and line.strip() and not line[0].isspace():
            error, in_traceback = line.strip(), False  # the first unindented line ends a traceback
    return error


def without_exception_name(error: str) -> str:
    """``pkg.SomeError: message`` → ``message`` (the text a person reads)."""
    return re.sub(r"^[A-Za-z_][\w.]*: ", "", error)


# ---- the execution's steps ----------------------------------------------------------------------

def execution_steps(execution: dict, root: Path, endpoint: str | None) -> tuple[dict, list[dict]]:
    """(DescribePipelineExecution, steps oldest first) of the run's execution.

    ``endpoint`` None: the local backend's records under ``root``; else the emulated service's API.
    """
    if endpoint is None:
        from sm_pipeline.local.records import LocalExecutionStore

        store = LocalExecutionStore(root)
        pipeline, execution_id = execution["pipeline_name"], execution["execution_id"]
        describe, steps = store.describe(pipeline, execution_id), store.steps(pipeline, execution_id)
    else:
        import boto3

        client = boto3.client("sagemaker", endpoint_url=endpoint, region_name=EMULATED_REGION,
                              aws_access_key_id=EMULATED_KEY_ID, aws_secret_access_key=EMULATED_SECRET)
        arn = execution["execution_arn"]
        describe = client.describe_pipeline_execution(PipelineExecutionArn=arn)
        steps = client.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]
    return describe, oldest_first(steps)


def oldest_first(steps: list[dict]) -> list[dict]:
    """Steps in the order they started; those that never did (a NotExecuted branch) last."""
    return sorted(steps, key=lambda s: (_timestamp(s.get("StartTime")) is None, _timestamp(s.get("StartTime")) or 0.0))


def _timestamp(value) -> float | None:
    """Seconds since the epoch of an ISO string (records) or a datetime (boto3); None if absent."""
    if isinstance(value, datetime):
        return value.timestamp()
    try:
        return datetime.fromisoformat(str(value)).timestamp()
    except ValueError:
        return None


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f} s"


def step_lines(describe: dict, steps: list[dict]) -> list[str]:
    """The execution's header line and one line per step (status, duration, failure reason)."""
    status = describe.get("PipelineExecutionStatus", "?")
    reason = describe.get("FailureReason")
    header = (f"execution {describe.get('PipelineExecutionDisplayName', '?')} "
              f"({str(describe.get('PipelineExecutionArn', '')).rsplit('/', 1)[-1]}): {status}")
    lines = [header]
    width = max((len(s.get("StepName", "")) for s in steps), default=0)
    for step in steps:
        start, end = _timestamp(step.get("StartTime")), _timestamp(step.get("EndTime"))
        took = _seconds(end - start if start is not None and end is not None else None)
        line = f"  {step.get('StepName', '?'):<{width}}  {step.get('StepStatus', '?'):<10} {took:>7}"
        if step.get("FailureReason"):
            line += f"  {step['FailureReason']}"
        lines.append(line.rstrip())
    if reason and status != "Succeeded" and not any(s.get("FailureReason") == reason for s in steps):
        lines.append(f"  reason: {reason}")
    return lines


# ---- the demo -------------------------------------------------------------------------------------

def run_demo(ds: str, threshold: float | None, home: Path, root: Path, backend: str = "local", out=None) -> int:
    """Run the DAG of ``backend`` for ``ds``, telling its progress; 0 with a report, 1 otherwise (130 on Ctrl-C)."""
    out = out or sys.stdout
    began = time.monotonic()
    env = airflow_env(home, root)
    ensure_db(home, env)
    dag_id = DAG_IDS[backend]
    log = home / "logs" / "demo" / f"{ds}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{backend}.log"
    command = airflow("dags", "test", dag_id, ds)
    if threshold is not None:
        command += ["--conf", json.dumps({"mse_threshold": threshold})]
    stop = StopRequest().install()
    supervisor = Supervisor()
    supervisor.become_subreaper()  # the runner's jobs stay in our tree whatever happens to their parents
    service = returncode = None
    failed: list[tuple[TaskEnd, str | None]] = []
    try:
        if backend == "sagemaker":
            objects = service_root(root)
            # the service's environment is the demo's: offline settings, no real AWS credentials
            service = EmulatedSageMaker.start(objects, home / "logs" / "emulated-sagemaker.log",
                                              sagemaker_demo_env(env, "http://127.0.0.1:9"), supervisor)
            env = sagemaker_demo_env(env, service.url)
            bucket = env.get("AIRFLOW_VAR_AIRSAGE_BUCKET", "airsage-artifacts")
            (objects / bucket).mkdir(parents=True, exist_ok=True)  # a directory of the root is a bucket
            say(f"emulated SageMaker service at {service.url} (objects under {objects}, log {service.log})", out)
            root = objects
        say(f"running {dag_id} for {ds} ({backend} backend, objects under {root}); Airflow's log: {log}", out)
        db = home / "airflow.db"
        progress = RunProgress(db, dag_id, ds, RunProgress.last_run_id(db))
        supervisor.start(Component("airflow-dags-test", command), env, log, die_with_parent=True)
        while True:
            running = supervisor.leader_alive("airflow-dags-test")
            for end in _poll(progress, out):
                error = task_error(log, end.task_id) if end.state in ("failed", "up_for_retry") else None
                if end.state == "failed":
                    failed.append((end, error))
                _print_task(end, error, out)
            if not running or stop.requested:
                break
            time.sleep(POLL_SECONDS)
        if stop.requested:
            report = supervisor.stop(grace=STOP_GRACE_SECONDS)
            say(f"interrupted: stopped {report.running} process(es) (airflow dags test and what it started); "
                f"Airflow's log: {log}", out)
            return 130
        returncode = supervisor.returncode("airflow-dags-test")
        execution = progress.execution()
        if execution is not None:
            try:
                header, *steps = step_lines(*execution_steps(execution, root, service.url if service else None))
                say(header, out)
                for line in steps:
                    print(line, file=out)
            except Exception as err:  # noqa: BLE001 - the steps are a courtesy; the outcome below is what counts
                say(f"execution {execution.get('execution_arn')}: its steps could not be read ({err})", out)
    finally:
        if service is not None:
            code = service.stop()
            say(f"emulated SageMaker service stopped (exit {code})", out)
        supervisor.stop(grace=STOP_GRACE_SECONDS)  # nothing of the run outlives the demo
    code = _print_outcome(root, ds, env, returncode, failed, progress, log, out)
    say(f"exit {code} after {time.monotonic() - began:.0f} s; Airflow's log: {log}", out)
    return code


def _poll(progress: RunProgress, out) -> list[TaskEnd]:
    """The tasks that ended since the last poll; none while the DB cannot be read (said once)."""
    try:
        return progress.ended()
    except sqlite3.Error as err:
        if not progress.unreadable:
            progress.unreadable = True
            say(f"(task progress unavailable: the metadata DB {progress.db} cannot be read: {err})", out)
        return []


def _print_task(end: TaskEnd, error: str | None, out) -> None:
    """One line for a task that ended: id, state (and try when retried), duration, error."""
    state = end.state if end.try_number <= 1 or end.state == "skipped" else f"{end.state} (try {end.try_number})"
    line = f"  {end.task_id:<20} {state:<16} {_seconds(end.seconds):>7}"
    if error:
        line += f"  {error}"
    print(line.rstrip(), file=out, flush=True)


def _print_outcome(root: Path, ds: str, env: Mapping[str, str], returncode: int | None,
                   failed: list[tuple[TaskEnd, str | None]], progress: RunProgress, log: Path, out) -> int:
    """The report path, the alert path and gate line, or the failed task and its error; the exit code."""
    kind, path, latest = outcome(root, ds, env)
    fresh = latest.get("run_id") == progress.run_id  # this run's outcome, not an earlier run's of the date
    if fresh and kind == "report" and returncode == 0 and not failed:
        say(f"report for {ds} (run {latest.get('run_id')}): {path}", out)
        print(f"              open it with: xdg-open {path}", file=out)
        return 0
    if fresh and kind == "alert":
        say(f"the quality gate failed for {ds} (run {latest.get('run_id')}): no report.", out)
        gate = next((error for end, error in failed if end.task_id == ALERT_TASK and error), None)
        if gate:
            print(f"              {without_exception_name(gate)}", file=out)
        print(f"              on-call alert: {path}", file=out)
        return 1
    if failed:
        end, error = failed[0]
        say(f"the DAG run failed: task {end.task_id} failed" + (f": {error}" if error else ""), out)
        return 1
    if returncode != 0:
        say(f"airflow dags test failed (exit {returncode}) before any task failed; see Airflow's log", out)
        return returncode or 1
    say(f"the run finished but wrote no report or alert for {ds} under {root}", out)
    return 1


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m launchers.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--date", default=(datetime.now(UTC).date() - timedelta(days=1)).isoformat(),
                        help="logical date to run (default: yesterday, UTC)")
    parser.add_argument("--mse-threshold", type=float, default=None,
                        help="the gate's MSE threshold (default: the DAG param's 6.0)")
    parser.add_argument("--backend", choices=sorted(DAG_IDS), default="local",
                        help="local: abalone_pipeline_local (default); sagemaker: abalone_pipeline against "
                             "the emulated SageMaker service this command starts on loopback")
    args = parser.parse_args(argv)
    try:
        ds = date.fromisoformat(args.date).isoformat()
    except ValueError:
        parser.error(f"--date must be YYYY-MM-DD, got {args.date!r}")
    try:
        return run_demo(ds, args.mse_threshold, default_home(), default_root(), args.backend)
    except LauncherError as err:
        print(f"airsage demo: {err}", file=sys.stderr)
        return err.exit_code


if __name__ == "__main__":
    sys.exit(main())
