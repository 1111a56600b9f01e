"""The on-call path: what is sent (payload, message, one log line), where to (Variable), and the notifier.

Configuration: the Airflow Variable ``airsage_on_call``, a JSON object with the optional keys
``webhook_url`` (the payload is POSTed there as JSON), ``sns_topic_arn`` (the message is
published there) and ``aws_conn_id`` (for SNS; default: the DAG's AWS connection). It is read
when a notification is sent. Without it, the failure is only logged (one line, not an error).

Payload keys: ``kind`` ("quality_gate" | "task_failure"), ``dag_id``, ``run_id``, ``logical_date``,
``ds``, ``task_id``, ``try_number``, ``metric`` (the quality gate's metric name), ``value`` (its value),
``threshold``, ``comparison`` (``<=`` or ``>=``), ``failing_steps`` (step names), ``execution_arn``,
``execution_link``, ``error``, ``outcome_location``, ``what_changed`` (lines: what changed since the last good
run, ``airsage.what_changed``; None when not known), ``message`` (the same facts as text, numbers to 4
significant digits). Raw numbers stay raw in ``value``/``threshold``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from airflow.sdk.bases.notifier import BaseNotifier

from airsage.numbers import readable

VARIABLE = "airsage_on_call"
KINDS = ("quality_gate", "task_failure")
KNOWN_KEYS = ("webhook_url", "sns_topic_arn", "aws_conn_id")
# the task ids the DAG factory gives the execution tasks and the metric's reader
EXECUTION_TASKS = ("wait_for_execution", "start_execution", "run_local")
METRICS_TASK = "read_metrics"
MAX_LINE_ERROR = 600
_SNS_TOPIC = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$")


class OnCallConfigError(ValueError):
    """The Variable airsage_on_call is not usable; the message names the problem."""


@dataclass(frozen=True)
class OnCallTargets:
    """Where on-call notifications go."""

    webhook_url: str | None = None
    sns_topic_arn: str | None = None
    aws_conn_id: str | None = None


def parse_targets(raw: str | None) -> OnCallTargets | None:
    """The targets in the Variable's value; None when it is unset or empty; OnCallConfigError if invalid."""
    from airsage.variables import json_object

    value = json_object(raw, VARIABLE, KNOWN_KEYS, OnCallConfigError)
    if value is None:
        return None
    for key in KNOWN_KEYS:
        if value.get(key) is not None and not isinstance(value[key], str):
            raise OnCallConfigError(f"Variable {VARIABLE}: {key} must be a string, got {type(value[key]).__name__}")
    url, topic, conn = (value.get(k) or None for k in KNOWN_KEYS)
    if url is not None:
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise OnCallConfigError(f"Variable {VARIABLE}: webhook_url must be an http:// or https:// URL with a host")
    if topic is not None and not _SNS_TOPIC.match(topic):
        raise OnCallConfigError(f"Variable {VARIABLE}: sns_topic_arn {topic!r} is not an SNS topic ARN "
                                "(arn:aws:sns:<region>:<account>:<topic>)")
    if url is None and topic is None:
        return None
    return OnCallTargets(webhook_url=url, sns_topic_arn=topic, aws_conn_id=conn)


def read_targets() -> OnCallTargets | None:
    """The targets from the Variable, read now (at run time, never at parse time)."""
    from airflow.sdk import Variable

    return parse_targets(Variable.get(VARIABLE, default=None))


# -- what is sent -------------------------------------------------------------------------------
def _run_ds(context) -> str | None:
    from airsage.naming import run_ds

    try:
        return run_ds(context)
    except (KeyError, AttributeError, TypeError):  # a callback must never raise
        return None


def _logical_date(context) -> str | None:
    value = context.get("logical_date")
    if value is None:
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def step_names(failing_steps: Sequence[Any] | None) -> list[str]:
    """Step names from ``[{"name", ...}]`` dicts or plain names."""
    return [s.get("name", "?") if isinstance(s, dict) else str(s) for s in failing_steps or []]


def _steps_text(failing_steps: Sequence[Any] | None) -> str:
    parts = []
    for step in failing_steps or []:
        if isinstance(step, dict):
            reason = step.get("reason")
            parts.append(f"{step.get('name', '?')} ({step.get('status') or 'Failed'}: {reason})" if reason
                         else str(step.get("name", "?")))
        else:
            parts.append(str(step))
    return "; ".join(parts) or "none reported"


def _number(value: Any) -> float | None:
    try:
        return None if value is None or isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        return None


