"""MetricGateOperator: branch to the report when the metric is within the threshold."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseBranchOperator
from airflow.sdk.exceptions import AirflowFailException


class MetricGateOperator(BaseBranchOperator):
    """Follow ``pass_task_id`` when ``value <= threshold``, else ``fail_task_id``.

    The comparison mirrors the pipeline's own ConditionLessThanOrEqualTo on MseThreshold,
    so the DAG and the pipeline never disagree about a model.

    :param value: the metric (read_metrics' ``value``), templated.
    :param threshold: the threshold (the ``mse_threshold`` DAG param), templated.
    """

    template_fields: Sequence[str] = ("value", "threshold")
    ui_color = "#fff7cc"

    def __init__(self, *, value: Any, threshold: Any, pass_task_id: str, fail_task_id: str, **kwargs):
        super().__init__(**kwargs)
        self.value = value
        self.threshold = threshold
        self.pass_task_id = pass_task_id
        self.fail_task_id = fail_task_id

    def choose_branch(self, context) -> str:
        try:
            value, threshold = float(self.value), float(self.threshold)
        except (TypeError, ValueError):
            raise AirflowFailException(
                f"gate needs numbers; got value={self.value!r}, threshold={self.threshold!r}"
            ) from None
        if not (math.isfinite(value) and math.isfinite(threshold)):
            raise AirflowFailException(f"gate needs finite numbers; got value={value}, threshold={threshold}")
        from airsage.numbers import readable

        passed = value <= threshold
        self.log.info("metric %s %s threshold %s: %s", readable(value), "<=" if passed else ">", readable(threshold),
                      self.pass_task_id if passed else self.fail_task_id)
        return self.pass_task_id if passed else self.fail_task_id
