"""A pipeline's quality gate: which metric it reads, where, and how it judges it.

One object says it for every task that touches the gate: ``read_metrics`` reads
``json_path`` from ``property_file`` of ``step``; ``gate`` branches with ``comparison``; the
report, the alert, the on-call payload and the failure message word the outcome with it; the
pipeline's own Fail steps (``fail_steps``, behind the pipeline's Condition on the same metric)
make a Failed execution an outcome rather than an error.

``comparison`` is ``<=`` (lower is better: an error such as MSE passes at or below the threshold)
or ``>=`` (higher is better: accuracy, AUC). Nothing here imports Airflow: the DAG factory checks
a gate against a definition (and an example evaluation report) when the DAG file is parsed.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

COMPARISONS = {"<=": ">", ">=": "<"}  # comparison → the symbol a failed value is shown with
_NAME = re.compile(r"^[A-Za-z0-9\-_]{1,256}$")
_PARAM = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


def passes(value: float, threshold: float, comparison: str) -> bool:
    """Whether ``value`` passes ``threshold`` under ``comparison`` (``<=`` or ``>=``)."""
    if comparison not in COMPARISONS:
        raise ValueError(f"comparison must be '<=' or '>=', not {comparison!r}")
    return value <= threshold if comparison == "<=" else value >= threshold


def outcome_line(metric: str, value: Any, threshold: Any, comparison: str) -> str:
    """``mse 4.2 <= threshold 6`` or ``mse 7.1 > threshold 6``: the comparison as it came out."""
    from airsage.numbers import readable

    try:
        passed = passes(float(value), float(threshold), comparison)
    except (TypeError, ValueError):
        passed = False
    symbol = comparison if passed else COMPARISONS.get(comparison, "?")
    return f"{metric} {readable(value)} {symbol} threshold {readable(threshold)}"


class GateConfigError(ValueError):
    """A quality gate does not fit its pipeline; the message is one line naming the field and the problem."""


@dataclass(frozen=True)
class QualityGate:
    """What a pipeline's quality gate reads and how it judges it.

    :param step: the step whose PropertyFile holds the metric (a Processing step).
    :param property_file: the PropertyFile's name (``PropertyFileName``) on that step.
    :param json_path: where the metric is in the file (``regression_metrics.mse.value``).
    :param metric: the metric's name as people read it (``mse``, ``auc``).
    :param comparison: ``<=`` (passes at or below the threshold) or ``>=`` (at or above it).
    :param threshold: the default threshold (the DAG param's default).
    :param threshold_param: the DAG param that carries the threshold (the trigger form's field).
    :param pipeline_parameter: the pipeline parameter the threshold is passed to (the pipeline's own
        Condition reads it), or None when the pipeline takes none.
    :param fail_steps: the pipeline's own quality-gate Fail steps: an execution that Failed only there
        failed the gate, it did not break.
    """

    step: str
    property_file: str
    json_path: str
    metric: str
    comparison: str = "<="
    threshold: float = 0.0
    threshold_param: str = "threshold"
    pipeline_parameter: str | None = None
    fail_steps: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fail_steps", tuple(self.fail_steps or ()))
        for what, value in (("step", self.step), ("property_file", self.property_file)):
            if not isinstance(value, str) or not _NAME.match(value):
                raise GateConfigError(f"quality gate {what} {value!r}: expected 1-256 letters, digits, '-' or '_'")
        from airsage.property_files import PropertyFileError, check_json_path

        try:
            check_json_path(self.json_path)
        except PropertyFileError as err:
            raise GateConfigError(f"quality gate json_path: {err}") from None
        if not isinstance(self.metric, str) or not self.metric.strip():
            raise GateConfigError(f"quality gate metric {self.metric!r}: expected a name such as 'mse' or 'auc'")
        if self.comparison not in COMPARISONS:
            raise GateConfigError(f"quality gate comparison {self.comparison!r}: expected '<=' (lower is better) "
                                  "or '>=' (higher is better)")
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, int | float) \
                or not math.isfinite(self.threshold):
            raise GateConfigError(f"quality gate threshold {self.threshold!r}: expected a finite number")
        if not isinstance(self.threshold_param, str) or not _PARAM.match(self.threshold_param):
            raise GateConfigError(f"quality gate threshold_param {self.threshold_param!r}: expected a DAG param "
                                  "name (letters, digits, '_')")
        if self.pipeline_parameter is not None and not (
                isinstance(self.pipeline_parameter, str) and _NAME.match(self.pipeline_parameter)):
            raise GateConfigError(f"quality gate pipeline_parameter {self.pipeline_parameter!r}: expected a "
                                  "pipeline parameter name or None")
        for name in self.fail_steps:
            if not isinstance(name, str) or not _NAME.match(name):
                raise GateConfigError(f"quality gate fail_steps: {name!r} is not a step name")

    # -- judging --------------------------------------------------------------------------
    def passes(self, value: float, threshold: float) -> bool:
        """Whether ``value`` passes against ``threshold`` (the same test as the pipeline's own Condition)."""
        return passes(value, threshold, self.comparison)

    def outcome_line(self, value: Any, threshold: Any) -> str:
        """``mse 4.2 <= threshold 6`` or ``mse 7.1 > threshold 6``."""
        return outcome_line(self.metric, value, threshold, self.comparison)

    def as_arguments(self) -> dict[str, Any]:
        """The gate as plain values (operator arguments, XCom): ``QualityGate(**gate.as_arguments())``."""
        values = asdict(self)
        values["fail_steps"] = list(self.fail_steps)
        return values

    # -- fitting the pipeline -----------------------------------------------------------------
    def definition_problems(self, definition: dict) -> list[str]:
        """Why this gate cannot work with ``definition`` (one line each); empty when it fits.

        The step exists and declares the PropertyFile on one of its outputs; every Fail step exists
        and is a Fail step; the pipeline declares ``pipeline_parameter``.
        """
        from airsage.property_files import PropertyFileError, property_file_location

        problems = []
        try:
            property_file_location(definition, self.step, self.property_file)
        except PropertyFileError as err:
            problems.append(f"quality gate: {err}")
        from sm_pipeline.step_graph import flatten_steps

        steps = {entry.name: entry.step for entry in flatten_steps(definition)}
        for name in self.fail_steps:
            if name not in steps:
                problems.append(f"quality gate fail_steps: step {name!r} is not in the pipeline definition "
                                f"(steps: {sorted(steps)})")
            elif steps[name].get("Type") != "Fail":
                problems.append(f"quality gate fail_steps: step {name!r} is a {steps[name].get('Type')} step, "
                                "not a Fail step")
        declared = {p.get("Name") for p in definition.get("Parameters") or [] if isinstance(p, dict)}
        if self.pipeline_parameter and self.pipeline_parameter not in declared:
            problems.append(f"quality gate pipeline_parameter: the pipeline declares no parameter "
                            f"{self.pipeline_parameter!r} (parameters: {sorted(filter(None, declared))})")
        return problems

    def report_problem(self, report: Any, where: str) -> str | None:
        """Why ``json_path`` gives no usable number in the evaluation report ``report`` (read from ``where``)."""
        from airsage.property_files import PropertyFileError, json_path_value, numeric_value

        try:
            numeric_value(json_path_value(report, self.json_path, where), self.json_path, where)
        except PropertyFileError as err:
            return f"quality gate json_path: {err}"
        return None

