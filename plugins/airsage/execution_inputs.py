"""What an execution of one logical date depends on, and the rule that makes a date idempotent.

The rule (README "Backfills", the DAG's doc): a run for a logical date whose inputs — the
sha256 of each staged data object (the stage task's ``hashes``: the input data and the batch data
for the default CSV stager), the pipeline definition's sha256 and the pipeline parameter values —
equal those of a Succeeded execution re-attaches to that execution and registers no new model
version; any changed input starts a new execution. The inputs are folded into the execution's
display name (``naming.execution_display_name``), so "equal inputs" is "same display name", which
the start/run tasks already look executions up by.

The stage task's XCom (any stager, see ``airsage.operators.stage_input``) carries
``{"parameters": {pipeline parameter: value}, "hashes": {what: sha256}}``.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from airsage.naming import execution_display_name, run_ds

DESCRIPTION_PREFIX = "airsage inputs "
# SageMaker: PipelineExecutionDescription is at most 3072 characters
MAX_DESCRIPTION = 3072
_NOT_DATA = ("definition", "parameters", "selection")


@dataclass(frozen=True)
class ExecutionInputs:
    """The inputs of one date's execution: data, definition and parameter values."""

    dag_id: str
    ds: str
    definition_sha256: str
    parameters: dict[str, str] = field(default_factory=dict)
    data: dict[str, str] = field(default_factory=dict)
    # a selective re-run: {"steps": [...], "reference": execution ARN} (None: the whole pipeline)
    selection: dict | None = None

    @classmethod
    def for_run(cls, context, *, definition_sha256: str, parameters: dict[str, str],
                staged: dict | None, selective: dict | None = None) -> ExecutionInputs:
        """The inputs of this task's DAG run; ``staged`` is the stage task's XCom (its ``hashes``) or None;
        ``selective`` the run's SelectiveExecutionConfig, if it re-runs some steps only."""
        hashes = staged.get("hashes") if isinstance(staged, dict) else None
        data = {str(k): str(v) for k, v in hashes.items() if k not in _NOT_DATA} if isinstance(hashes, dict) else {}
        selection = None
        if selective:
            selection = {"steps": sorted(s["StepName"] for s in selective["SelectedSteps"]),
                         "reference": selective.get("SourcePipelineExecutionArn")}
        return cls(dag_id=context["dag"].dag_id, ds=run_ds(context), definition_sha256=definition_sha256,
                   parameters=dict(parameters), data=data, selection=selection)

    def record(self) -> dict[str, Any]:
        """The inputs as stored beside an execution: short hashes and the parameter values (and a selection)."""
        record = {
            **{name: digest[:16] for name, digest in self.data.items()},
            "definition": self.definition_sha256[:16],
            "parameters": dict(sorted(self.parameters.items())),
        }
        if self.selection:
            record["selection"] = {"steps": self.selection["steps"],
                                   "reference": str(self.selection.get("reference") or "").rsplit("/", 1)[-1]}
        return record

    def fingerprint(self) -> str:
        """sha256 over the dag id, the date and every input (full hashes; the selection of a selective run)."""
        material = {"dag_id": self.dag_id, "ds": self.ds, "data": dict(sorted(self.data.items())),
                    "definition": self.definition_sha256, "parameters": dict(sorted(self.parameters.items()))}
        if self.selection:
            material["selection"] = self.selection
        return hashlib.sha256(json.dumps(material, sort_keys=True).encode("utf-8")).hexdigest()

    def display_name(self) -> str:
        """The execution display name these inputs give (see ``naming.execution_display_name``)."""
        return execution_display_name(self.dag_id, self.ds, self.fingerprint())

    def summary(self) -> str:
        """One line naming every input, for the log."""
        rec = self.record()
        params = ", ".join(f"{k}={v}" for k, v in rec["parameters"].items()) or "none"
        data = "".join(f"{name} {rec[name]}, " for name in self.data) or "no staged data, "
        selection = (f", re-running {', '.join(rec['selection']['steps'])} on {rec['selection']['reference']}"
                     if self.selection else "")
        return f"{data}definition {rec['definition']}, parameters {params}{selection}"

    def description(self) -> str:
        """PipelineExecutionDescription carrying :meth:`record`, so a later run can say what changed."""
        rec = self.record()
        text = DESCRIPTION_PREFIX + json.dumps(rec, sort_keys=True, separators=(",", ":"))
        if len(text) > MAX_DESCRIPTION:
            rec.pop("parameters")  # the parameters are also listed by the API itself
            text = DESCRIPTION_PREFIX + json.dumps(rec, sort_keys=True, separators=(",", ":"))
        return text


def run_parameters(parameters: dict[str, Any] | None, staged: dict | None) -> dict[str, Any]:
    """The pipeline parameters of a run: the stage task's ``parameters``, then the task's own (which win)."""
    from_stage = staged.get("parameters") if isinstance(staged, dict) else None
    return {**(from_stage if isinstance(from_stage, dict) else {}), **(parameters or {})}


def record_from_description(description: str | None) -> dict | None:
    """The inputs record a description written by :meth:`ExecutionInputs.description` holds, else None."""
    if not description or not description.startswith(DESCRIPTION_PREFIX):
        return None
    try:
        record = json.loads(description[len(DESCRIPTION_PREFIX):])
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


def changed_inputs(before: dict | None, now: dict) -> str:
    """What differs between two inputs records, e.g. ``parameter MseThreshold (6.0 -> 0.01)``."""
    if not before:
        return "its inputs were not recorded"
    hashed = sorted((set(before) | set(now)) - set(_NOT_DATA))
    changes = [key for key in hashed if before.get(key, "not staged") != now.get(key, "not staged")]
    if before.get("definition") != now.get("definition"):
        changes.append("definition")
    if before.get("selection") != now.get("selection"):
        changes.append("selection (rerun_steps / rerun_reference)")
    old_params, new_params = before.get("parameters"), now.get("parameters") or {}
    if isinstance(old_params, dict):
        for name in sorted(set(old_params) | set(new_params)):
            if old_params.get(name) != new_params.get(name):
                changes.append(f"parameter {name} ({old_params.get(name, 'unset')} -> {new_params.get(name, 'unset')})")
    return ", ".join(changes) or "no recorded input differs (an input outside the record changed)"
