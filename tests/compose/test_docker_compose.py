"""docker-compose.yaml is valid against the Compose schema and has the production shape.

No Docker engine runs in CI, so the file is validated offline: the vendored Compose JSON
schema, then the project's own structural rules (services, build from the lock, mounts,
emulated AWS wiring).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((Path(__file__).with_name("compose_spec.json")).read_text())
REQUIRED_SERVICES = {
    "postgres", "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor",
    "airflow-triggerer", "airflow-init", "moto",
}


def load_compose(text: str | None = None) -> dict:
    """Parse compose YAML (anchors and merge keys resolved, as Compose does)."""
    return yaml.safe_load(text if text is not None else (REPO / "docker-compose.yaml").read_text())


def compose_errors(doc: dict) -> list[str]:
    """Schema violations of a parsed compose document, one line each."""
    validator = jsonschema.Draft201909Validator(SCHEMA)
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(doc)]


@pytest.fixture(scope="module")
def compose() -> dict:
    return load_compose()


def test_compose_file_matches_the_compose_schema(compose):
    assert compose_errors(compose) == []


def test_compose_has_the_official_airflow_3_services_and_emulated_aws(compose):
    assert REQUIRED_SERVICES <= set(compose["services"])
    commands = {name: svc.get("command") for name, svc in compose["services"].items()}
    assert commands["airflow-apiserver"] == "api-server"
    assert commands["airflow-scheduler"] == "scheduler"
    assert commands["airflow-dag-processor"] == "dag-processor"
    assert commands["airflow-triggerer"] == "triggerer"


def test_airflow_image_is_built_from_the_lock_not_pip_additional_requirements(compose):
    text = (REPO / "docker-compose.yaml").read_text()
    assert "_PIP_ADDITIONAL_REQUIREMENTS" not in text
    dockerfile = REPO / compose["services"]["airflow-scheduler"]["build"]["dockerfile"]
    assert "requirements.txt" in dockerfile.read_text()
    assert "FROM apache/airflow:3.3.2" in dockerfile.read_text()


def test_project_code_is_mounted_into_every_airflow_service(compose):
    for name in REQUIRED_SERVICES - {"postgres", "moto"}:
        targets = {v.split(":")[1] for v in compose["services"][name]["volumes"]}
        assert {"/opt/airflow/dags", "/opt/airflow/plugins", "/opt/airflow/project/sm_pipeline",
                "/opt/airflow/project/processing_code"} <= targets, name


def test_aws_connection_defaults_to_the_moto_service(compose):
    env = compose["services"]["airflow-scheduler"]["environment"]
    conn = env["AIRFLOW_CONN_AWS_DEFAULT"]
    assert conn.startswith("${AIRSAGE_AWS_CONN:-")  # the one env change for real AWS
    assert "endpoint_url=http%3A%2F%2Fmoto%3A5000" in conn
    assert compose["services"]["moto"]["entrypoint"][0] == "moto_server"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["services"]["postgres"].update(portz=["5432"]), "portz"),
        (lambda d: d["services"]["airflow-scheduler"].update(depends_on="postgres"), "depends_on"),
        (lambda d: d["services"]["moto"]["healthcheck"].update(retries="five"), "retries"),
        (lambda d: d.update(services=[]), "services"),
    ],
    ids=["unknown-key", "depends-on-wrong-type", "retries-not-integer", "services-not-mapping"],
)
def test_a_broken_compose_file_fails_validation(compose, mutate, expected):
    broken = copy.deepcopy(compose)
    mutate(broken)
    errors = compose_errors(broken)
    assert errors and any(expected in e for e in errors), errors
