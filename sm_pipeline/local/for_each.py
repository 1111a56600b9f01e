"""ForEach steps: the body steps run once per item, as children ``<body step>-<index>``, at most MaxConcurrency at a time.

SageMaker's semantics as the SDK 3.x defines them (``sagemaker.mlops.workflow.for_each_step``) and botocore's
model reports them (``ForEachStepMetadata``, ``IterationContext``):

- ``IterableItems`` is a list (each element a literal or a reference) or a reference resolving to a JSON list
  (its text, as a String parameter or a Lambda output carries it); each element is one item;
- every body step runs once per item as ``<body step>-<index>``; in it ``ForEach.CurrentItem`` is the item
  (``CurrentItem.field`` drills into an item that is, or is the JSON text of, an object) and ``Steps.<body
  step>`` is the sibling child of the same iteration;
- ``MaxConcurrency`` caps the children running at one moment;
- the step's properties are ``Status`` (Succeeded | Failed | Stopped), ``InputItemCount``, the child counts
  ``TotalStepCount``/``SucceededStepCount``/``FailedStepCount``/``StoppedStepCount``, ``IterationOutputs[i].<body
  step>`` (the child's properties) and, with a ``Selector``, ``Selected``: the properties of the body step's child
  whose ``IterationOutput`` field is largest (``MaxBy``) or smallest (``MinBy``).

Where the SDK and the API leave it open, the local runner decides (docs/CONTRACTS.md): every iteration runs even
when another failed (the counts report them all), a child whose sibling dependency did not succeed is not
created (not counted), a failed child fails the ForEach step (and so the execution), the Selector compares
numbers (numeric strings included) and a tie goes to the lowest index, and the children run beside the
execution's other steps (MaxConcurrency at a time, outside MaxParallelExecutionSteps).
"""

from __future__ import annotations

import json
import math
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from sm_pipeline.errors import one_line, shown
from sm_pipeline.expressions import ExpressionContext, ExpressionError, get_path, resolve
from sm_pipeline.local.jobs import JobContext, StepFailed, StepOutcome
from sm_pipeline.local.processes import StopRequested
from sm_pipeline.local.step_attempt import Iteration
from sm_pipeline.step_graph import FOR_EACH_BODY, StepEntry, step_dependencies

_PICKS = {"MaxBy": max, "MinBy": min}


def run_for_each(arguments: None, ctx: JobContext) -> StepOutcome:
    """Run a ForEach step in place: every body step for every item, through ``ctx.run_child``."""
    step_arguments = ctx.step.get("Arguments") or {}
    try:
        items = iterable_items(step_arguments.get("IterableItems"), ctx.expressions)
    except ExpressionError as exc:
        raise StepFailed(f"IterableItems could not be resolved: {exc}") from exc
    body = [StepEntry(step, ctx.name, FOR_EACH_BODY) for step in step_arguments.get(FOR_EACH_BODY) or []]
    names = tuple(entry.name for entry in body)
    needs = {entry.name: step_dependencies(entry) & set(names) for entry in body}
    iterations = [Iteration(ctx.name, index, item, names) for index, item in enumerate(items)]
    results = _run_children(ctx, body, needs, iterations, int(step_arguments.get("MaxConcurrency") or 1))

    counts = {status: sum(1 for outcome in results.values() if outcome == status)
              for status in ("Succeeded", "Failed", "Stopped")}
    total = sum(counts.values())
    summary = {"InputItemCount": len(items), "TotalStepCount": total, "SucceededStepCount": counts["Succeeded"],
               "FailedStepCount": counts["Failed"], "StoppedStepCount": counts["Stopped"]}
    if counts["Stopped"] or ctx.processes.stop_event.is_set():
        raise StopRequested()
    if counts["Failed"]:
        failed = [child for child, outcome in results.items() if outcome == "Failed"]
        reasons = [f"{child}: {results.reasons[child]}" for child in failed]
        raise StepFailed(one_line(f"{len(failed)} of {total} child step(s) failed: " + "; ".join(reasons)),
                         metadata=ctx.step_metadata(Status="Failed", **summary))

    outputs = [{name: results.properties[iteration.child(name)] for name in names
                if iteration.child(name) in results.properties} for iteration in iterations]
    properties: dict[str, Any] = {"Status": "Succeeded", **summary, "IterationOutputs": outputs}
    metadata: dict[str, Any] = {"Status": "Succeeded", **summary}
    selector = step_arguments.get("Selector")
    if isinstance(selector, dict) and outputs:
        body_step, index = select(selector, outputs)
        properties["Selected"] = outputs[index][body_step]
        metadata["Selector"] = {"StepName": body_step, "Index": index}
    return StepOutcome(properties, ctx.step_metadata(**metadata))


