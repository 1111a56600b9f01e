"""``make ui`` / ``make airflow``: the project's DAGs in a project-local Airflow on 127.0.0.1, no Docker.

``python -m launchers.ui [--port N]`` runs Airflow's components (API server, scheduler with a
LocalExecutor sized to the machine, DAG processor, triggerer, one log server) on
http://127.0.0.1:N/ with the environment of :mod:`launchers.airflow_env`, and stops every process
they started when it gets Ctrl-C, SIGTERM or SIGHUP.

``python -m launchers.ui [--port N] --airflow ARGS...`` runs one Airflow CLI command with exactly
that environment (``make airflow ARGS="dags list-runs abalone_pipeline_local"``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path

from launchers import LOOPBACK, LauncherError
from launchers.airflow_api import AirflowApi, components_healthy
from launchers.airflow_env import (
    ADMIN_USER,
    DEFAULT_PORT,
    airflow_env,
    default_home,
    default_root,
    ensure_db,
    password_file,
    ui_url,
)
from launchers.supervisor import Component, StopRequest, Supervisor, free_port, log_tail, port_problem

# Ctrl-C to "no process left" must stay under 10 s: SIGTERM, this long to exit cleanly, then SIGKILL.
STOP_GRACE_SECONDS = 5.0
KILL_WAIT_SECONDS = 3.0
_EXEC_AIRFLOW = "--exec-airflow-cli"
_EXEC_COMPONENT = "--exec-airflow-component"


# No `airflow standalone`: it starts the same four components but stops them with a bare
# terminate() and no deadline, and a component does not always stop its own children (executor
# workers, log servers, task processes) before it exits. Scheduler and triggerer would each start a
# log server on all interfaces at fixed ports (8793/8794); one loopback log server on a free port
# serves both instead.
def airflow_command(*args: str, component: bool) -> list[str]:
    """The command line of ``airflow ARGS...`` with make ui's SQLite rules (:func:`exec_airflow`): a component's
    (its savepoints take the write lock; the API server keeps one worker, in its own process, so the rule
    reaches its requests) or one CLI command's (every transaction serialized)."""
    return [sys.executable, "-m", "launchers.ui", _EXEC_COMPONENT if component else _EXEC_AIRFLOW, *args]


def ui_components(port: int, log_port: int, api_workers: str = "1") -> list[Component]:
    """Every process ``make ui`` starts (each gets its own SIGTERM at the stop)."""
    return [
        Component("api-server", airflow_command("api-server", "--host", LOOPBACK, "--port", str(port),
                                                "--workers", api_workers, component=True)),
        Component("scheduler", airflow_command("scheduler", "--skip-serve-logs", component=True)),
        Component("dag-processor", airflow_command("dag-processor", component=True)),
        Component("triggerer", airflow_command("triggerer", "--skip-serve-logs", component=True)),
        Component("log-server", [sys.executable, "-m", "uvicorn", "airflow.utils.serve_logs.log_server:get_app",
                                 "--factory", "--host", LOOPBACK, "--port", str(log_port), "--no-access-log"]),
    ]


