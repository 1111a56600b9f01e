"""``make stack``'s environment is docker-compose.yaml's, translated by one explicit mapping.

No PostgreSQL, Redis or Airflow process needed: this checks the launcher's pure parts — the
environment and commands it derives from the compose file — and its one-line exit 2 when the
servers are not there.
"""

from __future__ import annotations

import copy
import re
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
from stack_support import REPO, launcher_environment

from airsage import celery_worker
from launchers import LauncherError, airflow_api, airflow_env, emulated_aws, supervisor
from launchers import stack as stack_module

COMPOSE_SERVICES = {"postgres", "redis", "airflow-apiserver", "aws-emulator"}


@pytest.fixture(scope="module")
def compose():
    return stack_module.load_compose()


@pytest.fixture
def site(tmp_path):
    return stack_module.Site(dir=tmp_path / "stack", stack_id="t0test", api_port=18080, health_port=18974,
                             aws_endpoint="http://127.0.0.1:15000", jwt_secret="per-stack-secret")


@pytest.fixture
def env(compose, site):
    # interpolated as on a machine with no overrides in the shell or .env
    return stack_module.stack_environment(compose, site, interpolation_env={}, base={})


def compose_env(compose) -> dict[str, str]:
    return stack_module.compose_environment(compose, {})


def test_every_compose_setting_is_set_by_the_stack_unchanged_unless_mapped(compose, site, env):
    paths = stack_module.container_paths(compose, site)
    for key, value in compose_env(compose).items():
        assert key in env, f"{key} from docker-compose.yaml is not set by make stack"
        if key in stack_module.HOST_MAPPING:
            assert env[key] != value, f"{key} is in the host mapping but not translated"
        elif value.startswith(stack_module.CONTAINER_HOME):
            assert env[key] == stack_module.translate_paths(value, paths)
        else:
            assert env[key] == value, f"{key}: make stack sets {env[key]!r}, compose {value!r}"


def test_no_translated_value_names_a_compose_service_or_container_path(compose, env):
    for key in compose_env(compose):
        value = urllib.parse.unquote(env[key])
        assert "/opt/airflow" not in value, (key, value)
        for url in re.findall(r"[a-z0-9+]+://[^\s&]*", value):
            assert urllib.parse.urlsplit(url).hostname not in COMPOSE_SERVICES, (key, url)


def test_the_host_mapping_names_only_compose_settings_and_local_additions_only_new_ones(compose, env):
    in_compose = set(compose_env(compose))
    assert set(stack_module.HOST_MAPPING) <= in_compose, "a stale host-mapping entry"
    assert not set(stack_module.LOCAL_ONLY) & in_compose, "a local addition shadows a compose setting"
    assert set(env) == in_compose | set(stack_module.LOCAL_ONLY)
    for table in (stack_module.HOST_MAPPING, stack_module.LOCAL_ONLY):
        assert all(reason.strip() for reason, _ in table.values())


def test_services_translate_to_the_local_servers_and_the_stack_s_own_database(env, site):
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == "postgresql+psycopg2://postgres@127.0.0.1:5432/airsage_stack_t0test"
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+postgresql://postgres@127.0.0.1:5432/airsage_stack_t0test"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://127.0.0.1:6379/0"
    assert env["AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX"] == "airsage-stack-t0test:"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18080/execution/"
    assert "endpoint_url=http%3A%2F%2F127.0.0.1%3A15000" in env["AIRFLOW_CONN_AWS_DEFAULT"]
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == "per-stack-secret"
    assert env["AIRFLOW_HOME"] == str(site.dir)
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] == str(site.dir / "simple_auth_manager_passwords.json")


def test_compose_interpolation_takes_the_shell_s_values(compose, site):
    env = stack_module.stack_environment(compose, site, interpolation_env={
        "AIRSAGE_AWS_CONN": "aws://?region_name=eu-west-1", "AIRSAGE_BUCKET": "team-bucket"}, base={})
    assert env["AIRFLOW_CONN_AWS_DEFAULT"] == "aws://?region_name=eu-west-1"  # real AWS: left as it is
    assert env["AIRFLOW_VAR_AIRSAGE_BUCKET"] == "team-bucket"
    assert stack_module.interpolate("$${X}-${A:-d}-${B-e}-$C", {"A": "", "B": "", "C": "c"}) == "${X}-d--c"
    with pytest.raises(LauncherError, match="required variable Q"):
        stack_module.interpolate("${Q:?set Q}", {})


