"""The step graph of a pipeline definition, and reading one: every step with its place, and what it waits for.

Shared by the validator (:mod:`sm_pipeline.validate`), the local runner and the emulated service. A
definition is read strictly (:mod:`sm_pipeline.json_limits`) and within SageMaker's size limit; steps
nested in Condition branches are flattened with the condition and branch they belong to, the body steps
of a ForEach step with their ForEach step (the SDK 3.x's ``ForEachStep``: ``Arguments.ForEachBody``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sm_pipeline.errors import DefinitionError
from sm_pipeline.expressions import references
from sm_pipeline.json_limits import JsonLimitError
from sm_pipeline.json_limits import loads as json_loads

# SageMaker's CreatePipeline/UpdatePipeline: PipelineDefinition is at most 1,048,576 characters.
MAX_DEFINITION_CHARS = 1_048_576

FOR_EACH_BODY = "ForEachBody"
# DependsOn entries the SDK 3.x writes for a StepDependency with a trigger other than Completed
# (sagemaker.mlops.workflow.step_dependency: {"Step": name, "Trigger": "Failed"}); Completed is a plain name.
DEPENDS_ON_TRIGGERS = ("Completed", "Failed", "Stopped", "Any")


@dataclass(frozen=True)
class StepEntry:
    """A step of the definition with its place: top level, in a Condition step's If/Else branch, or in a ForEach body.

    ``condition`` names the Condition (or ForEach) step the entry is nested in, ``branch`` where:
    ``IfSteps``, ``ElseSteps`` or ``ForEachBody``.
    """

    step: dict
    condition: str | None = None
    branch: str | None = None  # "IfSteps" | "ElseSteps" | "ForEachBody"

    @property
    def for_each(self) -> str | None:
        """The ForEach step whose body this step is, or None: such a step runs once per item, as ``<name>-<i>``."""
        return self.condition if self.branch == FOR_EACH_BODY else None

    @property
    def name(self) -> str:
        """The step's name."""
        name = self.step.get("Name", "")
        return name if isinstance(name, str) else ""

    @property
    def type(self) -> str:
        """The step's type."""
        kind = self.step.get("Type", "")
        return kind if isinstance(kind, str) else ""


def load_definition_file(path: Path | str) -> dict:
    """Read a definition JSON file; DefinitionError (one line naming the file) if it cannot be used."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_DEFINITION_CHARS * 4 + 1)  # UTF-8 takes at most 4 bytes a character
    except OSError as exc:
        raise DefinitionError(f"{path}: cannot read definition: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DefinitionError(f"{path}: cannot read definition: not UTF-8 text (byte {exc.start})") from None
    return parse_definition(text, str(path))


def parse_definition(text: str, where: str = "definition") -> dict:
    """Parse definition JSON text; DefinitionError naming the line on bad JSON, the size or depth limit."""
    if len(text) > MAX_DEFINITION_CHARS:
        raise DefinitionError(f"{where}: {size_problem(len(text), at_least=len(text) > MAX_DEFINITION_CHARS * 4)}")
    try:
        obj = json_loads(text)
    except JsonLimitError as exc:
        raise DefinitionError(f"{where}: {exc}") from None
    if not isinstance(obj, dict):
        raise DefinitionError(f"{where}: a pipeline definition must be a JSON object, not {type(obj).__name__}")
    return obj


def size_problem(chars: int, at_least: bool = False) -> str:
    """Why a definition of ``chars`` characters is too large for SageMaker."""
    more = "more than " if at_least else ""
    return (f"definition is {more}{chars:,} characters; SageMaker's limit for a PipelineDefinition "
            f"is {MAX_DEFINITION_CHARS:,}")


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


def object_or_empty(value: Any) -> dict:
    """``value`` if it is a JSON object, else an empty one (a malformed field reads as absent)."""
    return value if isinstance(value, dict) else {}


def flatten_steps(definition: dict) -> list[StepEntry]:
    """All steps, including those nested in Condition branches, in definition order (non-objects skipped)."""
    return list(_walk(definition.get("Steps") or [], None, None))


def _walk(steps: Any, condition: str | None, branch: str | None) -> Iterator[StepEntry]:
    if not isinstance(steps, list):
        return
    for step in steps:
        if not isinstance(step, dict):
            continue
        entry = StepEntry(step, condition, branch)
        yield entry
        if entry.type in NESTING_KEYS:
            arguments = object_or_empty(step.get("Arguments"))
            for key in NESTING_KEYS[entry.type]:
                yield from _walk(arguments.get(key) or [], entry.name, key)


# The step types whose Arguments hold other steps, and where.
NESTING_KEYS = {"Condition": ("IfSteps", "ElseSteps"), "ForEach": (FOR_EACH_BODY,)}


def body_steps(entry: StepEntry) -> list[dict]:
    """The body steps (step objects) of a ForEach step; empty for any other step."""
    if entry.type != "ForEach":
        return []
    body = object_or_empty(entry.step.get("Arguments")).get(FOR_EACH_BODY)
    return [step for step in body if isinstance(step, dict)] if isinstance(body, list) else []


def expression_scope(entry: StepEntry) -> Any:
    """The part of a step whose expressions the step itself evaluates (a Condition's branches, a ForEach's body excluded)."""
    step = entry.step
    if entry.type == "Condition":
        return {"Conditions": object_or_empty(step.get("Arguments")).get("Conditions")}
    scope = {key: value for key, value in step.items() if key not in ("Name", "Type", "DependsOn")}
    if entry.type == "ForEach" and isinstance(scope.get("Arguments"), dict):
        scope["Arguments"] = {k: v for k, v in scope["Arguments"].items() if k != FOR_EACH_BODY}
    return scope


def depends_on_names(step: dict) -> list[str]:
    """The step names in a step's DependsOn: plain names and the SDK 3.x's ``{"Step": name, "Trigger": ...}``."""
    depends_on = step.get("DependsOn") or []
    if not isinstance(depends_on, list):
        return []
    names = []
    for item in depends_on:
        if isinstance(item, dict):
            item = item.get("Step")
        if isinstance(item, str):
            names.append(item)
    return names


def _own_dependencies(step: dict, entry: StepEntry) -> set[str]:
    deps = {ref.name for ref in references(expression_scope(entry)) if ref.kind == "Steps"}
    deps.update(depends_on_names(step))
    return deps


def step_dependencies(entry: StepEntry) -> set[str]:
    """Names of the steps that must finish before this one: data references, DependsOn, its condition.

    A body step of a ForEach depends on its ForEach step (and on the body steps it references, which run
    in the same iteration); a ForEach step depends on what its body steps need from outside the body too.
    """
    deps = _own_dependencies(entry.step, entry)
    if entry.condition:
        deps.add(entry.condition)
    body = body_steps(entry)
    if body:
        names = {step.get("Name") for step in body}
        for step in body:
            inner = StepEntry(step, entry.name, FOR_EACH_BODY)
            deps.update(dep for dep in _own_dependencies(step, inner) if dep not in names)
    deps.discard(entry.name)
    return deps


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