class AirflowUI:
    """The project-local Airflow behind ``make ui``: start, wait until healthy, stop completely."""

    def __init__(self, home: Path, root: Path, port: int, out=None):
        self.home, self.root, self.port = home, root, port
        self.log_port = free_port()
        self.env = airflow_env(home, root, port=port, log_port=self.log_port)
        self.url = ui_url(port)
        self.log_dir = home / "logs" / "ui"
        self.supervisor = Supervisor()
        self.out = out or sys.stdout

    def say(self, line: str = "") -> None:
        """One line of ``make ui``'s own output."""
        print(f"airsage ui: {line}" if line else "", file=self.out, flush=True)

    def start(self, stop: StopRequest | None = None) -> None:
        """Migrate the DB if needed and start the components, each in a session of its own
        (none when ``stop`` was requested meanwhile)."""
        try:
            ensure_db(self.home, self.env)
        except LauncherError:
            if stop is not None and stop.requested:  # Ctrl-C reached `db migrate` too: not a failure
                return
            raise
        if stop is not None and stop.requested:
            return
        self.supervisor.become_subreaper()
        workers = self.env["AIRFLOW__CORE__PARALLELISM"]
        self.say(f"starting Airflow (API server, scheduler with {workers} LocalExecutor workers, "
                 f"DAG processor, triggerer, log server) in {self.home}; Ctrl-C stops it")
        self.say(f"component logs: {self.log_dir}/<component>.log")
        for component in ui_components(self.port, self.log_port, self.env["AIRFLOW__API__WORKERS"]):
            self.supervisor.start(component, self.env, self.log_dir / f"{component.name}.log", die_with_parent=True)

    def parsed_dags(self) -> tuple[list[str], list[dict]] | None:
        """(DAG ids, import errors) once the DAG processor has parsed the DAG folder, None before.
        Logs in as ``ADMIN_USER`` for it; one short try per call, so Ctrl-C is noticed between polls."""
        try:
            password = json.loads(password_file(self.home).read_text())[ADMIN_USER]
        except (OSError, ValueError, KeyError):
            return None
        try:
            return AirflowApi(self.url, ADMIN_USER, password, timeout=2, attempts=1).parsed_dags()
        except (OSError, ValueError, KeyError, LauncherError):
            return None

    def print_ready(self, dags: list[str], errors: list[dict]) -> None:
        """The banner: URL, login, password file, how to stop (and DAGs that failed to import)."""
        self.say()
        for filename in sorted({e.get("filename", "?") for e in errors}):
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
            self.supervisor.reap()  # as a subreaper, adopted orphans are ours to collect
            dead = self.supervisor.exited()
            if dead is not None:
                self.say(f"the {dead.name} exited (code {self.supervisor.returncode(dead.name)}); stopping the others.")
                self.say(f"its log ({dead.log}) ends with:")
                for line in log_tail(dead.log, 15):
                    print(f"    {line}", file=self.out)
                return 1
            if not ready and components_healthy(self.url, timeout=1):
                parsed = self.parsed_dags()
                if parsed is not None:
                    ready = True
                    self.print_ready(*parsed)
        return 0


def run_ui(home: Path, root: Path, port: int = DEFAULT_PORT) -> int:
    """Airflow's components until Ctrl-C, SIGTERM or SIGHUP; then stop every process they started."""
    from sm_pipeline.locks import FileLock

    if port == 0:
        port = free_port()
    problem = port_problem(port)
    if problem:
        print(f"airsage ui: port {port} on {LOOPBACK} is not available ({problem}); "
              f"choose another: make ui PORT={port + 1}", file=sys.stderr)
        return 2
    home.mkdir(parents=True, exist_ok=True)
    # one make ui per home: its components share one SQLite DB (the kernel drops the lock of a dead owner)
    lock = FileLock(home / ".make-ui.lock")
    if not lock.try_acquire(command="make ui", port=port):
        print(f"airsage ui: make ui already runs on {home} (one Airflow per home: its components "
              "share one SQLite DB); stop it first, or set AIRFLOW_HOME to another folder", file=sys.stderr)
        return 2
    stop = StopRequest().install()
    ui = AirflowUI(home, root, port)
    code = 1
    try:
        ui.start(stop)
        code = ui.watch(stop)
    except LauncherError as err:
        ui.say(str(err))
    finally:
        if ui.supervisor.components:
            ui.say("stopping Airflow ...")
            started = time.monotonic()
            report = ui.supervisor.stop(grace=STOP_GRACE_SECONDS, kill_wait=KILL_WAIT_SECONDS)
            # typically interpreters still garbage-collecting after their clean shutdown
            note = (f"; {len(report.killed)} process(es) still exiting after {STOP_GRACE_SECONDS:g} s were killed: "
                    f"{', '.join(report.killed)}") if report.killed else ""
            if report.left:
                ui.say(f"could not stop: {', '.join(report.left)}")
                code = 1
            else:
                ui.say(f"stopped in {time.monotonic() - started:.1f} s{note}; no Airflow process left.")
        lock.release()
    return code


def run_airflow_cli(args: list[str], home: Path, root: Path, port: int = DEFAULT_PORT) -> int:
    """``airflow ARGS...`` with the UI's environment (``make airflow ARGS="..."``); its exit code.

    The command runs through :func:`exec_airflow`, which makes its SQLite writes wait for
    ``make ui``'s scheduler instead of failing (:func:`serialize_transactions`).
    """
    env = airflow_env(home, root, port=port)
    ensure_db(home, env)
    command = airflow_command(*args, component=False)
    with contextlib.suppress(KeyboardInterrupt):
        return subprocess.run(command, env=env, check=False).returncode  # noqa: S603 - the user's own CLI args
    return 130