def test_paths_map_to_the_repository_as_the_compose_volumes_mount_it(compose, site, env):
    paths = stack_module.container_paths(compose, site)
    for volume in compose["x-airflow-common"]["volumes"]:
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            assert paths[target] == (REPO / source).resolve()
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(REPO / "dags")
    assert env["AIRFLOW__CORE__PLUGINS_FOLDER"] == str(REPO / "plugins")
    assert env["PYTHONPATH"].split(":") == [str(REPO), str(REPO / "plugins")]
    assert env["AIRSAGE_ROOT"] == env["AIRFLOW_VAR_AIRSAGE_LOCAL_ROOT"] == str(site.dir / "airsage-root")
    assert stack_module.translate_paths("/opt/airflow-other/x", paths) == "/opt/airflow-other/x"
    with pytest.raises(LauncherError, match="no local path"):
        stack_module.translate_paths("/opt/airflow/x", {"/opt/airflow/dags": site.dir})


def test_the_stack_environment_agrees_with_make_demo_s(env, site):
    demo_env = airflow_env.airflow_env(site.dir, site.dir / "airsage-root")
    for key in ("AIRFLOW__CORE__DAGS_FOLDER", "AIRFLOW__CORE__PLUGINS_FOLDER", "AIRSAGE_ROOT",
                "AIRFLOW_VAR_AIRSAGE_LOCAL_ROOT", "AIRSAGE_TELEMETRY"):
        assert env[key] == demo_env[key], key
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"].lower() == demo_env["AIRFLOW__CORE__LOAD_EXAMPLES"].lower()
    assert demo_env["PYTHONPATH"].split(":")[:2] == env["PYTHONPATH"].split(":")


@pytest.mark.parametrize("override", [None, "5"])
def test_make_ui_and_the_stack_free_a_finished_task_s_slot_alike(compose, site, override):
    shell = {} if override is None else {"AIRFLOW_MIN_HEARTBEAT_INTERVAL": override}
    stack_env = stack_module.stack_environment(compose, site, interpolation_env=shell, base={})
    demo_env = airflow_env.airflow_env(site.dir, site.dir / "airsage-root", base=shell)
    key = "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL"
    assert stack_env[key] == demo_env[key] == (override or "1")


def test_components_are_the_compose_services_with_one_hostname_per_worker(compose, site):
    components = stack_module.airflow_components(compose, site, workers=3)
    commands = {c.name: c.argv[3:] for c in components}
    assert commands["api-server"] == ["api-server"]
    assert commands["scheduler"][0] == "scheduler" and commands["dag-processor"] == ["dag-processor"]
    assert commands["triggerer"][0] == "triggerer"
    workers = [c for c in components if c.name.startswith("worker")]
    assert [w.argv[3:5] for w in workers] == [["celery", "worker"]] * 3
    assert len({w.argv[w.argv.index("--celery-hostname") + 1] for w in workers}) == 3
    hostnames = [w.env[stack_module.WORKER_HOSTNAME_VAR] for w in workers]
    assert hostnames == ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    assert {w.env["AIRFLOW__CORE__HOSTNAME_CALLABLE"] for w in workers} == {"airsage.celery_worker.worker_hostname"}
    assert {w.term for w in workers} == {"leader"}  # a worker's warm shutdown stops its pool itself


