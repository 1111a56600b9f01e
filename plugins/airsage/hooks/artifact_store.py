"""ArtifactStore: one read/write interface over S3 (via S3Hook) or the local object root.

This is the resource swap that lets every task other than start/wait be written once: the
SageMaker backend reads and writes real S3 (or the moto server), the local backend the same
``s3://bucket/key`` URIs mapped into ``<root>/bucket/key`` by ``sm_pipeline.storage``.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

BACKENDS = ("sagemaker", "local")


class ArtifactNotFound(FileNotFoundError):
    """The object a task needs is not there; the message names the URI."""


class ArtifactStore:
    """Bytes in and out of ``s3://`` URIs, on S3 or in a local object root."""

    def __init__(self, backend: str, aws_conn_id: str | None = "aws_default", local_root: str | None = None):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if backend == "local" and not local_root:
            raise ValueError("the local backend needs local_root (the object root directory)")
        self.backend = backend
        self.aws_conn_id = aws_conn_id
        self.local_root = local_root

    @cached_property
    def _local(self):
        from sm_pipeline.storage import ObjectStore

        return ObjectStore(Path(self.local_root))

    @cached_property
    def _s3(self):
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from airsage.aws_errors import classify_errors

        hook = S3Hook(aws_conn_id=self.aws_conn_id)
        # The hook's one cached client (get_conn() returns it): a permanent error fails the task at once.
        classify_errors(hook.conn, self.aws_conn_id)
        return hook

    @staticmethod
    def _split(uri: str) -> tuple[str, str]:
        # the same validation the local object root applies, so both backends reject alike
        from sm_pipeline.errors import StorageError
        from sm_pipeline.storage import parse_s3_uri

        bucket, key = parse_s3_uri(uri)
        if not key or key.endswith("/"):
            raise StorageError(f"{uri!r}: not an s3://bucket/key object URI")
        return bucket, key

    def location(self, uri: str) -> str:
        """Where a person finds the object: the URI on S3, the file path locally."""
        return uri if self.backend == "sagemaker" else str(self._local.path_for(uri))

    def exists(self, uri: str) -> bool:
        """True when the object exists."""
        if self.backend == "local":
            return self._local.exists(uri)
        bucket, key = self._split(uri)
        return self._s3.check_for_key(key, bucket_name=bucket)

    def list_uris(self, prefix_uri: str) -> list[str]:
        """URIs of the objects whose key starts with the prefix (S3 string-prefix semantics), sorted."""
        if self.backend == "local":
            return self._local.list(prefix_uri)
        from sm_pipeline.storage import parse_s3_uri

        bucket, prefix = parse_s3_uri(prefix_uri)
        return sorted(f"s3://{bucket}/{key}" for key in self._s3.list_keys(bucket_name=bucket, prefix=prefix) or [])

    def read_bytes(self, uri: str) -> bytes:
        """The object's bytes; ArtifactNotFound naming the URI when it is missing."""
        if self.backend == "local":
            if not self._local.exists(uri):
                raise ArtifactNotFound(f"{uri} does not exist (local object root {self.local_root})")
            return self._local.read_bytes(uri)
        bucket, key = self._split(uri)
        from botocore.exceptions import ClientError

        try:
            return self._s3.get_conn().get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as err:
            # A missing bucket is not a missing object: it is permanent (airsage.aws_errors) and says so.
            if err.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise ArtifactNotFound(f"{uri} does not exist") from None
            raise

    def put_bytes(self, uri: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        """Write the object (atomic locally; an S3 PUT is atomic by itself)."""
        if self.backend == "local":
            self._local.put_bytes(uri, data)
            return
        bucket, key = self._split(uri)
        self._s3.get_conn().put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)

    def delete(self, uri: str) -> bool:
        """Remove the object if it exists; True when something was removed."""
        if self.backend == "local":
            path = self._local.path_for(uri)
            try:
                path.unlink()
            except FileNotFoundError:
                return False
            return True
        bucket, key = self._split(uri)
        if not self._s3.check_for_key(key, bucket_name=bucket):
            return False
        self._s3.get_conn().delete_object(Bucket=bucket, Key=key)
        return True

    def put_if_changed(self, uri: str, data: bytes, content_type: str = "application/octet-stream") -> bool:
        """Write only when the stored bytes differ; True when something was written.

        Keeps re-runs from touching objects (mtime, S3 versions, event notifications).
        """
        # one GET, not HEAD + GET; the bytes are compared as they are
        try:
            if self.read_bytes(uri) == data:
                return False
        except ArtifactNotFound:
            pass
        self.put_bytes(uri, data, content_type)
        return True
