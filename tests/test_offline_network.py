"""Offline for real: with no AWS credentials and no AWS_* variables, the commands reach no network.

Each command runs as a subprocess in a clean environment -- none of tests/conftest.py's fake
credentials or disabled metadata lookup, no AWS_* variable, a fresh HOME (so no ``~/.aws``) -- with
``tests/network_audit`` on its PYTHONPATH. That directory's ``sitecustomize`` installs an audit hook
(``sys.addaudithook``) in every Python process of the command, its children included, which records
each ``socket.connect`` to a non-loopback address and each name lookup of a non-loopback host, and
then refuses it, so a regression never sends a packet. The tests assert the record is empty, and
that the processes that ran the job scripts were audited too.

The negative control runs the same ``definition`` command with the fix (``sm_pipeline.offline_aws``)
taken out and shows the audit records the instance-metadata probes; the EC2 case shows that a
process which goes on to call AWS still gets its credentials from the metadata service, after the
build and only then.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
AUDIT_HOOK_DIR = REPO / "tests" / "network_audit"
ARTIFACTS = REPO / "build" / "test-artifacts" / "offline-network"
METADATA_ADDRESSES = {"169.254.169.254", "169.254.170.2", "fd00:ec2::254"}


def clean_env(home: Path, audit_dir: Path, **extra: str) -> dict[str, str]:
    """A user's shell with no AWS configuration at all, plus the audit hook."""
    home.mkdir(parents=True, exist_ok=True)
    audit_dir.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(AUDIT_HOOK_DIR),
        "AIRSAGE_NETWORK_AUDIT_DIR": str(audit_dir),
        **extra,
    }
    assert not [name for name in env if name.startswith("AWS_")] or "AWS_EC2_METADATA_SERVICE_ENDPOINT" in extra
    return env


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def attempts(audit_dir: Path) -> list[dict]:
    """Every non-loopback connection or lookup the audited processes tried."""
    return read_jsonl(audit_dir / "attempts.jsonl")


def audited_processes(audit_dir: Path) -> list[dict]:
    """Every Python process that ran with the audit hook installed."""
    return read_jsonl(audit_dir / "processes.jsonl")


