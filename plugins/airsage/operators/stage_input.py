"""StageInputOperator: the logical date's input partition of a labelled CSV, written once per content.

This is the default stage step of the DAG factory; any operator can take its place (a team's own
extract, a Spark job, a copy from a feature store) if its XCom follows the stage contract::

    {"parameters": {"<pipeline parameter>": "<value, e.g. the staged s3:// URI>", ...},
     "hashes":     {"<what, e.g. input data>": "<sha256 of the staged bytes>", ...}}

``parameters`` are passed to the pipeline execution; ``hashes`` are part of the execution's inputs
fingerprint (``airsage.execution_inputs``), so a date re-run with the same data re-attaches and new
data starts a new execution.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from airsage.naming import run_ds


class StageInputOperator(BaseOperator):
    """Copy the source CSV to the date's input partition and, optionally, derive its batch rows.

    Both writes are skipped when identical bytes are already there, so re-running a date
    changes nothing. The target URIs must name this run's ``ds``: a template mistake can
    then never overwrite another date's partition.

    :param source: local path or ``s3://`` URI of the labelled CSV (templated).
    :param input_uri: target of the labelled rows (templated, must contain ``ds=<ds>``).
    :param input_parameter: the pipeline parameter that receives ``input_uri``.
    :param batch_uri: target of the rows without the label column (templated, must contain ``ds=<ds>``),
        or None to stage no batch rows.
    :param batch_parameter: the pipeline parameter that receives ``batch_uri``.
    :param label_column: the CSV's label column (required with ``batch_uri``; checked either way when given).
    :param backend: ``sagemaker`` (S3) or ``local`` (the object root).

    Returns the stage contract (``parameters``, ``hashes``: ``input data`` and ``batch data``) plus
    ``input_uri``, ``batch_uri``, ``rows`` and ``changed``.
    """

    template_fields: Sequence[str] = ("source", "input_uri", "batch_uri", "backend", "aws_conn_id", "local_root")
    ui_color = "#e8f4fd"

    def __init__(self, *, source: str, input_uri: str, backend: str, input_parameter: str = "InputData",
                 batch_uri: str | None = None, batch_parameter: str | None = "BatchData",
                 label_column: str | None = None, aws_conn_id: str | None = "aws_default",
                 local_root: str | None = None, **kwargs):
        super().__init__(**kwargs)
        if batch_uri is not None and not label_column:
            raise ValueError("stage_input: batch_uri needs label_column (the column the batch rows leave out)")
        self.source = source
        self.input_uri = input_uri
        self.input_parameter = input_parameter
        self.batch_uri = batch_uri
        self.batch_parameter = batch_parameter
        self.label_column = label_column
        self.backend = backend
        self.aws_conn_id = aws_conn_id
        self.local_root = local_root

    def execute(self, context) -> dict[str, Any]:
        from airsage.hooks.artifact_store import ArtifactNotFound, ArtifactStore
        from sm_pipeline.errors import StorageError
        from sm_pipeline.labelled_csv import batch_rows

        ds = run_ds(context)
        targets = [uri for uri in (self.input_uri, self.batch_uri) if uri is not None]
        for uri in targets:
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
            batch, rows = batch_rows(data, self.source, self.label_column) if self.label_column else (None, None)
        except (ArtifactNotFound, StorageError, ValueError) as err:
            # a bad source URI or file does not get better on retry, on either backend
            raise AirflowFailException(f"source data for ds={ds}: {err}") from None

        parameters = {self.input_parameter: self.input_uri}
        hashes = {"input data": hashlib.sha256(data).hexdigest()}
        changed = store.put_if_changed(self.input_uri, data, "text/csv")
        lines = [f"{'wrote' if changed else 'unchanged'} {self.input_uri}"]
        if self.batch_uri is not None:
            wrote_batch = store.put_if_changed(self.batch_uri, batch, "text/csv")
            changed = changed or wrote_batch
            hashes["batch data"] = hashlib.sha256(batch).hexdigest()
            if self.batch_parameter:
                parameters[self.batch_parameter] = self.batch_uri
            lines.append(f"{'wrote' if wrote_batch else 'unchanged'} {self.batch_uri}")
        self.log.info("Staged %s rows for ds=%s (sha256 %s): %s", rows if rows is not None else "the",
                      ds, hashes["input data"][:16], ", ".join(lines))
        # separate keys too: `stage_input.output["input_uri"]` in a DAG means XCom key input_uri
        context["ti"].xcom_push(key="input_uri", value=self.input_uri)
        context["ti"].xcom_push(key="batch_uri", value=self.batch_uri)
        from airsage.assets import emit

        self._lineage = {"source": self.source, "outputs": targets}
        emit(context, self.outlets, "input-partition",
             {"ds": ds, "uri": self.input_uri, "batch_uri": self.batch_uri, "hashes": hashes})
        return {"parameters": parameters, "hashes": hashes, "input_uri": self.input_uri, "batch_uri": self.batch_uri,
                "rows": rows, "changed": changed}

    def get_openlineage_facets_on_complete(self, task_instance):
        """OpenLineage (the provider calls it): the source file or object in, the date's partition out."""
        from airsage.lineage import operator_lineage, s3_datasets, source_dataset

        info = getattr(self, "_lineage", None) or {}
        if not info:
            return operator_lineage()
        return operator_lineage(inputs=[source_dataset(info["source"])], outputs=s3_datasets(info["outputs"]))
