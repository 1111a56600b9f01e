"""MetricGateOperator: branch to the report when the metric is within the threshold."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseBranchOperator
from airflow.sdk.exceptions import AirflowFailException


class MetricGateOperator(BaseBranchOperator):
    """Follow ``pass_task_id`` when the metric passes the threshold, else ``fail_task_id``.

    ``comparison`` is the quality gate's (``airsage.quality_gate``): ``<=`` passes at or below the
    threshold (an error such as MSE), ``>=`` at or above it (accuracy, AUC). It mirrors the pipeline's
    own Condition on the same metric, so the DAG and the pipeline never disagree about a model.

    :param value: the metric (read_metrics' ``value``), templated.
    :param threshold: the threshold (the gate's DAG param), templated.
    :param comparison: ``<=`` or ``>=``.
    :param metric: the metric's name, for the log line.
    """

    template_fields: Sequence[str] = ("value", "threshold")
    ui_color = "#fff7cc"

    def __init__(self, *, value: Any, threshold: Any, pass_task_id: str, fail_task_id: str, comparison: str = "<=",
                 metric: str = "metric", **kwargs):
        super().__init__(**kwargs)
        from airsage.quality_gate import COMPARISONS

        if comparison not in COMPARISONS:
            raise ValueError(f"comparison must be '<=' or '>=', not {comparison!r}")
        self.value = value
        self.threshold = threshold
        self.pass_task_id = pass_task_id
        self.fail_task_id = fail_task_id
        self.comparison = comparison
        self.metric = metric

    def choose_branch(self, context) -> str:
        try:
            value, threshold = float(self.value), float(self.threshold)
        except (TypeError, ValueError):
            raise AirflowFailException(
                f"gate needs numbers; got value={self.value!r}, threshold={self.threshold!r}"
            ) from None
        if not (math.isfinite(value) and math.isfinite(threshold)):
            raise AirflowFailException(f"gate needs finite numbers; got value={value}, threshold={threshold}")
        from airsage.quality_gate import outcome_line, passes

        passed = passes(value, threshold, self.comparison)
        self.log.info("%s: %s", outcome_line(self.metric, value, threshold, self.comparison),
                      self.pass_task_id if passed else self.fail_task_id)
        return self.pass_task_id if passed else self.fail_task_id
