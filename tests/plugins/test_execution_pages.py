"""The local execution page: rendered beside the records, and served by a real Airflow API server.

The HTTP test starts ``airflow api-server`` on a free loopback port with a scratch home and this
repository's plugins, then fetches the page the way the "Local Execution" extra link does:
logged in (bearer token, or the UI's ``_token`` cookie), refused without login, and never
outside the object root.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from airsage_local_pipeline import PIPELINE, definition, deploy

from sm_pipeline.local.execution_page import render_execution_page

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "build" / "test-artifacts" / "plugins"


def test_the_page_shows_steps_statuses_durations_reasons_and_escaped_log_tails(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "Train.stderr.log").write_text("line 1\n<script>alert(1)</script>\nTraceback: boom\n")
    (logs / "TrainX.log").write_text("another step's log")
    describe = {"PipelineName": "p", "PipelineExecutionId": "abc", "PipelineExecutionStatus": "Failed",
                "PipelineExecutionArn": "arn:aws:sagemaker:us-east-1:0:pipeline/p/execution/abc",
                "CreationTime": "2026-11-01T00:00:00+00:00", "EndTime": "2026-11-01T00:02:05+00:00",
                "FailureReason": "Step failure: Train: <b>bad</b>",
                "PipelineParameters": [{"Name": "MseThreshold", "Value": "6.0"}]}
    steps = [{"StepName": "Train", "StepStatus": "Failed", "StartTime": "2026-11-01T00:00:10+00:00",
              "EndTime": "2026-11-01T00:01:40.7+00:00", "AttemptCount": 2, "FailureReason": "AlgorithmError: <oops>"},
             {"StepName": "Prep", "StepStatus": "Succeeded", "StartTime": "2026-11-01T00:00:00+00:00",
              "EndTime": "2026-11-01T00:00:09.25+00:00"}]
    html = render_execution_page(describe, steps, logs)
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;b&gt;bad&lt;/b&gt;" in html and "AlgorithmError: &lt;oops&gt;" in html
    assert html.index(">Prep<") < html.index(">Train<")  # in the order the steps started
    assert "1 min 31 s" in html and "9.2 s" in html and "2 min 05 s" in html
    assert "Train.stderr.log" in html and "TrainX.log" not in html  # only the step's own logs
    assert "<details open>" in html and "MseThreshold" in html
    assert 'http-equiv="refresh"' not in html  # only a running execution refreshes itself


def test_page_names_are_checked_and_never_leave_the_object_root(tmp_path):
    from airsage.execution_pages import records_dir_for

    root = tmp_path / "objects"
    (root / ".airsage" / "executions" / "p").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (root / ".airsage" / "executions" / "p" / "link").symlink_to(tmp_path / "outside")
    assert records_dir_for(root, "p", "abc123") == (root / ".airsage" / "executions" / "p" / "abc123").resolve()
    # "link" is a valid name, but a symlink out of the root
    for pipeline, execution in (("..", "x"), ("p", ".."), ("p/../..", "x"), ("p", "a/b"), ("-p", "x"), ("p", "link"),
                                ("p", "")):
        assert records_dir_for(root, pipeline, execution) is None, (pipeline, execution)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def api_server(tmp_path_factory):
    """``airflow api-server`` on a free loopback port; yields (base URL, object root, login)."""
    import requests

    home = tmp_path_factory.mktemp("api-home")
    root = tmp_path_factory.mktemp("api-objects") / "objects"
    passwords = home / "passwords.json"
    passwords.write_text(json.dumps({"oncall": "on-call-pw"}))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_VAR_", "AIRFLOW_CONN_"))}
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "oncall:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW_VAR_AIRSAGE_LOCAL_ROOT": str(root),
        "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "plugins"), env.get("PYTHONPATH", "")]),
    })
    (home / "dags").mkdir()
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True,
                   timeout=600)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = (ARTIFACTS / "api-server.log").open("w")
    server = subprocess.Popen([sys.executable, "-m", "airflow", "api-server", "--host", "127.0.0.1",
                               "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            assert server.poll() is None, f"api-server exited; see {ARTIFACTS / 'api-server.log'}"
            try:
                if requests.get(f"{base}/api/v2/monitor/health", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, f"api-server did not answer; see {ARTIFACTS / 'api-server.log'}"
            time.sleep(1)
        token = requests.post(f"{base}/auth/token", json={"username": "oncall", "password": "on-call-pw"},
                              timeout=30).json()["access_token"]
        yield base, root, token
    finally:
        os.killpg(server.pid, 15)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
            server.wait(timeout=30)
        log.close()


@pytest.mark.slow
def test_the_api_server_serves_the_page_to_logged_in_users_only(api_server, monkeypatch):
    import requests

    from airsage.links.local_execution import execution_page_url
    from sm_pipeline.local import run_pipeline

    base, root, token = api_server
    deploy(root)
    run = run_pipeline(definition(), {"Outcome": "fail"}, root=root, pipeline_name=PIPELINE, display_name="x")
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", base)
    url = execution_page_url(PIPELINE, run.execution_id)
    assert url == f"{base}/airsage/executions/{PIPELINE}/{run.execution_id}"

    assert requests.get(url, timeout=30).status_code == 401  # not logged in
    page = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert page.status_code == 200, page.text[:500]
    assert page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    for fact in (run.execution_id, "Failed", "Work", "work failed on purpose", "exited with code 3"):
        assert fact in page.text, fact
    (ARTIFACTS / "execution-page.html").write_text(page.text)
    # the UI's session cookie works as well: that is what a click on the extra link sends
    assert requests.get(url, cookies={"_token": token}, timeout=30).status_code == 200

    auth = {"Authorization": f"Bearer {token}"}
    for path in (f"{PIPELINE}/nosuchexecution", f"{PIPELINE}/..%2F..%2F..%2Fetc", "..%2F..%2Fetc/passwd",
                 f"{PIPELINE}/{run.execution_id}%2F..%2F..", "-x/abc"):
        answer = requests.get(f"{base}/airsage/executions/{path}", headers=auth, timeout=30)
        assert answer.status_code == 404, (path, answer.status_code)
        assert "root:" not in answer.text
