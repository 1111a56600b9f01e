"""What a pipeline execution costs in SageMaker compute: a bound before it starts, an estimate after it ends.

The one home of the cost rules, shared by ``python -m sm_pipeline cost``, the local execution page and the
Airflow tasks (XCom, report, approval request). An estimate, not a bill: on-demand prices of the instance
time SageMaker bills per second for the jobs the steps run (no storage, data transfer, Savings Plans,
Spot, free tier or taxes).

- **Prices**: ``sagemaker_prices.json`` beside this module (instance type -> USD per hour, per region and
  usage: training, processing, transform; with its source and the date it was read), overlaid by the
  user's own table (``AIRSAGE_PRICE_TABLE`` or ``prices=``) whose entries win. An instance type without a
  price is *unknown*, never 0.
- **Bound** (before a run): for every job step of the definition (both branches of a condition), instance
  type x count x the step's ``MaxRuntimeInSeconds`` x its attempts (1 + the largest ``MaxAttempts`` of its
  RetryPolicies), parameters resolved. A Processing step without a stopping condition is bounded by the
  API's maximum (777,600 s); a Transform job has no run-time limit, so its bound is unknown.
- **Estimate** (after a run): every step that ran, its billed-like seconds (a training job's
  ``BillableTimeInSeconds``, else the job's start and end, else the step's), rounded up to whole seconds,
  x instances x price. Cache hits cost 0 (the source execution paid); steps that run no instance of
  their own cost 0; step kinds billed elsewhere (Lambda, Tuning, EMR, ...) are unknown.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from sm_pipeline.errors import InvalidInput
from sm_pipeline.step_graph import StepEntry, flatten_steps
from sm_pipeline.step_kinds import StepKind, kind_of

PRICES_FILE = Path(__file__).with_name("sagemaker_prices.json")
PRICE_TABLE_ENV = "AIRSAGE_PRICE_TABLE"
USAGES = ("training", "processing", "transform")
# CreateProcessingJob's StoppingCondition.MaxRuntimeInSeconds: at most 777,600 s (9 days)
PROCESSING_MAX_RUNTIME = 777_600
# where each usage's job keeps its run-time limit, and its times in Describe*Job (where a step keeps its
# instances is the step kind's: StepKind.resources)
_RUN_TIME = {
    "processing": ("StoppingCondition.MaxRuntimeInSeconds", ("ProcessingStartTime", "ProcessingEndTime")),
    "training": ("StoppingCondition.MaxRuntimeInSeconds", ("TrainingStartTime", "TrainingEndTime")),
    "transform": (None, ("TransformStartTime", "TransformEndTime")),
}


class PriceTableError(InvalidInput):
    """A price table cannot be used; one line naming the file and the entry."""


@dataclass(frozen=True)
class PriceTable:
    """On-demand USD per instance-hour by region, usage (training, processing, transform) and instance type."""

    regions: Mapping[str, Mapping[str, Mapping[str, float]]]
    source: str = ""
    retrieved: str | None = None
    files: tuple[str, ...] = field(default_factory=tuple)

    def price(self, region: str | None, usage: str, instance_type: str) -> float | None:
        """USD per hour of one instance, or None when the table has no price for it."""
        return (self.regions.get(region or "") or {}).get(usage, {}).get(instance_type)

    def describe(self) -> dict:
        """Where the prices come from (for the XCom, the report and the CLI)."""
        return {"source": self.source, "retrieved": self.retrieved, "files": list(self.files)}


def _read_table(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PriceTableError(f"price table {path}: does not exist") from None
    except (OSError, UnicodeDecodeError) as err:
        raise PriceTableError(f"price table {path}: cannot be read: {err}") from None
    except json.JSONDecodeError as err:
        raise PriceTableError(f"price table {path}: not valid JSON: {err.msg} at line {err.lineno}") from None
    regions = data.get("regions") if isinstance(data, dict) else None
    if not isinstance(regions, dict):
        raise PriceTableError(f"price table {path}: expected an object with 'regions': "
                              "{region: {training|processing|transform: {instance type: USD per hour}}}")
    for region, usages in regions.items():
        if not isinstance(usages, dict):
            raise PriceTableError(f"price table {path}: regions.{region}: expected an object of usages")
        for usage, prices in usages.items():
            if usage not in USAGES:
                raise PriceTableError(f"price table {path}: regions.{region}.{usage}: unknown usage "
                                      f"(expected one of {', '.join(USAGES)})")
            if not isinstance(prices, dict):
                raise PriceTableError(f"price table {path}: regions.{region}.{usage}: expected "
                                      "{instance type: USD per hour}")
            for instance_type, price in prices.items():
                if (isinstance(price, bool) or not isinstance(price, int | float) or not math.isfinite(price)
                        or price < 0):
                    raise PriceTableError(f"price table {path}: regions.{region}.{usage}.{instance_type}: "
                                          f"{price!r} is not a price (USD per hour, a number >= 0)")
    return data


@lru_cache(maxsize=8)
def _load(paths: tuple[str, ...]) -> PriceTable:
    regions: dict[str, dict[str, dict[str, float]]] = {}
    source, retrieved = "", None
    for path in paths:
        data = _read_table(Path(path))
        source = str(data.get("source") or source)
        retrieved = data.get("retrieved") or retrieved
        for region, usages in data["regions"].items():
            for usage, prices in usages.items():
                regions.setdefault(region, {}).setdefault(usage, {}).update(
                    {str(k): float(v) for k, v in prices.items()})
    return PriceTable(regions=regions, source=source, retrieved=retrieved, files=paths)


def load_prices(user_file: str | Path | None = None) -> PriceTable:
    """The repository's price table overlaid by the user's (``user_file``, else ``$AIRSAGE_PRICE_TABLE``)."""
    user = user_file or os.environ.get(PRICE_TABLE_ENV) or None
    paths = (str(PRICES_FILE),) + ((str(Path(user).expanduser().resolve()),) if user else ())
    return _load(paths)


# -- reading a step's resources ---------------------------------------------------------------------------
def _at(obj: Any, path: str) -> Any:
    for key in path.split("."):
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


def _resolved(value: Any, values: Mapping[str, Any]) -> Any:
    """``value`` with parameters resolved (execution variables as placeholders); None if it needs a step's output."""
    from sm_pipeline.expressions import PLACEHOLDER_VARIABLES, ExpressionContext, ExpressionError, resolve

    try:
        return resolve(value, ExpressionContext(parameters=values, execution_variables=PLACEHOLDER_VARIABLES))
    except ExpressionError:
        return None


