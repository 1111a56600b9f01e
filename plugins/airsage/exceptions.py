"""Exceptions airsage's tasks raise on purpose."""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowFailException


class PipelineExecutionFailed(AirflowFailException):
    """A pipeline execution ended Failed or Stopped.

    Not retried: retrying the wait would watch the same finished execution again. To run
    the pipeline again, clear the start task; it starts a fresh execution after a failure.
    The attributes feed the failure callback and the on-call runbook.
    """

    def __init__(self, execution: dict, reason: str, failed_steps: list[dict], steps_available: bool = True):
        self.execution = execution
        self.reason = reason
        self.failed_steps = failed_steps
        if failed_steps:
            steps = "; ".join(
                f"{s['name']} ({s.get('status') or 'Failed'}: {s.get('reason') or 'no step reason given'})"
                for s in failed_steps
            )
        elif steps_available:
            steps = "none reported as failed"
        else:
            steps = "not listed (ListPipelineExecutionSteps is unavailable on this endpoint)"
        super().__init__(
            f"Pipeline execution {execution.get('execution_arn')} ended {execution.get('status')}: {reason}. "
            f"Failing steps: {steps}. Console: {execution.get('console_url')}"
        )


class QualityGateFailed(AirflowFailException):
    """The model's metric failed the quality gate: the DAG run fails, after on-call was notified.

    Raised by ``alert_on_call`` only, so the failed task's name and this message
    (``quality gate: mse X > threshold Y``, or ``auc X < threshold Y`` for a ``>=`` gate) tell it
    apart from an infrastructure failure. Not retried (the metric does not change on retry), and
    the DAG's failure callback does not notify a second time for it.
    """

    def __init__(self, metric: str, value: float, threshold: float, comparison: str = "<="):
        from airsage.quality_gate import outcome_line

        self.metric = metric
        self.value = value
        self.threshold = threshold
        self.comparison = comparison
        super().__init__(f"quality gate: {outcome_line(metric, value, threshold, comparison)}")
