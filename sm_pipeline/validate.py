"""SageMaker's rules for pipeline definitions: every problem is one string naming the step or reference.

``python -m sm_pipeline validate`` prints these problems, the emulated service refuses a definition with
them and the local runner refuses it with the very same ones, before it writes anything:

- :func:`validate_definition` — what SageMaker would reject: JSON limits (size, depth, non-finite
  numbers), the known top-level fields, the step types of :mod:`sm_pipeline.step_kinds`, the shape of
  every field the runner reads (:mod:`sm_pipeline.definition_schema`), names, references, cycles and
  parameter defaults that can never work where they are used.
- :func:`parameter_value_problems` — given parameter values that can never work where the
  definition uses them (an InstanceCount of 0, an S3 URI with a newline), by parameter name.

What the local runner cannot run (step types, images, entrypoints) is the runner's own business:
:mod:`sm_pipeline.local.capabilities`. Nothing here imports the runner.

To add a check of single steps, write ``def _check_x(entry, ctx) -> Iterator[str]`` and append it to
``STEP_CHECKS``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sm_pipeline.cache_config import parse_expire_after
from sm_pipeline.definition_schema import (
    CONDITION_TYPES,
    MLFLOW_CONFIG,
    PARALLELISM_CONFIGURATION,
    STEP_FIELDS,
    STEP_SCHEMAS,
    TOP_LEVEL_FIELDS,
    Use,
    control_character,
    is_expression,
)
from sm_pipeline.errors import DefinitionError, DefinitionInvalid, shown
from sm_pipeline.expressions import (
    EXECUTION_VARIABLES,
    EXPERIMENT_CONFIG_FIELDS,
    FUNCTIONS,
    NAMESPACES,
    PLACEHOLDER_VARIABLES,
    ExpressionContext,
    ExpressionError,
    references,
    resolve,
)
from sm_pipeline.json_limits import MAX_DEPTH, depth_exceeds
from sm_pipeline.step_graph import (
    DEPENDS_ON_TRIGGERS,
    FOR_EACH_BODY,
    MAX_DEFINITION_CHARS,
    NESTING_KEYS,
    StepEntry,
    body_steps,
    expression_scope,
    find_cycles,
    flatten_steps,
    object_or_empty,
    size_problem,
)
from sm_pipeline.step_kinds import KNOWN_STEP_TYPES, kind_of

PARAMETER_TYPES = {"String": (str,), "Integer": (int,), "Float": (float, int), "Boolean": (bool,)}
# StartPipelineExecution: a parameter value is at most 1024 characters.
MAX_PARAMETER_VALUE_CHARS = 1024
_STEP_NAME = re.compile(r"^[A-Za-z0-9\-_]{1,64}$")
_PARAMETER_NAME = re.compile(r"^[A-Za-z0-9\-_]{1,256}$")

# The SDK 3.x's ForEachStep (sagemaker.mlops.workflow.for_each_step), whose checks SageMaker makes too:
# MaxConcurrency 1-50, a literal IterableItems list of 1-100 items, no Condition/Fail/ForEach in a body,
# a Selector picking MaxBy/MinBy on an IterationOutput of a body step, children named <body>-<index>.
FOR_EACH_MAX_CONCURRENCY = (1, 50)
# The properties of each condition type besides Type, as the SDKs write them (ConditionTypeEnum's to_request);
# the comparisons (Equals, GreaterThan, ...) have LeftValue and RightValue.
CONDITION_PROPERTIES = {"Not": ("Condition",), "Or": ("Conditions",), "In": ("QueryValue", "Values")}
FOR_EACH_MAX_LITERAL_ITEMS = 100
FOR_EACH_BODY_REFUSED = ("Condition", "Fail", "ForEach")
FOR_EACH_PICKS = ("MaxBy", "MinBy")
FOR_EACH_PROPERTIES = ("Status", "InputItemCount", "TotalStepCount", "SucceededStepCount", "FailedStepCount",
                       "StoppedStepCount", "IterationOutputs", "Selected")
_ITERATION_OUTPUTS = re.compile(r"IterationOutputs\[(\d+)\]\.([^.\[\]]+)(.*)", re.DOTALL)


@dataclass
class _Context:
    """What the step checks share."""

    by_name: dict[str, StepEntry]
    parameters: dict[str, dict]
    uses: list[Use]


def validate_definition(obj: Any) -> list[str]:
    """Every problem SageMaker would reject a definition for (empty when it is well-formed)."""
    if not isinstance(obj, dict):
        return [f"a pipeline definition must be a JSON object, not {type(obj).__name__}"]
    limit = _json_limit_problem(obj)
    if limit:
        return [limit]
    problems: list[str] = []
    _check_top_level(obj, problems)
    parameters = _check_parameters(obj.get("Parameters", []), problems)
    steps = obj.get("Steps")
    if not isinstance(steps, list) or not steps:
        problems.append("definition has no 'Steps' list (or it is empty)")
        return problems
    _check_step_lists(steps, "Steps", problems)
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
        if not _STEP_NAME.fullmatch(name):
            problems.append(f"step {name!r}: a step name is 1-64 letters, digits, '-' or '_'")
        if not isinstance(step_type, str) or step_type not in KNOWN_STEP_TYPES:
            problems.append(f"step {name!r}: unknown step type {shown(step_type)}")
    ctx = _Context(by_name, parameters, [])
    for entry in entries:
        if entry.name in by_name and by_name[entry.name] is entry:
            for check in STEP_CHECKS:
                problems.extend(check(entry, ctx))
    for cycle in find_cycles(by_name):
        problems.append("dependency cycle: " + " -> ".join(cycle))
    if not problems:
        defaults = {name: p["DefaultValue"] for name, p in parameters.items() if "DefaultValue" in p}
        problems.extend(_use_problems(ctx.uses, defaults, "DefaultValue "))
    return problems


def _check_top_level(obj: dict, problems: list[str]) -> None:
    """Unknown top-level fields are refused; MlflowConfig and ParallelismConfiguration have their shapes."""
    for key in obj:
        if key not in TOP_LEVEL_FIELDS:
            problems.append(f"unknown top-level field {shown(key)} (known: {', '.join(TOP_LEVEL_FIELDS)})")
    mlflow = obj.get("MlflowConfig")
    if mlflow is not None:
        # the SDK writes null for an unset field: {"MlflowResourceArn": null, "MlflowExperimentName": "x"}
        set_fields = {k: v for k, v in mlflow.items() if v is not None} if isinstance(mlflow, dict) else mlflow
        MLFLOW_CONFIG.walk(set_fields, "MlflowConfig", problems, None, "", runtime=False)
    parallelism = obj.get("ParallelismConfiguration")
    if parallelism is not None:
        PARALLELISM_CONFIGURATION.walk(parallelism, "ParallelismConfiguration", problems, None, "", runtime=False)


def definition_max_parallel(definition: dict) -> int | None:
    """The definition's own ``ParallelismConfiguration.MaxParallelExecutionSteps``, or None."""
    parallelism = definition.get("ParallelismConfiguration")
    value = parallelism.get("MaxParallelExecutionSteps") if isinstance(parallelism, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _json_limit_problem(obj: dict) -> str | None:
    if depth_exceeds(obj, MAX_DEPTH):
        return f"JSON nested more than {MAX_DEPTH} levels deep"
    try:
        text = json.dumps(obj, separators=(",", ":"), allow_nan=False)
    except ValueError:
        return "the definition holds a non-finite number (NaN or Infinity), which JSON cannot carry"
    except TypeError as exc:
        return f"the definition holds a value JSON cannot carry ({exc})"
    if len(text) > MAX_DEFINITION_CHARS:
        return size_problem(len(text))
    return None


def _check_step_lists(steps: list, where: str, problems: list[str]) -> None:
    """Non-object entries of Steps and of Condition branches (the walk skips them, so say so here)."""
    for index, step in enumerate(steps):
        if not isinstance(step, dict):
            problems.append(f"{where}[{index}] must be a step object, not {shown(step)}")
            continue
        if isinstance(step.get("Type"), str) and step["Type"] in NESTING_KEYS and isinstance(step.get("Arguments"), dict):
            name = step.get("Name")
            for key in NESTING_KEYS[step["Type"]]:
                branch = step["Arguments"].get(key)
                if branch is None:
                    continue
                if not isinstance(branch, list):
                    problems.append(f"step {name!r}: Arguments.{key} must be a list of steps, not {shown(branch)}")
                else:
                    _check_step_lists(branch, f"step {name!r}: Arguments.{key}", problems)


def _check_parameters(parameters: Any, problems: list[str]) -> dict[str, dict]:
    declared: dict[str, dict] = {}
    if not isinstance(parameters, list):
        problems.append("'Parameters' must be a list")
        return declared
    for index, parameter in enumerate(parameters):
        name = parameter.get("Name") if isinstance(parameter, dict) else None
        if not isinstance(name, str) or not name:
            problems.append(f"parameter #{index + 1} has no Name")
            continue
        if name in declared:
            problems.append(f"duplicate parameter {name!r}")
        if not _PARAMETER_NAME.fullmatch(name):
            problems.append(f"parameter {name!r}: a parameter name is 1-256 letters, digits, '-' or '_'")
        declared.setdefault(name, parameter)
        ptype = parameter.get("Type")
        if not isinstance(ptype, str) or ptype not in PARAMETER_TYPES:
            problems.append(f"parameter {name!r}: unknown type {shown(ptype)} (String, Integer, Float or Boolean)")
            continue
        if "DefaultValue" in parameter:
            default = parameter["DefaultValue"]
            expected = PARAMETER_TYPES[ptype]
            if not isinstance(default, expected) or (ptype != "Boolean" and isinstance(default, bool)):
                problems.append(f"parameter {name!r}: DefaultValue {shown(default)} is not a {ptype}")
            else:
                problem = parameter_value_problem(ptype, default)
                if problem:
                    problems.append(f"parameter {name!r}: DefaultValue {problem}")
        enum = parameter.get("EnumValues")
        if enum is not None and not isinstance(enum, list):
            problems.append(f"parameter {name!r}: EnumValues must be a list")
    return declared


def parameter_value_problem(ptype: str, value: Any) -> str | None:
    """Why a value of the declared type can never be a parameter value (NaN, a newline, too long), or None."""
    if ptype == "Float" and isinstance(value, float) and not math.isfinite(value):
        return f"{value} is not a finite number"
    if ptype == "String" and isinstance(value, str):
        if len(value) > MAX_PARAMETER_VALUE_CHARS:
            return f"{shown(value)} is {len(value)} characters; SageMaker allows at most {MAX_PARAMETER_VALUE_CHARS}"
        bad = control_character(value)
        if bad:
            return f"{shown(value)} contains a control character ({bad})"
    return None


def _check_shape(entry: StepEntry, ctx: _Context) -> Iterator[str]:
    """The step's fields and Arguments have the types SageMaker (and the local runner) expect."""
    out: list[str] = []
    STEP_FIELDS.walk(entry.step, "", out, ctx.uses, entry.name, runtime=False)
    arguments = entry.step.get("Arguments")
    if isinstance(arguments, dict):
        if entry.type == "Condition":
            _check_condition_arguments(arguments, out)
        elif entry.type in STEP_SCHEMAS:
            STEP_SCHEMAS[entry.type].walk(arguments, "Arguments", out, ctx.uses, entry.name, runtime=False)
    elif "Arguments" not in entry.step and entry.type == "Condition":
        out.append("a Condition step needs an Arguments.Conditions list")
    out.extend(_required_argument_problems(entry))
    for line in out:
        yield f"step {entry.name!r}: {line}"


def _required_argument_problems(entry: StepEntry) -> list[str]:
    """The members of its API request a step kind must carry (CreatePipeline refuses a step without them)."""
    kind = kind_of(entry.type)
    if kind is None or not kind.request:
        return []
    arguments = entry.step.get("Arguments")
    if arguments is None:
        return [f"a {kind.type} step needs Arguments (the {kind.request} request)"]
    if not isinstance(arguments, dict):
        return []  # STEP_FIELDS said so
    return [f"Arguments.{key} is required ({kind.request})" for key in kind.required_arguments
            if arguments.get(key) is None]


def _check_condition_arguments(arguments: dict, out: list[str]) -> None:
    conditions = arguments.get("Conditions")
    if not isinstance(conditions, list):
        out.append("a Condition step needs an Arguments.Conditions list")
        return
    for index, condition in enumerate(conditions):
        _check_condition(condition, f"Arguments.Conditions[{index}]", out)


def _check_condition(condition: Any, path: str, out: list[str]) -> None:
    if not isinstance(condition, dict):
        out.append(f"{path} must be a condition object, not {shown(condition)}")
        return
    kind = condition.get("Type")
    if kind not in CONDITION_TYPES:
        out.append(f"{path}: unknown condition type {shown(kind)} (known: {', '.join(CONDITION_TYPES)})")
        return
    # SageMaker parses a condition object strictly: a property its type does not have is refused at
    # CreatePipeline ("Unable to parse pipeline definition. Cannot parse object, unknown property 'X'").
    known = CONDITION_PROPERTIES.get(kind, ("LeftValue", "RightValue"))
    for key in condition:
        if key == "Type" or key in known:
            continue
        if kind == "Not" and key == "Expression":
            # Early SDK 2.x releases (2.68.0 among them) wrote {"Type": "Not", "Expression": ...}
            # (aws/sagemaker-python-sdk#2746); SageMaker's Not takes its condition as 'Condition'.
            out.append(f"{path}: unknown property 'Expression' in a Not condition (SageMaker cannot parse it: a Not "
                       "takes its condition as 'Condition'; regenerate the definition with a current SDK)")
        else:
            out.append(f"{path}: unknown property {shown(key)} in a {kind} condition (SageMaker cannot parse it: "
                       f"a {kind} condition has {', '.join(known)})")
    if kind == "Not":
        if "Expression" not in condition:
            _check_condition(condition.get("Condition"), f"{path}.Condition", out)
    elif kind == "Or":
        inner = condition.get("Conditions")
        if not isinstance(inner, list):
            out.append(f"{path}.Conditions must be a list of conditions, not {shown(inner)}")
        else:
            for index, item in enumerate(inner):
                _check_condition(item, f"{path}.Conditions[{index}]", out)
    elif kind == "In":
        values = condition.get("Values")
        if not isinstance(values, list) and not is_expression(values):
            out.append(f"{path}.Values must be a list, not {shown(values)}")
        if "QueryValue" not in condition:
            out.append(f"{path}.QueryValue is required")
    else:
        for key in ("LeftValue", "RightValue"):
            if key not in condition:
                out.append(f"{path}.{key} is required")


def _check_references(entry: StepEntry, ctx: _Context) -> Iterator[str]:
    """Every Get names something the step can read: a parameter, an execution variable, another step's
    property (a ForEach's as SageMaker exposes them), a property file, the experiment config, the current
    item of a ForEach body; every function is one SageMaker knows."""
    name, by_name = entry.name, ctx.by_name
    scope = expression_scope(entry)
    selector_field = _selector_field(entry)
    for ref in references(scope):
        if ref.kind == "Parameters" and ref.name not in ctx.parameters:
            yield f"step {name!r}: Get references unknown parameter {ref.name!r}"
        elif ref.kind == "Execution" and ref.name not in EXECUTION_VARIABLES:
            yield f"step {name!r}: Get references unknown execution variable {ref.name!r}"
        elif ref.kind == "Steps":
            problem = _step_reference_problem(entry, ref.name, ref.detail, ctx)
            if problem:
                yield f"step {name!r}: {problem}"
        elif ref.kind == "PropertyFile" and ref.name in by_name:
            files = by_name[ref.name].step.get("PropertyFiles")
            declared = [pf.get("PropertyFileName") for pf in files if isinstance(pf, dict)] if isinstance(files, list) else []
            if ref.detail not in declared:
                yield f"step {name!r}: step {ref.name!r} has no property file {ref.detail!r}"
        elif ref.kind == "PipelineExperimentConfig" and ref.name not in EXPERIMENT_CONFIG_FIELDS:
            yield (f"step {name!r}: Get references unknown PipelineExperimentConfig property {ref.name!r} "
                   f"({' or '.join(EXPERIMENT_CONFIG_FIELDS)})")
        elif ref.kind == "ForEach":
            if ref.name != "CurrentItem":
                yield f"step {name!r}: Get references unknown ForEach property {ref.name!r} (CurrentItem)"
            elif entry.for_each is None:
                yield f"step {name!r}: Get ForEach.CurrentItem is valid only in the body steps of a ForEach step"
        elif ref.kind == "IterationOutput" and (selector_field is None or ref != selector_field):
            yield f"step {name!r}: Get IterationOutput.{ref.name} is valid only as a ForEach step's Selector.Field"
        elif ref.kind == "Invalid":
            yield f"step {name!r}: malformed Std:JsonGet PropertyFile {ref.name}"
        elif ref.kind not in (*NAMESPACES, "PropertyFile"):
            yield f"step {name!r}: Get references unknown namespace {ref.kind!r} ({', '.join(NAMESPACES)})"
    for function in _functions(scope):
        if function not in FUNCTIONS:
            yield f"step {name!r}: unknown function {function!r}"


def _step_reference_problem(entry: StepEntry, target: str, detail: str, ctx: _Context) -> str | None:
    """Why ``Get Steps.<target>.<detail>`` cannot be read by ``entry``, or None."""
    if target == entry.name:
        return "references itself"
    if target not in ctx.by_name:
        return f"Get references unknown step {target!r}"
    if not detail:
        return f"Get of step {target!r} has no property path"
    outside = _outside_body_problem(entry, target, ctx, "Get references")
    if outside:
        return outside
    referenced = ctx.by_name[target]
    if referenced.type != "ForEach" or detail.startswith("PropertyFiles."):
        return None
    member = re.match(r"[^.\[]*", detail).group()
    if member not in FOR_EACH_PROPERTIES:
        return (f"ForEach step {target!r} has no property {member!r} (its properties: "
                f"{', '.join(FOR_EACH_PROPERTIES)})")
    if member == "IterationOutputs":
        match = _ITERATION_OUTPUTS.fullmatch(detail)
        body = {step.get("Name") for step in body_steps(referenced)}
        if not match or match.group(2) not in body:
            return (f"Get Steps.{target}.{detail}: IterationOutputs is read as IterationOutputs[<index>].<body step>"
                    f".<property>, with a body step of {target!r} ({', '.join(sorted(map(str, body)))})")
    if member == "Selected" and _selector_field(referenced) is None:
        return f"Get Steps.{target}.{detail}: ForEach step {target!r} has no Selector, so nothing is Selected"
    return None


def _outside_body_problem(entry: StepEntry, target: str, ctx: _Context, verb: str) -> str | None:
    """A body step is read through its ForEach step from outside its body (it runs once per item)."""
    owner = ctx.by_name[target].for_each
    if owner is None or owner == entry.for_each:
        return None
    return (f"{verb} step {target!r}, a body step of ForEach step {owner!r}, which runs once per item: read it as "
            f"Steps.{owner}.IterationOutputs[<index>].{target}... or Steps.{owner}.Selected...")


def _selector_field(entry: StepEntry):
    """The Reference of a ForEach step's ``Selector.Field`` (``IterationOutput.<body>...``), or None."""
    if entry.type != "ForEach":
        return None
    selector = object_or_empty(object_or_empty(entry.step.get("Arguments")).get("Selector"))
    found = [ref for ref in references(selector.get("Field")) if ref.kind == "IterationOutput"]
    return found[0] if len(found) == 1 and is_expression(selector.get("Field")) else None


def _check_for_each(entry: StepEntry, ctx: _Context) -> Iterator[str]:
    """A ForEach step's IterableItems, MaxConcurrency, body and Selector are what SageMaker takes."""
    if entry.type != "ForEach":
        return
    prefix = f"step {entry.name!r}: "
    arguments = entry.step.get("Arguments")
    if not isinstance(arguments, dict):
        yield prefix + "a ForEach step needs Arguments with IterableItems, MaxConcurrency and ForEachBody"
        return
    items = arguments.get("IterableItems")
    if isinstance(items, list):
        if not 1 <= len(items) <= FOR_EACH_MAX_LITERAL_ITEMS:
            yield prefix + (f"Arguments.IterableItems, a list, must have 1 to {FOR_EACH_MAX_LITERAL_ITEMS} items, "
                            f"not {len(items)}")
        for index, item in enumerate(items):
            if not (is_expression(item) or isinstance(item, str | int | float | bool)):
                yield prefix + f"Arguments.IterableItems[{index}] must be a scalar or a reference, not {shown(item)}"
    elif not is_expression(items):
        yield prefix + ("Arguments.IterableItems must be a reference that resolves to a JSON list, or a list of "
                        f"items, not {shown(items)}")
    low, high = FOR_EACH_MAX_CONCURRENCY
    concurrency = arguments.get("MaxConcurrency")
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or not low <= concurrency <= high:
        yield prefix + f"Arguments.MaxConcurrency must be an integer from {low} to {high}, not {shown(concurrency)}"
    body = body_steps(entry)
    if not body:
        yield prefix + f"Arguments.{FOR_EACH_BODY} must be a non-empty list of steps"
    for step in body:
        if step.get("Type") in FOR_EACH_BODY_REFUSED:
            yield prefix + (f"body step {step.get('Name')!r} is a {step.get('Type')} step; a ForEach body holds no "
                            f"{', '.join(FOR_EACH_BODY_REFUSED)} step")
    selector = arguments.get("Selector")
    if selector is not None:
        yield from (prefix + line for line in _selector_problems(selector, body))
    names = [step.get("Name") for step in body if isinstance(step.get("Name"), str)]
    for other in ctx.by_name:
        for body_name in names:
            if re.fullmatch(re.escape(body_name) + r"-\d+", other):
                yield prefix + (f"step {other!r} would have the name of child {other!r} of body step {body_name!r} "
                                "(children are named <body step>-<index>)")


def _selector_problems(selector: Any, body: list[dict]) -> Iterator[str]:
    if not isinstance(selector, dict):
        yield f"Arguments.Selector must be an object with Pick and Field, not {shown(selector)}"
        return
    if selector.get("Pick") not in FOR_EACH_PICKS:
        yield f"Arguments.Selector.Pick must be {' or '.join(FOR_EACH_PICKS)}, not {shown(selector.get('Pick'))}"
    field = selector.get("Field")
    reference = field.get("Get") if isinstance(field, dict) and len(field) == 1 else None
    names = [step.get("Name") for step in body]
    match = re.fullmatch(r"IterationOutput\.([^.\[\]]+)(.+)", reference, re.DOTALL) if isinstance(reference, str) else None
    if not match or match.group(1) not in names:
        yield ("Arguments.Selector.Field must be {\"Get\": \"IterationOutput.<body step>.<property>\"} with a body step "
               f"of this ForEach ({', '.join(map(str, names))}), not {shown(field)}")


def _check_depends_on(entry: StepEntry, ctx: _Context) -> Iterator[str]:
    """DependsOn lists other steps: by name, or as the SDK 3.x's ``{"Step": name, "Trigger": ...}``."""
    name = entry.name
    depends_on = entry.step.get("DependsOn") or []
    if not isinstance(depends_on, list):
        yield f"step {name!r}: DependsOn must be a list of step names"
        return
    for dep in depends_on:
        if isinstance(dep, dict):
            trigger = dep.get("Trigger")
            if set(dep) - {"Step", "Trigger"} or not isinstance(dep.get("Step"), str) \
                    or trigger not in DEPENDS_ON_TRIGGERS:
                yield (f"step {name!r}: a DependsOn object is {{\"Step\": <name>, \"Trigger\": "
                       f"{'|'.join(DEPENDS_ON_TRIGGERS)}}}, not {shown(dep)}")
                continue
            dep = dep["Step"]
        if not isinstance(dep, str):
            yield f"step {name!r}: DependsOn entries must be step names, not {shown(dep)}"
        elif dep == name:
            yield f"step {name!r}: DependsOn itself"
        elif dep not in ctx.by_name:
            yield f"step {name!r}: DependsOn unknown step {dep!r}"
        else:
            outside = _outside_body_problem(entry, dep, ctx, "DependsOn")
            if outside:
                yield f"step {name!r}: {outside}"


def _check_property_files(entry: StepEntry, ctx: _Context) -> Iterator[str]:
    """Each PropertyFile names one of the step's processing outputs."""
    declared = entry.step.get("PropertyFiles") or []
    if not isinstance(declared, list):
        return
    config = object_or_empty(object_or_empty(entry.step.get("Arguments")).get("ProcessingOutputConfig"))
    outputs = config.get("Outputs")
    names = [o.get("OutputName") for o in outputs if isinstance(o, dict)] if isinstance(outputs, list) else []
    for pf in declared:
        if isinstance(pf, dict) and "OutputName" in pf and pf.get("OutputName") not in names:
            yield (f"step {entry.name!r}: property file {shown(pf.get('PropertyFileName'))} names unknown output "
                   f"{shown(pf.get('OutputName'))}")


def _check_cache_config(entry: StepEntry, ctx: _Context) -> Iterator[str]:
    """CacheConfig.ExpireAfter is a duration SageMaker accepts (the parser the cache itself uses)."""
    config = entry.step.get("CacheConfig")
    if isinstance(config, dict) and isinstance(config.get("ExpireAfter"), str):
        try:
            parse_expire_after(config["ExpireAfter"])
        except DefinitionError as exc:
            yield f"step {entry.name!r}: CacheConfig.{exc}"


# Checks of one step each; the definition's problems are their lines in this order.
STEP_CHECKS: list[Callable[[StepEntry, _Context], Iterator[str]]] = [
    _check_shape,
    _check_for_each,
    _check_references,
    _check_depends_on,
    _check_property_files,
    _check_cache_config,
]


def _functions(value: Any) -> Iterator[str]:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(reversed(item))
        elif isinstance(item, dict):
            if len(item) == 1:
                (key,) = item
                if isinstance(key, str) and (key == "Get" or key.startswith("Std:")):
                    yield key
            stack.extend(reversed(list(item.values())))


def parameter_uses(definition: dict) -> list[Use]:
    """The fields of a valid definition whose value is an expression (S3 URIs, instance counts, ...)."""
    uses: list[Use] = []
    ctx = _Context({}, {}, uses)
    for entry in flatten_steps(definition):
        list(_check_shape(entry, ctx))
    return uses


def parameter_value_problems(definition: dict, values: Mapping[str, Any], given: set[str] | None = None) -> list[str]:
    """Parameter values that can never work where the definition uses them, each naming the parameter."""
    return _use_problems(parameter_uses(definition), values, "", given)


def _use_problems(uses: list[Use], values: Mapping[str, Any], label: str, only: set[str] | None = None) -> list[str]:
    ctx = ExpressionContext(parameters=values, execution_variables=PLACEHOLDER_VARIABLES)
    problems: list[str] = []
    reported: set[tuple[str, ...]] = set()
    for use in uses:
        names = sorted({ref.name for ref in references(use.expression) if ref.kind == "Parameters"})
        if not names or (only is not None and not set(names) & only) or tuple(names) in reported:
            continue  # one line per parameter: the first field it breaks
        try:
            value = resolve(use.expression, ctx)
        except (ExpressionError, RecursionError):
            continue  # depends on other steps: checked on the resolved arguments when the step runs
        problem = use.spec.problem(value)
        if not problem:
            continue
        if use.expression == {"Get": f"Parameters.{names[0]}"}:
            line = f"parameter {names[0]}: {label}{shown(value)} feeds step {use.step!r} {use.path}, which {problem}"
        else:
            line = (f"parameter {', '.join(names)}: {label.lower() or 'the '}value(s) make step {use.step!r} "
                    f"{use.path} {shown(value)}, which {problem}")
        problems.append(line)
        reported.add(tuple(names))
    return problems


def require_valid(definition: dict, where: str = "definition") -> None:
    """DefinitionInvalid with every problem of :func:`validate_definition`, if there is any."""
    problems = validate_definition(definition)
    if problems:
        raise DefinitionInvalid(problems, where=where)