def build_payload(context, *, kind: str, metric: str | None = None, value: Any = None, threshold: Any = None,
                  comparison: str = "<=", failing_steps: Sequence[Any] | None = None, execution: dict | None = None,
                  error: BaseException | str | None = None, outcome_location: str | None = None,
                  what_changed: dict | None = None) -> dict[str, Any]:
    """The notification payload for this task's DAG run (see the module doc for the keys)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    ti = context.get("ti")
    execution = execution or {}
    dag = context.get("dag")
    payload: dict[str, Any] = {
        "kind": kind,
        "dag_id": getattr(dag, "dag_id", None),
        "run_id": context.get("run_id"),
        "logical_date": _logical_date(context),
        "ds": _run_ds(context),
        "task_id": getattr(ti, "task_id", None),
        "try_number": getattr(ti, "try_number", None),
        "metric": metric,
        "value": _number(value),
        "threshold": _number(threshold),
        "comparison": comparison,
        "failing_steps": step_names(failing_steps),
        "execution_arn": execution.get("execution_arn"),
        "execution_link": execution.get("console_url"),
        "error": str(error) if error is not None else None,
        "outcome_location": outcome_location,
        "what_changed": list((what_changed or {}).get("summary") or []) or None,
    }
    payload["message"] = message_text(payload, failing_steps)
    return payload


def title(payload: dict) -> str:
    """One short line: what happened where (the SNS subject)."""
    if payload["kind"] == "quality_gate":
        return f"airsage: quality gate failed for {payload['dag_id']} {payload['ds']}"
    return f"airsage: task {payload['task_id']} failed in {payload['dag_id']} {payload['ds']}"


def headline(payload: dict) -> str:
    """``quality gate: mse X > threshold Y`` or the task's error."""
    if payload["kind"] == "quality_gate":
        from airsage.quality_gate import outcome_line

        return "quality gate: " + outcome_line(payload["metric"] or "metric", payload["value"], payload["threshold"],
                                               payload.get("comparison") or "<=")
    return f"error: {payload['error'] or 'unknown'}"


def message_text(payload: dict, failing_steps: Sequence[Any] | None = None) -> str:
    """The human-readable message: every fact on its own line, numbers to 4 significant digits."""
    lines = [
        title(payload),
        headline(payload),
        f"DAG: {payload['dag_id']}",
        f"run: {payload['run_id']} (task {payload['task_id']}, try {payload['try_number']})",
        f"logical date: {payload['logical_date'] or payload['ds']}",
        f"{payload['metric'] or 'metric'}: {readable(payload['value']) if payload['value'] is not None else 'n/a'}; "
        f"threshold ({payload.get('comparison') or '<='}): "
        f"{readable(payload['threshold']) if payload['threshold'] is not None else 'n/a'}",
        f"failing step(s): {_steps_text(failing_steps if failing_steps is not None else payload['failing_steps'])}",
        f"execution: {payload['execution_arn'] or 'none started'}",
        f"link: {payload['execution_link'] or 'n/a'}",
    ]
    if payload.get("outcome_location"):
        lines.append(f"alert record: {payload['outcome_location']}")
    if payload.get("what_changed"):
        lines.append("what changed since the last good run:")
        lines += [f"  {line}" for line in payload["what_changed"]]
    return "\n".join(lines)


def on_call_line(payload: dict) -> str:
    """The one log line an on-call engineer acts on (no connection details, ever).

    One physical line: a failure reason that carries a stderr tail is folded, and cut at
    ``MAX_LINE_ERROR`` characters (the full text is in the exception and the message).
    """
    what = "quality gate failed" if payload["kind"] == "quality_gate" else f"task {payload['task_id']} failed"
    return (f"ON-CALL {what} | {_one_line(headline(payload), MAX_LINE_ERROR)} | DAG {payload['dag_id']} | "
            f"run {payload['run_id']} | "
            f"try {payload['try_number']} | execution {payload['execution_arn'] or 'none started'} | "
            f"link {payload['execution_link'] or 'n/a'} | failing step(s): "
            f"{', '.join(payload['failing_steps']) or 'none reported'}")


