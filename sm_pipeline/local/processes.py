"""Job subprocesses the runner can stop as a group (Ctrl-C, a failed sibling host, SIGTERM), and that die with it.

On Linux every job process gets a parent-death signal (``PR_SET_PDEATHSIG`` = SIGKILL), so a runner
killed with SIGKILL takes its jobs along at once; Python processes a job starts set the same through
the container hook. Where there is no such signal (macOS), a job outlives a SIGKILLed runner until
the next run on the same object root starts: :func:`kill_stale_jobs` ends every process whose
``AIRSAGE_CONTAINER_ROOT`` lies in a dead run's sandbox, before the sandbox is removed.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

STDERR_TAIL_LINES = 15
_GRACE_SECONDS = 3.0


class StopRequested(Exception):
    """The execution is being stopped; the step must not publish anything.

    ``metadata`` is the stopped step's ListPipelineExecutionSteps ``Metadata`` (a job step's job ARN), if known.
    """

    metadata: dict | None = None


@dataclass
class JobProcessResult:
    """How one job process ended."""

    returncode: int
    stderr_tail: str


class JobProcesses:
    """Starts job processes in their own sessions and kills them all when the run is stopped."""

    def __init__(self) -> None:
        self.stop_event = threading.Event()
        self._lock = threading.Lock()
        self._live: set[subprocess.Popen] = set()

    def run(self, argv: list[str], *, cwd: Path, env: dict[str, str], stdout_log: Path, stderr_log: Path) -> JobProcessResult:
        """Run ``argv`` to completion with output to the log files; StopRequested if the run is stopped."""
        if self.stop_event.is_set():
            raise StopRequested()
        stdout_log.parent.mkdir(parents=True, exist_ok=True)
        tail: deque[bytes] = deque(maxlen=STDERR_TAIL_LINES)
        # Unbuffered: a write the disk refuses fails in the pump, not again when the file is closed.
        with open(stdout_log, "ab", buffering=0) as out, open(stderr_log, "ab", buffering=0) as err:
            # A session of its own: the terminal's Ctrl-C reaches only the runner, which then stops
            # the job deliberately (and knows it did), instead of racing the job's own traceback.
            # stderr goes through a pipe: its last lines are kept in memory too, so the failure
            # reason has the job's own error line even when the log cannot be written (a full disk).
            process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.PIPE,  # noqa: S603 - the step's entrypoint, no shell
                                       stdin=subprocess.DEVNULL, start_new_session=True,
                                       preexec_fn=die_with_parent())
            pump = threading.Thread(target=_pump, args=(process.stderr, err, tail), daemon=True,
                                    name=f"stderr-{process.pid}")
            pump.start()
            with self._lock:
                self._live.add(process)
                stopping = self.stop_event.is_set()  # stop_all ran between the check above and the add
            if stopping:
                _terminate_later(process)
            try:
                # A blocking wait: the exit is seen at once (a wait with a timeout polls, up to
                # 50 ms late per job). Stopping is stop_all's: it signals the live jobs itself.
                returncode = process.wait()
            finally:
                with self._lock:
                    self._live.discard(process)
                # A child the job left running may hold the pipe open: do not wait for it forever.
                pump.join(timeout=5)
        if self.stop_event.is_set():
            raise StopRequested()
        return JobProcessResult(returncode, b"".join(tail).decode("utf-8", errors="replace").rstrip())

    def stop_all(self) -> None:
        """Ask every live job to stop (SIGTERM to its process group, SIGKILL after a grace period)."""
        self.stop_event.set()
        with self._lock:
            live = list(self._live)
        for process in live:
            _terminate_later(process)


_PR_SET_PDEATHSIG = 1


def _load_prctl():
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


_PRCTL = _load_prctl()


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child receive SIGKILL when this process dies (Linux); None elsewhere.

    It runs between fork and exec, so it only calls the prepared libc function and ``getppid``:
    no imports, no locks. If the runner died before the call, the child kills itself at once.
    """
    if _PRCTL is None:
        return None
    prctl, parent = _PRCTL, os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


def kill_stale_jobs(sandbox: Path) -> int:
    """SIGKILL every process whose AIRSAGE_CONTAINER_ROOT is inside ``sandbox`` (a dead run's); returns the count."""
    try:
        import psutil
    except ImportError:
        return 0
    prefix = str(sandbox).rstrip("/") + "/"
    killed = 0
    for process in psutil.process_iter():
        try:
            root = process.environ().get("AIRSAGE_CONTAINER_ROOT", "")
        except (psutil.Error, OSError):
            continue  # gone, a zombie, or not ours to read
        if (root + "/").startswith(prefix):
            try:
                process.kill()
                killed += 1
            except psutil.Error:
                pass
    return killed


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _terminate_later(process: subprocess.Popen) -> None:
    """SIGTERM to the job's process group now, SIGKILL after the grace period if it has not exited.

    The job's own thread is blocked in ``process.wait()`` and reaps it; this never waits.
    """
    _signal_group(process, signal.SIGTERM)

    def kill_if_alive() -> None:
        if process.returncode is None:
            _signal_group(process, signal.SIGKILL)

    timer = threading.Timer(_GRACE_SECONDS, kill_if_alive)
    timer.daemon = True
    timer.start()


def _pump(source, log, tail: deque) -> None:
    """Copy a job's stderr to its log line by line, keeping the last lines; a log write error loses only the log."""
    log_ok = True
    with source:
        while True:
            line = source.readline(_MAX_LINE_BYTES)
            if not line:
                return
            tail.append(line)
            if log_ok:
                try:
                    log.write(line)
                    log.flush()
                except OSError:
                    log_ok = False


_MAX_LINE_BYTES = 8192


def read_tail(path: Path, lines: int = STDERR_TAIL_LINES, max_bytes: int = 64 * 1024) -> str:
    """The last ``lines`` lines of a log file (reads at most ``max_bytes`` from its end)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - max_bytes))
            data = fh.read()
    except OSError:
        return ""
    text = data.decode("utf-8", errors="replace")
    return "\n".join(deque(text.rstrip().splitlines(), maxlen=lines))
