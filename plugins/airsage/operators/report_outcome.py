"""The base of the two tasks that record a run's outcome under ``reports/ds=YYYY-MM-DD/``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator


class ReportOutcomeOperator(BaseOperator):
    """Writes a run's outcome (report or alert) through the backend's artifact store.

    :param metrics: read_metrics' XCom dict.
    :param threshold: the MSE threshold the gate used (templated).
    :param report_prefix: ``s3://{bucket}/{prefix}/reports/ds=YYYY-MM-DD`` (templated).
    :param backend: ``sagemaker`` (S3 through the connection) or ``local`` (the object root).
    """

    template_fields: Sequence[str] = ("metrics", "threshold", "report_prefix", "backend", "aws_conn_id", "local_root")

    def __init__(self, *, metrics: dict | Any, threshold: Any, report_prefix: str, backend: str,
                 aws_conn_id: str | None = "aws_default", local_root: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.metrics = metrics
        self.threshold = threshold
        self.report_prefix = report_prefix
        self.backend = backend
        self.aws_conn_id = aws_conn_id
        self.local_root = local_root
