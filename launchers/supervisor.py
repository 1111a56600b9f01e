"""The one process supervisor of the launchers: start components, find everything they started, stop it all.

A *component* is one command (an Airflow component, the emulated SageMaker service, ``airflow dags
test``) started in a session of its own, its output appended to its log file after a start line. The
supervisor finds every process that belongs to its components, whatever they did since:

* **sessions**: a component's session holds all its descendants, including those that took a
  process group of their own (Airflow's task processes do) or rewrote their process title
  (setproctitle overwrites the memory ``/proc/<pid>/environ`` reads). A session counts only while
  its leader is gone or is the very process started (same create time), so a recycled pid never
  makes a stranger ours; that is also why sessions are recorded with create times and can be
  persisted (``make stack-down`` runs in another process than ``make stack``).
* **a marker variable** (optional) every started process inherits: it finds the processes that
  started sessions of their own (the local runner's jobs do), and their sessions are tracked from
  then on, so that their descendants are found even when their environment cannot be read.
* **this process's tree**, once it became a *subreaper* (Linux): orphans of the components are
  re-parented to the supervisor instead of init, so they stay in its tree. Only a supervisor that
  stays alive while its components run (``make ui``, ``make demo``) becomes one.
* every process seen so far that is still the same process (psutil compares create times).

Stopping is one routine for all launchers: SIGTERM first (to every process, to the component's
process group, or to its leader alone: each component says which), SIGKILL to whatever still runs
after a grace period, until nothing is left.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from launchers import LOOPBACK, REPO

#: who gets a component's first SIGTERM
TERM_ALL = "all"  # every process of it (make ui: each stops its own cleanup, nothing waits on a parent)
TERM_GROUP = "group"  # its process group, as a container's init forwards it (docker compose stop)
TERM_LEADER = "leader"  # its leader alone, which stops its children itself (a Celery worker's warm shutdown)
TERM_POLICIES = (TERM_ALL, TERM_GROUP, TERM_LEADER)

#: what ``start`` writes before each start of a component into its log
START_LINE = re.compile(r"(?:^|\n)--- \d{4}-\d\d-\d\dT[^\n]*\n")
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit)\b.*")

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


@dataclass
class Component:
    """One supervised command: its argv, extra environment, stop policy, log, and every session it led."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    term: str = TERM_ALL
    log: str | None = None
    pid: int | None = None
    started: str | None = None
    #: every session this component ever started: [pid, create time] (restarts add one)
    sessions: list[list[float]] = field(default_factory=list)

    def __post_init__(self):
        if self.term not in TERM_POLICIES:
            raise ValueError(f"component {self.name}: term must be one of {TERM_POLICIES}, got {self.term!r}")


@dataclass
class StopReport:
    """What a stop did: how many processes ran at the start, which had to be SIGKILLed, which are left."""

    running: int
    killed: list[str]
    left: list[str]


