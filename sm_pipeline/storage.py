"""The local object root: ``s3://bucket/key`` lives at ``<root>/bucket/key``; ``file://`` URIs are local paths.

Every URI is validated before it becomes a path, so a definition or a parameter can never make the
local runner read or write outside the object root. All writes are atomic (temp name, then rename).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import uuid
from pathlib import Path
from urllib.parse import unquote

from sm_pipeline.errors import StorageError
from sm_pipeline.storage_io import owner_is_dead, owner_tag, stop_signals_raise, write_bytes_atomic

# S3's bucket naming rules (3-63 chars, lowercase letters, digits, dots, hyphens, alnum at both ends).
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_IP_ADDRESS_RE = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
# Line breaks and other control characters: no S3 key needs them, and they would split an error line.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")

# The local backend's object root when none is given (relative to the working directory).
DEFAULT_ROOT = Path(".airsage") / "objects"
# Names the runner uses for its own bookkeeping inside the root; never listed as objects.
INTERNAL_DIR = ".airsage"
_TEMP_MARKER = ".airsage-tmp-"


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """Split ``s3://bucket/key`` into a validated ``(bucket, key)``; the key may be empty (whole bucket)."""
    if not isinstance(uri, str):
        raise StorageError(f"{uri!r}: an S3 URI must be a string, not {type(uri).__name__}")
    if "\x00" in uri:
        raise StorageError(f"{uri!r}: URI contains a NUL character")
    control = _CONTROL_RE.search(uri)
    if control:
        raise StorageError(f"{uri!r}: URI contains a control character ({ascii(control.group())[1:-1]})")
    if not uri.startswith("s3://"):
        raise StorageError(f"{uri!r}: not an s3:// URI")
    rest = uri[len("s3://"):]
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise StorageError(f"{uri!r}: empty bucket name")
    if not _BUCKET_RE.fullmatch(bucket) or ".." in bucket or _IP_ADDRESS_RE.fullmatch(bucket):
        raise StorageError(
            f"{uri!r}: invalid bucket name {bucket!r} (3-63 lowercase letters, digits, dots or hyphens)"
        )
    _validate_key(uri, key)
    return bucket, key


def _validate_key(uri: str, key: str) -> None:
    if key.startswith("/"):
        raise StorageError(f"{uri!r}: object key {key!r} is absolute (starts with '/')")
    segments = key.split("/")
    if any(segment in ("..", ".") for segment in segments):
        raise StorageError(f"{uri!r}: object key {key!r} has a '.' or '..' segment")


