"""The cache-impact plan: for a new definition, which steps SageMaker's step cache would reuse and which re-run, and why.

Against a reference execution (by default the pipeline's last Succeeded one), step by step, with the rules
of SageMaker's "Pipeline step caching" and the local runner's key (one home: :mod:`sm_pipeline.cache_config`,
which :mod:`sm_pipeline.local.cache` uses):

1. only the cacheable step kinds (:mod:`sm_pipeline.step_kinds`, ``cacheable``) with ``CacheConfig.Enabled``
   (:func:`sm_pipeline.cache_config.cache_config`) are cached; every other step runs;
2. a cached step hits only when the reference execution has a Succeeded run of it, younger than its
   ``ExpireAfter``;
3. and its key is the same: step type + its arguments resolved with the run's parameter values and the
   execution variables as placeholders (``CACHE_PLACEHOLDERS``) (:func:`sm_pipeline.cache_config.cache_key`, the
   runner's). Code counts by its URI, as in SageMaker's key: this project's code URIs are content-addressed, so
   an edited script is a new URI; a script replaced in place under the same URI is invisible to SageMaker and
   to the plan (the local runner alone also hashes the bytes it runs: docs/CONTRACTS.md);
4. a step whose arguments read the properties of a step that re-runs misses (those properties are new);
   a Model step's properties count by content, as in the runner's key, so a Model step whose arguments are
   unchanged changes nothing downstream; a Condition changes what depends on it when what it reads changes.

Pure: the definitions, the reference execution's records and ``now`` are given; ``python -m sm_pipeline plan``
and ``upsert_pipeline`` fetch them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sm_pipeline.cache_config import CACHE_PLACEHOLDERS, cache_config, cache_key
from sm_pipeline.definition_diff import json_changes, short_value
from sm_pipeline.errors import DefinitionError
from sm_pipeline.expressions import ExpressionContext, ExpressionError, references, resolve
from sm_pipeline.parameters import cast_parameters
from sm_pipeline.step_graph import StepEntry, expression_scope, flatten_steps
from sm_pipeline.step_kinds import kind_of

# Get namespaces a plan cannot know before the run: kept as symbols in the key.
_SYMBOLIC = ("Steps", "ForEach", "IterationOutput", "PipelineExperimentConfig")


@dataclass(frozen=True)
class Reference:
    """The execution a plan compares with: its ARN, status, definition, parameter values and step records
    (ListPipelineExecutionSteps' ``PipelineExecutionSteps``)."""

    arn: str
    status: str
    definition: dict
    parameters: dict[str, Any] = field(default_factory=dict)
    steps: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class StepPlan:
    """One step's outcome: ``hit`` (the cache reuses the reference's run), ``miss`` (cached, but re-runs) or
    ``runs`` (not cached at all); ``reason`` says why; ``branch`` the Condition branch it needs, if any."""

    name: str
    type: str
    outcome: str
    reason: str
    branch: str | None = None

    @property
    def reruns(self) -> bool:
        """True unless the cache reuses the reference's run."""
        return self.outcome != "hit"


@dataclass(frozen=True)
class Plan:
    """The plan of every step of a definition (:func:`plan_definition`)."""

    steps: list[StepPlan]
    reference: str | None

    @property
    def reruns(self) -> list[str]:
        """The names of the steps that would run (misses and uncached steps)."""
        return [s.name for s in self.steps if s.reruns]

    @property
    def hits(self) -> list[str]:
        """The names of the steps the cache would reuse."""
        return [s.name for s in self.steps if not s.reruns]

    def summary_lines(self) -> list[str]:
        """The plan for people: a headline, then one line per step."""
        against = f"against {self.reference}" if self.reference else "with no earlier successful execution"
        lines = [f"plan {against}: {len(self.hits)} cache hit(s), {len(self.reruns)} step(s) re-run"
                 + (f" ({', '.join(self.reruns)})" if self.reruns else "")]
        for step in self.steps:
            where = f" [if {step.branch}]" if step.branch else ""
            lines.append(f"{'=' if step.outcome == 'hit' else '>'} {step.name} ({step.type}){where}: "
                         f"{step.outcome}: {step.reason}")
        return lines

    def to_json(self) -> dict[str, Any]:
        """``{"reference", "reruns", "hits", "steps": [{"name", "type", "outcome", "reason", "branch"}]}``."""
        return {"reference": self.reference, "reruns": self.reruns, "hits": self.hits,
                "steps": [{"name": s.name, "type": s.type, "outcome": s.outcome, "reason": s.reason,
                           "branch": s.branch} for s in self.steps]}


def plan_definition(definition: dict, reference: Reference | None, *, parameters: dict[str, Any] | None = None,
                    now: datetime | None = None) -> Plan:
    """The plan of ``definition`` run with ``parameters`` (the rest default) against ``reference``.

    Raises DefinitionError / ParameterError (InvalidInput, one line) for a definition or values that cannot run.
    """
    now = now or datetime.now(UTC)
    values = cast_parameters(definition.get("Parameters") or [], parameters)
    entries = {e.name: e for e in flatten_steps(definition) if e.name}
    ref_entries: dict[str, StepEntry] = {}
    ref_values: dict[str, Any] = {}
    ref_steps: dict[str, dict] = {}
    if reference is not None:
        ref_entries = {e.name: e for e in flatten_steps(reference.definition) if e.name}
        ref_declared = reference.definition.get("Parameters") or []
        known = {p.get("Name") for p in ref_declared if isinstance(p, dict)}
        ref_values = cast_parameters(ref_declared, {k: v for k, v in reference.parameters.items() if k in known})
        for record in reference.steps:
            ref_steps.setdefault(str(record.get("StepName")), record)  # newest first, as the API lists them
    planner = _Planner(entries, values, ref_entries, ref_values, ref_steps, reference, now)
    return Plan([planner.plan(name) for name in entries], reference.arn if reference else None)


class _Planner:
    def __init__(self, entries, values, ref_entries, ref_values, ref_steps, reference, now):
        self.entries, self.values = entries, values
        self.ref_entries, self.ref_values, self.ref_steps = ref_entries, ref_values, ref_steps
        self.reference, self.now = reference, now
        self.plans: dict[str, StepPlan] = {}
        self.changes: dict[str, bool] = {}
        self.visiting: set[str] = set()

    def upstream(self, entry: StepEntry) -> list[str]:
        """The steps whose properties this step's own expressions read."""
        names = {ref.name for ref in references(expression_scope(entry)) if ref.kind == "Steps"}
        return sorted(n for n in names if n in self.entries and n != entry.name)

    def changed(self, name: str) -> bool:
        """Whether the step's properties would differ from the reference's (what its readers see)."""
        if name not in self.changes:
            if name in self.visiting:
                raise DefinitionError(f"step {name}: its references form a cycle")
            self.visiting.add(name)
            entry = self.entries[name]
            kind = kind_of(entry.type)
            upstream_changed = any(self.changed(n) for n in self.upstream(entry))
            if kind is not None and kind.in_place:
                result = upstream_changed
            elif entry.type == "Model":  # by content, as the runner's key counts models
                result = upstream_changed or self.key_of(name, new=True) != self.key_of(name, new=False)
            else:
                result = self.plan(name).reruns
            self.visiting.discard(name)
            self.changes[name] = result
        return self.changes[name]

    def key_of(self, name: str, *, new: bool) -> tuple[str, Any] | None:
        """(cache key, key material) of the step in the new definition or in the reference's; None when absent."""
        entry = self.entries.get(name) if new else self.ref_entries.get(name)
        if entry is None:
            return None
        values = self.values if new else self.ref_values
        arguments = _symbolic(entry.step.get("Arguments") or {})
        try:
            resolved = resolve(arguments, ExpressionContext(parameters=values, execution_variables=CACHE_PLACEHOLDERS))
        except ExpressionError as err:
            raise DefinitionError(f"step {name}: {err}") from None
        return cache_key(entry.type, resolved, ""), {"arguments": resolved}

    def plan(self, name: str) -> StepPlan:
        if name in self.plans:
            return self.plans[name]
        entry = self.entries[name]
        branch = f"{entry.condition}.{entry.branch}" if entry.condition else None

        def done(outcome: str, reason: str) -> StepPlan:
            self.plans[name] = StepPlan(name, entry.type, outcome, reason, branch)
            return self.plans[name]

        kind = kind_of(entry.type)
        if kind is None or not kind.cacheable:
            return done("runs", f"{entry.type} steps are not cached")
        enabled, expire_after = cache_config(entry.step)
        if not enabled:
            return done("runs", "its CacheConfig is not enabled")
        if self.reference is None:
            return done("miss", "no earlier successful execution to reuse")
        record = self.ref_steps.get(name)
        if name not in self.ref_entries:
            return done("miss", "a new step: the reference execution has no run of it")
        if record is None or record.get("StepStatus") != "Succeeded":
            status = record.get("StepStatus") if record else "not run"
            return done("miss", f"it did not succeed in the reference execution ({status})")
        old_kind = kind_of(self.ref_entries[name].type)
        upstream = [n for n in self.upstream(entry) if self.changed(n)]
        if upstream:
            return done("miss", f"it reads properties of {', '.join(upstream)}, new in this run")
        new_key, old_key = self.key_of(name, new=True), self.key_of(name, new=False)
        if old_kind is None or old_key is None or new_key is None or new_key[0] != old_key[0]:
            return done("miss", _why(old_key, new_key, entry.type, self.ref_entries[name].type))
        ran = _moment(record.get("StartTime") or record.get("EndTime"))
        if expire_after is not None and ran is not None and self.now - ran > expire_after:
            return done("miss", f"the cached run ({ran.isoformat(timespec='seconds')}) is older than its "
                                f"ExpireAfter {entry.step['CacheConfig'].get('ExpireAfter')}")
        source = ((record.get("CacheHitResult") or {}).get("SourcePipelineExecutionArn")
                  or self.reference.arn)
        return done("hit", f"same type and arguments as its run in {source}"
                           + (f" ({_age(self.now - ran)} ago)" if ran else ""))


def _symbolic(value: Any) -> Any:
    """``value`` with what only the run knows (step properties, property files, the current item) as symbols."""
    if isinstance(value, list):
        return [_symbolic(v) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1 and isinstance(value.get("Get"), str) and value["Get"].split(".", 1)[0] in _SYMBOLIC:
        return f"<{value['Get']}>"
    if len(value) == 1 and "Std:JsonGet" in value:
        return "<Std:JsonGet " + json.dumps(value["Std:JsonGet"], sort_keys=True) + ">"
    return {k: _symbolic(v) for k, v in value.items()}


def _why(old: tuple | None, new: tuple | None, new_type: str, old_type: str) -> str:
    if old_type != new_type:
        return f"its type changed ({old_type} -> {new_type})"
    if old is None or new is None:
        return "its arguments cannot be compared"
    changes = json_changes(old[1], new[1])
    shown = ", ".join(f"{c.path} {short_value(c.old)} -> {short_value(c.new)}" for c in changes[:3])
    more = f" (+{len(changes) - 3} more)" if len(changes) > 3 else ""
    return f"its cache key changed: {shown}{more}" if changes else "its cache key changed"


def _moment(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return None


def _age(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} days"