class Supervisor:
    """Starts components and finds, signals and stops every process that belongs to them.

    ``marker`` is ``(variable, value)`` set in every started process's environment, and
    ``component_var`` a variable naming the component there; both are optional.
    """

    def __init__(self, components: Iterable[Component] = (), *, marker: tuple[str, str] | None = None,
                 component_var: str | None = None):
        import psutil

        self._psutil = psutil
        self._me = psutil.Process()
        self.components: dict[str, Component] = {c.name: c for c in components}
        self.marker = marker
        self.component_var = component_var
        self._popen: dict[str, subprocess.Popen] = {}
        self._seen: dict[int, object] = {}
        self._found_sessions: dict[int, tuple[str, float]] = {}
        self._own_tree = False

    # ---- starting ---------------------------------------------------------------------------
    def start(self, component: Component, env: Mapping[str, str], log: Path | str, *, cwd: Path = REPO,
              die_with_parent: bool = False) -> Component:
        """Start ``component`` in a session of its own with ``env`` (plus its own), output appended to ``log``.

        A session of its own: a terminal's Ctrl-C reaches only the launcher, which then stops every
        component and everything below it, on a deadline. ``die_with_parent`` (Linux): the component
        gets SIGTERM if the launcher dies without stopping it.
        """
        log = Path(log)
        log.parent.mkdir(parents=True, exist_ok=True)
        full_env = {**env, **component.env}
        if self.marker:
            full_env[self.marker[0]] = self.marker[1]
        if self.component_var:
            full_env[self.component_var] = component.name
        with log.open("ab") as out:
            out.write(f"\n--- {datetime.now(UTC).isoformat()} {shlex.join(component.argv)}\n".encode())
            out.flush()
            process = subprocess.Popen(  # noqa: S603 - argv built by the launchers from fixed commands
                component.argv, env=full_env, cwd=str(cwd), stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=_die_with_parent if die_with_parent else None)
        self._popen[component.name] = process
        component.pid, component.log = process.pid, str(log)
        component.started = datetime.now(UTC).isoformat()
        try:
            created = self._psutil.Process(process.pid).create_time()
        except self._psutil.Error:  # exited at once: no session to remember
            created = 0.0
        component.sessions.append([process.pid, created])
        self.components[component.name] = component
        return component

    def become_subreaper(self) -> bool:
        """Linux: orphaned descendants are re-parented to this process instead of init (see the module doc).

        Task processes and the local runner's jobs start sessions of their own, and their parents may
        exit first; as a subreaper every one of them stays in this process's tree, where the stop
        finds it. True when it worked.
        """
        libc = _libc()
        self._own_tree = bool(sys.platform.startswith("linux") and libc is not None
                              and libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
        return self._own_tree

    # ---- finding ----------------------------------------------------------------------------
    def processes(self, names: Iterable[str] | None = None) -> list:
        """Live (non-zombie) processes of the components (all, or those named), each with ``.component``.

        ``.component`` is the component's name, or ``""`` for an orphan adopted by this subreaper
        whose component cannot be told; those count only when all components are asked for.
        """
        psutil = self._psutil
        self.reap()
        wanted = None if names is None else set(names)
        sessions = {int(pid): (c.name, created) for c in self.components.values() for pid, created in c.sessions}
        sessions.update(self._found_sessions)
        trusted: dict[int, bool] = {}

        def session_owner(sid: int) -> str | None:
            if sid not in sessions:
                return None
            if sid not in trusted:
                name, created = sessions[sid]
                try:
                    trusted[sid] = abs(psutil.Process(sid).create_time() - created) < 1.0
                except psutil.NoSuchProcess:
                    trusted[sid] = True
                except psutil.Error:
                    trusted[sid] = False
            return sessions[sid][0] if trusted[sid] else None

        tree: set[int] = set()
        if self._own_tree:
            with contextlib.suppress(psutil.Error):
                tree = {p.pid for p in self._me.children(recursive=True)}
        found = []
        for proc in psutil.process_iter():
            if proc.pid == self._me.pid:
                continue
            try:
                if proc.status() == psutil.STATUS_ZOMBIE:
                    continue
                sid = os.getsid(proc.pid)
                owner = session_owner(sid)
                if owner is None and self.marker:
                    owner = self._marked_owner(proc, sid)
                if owner is None and proc.pid in self._seen and self._seen[proc.pid] == proc:
                    owner = getattr(self._seen[proc.pid], "component", "")
                if owner is None and proc.pid in tree:
                    owner = ""
            except (psutil.Error, OSError):
                continue
            if owner is None:
                continue
            proc.component = owner
            self._seen[proc.pid] = proc
            if wanted is None or owner in wanted:
                found.append(proc)
        return found

    def _marked_owner(self, proc, sid: int) -> str | None:
        """The component named in a process's environment when it carries the marker; its session is
        tracked from then on (its members may have environments that cannot be read)."""
        env = proc.environ()
        if env.get(self.marker[0]) != self.marker[1]:
            return None
        owner = env.get(self.component_var, "") if self.component_var else ""
        if sid == proc.pid and sid not in self._found_sessions:
            self._found_sessions[sid] = (owner, proc.create_time())
        return owner

    def leader_alive(self, name: str) -> bool:
        """Whether the process ``start`` started for component ``name`` still runs."""
        component = self.components[name]
        process = self._popen.get(name)
        if process is not None and process.pid == component.pid:
            return process.poll() is None
        if not component.sessions:
            return False
        pid, created = component.sessions[-1]
        try:
            leader = self._psutil.Process(int(pid))
            return (abs(leader.create_time() - created) < 1.0
                    and leader.status() != self._psutil.STATUS_ZOMBIE)
        except self._psutil.Error:
            return False

    def exited(self) -> Component | None:
        """A started component whose leader is no longer running, if any."""
        return next((c for c in self.components.values() if c.pid and not self.leader_alive(c.name)), None)

    def returncode(self, name: str) -> int | None:
        """Component ``name``'s exit code, when this supervisor started it and it exited."""
        process = self._popen.get(name)
        return None if process is None else process.poll()

    def wait(self, name: str, timeout: float | None = None) -> int | None:
        """Wait up to ``timeout`` s for component ``name``'s leader (started here) to exit; its exit code."""
        process = self._popen.get(name)
        if process is None:
            return None
        with contextlib.suppress(subprocess.TimeoutExpired):
            return process.wait(timeout=timeout)
        return None

    def reap(self) -> None:
        """Collect exited children: the components' leaders and (as a subreaper) adopted orphans."""
        for process in self._popen.values():
            process.poll()
        if not self._own_tree:  # other children of this process are someone else's to wait for
            return
        own = {p.pid for p in self._popen.values()}
        with contextlib.suppress(self._psutil.Error):
            for child in self._me.children():
                if child.pid not in own:  # Popen reaps its own; waitpid here would steal their exit codes
                    with contextlib.suppress(ChildProcessError, OSError):
                        os.waitpid(child.pid, os.WNOHANG)

    # ---- signalling and stopping -------------------------------------------------------------
    def send(self, sig: int, names: Iterable[str] | None = None) -> int:
        """Send ``sig`` to every process of the components (all, or those named) at once; how many."""
        processes = self.processes(names)
        _signal(processes, sig)
        return len(processes)

    def stop(self, names: Iterable[str] | None = None, grace: float = 5.0, kill_wait: float = 5.0) -> StopReport:
        """Stop the components (all, or those named) and everything they started.

        SIGTERM by each component's ``term`` policy, once per process; processes of ``TERM_ALL``
        components that appear meanwhile get theirs too. After ``grace`` seconds SIGKILL, repeated
        until nothing is left or ``kill_wait`` seconds passed.
        """
        names = list(self.components) if names is None else list(names)
        asked = None if set(names) == set(self.components) else names
        first = self.processes(asked)
        policy = {name: self.components[name].term for name in names}
        termed: set[int] = set()

        def term(processes: list) -> None:
            targets = [p for p in processes if p.pid not in termed and self._first_term(p, policy)]
            termed.update(p.pid for p in targets)
            _signal(targets, signal.SIGTERM)

        term(first)
        deadline = time.monotonic() + grace
        while True:
            alive = self.processes(asked)
            if not alive or time.monotonic() >= deadline:
                break
            term([p for p in alive if policy.get(p.component, TERM_ALL) == TERM_ALL])
            time.sleep(0.1)
        killed: dict[int, str] = {}
        deadline = time.monotonic() + kill_wait
        while alive and time.monotonic() < deadline:
            for proc in alive:
                killed.setdefault(proc.pid, describe(proc))
            _signal(alive, signal.SIGKILL)
            time.sleep(0.05)
            alive = self.processes(asked)
        for name in names:
            self.wait(name, timeout=1)
        self.reap()
        return StopReport(len(first), list(killed.values()), [describe(p) for p in self.processes(asked)])

    def _first_term(self, proc, policy: Mapping[str, str]) -> bool:
        """Whether ``proc`` gets a SIGTERM in the first round under its component's policy."""
        how = policy.get(proc.component, TERM_ALL)
        if how == TERM_ALL:
            return True
        leader = self.components[proc.component].pid
        if how == TERM_LEADER:
            return proc.pid == leader
        return process_group(proc) == leader


def describe(proc) -> str:
    """'name (pid N)' of a psutil process, for reports."""
    try:
        return f"{proc.name()} (pid {proc.pid})"
    except Exception:  # noqa: BLE001 - gone meanwhile
        return f"pid {proc.pid}"


def process_group(proc) -> int | None:
    """The process group of a psutil process (None when it is gone)."""
    try:
        return os.getpgid(proc.pid)
    except OSError:
        return None


def process_groups(processes: Iterable) -> set[int]:
    """The process groups of ``processes`` (gone ones skipped)."""
    return {group for group in map(process_group, processes) if group is not None}


def processes_in_groups(groups: set[int]) -> list:
    """Live (non-zombie) processes whose process group is one of ``groups``: what a stop must not leave."""
    import psutil

    found = []
    for proc in psutil.process_iter():
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and os.getpgid(proc.pid) in groups:
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


def _signal(processes: Iterable, sig: int) -> None:
    import psutil

    for proc in processes:
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            proc.send_signal(sig)


def _libc():
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    """preexec_fn: SIGTERM this component if the supervisor dies without stopping it (Linux)."""
    libc = _libc()
    if sys.platform.startswith("linux") and libc is not None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class StopRequest:
    """Set by the signal handler, polled by a launcher's main loop.

    A plain attribute on purpose: a handler that takes a lock (``threading.Event.set``) deadlocks
    when the signal lands while the main thread holds that same lock inside ``Event.wait``.
    """

    requested = False

    def handler(self, signum, frame) -> None:  # noqa: ARG002 - signal handler signature
        """The handler for SIGINT, SIGTERM and SIGHUP."""
        self.requested = True

    def install(self) -> StopRequest:
        """Handle SIGINT, SIGTERM and SIGHUP with this request; returns it.

        Installed explicitly: a shell starting us in the background leaves SIGINT ignored, and
        Python would then keep ignoring it.
        """
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self.handler)
        return self


# ---- ports and logs -----------------------------------------------------------------------------

def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def port_problem(port: int) -> str | None:
    """None if 127.0.0.1:``port`` can be bound, else the reason."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((LOOPBACK, port))
        except OSError as error:
            return error.strerror or str(error)
    return None


def since_last_start(path: Path | str) -> list[str]:
    """The lines a component's log got since its last start (all of it without a start line)."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return []
    return START_LINE.split(text)[-1].splitlines()


def log_tail(path: Path | str, lines: int = 15) -> list[str]:
    """The last ``lines`` lines of a component's log since its last start, led by the first exception.

    A chained traceback ends with the wrapper's exception; the cause is the first one.
    """
    if not Path(path).exists():
        return ["(no log)"]
    text = since_last_start(path)
    tail = text[-lines:]
    first = next((line for line in text if _EXCEPTION_LINE.match(line)), None)
    return ([f"first error: {first}", "..."] if first and first not in tail else []) + tail