def run_audited(argv: list[str], env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def keep_logs(name: str, done: subprocess.CompletedProcess, audit_dir: Path) -> None:
    """The command's output and the audit record, kept under build/test-artifacts/offline-network/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"{name}.log").write_text(f"exit {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}")
    for record in ("attempts.jsonl", "processes.jsonl"):
        if (audit_dir / record).exists():
            shutil.copyfile(audit_dir / record, ARTIFACTS / f"{name}.{record}")


def sm_pipeline(*args: str) -> list[str]:
    return [sys.executable, "-m", "sm_pipeline", *args]


# --------------------------------------------------------------------------- the audit itself
def test_the_audit_records_and_refuses_in_a_job_process_behind_the_container_hook(tmp_path):
    """A job process gets the local runner's sitecustomize first on its path; the audit still runs."""
    from sm_pipeline.local.jobs import HOOK_DIR

    audit = tmp_path / "audit"
    env = clean_env(tmp_path / "home", audit, AIRSAGE_CONTAINER_ROOT=str(tmp_path / "sandbox"))
    env["PYTHONPATH"] = os.pathsep.join([str(HOOK_DIR), env["PYTHONPATH"]])
    code = (
        "import socket, sys\n"
        "try:\n    socket.create_connection(('169.254.169.254', 80), timeout=1)\n"
        "except ConnectionRefusedError as exc:\n    print(exc)\n"
        "try:\n    socket.getaddrinfo('metadata.google.internal', 80)\n"
        "except ConnectionRefusedError as exc:\n    print(exc)\n"
        "print(open('/opt/ml/x').read())\n"  # the container hook still remaps /opt/ml
    )
    (tmp_path / "sandbox" / "opt" / "ml").mkdir(parents=True)
    (tmp_path / "sandbox" / "opt" / "ml" / "x").write_text("remapped")
    done = run_audited([sys.executable, "-c", code], env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "refused by the airsage network audit: socket.connect ('169.254.169.254', 80)",
        "refused by the airsage network audit: socket.getaddrinfo ('metadata.google.internal', 80)",
        "remapped",
    ]
    assert [(a["event"], a["address"]) for a in attempts(audit)] == [
        ("socket.connect", ["169.254.169.254", 80]), ("socket.getaddrinfo", ["metadata.google.internal", 80])]
    assert len(audited_processes(audit)) == 1


def test_loopback_is_not_recorded(tmp_path):
    audit = tmp_path / "audit"
    code = (
        "import socket\n"
        "server = socket.socket(); server.bind(('127.0.0.1', 0)); server.listen()\n"
        "socket.create_connection(server.getsockname(), timeout=5).close()\n"
        "socket.getaddrinfo('localhost', 80)\n"
        "socket.getaddrinfo(socket.gethostname(), None)  # Airflow labels task instances with it\n"
    )
    done = run_audited([sys.executable, "-c", code], clean_env(tmp_path / "home", audit))
    assert done.returncode == 0, done.stderr
    assert attempts(audit) == []


# --------------------------------------------------------------------------- the CLI
@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory) -> dict[str, dict]:
    """definition, validate, make-data and run-local (fresh root), each audited on its own."""
    work = tmp_path_factory.mktemp("offline-cli")
    home = work / "home"
    commands = {
        "definition": sm_pipeline("definition", "--output", str(work / "def.json")),
        "validate": sm_pipeline("validate", str(work / "def.json")),
        "make-data": sm_pipeline("make-data", "--rows", "400", "--seed", "1", "--output", str(work / "data.csv")),
        "run-local": sm_pipeline("run-local", "--definition", str(work / "def.json"), "--root", str(work / "objects"),
                                 "--stage-data", str(work / "data.csv"), "--code-dir", "processing_code",
                                 "--param", "MseThreshold=100"),
    }
    runs = {}
    for name, argv in commands.items():
        audit = work / f"audit-{name}"
        done = run_audited(argv, clean_env(home, audit))
        keep_logs(name, done, audit)
        runs[name] = {"done": done, "attempts": attempts(audit), "processes": audited_processes(audit)}
    return runs


@pytest.mark.parametrize("command", ["definition", "validate", "make-data", "run-local"])
def test_cli_command_makes_no_network_attempt(cli_runs, command):
    run = cli_runs[command]
    assert run["done"].returncode == 0, run["done"].stderr
    assert run["processes"], "the audit hook was not loaded"
    assert run["attempts"] == []


def test_run_local_job_processes_were_audited(cli_runs):
    scripts = {Path(arg).name for p in cli_runs["run-local"]["processes"] for arg in p["argv"]}
    assert {"preprocess.py", "evaluate.py"} <= scripts


def test_negative_control_without_the_fix_the_build_probes_the_metadata_service(tmp_path):
    """``definition`` with offline_aws() reduced to its extra variables: the credential chain runs again."""
    audit = tmp_path / "audit"
    without_fix = (
        "import contextlib, os, sys\n"
        "from unittest import mock\n"
        "import sm_pipeline.offline_aws as offline\n"
        "@contextlib.contextmanager\n"
        "def only_the_sdk_variables(extra=None):\n"
        "    with mock.patch.dict(os.environ, extra or {}):\n"
        "        yield\n"
        "offline.offline_aws = only_the_sdk_variables\n"
        "from sm_pipeline.__main__ import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    done = run_audited([sys.executable, "-c", without_fix, "definition", "--output", str(tmp_path / "def.json")],
                       clean_env(tmp_path / "home", audit))
    assert done.returncode == 0, done.stderr  # the build tolerates the dead network, as it did before the fix
    probes = [a for a in attempts(audit) if a["event"] == "socket.connect"]
    assert probes, "without the fix the SDK's clients should have asked the metadata service"
    assert {a["address"][0] for a in probes} <= METADATA_ADDRESSES
    assert "169.254.169.254" in {a["address"][0] for a in probes}


