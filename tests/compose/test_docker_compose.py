"""docker-compose.yaml is valid against the Compose schema and has the official 3.x distributed shape.

No Docker engine runs in CI, so the file is validated offline: the vendored Compose JSON
schema, then the project's structural rules (Airflow's official CeleryExecutor file: services,
health checks, the shared JWT secret, the execution API URL, scalable workers, flower under a
profile; plus build from the lock, project mounts, the emulated AWS). Broken variants of the
file are shown to fail both. The same stack as processes is tested in tests/stack.
"""

from __future__ import annotations

import copy
import json
import urllib.parse
from pathlib import Path

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((Path(__file__).with_name("compose_spec.json")).read_text())
AIRFLOW_SERVICES = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
    "airflow-worker": "celery worker",
}
REQUIRED_SERVICES = {"postgres", "redis", "airflow-init", "flower", "aws-emulator", *AIRFLOW_SERVICES}
EXPECTED_HEALTHCHECKS = {
    "postgres": "pg_isready",
    "redis": "redis-cli ping",
    "airflow-apiserver": "http://localhost:8080/api/v2/monitor/health",
    "airflow-scheduler": "http://localhost:8974/health",
    "airflow-dag-processor": "airflow jobs check --job-type DagProcessorJob",
    "airflow-triggerer": "airflow jobs check --job-type TriggererJob",
    "airflow-worker": 'inspect ping -d "celery@$${HOSTNAME}"',
    "flower": "http://localhost:5555/",
}


def load_compose(text: str | None = None) -> dict:
    """Parse compose YAML (anchors and merge keys resolved, as Compose does)."""
    return yaml.safe_load(text if text is not None else (REPO / "docker-compose.yaml").read_text())


def compose_errors(doc: dict) -> list[str]:
    """Schema violations of a parsed compose document, one line each."""
    validator = jsonschema.Draft201909Validator(SCHEMA)
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(doc)]


def healthcheck_text(service: dict) -> str:
    test = service.get("healthcheck", {}).get("test", "")
    return " ".join(test) if isinstance(test, list) else str(test)


def shape_problems(doc: dict) -> list[str]:
    """Where the document departs from the official distributed shape (empty when it does not)."""
    problems = []
    services = doc.get("services", {})
    missing = REQUIRED_SERVICES - set(services)
    if missing:
        return [f"missing services: {sorted(missing)}"]
    common = doc["x-airflow-common"]["environment"]
    if common.get("AIRFLOW__CORE__EXECUTOR") != "CeleryExecutor":
        problems.append("x-airflow-common: the executor is not CeleryExecutor")
    if urllib.parse.urlsplit(common.get("AIRFLOW__CELERY__BROKER_URL", "")).hostname != "redis":
        problems.append("x-airflow-common: the Celery broker is not the redis service")
    if not common.get("AIRFLOW__CELERY__RESULT_BACKEND", "").startswith("db+postgresql://"):
        problems.append("x-airflow-common: the Celery result backend is not the postgres database")
    if common.get("AIRFLOW__CORE__EXECUTION_API_SERVER_URL") != "http://airflow-apiserver:8080/execution/":
        problems.append("x-airflow-common: the execution API URL is not the api-server's")
    for name in AIRFLOW_SERVICES:
        service = services[name]
        env = service.get("environment", {})
        if env.get("AIRFLOW__API_AUTH__JWT_SECRET") != common.get("AIRFLOW__API_AUTH__JWT_SECRET") or not env.get(
                "AIRFLOW__API_AUTH__JWT_SECRET"):
            problems.append(f"{name}: does not share x-airflow-common's JWT secret")
        if service.get("command") != AIRFLOW_SERVICES[name]:
            problems.append(f"{name}: command {service.get('command')!r}")
        depends = service.get("depends_on", {})
        for needed in ("postgres", "redis"):
            if depends.get(needed, {}).get("condition") != "service_healthy":
                problems.append(f"{name}: does not wait for {needed} to be healthy")
    for name, expected in EXPECTED_HEALTHCHECKS.items():
        check = services[name].get("healthcheck", {})
        if expected not in healthcheck_text(services[name]):
            problems.append(f"{name}: health check {healthcheck_text(services[name])!r} lacks {expected!r}")
        if name.startswith(("airflow-", "flower")) and not {"interval", "timeout", "retries", "start_period"} <= set(check):
            problems.append(f"{name}: health check without interval/timeout/retries/start_period")
    worker = services["airflow-worker"]
    for key in ("container_name", "ports", "hostname"):
        if key in worker:
            problems.append(f"airflow-worker: {key} stops `--scale airflow-worker=N`")
    if worker.get("depends_on", {}).get("airflow-apiserver", {}).get("condition") != "service_healthy":
        problems.append("airflow-worker: does not wait for the api-server (its tasks call the execution API)")
    if services["flower"].get("profiles") != ["flower"]:
        problems.append("flower: not under the `flower` profile")
    return problems


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_compose()


def test_compose_file_matches_the_compose_schema(compose):
    assert compose_errors(compose) == []


def test_compose_has_the_official_distributed_shape(compose):
    assert shape_problems(compose) == []