def lock_before_savepoints(target=None) -> None:
    """A SAVEPOINT opened outside a transaction on SQLite first takes the write lock (``BEGIN IMMEDIATE``).

    pysqlite starts no transaction before a SAVEPOINT, so SQLite starts a deferred one: the code inside
    reads, then writes. When another process commits in between, SQLite refuses that write at once
    ("database is locked": waiting cannot help a stale read). Airflow's API server creates a backfill's runs
    this way: the Backfill form then answers 503, and Airflow's clean-up deletes runs the scheduler is
    already scheduling, which stops the scheduler (ObjectDeletedError) and with it make ui. Taken at
    the savepoint, the lock makes the other writer wait instead (up to the URL's timeout), and only
    these transactions hold it early. ``target``: the Engine (class by default) the listener goes on.
    """
    import sqlite3

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(target or Engine, "savepoint")
    def _write_lock_first(connection, _name):
        dbapi_connection = connection.connection.dbapi_connection
        if isinstance(dbapi_connection, sqlite3.Connection) and not dbapi_connection.in_transaction:
            dbapi_connection.execute("BEGIN IMMEDIATE")


def serialize_transactions(target=None) -> None:
    """Every SQLite transaction starts as ``BEGIN IMMEDIATE`` (SQLAlchemy's documented recipe for pysqlite).

    For one short CLI command (``make airflow``): ``backfill create`` opens a SAVEPOINT, reads, then writes,
    and other commands read and write in one session; each then queues behind make ui's scheduler instead of
    meeting "database is locked". Not for the long-running components: some hold a session open long enough
    that the others would wait past the lock timeout (tried: the browser scenarios failed within minutes).
    """
    import sqlite3

    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(target or Engine, "connect")
    def _driver_does_not_begin(dbapi_connection, _record):
        if isinstance(dbapi_connection, sqlite3.Connection):
            dbapi_connection.isolation_level = None  # SQLAlchemy's "begin" below decides

    @event.listens_for(target or Engine, "begin")
    def _begin_immediate(connection):
        if connection.dialect.name == "sqlite" and connection.dialect.driver == "pysqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def exec_airflow(args: list[str], component: bool) -> int:
    """In the child process (environment already complete): Airflow's CLI with make ui's SQLite rules,
    :func:`lock_before_savepoints` for a component, :func:`serialize_transactions` for one command.

    Known and left to Airflow: on SQLite the scheduler reads outside a transaction and writes what it decided
    later, so a clear given in the moment a run ends can be overwritten (the README says what to do).
    """
    if component:
        lock_before_savepoints()
    else:
        serialize_transactions()
    from airflow.__main__ import main as airflow_main

    sys.argv = ["airflow", *args]
    airflow_main()
    return 0


def port_number(text: str) -> int:
    """argparse type: a TCP port number 0-65535 (0: any free port)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a TCP port number 0-65535, got {text!r}")
    return value


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m launchers.ui", description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--airflow", nargs=argparse.REMAINDER, metavar="ARGS",
                      help="run one Airflow CLI command with the UI's environment (make airflow)")
    mode.add_argument(_EXEC_AIRFLOW, nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    mode.add_argument(_EXEC_COMPONENT, nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=port_number, default=DEFAULT_PORT,
                        help=f"the UI's port on {LOOPBACK} (default {DEFAULT_PORT}; 0: any free port)")
    args = parser.parse_args(argv)
    if args.exec_airflow_cli is not None:
        return exec_airflow(args.exec_airflow_cli, component=False)
    if args.exec_airflow_component is not None:
        return exec_airflow(args.exec_airflow_component, component=True)
    try:
        if args.airflow is not None:
            return run_airflow_cli(args.airflow, default_home(), default_root(), args.port)
        return run_ui(default_home(), default_root(), args.port)
    except LauncherError as err:
        print(f"airsage ui: {err}", file=sys.stderr)
        return err.exit_code


if __name__ == "__main__":
    sys.exit(main())
