"""OnCallAlertOperator: record a model that failed the gate, for the on-call engineer."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator


class OnCallAlertOperator(BaseOperator):
    """Log an ERROR line and write ``ALERT.json`` (metric, threshold, execution link).

    The task itself succeeds: the alert is the outcome. Hook a notifier (Slack, PagerDuty)
    to this task's ``on_success_callback`` to page someone.

    :param metrics: read_metrics' XCom dict.
    :param report_prefix: ``s3://{bucket}/{prefix}/reports/ds=YYYY-MM-DD`` (templated).
    """

    template_fields: Sequence[str] = ("metrics", "threshold", "report_prefix", "backend", "aws_conn_id", "local_root")
    ui_color = "#fde8e8"

    def __init__(self, *, metrics: dict | Any, threshold: Any, report_prefix: str, backend: str,
                 aws_conn_id: str | None = "aws_default", local_root: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.metrics = metrics
        self.threshold = threshold
        self.report_prefix = report_prefix
        self.backend = backend
        self.aws_conn_id = aws_conn_id
        self.local_root = local_root

    def execute(self, context) -> dict[str, Any]:
        from airsage.hooks.artifact_store import ArtifactStore

        alert = {
            "ds": context["ds"],
            "dag_id": context["dag"].dag_id,
            "run_id": context["run_id"],
            "metric": self.metrics["metric"],
            "value": self.metrics["value"],
            "threshold": float(self.threshold),
            "execution_arn": self.metrics.get("execution_arn"),
            "console_url": self.metrics.get("console_url"),
            "evaluation_report": self.metrics.get("report_location"),
            "pipeline_quality_gate_failed": self.metrics.get("quality_gate_failed"),
        }
        uri = f"{self.report_prefix.rstrip('/')}/ALERT.json"
        store = ArtifactStore(self.backend, self.aws_conn_id, self.local_root)
        store.put_if_changed(uri, json.dumps(alert, indent=2, sort_keys=True).encode(), "application/json")
        self.log.error(
            "ON-CALL: %s %.4f is above the threshold %s for ds=%s; no report published. Execution: %s. Alert: %s",
            alert["metric"], alert["value"], alert["threshold"], alert["ds"], alert["console_url"],
            store.location(uri),
        )
        return {**alert, "alert_uri": uri, "alert_location": store.location(uri)}
