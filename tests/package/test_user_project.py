"""airsage as another team gets it: the wheel in a fresh venv, a project of its own outside the repository.

One test, in the order a team meets airsage: build the wheel (``make wheel``, what ``pip install .`` builds),
install it with its ``testing`` extra into a new venv (versions from the lock, as the README says), check
that Airflow lists the provider and its plugin and that the ``sm-pipeline`` command answers, then copy
``user_project/`` (a churn classifier of its own, DAGs from the factory, tests on the kit) to a temporary
folder and run its pytest there: in a clean environment with no AWS variable, under the network audit
hook, so "offline, no AWS account" is measured, not assumed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PROJECT = Path(__file__).resolve().parent / "user_project"
AUDIT_HOOK_DIR = REPO / "tests" / "network_audit"
ARTIFACTS = REPO / "build" / "test-artifacts" / "package"
UV = Path(sys.executable).with_name("uv")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def run(argv: list, cwd: Path, env: dict | None = None, timeout: float = 900, name: str = "") -> str:
    """Run a command; fail naming it (output kept under build/test-artifacts/package/) unless it succeeds."""
    done = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    if name:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / f"{name}.log").write_text(f"$ {' '.join(map(str, argv))}\nexit {done.returncode}\n"
                                               f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}")
    assert done.returncode == 0, f"{' '.join(map(str, argv))} exited {done.returncode}:\n{done.stdout[-3000:]}\n" \
                                 f"{done.stderr[-3000:]}"
    return done.stdout


def clean_env(home: Path, audit_dir: Path, venv: Path) -> dict[str, str]:
    """A team's shell: its venv first on PATH, no AWS configuration, a fresh HOME, the network audit hook."""
    home.mkdir(parents=True, exist_ok=True)
    audit_dir.mkdir(parents=True, exist_ok=True)
    return {"PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
            "PYTHONPATH": str(AUDIT_HOOK_DIR), "AIRSAGE_NETWORK_AUDIT_DIR": str(audit_dir)}


def test_a_team_installs_the_wheel_and_its_own_dag_tests_pass_offline(tmp_path):
    assert UV.exists(), f"uv is in the lock; expected it beside {sys.executable}"
    dist, venv = tmp_path / "dist", tmp_path / "venv"
    run(["make", "wheel", f"DIST={dist}"], cwd=REPO, name="build")  # the README's way: the wheel and the lock's pins
    (wheel,) = dist.glob("airsage-*.whl")
    constraints = dist / "constraints.txt"
    run([UV, "venv", "--quiet", "--python", sys.executable, venv], cwd=tmp_path)
    run([UV, "pip", "install", "--quiet", "--python", venv / "bin" / "python", f"{wheel}[testing]",
         "-c", constraints], cwd=tmp_path, name="install")

    project = tmp_path / "churn-project"  # outside the repository, as a team's own checkout is
    shutil.copytree(PROJECT, project)
    env = clean_env(tmp_path / "home", tmp_path / "audit", venv)
    env.update({"AIRFLOW_HOME": str(tmp_path / "airflow-cli"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_FOLDER": str(project / "dags")})

    providers = run([venv / "bin" / "airflow", "providers", "list", "--output", "json"], cwd=project, env=env,
                    name="providers")
    assert "airsage" in {p["package_name"] for p in json.loads(providers)}
    hooks = run([venv / "bin" / "airflow", "providers", "hooks", "--output", "json"], cwd=project, env=env)
    assert {"connection_type": "airsage", "package_name": "airsage"}.items() <= next(
        h for h in json.loads(hooks) if h["connection_type"] == "airsage").items()
    plugins = run([venv / "bin" / "airflow", "plugins", "--output", "json"], cwd=project, env=env)
    assert "airsage" in {p["name"] for p in json.loads(plugins)}
    assert "run-local" in run([venv / "bin" / "sm-pipeline", "--help"], cwd=project, env=env)

    outcome = run([venv / "bin" / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=project, env=env,
                  timeout=1200, name="user-pytest")
    assert "3 passed" in outcome, outcome
    audit = tmp_path / "audit" / "attempts.jsonl"
    assert not audit.exists() or audit.read_text() == "", f"non-loopback connection attempts: {audit.read_text()}"
    audited = (tmp_path / "audit" / "processes.jsonl").read_text()
    assert "score.py" in audited  # the pipeline's own job processes (grandchildren of pytest) were audited too
    assert os.path.commonpath([project, REPO]) != str(REPO)
