"""Static checks of a pipeline definition JSON: one problem per string, naming the step or reference.

Used by ``python -m sm_pipeline validate`` and, before any step runs, by the local runner.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sm_pipeline.errors import DefinitionError
from sm_pipeline.expressions import EXECUTION_VARIABLES, FUNCTIONS, references

# Every step type SageMaker Pipelines accepts (the SDK's StepTypeEnum); the local runner supports a subset.
KNOWN_STEP_TYPES = frozenset({
    "Processing", "Training", "Transform", "Tuning", "AutoML", "Model", "RegisterModel", "Condition",
    "Fail", "Lambda", "Callback", "QualityCheck", "ClarifyCheck", "EMR", "EMRServerless", "NotebookJob",
})
PARAMETER_TYPES = {"String": (str,), "Integer": (int,), "Float": (float, int), "Boolean": (bool,)}


@dataclass(frozen=True)
class StepEntry:
    """A step of the definition with its place: top level, or inside a Condition step's If/Else branch."""

    step: dict
    condition: str | None = None
    branch: str | None = None  # "IfSteps" | "ElseSteps"

    @property
    def name(self) -> str:
        """The step's name."""
        return self.step.get("Name", "")

    @property
    def type(self) -> str:
        """The step's type."""
        return self.step.get("Type", "")


def load_definition_file(path: Path | str) -> dict:
    """Read a definition JSON file; DefinitionError if it is unreadable or not a JSON object."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DefinitionError(f"{path}: cannot read definition: {exc}") from exc
    return parse_definition(text, str(path))


def parse_definition(text: str, where: str = "definition") -> dict:
    """Parse definition JSON text; DefinitionError naming the line on bad JSON."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DefinitionError(f"{where}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    if not isinstance(obj, dict):
        raise DefinitionError(f"{where}: a pipeline definition must be a JSON object, not {type(obj).__name__}")
    return obj


def load_definition(definition: dict | str | Path) -> dict:
    """A definition given as a dict, JSON text or a file path, as a dict."""
    if isinstance(definition, dict):
        return definition
    if isinstance(definition, Path):
        return load_definition_file(definition)
    if isinstance(definition, str):
        if definition.lstrip().startswith("{"):
            return parse_definition(definition)
        return load_definition_file(Path(definition))
    raise DefinitionError(f"a definition must be a dict, JSON text or a path, not {type(definition).__name__}")


def flatten_steps(definition: dict) -> list[StepEntry]:
    """All steps, including those nested in Condition branches, in definition order."""
    return list(_walk(definition.get("Steps") or [], None, None))


def _walk(steps: Any, condition: str | None, branch: str | None) -> Iterator[StepEntry]:
    if not isinstance(steps, list):
        return
    for step in steps:
        if not isinstance(step, dict):
            continue
        entry = StepEntry(step, condition, branch)
        yield entry
        if entry.type == "Condition":
            arguments = step.get("Arguments") or {}
            for key in ("IfSteps", "ElseSteps"):
                yield from _walk(arguments.get(key) or [], entry.name, key)


def expression_scope(entry: StepEntry) -> Any:
    """The part of a step whose expressions the step itself evaluates (a Condition's branches excluded)."""
    step = entry.step
    if entry.type == "Condition":
        arguments = step.get("Arguments") or {}
        return {"Conditions": arguments.get("Conditions")}
    return {key: value for key, value in step.items() if key not in ("Name", "Type", "DependsOn")}


def step_dependencies(entry: StepEntry) -> set[str]:
    """Names of the steps that must finish before this one: data references, DependsOn, its condition."""
    deps = {ref.name for ref in references(expression_scope(entry)) if ref.kind == "Steps"}
    depends_on = entry.step.get("DependsOn") or []
    if isinstance(depends_on, list):
        deps.update(name for name in depends_on if isinstance(name, str))
    if entry.condition:
        deps.add(entry.condition)
    deps.discard(entry.name)
    return deps


def validate_definition(obj: Any) -> list[str]:
    """Every problem found in a definition (empty when it is well-formed)."""
    if not isinstance(obj, dict):
        return [f"a pipeline definition must be a JSON object, not {type(obj).__name__}"]
    problems: list[str] = []
    parameters = _check_parameters(obj.get("Parameters", []), problems)
    steps = obj.get("Steps")
    if not isinstance(steps, list) or not steps:
        problems.append("definition has no 'Steps' list (or it is empty)")
        return problems
    entries = flatten_steps(obj)
    by_name: dict[str, StepEntry] = {}
    for index, entry in enumerate(entries):
        name, step_type = entry.step.get("Name"), entry.step.get("Type")
        if not isinstance(name, str) or not name:
            problems.append(f"step #{index + 1} has no Name")
            continue
        if name in by_name:
            problems.append(f"duplicate step name {name!r}")
        by_name.setdefault(name, entry)
        if step_type not in KNOWN_STEP_TYPES:
            problems.append(f"step {name!r}: unknown step type {step_type!r}")
        if step_type == "Condition" and not isinstance((entry.step.get("Arguments") or {}).get("Conditions"), list):
            problems.append(f"step {name!r}: a Condition step needs an Arguments.Conditions list")
    for entry in entries:
        if entry.name in by_name and by_name[entry.name] is entry:
            _check_references(entry, by_name, parameters, problems)
    for cycle in find_cycles(by_name):
        problems.append("dependency cycle: " + " -> ".join(cycle))
    return problems


