"""Atomic file writes: a reader never sees a half-written file under the final name.

Temporary names carry their writer (``.<name>.<host>-<pid>.<random>.tmp``). A writer stopped by SIGTERM or
SIGINT removes its temp file before it exits: while a write is open in the main thread of a process that
left SIGTERM at its default (which ends the process without any cleanup), SIGTERM raises
:class:`StoppedBySignal` instead, so the write unwinds like Ctrl-C does. A writer killed before it could
clean up (SIGKILL, a machine crash) leaves its temp file behind, and the next write of the same file
removes it once that writer's process is certainly gone (same host, pid not running).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from sm_pipeline.locks import owner_is_alive

# mkstemp creates files 0600; a published file should get the mode a plain open() would give.
_UMASK = os.umask(0)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK


class StoppedBySignal(KeyboardInterrupt):
    """SIGTERM (or SIGINT) arrived during an atomic write; raised so that the write cleans up as it unwinds."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextlib.contextmanager
def stop_signals_raise() -> Iterator[None]:
    """Within the block, SIGTERM and SIGINT raise :class:`StoppedBySignal` in the main thread.

    Only signals left at their default action are taken over (a process with handlers of its own — the
    local runner, the service, Airflow — keeps them), and the previous handlers come back afterwards.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for signum in (signal.SIGTERM, signal.SIGINT):
        if signal.getsignal(signum) in (signal.SIG_DFL, signal.default_int_handler):
            previous[signum] = signal.signal(signum, _raise_stopped)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _raise_stopped(signum, frame):
    raise StoppedBySignal(signum)


@contextlib.contextmanager
def open_atomic(path: Path, mode: str = "wb", **open_kwargs) -> Iterator[IO]:
    """A file opened under a temp name beside ``path``, renamed to ``path`` only if the block completes.

    The temp file is removed when the block fails, and when SIGTERM or SIGINT stop the process meanwhile.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_writers_temp_files(path)
    with stop_signals_raise():
        with _temp_file(path, mode, **open_kwargs) as fh:
            yield fh


@contextlib.contextmanager
def _temp_file(path: Path, mode: str, **open_kwargs) -> Iterator[IO]:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{owner_tag()}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, mode, **open_kwargs) as fh:
            yield fh
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.filename:
            raise
        # A failed write (a full disk) names no file; the error must say which one.
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temp file in the same directory, then rename."""
    with open_atomic(path) as fh:
        fh.write(data)
    return Path(path)


def write_text_atomic(path: Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return write_bytes_atomic(path, text.encode("utf-8"))


HOST_TAG = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def owner_tag() -> str:
    """``<host hash>-<pid>`` of this process, for temp names whose writer must be recognisable later."""
    return f"{HOST_TAG}-{os.getpid()}"


def owner_is_dead(tag: str) -> bool:
    """True if ``<host>-<pid>`` names a process of this host that is no longer running."""
    host, _, pid = tag.partition("-")
    if host != HOST_TAG or not pid.isdigit():
        return False  # another machine's writer, or not a tag at all: leave its files alone
    return not owner_is_alive({"Host": socket.gethostname(), "Pid": int(pid)})


def remove_dead_writers_temp_files(path: Path) -> None:
    """Remove temp files of ``path`` left by writers that died before renaming them."""
    prefix = f".{path.name}."
    try:
        siblings = [p for p in os.scandir(path.parent) if p.name.startswith(prefix) and p.name.endswith(".tmp")]
    except OSError:
        return
    for entry in siblings:
        tag = entry.name[len(prefix):].split(".", 1)[0]
        if owner_is_dead(tag):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
