"""S3 at the service's endpoint: moto's S3, with the object root as the one place objects live.

Clients speak to moto's S3 (the whole protocol: multipart, listings, copies, presigned URLs...), while
the local runner reads and writes plain files under the object root (``s3://bucket/key`` is
``<root>/bucket/key``, hard links, atomic renames). ``ObjectRootS3`` keeps the two the same by
syncing at every S3 request, under one lock:

- before a request, moto's view of what it touches (a key, a prefix, a bucket, the bucket list) is
  brought up to date from the files: a new or changed file becomes a key that reads from the file (no
  copy in memory), a file that disappeared removes its key;
- after a request that may change objects, what changed in moto is written through: a new key's bytes
  are written to its file atomically, a deleted key's file is removed, created/deleted buckets become
  directories.

Changes are recognised by identity (moto creates a new key object for every write) and by file
signature (inode, size, mtime), never by comparing contents. The files are the truth: on a restart
moto starts empty and every object is read back from the root. A key that cannot be a file under the
root (a ``.``/``..`` segment, a key ending in ``/``, a key that is also another key's "directory") is
refused with an S3 error instead of being kept only in memory.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote
from xml.sax.saxutils import escape

from sm_pipeline.errors import StorageError
from sm_pipeline.storage import ObjectStore, _is_internal, parse_s3_uri
from sm_pipeline.storage_io import write_bytes_atomic

log = logging.getLogger("sm_pipeline.service.s3")

_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Query parameters of a bucket listing (ListObjects, ListObjectsV2, ListObjectVersions, ListMultipartUploads).
_LIST_PARAMETERS = frozenset({"list-type", "prefix", "delimiter", "marker", "continuation-token", "start-after",
                              "max-keys", "encoding-type", "fetch-owner", "versions", "key-marker",
                              "version-id-marker", "uploads", "upload-id-marker", "max-uploads",
                              "optional-object-attributes"})
# Sub-resources of a key that change its metadata only (tags, ACL, retention): no bytes to write through.
_METADATA_SUBRESOURCES = frozenset({"tagging", "acl", "retention", "legal-hold", "restore"})


def _signature(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _file_key_class():
    """A moto FakeKey whose bytes are read from a file of the object root (built lazily: moto is heavy)."""
    from moto.s3.models import FakeKey

    class FileKey(FakeKey):
        """An object that lives in the object root: size, mtime and bytes come from its file."""

        def __init__(self, path: Path, signature: tuple[int, int, int], **kwargs: Any):
            self._path: Path | None = None  # set after FakeKey stored its (empty) in-memory value
            super().__init__(value=b"", **kwargs)
            self._path = path
            self.contentsize = signature[1]
            self.last_modified = datetime.fromtimestamp(signature[2] / 1e9, UTC).replace(tzinfo=None)

        @property
        def value(self) -> bytes:  # type: ignore[override]
            if self._path is None:
                return FakeKey.value.fget(self)
            try:
                return self._path.read_bytes()
            except OSError:
                return b""  # removed since the last sync; the next request drops the key

        @value.setter
        def value(self, new_value: bytes) -> None:
            FakeKey.value.fset(self, new_value)

        @property
        def etag(self) -> str:  # type: ignore[override]
            if self._etag is None and self._path is not None:
                md5 = hashlib.md5(usedforsecurity=False)
                try:
                    with open(self._path, "rb") as fh:
                        for block in iter(lambda: fh.read(16 * 1024 * 1024), b""):
                            md5.update(block)
                except OSError:
                    pass
                self._etag = md5.hexdigest()
            return FakeKey.etag.fget(self)

    return FileKey


class ObjectRootS3:
    """WSGI wrapper around moto's S3 app that keeps moto and the object root in sync."""

    def __init__(self, root: Path, region: str):
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.s3.models import s3_backends

        self.store = ObjectStore(root)
        self.region = region
        self.backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
        self._file_key = _file_key_class()
        self._lock = threading.RLock()
        # (bucket, key) -> (the moto key object last synced, the file signature then)
        self._synced: dict[tuple[str, str], tuple[Any, tuple[int, int, int]]] = {}
        self._known_buckets: set[str] = set()

    # ---- WSGI -----------------------------------------------------------------------------------
    def call(self, app, environ: dict, start_response):
        """Serve one S3 request with moto's ``app``, syncing the object root around it."""
        method = environ.get("REQUEST_METHOD", "GET").upper()
        bucket, key = _bucket_and_key(environ)
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        if bucket and key is not None and method in ("PUT", "POST") and not (_METADATA_SUBRESOURCES & set(query)):
            problem = self._unstorable(bucket, key)
            if problem:
                return _s3_error(start_response, "InvalidArgument", problem, f"/{bucket}/{key}")
        with self._lock:
            self._pull_for(method, bucket, key, query, environ)
            captured: dict[str, Any] = {}

            def capture(status, headers, exc_info=None):
                captured["args"] = (status, headers, exc_info)
                return lambda data: None  # moto's Flask app never writes through this

            body = app(environ, capture)
            if method not in _READ_METHODS:
                self.push()
        status, headers, exc_info = captured["args"]
        start_response(status, headers, exc_info) if exc_info else start_response(status, headers)
        return body

    # ---- files -> moto --------------------------------------------------------------------------
    def _pull_for(self, method: str, bucket: str | None, key: str | None, query: dict, environ: dict) -> None:
        self.pull_buckets()
        copy_source = environ.get("HTTP_X_AMZ_COPY_SOURCE")
        if copy_source:
            source = unquote(copy_source.split("?", 1)[0]).lstrip("/")
            source_bucket, _, source_key = source.partition("/")
            if source_bucket in self.backend.buckets and source_key:
                self.pull_key(source_bucket, source_key)
        if bucket is None or bucket not in self.backend.buckets:
            return
        if key:
            self.pull_key(bucket, key)
        elif method == "GET" and set(query) <= _LIST_PARAMETERS:  # a listing: only the listed prefix
            self.pull_prefix(bucket, (query.get("prefix") or [""])[0])
        elif (method == "POST" and "delete" in query) or (method == "DELETE" and not query):
            self.pull_prefix(bucket, "")  # DeleteObjects names keys in its body; DeleteBucket needs all
        # other bucket-level calls (HeadBucket, ?location, ?versioning, ...) touch no object

    def pull_buckets(self) -> None:
        """Make every bucket directory of the root a bucket in moto."""
        root = self.store.root
        names = [p.name for p in root.iterdir() if p.is_dir() and _is_bucket_name(p.name)] if root.is_dir() else []
        for name in names:
            if name not in self.backend.buckets:
                try:
                    self.backend.create_bucket(name, self.region)
                except Exception as exc:  # a name moto refuses, or one another account holds
                    log.warning("object root directory %s is not served as a bucket: %s", name, exc)
                    continue
            self._known_buckets.add(name)

    def pull_key(self, bucket: str, key: str) -> None:
        """Bring one key of moto up to date with its file."""
        try:
            path = self.store.path_for(f"s3://{bucket}/{key}")
        except StorageError:
            return
        self._pull_one(bucket, key, path if path.is_file() else None)

    def pull_prefix(self, bucket: str, prefix: str) -> None:
        """Bring every key of ``bucket`` starting with ``prefix`` up to date with the files."""
        directory = self.store.root / bucket
        stem = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = directory / stem if stem else directory
        files: dict[str, Path] = {}
        if start.is_dir() and _inside(start, directory):
            for dirpath, dirnames, filenames in os.walk(start):
                dirnames[:] = [d for d in dirnames if not _is_internal(d)]
                for filename in filenames:
                    if _is_internal(filename):
                        continue
                    path = Path(dirpath) / filename
                    key = path.relative_to(directory).as_posix()
                    if key.startswith(prefix):
                        files[key] = path
        bucket_keys = self.backend.buckets[bucket].keys
        for key in [k for k in list(bucket_keys.keys()) if k.startswith(prefix) and k not in files]:
            self._pull_one(bucket, key, None)
        for key, path in files.items():
            self._pull_one(bucket, key, path)

    def _pull_one(self, bucket: str, key: str, path: Path | None) -> None:
        keys = self.backend.buckets[bucket].keys
        current = keys.get(key)
        synced = self._synced.get((bucket, key))
        signature = _signature(path) if path is not None else None
        if signature is None:
            if current is not None and _is_object(current):
                keys.pop(key)  # the file is gone: so is the object
            self._synced.pop((bucket, key), None)
            return
        if synced is not None and synced[0] is current and synced[1] == signature:
            return  # moto already serves this very file
        new = self._file_key(path, signature, name=key, bucket_name=bucket,
                             account_id=self.backend.account_id, region_name=self.region)
        keys.setlist(key, [new])
        self._synced[(bucket, key)] = (new, signature)

    # ---- moto -> files --------------------------------------------------------------------------
    def push(self) -> None:
        """Write what changed in moto to the object root (new keys, deleted keys, buckets)."""
        buckets = dict(self.backend.buckets)
        for name in buckets:
            if name not in self._known_buckets and _is_bucket_name(name):
                (self.store.root / name).mkdir(parents=True, exist_ok=True)
                self._known_buckets.add(name)
        for name in [b for b in self._known_buckets if b not in buckets]:
            _remove_empty_tree(self.store.root / name)
            self._known_buckets.discard(name)
        seen: set[tuple[str, str]] = set()
        for name, bucket in buckets.items():
            for key, current in list(bucket.keys.items()):
                if not _is_object(current):
                    continue
                seen.add((name, key))
                synced = self._synced.get((name, key))
                if synced is not None and synced[0] is current:
                    continue
                self._write_through(name, key, current)
        for bucket_key in [k for k in self._synced if k not in seen]:
            self._delete_through(*bucket_key)

    def _write_through(self, bucket: str, key: str, current) -> None:
        problem = self._unstorable(bucket, key)
        if problem:
            # Reached moto without a key in the request line (a browser POST form): keep it out.
            log.warning("dropping s3://%s/%s: %s", bucket, key, problem)
            self.backend.buckets[bucket].keys.pop(key)
            return
        path = self.store.path_for(f"s3://{bucket}/{key}")
        write_bytes_atomic(path, current.value)
        self._synced[(bucket, key)] = (current, _signature(path))

    def _delete_through(self, bucket: str, key: str) -> None:
        self._synced.pop((bucket, key), None)
        try:
            path = self.store.path_for(f"s3://{bucket}/{key}")
        except StorageError:
            return
        path.unlink(missing_ok=True)
        _prune_empty_parents(path.parent, self.store.root / bucket)

    def _unstorable(self, bucket: str, key: str) -> str | None:
        """Why ``s3://bucket/key`` cannot be a file under the object root (None if it can)."""
        if not key or key.endswith("/"):
            return (f"key {key!r} ends with '/': the emulated S3 keeps objects as files under its object root, "
                    "where a folder marker cannot be stored")
        try:
            parse_s3_uri(f"s3://{bucket}/{key}")
            path = self.store.path_for(f"s3://{bucket}/{key}")
        except StorageError as exc:
            return f"key {key!r} cannot be stored in the emulated S3's object root: {exc}"
        if path.is_dir():
            return (f"key {key!r} is also the prefix of other keys (s3://{bucket}/{key}/...); the emulated S3 keeps "
                    "objects as files under its object root, so one name cannot be both an object and a 'directory'")
        bucket_dir = self.store.root / bucket
        for parent in path.parents:
            if parent == bucket_dir or bucket_dir not in parent.parents:
                break
            if parent.is_file():
                other = parent.relative_to(bucket_dir).as_posix()
                return (f"key {key!r} would be inside object {other!r}; the emulated S3 keeps objects as files "
                        "under its object root, so one name cannot be both an object and a 'directory'")
        return None


