"""Failure callback: one log block an on-call engineer can act on."""

from __future__ import annotations

import logging

from airsage.exceptions import PipelineExecutionFailed

log = logging.getLogger("airsage.on_call")
EXECUTION_TASKS = ("wait_for_execution", "start_execution", "run_local")


def log_task_failure(context) -> None:
    """Log the failed task, the execution ARN, its link and the failing step(s).

    Only execution facts are logged; nothing from the connection (keys, extras).
    """
    ti = context.get("ti")
    error = context.get("exception")
    execution: dict = {}
    steps = "n/a"
    if isinstance(error, PipelineExecutionFailed):
        execution = error.execution
        steps = ", ".join(s["name"] for s in error.failed_steps) or "not reported"
    elif ti is not None:
        for task_id in EXECUTION_TASKS:
            try:
                value = ti.xcom_pull(task_ids=task_id)
            except Exception:  # noqa: BLE001 - a callback must never raise
                value = None
            if isinstance(value, dict) and value.get("execution_arn"):
                execution = value
                break
    log.error(
        "airsage task %s failed (ds=%s): %s | execution: %s | link: %s | failing step(s): %s",
        getattr(ti, "task_id", "?"), context.get("ds"), error,
        execution.get("execution_arn", "none started"), execution.get("console_url", "n/a"), steps,
    )