class ObjectStore:
    """S3 semantics over a local directory: ``s3://bucket/key`` ↔ ``<root>/bucket/key``."""

    def __init__(self, root: Path | str):
        self.root = Path(root).resolve()

    def path_for(self, uri: str) -> Path:
        """The local path of an ``s3://`` or ``file://`` URI (validated; never outside the root for s3)."""
        if isinstance(uri, str) and uri.startswith("file://"):
            return self._file_path(uri)
        bucket, key = parse_s3_uri(uri)
        path = self.root / bucket / key if key else self.root / bucket
        # Symlinks inside the root could still point outside; the lexical check above is the contract,
        # this one keeps a hostile symlink from turning a valid key into an escape.
        resolved = Path(os.path.normpath(path))
        if resolved != self.root and self.root not in resolved.parents:
            raise StorageError(f"{uri!r}: resolves outside the object root {self.root}")
        return path

    @staticmethod
    def _file_path(uri: str) -> Path:
        if "\x00" in uri:
            raise StorageError(f"{uri!r}: URI contains a NUL character")
        rest = uri[len("file://"):]
        host, slash, path = rest.partition("/")
        if host not in ("", "localhost"):
            raise StorageError(f"{uri!r}: file URIs must be local (file:///path), not host {host!r}")
        path = unquote(slash + path)
        if not path.startswith("/"):
            raise StorageError(f"{uri!r}: file URI path must be absolute")
        if ".." in path.split("/"):
            raise StorageError(f"{uri!r}: file URI path has a '..' segment")
        return Path(path)

    def uri_for(self, path: Path | str) -> str:
        """The ``s3://`` URI of a path inside the root (the inverse of :meth:`path_for`)."""
        rel = Path(path).resolve().relative_to(self.root)
        parts = rel.parts
        if not parts:
            raise StorageError(f"{path}: the object root itself has no URI")
        return "s3://" + "/".join(parts)

    def put_bytes(self, uri: str, data: bytes) -> Path:
        """Write an object atomically; returns its path."""
        return write_bytes_atomic(self.path_for(uri), data)

    def put_file(self, uri: str, source: Path | str) -> Path:
        """Copy a local file to ``uri`` atomically (hard link when possible, so large data costs nothing)."""
        target = self.path_for(uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_path_beside(target)
        try:
            with stop_signals_raise():  # a copy can take a while: SIGTERM must not leave it behind
                link_or_copy(Path(source), tmp)
                os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return target

    def read_bytes(self, uri: str) -> bytes:
        """The content of one object; StorageError if it does not exist."""
        path = self.path_for(uri)
        if not path.is_file():
            raise StorageError(f"{uri}: no such object under {self.root}")
        return path.read_bytes()

    def exists(self, uri: str) -> bool:
        """True if ``uri`` is an object or a non-empty prefix."""
        path = self.path_for(uri)
        return path.is_file() or bool(self.list(uri))

    def list(self, prefix_uri: str) -> list[str]:
        """URIs of all objects whose key starts with the prefix (S3 string-prefix semantics), sorted."""
        return [uri for uri, _ in self.list_with_paths(prefix_uri)]

    def list_with_paths(self, prefix_uri: str) -> list[tuple[str, Path]]:
        """Like :meth:`list`, with each object's local path."""
        path = self.path_for(prefix_uri)
        if path.is_file():
            return [(prefix_uri, path)]
        found: list[tuple[str, Path]] = []
        if path.is_dir():
            base = prefix_uri.rstrip("/")
            for file in _walk_files(path):
                found.append((base + "/" + file.relative_to(path).as_posix(), file))
        if not prefix_uri.endswith("/") and path.parent.is_dir():
            # S3 prefixes are strings: s3://b/data/part matches data/part-1.csv and data/part2/x.csv too.
            stem = path.name
            base = prefix_uri[: len(prefix_uri) - len(stem)]
            for sibling in sorted(path.parent.iterdir()):
                if sibling.name == stem or not sibling.name.startswith(stem) or _is_internal(sibling.name):
                    continue
                if sibling.is_file():
                    found.append((base + sibling.name, sibling))
                elif sibling.is_dir():
                    for file in _walk_files(sibling):
                        found.append((base + sibling.name + "/" + file.relative_to(sibling).as_posix(), file))
        return sorted(found)

    def delete_prefix(self, prefix_uri: str) -> None:
        """Remove an object or everything under a directory-like prefix."""
        path = self.path_for(prefix_uri)
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def temp_path_beside(target: Path) -> Path:
    """A unique temporary name next to ``target`` that listings skip until it is renamed into place.

    The name ends in ``.<host>-<pid>.<random>`` so that :func:`remove_stale_temp_files` can tell
    a dead writer's leftovers from a live writer's work in progress.
    """
    return target.parent / f"{_TEMP_MARKER}{target.name}.{owner_tag()}.{uuid.uuid4().hex}"


def remove_stale_temp_files(root: Path) -> list[Path]:
    """Remove staging files and directories under ``root`` whose writer process is dead; returns them."""
    removed: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            if name.startswith(_TEMP_MARKER):
                tag = name.rsplit(".", 2)[-2] if name.count(".") >= 2 else ""
            elif name.startswith(".") and name.endswith(".tmp"):
                parts = name[:-len(".tmp")].rsplit(".", 2)
                tag = parts[-2] if len(parts) == 3 else ""
            else:
                continue
            if not owner_is_dead(tag):
                continue
            path = Path(dirpath) / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
        dirnames[:] = [d for d in dirnames if not d.startswith(_TEMP_MARKER)]
    return removed


def prepare_root(root: Path | str) -> Path:
    """The object root, created if missing; StorageError naming the path if it is not a usable directory."""
    path = Path(root)
    if path.exists() and not path.is_dir():
        raise StorageError(f"object root {path}: not a directory (it is a file)")
    probe = path / f".airsage-probe.{owner_tag()}.tmp"
    try:
        path.mkdir(parents=True, exist_ok=True)
        with open(probe, "wb") as fh:
            fh.write(b"x")
    except OSError as exc:
        raise StorageError(f"object root {path}: {os_error_text(exc)}") from None
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()
    return path.resolve()


def os_error_text(exc: OSError) -> str:
    """An OSError as one line: its condition, and the path when it names another one."""
    condition = exc.strerror or str(exc) or type(exc).__name__
    return f"{condition} ({exc.filename})" if exc.filename else condition


def _is_internal(name: str) -> bool:
    return name.startswith(_TEMP_MARKER) or name == INTERNAL_DIR or (name.startswith(".") and name.endswith(".tmp"))


def _walk_files(directory: Path) -> list[Path]:
    files = []
    for dirpath, dirnames, filenames in os.walk(directory):
        dirnames[:] = sorted(d for d in dirnames if not _is_internal(d))
        files.extend(Path(dirpath) / name for name in sorted(filenames) if not _is_internal(name))
    return files


def link_or_copy(source: Path, target: Path) -> None:
    """Hard-link ``source`` to ``target`` (no data copied); copy when linking is impossible."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