# --------------------------------------------------------------------------- a real-AWS process
class _FakeInstanceMetadata(BaseHTTPRequestHandler):
    """IMDSv2 on loopback, serving the credentials of an instance role."""

    requests: list[str] = []

    def log_message(self, *args):  # quiet
        pass

    def _reply(self, body: str, status: int = 200) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self):  # noqa: N802 - http.server's naming
        self.requests.append(f"PUT {self.path}")
        self._reply("fake-imds-token" if self.path == "/latest/api/token" else "", 200 if self.path else 404)

    def do_GET(self):  # noqa: N802
        self.requests.append(f"GET {self.path}")
        base = "/latest/meta-data/iam/security-credentials/"
        if self.path == base:
            self._reply("airsage-airflow-role")
        elif self.path == base + "airsage-airflow-role":
            self._reply(json.dumps({
                "Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": "ASIAINSTANCEROLE",
                "SecretAccessKey": "instance-role-secret", "Token": "instance-role-token",
                "Expiration": "2099-01-01T00:00:00Z", "LastUpdated": "2026-01-01T00:00:00Z",
            }))
        else:
            self._reply("", 200 if self.path == "/airsage-test/build-finished" else 404)


@pytest.fixture
def instance_metadata():
    _FakeInstanceMetadata.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeInstanceMetadata)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", _FakeInstanceMetadata.requests
    server.shutdown()
    server.server_close()