def _instances(kind: StepKind, arguments: Mapping[str, Any],
               values: Mapping[str, Any]) -> list[tuple[str, int]] | str:
    """``[(instance type, count), ...]`` a job step asks for, or why they cannot be told."""
    usage = kind.billed
    config = _resolved(_at(arguments, kind.resources), values) if kind.resources else None
    if not isinstance(config, dict):
        return "its instance configuration depends on another step's output"
    groups = config.get("InstanceGroups") if usage == "training" and config.get("InstanceGroups") else [config]
    found = []
    for group in groups:
        kind, count = (group or {}).get("InstanceType"), (group or {}).get("InstanceCount", 1)
        try:
            count = int(count)
        except (TypeError, ValueError):
            return f"instance count {count!r} is not a number"
        if not isinstance(kind, str) or not kind:
            return "it names no instance type"
        found.append((kind, count))
    return found


def _attempts(step: Mapping[str, Any]) -> int | None:
    """1 + the largest MaxAttempts of the step's RetryPolicies; None when a policy is bounded by time only."""
    most = 0
    for policy in step.get("RetryPolicies") or []:
        if not isinstance(policy, dict):
            continue
        if policy.get("MaxAttempts") is None:
            return None
        most = max(most, int(policy["MaxAttempts"]))
    return 1 + most


def _seconds(start: Any, end: Any) -> float | None:
    def moment(value: Any) -> datetime | None:
        if isinstance(value, datetime):
            return value
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value).astimezone()
        try:
            return datetime.fromisoformat(str(value))
        except (TypeError, ValueError):
            return None

    first, last = moment(start), moment(end)
    if first is None or last is None:
        return None
    return max(0.0, (last - first).total_seconds())


def _parameter_values(definition: dict, parameters: Mapping[str, Any] | None) -> dict[str, Any]:
    from sm_pipeline.parameters import cast_parameters

    declared = [p for p in definition.get("Parameters") or [] if isinstance(p, dict) and "Name" in p]
    known = {p["Name"] for p in declared}
    return cast_parameters(declared, {k: v for k, v in (parameters or {}).items() if k in known})


def _line(step: str, **fields: Any) -> dict[str, Any]:
    return {"step": step, **fields}


