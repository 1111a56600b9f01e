"""Selective execution (``SelectiveExecutionConfig``): run only the selected steps of a pipeline.

SageMaker's rules, checked before anything runs, each violation one line (:class:`SelectionInvalid`):

- at least one step is selected, and every selected step is a (top-level or branch) step of the definition;
- the selection is connected: every step on a path between two selected steps is selected too;
- the reference (``SourcePipelineExecutionArn``) is an execution of the same pipeline, and it Succeeded
  or Failed;
- a selected step that depends on a step that is not selected needs a reference, in which that step
  Succeeded and left its outputs (its properties and property files, and its S3 outputs still exist).

What a selective execution does (the local runner, hence the emulated service): the steps that are not
selected and lead to a selected one take the reference's outputs (listed Succeeded, with
``SelectiveExecutionResult.SourcePipelineExecutionArn``); the selected ones run; every other step does not
run (recorded ``NotExecuted``, which ListPipelineExecutionSteps leaves out, as SageMaker lists only the
steps of the selective run). The execution's record carries the config (DescribePipelineExecution's
``SelectiveExecutionConfig``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sm_pipeline import arns
from sm_pipeline.errors import InvalidInput
from sm_pipeline.step_graph import StepEntry, step_dependencies

REFERENCE_STATUSES = ("Succeeded", "Failed")


class SelectionInvalid(InvalidInput):
    """A SelectiveExecutionConfig that breaks one of SageMaker's rules; the message is one line."""


@dataclass
class Selection:
    """A checked selection: what runs, what is taken from the reference, what does not run."""

    config: dict
    selected: set[str]
    reused: dict[str, dict] = field(default_factory=dict)  # step -> {"Properties", "PropertyFiles", "Entry"}
    not_run: set[str] = field(default_factory=set)

    @property
    def reference_arn(self) -> str | None:
        """The reference execution's ARN, or None."""
        return self.config.get("SourcePipelineExecutionArn")


def selection_config(steps: list[str] | tuple[str, ...], reference_arn: str | None) -> dict:
    """A SelectiveExecutionConfig as the API takes it, from step names and a reference ARN (or None)."""
    config: dict[str, Any] = {"SelectedSteps": [{"StepName": name} for name in steps]}
    if reference_arn:
        config["SourcePipelineExecutionArn"] = reference_arn
    return config