def iterable_items(value: Any, expressions: ExpressionContext) -> list:
    """The items of ``IterableItems``: a list's resolved elements, or the JSON list a reference resolves to."""
    if isinstance(value, list):
        return [resolve(item, expressions) for item in value]
    resolved = resolve(value, expressions)
    if isinstance(resolved, str):
        try:
            resolved = json.loads(resolved)
        except ValueError:
            raise StepFailed(f"IterableItems resolved to {shown(resolved)}, which is not the JSON text of a list") from None
    if not isinstance(resolved, list):
        raise StepFailed(f"IterableItems resolved to {shown(resolved)}, which is not a JSON list")
    return resolved


class _Results(dict):
    """``{child: Succeeded|Failed|Stopped}`` of the children created, with their properties and failure reasons."""

    def __init__(self) -> None:
        super().__init__()
        self.properties: dict[str, dict] = {}
        self.reasons: dict[str, str] = {}


def _run_children(ctx: JobContext, body: list[StepEntry], needs: dict[str, set[str]], iterations: list[Iteration],
                  max_concurrency: int) -> _Results:
    """Run every (iteration, body step) whose siblings it needs succeeded, ``max_concurrency`` at a time."""
    results = _Results()
    pending = [(iteration, entry) for iteration in iterations for entry in body]
    running: dict[Future, tuple[Iteration, StepEntry]] = {}

    def ready(iteration: Iteration, entry: StepEntry) -> bool | None:
        """True: can start; False: must wait; None: a sibling it needs did not succeed (never created)."""
        states = [results.get(iteration.child(need)) for need in needs[entry.name]]
        if any(state in ("Failed", "Stopped") for state in states):
            return None
        return all(state == "Succeeded" for state in states)

    with ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix=f"airsage-{ctx.name}") as pool:
        while pending or running:
            for pair in list(pending):
                if len(running) >= max_concurrency or ctx.processes.stop_event.is_set():
                    break
                state = ready(*pair)
                if state is None:
                    pending.remove(pair)
                elif state:
                    pending.remove(pair)
                    running[pool.submit(ctx.run_child, pair[1], pair[0])] = pair
            if ctx.processes.stop_event.is_set():
                pending.clear()  # stopping: no new child starts
            if not running:
                if pending and not any(ready(*pair) for pair in pending):
                    break  # cannot happen for an acyclic body; never spin
                continue
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for future in done:
                iteration, entry = running.pop(future)
                child = iteration.child(entry.name)
                error = future.exception()
                if error is None:
                    results[child] = "Succeeded"
                    results.properties[child] = future.result().properties
                elif isinstance(error, StopRequested):
                    results[child] = "Stopped"
                elif isinstance(error, StepFailed):
                    results[child] = "Failed"
                    results.reasons[child] = error.reason
                else:  # the record of the child could not be written, or a bug: the child failed
                    results[child] = "Failed"
                    results.reasons[child] = one_line(f"{type(error).__name__}: {error}")
    return results


def select(selector: dict, outputs: list[dict]) -> tuple[str, int]:
    """``(body step, iteration index)`` the Selector picks: the largest (MaxBy) or smallest (MinBy) field value.

    Values are compared as numbers (a numeric string counts as its number); a tie goes to the lowest index.
    """
    reference = str((selector.get("Field") or {}).get("Get", ""))
    body_step, _, path = reference.removeprefix("IterationOutput.").partition(".")
    if "[" in body_step:  # IterationOutput.Step['x'] drills straight into the step
        body_step, bracket, rest = body_step.partition("[")
        path = bracket + rest + ("." + path if path else "")
    candidates = []
    for index, output in enumerate(outputs):
        if body_step not in output:
            continue
        try:
            value = get_path(output[body_step], path, f"Selector.Field {reference!r} of iteration {index}")
        except ExpressionError as exc:
            raise StepFailed(f"Selector: {exc}") from exc
        candidates.append((_number(value, reference, index), index))
    if not candidates:
        raise StepFailed(f"Selector: no iteration has an output of body step {body_step!r}")
    pick = _PICKS[selector.get("Pick", "MaxBy")]
    best = pick(value for value, _ in candidates)
    return body_step, min(index for value, index in candidates if value == best)


def _number(value: Any, reference: str, index: int) -> float:
    if not isinstance(value, bool):
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if math.isfinite(number):
            return number
    raise StepFailed(f"Selector: {reference} of iteration {index} is {shown(value)}, not a number to compare")
