"""``make demo`` / ``make ui`` / ``make airflow``: the local DAG on a project-local Airflow, no Docker, no AWS.

``python -m dags.demo [--date YYYY-MM-DD] [--mse-threshold X]`` runs
``airflow dags test abalone_pipeline_local <date>`` against ``.airflow/`` (SQLite) and prints
where the run's report (or on-call alert) is. ``--backend sagemaker`` (``make demo
BACKEND=sagemaker``) runs the SageMaker DAG ``abalone_pipeline`` instead, against the emulated
SageMaker service (``python -m sm_pipeline serve``) that the demo starts on a free loopback port
over ``<object root>-sagemaker`` and stops at the end.

``python -m dags.demo --ui [--port N]`` runs Airflow's components (API server, scheduler,
DAG processor, triggerer; LocalExecutor sized to the machine) on http://127.0.0.1:N/ with the
same settings, and stops every process it started when it gets Ctrl-C, SIGTERM or SIGHUP.

``python -m dags.demo --airflow ARGS...`` runs one Airflow CLI command with exactly that
environment (``make airflow ARGS="dags list-runs abalone_pipeline_local"``).

Airflow reads its settings at import time, so this module never imports it in the process that
builds the environment: Airflow runs in child processes started with that environment (the CLI
child of ``make airflow`` imports it itself, see :func:`_exec_airflow_cli`). :func:`airflow_env`
is the one place that environment is built; other launchers (``make stack``) may import it and
adjust the dict.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DAG_ID = "abalone_pipeline_local"
DAG_IDS = {"local": DAG_ID, "sagemaker": "abalone_pipeline"}
# the emulated service's fake credentials (it checks none); only ever sent to 127.0.0.1
EMULATED_KEY_ID, EMULATED_SECRET = "AKIAAIRSAGEDEMOKEY00", "airsage-demo-emulated"  # noqa: S105
SERVICE_START_SECONDS = 120
DEFAULT_PORT = 8080
LOOPBACK = "127.0.0.1"
ADMIN_USER = "admin"  # the simple auth manager's default user ("admin:admin" = user admin, role admin)
PASSWORD_FILE_NAME = "simple_auth_manager_passwords.json.generated"  # noqa: S105 - a file name
# Ctrl-C to "no process left" must stay under 10 s: SIGTERM, this long to exit cleanly, then SIGKILL.
STOP_GRACE_SECONDS = 5.0
KILL_WAIT_SECONDS = 3.0

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


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
        # SQLite allows one writer at a time: a writer waits up to 30 s for the lock (the driver's
        # default is 5 s) before "database is locked"; see also _exec_airflow_cli
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}?timeout=30",
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
        "MPLBACKEND": "Agg",
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


def ensure_db(home: Path, env: dict[str, str]) -> None:
    """``airflow db migrate`` unless this Airflow version already migrated this home's DB.

    The first airflow command in a home also writes its airflow.cfg with generated secrets
    (JWT, API secret key) that all components then share.
    """
    import importlib.metadata

    stamp = home / f".migrated-{importlib.metadata.version('apache-airflow')}"
    if stamp.exists() and (home / "airflow.db").exists():
        return
    home.mkdir(parents=True, exist_ok=True)
    print(f"airsage: preparing the Airflow metadata DB in {home} ...", file=sys.stderr, flush=True)
    done = subprocess.run(airflow("db", "migrate"), env=env, check=False, stdout=subprocess.DEVNULL)  # noqa: S603 - fixed argv
    if done.returncode != 0:
        raise SystemExit(f"airsage: `airflow db migrate` failed in {home} (exit {done.returncode}); "
                         "see its output above")
    stamp.touch()


def outcome(root: Path, ds: str, env: Mapping[str, str]) -> tuple[str, Path | None, dict]:
    """(kind, local path, latest.json) of the newest run for ``ds``; kind "report" | "alert" | "none".

    ``reports/ds=<ds>/latest.json`` (written by the run's last task) names the run and where
    its report.html or ALERT.json is; ``uri`` is mapped into the object root.
    """
    bucket = env.get("AIRFLOW_VAR_AIRSAGE_BUCKET", "airsage-artifacts")
    prefix = env.get("AIRFLOW_VAR_AIRSAGE_PREFIX", "abalone")
    latest_file = root / bucket / prefix / "reports" / f"ds={ds}" / "latest.json"
    try:
        latest = json.loads(latest_file.read_text())
    except (OSError, ValueError):
        return "none", None, {}
    if not isinstance(latest, dict) or latest.get("kind") not in ("report", "alert"):
        return "none", None, {}
    path = _local_path(root, str(latest.get("uri", "")))
    if path is not None and path.is_dir():
        path = path / ("report.html" if latest["kind"] == "report" else "ALERT.json")
    return latest["kind"], path, latest


def _local_path(root: Path, uri: str) -> Path | None:
    """``s3://bucket/key`` → ``root/bucket/key`` (the local backend's mapping); a plain path as is."""
    if uri.startswith("s3://"):
        return root / uri.removeprefix("s3://")
    if uri.startswith("file://"):
        return Path(uri.removeprefix("file://"))
    return Path(uri) if uri else None


def service_root(root: Path) -> Path:
    """The emulated SageMaker service's root (objects and state) for the object root ``root``."""
    return root.with_name(f"{root.name}-sagemaker")


@dataclass
class EmulatedSageMaker:
    """A ``python -m sm_pipeline serve`` process on a free loopback port, and its URL."""

    process: subprocess.Popen
    url: str
    log: Path

    @classmethod
    def start(cls, root: Path, log: Path, env: Mapping[str, str]) -> EmulatedSageMaker:
        """Start it over ``root``; returns once it printed its URL (SystemExit with its log's tail if not)."""
        import select

        root.mkdir(parents=True, exist_ok=True)
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as err:
            process = subprocess.Popen(  # noqa: S603 - fixed argv
                [sys.executable, "-m", "sm_pipeline", "serve", "--host", LOOPBACK, "--port", "0", "--root", str(root)],
                cwd=REPO, env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=err, text=True)
        ready, _, _ = select.select([process.stdout], [], [], SERVICE_START_SECONDS)
        line = process.stdout.readline().strip() if ready else ""
        if not line.startswith("http://"):
            process.kill()
            process.wait()
            tail = "\n".join(_tail(log, 10))
            raise SystemExit(f"airsage demo: the emulated SageMaker service did not start (log {log}):\n{tail}")
        return cls(process, line, log)

    def stop(self) -> int:
        """SIGTERM (running executions end Stopped), then wait; its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()
        finally:
            self.process.stdout.close()


def sagemaker_demo_env(env: Mapping[str, str], url: str) -> dict[str, str]:
    """``env`` with ``aws_default`` and every AWS client pointed at the emulated service at ``url``."""
    env = dict(env)
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        env.pop(name, None)
    env.update({
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({
            "conn_type": "aws", "login": EMULATED_KEY_ID, "password": EMULATED_SECRET,
            "extra": {"endpoint_url": url, "region_name": "us-east-1"}}),
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": EMULATED_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": EMULATED_SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "SAGEMAKER_VALIDATE_ROLE": "false",
        # the service finishes an execution in seconds: do not wait a minute between polls
        "AIRSAGE_POLL_INTERVAL": env.get("AIRSAGE_POLL_INTERVAL", "1"),
    })
    return env


def run_demo(ds: str, threshold: float | None, home: Path, root: Path, backend: str = "local") -> int:
    """Run the DAG of ``backend`` for ``ds`` and print where its report or alert is."""
    env = airflow_env(home, root)
    ensure_db(home, env)
    dag_id = DAG_IDS[backend]
    command = airflow("dags", "test", dag_id, ds)
    if threshold is not None:
        command += ["--conf", json.dumps({"mse_threshold": threshold})]
    service = None
    if backend == "sagemaker":
        objects = service_root(root)
        # the service's environment is the demo's: offline settings, no real AWS credentials
        service = EmulatedSageMaker.start(objects, home / "logs" / "emulated-sagemaker.log",
                                          sagemaker_demo_env(env, "http://127.0.0.1:9"))
        env = sagemaker_demo_env(env, service.url)
        bucket = env.get("AIRFLOW_VAR_AIRSAGE_BUCKET", "airsage-artifacts")
        (objects / bucket).mkdir(parents=True, exist_ok=True)  # a directory of the root is a bucket
        print(f"airsage demo: emulated SageMaker service at {service.url} (objects under {objects}, "
              f"log {service.log})", flush=True)
        root = objects
    print(f"airsage demo: running {dag_id} for {ds} (objects under {root}) ...", flush=True)
    try:
        done = subprocess.run(command, env=env, check=False)  # noqa: S603 - our argv; date validated, conf is JSON
    finally:
        if service is not None:
            code = service.stop()
            print(f"airsage demo: emulated SageMaker service stopped (exit {code})", flush=True)
    kind, path, latest = outcome(root, ds, env)
    print()
    if kind == "report" and done.returncode == 0:
        print(f"airsage demo: report for {ds} (run {latest.get('run_id')}): {path}")
        print(f"              open it with: xdg-open {path}")
        return 0
    if kind == "alert":
        print(f"airsage demo: the quality gate failed for {ds} (run {latest.get('run_id')}): no report.")
        print(f"              on-call alert: {path}")
        return 1
    if done.returncode != 0:
        print(f"airsage demo: the DAG run failed (exit {done.returncode}); see the task logs above.")
        return done.returncode
    print(f"airsage demo: the run finished but wrote no report or alert for {ds} under {root}")
    return 1


def run_airflow_cli(args: list[str], home: Path, root: Path, port: int = DEFAULT_PORT) -> int:
    """``airflow ARGS...`` with the UI's environment (``make airflow ARGS="..."``); its exit code.

    The command runs through :func:`_exec_airflow_cli`, which makes its SQLite writes wait for
    ``make ui``'s scheduler instead of failing (see there).
    """
    env = airflow_env(home, root, port=port)
    ensure_db(home, env)
    command = [sys.executable, "-m", "dags.demo", _EXEC_AIRFLOW, *args]
    with contextlib.suppress(KeyboardInterrupt):
        return subprocess.run(command, env=env, check=False).returncode  # noqa: S603 - the user's own CLI args
    return 130


_EXEC_AIRFLOW = "--exec-airflow-cli"


def _exec_airflow_cli(args: list[str]) -> int:
    """In the child process of :func:`run_airflow_cli` (environment already complete): Airflow's
    CLI with every SQLite transaction of this process started as ``BEGIN IMMEDIATE``.

    Airflow's SQLite sessions begin deferred, and some (``backfill create``) open a SAVEPOINT, read,
    then write. When the scheduler of a running ``make ui`` commits in between, SQLite refuses the
    write at once ("database is locked"; waiting cannot help a stale snapshot). Taking the write
    lock at the start makes this process queue behind the scheduler (up to the URL's 30 s timeout)
    instead. Only the CLI does this: the UI's components keep Airflow's default, so their reads
    never wait for one another. This is SQLAlchemy's documented recipe for pysqlite transactions.
    """
    import sqlite3

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "connect")
    def _driver_does_not_begin(dbapi_connection, _record):
        if isinstance(dbapi_connection, sqlite3.Connection):
            dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" below decides

    @event.listens_for(Engine, "begin")
    def _begin_immediate(connection):
        if connection.dialect.name == "sqlite" and connection.dialect.driver == "pysqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    from airflow.__main__ import main as airflow_main

    sys.argv = ["airflow", *args]
    airflow_main()
    return 0


# --------------------------------------------------------------------------------------- make ui

# No `airflow standalone`: it starts the same four components but stops them with a bare
# terminate() and no deadline, and a component does not always stop its own children (executor
# workers, log servers, task processes) before it exits. Scheduler and triggerer would each start a
# log server on all interfaces at fixed ports (8793/8794); one loopback log server on a free port
# serves both instead.
def _components(port: int, log_port: int, api_workers: str = "1") -> list[tuple[str, list[str]]]:
    """(name, argv) of every process ``make ui`` starts."""
    return [
        ("api-server", airflow("api-server", "--host", LOOPBACK, "--port", str(port), "--workers", api_workers)),
        ("scheduler", airflow("scheduler", "--skip-serve-logs")),
        ("dag-processor", airflow("dag-processor")),
        ("triggerer", airflow("triggerer", "--skip-serve-logs")),
        ("log-server", [sys.executable, "-m", "uvicorn", "airflow.utils.serve_logs.log_server:get_app",
                        "--factory", "--host", LOOPBACK, "--port", str(log_port), "--no-access-log"]),
    ]


def _libc():
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def _become_subreaper() -> bool:
    """Linux: orphaned descendants are re-parented to this process instead of init.

    Task processes and the local runner's jobs start sessions/process groups of their own, and
    their parents may exit first; as a subreaper, every one of them stays in this process's
    tree, where the stop finds it.
    """
    libc = _libc()
    return bool(sys.platform.startswith("linux") and libc is not None
                and libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    """preexec_fn: SIGTERM this component if the supervisor dies without stopping it (Linux)."""
    libc = _libc()
    if sys.platform.startswith("linux") and libc is not None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


@dataclass
class ProcessTracker:
    """Every process below this one, seen while it was alive, so that none outlives the stop.

    ``psutil.Process`` objects remember their creation time: a pid reused by an unrelated
    process after ours exited is never signalled.
    """

    sessions: set[int] = field(default_factory=set)
    seen: dict[int, object] = field(default_factory=dict)

    def __post_init__(self):
        import psutil

        self._psutil = psutil
        self._me = psutil.Process()
        self._started = self._me.create_time()

    def refresh(self, sessions: bool = False) -> None:
        """Remember every current descendant (and, with ``sessions``, every member of our sessions)."""
        try:
            children = self._me.children(recursive=True)
        except self._psutil.Error:
            children = []
        for proc in children:
            self.seen.setdefault(proc.pid, proc)
        for proc in self._session_members() if sessions else ():
            self.seen.setdefault(proc.pid, proc)

    def _session_members(self):
        """Processes in the sessions our components lead (only their descendants can be in them)."""
        if not self.sessions:
            return []
        members = []
        for proc in self._psutil.process_iter():
            try:
                if os.getsid(proc.pid) in self.sessions and proc.create_time() >= self._started:
                    members.append(proc)
            except (OSError, self._psutil.Error):
                continue
        return members

    def alive(self) -> list:
        """Tracked processes still running (zombies count as gone)."""
        result = []
        for proc in self.seen.values():
            try:
                if proc.is_running() and proc.status() != self._psutil.STATUS_ZOMBIE:
                    result.append(proc)
            except self._psutil.Error:
                continue
        return result

    def reap(self, own: set[int]) -> None:
        """``waitpid`` zombies re-parented to us (not our Popen children: Popen reaps those)."""
        for proc in list(self.seen.values()):
            if proc.pid in own:
                continue
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(proc.pid, os.WNOHANG)

    def signal_all(self, sig: int) -> None:
        """Send ``sig`` to every tracked process that is still running."""
        for proc in self.alive():
            with contextlib.suppress(self._psutil.Error):
                proc.send_signal(sig)


@dataclass
class Component:
    """One Airflow component process of ``make ui`` and its log file."""

    name: str
    process: subprocess.Popen
    log: Path


class AirflowUI:
    """The project-local Airflow behind ``make ui``: start, wait until healthy, stop completely."""

    def __init__(self, home: Path, root: Path, port: int, out=None):
        self.home, self.root, self.port = home, root, port
        self.log_port = free_port()
        self.env = airflow_env(home, root, port=port, log_port=self.log_port)
        self.url = ui_url(port)
        self.log_dir = home / "logs" / "ui"
        self.components: list[Component] = []
        self.tracker: ProcessTracker | None = None
        self.out = out or sys.stdout

    def say(self, line: str = "") -> None:
        """One line of ``make ui``'s own output."""
        print(f"airsage ui: {line}" if line else "", file=self.out, flush=True)

    def start(self, stop: StopRequest | None = None) -> None:
        """Migrate the DB if needed and start the components, each in a session of its own
        (none when ``stop`` was requested meanwhile)."""
        try:
            ensure_db(self.home, self.env)
        except SystemExit:
            if stop is not None and stop.requested:  # Ctrl-C reached `db migrate` too: not a failure
                return
            raise
        if stop is not None and stop.requested:
            return
        _become_subreaper()
        self.tracker = ProcessTracker()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        workers = self.env["AIRFLOW__CORE__PARALLELISM"]
        self.say(f"starting Airflow (API server, scheduler with {workers} LocalExecutor workers, "
                 f"DAG processor, triggerer, log server) in {self.home}; Ctrl-C stops it")
        self.say(f"component logs: {self.log_dir}/<component>.log")
        for name, argv in _components(self.port, self.log_port, self.env["AIRFLOW__API__WORKERS"]):
            log = self.log_dir / f"{name}.log"
            with log.open("ab") as handle:
                handle.write(f"\n===== {datetime.now(UTC).isoformat()} {' '.join(argv[1:])}\n".encode())
                handle.flush()
                # A session of its own: the terminal's Ctrl-C reaches only this supervisor, which
                # then stops every component and everything below it, on a deadline.
                process = subprocess.Popen(  # noqa: S603 - fixed argv
                    argv, env=self.env, stdin=subprocess.DEVNULL, stdout=handle,
                    stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent)
            self.components.append(Component(name, process, log))
            self.tracker.sessions.add(process.pid)
        self.tracker.refresh()

    def health(self) -> dict | None:
        """The API server's /api/v2/monitor/health, or None while it does not answer."""
        try:
            # short timeout: Ctrl-C is only noticed between polls
            with urllib.request.urlopen(f"{self.url}api/v2/monitor/health", timeout=1) as response:  # noqa: S310 - our loopback URL
                return json.load(response)
        except (OSError, ValueError, urllib.error.URLError):
            return None

    def is_ready(self) -> bool:
        """True when the API server answers and scheduler, DAG processor and triggerer heartbeat
        (the banner also waits for the DAG folder to be parsed: see :meth:`parsed_dags`)."""
        health = self.health()
        if not health:
            return False
        return all((health.get(part) or {}).get("status") == "healthy"
                   for part in ("metadatabase", "scheduler", "dag_processor", "triggerer"))

    def _api(self, path: str, token: str | None = None, body: dict | None = None) -> dict:
        request = urllib.request.Request(  # noqa: S310 - our loopback URL
            f"{self.url}{path}", data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json",
                     **({"Authorization": f"Bearer {token}"} if token else {})})
        with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310 - our loopback URL
            return json.load(response)

    def parsed_dags(self) -> tuple[list[str], list[str]] | None:
        """(DAG ids, files with import errors) once the DAG processor has parsed the DAG folder,
        None before (or while the API cannot say). Logs in as ``ADMIN_USER`` for it."""
        try:
            password = json.loads(password_file(self.home).read_text())[ADMIN_USER]
            token = self._api("auth/token", body={"username": ADMIN_USER, "password": password})["access_token"]
            dags = self._api("api/v2/dags?limit=100", token)["dags"]
            errors = self._api("api/v2/importErrors?limit=100", token)["import_errors"]
        except (OSError, ValueError, KeyError, TypeError, urllib.error.URLError):
            return None
        if not dags and not errors:
            return None
        return sorted(d["dag_id"] for d in dags), sorted({e.get("filename", "?") for e in errors})

    def exited(self) -> Component | None:
        """A component that is no longer running, if any."""
        return next((c for c in self.components if c.process.poll() is not None), None)

    def print_ready(self, dags: list[str], errors: list[str]) -> None:
        """The banner: URL, login, password file, how to stop (and DAGs that failed to import)."""
        self.say()
        for filename in errors:
            self.say(f"DAG import error in {filename}: see Dags > Import Errors in the UI")
        self.say(f"DAGs: {', '.join(dags) or 'none'}")
        self.say(f"Airflow is ready at {self.url}")
        self.say(f"  login:    user '{ADMIN_USER}', password in {password_file(self.home)}")
        self.say("  stop:     Ctrl-C here (stops every process make ui started)")
        self.say("  CLI:      make airflow ARGS=\"...\" (same environment"
                 + (")" if self.port == DEFAULT_PORT else f"; add PORT={self.port})"))
        self.say()

    def watch(self, stop: StopRequest, poll: float = 0.5) -> int:
        """Run until ``stop`` is requested (0) or a component exits on its own (1)."""
        ready = False
        while not stop.requested:
            time.sleep(poll)  # a signal ends the sleep early only by its handler's flag: fine, 0.5 s
            if stop.requested:
                break
            self.tracker.refresh()
            self.tracker.reap({c.process.pid for c in self.components})
            dead = self.exited()
            if dead is not None:
                self.say(f"the {dead.name} exited (code {dead.process.returncode}); stopping the others.")
                self.say(f"its log ({dead.log}) ends with:")
                for line in _tail(dead.log, 15):
                    print(f"    {line}", file=self.out)
                return 1
            if not ready and self.is_ready():
                parsed = self.parsed_dags()
                if parsed is not None:
                    ready = True
                    self.print_ready(*parsed)
        return 0

    def stop(self, grace: float = STOP_GRACE_SECONDS, kill_wait: float = KILL_WAIT_SECONDS) -> list[str]:
        """SIGTERM every process we started and every descendant, SIGKILL what is left after
        ``grace`` seconds; returns the names of those that had to be killed. Afterwards none runs."""
        tracker = self.tracker
        if tracker is None:
            return []
        own = {c.process.pid for c in self.components}
        termed: set[int] = set()
        deadline = time.monotonic() + grace
        while True:
            # catches processes started (or re-parented to us) during shutdown
            tracker.refresh(sessions=True)
            for component in self.components:
                component.process.poll()
            tracker.reap(own)
            alive = tracker.alive()
            if not alive or time.monotonic() > deadline:
                break
            for proc in alive:  # every process once: a second SIGTERM makes some skip their cleanup
                if proc.pid not in termed:
                    termed.add(proc.pid)
                    with contextlib.suppress(Exception):
                        proc.terminate()
            time.sleep(0.1)
        killed: dict[int, str] = {}
        deadline = time.monotonic() + kill_wait
        while True:
            tracker.refresh(sessions=True)
            alive = tracker.alive()
            if not alive or time.monotonic() > deadline:
                break
            for proc in alive:
                killed.setdefault(proc.pid, _describe(proc))
            tracker.signal_all(signal.SIGKILL)
            time.sleep(0.05)
            for component in self.components:
                component.process.poll()
            tracker.reap(own)
        for component in self.components:
            with contextlib.suppress(subprocess.TimeoutExpired):
                component.process.wait(timeout=1)
        tracker.reap(own)
        return list(killed.values())


def _describe(proc) -> str:
    """'name (pid N)' of a psutil process, for the stop report."""
    try:
        return f"{proc.name()} (pid {proc.pid})"
    except Exception:  # noqa: BLE001 - gone meanwhile
        return f"pid {proc.pid}"


class StopRequest:
    """Set by the signal handler, polled by the main loop.

    A plain attribute on purpose: a handler that takes a lock (``threading.Event.set``) deadlocks
    when the signal lands while the main thread holds that same lock inside ``Event.wait``.
    """

    requested = False

    def handler(self, signum, frame) -> None:  # noqa: ARG002 - signal handler signature
        """The handler for SIGINT, SIGTERM and SIGHUP."""
        self.requested = True


def _tail(path: Path, lines: int) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


def _check_port_free(port: int) -> str | None:
    """None if 127.0.0.1:port can be bound, else the reason."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((LOOPBACK, port))
        except OSError as error:
            return error.strerror or str(error)
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def _lock_home(home: Path):
    """An exclusive lock on ``home/.make-ui.lock`` held until this process exits, or None if
    another ``make ui`` holds it (the OS drops the lock of a process that died, however it died)."""
    import fcntl

    handle = (home / ".make-ui.lock").open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


def run_ui(home: Path, root: Path, port: int = DEFAULT_PORT) -> int:
    """Airflow's components until Ctrl-C, SIGTERM or SIGHUP; then stop every process they started."""
    if port == 0:
        port = free_port()
    problem = _check_port_free(port)
    if problem:
        print(f"airsage ui: port {port} on {LOOPBACK} is not available ({problem}); "
              f"choose another: make ui PORT={port + 1}", file=sys.stderr)
        return 2
    home.mkdir(parents=True, exist_ok=True)
    lock = _lock_home(home)
    if lock is None:
        print(f"airsage ui: make ui already runs on {home} (one Airflow per home: its components "
              "share one SQLite DB); stop it first, or set AIRFLOW_HOME to another folder", file=sys.stderr)
        return 2
    stop = StopRequest()
    # Installed explicitly: a shell starting us in the background leaves SIGINT ignored, and
    # Python would then keep ignoring it.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop.handler)
    ui = AirflowUI(home, root, port)
    code = 1
    try:
        ui.start(stop)
        code = ui.watch(stop)
    finally:
        if ui.components:
            ui.say("stopping Airflow ...")
            started = time.monotonic()
            killed = ui.stop()
            # typically interpreters still garbage-collecting after their clean shutdown
            note = (f"; {len(killed)} process(es) still exiting after {STOP_GRACE_SECONDS:g} s were killed: "
                    f"{', '.join(killed)}") if killed else ""
            left = [_describe(proc) for proc in ui.tracker.alive()]
            if left:
                ui.say(f"could not stop: {', '.join(left)}")
                code = 1
            else:
                ui.say(f"stopped in {time.monotonic() - started:.1f} s{note}; no Airflow process left.")
    return code


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m dags.demo", description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--ui", action="store_true",
                      help="run the Airflow UI and its components until Ctrl-C (make ui)")
    mode.add_argument("--airflow", nargs=argparse.REMAINDER, metavar="ARGS",
                      help="run one Airflow CLI command with the UI's environment (make airflow)")
    mode.add_argument(_EXEC_AIRFLOW, nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=_port, default=DEFAULT_PORT,
                        help=f"the UI's port on {LOOPBACK} (default {DEFAULT_PORT}; 0: any free port)")
    parser.add_argument("--date", default=(datetime.now(UTC).date() - timedelta(days=1)).isoformat(),
                        help="logical date to run (default: yesterday, UTC)")
    parser.add_argument("--mse-threshold", type=float, default=None,
                        help="the gate's MSE threshold (default: the DAG param's 6.0)")
    parser.add_argument("--backend", choices=sorted(DAG_IDS), default="local",
                        help="local: abalone_pipeline_local (default); sagemaker: abalone_pipeline against "
                             "the emulated SageMaker service this command starts on loopback")
    args = parser.parse_args(argv)
    home = Path(os.environ.get("AIRFLOW_HOME") or REPO / ".airflow").resolve()
    root = Path(os.environ.get("AIRSAGE_ROOT") or REPO / ".airsage").resolve()
    if args.ui:
        return run_ui(home, root, args.port)
    if args.airflow is not None:
        return run_airflow_cli(args.airflow, home, root, args.port)
    if args.exec_airflow_cli is not None:
        return _exec_airflow_cli(args.exec_airflow_cli)
    try:
        ds = date.fromisoformat(args.date).isoformat()
    except ValueError:
        parser.error(f"--date must be YYYY-MM-DD, got {args.date!r}")
    return run_demo(ds, args.mse_threshold, home, root, args.backend)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port number 0-65535, got {text!r}")
    return value


if __name__ == "__main__":
    sys.exit(main())