# -- the two figures ----------------------------------------------------------------------------------------
def cost_bound(definition: dict, parameters: Mapping[str, Any] | None = None, *, region: str | None = None,
               prices: PriceTable | None = None) -> dict[str, Any]:
    """The most the execution can cost: every job step at its run-time limit, every attempt (see the module doc)."""
    prices = prices or load_prices()
    values = _parameter_values(definition, parameters)
    lines, total, unknown = [], 0.0, []
    for entry in flatten_steps(definition):
        line = _bound_line(entry, values, region, prices)
        lines.append(line)
        if line["usd"] is None:
            unknown.append(entry.name)
        else:
            total += line["usd"]
    return {"usd": round(total, 6), "complete": not unknown, "unknown": unknown, "steps": lines}


def _bound_line(entry: StepEntry, values: Mapping[str, Any], region: str | None, prices: PriceTable) -> dict:
    kind = kind_of(entry.type)
    usage = kind.billed if kind else None
    if usage == "none":
        return _line(entry.name, usd=0.0, note="runs no instance of its own")
    if usage not in USAGES:
        return _line(entry.name, usd=None, note=f"{entry.type} steps are not estimated")
    arguments = entry.step.get("Arguments") if isinstance(entry.step.get("Arguments"), dict) else {}
    instances = _instances(kind, arguments, values)
    if isinstance(instances, str):
        return _line(entry.name, usd=None, note=instances)
    limit_path = _RUN_TIME[usage][0]
    limit = _resolved(_at(arguments, limit_path), values) if limit_path else None
    if limit is None and usage == "processing":
        limit = PROCESSING_MAX_RUNTIME
    attempts = _attempts(entry.step)
    fields = {"usage": usage, "instances": [list(i) for i in instances], "max_runtime_s": limit, "attempts": attempts}
    if limit is None:
        why = ("a transform job has no run-time limit" if usage == "transform"
               else "it sets no MaxRuntimeInSeconds")
        return _line(entry.name, usd=None, note=why, **fields)
    if attempts is None:
        return _line(entry.name, usd=None, note="a retry policy is bounded by time only (no MaxAttempts)", **fields)
    usd, missing = _priced(instances, prices, region, usage, float(limit) / 3600 * attempts)
    if missing:
        return _line(entry.name, usd=None, note=_no_price(missing, usage, region), **fields)
    return _line(entry.name, usd=round(usd, 6), **fields)


def _priced(instances: list[tuple[str, int]], prices: PriceTable, region: str | None, usage: str,
            hours: float) -> tuple[float, list[str]]:
    """(USD for ``hours`` of every instance, the instance types without a price)."""
    usd, missing = 0.0, []
    for instance_type, count in instances:
        price = prices.price(region, usage, instance_type)
        if price is None:
            missing.append(instance_type)
        else:
            usd += price * count * hours
    return usd, missing


def _no_price(types: list[str], usage: str, region: str | None) -> str:
    return f"no {usage} price for {', '.join(sorted(set(types)))} in {region or 'an unknown region'}"


