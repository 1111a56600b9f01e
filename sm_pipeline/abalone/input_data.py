"""The abalone input data rule: a labelled CSV whose label column is ``rings`` (``data/abalone.csv``).

The rule itself is generic (:mod:`sm_pipeline.labelled_csv`); the DAG file and ``run-local --stage-data``
take the label from here.
"""

from __future__ import annotations

from sm_pipeline.labelled_csv import batch_rows as _batch_rows

LABEL = "rings"


def batch_rows(data: bytes, source: str) -> tuple[bytes, int]:
    """The abalone CSV without its ``rings`` column, and the row count (see :mod:`sm_pipeline.labelled_csv`)."""
    return _batch_rows(data, source, LABEL)
