"""Atomic file writes: a reader never sees a half-written file under the final name.

Temporary names carry their writer (``.<name>.<host>-<pid>.<random>.tmp``): a writer killed before it
could clean up (SIGKILL, a machine crash) leaves its temp file behind, and the next write of the same
file removes it once that writer's process is certainly gone (same host, pid not running).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

# mkstemp creates files 0600; a published file should get the mode a plain open() would give.
_UMASK = os.umask(0)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK


@contextlib.contextmanager
def open_atomic(path: Path, mode: str = "wb", **open_kwargs) -> Iterator[IO]:
    """A file opened under a temp name beside ``path``, renamed to ``path`` only if the block completes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_writers_temp_files(path)
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
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError):
        return False
    return False


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
