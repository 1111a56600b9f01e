"""Claims: exclusive ownership of one execution display name in an object root.

Two tries of one DAG run's ``run_local`` (or two runs whose inputs are equal) that overlap must
make ONE execution. Whoever wants to start or adopt the execution of a display name first takes
its claim: an exclusive ``flock`` on ``<root>/.airsage/claims/<pipeline>/<display name>.lock``.
The kernel drops the lock when the owning process exits for any reason (even SIGKILL), so a
dead owner's claim is free again at once and nothing has to guess whether a pid is still alive.
A second process finds the claim held, waits for it, and then sees the owner's finished
execution in the records.

Claim files are never deleted: removing a lock file while another process waits on it would let
a third process lock a new file of the same name, and two owners would exist. They are tiny.
``flock`` needs a local file system (or NFSv4, where Linux maps it to a byte-range lock).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import socket
import time
from collections.abc import Callable
from pathlib import Path

from sm_pipeline.errors import InvalidInput
from sm_pipeline.local.records import _process_start_time
from sm_pipeline.storage import INTERNAL_DIR

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,255}$")


def claims_dir(root: Path | str) -> Path:
    """``<root>/.airsage/claims``."""
    return Path(root) / INTERNAL_DIR / "claims"


class ExecutionClaim:
    """The claim on one display name's execution; use as a context manager.

    The file's content is a note: ``Owner`` (pid, host, process start, when; rewritten by each
    owner) and what owners add with :meth:`set_note` (e.g. the inputs the execution was started
    with). It stays after release, so a later run can read what the execution ran with.
    """

    def __init__(self, root: Path | str, pipeline_name: str, display_name: str):
        for what, name in (("pipeline name", pipeline_name), ("display name", display_name)):
            if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
                raise InvalidInput(f"invalid {what} {name!r} for an execution claim "
                                   "(letters, digits, '.', '_' and '-'; no '..')")
        self.path = claims_dir(root) / pipeline_name / f"{display_name}.lock"
        self._fd: int | None = None
        self._note: dict = {}

    @property
    def held(self) -> bool:
        """True while this object holds the claim."""
        return self._fd is not None

    def try_acquire(self) -> bool:
        """Take the claim if nobody holds it; True when it is now ours."""
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)  # non-inheritable: job processes never hold it
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        pid = os.getpid()
        # what earlier owners noted (e.g. the inputs the execution was started with) stays
        self._note = {**(self._read() or {}), "Owner": {
            "Pid": pid, "Host": socket.gethostname(), "ProcessStartTime": _process_start_time(pid),
            "ClaimedAt": time.time()}}
        self._write()
        return True

    def acquire(self, *, poll_interval: float = 0.5, on_wait: Callable[[dict | None, float], None] | None = None,
                report_every: float = 60.0) -> bool:
        """Take the claim, waiting while another process holds it; True when we had to wait.

        ``on_wait(owner, waited_seconds)`` is called when the wait starts and then every
        ``report_every`` seconds, so the caller can log who it is waiting for.
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
        """What the latest owner wrote into the claim file (None if nothing readable)."""
        if self._fd is not None:
            return dict(self._note)
        return self._read()

    def owner(self) -> dict | None:
        """The latest owner (``Pid``, ``Host``, ``ProcessStartTime``, ``ClaimedAt``), if recorded."""
        owner = (self.note() or {}).get("Owner")
        return owner if isinstance(owner, dict) else None

    def _read(self) -> dict | None:
        try:
            note = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return note if isinstance(note, dict) else None

    def set_note(self, **fields) -> None:
        """Add fields to the owner's note (only while held)."""
        if self._fd is None:
            raise RuntimeError(f"claim {self.path} is not held")
        self._note.update(fields)
        self._write()

    def release(self) -> None:
        """Give the claim up (the note stays)."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _write(self) -> None:
        # In place, not temp + rename: the lock belongs to this inode, which must never change.
        data = json.dumps(self._note, sort_keys=True, default=str).encode("utf-8")
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)

    def __enter__(self) -> ExecutionClaim:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
