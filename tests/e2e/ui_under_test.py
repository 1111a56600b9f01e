"""``make ui`` under test: start it as a user does, watch every process it starts, Ctrl-C it.

The Airflow the browser tests talk to is started by the very command the README gives
(``make ui``, here with ``PORT=0`` for a free port) with a scratch AIRFLOW_HOME and object root,
in a session of its own; "Ctrl-C" is SIGINT to that session's foreground process group, which
is what a terminal sends.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

READY = re.compile(r"Airflow is ready at (http://127\.0\.0\.1:\d+/)")
# variables of the test session that must not leak into a real Airflow (conftest sets them for
# in-process DAG tests) or into a nested make
_DROP = ("AIRFLOW__CORE__UNIT_TEST_MODE", "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")


@dataclass
class AirflowUnderTest:
    """One ``make ui`` started by a test."""

    repo: Path
    home: Path
    root: Path
    artifacts: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    url: str = ""
    process: subprocess.Popen | None = None
    output: list[str] = field(default_factory=list)
    seen: dict[int, psutil.Process] = field(default_factory=dict)
    sessions: set[int] = field(default_factory=set)
    #: set by :meth:`interrupt`: make ui's exit after it was asked to stop is not a failure
    stop_requested: bool = False

    def environment(self) -> dict[str, str]:
        """The test process's environment, minus test-only settings, plus scratch home and root."""
        env = {k: v for k, v in os.environ.items() if k not in _DROP}
        env.update({"AIRFLOW_HOME": str(self.home), "AIRSAGE_ROOT": str(self.root), **self.extra_env})
        return env

    def start(self, timeout: float) -> str:
        """``make ui PORT=0``; returns the URL it prints once every component is healthy."""
        self.artifacts.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            ["make", "--no-print-directory", "ui", "PORT=0"], cwd=self.repo, env=self.environment(),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True)
        ready = threading.Event()
        threading.Thread(target=self._read_output, args=(ready,), daemon=True).start()
        deadline = time.monotonic() + timeout
        while not ready.wait(1.0):
            self.snapshot()
            if self.process.poll() is not None:
                raise RuntimeError("make ui exited before Airflow was ready:\n" + "".join(self.output[-40:]))
            if time.monotonic() > deadline:
                raise RuntimeError(f"make ui not ready after {timeout:.0f} s:\n" + "".join(self.output[-40:]))
        self.snapshot()
        return self.url

    def _read_output(self, ready: threading.Event) -> None:
        with (self.artifacts / "make-ui.out").open("w") as log:
            for line in self.process.stdout:
                self.output.append(line)
                log.write(line)
                log.flush()
                match = READY.search(line)
                if match:
                    self.url = match.group(1)
                    ready.set()

    def password(self) -> str:
        """The admin password make ui's banner points at."""
        return json.loads((self.home / "simple_auth_manager_passwords.json.generated").read_text())["admin"]

    def snapshot(self) -> int:
        """Remember every process below make ui (and the sessions they lead); returns how many run now."""
        try:
            procs = [psutil.Process(self.process.pid), *psutil.Process(self.process.pid).children(recursive=True)]
        except psutil.Error:
            return 0
        for proc in procs:
            self.seen.setdefault(proc.pid, proc)
            try:
                self.sessions.add(os.getsid(proc.pid))
            except OSError:
                pass
        return len(procs)

    def wait_for_job_session(self, timeout: float) -> str:
        """Wait until a process below make ui leads a session of its own other than make and the
        components (the children of ``python -m launchers.ui``): a local runner job, started by
        a running task. Returns its command line."""
        deadline = time.monotonic() + timeout
        while True:
            self.snapshot()
            make = psutil.Process(self.process.pid)
            tree = make.children(recursive=True)
            supervisors = [p for p in make.children() if "launchers.ui" in " ".join(_cmdline(p))]
            components = {c.pid for s in supervisors for c in s.children()}
            for proc in tree:
                try:
                    if proc.pid not in components and proc not in supervisors and os.getsid(proc.pid) == proc.pid:
                        return " ".join(_cmdline(proc))
                except (OSError, psutil.Error):
                    continue
            if time.monotonic() > deadline:
                raise AssertionError(f"no local runner job started below make ui within {timeout:.0f} s")
            time.sleep(0.2)

    def interrupt(self, timeout: float) -> float:
        """Ctrl-C: SIGINT to make ui's process group; seconds until make itself exited."""
        self.snapshot()
        self.stop_requested = True
        started = time.monotonic()
        os.killpg(self.process.pid, signal.SIGINT)
        self.process.wait(timeout=timeout)
        return time.monotonic() - started

    def survivors(self) -> list[str]:
        """Processes started under make ui that still run: any seen in its tree, or in its sessions."""
        left = {}
        for proc in self.seen.values():
            try:
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    left[proc.pid] = proc
            except psutil.Error:
                continue
        for proc in psutil.process_iter():
            try:
                if os.getsid(proc.pid) in self.sessions and proc.status() != psutil.STATUS_ZOMBIE:
                    left[proc.pid] = proc
            except (OSError, psutil.Error):
                continue
        return [f"{proc.pid} {' '.join(_cmdline(proc))}" for proc in left.values()]

    def exited_unasked(self) -> int | None:
        """make ui's exit code when it exited without being asked to stop (a component died), else None."""
        if self.process is None or self.stop_requested:
            return None
        return self.process.poll()

    def kill_everything(self) -> None:
        """Last resort for a failed test: SIGKILL whatever make ui left behind."""
        for proc in list(self.seen.values()):
            try:
                if proc.is_running():
                    proc.kill()
            except psutil.Error:
                continue

    def failure_digest(self, since: float, lines: int = 12) -> str:
        """The error and warning lines of every task log written since ``since`` (epoch seconds) that has an
        error, for the test's own output: CI keeps the output, not the artifacts folder."""
        out: list[str] = []
        for log in sorted((self.home / "logs").glob("dag_id=*/run_id=*/task_id=*/attempt=*.log")):
            if log.stat().st_mtime < since:
                continue
            events = []
            for raw in log.read_text(errors="replace").splitlines():
                try:
                    event = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(event, dict) and event.get("level") in ("warning", "error", "critical"):
                    events.append(event)
            if not any(e.get("level") != "warning" for e in events):
                continue
            out.append(f"--- {log.relative_to(self.home / 'logs')}")
            for event in events[-lines:]:
                text = str(event.get("event"))
                if event.get("error_detail"):
                    detail = event["error_detail"][-1] if isinstance(event["error_detail"], list) else {}
                    text += f" [{detail.get('exc_type')}: {detail.get('exc_value')}]"
                out.append(f"{str(event.get('timestamp', ''))[11:23]} {event.get('level')}: {text[:600]}")
        return "\n".join(out) or "(no task log with an error since the scenario started)"

    def save_logs(self, target: Path) -> None:
        """Copy make ui's output and the Airflow component and task logs next to the artifacts."""
        import shutil

        target.mkdir(parents=True, exist_ok=True)
        logs = self.home / "logs"
        if logs.is_dir():
            shutil.copytree(logs, target / "airflow-logs", dirs_exist_ok=True)
        (target / "make-ui.out").write_text("".join(self.output))


def _cmdline(proc: psutil.Process) -> list[str]:
    try:
        return proc.cmdline()
    except psutil.Error:
        return ["?"]
