"""The XCom shape of a pipeline execution, the same for the SageMaker and local backends.

::

    {"backend", "pipeline_name", "execution_arn", "execution_id", "display_name", "status",
     "console_url", "region", "parameters", "failure_reason", "failed_steps",
     "quality_gate_failed", "model_package_arn", "property_files", "report_location", "execution_page",
     "object_root", "inputs", "steps", "cost", "lineage_parent"}

``console_url`` is the execution's link: the SageMaker console, or for the local backend the
execution page served by the Airflow API server (``/airsage/executions/<pipeline>/<id>``);
``execution_page`` is that page's file in the object root and ``object_root`` the root (local only). ``inputs`` is the
inputs record the execution was found or started by (``airsage.execution_inputs``).

``steps`` summarises the execution's steps once it ended (``name``, ``status``, ``start``, ``end``, ``seconds``,
``cache_hit``) and ``cost`` is ``sm_pipeline.cost.execution_cost``'s bound and estimate (USD, an estimate,
not a bill).

``lineage_parent`` (SageMaker backend) is the OpenLineage run of the task that started the execution
(``airsage.lineage.task_run``; None without the OpenLineage provider), which the wait task's events name
as the execution's parent.

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
    from sm_pipeline.arns import execution_id_of

    return {
        "backend": backend,
        "pipeline_name": pipeline_name,
        "execution_arn": execution_arn,
        "execution_id": execution_id_of(execution_arn),
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
        "object_root": None,
        "inputs": None,
        "steps": [],
        "cost": None,
        "lineage_parent": None,
        "pipeline_version_id": None,  # the PipelineVersionId the execution ran
        "selective_execution_config": None,  # a selective re-run's SelectiveExecutionConfig
    }


def _iso(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def step_summaries(steps: list[dict] | None) -> list[dict]:
    """``{"name", "status", "start", "end", "seconds", "cache_hit"}`` per step, in start order (JSON-able)."""
    from datetime import datetime

    out = []
    # steps that never started (a branch not taken) go last
    for step in sorted(steps or [], key=lambda s: (_iso(s.get("StartTime")) is None, _iso(s.get("StartTime")) or "")):
        start, end = _iso(step.get("StartTime")), _iso(step.get("EndTime"))
        try:
            seconds = round((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds(), 3)
        except (TypeError, ValueError):
            seconds = None
        out.append({"name": step.get("StepName", "?"), "status": step.get("StepStatus"), "start": start, "end": end,
                    "seconds": seconds,
                    "cache_hit": (step.get("CacheHitResult") or {}).get("SourcePipelineExecutionArn")})
    return out


def add_steps_and_cost(result: dict[str, Any], *, definition: dict | None, steps: list[dict] | None, log,
                       jobs: dict | None = None) -> dict[str, Any]:
    """Put the step summaries and the cost (bound and estimate) into ``result``; the cost line goes to the log.

    The cost is a convenience: a definition or a price table that cannot be read is one WARNING line and
    ``cost`` None, never a failed task.
    """
    from sm_pipeline.errors import InvalidInput

    result["steps"] = step_summaries(steps)
    if definition is None:
        return result
    try:
        from sm_pipeline.cost import execution_cost, summary_line

        region = str(result.get("execution_arn") or "").split(":")[3:4] or [None]
        result["cost"] = execution_cost(definition, result.get("parameters") or {}, steps=steps or [],
                                        region=result.get("region") or region[0], jobs=jobs)
        log.info("Cost of execution %s: %s", result.get("execution_arn"), summary_line(result["cost"]))
    except (InvalidInput, ValueError, TypeError, KeyError) as err:
        log.warning("No cost for execution %s: %s", result.get("execution_arn"), err)
    return result


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


def quality_gate_failure(failed: list[dict], quality_gate_steps: tuple[str, ...] | list[str]) -> str:
    """The failing steps' text when every failed step is one of the pipeline's quality-gate steps, else ''.

    Such a Failed execution is an outcome, not an error: the metrics exist and the DAG's gate routes it
    to the on-call alert instead of the report; running it again would fail the same way.
    """
    gate = set(quality_gate_steps or ())
    if not failed or not gate or not all(s["name"] in gate for s in failed):
        return ""
    return "; ".join(f"{s['name']}: {s.get('reason') or 'no reason given'}" for s in failed)


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
    if status == "Failed" and quality_gate_failure(failed_steps, quality_gate_steps):
        result["quality_gate_failed"] = True
        return result
    raise PipelineExecutionFailed(result, reason, failed_steps, steps_available)


def settle(result: dict[str, Any], context, log, *, status: str, reason: str, failed_steps: list[dict],
           steps_available: bool, quality_gate_steps: tuple[str, ...] | list[str], outlets=()) -> dict[str, Any]:
    """:func:`finish`, with the terminal status logged where it happens, at the level it deserves.

    Succeeded is INFO; a Failed execution stopped by its own quality gate is WARNING (the DAG's
    gate and ``alert_on_call`` take it from there); any other end is the on-call ERROR line
    (DAG, run, try, execution, link, failing steps) in the task's main log, then the raise. A settled
    execution that registered a model package version emits the model-package asset event on the
    task's ``outlets`` (``airsage.assets``).
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
        steps = quality_gate_failure(failed_steps, quality_gate_steps)
        log.warning("Execution %s ended Failed at the pipeline's quality gate (%s); alert_on_call notifies on-call. "
                    "Link: %s", result["execution_arn"], steps, result.get("console_url"))
    else:
        log.info("Execution %s succeeded; link: %s", result["execution_arn"], result.get("console_url"))
    if settled.get("model_package_arn"):
        from airsage.assets import emit
        from airsage.naming import run_ds

        # the registered version's event, on the execution task's model-package outlet (an alias: no
        # version registered, no event)
        emit(context, outlets, "model-package", {"ds": run_ds(context), "model_package_arn": settled["model_package_arn"],
                                                 "execution_arn": settled["execution_arn"]})
    return settled
