"""The one lock helper: an exclusive ``flock`` on a file, and the identity of the process that holds it.

Every "only one of us at a time" of the project goes through :class:`FileLock`: the runner of one
execution (``<records>/.run.lock``), the claim on one execution display name (``local.claims``), the
emulated service of one object root (``service.lock``) and ``make ui`` on one Airflow home.

Why ``flock``: the kernel drops the lock when its owner exits for any reason, SIGKILL included, so a dead
owner never has to be detected by guessing. Lock files are never deleted: removing one while another
process waits on it would let a third process lock a new file of the same name, and two owners would
exist. ``flock`` needs a local file system (or NFSv4, where Linux maps it to a byte-range lock).

The file's content is a note, rewritten in place (never temp + rename: the lock belongs to the inode):
``{"Owner": <Owner.record()>, ...fields the owner added}``. It stays after release, so a later process
can read who held it last and what they noted.

:class:`Owner` is the one owner identity (pid, host, process start time) that records also carry
(the local runner's ``LocalRunner`` field); :func:`owner_is_alive` tells a live owner from one that is
certainly gone without a lock, for records whose lock is not at hand.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


def process_start_time(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), or None when that cannot be told."""
    try:
        import psutil
    except ImportError:
        return None
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


@dataclass(frozen=True)
class Owner:
    """Who holds a lock or runs an execution: pid, host and the process's start time (pid reuse)."""

    pid: int
    host: str
    start_time: float | None

    @classmethod
    def current(cls) -> Owner:
        """This process."""
        pid = os.getpid()
        return cls(pid, socket.gethostname(), process_start_time(pid))

    def record(self) -> dict:
        """``{"Pid", "Host", "ProcessStartTime"}``: how records and lock notes store an owner."""
        return {"Pid": self.pid, "Host": self.host, "ProcessStartTime": self.start_time}

    def describe(self) -> str:
        """``pid 123 on host``, for log lines."""
        return f"pid {self.pid} on {self.host}"


def owner_is_alive(record: dict | None) -> bool:
    """True unless the owner ``record`` names is certainly gone (same host, pid dead or reused).

    Another machine's owner, or a record without a usable pid, counts as alive: we cannot tell.
    """
    if not record or record.get("Host") != socket.gethostname():
        return True
    pid = record.get("Pid")
    if not isinstance(pid, int) or isinstance(pid, bool):
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    recorded = record.get("ProcessStartTime")
    if not recorded:
        return True  # no start time to tell a reused pid by (and no psutil look-up needed)
    current = process_start_time(pid)
    return not (current and abs(recorded - current) > 1.0)


class FileLock:
    """An exclusive ``flock`` on ``path`` held by this object, with the owner's note in the file.

    ``try_acquire()`` takes it if it is free; ``acquire()`` waits for it; ``release()`` (or the process's
    exit, however it ends) gives it up. Use as a context manager to wait for it and release it.
    """

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._fd: int | None = None
        self._note: dict = {}

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._fd is not None

    def try_acquire(self, **note) -> bool:
        """Take the lock if nobody holds it; True when it is now ours.

        The note becomes the earlier owners' fields, this owner's identity (``Owner``, with ``ClaimedAt``)
        and ``note``'s fields.
        """
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)  # non-inheritable: child processes never hold it
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        try:
            self._note = {**(self._read() or {}), "Owner": {**Owner.current().record(), "ClaimedAt": time.time()},
                          **note}
            self._write()
        except BaseException:  # a note that cannot be written (a full disk): not held, nothing left open
            self.release()
            raise
        return True

    def acquire(self, *, poll_interval: float = 0.5, on_wait: Callable[[dict | None, float], None] | None = None,
                report_every: float = 60.0) -> bool:
        """Take the lock, waiting while another process holds it; True when we had to wait.

        ``on_wait(owner record, waited seconds)`` is called when the wait starts and then every
        ``report_every`` seconds, so the caller can say whom it waits for.
        """
        if self.try_acquire():
            return False
        started = next_report = time.monotonic()
        while True:
            now = time.monotonic()
            if on_wait is not None and now >= next_report:
                on_wait(self.owner(), now - started)
                next_report = now + report_every
            time.sleep(poll_interval)
            if self.try_acquire():
                return True

    def note(self) -> dict | None:
        """What the latest owner wrote into the file (None if nothing readable)."""
        if self._fd is not None:
            return dict(self._note)
        return self._read()

    def owner(self) -> dict | None:
        """The latest owner's record (``Pid``, ``Host``, ``ProcessStartTime``, ``ClaimedAt``), if any."""
        owner = (self.note() or {}).get("Owner")
        return owner if isinstance(owner, dict) else None

    def release(self) -> None:
        """Give the lock up (the note stays)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _read(self) -> dict | None:
        try:
            note = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return note if isinstance(note, dict) else None

    def _write(self) -> None:
        # In place, not temp + rename: the lock belongs to this inode, which must never change.
        data = json.dumps(self._note, sort_keys=True, default=str).encode("utf-8")
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
