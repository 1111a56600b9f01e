"""StageInputOperator: the logical date's input partition, written once per content."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from airsage.naming import run_ds


def batch_rows(data: bytes, source: str) -> tuple[bytes, int]:
    """The CSV without its label column and the row count: :func:`sm_pipeline.input_data.batch_rows`.

    The rule lives in sm_pipeline so that ``run-local --stage-data`` accepts exactly what this task does.
    """
    from sm_pipeline.input_data import batch_rows as derive  # sm_pipeline is imported lazily in plugins

    return derive(data, source)


class StageInputOperator(BaseOperator):
    """Copy the source CSV to ``input/ds=YYYY-MM-DD/`` and derive ``batch/ds=YYYY-MM-DD/``.

    Both writes are skipped when identical bytes are already there, so re-running a date
    changes nothing. The target URIs must name this run's ``ds``: a template mistake can
    then never overwrite another date's partition.

    :param source: local path or ``s3://`` URI of the labelled abalone CSV.
    :param input_uri: target of the labelled rows (templated, must contain ``ds=<ds>``).
    :param batch_uri: target of the rows without the label (templated, must contain ``ds=<ds>``).
    :param backend: ``sagemaker`` (S3) or ``local`` (the object root).

    Returns ``{"input_uri", "batch_uri", "sha256", "batch_sha256", "rows", "changed"}``; the two
    hashes are part of the execution's inputs fingerprint (``airsage.execution_inputs``).
    """

    template_fields: Sequence[str] = ("source", "input_uri", "batch_uri", "backend", "aws_conn_id", "local_root")
    ui_color = "#e8f4fd"

    def __init__(self, *, source: str, input_uri: str, batch_uri: str, backend: str,
                 aws_conn_id: str | None = "aws_default", local_root: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.source = source
        self.input_uri = input_uri
        self.batch_uri = batch_uri
        self.backend = backend
        self.aws_conn_id = aws_conn_id
        self.local_root = local_root

    def execute(self, context) -> dict[str, Any]:
        from airsage.hooks.artifact_store import ArtifactNotFound, ArtifactStore
        from sm_pipeline.errors import StorageError

        ds = run_ds(context)
        for uri in (self.input_uri, self.batch_uri):
            if f"ds={ds}/" not in uri:
                raise AirflowFailException(f"target {uri} is not in this run's partition ds={ds}/")
        store = ArtifactStore(self.backend, self.aws_conn_id, self.local_root)
        try:
            if self.source.startswith("s3://"):
                data = store.read_bytes(self.source)
            else:
                path = Path(self.source)
                if not path.is_file():
                    raise ArtifactNotFound(f"{self.source} does not exist or is not a file")
                data = path.read_bytes()
            batch, rows = batch_rows(data, self.source)
        except (ArtifactNotFound, StorageError, ValueError) as err:
            # a bad source URI or file does not get better on retry, on either backend
            raise AirflowFailException(f"source data for ds={ds}: {err}") from None

        wrote_input = store.put_if_changed(self.input_uri, data, "text/csv")
        wrote_batch = store.put_if_changed(self.batch_uri, batch, "text/csv")
        digest = hashlib.sha256(data).hexdigest()
        batch_digest = hashlib.sha256(batch).hexdigest()
        self.log.info(
            "Staged %d rows for ds=%s (sha256 %s): %s %s, %s %s", rows, ds, digest[:16],
            "wrote" if wrote_input else "unchanged", self.input_uri,
            "wrote" if wrote_batch else "unchanged", self.batch_uri,
        )
        # separate keys too: `stage_input.output["input_uri"]` in a DAG means XCom key input_uri
        context["ti"].xcom_push(key="input_uri", value=self.input_uri)
        context["ti"].xcom_push(key="batch_uri", value=self.batch_uri)
        return {
            "input_uri": self.input_uri,
            "batch_uri": self.batch_uri,
            "sha256": digest,
            "batch_sha256": batch_digest,
            "rows": rows,
            "changed": wrote_input or wrote_batch,
        }
