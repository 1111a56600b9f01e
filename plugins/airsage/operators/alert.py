"""OnCallAlertOperator: a model failed the quality gate — record it, notify on-call, fail the run."""

from __future__ import annotations

import json
from typing import Any

from airsage.operators.report_outcome import ReportOutcomeOperator


class OnCallAlertOperator(ReportOutcomeOperator):
    """Write ``ALERT.json``, notify on-call, then fail with ``quality gate: <metric> X > threshold Y``.

    1. ``reports/ds=YYYY-MM-DD/run=<run id>/ALERT.json`` (the notification payload plus the
       evaluation report's location; raw numbers; what changed since the last good run, its lines in
       ``what_changed`` and the details in ``what_changed_detail``) and ``latest.json`` pointing at it;
    2. the on-call line in the task's main log (DAG, run, try, MSE, threshold, execution, link,
       failing steps);
    3. the notification through :class:`airsage.notifications.on_call.OnCallNotifier`
       (targets from the Variable ``airsage_on_call``; none configured is one log line);
    4. :class:`airsage.exceptions.QualityGateFailed`: the task and the DAG run end failed, the
       task is not retried, and the DAG's failure callback does not notify a second time.

    Parameters: see :class:`ReportOutcomeOperator`.
    """

    ui_color = "#fde8e8"

    def execute(self, context) -> dict[str, Any]:
        from airsage.exceptions import QualityGateFailed
        from airsage.hooks.artifact_store import ArtifactStore
        from airsage.notifications.on_call import OnCallNotifier, build_payload, on_call_line

        store = ArtifactStore(self.backend, self.aws_conn_id, self.local_root)
        execution = {k: self.metrics.get(k) for k in ("execution_arn", "console_url")}
        metric, value, threshold = self.metrics["metric"], float(self.metrics["value"]), float(self.threshold)
        failing = self.metrics.get("failed_steps") or []
        alert_uri = f"{self.run_prefix(context)}/ALERT.json"
        from airsage.naming import run_ds
        from airsage.what_changed import changes_since_last_good_run

        what_changed = changes_since_last_good_run(
            self.backend, store, self.report_prefix.rstrip("/").rsplit("/", 1)[0], run_ds(context),
            execution.get("execution_arn"), aws_conn_id=self.aws_conn_id, local_root=self.local_root, log=self.log)
        payload = build_payload(context, kind="quality_gate", metric=metric, value=value, threshold=threshold,
                                comparison=self.comparison,
                                failing_steps=failing, execution=execution, outcome_location=store.location(alert_uri),
                                what_changed=what_changed)
        record = {
            **payload,
            "console_url": execution["console_url"],
            "evaluation_report": self.metrics.get("report_location"),
            "pipeline_quality_gate_failed": self.metrics.get("quality_gate_failed"),
            "model_package_arn": self.metrics.get("model_package_arn"),
            "what_changed_detail": what_changed,
        }
        out = self.publish_outcome(store, context, "alert",
                                   {"ALERT.json": json.dumps(record, indent=2, sort_keys=True).encode()}, "ALERT.json")
        self.log.error("%s", on_call_line(payload))
        notifier = OnCallNotifier(aws_conn_id=self.aws_conn_id, payload=payload)
        notifier.notify(context)  # the connection id is rendered already: nothing to template
        self.log.error("Alert record: %s; notified: %s", out["location"], ", ".join(notifier.delivered) or "nobody")
        raise QualityGateFailed(metric, value, threshold, self.comparison)