def test_airflow_image_is_built_from_the_lock_not_pip_additional_requirements(compose):
    text = (REPO / "docker-compose.yaml").read_text()
    assert "_PIP_ADDITIONAL_REQUIREMENTS" not in text
    dockerfile = REPO / compose["services"]["airflow-scheduler"]["build"]["dockerfile"]
    assert "requirements.txt" in dockerfile.read_text()
    assert "FROM apache/airflow:3.3.2" in dockerfile.read_text()


def test_project_code_and_plugins_reach_every_airflow_service(compose):
    # the dag-processor parses the DAGs' airsage operators, the triggerer rebuilds airsage's
    # trigger, task processes import sm_pipeline: all from the same mounts and settings
    for name in (*AIRFLOW_SERVICES, "airflow-init"):
        service = compose["services"][name]
        targets = {v.split(":")[1] for v in service["volumes"]}
        assert {"/opt/airflow/dags", "/opt/airflow/plugins", "/opt/airflow/project/sm_pipeline",
                "/opt/airflow/project/processing_code"} <= targets, name
        env = service["environment"]
        assert env["AIRFLOW__CORE__PLUGINS_FOLDER"] == "/opt/airflow/plugins", name
        assert env["PYTHONPATH"].split(":") == ["/opt/airflow/project", "/opt/airflow/plugins"], name


def test_aws_connection_defaults_to_the_emulated_aws_service(compose):
    env = compose["x-airflow-common"]["environment"]
    conn = env["AIRFLOW_CONN_AWS_DEFAULT"]
    assert conn.startswith("${AIRSAGE_AWS_CONN:-")  # the one env change for real AWS
    default = conn.removeprefix("${AIRSAGE_AWS_CONN:-").removesuffix("}")
    endpoint = urllib.parse.urlsplit(dict(urllib.parse.parse_qsl(default.partition("?")[2]))["endpoint_url"])
    emulator = compose["services"][endpoint.hostname]
    assert endpoint.hostname == "aws-emulator"
    # the project's emulated SageMaker service, listening on the endpoint's port on every interface of
    # the container, checked on the health path the server serves (moto's /moto-api/ is refused there)
    from sm_pipeline.service.server import HEALTH_PATH

    command = emulator["command"]
    assert command[:4] == ["python", "-m", "sm_pipeline", "serve"]
    assert command[command.index("--port") + 1] == str(endpoint.port) and command[command.index("--host") + 1] == \
        "0.0.0.0"  # noqa: S104
    root = command[command.index("--root") + 1]
    assert any(str(v).endswith(f":{root}") for v in emulator["volumes"])  # the records outlive the container
    assert "moto-api" not in healthcheck_text(emulator)
    assert f"http://localhost:{endpoint.port}{HEALTH_PATH}" in healthcheck_text(emulator)
    depends = compose["services"]["airflow-scheduler"]["depends_on"]
    assert depends["aws-emulator"]["condition"] == "service_healthy"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["services"]["postgres"].update(portz=["5432"]), "portz"),
        (lambda d: d["services"]["airflow-scheduler"].update(depends_on="postgres"), "depends_on"),
        (lambda d: d["services"]["aws-emulator"]["healthcheck"].update(retries="five"), "retries"),
        (lambda d: d.update(services=[]), "services"),
    ],
    ids=["unknown-key", "depends-on-wrong-type", "retries-not-integer", "services-not-mapping"],
)
def test_a_broken_compose_file_fails_validation(compose, mutate, expected):
    broken = copy.deepcopy(compose)
    mutate(broken)
    errors = compose_errors(broken)
    assert errors and any(expected in e for e in errors), errors


def _without_jwt_in(name):
    def mutate(doc):
        doc["services"][name]["environment"] = dict(doc["services"][name]["environment"])
        del doc["services"][name]["environment"]["AIRFLOW__API_AUTH__JWT_SECRET"]
    return mutate


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["x-airflow-common"]["environment"].update(AIRFLOW__CORE__EXECUTOR="LocalExecutor"),
         "not CeleryExecutor"),
        (lambda d: d["services"]["airflow-worker"].update(container_name="worker"), "container_name"),
        (lambda d: d["services"]["airflow-worker"].update(ports=["8793:8793"]), "ports"),
        (_without_jwt_in("airflow-triggerer"), "airflow-triggerer: does not share"),
        (lambda d: d["services"]["airflow-worker"].update(healthcheck={"test": ["CMD", "true"]}), "inspect ping"),
        (lambda d: d["services"]["flower"].pop("profiles"), "flower: not under"),
        (lambda d: d["services"].pop("redis"), "missing services"),
        (lambda d: d["x-airflow-common"]["environment"].update(
            AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://localhost:8080/execution/"), "execution API URL"),
    ],
    ids=["local-executor", "worker-container-name", "worker-fixed-port", "triggerer-without-jwt-secret",
         "worker-without-celery-ping", "flower-always-on", "no-redis", "execution-api-on-localhost"],
)
def test_a_compose_file_off_the_official_shape_is_caught(compose, mutate, expected):
    broken = copy.deepcopy(compose)
    mutate(broken)
    problems = shape_problems(broken)
    assert problems and any(expected in p for p in problems), problems
