"""OnCallAlertOperator: record a model that failed the gate, for the on-call engineer."""

from __future__ import annotations

import json
from typing import Any

from airsage.operators.report_outcome import ReportOutcomeOperator


class OnCallAlertOperator(ReportOutcomeOperator):
    """Log an ERROR line and write ``ALERT.json`` (metric, threshold, execution link).

    The task itself succeeds: the alert is the outcome. Hook a notifier (Slack, PagerDuty)
    to this task's ``on_success_callback`` to page someone.

    Parameters: see :class:`ReportOutcomeOperator`.
    """

    ui_color = "#fde8e8"

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