def test_the_emulated_aws_is_the_compose_service_s_command_on_loopback(compose, site):
    emulator = stack_module.emulator_component(compose, site, 15000)
    assert emulator.argv[0] == sys.executable
    assert "0.0.0.0" not in emulator.argv and "5000" not in emulator.argv  # noqa: S104
    # the emulated SageMaker service, on loopback, its root in the stack's directory
    assert emulator.argv[1:] == [
        "-m", "sm_pipeline", "serve", "--host", "127.0.0.1", "--port", "15000", "--root", str(site.dir / "emulated-aws")]
    other = copy.deepcopy(compose)  # whatever command the compose file has is what make stack starts
    other["services"]["aws-emulator"]["command"] = ["python", "-m", "moto.server", "-H", "0.0.0.0", "-p", "5000"]  # noqa: S104
    assert stack_module.emulator_component(other, site, 15000).argv[1:] == [
        "-m", "moto.server", "-H", "127.0.0.1", "-p", "15000"]


def test_worker_hostname_is_the_worker_s_own_address(monkeypatch):
    assert celery_worker.HOSTNAME_VAR == stack_module.WORKER_HOSTNAME_VAR
    monkeypatch.setenv(stack_module.WORKER_HOSTNAME_VAR, "127.0.0.3")
    assert celery_worker.worker_hostname() == "127.0.0.3"


def test_without_postgresql_and_redis_make_stack_says_which_in_one_line_and_exits_2(tmp_path):
    env = {**launcher_environment(), "AIRSAGE_STACK_POSTGRES": "postgresql://postgres@127.0.0.1:9/postgres",
           "AIRSAGE_STACK_REDIS": "redis://127.0.0.1:9"}
    done = subprocess.run([sys.executable, "-m", "launchers.stack", "up", "--dir", str(tmp_path / "s")], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "PostgreSQL at 127.0.0.1:9 (" in lines[0] and "Redis at 127.0.0.1:9 (" in lines[0]
    assert "not reachable" in lines[0] and "Traceback" not in done.stderr
    assert not (tmp_path / "s").exists()


def test_make_stack_down_without_a_stack_says_so(tmp_path):
    done = subprocess.run([sys.executable, "-m", "launchers.stack", "down", "--dir", str(tmp_path)], cwd=REPO,
                          env=launcher_environment(), capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0 and "nothing to stop" in done.stdout


def test_a_broken_state_file_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "state.json").write_text("{not json")
    done = subprocess.run([sys.executable, "-m", "launchers.stack", "down", "--dir", str(tmp_path)], cwd=REPO,
                          env=launcher_environment(), capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert str(Path(tmp_path) / "state.json") in done.stderr


def test_a_component_that_dies_is_reported_with_the_cause_of_its_chained_traceback(tmp_path):
    log = tmp_path / "worker1.log"
    log.write_text("\n--- 2026-01-01T00:00:00 old start\nValueError: from an earlier start\n"
                   "\n--- 2026-01-02T00:00:00 python -m airflow celery worker\nTraceback (most recent call last):\n"
                   "ImportError: cannot import name 'retry' from 'celery.backends.database'\n\n"
                   "The above exception was the direct cause of the following exception:\n\n"
                   + "  frame\n" * 20 + "airflow.sdk.exceptions.AirflowOptionalProviderFeatureException: misleading\n")
    report = supervisor.log_tail(log)
    assert report[0] == "first error: ImportError: cannot import name 'retry' from 'celery.backends.database'"
    assert report[-1].endswith("misleading") and "earlier start" not in "\n".join(report)


def test_the_stack_waits_for_the_emulated_service_s_health_path_as_compose_does(tmp_path):
    import http.server
    import threading

    from sm_pipeline.service.server import HEALTH_PATH

    assert emulated_aws.EMULATOR_HEALTH_PATH == HEALTH_PATH
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            seen.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert emulated_aws.emulator_answers(f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()
    assert seen == [HEALTH_PATH]
    assert not emulated_aws.emulator_answers(f"http://127.0.0.1:{server.server_address[1]}")  # nothing listens


def test_wait_until_returns_the_first_truthy_value_or_names_what_it_waited_for():
    answers = iter([None, [], ["run-1"]])
    assert airflow_api.wait_until("a run", lambda: next(answers), timeout=60, interval=0) == ["run-1"]
    with pytest.raises(LauncherError, match=r"^timed out after 0 s waiting for the scheduler$"):
        airflow_api.wait_until("the scheduler", lambda: None, timeout=0, interval=0)
    assert airflow_api.poll(lambda: 0, timeout=0) is None