def cost_estimate(definition: dict, steps: list[dict], parameters: Mapping[str, Any] | None = None, *,
                  region: str | None = None, prices: PriceTable | None = None,
                  jobs: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """What the steps that ran cost (see the module doc); ``jobs`` maps step names to their Describe*Job answers."""
    prices = prices or load_prices()
    values = _parameter_values(definition, parameters)
    by_name = {entry.name: entry for entry in flatten_steps(definition)}
    lines, total, unknown = [], 0.0, []
    for step in sorted(steps, key=lambda s: str(s.get("StartTime") or "")):
        name = str(step.get("StepName", "?"))
        if step.get("StepStatus") == "NotExecuted" or not step.get("StartTime"):
            continue
        line = _estimate_line(name, step, by_name.get(name), values, region, prices, (jobs or {}).get(name))
        lines.append(line)
        if line["usd"] is None:
            unknown.append(name)
        else:
            total += line["usd"]
    return {"usd": round(total, 6), "complete": not unknown, "unknown": unknown, "steps": lines}


def _estimate_line(name: str, step: dict, entry: StepEntry | None, values: Mapping[str, Any], region: str | None,
                   prices: PriceTable, job: Mapping[str, Any] | None) -> dict:
    status = step.get("StepStatus")
    source = (step.get("CacheHitResult") or {}).get("SourcePipelineExecutionArn")
    if source:
        return _line(name, status=status, usd=0.0, note=f"cache hit of {source}")
    reused = (step.get("SelectiveExecutionResult") or {}).get("SourcePipelineExecutionArn")
    if reused:  # a selective execution took this step's outputs from its reference: it ran nothing here
        return _line(name, status=status, usd=0.0, note=f"outputs of {reused} (selective execution)")
    kind = kind_of(entry.type) if entry else None
    usage = kind.billed if kind else None
    if usage == "none":
        return _line(name, status=status, usd=0.0, note="runs no instance of its own")
    if usage not in USAGES:
        what = entry.type if entry else "unknown"
        return _line(name, status=status, usd=None, note=f"{what} steps are not estimated")
    arguments = dict(job) if job else (entry.step.get("Arguments") if isinstance(entry.step.get("Arguments"), dict)
                                       else {})
    instances = _instances(kind, arguments, values)
    if isinstance(instances, str):
        return _line(name, status=status, usd=None, note=instances)
    seconds = None
    if job and usage == "training" and job.get("BillableTimeInSeconds") is not None:
        seconds = float(job["BillableTimeInSeconds"])
    if seconds is None and job:
        seconds = _seconds(*(job.get(key) for key in _RUN_TIME[usage][1]))
    if seconds is None:
        seconds = _seconds(step.get("StartTime"), step.get("EndTime"))
    fields = {"usage": usage, "instances": [list(i) for i in instances]}
    if seconds is None:
        return _line(name, status=status, usd=None, note="no start and end time", **fields)
    seconds = float(math.ceil(seconds))
    usd, missing = _priced(instances, prices, region, usage, seconds / 3600)
    if missing:
        return _line(name, status=status, seconds=seconds, usd=None, note=_no_price(missing, usage, region), **fields)
    return _line(name, status=status, seconds=seconds, usd=round(usd, 6), **fields)


def execution_cost(definition: dict, parameters: Mapping[str, Any] | None = None, *, steps: list[dict] | None = None,
                   region: str | None = None, prices: PriceTable | None = None,
                   jobs: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """Both figures in one JSON-able dict: ``currency``, ``region``, ``prices``, ``bound``, ``estimate``.

    ``estimate`` is None when no ``steps`` are given (before the execution ran).
    """
    prices = prices or load_prices()
    return {
        "currency": "USD",
        "region": region,
        "prices": prices.describe(),
        "bound": cost_bound(definition, parameters, region=region, prices=prices),
        "estimate": (cost_estimate(definition, steps, parameters, region=region, prices=prices, jobs=jobs)
                     if steps is not None else None),
    }


def step_jobs(client, steps: list[dict] | None) -> dict[str, dict]:
    """``{step name: Describe*Job}`` of the job each billed step ran, through a boto3 SageMaker ``client``.

    What the estimate reads a job's instances and billed time from. Cache hits are left out (their job
    belongs to the execution that ran it), as are the steps a selective execution reused; the job kinds are the
    step-kinds table's billed ones.
    """
    from sm_pipeline.step_kinds import KINDS

    jobs = {}
    for step in steps or []:
        if step.get("CacheHitResult") or step.get("SelectiveExecutionResult"):
            continue
        for key, meta in (step.get("Metadata") or {}).items():
            kind = next((k for k in KINDS.values() if k.job == key and k.billed in USAGES), None)
            if kind and isinstance(meta, dict) and meta.get("Arn"):
                describe = getattr(client, f"describe_{kind.billed}_job")
                jobs[step["StepName"]] = describe(**{f"{kind.job[:-3]}JobName": meta["Arn"].rsplit("/", 1)[-1]})
    return jobs


def usd(amount: float | None) -> str:
    """``$0.0123`` below a dollar, ``$12.35`` above; ``unknown`` for None."""
    if amount is None:
        return "unknown"
    return f"${amount:,.4f}" if abs(amount) < 1 else f"${amount:,.2f}"


def figure(part: Mapping[str, Any] | None) -> str:
    """One figure (a bound or an estimate) as text: ``$0.0123``, ``$0.0123 + unknown (A, B)`` or ``unknown``."""
    if not part:
        return "unknown"
    if part.get("complete"):
        return usd(part.get("usd"))
    names = ", ".join(part.get("unknown") or [])
    return f"{usd(part.get('usd'))} + unknown ({names})" if part.get("usd") else f"unknown ({names})"


def summary_line(cost: Mapping[str, Any] | None) -> str:
    """``estimated $X (bound $Y), on-demand USD, region R``: the line logs, reports and approval requests show."""
    if not cost:
        return "cost: not computed"
    estimate = cost.get("estimate")
    head = f"estimated {figure(estimate)}" if estimate is not None else "not run yet"
    return f"{head} (bound {figure(cost.get('bound'))}), on-demand {cost.get('currency', 'USD')}, " \
           f"region {cost.get('region') or 'unknown'}"
