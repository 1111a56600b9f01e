"""Steps that run no job: Condition, Fail and Lambda (a Python callable registered in place of the function)."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from sm_pipeline.definition_schema import CONDITION_TYPES
from sm_pipeline.expressions import ExpressionContext, ExpressionError, render, resolve
from sm_pipeline.local.jobs import JobContext, StepFailed, StepOutcome

_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": operator.eq,
    "GreaterThan": operator.gt,
    "GreaterThanOrEqualTo": operator.ge,
    "LessThan": operator.lt,
    "LessThanOrEqualTo": operator.le,
}


def _comparable(left: Any, right: Any) -> tuple[Any, Any]:
    """Numbers compare as numbers even when one side arrives as a numeric string (JSON, a cast parameter)."""
    def number(value: Any) -> float | None:
        if isinstance(value, bool):
            return None
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                return None
        return None

    if isinstance(left, int | float) and not isinstance(left, bool) or isinstance(right, int | float) and not isinstance(right, bool):
        a, b = number(left), number(right)
        if a is not None and b is not None:
            return a, b
    return left, right


def evaluate_condition(condition: dict, ctx: ExpressionContext) -> bool:
    """Evaluate one condition of a Condition step (comparisons, In, Not, Or), resolving its expressions."""
    kind = condition.get("Type")
    if kind in _COMPARISONS:
        left, right = _comparable(resolve(condition.get("LeftValue"), ctx), resolve(condition.get("RightValue"), ctx))
        try:
            return bool(_COMPARISONS[kind](left, right))
        except TypeError as exc:
            raise StepFailed(f"condition {kind}: cannot compare {left!r} with {right!r}") from exc
    if kind == "In":
        value = resolve(condition.get("QueryValue"), ctx)
        return any(_comparable(value, candidate)[0] == _comparable(value, candidate)[1]
                   for candidate in resolve(condition.get("Values") or [], ctx))
    if kind == "Not":
        inner = condition.get("Condition")  # the validator refuses the 'Expression' of early SDK 2.x releases
        if not isinstance(inner, dict):
            raise StepFailed("condition Not needs a 'Condition'")
        return not evaluate_condition(inner, ctx)
    if kind == "Or":
        return any(evaluate_condition(inner, ctx) for inner in condition.get("Conditions") or [])
    raise StepFailed(f"unknown condition type {kind!r} (known: {', '.join(CONDITION_TYPES)})")


def run_condition(arguments: None, ctx: JobContext) -> StepOutcome:
    """All conditions must hold (SageMaker ANDs the list); the outcome picks IfSteps or ElseSteps.

    A Condition is evaluated in place (``arguments`` is None): each condition's expressions are resolved
    with ``ctx.expressions`` as it is evaluated, never its branches' steps.
    """
    conditions = (ctx.step.get("Arguments") or {}).get("Conditions") or []
    try:
        outcome = all(evaluate_condition(condition, ctx.expressions) for condition in conditions)
    except ExpressionError as exc:
        raise StepFailed(f"condition could not be evaluated: {exc}") from exc
    text = "True" if outcome else "False"
    return StepOutcome({"Outcome": text}, ctx.step_metadata(Outcome=text))


def run_fail(arguments: dict, ctx: JobContext) -> StepOutcome:
    """A Fail step always fails, with its rendered message as the reason."""
    message = render(arguments.get("ErrorMessage", ""))
    raise StepFailed(message, "Fail", metadata=ctx.step_metadata(ErrorMessage=message))


_LAMBDA_OUTPUT_TYPES = {"String": str, "Integer": int, "Float": float, "Boolean": bool}


def lambda_callable(step: dict, lambdas: dict[str, Callable]) -> Callable | None:
    """The registered callable for a Lambda step's FunctionArn (or the function name at its end)."""
    arn = str(step.get("FunctionArn", ""))
    name = arn.rsplit(":function:", 1)[-1].split(":", 1)[0] if ":function:" in arn else arn
    return lambdas.get(arn) or lambdas.get(name)


def run_lambda(arguments: dict, ctx: JobContext) -> StepOutcome:
    """Call the registered Python callable with the resolved inputs; its dict return gives the outputs."""
    step = ctx.step
    function = lambda_callable(step, ctx.lambdas)
    if function is None:
        raise StepFailed(f"Lambda step {ctx.name!r}: function {step.get('FunctionArn')!r} is not runnable locally "
                         "(register a Python callable with sm_pipeline.local.register_lambda)")
    try:
        returned = function(dict(arguments)) or {}
    except Exception as exc:  # the callable is user code; its failure is the step's failure
        raise StepFailed(f"Lambda step {ctx.name!r} raised {type(exc).__name__}: {exc}", "Lambda.FUNCTION_ERROR") from exc
    outputs = []
    for declared in step.get("OutputParameters") or []:
        name = declared.get("OutputName")
        if name not in returned:
            raise StepFailed(f"Lambda step {ctx.name!r}: the function returned no output {name!r}")
        cast = _LAMBDA_OUTPUT_TYPES.get(declared.get("OutputType", "String"), str)
        outputs.append({"Name": name, "Value": cast(returned[name])})
    arn = str(step.get("FunctionArn", ""))
    # Properties are what `Get Steps.X.OutputParameters['name']` (the SDK's LambdaOutput.expr) reads: the
    # value by name. The step's Metadata keeps ListPipelineExecutionSteps' [{Name, Value}] list.
    properties = {"OutputParameters": {item["Name"]: item["Value"] for item in outputs}}
    return StepOutcome(properties, ctx.step_metadata(Arn=arn, OutputParameters=outputs))