def check_selection(config: Mapping[str, Any], entries: list[StepEntry], root: Path | str,
                    pipeline_name: str) -> Selection:
    """The checked :class:`Selection` of ``config`` over a definition's steps; SelectionInvalid otherwise."""
    from sm_pipeline.local.records import LocalExecutionStore

    if not isinstance(config, Mapping):
        raise SelectionInvalid("SelectiveExecutionConfig must be an object with SelectedSteps")
    listed = config.get("SelectedSteps")
    if not isinstance(listed, list) or not listed:
        raise SelectionInvalid("SelectiveExecutionConfig.SelectedSteps: select at least one step")
    names = [item.get("StepName") if isinstance(item, Mapping) else item for item in listed]
    # ForEach body steps run as their ForEach step's children: only the scheduler's steps can be selected
    scheduled = {entry.name: entry for entry in entries if entry.for_each is None}
    unknown = [str(name) for name in names if name not in scheduled]
    if unknown:
        raise SelectionInvalid(f"SelectiveExecutionConfig.SelectedSteps: {', '.join(unknown)} "
                               f"{'is not a step' if len(unknown) == 1 else 'are not steps'} of pipeline "
                               f"{pipeline_name}")
    selected = set(names)
    deps = {name: step_dependencies(entry) & set(scheduled) for name, entry in scheduled.items()}
    ancestors = {name: _closure(name, deps) for name in scheduled}
    for name in sorted(set(scheduled) - selected):
        above = sorted(ancestors[name] & selected)
        below = sorted(other for other in selected if name in ancestors[other])
        if above and below:
            raise SelectionInvalid(f"SelectiveExecutionConfig.SelectedSteps: step {name} lies on a path between the "
                                   f"selected steps {above[0]} and {below[0]}; select it too (every step on every "
                                   "path between two selected steps must be selected)")

    upstream = set().union(*(ancestors[name] for name in selected)) - selected
    needed = sorted({dep for name in selected for dep in deps[name]} - selected)
    reference = config.get("SourcePipelineExecutionArn")
    reused: dict[str, dict] = {}
    if reference:
        try:
            lowered, execution_id = arns.parse_execution_arn(reference)
        except ValueError as exc:
            raise SelectionInvalid(f"SelectiveExecutionConfig.SourcePipelineExecutionArn: {exc}") from None
        if lowered != pipeline_name.lower():
            raise SelectionInvalid(f"SelectiveExecutionConfig.SourcePipelineExecutionArn {reference} is an execution "
                                   f"of pipeline {lowered}, not of {pipeline_name}; the reference must be an "
                                   "execution of the same pipeline")
        store = LocalExecutionStore(root)
        try:
            describe = store.describe(pipeline_name, execution_id)
        except FileNotFoundError:
            raise SelectionInvalid(f"SelectiveExecutionConfig.SourcePipelineExecutionArn: execution {reference} "
                                   "does not exist") from None
        status = describe.get("PipelineExecutionStatus")
        if status not in REFERENCE_STATUSES:
            raise SelectionInvalid(f"SelectiveExecutionConfig.SourcePipelineExecutionArn: execution {reference} is "
                                   f"{status}; the reference must be Succeeded or Failed")
        steps = {s.get("StepName"): s for s in _steps(store, pipeline_name, execution_id)}
        saved = store.step_properties(pipeline_name, execution_id)
        for name in sorted(upstream):
            entry, outputs = steps.get(name) or {}, saved.get(name)
            if entry.get("StepStatus") == "Succeeded" and outputs is not None:
                reused[name] = {"Properties": outputs.get("Properties") or {},
                                "PropertyFiles": outputs.get("PropertyFiles") or {}, "Entry": entry}
    for name in needed:
        if not reference:
            raise SelectionInvalid(f"SelectiveExecutionConfig: selected step(s) depend on step {name}, which is not "
                                   "selected: give SourcePipelineExecutionArn, an execution whose outputs of it to use")
        if name not in reused:
            raise SelectionInvalid(f"SelectiveExecutionConfig.SourcePipelineExecutionArn: step {name} did not succeed "
                                   f"in execution {reference}, so its outputs (needed by the selected steps) are not "
                                   "there")
        missing = _missing_outputs(reused[name]["Properties"], root)
        if missing:
            raise SelectionInvalid(f"SelectiveExecutionConfig.SourcePipelineExecutionArn: output {missing} of step "
                                   f"{name} in execution {reference} no longer exists")
    not_run = set(scheduled) - selected - set(reused)
    return Selection(config=dict(config), selected=selected, reused=reused, not_run=not_run)


def _closure(name: str, deps: dict[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    todo = list(deps.get(name, ()))
    while todo:
        step = todo.pop()
        if step not in seen:
            seen.add(step)
            todo.extend(deps.get(step, ()))
    return seen


def _steps(store, pipeline_name: str, execution_id: str) -> list[dict]:
    try:
        return store.steps(pipeline_name, execution_id)
    except (OSError, ValueError, KeyError):
        return []


def _missing_outputs(properties: dict, root: Path | str) -> str | None:
    """The first S3 output a step's properties name (processing outputs, model artifacts) that no longer exists
    (the step cache's test of an output: ``sm_pipeline.local.cache``)."""
    from sm_pipeline.storage import ObjectStore

    store = ObjectStore(Path(root))
    uris = [((o.get("S3Output") or {}).get("S3Uri")) for o in
            ((properties.get("ProcessingOutputConfig") or {}).get("Outputs") or []) if isinstance(o, dict)]
    uris.append((properties.get("ModelArtifacts") or {}).get("S3ModelArtifacts"))
    for uri in uris:
        if isinstance(uri, str) and uri.startswith("s3://") and not store.path_for(uri).exists():
            return uri
    return None
