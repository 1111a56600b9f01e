"""Reading a step's PropertyFile (evaluation.json): where it is, its JSON, one value in it.

Pure functions, shared by the SageMaker and local backends; the caller fetches the bytes.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any


class PropertyFileError(ValueError):
    """A PropertyFile is missing, not JSON, lacks the path, or holds no usable number."""


_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_PATH = re.compile(r"[^.\[\]]+(?:\.[^.\[\]]+|\[\d+\])*")


# An evaluation report is a few hundred bytes; nesting and size limits keep a hostile one from
# costing memory or blowing Python's recursion limit.
MAX_REPORT_BYTES = 16 * 1024 * 1024
MAX_DEPTH = 64
# Error metrics are means of squares or absolute values: a negative one is a broken report.
NON_NEGATIVE_METRICS = frozenset({"mse", "rmse", "mae", "mean_squared_error", "root_mean_squared_error",
                                  "mean_absolute_error"})


def parse_report(data: bytes, uri: str) -> Any:
    """The JSON document in ``data``; PropertyFileError (one line) naming the URI and the problem.

    At most MAX_DEPTH levels deep, integers of at most 300 digits; never a RecursionError or
    OverflowError. NaN/Infinity (which Python's json.dumps writes) parse, and :func:`numeric_value`
    names them.
    """
    if not isinstance(data, bytes | bytearray):
        raise PropertyFileError(f"{uri}: expected the file's bytes, got {type(data).__name__}")
    if len(data) > MAX_REPORT_BYTES:
        raise PropertyFileError(f"{uri} is {len(data):,} bytes; a property file is at most {MAX_REPORT_BYTES:,}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise PropertyFileError(f"{uri} is not UTF-8 text: {err}") from None
    try:
        document = json.loads(text, parse_int=_bounded_int)
    except json.JSONDecodeError as err:
        raise PropertyFileError(
            f"{uri} is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}"
        ) from None
    except RecursionError:
        raise PropertyFileError(f"{uri} is not usable JSON: nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as err:  # _bounded_int
        raise PropertyFileError(f"{uri} is not usable JSON: {err}") from None
    if _too_deep(document):
        raise PropertyFileError(f"{uri} is not usable JSON: nested more than {MAX_DEPTH} levels deep")
    return document


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > 300:  # beyond any float: no metric can be that large
        raise ValueError(f"an integer of {len(text.lstrip('-'))} digits is too large")
    return int(text)


def _too_deep(document: Any) -> bool:
    stack = [(document, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                return True
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


def check_json_path(path: Any, uri: str | None = None) -> str:
    """``path`` if it is a JsonGet path (``a.b``, ``a[0].b``); PropertyFileError naming it otherwise."""
    if not isinstance(path, str) or not path or len(path) > 1024 or _PATH.fullmatch(path) is None:
        raise PropertyFileError(f"empty or malformed JSON path {_short(path)}" + (f" for {uri}" if uri else "")
                                + " (expected keys and [indexes] joined by '.', such as metrics.auc.value)")
    return path


def json_path_value(document: Any, path: str, uri: str) -> Any:
    """The value at a dotted JsonGet path such as ``regression_metrics.mse.value`` or ``a[0].b``."""
    check_json_path(path, uri)
    current, walked = document, []
    for key, index in _TOKEN.findall(path):
        if key:
            if not isinstance(current, dict) or key not in current:
                available = _short(sorted(current)) if isinstance(current, dict) else type(current).__name__
                raise PropertyFileError(
                    f"{uri}: JSON path {path!r} not found: no key {key!r} at "
                    f"{'.'.join(walked) or '<root>'} (found: {available})"
                )
            current = current[key]
            walked.append(key)
        else:
            i = int(index)
            if not isinstance(current, list) or i >= len(current):
                raise PropertyFileError(f"{uri}: JSON path {path!r} not found: no index [{i}] at {'.'.join(walked)}")
            current = current[i]
            walked.append(f"[{i}]")
    return current


def numeric_value(value: Any, path: str, uri: str) -> float:
    """``value`` as a finite float; PropertyFileError for strings, booleans, null, NaN, inf, huge numbers.

    An error metric (a path segment named mse, rmse, mae, ...) must also not be negative.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PropertyFileError(f"{uri}: {path} is {_short(value)} ({type(value).__name__}), not a number")
    try:
        number = float(value)
    except OverflowError:
        raise PropertyFileError(f"{uri}: {path} is an integer too large for a number") from None
    if not math.isfinite(number):
        raise PropertyFileError(f"{uri}: {path} is {value!r}, not a finite number")
    if number < 0 and is_error_metric(path):
        raise PropertyFileError(f"{uri}: {path} is {number!r}, but an error metric is never negative")
    return number


def is_error_metric(*names: Any) -> bool:
    """True when a metric name or JSON path names an error metric (mse, rmse, mae, ...): never negative."""
    return any(NON_NEGATIVE_METRICS & set(re.split(r"[.\[\]]", str(name).lower())) for name in names)


def _short(value: Any) -> str:
    """A value for a message: repr, cut to 200 characters."""
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def property_file_location(definition: dict, step_name: str, property_file: str) -> tuple[str, Any, str]:
    """(output name, the output's S3Uri expression, file path inside it) for a step's PropertyFile.

    The S3Uri may be an expression (Join on the execution id); resolve it with
    :func:`resolve_uri`.
    """
    from sm_pipeline.step_graph import flatten_steps

    try:
        steps = {entry.name: entry.step for entry in flatten_steps(definition)}
    except (TypeError, AttributeError, ValueError):
        steps = {}  # not a definition at all: every step is missing
    step = steps.get(step_name)
    if step is None:
        raise PropertyFileError(f"step {step_name!r} is not in the pipeline definition (steps: {sorted(steps)})")
    declared = step.get("PropertyFiles")
    files = {p.get("PropertyFileName"): p for p in declared if isinstance(p, dict)} if isinstance(declared, list) else {}
    spec = files.get(property_file)
    if spec is None:
        raise PropertyFileError(
            f"step {step_name!r} declares no PropertyFile {property_file!r} (declared: {sorted(files)})"
        )
    arguments = step.get("Arguments") if isinstance(step.get("Arguments"), dict) else {}
    config = arguments.get("ProcessingOutputConfig") if isinstance(arguments.get("ProcessingOutputConfig"), dict) else {}
    outputs = config.get("Outputs") if isinstance(config.get("Outputs"), list) else []
    for output in outputs:
        if isinstance(output, dict) and output.get("OutputName") == spec.get("OutputName"):
            s3 = output.get("S3Output")
            if not isinstance(s3, dict) or "S3Uri" not in s3 or not isinstance(spec.get("FilePath"), str):
                raise PropertyFileError(f"step {step_name!r}: output {output['OutputName']!r} has no S3Output.S3Uri "
                                        f"or PropertyFile {property_file!r} no FilePath")
            return output["OutputName"], s3["S3Uri"], spec["FilePath"]
    raise PropertyFileError(
        f"step {step_name!r} has no output {spec.get('OutputName')!r} for PropertyFile {property_file!r}"
    )


def resolve_uri(expression: Any, *, execution_id: str, execution_arn: str, pipeline_name: str,
                parameters: dict[str, Any], definition: dict) -> str:
    """Resolve an S3Uri expression with the evaluator the local runner uses."""
    if isinstance(expression, str):
        return expression
    from sm_pipeline.expressions import ExpressionContext, ExpressionError, resolve

    parameters_declared = definition.get("Parameters") if isinstance(definition.get("Parameters"), list) else []
    declared = {p["Name"]: p.get("DefaultValue") for p in parameters_declared if isinstance(p, dict) and "Name" in p}
    ctx = ExpressionContext(
        parameters={**declared, **(parameters or {})},
        execution_variables={
            "PipelineExecutionId": execution_id,
            "PipelineExecutionArn": execution_arn,
            "PipelineName": pipeline_name,
        },
        step_records={},
        read_property_file=None,
    )
    try:
        value = resolve(expression, ctx)
    except (ExpressionError, RecursionError) as err:
        raise PropertyFileError(f"the output location cannot be resolved: {str(err)[:300]}") from None
    if not isinstance(value, str) or not value.startswith("s3://"):
        raise PropertyFileError(f"the output location resolved to {value!r}, not an s3:// URI")
    return value


def join_uri(base: str, file_path: str) -> str:
    """``base/file_path`` without doubled slashes."""
    return f"{base.rstrip('/')}/{file_path.lstrip('/')}"


def metric_rows(report: Any, limit: int = 200) -> list[tuple[str, Any, Any]]:
    """``(metric path, value, standard deviation)`` for every number in an evaluation report.

    SageMaker's model-quality layout (``{"group": {"metric": {"value": v, "standard_deviation": s}}}``)
    gives one row per metric; any other layout gives one row per numeric leaf, by its JSON path.
    """
    rows: list[tuple[str, Any, Any]] = []
    pending: list[tuple[str, Any]] = [("", report)]
    while pending and len(rows) < limit:
        path, node = pending.pop(0)
        if isinstance(node, dict):
            if "value" in node and is_number(node["value"]):
                rows.append((path or "value", node["value"], node.get("standard_deviation")))
                continue
            pending[:0] = [(f"{path}.{key}" if path else str(key), child) for key, child in node.items()]
        elif isinstance(node, list):
            pending[:0] = [(f"{path}[{i}]", child) for i, child in enumerate(node)]
        elif is_number(node):
            rows.append((path or "value", node, None))
    return rows


def is_number(value: Any) -> bool:
    """A JSON number (not a boolean)."""
    return isinstance(value, int | float) and not isinstance(value, bool)