def test_on_an_instance_role_the_build_asks_nothing_and_later_aws_calls_get_the_role(tmp_path, instance_metadata):
    """The upsert_pipeline task on EC2: build the definition, then call AWS with the instance role."""
    endpoint, requests = instance_metadata
    audit = tmp_path / "audit"
    worker = (
        "import json, os, urllib.request\n"
        "import boto3\n"
        "from sm_pipeline.abalone.config import load_config\n"
        "from sm_pipeline.abalone.definition import definition_json\n"
        "boto3.setup_default_session()  # a worker that used boto3 before, credentials not yet resolved\n"
        "default_before = boto3.DEFAULT_SESSION\n"
        "env_before = dict(os.environ)\n"
        "definition_json(load_config(env={}))\n"
        "env_after = dict(os.environ)\n"
        "urllib.request.urlopen(os.environ['AWS_EC2_METADATA_SERVICE_ENDPOINT'] + 'airsage-test/build-finished')\n"
        "print(json.dumps({\n"
        "    'env_restored': env_before == env_after,\n"
        "    'default_session_kept': boto3.DEFAULT_SESSION is default_before,\n"
        "    'default_session_key': boto3.DEFAULT_SESSION.get_credentials().access_key,\n"
        "    'new_session_key': boto3.Session(region_name='eu-west-1').get_credentials().access_key,\n"
        "}))\n"
    )
    env = clean_env(tmp_path / "home", audit, AWS_EC2_METADATA_SERVICE_ENDPOINT=endpoint)
    done = run_audited([sys.executable, "-c", worker], env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {
        "env_restored": True, "default_session_kept": True,
        "default_session_key": "ASIAINSTANCEROLE", "new_session_key": "ASIAINSTANCEROLE",
    }
    marker = requests.index("GET /airsage-test/build-finished")
    assert requests[:marker] == []  # nothing asked the metadata service while the definition was built
    assert "GET /latest/meta-data/iam/security-credentials/airsage-airflow-role" in requests[marker:]
    assert attempts(audit) == []


# --------------------------------------------------------------------------- make demo and the local DAG
def assert_told_briefly(output: str, states: dict[str, str]) -> None:
    """``make demo`` talks to a person: a few lines (task states, the execution's steps, the outcome), with
    Airflow's own log in the file its last line names, not on the terminal."""
    lines = output.splitlines()
    assert len(lines) <= 30, output
    assert not any("[info" in line or "[warning" in line or "Traceback" in line for line in lines), output
    for task, state in states.items():
        assert any(line.split()[:2] == [task, state] for line in lines if line.startswith("  ")), (task, state, output)
    assert any(line.split()[:2] == ["TrainAbalone", "Succeeded"] for line in lines), output  # the execution's steps
    exit_line = [line for line in lines if line.startswith("airsage demo: exit ")][-1]
    log = Path(exit_line.rsplit("Airflow's log: ", 1)[1])
    assert "[DAG TEST] end task task_id=read_metrics" in log.read_text()  # the whole Airflow log is there


@pytest.mark.slow
def test_make_demo_and_every_local_dag_task_make_no_network_attempt(tmp_path):
    """``make demo`` (python -m launchers.demo) on the pass path, then a date whose gate fails (alert path)."""
    audit = tmp_path / "audit"
    root = tmp_path / "objects"
    env = clean_env(tmp_path / "home", audit, AIRFLOW_HOME=str(tmp_path / "airflow"), AIRSAGE_ROOT=str(root))
    passed = run_audited([sys.executable, "-m", "launchers.demo", "--date", "2026-11-01"], env, timeout=900)
    keep_logs("demo-pass", passed, audit)
    assert passed.returncode == 0, passed.stdout[-3000:] + passed.stderr[-3000:]
    reports = root / "airsage-artifacts" / "abalone" / "reports"
    latest = json.loads((reports / "ds=2026-11-01" / "latest.json").read_text())
    assert latest["kind"] == "report" and Path(latest["location"]).name == "report.html"
    assert f"report for 2026-11-01 (run {latest['run_id']}): {latest['location']}" in passed.stdout
    assert_told_briefly(passed.stdout + passed.stderr, {
        "stage_input": "success", "upsert_pipeline": "success", "run_local": "success", "read_metrics": "success",
        "gate": "success", "publish_report": "success", "alert_on_call": "skipped"})
    alerted = run_audited([sys.executable, "-m", "launchers.demo", "--date", "2026-11-02", "--mse-threshold", "0.001"],
                          env, timeout=900)
    keep_logs("demo-alert", alerted, audit)
    latest = json.loads((reports / "ds=2026-11-02" / "latest.json").read_text())
    assert latest["kind"] == "alert" and Path(latest["location"]).is_file(), alerted.stdout[-3000:]
    assert alerted.returncode == 1
    assert_told_briefly(alerted.stdout + alerted.stderr, {"gate": "success", "alert_on_call": "failed",
                                                          "publish_report": "skipped"})
    assert "              quality gate: mse " in alerted.stdout and "> threshold 0.001" in alerted.stdout
    assert f"on-call alert: {latest['location']}" in alerted.stdout
    assert attempts(audit) == []
    scripts = {Path(arg).name for p in audited_processes(audit) for arg in p["argv"]}
    assert {"preprocess.py", "evaluate.py"} <= scripts  # the job processes of both runs were audited


@pytest.mark.slow
def test_make_demo_on_the_sagemaker_backend_talks_to_its_own_loopback_service_only(tmp_path):
    """``make demo BACKEND=sagemaker``: the SageMaker DAG against the emulated service the demo starts itself."""
    audit = tmp_path / "audit"
    root = tmp_path / "objects"
    env = clean_env(tmp_path / "home", audit, AIRFLOW_HOME=str(tmp_path / "airflow"), AIRSAGE_ROOT=str(root))
    done = run_audited([sys.executable, "-m", "launchers.demo", "--backend", "sagemaker", "--date", "2026-11-01"], env,
                       timeout=900)
    keep_logs("demo-sagemaker", done, audit)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    served = tmp_path / "objects-sagemaker"  # the service's object root, beside the local one
    latest = json.loads((served / "airsage-artifacts" / "abalone" / "reports" / "ds=2026-11-01" / "latest.json")
                        .read_text())
    report = served / latest["uri"].removeprefix("s3://")
    assert latest["kind"] == "report" and report.is_file()
    assert f"report for 2026-11-01 (run {latest['run_id']}): {report}" in done.stdout
    assert "emulated SageMaker service at http://127.0.0.1:" in done.stdout
    assert "emulated SageMaker service stopped (exit 0)" in done.stdout
    assert_told_briefly(done.stdout + done.stderr, {"start_execution": "success", "wait_for_execution": "success",
                                                    "publish_report": "success", "alert_on_call": "skipped"})
    assert not (root / "airsage-artifacts").exists()  # nothing went to the local backend's root
    assert attempts(audit) == []
    argv = [p["argv"] for p in audited_processes(audit)]
    assert any("serve" in a and str(served) in a for a in argv)  # the service and the jobs it ran were audited
    assert {"preprocess.py", "evaluate.py", "builtin_xgboost.py"} <= {Path(arg).name for a in argv for arg in a}
