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


def parse_report(data: bytes, uri: str) -> Any:
    """The JSON document in ``data``; PropertyFileError naming the URI and position if malformed."""
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise PropertyFileError(f"{uri} is not UTF-8 text: {err}") from None
    except json.JSONDecodeError as err:
        raise PropertyFileError(
            f"{uri} is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}"
        ) from None


def json_path_value(document: Any, path: str, uri: str) -> Any:
    """The value at a dotted JsonGet path such as ``regression_metrics.mse.value`` or ``a[0].b``."""
    if not path or _PATH.fullmatch(path) is None:
        raise PropertyFileError(f"empty or malformed JSON path {path!r} for {uri}")
    current, walked = document, []
    for key, index in _TOKEN.findall(path):
        if key:
            if not isinstance(current, dict) or key not in current:
                available = sorted(current) if isinstance(current, dict) else type(current).__name__
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
    """``value`` as a finite float; PropertyFileError for strings, booleans, null, NaN, inf."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PropertyFileError(f"{uri}: {path} is {value!r} ({type(value).__name__}), not a number")
    if not math.isfinite(value):
        raise PropertyFileError(f"{uri}: {path} is {value!r}, not a finite number")
    return float(value)


def property_file_location(definition: dict, step_name: str, property_file: str) -> tuple[str, Any, str]:
    """(output name, the output's S3Uri expression, file path inside it) for a step's PropertyFile.

    The S3Uri may be an expression (Join on the execution id); resolve it with
    :func:`resolve_uri`.
    """
    steps = {s.get("Name"): s for s in definition.get("Steps", [])}
    step = steps.get(step_name)
    if step is None:
        raise PropertyFileError(f"step {step_name!r} is not in the pipeline definition (steps: {sorted(steps)})")
    files = {p.get("PropertyFileName"): p for p in step.get("PropertyFiles", [])}
    spec = files.get(property_file)
    if spec is None:
        raise PropertyFileError(
            f"step {step_name!r} declares no PropertyFile {property_file!r} (declared: {sorted(files)})"
        )
    outputs = step.get("Arguments", {}).get("ProcessingOutputConfig", {}).get("Outputs", [])
    for output in outputs:
        if output.get("OutputName") == spec.get("OutputName"):
            return output["OutputName"], output["S3Output"]["S3Uri"], spec["FilePath"]
    raise PropertyFileError(
        f"step {step_name!r} has no output {spec.get('OutputName')!r} for PropertyFile {property_file!r}"
    )


def resolve_uri(expression: Any, *, execution_id: str, execution_arn: str, pipeline_name: str,
                parameters: dict[str, Any], definition: dict) -> str:
    """Resolve an S3Uri expression with the evaluator the local runner uses."""
    if isinstance(expression, str):
        return expression
    from sm_pipeline.expressions import ExpressionContext, resolve

    declared = {p["Name"]: p.get("DefaultValue") for p in definition.get("Parameters", [])}
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
    value = resolve(expression, ctx)
    if not isinstance(value, str) or not value.startswith("s3://"):
        raise PropertyFileError(f"the output location resolved to {value!r}, not an s3:// URI")
    return value


def join_uri(base: str, file_path: str) -> str:
    """``base/file_path`` without doubled slashes."""
    return f"{base.rstrip('/')}/{file_path.lstrip('/')}"