def _check_parameters(parameters: Any, problems: list[str]) -> set[str]:
    names: set[str] = set()
    if not isinstance(parameters, list):
        problems.append("'Parameters' must be a list")
        return names
    for index, parameter in enumerate(parameters):
        name = parameter.get("Name") if isinstance(parameter, dict) else None
        if not isinstance(name, str) or not name:
            problems.append(f"parameter #{index + 1} has no Name")
            continue
        if name in names:
            problems.append(f"duplicate parameter {name!r}")
        names.add(name)
        ptype = parameter.get("Type")
        if ptype not in PARAMETER_TYPES:
            problems.append(f"parameter {name!r}: unknown type {ptype!r} (String, Integer, Float or Boolean)")
            continue
        if "DefaultValue" in parameter:
            default = parameter["DefaultValue"]
            expected = PARAMETER_TYPES[ptype]
            if not isinstance(default, expected) or (ptype != "Boolean" and isinstance(default, bool)):
                problems.append(f"parameter {name!r}: DefaultValue {default!r} is not a {ptype}")
    return names


def _check_references(entry: StepEntry, by_name: dict[str, StepEntry], parameters: set[str], problems: list[str]) -> None:
    name = entry.name
    scope = expression_scope(entry)
    for ref in references(scope):
        if ref.kind == "Parameters" and ref.name not in parameters:
            problems.append(f"step {name!r}: Get references unknown parameter {ref.name!r}")
        elif ref.kind == "Execution" and ref.name not in EXECUTION_VARIABLES:
            problems.append(f"step {name!r}: Get references unknown execution variable {ref.name!r}")
        elif ref.kind == "Steps":
            if ref.name == name:
                problems.append(f"step {name!r}: references itself")
            elif ref.name not in by_name:
                problems.append(f"step {name!r}: Get references unknown step {ref.name!r}")
            elif not ref.detail:
                problems.append(f"step {name!r}: Get of step {ref.name!r} has no property path")
        elif ref.kind == "PropertyFile" and ref.name in by_name:
            declared = {pf.get("PropertyFileName") for pf in by_name[ref.name].step.get("PropertyFiles") or []
                        if isinstance(pf, dict)}
            if ref.detail not in declared:
                problems.append(f"step {name!r}: step {ref.name!r} has no property file {ref.detail!r}")
        elif ref.kind == "Invalid":
            problems.append(f"step {name!r}: malformed Std:JsonGet PropertyFile {ref.name}")
        elif ref.kind not in ("Parameters", "Execution", "Steps", "PropertyFile"):
            problems.append(f"step {name!r}: Get references unknown namespace {ref.kind!r}")
    for function in _functions(scope):
        if function not in FUNCTIONS:
            problems.append(f"step {name!r}: unknown function {function!r}")
    depends_on = entry.step.get("DependsOn") or []
    if not isinstance(depends_on, list):
        problems.append(f"step {name!r}: DependsOn must be a list of step names")
    else:
        for dep in depends_on:
            if dep not in by_name:
                problems.append(f"step {name!r}: DependsOn unknown step {dep!r}")
    for pf in entry.step.get("PropertyFiles") or []:
        outputs = {o.get("OutputName") for o in ((entry.step.get("Arguments") or {}).get("ProcessingOutputConfig") or {}).get("Outputs", [])
                   if isinstance(o, dict)}
        if isinstance(pf, dict) and pf.get("OutputName") not in outputs:
            problems.append(f"step {name!r}: property file {pf.get('PropertyFileName')!r} names unknown output {pf.get('OutputName')!r}")


def _functions(value: Any) -> Iterator[str]:
    if isinstance(value, list):
        for item in value:
            yield from _functions(item)
    elif isinstance(value, dict):
        if len(value) == 1:
            (key,) = value
            if key == "Get" or key.startswith("Std:"):
                yield key
        for item in value.values():
            yield from _functions(item)


def find_cycles(by_name: dict[str, StepEntry]) -> list[list[str]]:
    """Dependency cycles among steps, each as the list of names around it (first name repeated last)."""
    graph = {name: sorted(dep for dep in step_dependencies(entry) if dep in by_name) for name, entry in by_name.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []
    for start in graph:
        if state.get(start):
            continue
        stack: list[tuple[str, Iterator[str]]] = [(start, iter(graph[start]))]
        path = [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(child) == 1:
                cycles.append(path[path.index(child):] + [child])
            elif not state.get(child):
                state[child] = 1
                stack.append((child, iter(graph[child])))
                path.append(child)
    return cycles
