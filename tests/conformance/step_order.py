"""The order of recorded steps: no step is recorded as starting before a step it depends on is recorded as ending.

Checked on every execution a conformance test leaves (``tests/conformance/conftest.py``) and on what the
emulated service's ListPipelineExecutionSteps answers (``tests/service``). The edges are the definition's
own (``sm_pipeline.step_graph.step_dependencies``): data references, DependsOn, a Condition's branch steps
after the Condition; a ForEach's children start after their ForEach starts and end before it ends, and a
child starts after the children of the same iteration it depends on end.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

from sm_pipeline.step_graph import flatten_steps, step_dependencies


def _time(value) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def step_order_problems(definition: dict, steps: list[dict]) -> list[str]:
    """Every dependency edge whose dependent is recorded as starting before its dependency's recorded end."""
    recorded = {step["StepName"]: step for step in steps}
    entries = {entry.name: entry for entry in flatten_steps(definition)}
    problems = []

    def check(dependent: str, dependency: str, dependency_end: bool = True) -> None:
        a, b = recorded.get(dependent), recorded.get(dependency)
        if a is None or b is None or not a.get("StartTime"):
            return
        start, other = _time(a["StartTime"]), _time(b.get("EndTime" if dependency_end else "StartTime"))
        if other is not None and start < other:
            what = "ends" if dependency_end else "starts"
            problems.append(f"{dependent} starts at {a['StartTime']}, before {dependency} {what} at {other.isoformat()}")

    for name, entry in entries.items():
        if entry.for_each is not None:
            continue  # a body step runs as its children: checked below
        for dep in step_dependencies(entry):
            check(name, dep)
    for child, step in recorded.items():
        context = step.get("IterationContext")
        if not context:
            continue
        parent, index = context["ParentStepName"], context["Index"]
        body_step = re.sub(r"-\d+$", "", child)
        check(child, parent, dependency_end=False)
        parent_end, child_end = _time(recorded.get(parent, {}).get("EndTime")), _time(step.get("EndTime"))
        if parent_end is not None and child_end is not None and parent_end < child_end:
            problems.append(f"{parent} ends at {parent_end.isoformat()}, before its child {child} ends")
        for dep in step_dependencies(entries[body_step]):
            if dep in entries and entries[dep].for_each == parent:
                check(child, f"{dep}-{index}")
    return problems


def records_order_problems(root: Path) -> dict[str, list[str]]:
    """:func:`step_order_problems` of every execution recorded under ``root`` (any object root below it)."""
    found = {}
    for definition_file in sorted(root.rglob(".airsage/executions/*/*/definition.json")):
        steps_file = definition_file.with_name("steps.json")
        if not steps_file.is_file():
            continue
        steps = json.loads(steps_file.read_text())["PipelineExecutionSteps"]
        found[str(definition_file.parent)] = step_order_problems(json.loads(definition_file.read_text()), steps)
    return found