# -- who gets it --------------------------------------------------------------------------------
def send(payload: dict, *, aws_conn_id: str | None, context, log, targets: OnCallTargets | None = None,
         subject: str | None = None) -> list[str]:
    """Send ``payload`` to every target in the Variable (or to ``targets``); returns what was delivered.

    Never raises: a missing Variable is one log line, an invalid one or a failed target is one
    ERROR line each, so the failure being reported is never hidden behind a notifier's error.
    ``subject`` (SNS) defaults to :func:`title`.
    """
    try:
        targets = targets or read_targets()
    except OnCallConfigError as err:
        log.error("on-call notification not sent: %s", err)
        return []
    except Exception as err:  # noqa: BLE001 - reading the Variable must not mask the failure
        log.error("on-call notification not sent: could not read Variable %s: %s", VARIABLE, err)
        return []
    if targets is None:
        log.warning("no on-call notification target is configured (Variable %s with webhook_url and/or "
                    "sns_topic_arn); the failure is only in this log", VARIABLE)
        return []
    delivered = []
    if targets.webhook_url:
        from airsage.notifications.webhook import WebhookNotifier, redacted

        notifier = WebhookNotifier(url=targets.webhook_url, payload=payload)
        if _deliver(notifier, context, log, f"webhook {redacted(targets.webhook_url)}"):
            delivered.append(f"webhook {redacted(targets.webhook_url)}")
    if targets.sns_topic_arn:
        from airsage.notifications.sns import on_call_sns_notifier

        notifier = on_call_sns_notifier(payload, subject=subject or title(payload), topic_arn=targets.sns_topic_arn,
                                        aws_conn_id=targets.aws_conn_id or aws_conn_id)
        if _deliver(notifier, context, log, f"SNS topic {targets.sns_topic_arn}"):
            delivered.append(f"SNS topic {targets.sns_topic_arn}")
    return delivered


def _deliver(notifier: BaseNotifier, context, log, what: str) -> bool:
    # notify() directly: BaseNotifier.__call__ would log its own generic line and re-raise
    try:
        notifier.notify(context)
    except Exception as err:  # noqa: BLE001 - one clear line per failed target, then carry on
        log.error("on-call notification to %s failed: %s", what, _one_line(err))
        return False
    log.info("on-call notification sent to %s", what)
    return True


def _one_line(err: BaseException | str, limit: int = 500) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


class OnCallNotifier(BaseNotifier):
    """Notify on-call about this task's failure (or about ``payload``), per the Variable ``airsage_on_call``.

    As the DAGs' ``on_failure_callback`` it builds a ``task_failure`` payload from the context:
    the failed task, its try, the error and the pipeline execution (from the exception or the
    execution task's XCom). A quality-gate failure is skipped there: ``alert_on_call`` notified
    already. ``alert_on_call`` passes its own ``quality_gate`` payload.

    :param aws_conn_id: the AWS connection for SNS when the Variable names none (templated).
    :param payload: a ready payload (see :func:`build_payload`); None builds one from the context.
    :param gate: the quality gate's arguments (``QualityGate.as_arguments()``): the metric, its DAG
        param and comparison, so a ``task_failure`` payload carries the metric's value and threshold.
    """

    template_fields = ("aws_conn_id",)

    def __init__(self, *, aws_conn_id: str | None = "aws_default", payload: dict | None = None,
                 gate: dict | None = None, **kwargs):
        super().__init__(**kwargs)
        self.aws_conn_id = aws_conn_id
        self.payload = payload
        self.gate = dict(gate or {})
        self.delivered: list[str] = []

    def notify(self, context) -> None:
        """Log the on-call line (failure callback) and send the payload to the configured targets."""
        from airsage.exceptions import QualityGateFailed

        payload = self.payload
        if payload is None:
            error = context.get("exception")
            if isinstance(error, QualityGateFailed):
                self.log.info("quality gate failure: on-call was notified by the task itself; not notifying again")
                return
            payload = task_failure_payload(context, self.gate)
            self.log.error("%s", on_call_line(payload))
        self.delivered = send(payload, aws_conn_id=self.aws_conn_id, context=context, log=self.log)


def task_failure_payload(context, gate: dict | None = None) -> dict[str, Any]:
    """The ``task_failure`` payload for a failed task, from its context and the DAG's quality gate (never raises)."""
    from airsage.exceptions import PipelineExecutionFailed

    ti = context.get("ti")
    error = context.get("exception")
    execution: dict = {}
    steps: list = []
    if isinstance(error, PipelineExecutionFailed):
        execution, steps = error.execution, error.failed_steps
    elif ti is not None:
        for task_id in EXECUTION_TASKS:
            value = _pull(ti, task_ids=task_id)
            if isinstance(value, dict) and value.get("execution_arn"):
                execution, steps = value, value.get("failed_steps") or []
                break
    gate = gate or {}
    params = context.get("params") or {}
    value = _pull(ti, task_ids=METRICS_TASK, key="value") if ti is not None else None
    threshold = params.get(gate["threshold_param"]) if gate.get("threshold_param") else None
    return build_payload(context, kind="task_failure", metric=gate.get("metric"), value=value, threshold=threshold,
                         comparison=gate.get("comparison") or "<=", failing_steps=steps, execution=execution,
                         error=error if error is not None else "unknown")


def _pull(ti, **kwargs) -> Any:
    try:
        return ti.xcom_pull(**kwargs)
    except Exception:  # noqa: BLE001 - a callback must never raise
        return None
