"""What an execution of one logical date depends on, and the rule that makes a date idempotent.

The rule (README "Backfills", the DAG's doc): a run for a logical date whose inputs — the
staged input data's sha256, the batch data's sha256, the pipeline definition's sha256 and the
pipeline parameter values — equal those of a Succeeded execution re-attaches to that execution
and registers no new model version; any changed input starts a new execution. The inputs are
folded into the execution's display name (``naming.execution_display_name``), so "equal
inputs" is "same display name", which the start/run tasks already look executions up by.
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
_HASH_KEYS = ("input data", "batch data", "definition")


@dataclass(frozen=True)
class ExecutionInputs:
    """The inputs of one date's execution: data, definition and parameter values."""

    dag_id: str
    ds: str
    definition_sha256: str
    parameters: dict[str, str] = field(default_factory=dict)
    input_sha256: str | None = None
    batch_sha256: str | None = None

    @classmethod
    def for_run(cls, context, *, definition_sha256: str, parameters: dict[str, str],
                staged: dict | None) -> ExecutionInputs:
        """The inputs of this task's DAG run; ``staged`` is stage_input's XCom (data hashes) or None."""
        staged = staged if isinstance(staged, dict) else {}
        return cls(dag_id=context["dag"].dag_id, ds=run_ds(context), definition_sha256=definition_sha256,
                   parameters=dict(parameters), input_sha256=staged.get("sha256"),
                   batch_sha256=staged.get("batch_sha256"))

    def record(self) -> dict[str, Any]:
        """The inputs as stored beside an execution: short hashes and the parameter values."""
        return {
            "input data": self.input_sha256[:16] if self.input_sha256 else "not staged",
            "batch data": self.batch_sha256[:16] if self.batch_sha256 else "not staged",
            "definition": self.definition_sha256[:16],
            "parameters": dict(sorted(self.parameters.items())),
        }

    def fingerprint(self) -> str:
        """sha256 over the dag id, the date and every input (full hashes)."""
        material = {"dag_id": self.dag_id, "ds": self.ds, "input": self.input_sha256, "batch": self.batch_sha256,
                    "definition": self.definition_sha256, "parameters": dict(sorted(self.parameters.items()))}
        return hashlib.sha256(json.dumps(material, sort_keys=True).encode("utf-8")).hexdigest()

    def display_name(self) -> str:
        """The execution display name these inputs give (see ``naming.execution_display_name``)."""
        return execution_display_name(self.dag_id, self.ds, self.fingerprint())

    def summary(self) -> str:
        """One line naming every input, for the log."""
        rec = self.record()
        params = ", ".join(f"{k}={v}" for k, v in rec["parameters"].items()) or "none"
        return (f"input data {rec['input data']}, batch data {rec['batch data']}, "
                f"definition {rec['definition']}, parameters {params}")

    def description(self) -> str:
        """PipelineExecutionDescription carrying :meth:`record`, so a later run can say what changed."""
        rec = self.record()
        text = DESCRIPTION_PREFIX + json.dumps(rec, sort_keys=True, separators=(",", ":"))
        if len(text) > MAX_DESCRIPTION:
            rec.pop("parameters")  # the parameters are also listed by the API itself
            text = DESCRIPTION_PREFIX + json.dumps(rec, sort_keys=True, separators=(",", ":"))
        return text


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
    changes = [key for key in _HASH_KEYS if key in before and before[key] != now.get(key)]
    old_params, new_params = before.get("parameters"), now.get("parameters") or {}
    if isinstance(old_params, dict):
        for name in sorted(set(old_params) | set(new_params)):
            if old_params.get(name) != new_params.get(name):
                changes.append(f"parameter {name} ({old_params.get(name, 'unset')} -> {new_params.get(name, 'unset')})")
    return ", ".join(changes) or "no recorded input differs (an input outside the record changed)"
