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
import time
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
    """("report" | "alert" | "none", path) for the date: what ``reports/ds=…/latest.json`` points at."""
    bucket = env.get("AIRFLOW_VAR_AIRSAGE_BUCKET", "airsage-artifacts")
    prefix = env.get("AIRFLOW_VAR_AIRSAGE_PREFIX", "abalone")
    try:
        latest = json.loads((root / bucket / prefix / "reports" / f"ds={ds}" / "latest.json").read_text())
    except (OSError, ValueError):
        return "none", None
    path = Path(latest.get("location") or "")  # the local backend's location is a file path
    if latest.get("kind") in ("report", "alert") and path.is_file():
        return latest["kind"], path
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


class _ProcessTree:
    """Every process ever seen below a root pid, so none outlives the stop.

    ``airflow standalone``'s components start workers and log servers of their own, and some
    of those are re-parented to init when their parent exits; a snapshot taken while they are
    alive is the only way to find them afterwards.
    """

    def __init__(self, pid: int):
        import psutil

        self._psutil = psutil
        self.seen: dict[int, psutil.Process] = {}
        self._root = psutil.Process(pid)
        self.refresh()

    def refresh(self) -> None:
        try:
            for proc in [self._root, *self._root.children(recursive=True)]:
                self.seen.setdefault(proc.pid, proc)
        except self._psutil.NoSuchProcess:
            pass

    def stop_survivors(self, grace: float = 10.0) -> int:
        """SIGTERM what is still running, SIGKILL what ignores it; returns how many were left."""
        alive = [p for p in self.seen.values() if p.is_running()]
        for proc in alive:
            try:
                proc.terminate()
            except self._psutil.NoSuchProcess:
                pass
        _, stubborn = self._psutil.wait_procs(alive, timeout=grace)
        for proc in stubborn:
            try:
                proc.kill()
            except self._psutil.NoSuchProcess:
                pass
        return len(alive)


def run_ui(home: Path, root: Path, shutdown_grace: float = 30.0) -> int:
    """``airflow standalone`` until Ctrl-C or SIGTERM; then stop it and everything it started."""
    import threading

    env = airflow_env(home, root)
    ensure_db(home, env)
    print("airsage demo: starting Airflow on http://localhost:8080 (Ctrl-C stops it)", flush=True)
    print(f"              the admin password is written to {home / 'simple_auth_manager_passwords.json.generated'}",
          flush=True)
    stop = threading.Event()
    # Installed explicitly: a shell starting us in the background leaves SIGINT ignored, and
    # Python would then keep ignoring it.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    # A session of its own: the terminal's Ctrl-C reaches only us, and we stop standalone the
    # one way it shuts down cleanly (SIGINT), then make sure nothing it started survives.
    process = subprocess.Popen(airflow("standalone"), env=env, start_new_session=True)  # noqa: S603 - fixed argv
    tree = _ProcessTree(process.pid)
    while process.poll() is None and not stop.is_set():
        tree.refresh()
        stop.wait(1.0)
    if process.poll() is None:
        print("airsage demo: stopping Airflow ...", flush=True)
        tree.refresh()
        os.killpg(process.pid, signal.SIGINT)
        deadline = time.monotonic() + shutdown_grace
        while process.poll() is None and time.monotonic() < deadline:
            tree.refresh()
            time.sleep(0.5)
    left = tree.stop_survivors()
    if left:
        print(f"airsage demo: stopped {left} Airflow process(es) that outlived standalone", flush=True)
    return 0 if stop.is_set() else (process.returncode or 0)


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