def _is_object(value) -> bool:
    from moto.s3.models import FakeKey

    return isinstance(value, FakeKey)


def _is_bucket_name(name: str) -> bool:
    try:
        parse_s3_uri(f"s3://{name}")
    except StorageError:
        return False
    return True


def _inside(path: Path, base: Path) -> bool:
    resolved, base = path.resolve(), base.resolve()
    return resolved == base or base in resolved.parents


def _prune_empty_parents(directory: Path, stop: Path) -> None:
    while directory != stop and stop in directory.parents:
        try:
            directory.rmdir()
        except OSError:
            return
        directory = directory.parent


def _remove_empty_tree(directory: Path) -> None:
    if not directory.is_dir():
        return
    for dirpath, _, _ in sorted(os.walk(directory), key=lambda entry: len(entry[0]), reverse=True):
        try:
            Path(dirpath).rmdir()
        except OSError:
            pass  # not empty: something still lives there, so the directory stays


def _bucket_and_key(environ: dict) -> tuple[str | None, str | None]:
    """The bucket and key a request addresses, by the rules moto uses (path style or virtual host)."""
    from moto.s3.responses import S3Response
    from moto.s3.utils import bucket_name_from_url
    from werkzeug.wrappers import Request

    request = Request(environ, populate_request=False, shallow=True)
    path = environ.get("PATH_INFO", "")
    try:  # WSGI hands the path over as latin-1; S3 keys are UTF-8
        path = path.encode("latin-1").decode("utf-8")
    except UnicodeError:
        pass
    if S3Response.subdomain_based_buckets(request):
        bucket = bucket_name_from_url(request.url)
        key = path.lstrip("/")
        return bucket, key or None
    parts = path.lstrip("/").split("/", 1)
    bucket = parts[0] or None
    key = parts[1] if len(parts) > 1 else None
    return bucket, key or None


def _s3_error(start_response, code: str, message: str, resource: str):
    body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
            f"<Resource>{escape(resource)}</Resource><RequestId>{uuid.uuid4()}</RequestId></Error>").encode()
    start_response("400 Bad Request", [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
    return [body]
