"""``make airflow`` / ``make ui`` / ``make demo`` plumbing (launchers/), from the command line.

The browser tests (tests/e2e) start ``make ui`` itself and stop it with Ctrl-C; here: the one
environment both commands share, what ``make airflow`` runs with it, the clear refusals, and
how ``make demo`` finds a run's outcome.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

from launchers import SQLITE_LOCK_WAIT_SECONDS, airflow_env, demo, emulated_aws, ui

REPO = Path(__file__).resolve().parents[2]
_DROP = ("AIRFLOW__CORE__UNIT_TEST_MODE", "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")


def user_env(tmp_path: Path) -> dict[str, str]:
    """The test session's environment minus its test-only Airflow setting, with a scratch home/root."""
    env = {k: v for k, v in os.environ.items() if k not in _DROP}
    env.update({"AIRFLOW_HOME": str(tmp_path / "home"), "AIRSAGE_ROOT": str(tmp_path / "objects")})
    return env


def make(*args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def test_airflow_env_is_one_loopback_airflow_sized_to_the_machine(tmp_path):
    env = airflow_env.airflow_env(tmp_path / "home", tmp_path / "objects", port=8081, base={"PATH": "/bin"})
    assert env["AIRFLOW_HOME"] == str(tmp_path / "home")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{tmp_path / 'home' / 'airflow.db'}?timeout={SQLITE_LOCK_WAIT_SECONDS}"
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(REPO / "dags")
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert env["AIRFLOW__API__BASE_URL"] == "http://127.0.0.1:8081/"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:8081/execution/"
    assert env["AIRFLOW_VAR_AIRSAGE_LOCAL_ROOT"] == env["AIRSAGE_ROOT"] == str(tmp_path / "objects")
    assert env["AIRFLOW__CORE__PARALLELISM"] == str(airflow_env.executor_parallelism())
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] == str(airflow_env.password_file(tmp_path / "home"))
    assert "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT" not in env  # only make ui runs a log server


def test_airflow_env_forces_the_shape_but_lets_sizing_be_overridden(tmp_path):
    base = {"AIRFLOW__CORE__EXECUTOR": "CeleryExecutor", "AIRFLOW__API__HOST": "0.0.0.0",  # noqa: S104 - the value overridden
            "AIRFLOW__CORE__PARALLELISM": "7", "PYTHONPATH": "/elsewhere"}
    env = airflow_env.airflow_env(tmp_path, tmp_path, base=base, log_port=4321)
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert env["AIRFLOW__CORE__PARALLELISM"] == "7"
    assert env["PYTHONPATH"].split(os.pathsep) == [str(REPO), str(REPO / "plugins"), "/elsewhere"]
    assert env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] == env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"] == "4321"


@pytest.mark.parametrize(("cpus", "workers"), [(1, 2), (2, 2), (8, 8)])
def test_executor_parallelism_is_one_worker_per_cpu_at_least_two(cpus, workers):
    assert airflow_env.executor_parallelism(cpus) == workers


