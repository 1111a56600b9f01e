"""The XCom shape of a pipeline execution, the same for the SageMaker and local backends.

::

    {"backend", "pipeline_name", "execution_arn", "execution_id", "display_name", "status",
     "console_url", "region", "parameters", "failure_reason", "failed_steps",
     "quality_gate_failed", "model_package_arn", "property_files", "report_location", "execution_page",
     "inputs"}

``console_url`` is the execution's link: the SageMaker console, or for the local backend the
execution page served by the Airflow API server (``/airsage/executions/<pipeline>/<id>``);
``execution_page`` is that page's file in the object root (local only). ``inputs`` is the
inputs record the execution was found or started by (``airsage.execution_inputs``).

``property_files`` holds the parsed PropertyFiles when the backend hands them over (the local
runner does); ``report_location`` stays None here: read_metrics locates the evaluation
report and returns it as its own ``report_uri``/``report_location``.
"""

from __future__ import annotations

from typing import Any

from airsage.exceptions import PipelineExecutionFailed


def new_result(backend: str, *, pipeline_name: str, execution_arn: str, display_name: str, status: str,
               console_url: str, region: str | None, parameters: dict[str, str]) -> dict[str, Any]:
    """A fresh execution result dict."""
    return {
        "backend": backend,
        "pipeline_name": pipeline_name,
        "execution_arn": execution_arn,
        "execution_id": execution_arn.rsplit("/", 1)[-1],
        "display_name": display_name,
        "status": status,
        "console_url": console_url,
        "region": region,
        "parameters": dict(parameters),
        "failure_reason": "",
        "failed_steps": [],
        "quality_gate_failed": False,
        "model_package_arn": None,
        "property_files": {},
        "report_location": None,
        "execution_page": None,
        "inputs": None,
    }


def model_package_arn(steps: list[dict] | None) -> str | None:
    """The model package a RegisterModel step created, from ListPipelineExecutionSteps items."""
    for step in steps or []:
        arn = (step.get("Metadata") or {}).get("RegisterModel", {}).get("Arn")
        if arn:
            return arn
    return None


def failed_steps(steps: list[dict] | None) -> list[dict]:
    """``{"name", "status", "reason"}`` of the Failed/Stopped ListPipelineExecutionSteps items."""
    return [
        {"name": s.get("StepName", "?"), "status": s.get("StepStatus"), "reason": s.get("FailureReason", "")}
        for s in steps or []
        if s.get("StepStatus") in ("Failed", "Stopped")
    ]


def finish(result: dict[str, Any], *, status: str, reason: str, failed_steps: list[dict],
           steps_available: bool, quality_gate_steps: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """Settle a terminal execution: return the result, or raise PipelineExecutionFailed.

    A Failed execution whose only failing steps are the pipeline's own quality gate (the
    Fail step after the MSE condition) is an outcome, not an error: the metrics exist and
    the DAG's gate routes it to the on-call alert instead of the report.
    """
    result = {**result, "status": status}
    if status == "Succeeded":
        return result
    result.update(failure_reason=reason, failed_steps=failed_steps)
    gate = set(quality_gate_steps or ())
    if status == "Failed" and failed_steps and gate and all(s["name"] in gate for s in failed_steps):
        result["quality_gate_failed"] = True
        return result
    raise PipelineExecutionFailed(result, reason, failed_steps, steps_available)


def settle(result: dict[str, Any], context, log, *, status: str, reason: str, failed_steps: list[dict],
           steps_available: bool, quality_gate_steps: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """:func:`finish`, with the terminal status logged where it happens, at the level it deserves.

    Succeeded is INFO; a Failed execution stopped by its own quality gate is WARNING (the DAG's
    gate and ``alert_on_call`` take it from there); any other end is the on-call ERROR line
    (DAG, run, try, execution, link, failing steps) in the task's main log, then the raise.
    """
    from airsage.notifications.on_call import build_payload, on_call_line

    try:
        settled = finish(result, status=status, reason=reason, failed_steps=failed_steps,
                         steps_available=steps_available, quality_gate_steps=quality_gate_steps)
    except PipelineExecutionFailed as err:
        payload = build_payload(context, kind="task_failure", failing_steps=err.failed_steps, execution=err.execution,
                                error=err)
        log.error("%s", on_call_line(payload))
        raise
    if settled.get("quality_gate_failed"):
        steps = "; ".join(f"{s['name']}: {s.get('reason') or 'no reason given'}" for s in failed_steps)
        log.warning("Execution %s ended Failed at the pipeline's quality gate (%s); alert_on_call notifies on-call. "
                    "Link: %s", result["execution_arn"], steps, result.get("console_url"))
    else:
        log.info("Execution %s succeeded; link: %s", result["execution_arn"], result.get("console_url"))
    return settled
