"""``make demo`` / ``make ui``: the local DAG on a project-local Airflow, no Docker, no AWS.

``python -m dags.demo [--date YYYY-MM-DD] [--mse-threshold X]`` runs
``airflow dags test abalone_pipeline_local <date>`` against ``.airflow/`` (SQLite) and prints
where the report (or the on-call alert) is. ``python -m dags.demo --ui`` starts
``airflow standalone`` on http://localhost:8080 with the same settings; Ctrl-C stops it.

Airflow is only ever run as a subprocess here: its settings are read at import time, so the
environment must be complete before anything imports it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DAG_ID = "abalone_pipeline_local"


def airflow_env(home: Path, root: Path) -> dict[str, str]:
    """The environment for every airflow command of the demo."""
    env = dict(os.environ)
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW_VAR_AIRSAGE_LOCAL_ROOT": str(root),
        "AIRSAGE_ROOT": str(root),
        "AIRSAGE_TELEMETRY": env.get("AIRSAGE_TELEMETRY", "off"),
        "MPLBACKEND": "Agg",
        # `airflow standalone` starts its components as `airflow ...` from PATH
        "PATH": os.pathsep.join(filter(None, [str(Path(sys.executable).parent), env.get("PATH")])),
        # tasks import sm_pipeline (repo root) and airsage (plugins/) in the task process
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), str(REPO / "plugins"), env.get("PYTHONPATH")])),
    })
    return env


def airflow(*args: str) -> list[str]:
    """An airflow CLI command line using this interpreter's Airflow."""
    return [sys.executable, "-m", "airflow", *args]


def ensure_db(home: Path, env: dict[str, str]) -> None:
    """``airflow db migrate`` unless this Airflow version already migrated this home's DB."""
    import importlib.metadata

    stamp = home / f".migrated-{importlib.metadata.version('apache-airflow')}"
    if stamp.exists() and (home / "airflow.db").exists():
        return
    home.mkdir(parents=True, exist_ok=True)
    print(f"airsage demo: preparing the Airflow metadata DB in {home} ...", flush=True)
    subprocess.run(airflow("db", "migrate"), env=env, check=True, stdout=subprocess.DEVNULL)  # noqa: S603 - fixed argv
    stamp.touch()


def outcome(root: Path, ds: str, env: dict[str, str]) -> tuple[str, Path | None]:
    """("report" | "alert" | "none", path) for the date, from the object root."""
    bucket = env.get("AIRFLOW_VAR_AIRSAGE_BUCKET", "airsage-artifacts")
    prefix = env.get("AIRFLOW_VAR_AIRSAGE_PREFIX", "abalone")
    reports = root / bucket / prefix / "reports" / f"ds={ds}"
    if (reports / "ALERT.json").exists() and not (reports / "report.html").exists():
        return "alert", reports / "ALERT.json"
    if (reports / "report.html").exists():
        return "report", reports / "report.html"
    return "none", None


def run_demo(ds: str, threshold: float | None, home: Path, root: Path) -> int:
    """Run the local DAG for ``ds`` and print where its report or alert is."""
    env = airflow_env(home, root)
    ensure_db(home, env)
    command = airflow("dags", "test", DAG_ID, ds)
    if threshold is not None:
        command += ["--conf", json.dumps({"mse_threshold": threshold})]
    print(f"airsage demo: running {DAG_ID} for {ds} (objects under {root}) ...", flush=True)
    done = subprocess.run(command, env=env, check=False)  # noqa: S603 - our argv; date validated, conf is JSON
    kind, path = outcome(root, ds, env)
    print()
    if done.returncode != 0:
        print(f"airsage demo: the DAG run failed (exit {done.returncode}); see the task logs above.")
        return done.returncode
    if kind == "report":
        print(f"airsage demo: report for {ds}: {path}")
        print(f"              open it with: xdg-open {path}")
    elif kind == "alert":
        alert = json.loads(path.read_text())
        print(f"airsage demo: MSE {alert['value']:.3f} is above the threshold {alert['threshold']}: no report.")
        print(f"              on-call alert: {path}")
    else:
        print(f"airsage demo: the run finished but wrote no report or alert for {ds} under {root}")
        return 1
    return 0


def run_ui(home: Path, root: Path) -> int:
    """``airflow standalone`` until Ctrl-C, which it handles cleanly (SIGINT only)."""
    env = airflow_env(home, root)
    ensure_db(home, env)
    print("airsage demo: starting Airflow on http://localhost:8080 (Ctrl-C stops it)", flush=True)
    print(f"              the admin password is written to {home / 'simple_auth_manager_passwords.json.generated'}",
          flush=True)
    process = subprocess.Popen(airflow("standalone"), env=env, start_new_session=True)  # noqa: S603 - fixed argv
    try:
        return process.wait()
    except KeyboardInterrupt:
        # the terminal's Ctrl-C went to our group only; forward exactly SIGINT to standalone's
        os.killpg(process.pid, signal.SIGINT)
        try:
            return process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGTERM)
            return process.wait()


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m dags.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--ui", action="store_true", help="start the Airflow UI (airflow standalone) instead")
    parser.add_argument("--date", default=(datetime.now(UTC).date() - timedelta(days=1)).isoformat(),
                        help="logical date to run (default: yesterday, UTC)")
    parser.add_argument("--mse-threshold", type=float, default=None,
                        help="the gate's MSE threshold (default: the DAG param's 6.0)")
    args = parser.parse_args(argv)
    home = Path(os.environ.get("AIRFLOW_HOME") or REPO / ".airflow").resolve()
    root = Path(os.environ.get("AIRSAGE_ROOT") or REPO / ".airsage").resolve()
    if args.ui:
        return run_ui(home, root)
    try:
        ds = date.fromisoformat(args.date).isoformat()
    except ValueError:
        parser.error(f"--date must be YYYY-MM-DD, got {args.date!r}")
    return run_demo(ds, args.mse_threshold, home, root)


if __name__ == "__main__":
    sys.exit(main())
