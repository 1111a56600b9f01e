"""The project-local Airflow that ``make demo``, ``make ui`` and ``make airflow`` share: one environment.

Airflow reads its settings when it is imported, so no launcher imports it in the process that builds
this environment: Airflow runs in child processes started with it. :func:`airflow_env` is the one
place that environment is built; other launchers (the benchmarks) may adjust the returned dict.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from launchers import LOOPBACK, REPO, SQLITE_LOCK_WAIT_SECONDS, LauncherError
from launchers.supervisor import log_tail

DEFAULT_PORT = 8080
ADMIN_USER = "admin"  # the simple auth manager's default user ("admin:admin" = user admin, role admin)
PASSWORD_FILE_NAME = "simple_auth_manager_passwords.json.generated"  # noqa: S105 - a file name
#: the DAG of each backend
DAG_IDS = {"local": "abalone_pipeline_local", "sagemaker": "abalone_pipeline"}


def default_home() -> Path:
    """AIRFLOW_HOME of the project-local Airflow: ``$AIRFLOW_HOME``, else ``.airflow/`` in the repository."""
    return Path(os.environ.get("AIRFLOW_HOME") or REPO / ".airflow").resolve()


def default_root() -> Path:
    """The local backend's object root: ``$AIRSAGE_ROOT``, else ``.airsage/`` in the repository."""
    return Path(os.environ.get("AIRSAGE_ROOT") or REPO / ".airsage").resolve()


def available_cpus() -> int:
    """CPUs this process may run on (the affinity mask, which honours cgroup cpusets)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def executor_parallelism(cpus: int | None = None) -> int:
    """LocalExecutor workers for this machine: one per CPU, at least two.

    Airflow's default (32) forks 32 idle workers up front; each running task is one worker, and
    a task here is a pipeline run that keeps a CPU busy, so more workers than CPUs only queue
    work in a different place. Two, so that two dates of a backfill can run side by side.
    """
    return max(2, cpus if cpus is not None else available_cpus())


def password_file(home: Path) -> Path:
    """Where the simple auth manager keeps the generated password of ``ADMIN_USER``."""
    return home / PASSWORD_FILE_NAME


def ui_url(port: int) -> str:
    """The UI's (and the API server's) base URL for ``port`` on the loopback interface."""
    return f"http://{LOOPBACK}:{port}/"


def airflow_env(home: Path, root: Path, *, port: int = DEFAULT_PORT, log_port: int | None = None,
                base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of every Airflow process of the project-local Airflow (demo, UI, CLI).

    ``home`` is AIRFLOW_HOME (SQLite DB, airflow.cfg with its generated secrets, logs, the
    password file); ``root`` is the local object root of ``abalone_pipeline_local``; ``port``
    the API server's port on 127.0.0.1 (tasks reach the execution API there); ``log_port`` the
    port of ``make ui``'s log server (task and trigger logs of running tasks), which only the UI's
    components use. ``base`` is the environment to start from (default ``os.environ``).

    Sizing settings (executor parallelism, DAG parsing processes) are defaults: a value already
    in ``base`` wins. Everything else is forced (an ``AIRFLOW__...`` value in ``base`` for the
    same key is overridden), so the UI, its tasks and ``make airflow`` always share one DB,
    one DAG folder and one execution API. Callers that need another shape (Postgres,
    CeleryExecutor) change the returned dict.
    """
    env = dict(os.environ if base is None else base)
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # SQLite allows one writer at a time: a writer waits for the lock (SQLITE_LOCK_WAIT_SECONDS)
        # before "database is locked"; launchers.ui.exec_airflow adds make ui's transaction rules
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}?timeout={SQLITE_LOCK_WAIT_SECONDS}",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__AUTH_MANAGER":
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(password_file(home)),
        # loopback only: the simple auth manager is a development login
        "AIRFLOW__API__HOST": LOOPBACK,
        "AIRFLOW__API__PORT": str(port),
        # log links, notification links and the execution API URL tasks call all derive from this
        "AIRFLOW__API__BASE_URL": ui_url(port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{ui_url(port)}execution/",
        "AIRFLOW_VAR_AIRSAGE_LOCAL_ROOT": str(root),
        "AIRSAGE_ROOT": str(root),
        "AIRSAGE_TELEMETRY": env.get("AIRSAGE_TELEMETRY", "off"),
        # Airflow starts helpers as `airflow ...` from PATH: this interpreter's Airflow
        "PATH": os.pathsep.join(filter(None, [str(Path(sys.executable).parent), env.get("PATH")])),
        # tasks import sm_pipeline (repo root) and airsage (plugins/) in the task process
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), str(REPO / "plugins"), env.get("PYTHONPATH")])),
    })
    if log_port is not None:
        # one loopback log server for worker and trigger logs (both live under AIRFLOW_HOME/logs)
        env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(log_port)
        env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"] = str(log_port)
    env.setdefault("AIRFLOW__CORE__PARALLELISM", str(executor_parallelism()))
    # three DAG files: one parsing process keeps a core free for the tasks
    env.setdefault("AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES", "1")
    env.setdefault("AIRFLOW__API__WORKERS", "1")
    # a finished task's slot is freed within 1 s, not up to 5 s; AIRFLOW_MIN_HEARTBEAT_INTERVAL
    # overrides it, as it does in docker-compose.yaml and `make stack`
    env.setdefault("AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL", env.get("AIRFLOW_MIN_HEARTBEAT_INTERVAL") or "1")
    return env


def airflow(*args: str) -> list[str]:
    """An airflow CLI command line using this interpreter's Airflow."""
    return [sys.executable, "-m", "airflow", *args]


def migrate(env: Mapping[str, str], log: Path, timeout: float | None = None) -> None:
    """``airflow db migrate`` with ``env``, its output in ``log``; LauncherError with the log's tail if it fails.

    The first airflow command in a home also writes its airflow.cfg with generated secrets
    (JWT, API secret key) that all components then share.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        done = subprocess.run(airflow("db", "migrate"), env=dict(env), stdout=out, stderr=subprocess.STDOUT,  # noqa: S603 - fixed argv
                              stdin=subprocess.DEVNULL, timeout=timeout, check=False)
    if done.returncode != 0:
        raise LauncherError(f"`airflow db migrate` failed (exit {done.returncode}); last lines of {log}:\n"
                            + "\n".join(log_tail(log)))


def ensure_db(home: Path, env: Mapping[str, str]) -> None:
    """:func:`migrate` unless this Airflow version already migrated this home's DB."""
    import importlib.metadata

    stamp = home / f".migrated-{importlib.metadata.version('apache-airflow')}"
    if stamp.exists() and (home / "airflow.db").exists():
        return
    home.mkdir(parents=True, exist_ok=True)
    print(f"airsage: preparing the Airflow metadata DB in {home} ...", file=sys.stderr, flush=True)
    migrate(env, home / "logs" / "db-migrate.log")
    stamp.touch()