@pytest.mark.slow
def test_make_airflow_runs_the_cli_with_the_ui_environment(tmp_path):
    env = user_env(tmp_path)
    done = make("airflow", 'ARGS=config get-value core executor', env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == "LocalExecutor"
    assert (tmp_path / "home" / "airflow.db").is_file()  # migrated on first use

    done = make("airflow", "PORT=8081", "ARGS=config get-value api base_url", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == "http://127.0.0.1:8081/"

    done = make("airflow", "ARGS=dags list-runs no_such_dag", env=env)
    assert done.returncode != 0  # Airflow's own exit status comes through


def test_make_ui_on_a_busy_port_says_so_in_one_line(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = make("ui", f"PORT={port}", env=user_env(tmp_path), timeout=120)
    assert done.returncode != 0
    assert f"airsage ui: port {port} on 127.0.0.1 is not available" in done.stderr
    assert f"make ui PORT={port + 1}" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert not (tmp_path / "home").exists()  # refused before anything was created


@pytest.mark.parametrize("port", ["http", "-1", "65536"])
def test_a_bad_port_is_refused_with_exit_2(port, capsys):
    with pytest.raises(SystemExit) as stop:
        ui.main(["--port", port])
    assert stop.value.code == 2
    assert f"must be a TCP port number 0-65535, got '{port}'" in capsys.readouterr().err


def _latest(root: Path, ds: str, content) -> None:
    folder = root / "airsage-artifacts" / "abalone" / "reports" / f"ds={ds}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "latest.json").write_text(content if isinstance(content, str) else json.dumps(content))


def test_outcome_follows_latest_json_to_the_runs_report(tmp_path):
    run = "run=manual__2026-11-30T12_00_00"
    _latest(tmp_path, "2026-11-30", {
        "run_id": "manual__2026-11-30T12:00:00", "kind": "report",
        "uri": f"s3://airsage-artifacts/abalone/reports/ds=2026-11-30/{run}/report.html",
        "location": "whatever", "updated": "2026-11-30T12:05:00Z"})
    kind, path, latest = demo.outcome(tmp_path, "2026-11-30", {})
    assert kind == "report"
    assert path == tmp_path / "airsage-artifacts" / "abalone" / "reports" / "ds=2026-11-30" / run / "report.html"
    assert latest["run_id"] == "manual__2026-11-30T12:00:00"


def test_outcome_of_an_alert_given_as_the_run_folder(tmp_path):
    _latest(tmp_path, "2026-11-29", {"run_id": "r", "kind": "alert",
                                     "uri": "s3://airsage-artifacts/abalone/reports/ds=2026-11-29/run=r"})
    (tmp_path / "airsage-artifacts/abalone/reports/ds=2026-11-29/run=r").mkdir()
    kind, path, _ = demo.outcome(tmp_path, "2026-11-29", {})
    assert (kind, path.name) == ("alert", "ALERT.json")


@pytest.mark.parametrize("content", [None, "{not json", "[]", {"kind": "other"}])
def test_outcome_is_none_without_a_readable_latest_json(tmp_path, content):
    if content is not None:
        _latest(tmp_path, "2026-11-28", content)
    assert demo.outcome(tmp_path, "2026-11-28", {}) == ("none", None, {})


def test_a_second_make_ui_on_the_same_home_is_refused(tmp_path):
    from sm_pipeline.locks import FileLock

    home = tmp_path / "home"
    home.mkdir()
    held = FileLock(home / ".make-ui.lock")  # what a running make ui holds
    assert held.try_acquire()
    try:
        done = make("ui", "PORT=0", env=user_env(tmp_path), timeout=120)
    finally:
        held.release()
    assert done.returncode != 0
    assert f"airsage ui: make ui already runs on {home}" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert not (home / "airflow.db").exists()


def test_the_sagemaker_demo_points_aws_default_and_every_client_at_the_emulated_service(tmp_path):
    base = airflow_env.airflow_env(tmp_path / "home", tmp_path / "objects", base={"PATH": "/bin", "AWS_PROFILE": "prod"})
    env = emulated_aws.sagemaker_demo_env(base, "http://127.0.0.1:4567")
    conn = json.loads(env["AIRFLOW_CONN_AWS_DEFAULT"])
    assert conn["extra"]["endpoint_url"] == env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:4567"
    assert "AWS_PROFILE" not in env and env["AWS_EC2_METADATA_DISABLED"] == "true"
    assert float(env["AIRSAGE_POLL_INTERVAL"]) <= 5
    assert emulated_aws.service_root(tmp_path / "objects") == tmp_path / "objects-sagemaker"


def test_an_unknown_backend_is_refused_with_one_line(capsys):
    with pytest.raises(SystemExit) as exited:
        demo.main(["--backend", "emr"])
    assert exited.value.code == 2
    assert "--backend: invalid choice: 'emr'" in capsys.readouterr().err


AIRFLOW_LOG = """\
2026-12-07T04:43:40.457271Z [info     ] [DAG TEST] starting task_id=alert_on_call map_index=-1 [airflow.sdk.definitions.dag]
2026-12-07T04:43:40.537716Z [error    ] Task failed with exception     [task] loc=task_runner.py:1639
Traceback (most recent call last):
  File "/x/airflow/sdk/execution_time/task_runner.py", line 1579, in _run_task_and_map_outcome
    result = _execute_task(context=context, ti=ti, log=log)
KeyError: 'cause'

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/x/plugins/airsage/operators/alert.py", line 55, in execute
    raise QualityGateFailed(metric, value, threshold)
airsage.exceptions.QualityGateFailed: quality gate: mse 5.098 > threshold 0.001
2026-12-07T04:43:40.538735Z [info     ] ::group::Post Execute          [task] loc=task_runner.py:1640
2026-12-07T04:43:40.566691Z [info     ] [DAG TEST] end task task_id=alert_on_call map_index=-1 [airflow.sdk.definitions.dag]
2026-12-07T04:43:41.000000Z [info     ] [DAG TEST] starting task_id=gate map_index=-1 [airflow.sdk.definitions.dag]
Traceback (most recent call last):
ValueError: another task's error
"""


def test_a_failed_task_s_error_is_the_last_exception_line_of_its_own_section(tmp_path):
    log = tmp_path / "airflow.log"
    log.write_text(AIRFLOW_LOG)
    error = demo.task_error(log, "alert_on_call")
    assert error == "airsage.exceptions.QualityGateFailed: quality gate: mse 5.098 > threshold 0.001"
    assert demo.without_exception_name(error) == "quality gate: mse 5.098 > threshold 0.001"
    assert demo.task_error(log, "gate") == "ValueError: another task's error"
    assert demo.task_error(log, "publish_report") is None  # never started
    assert demo.task_error(tmp_path / "missing.log", "gate") is None


def test_step_lines_list_steps_oldest_first_with_the_failure_reason():
    describe = {"PipelineExecutionDisplayName": "abalone-2026-11-02-abc", "PipelineExecutionStatus": "Failed",
                "PipelineExecutionArn": "arn:aws:sagemaker:us-east-1:0:pipeline/p/execution/x1",
                "FailureReason": "Step AbaloneMseFail failed"}
    steps = demo.oldest_first([
        {"StepName": "Never", "StepStatus": "NotExecuted"},
        {"StepName": "AbaloneMseFail", "StepStatus": "Failed", "FailureReason": "MSE 5.1 above 0.001",
         "StartTime": "2026-11-02T00:00:02+00:00", "EndTime": "2026-11-02T00:00:02.500000+00:00"},
        {"StepName": "Train", "StepStatus": "Succeeded",
         "StartTime": "2026-11-02T00:00:00+00:00", "EndTime": "2026-11-02T00:00:01.250000+00:00"},
    ])
    lines = demo.step_lines(describe, steps)
    assert lines[0] == "execution abalone-2026-11-02-abc (x1): Failed"
    assert [line.split()[0] for line in lines[1:4]] == ["Train", "AbaloneMseFail", "Never"]
    assert lines[1].split()[1:] == ["Succeeded", "1.2", "s"]
    assert lines[2].endswith("MSE 5.1 above 0.001")
    assert lines[-1] == "  reason: Step AbaloneMseFail failed"
