"""Generated junk thrown at the definition validator and the runner's entry: every outcome is a list of
problem lines, an AirsageError (InvalidInput) or a finished run — never another exception.

Deterministic (``derandomize=True``) and bounded: the example counts are the ``max_examples`` below.
"""

from __future__ import annotations

import copy
import json
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sm_pipeline.definition_schema import argument_problems
from sm_pipeline.errors import AirsageError, DefinitionError
from sm_pipeline.local.capabilities import local_problems
from sm_pipeline.step_graph import parse_definition
from sm_pipeline.validate import parameter_value_problems, validate_definition

JUNK = settings(max_examples=300, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
RUNS = settings(max_examples=120, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

SKLEARN = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
XGBOOST = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
KEYS = ["Name", "Type", "Arguments", "Steps", "Parameters", "DependsOn", "Get", "Std:Join", "Std:JsonGet", "Conditions",
        "IfSteps", "ElseSteps", "LeftValue", "RightValue", "S3Uri", "InstanceCount", "DefaultValue", "PropertyFiles",
        "RetryPolicies", "CacheConfig", "Values", "On", "Path", "PropertyFile", "ErrorMessage", "PrimaryContainer"]
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "Parameters.Threshold", "Steps.Check.Outcome", "Steps.Nope.X", "Execution.PipelineExecutionId",
                     "s3://b-1/k", "s3://b-1/../k", "s3://b-1/a\nb", "\x00", "Processing", "Condition", "Fail",
                     "Callback", "Check", "Stop", "GreaterThan", "In", "Not", "Or", "P30D", "python3"]),
    st.text(max_size=8),
)
JSONISH = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=5)), inner, max_size=4)), max_leaves=20)


def project_like() -> dict:
    """Processing -> Condition -> Model | Fail, with the parameters feeding them."""
    return {
        "Version": "2020-12-01",
        "Parameters": [{"Name": "Threshold", "Type": "Float", "DefaultValue": 6.0},
                       {"Name": "Count", "Type": "Integer", "DefaultValue": 1},
                       {"Name": "Input", "Type": "String", "DefaultValue": "s3://junk-bucket/in/a.csv"}],
        "Steps": [
            {"Name": "Prep", "Type": "Processing", "Arguments": {
                "ProcessingResources": {"ClusterConfig": {"InstanceCount": {"Get": "Parameters.Count"}, "InstanceType": "ml.m5.large"}},
                "AppSpecification": {"ImageUri": SKLEARN, "ContainerEntrypoint": ["python3", "/opt/ml/processing/code/x.py"]},
                "ProcessingInputs": [{"InputName": "in", "S3Input": {"S3Uri": {"Get": "Parameters.Input"},
                                                                     "LocalPath": "/opt/ml/processing/in"}}],
                "ProcessingOutputConfig": {"Outputs": [{"OutputName": "out", "S3Output": {
                    "S3Uri": {"Std:Join": {"On": "/", "Values": ["s3://junk-bucket", {"Get": "Execution.PipelineExecutionId"}]}},
                    "LocalPath": "/opt/ml/processing/out"}}]}},
             "PropertyFiles": [{"PropertyFileName": "Report", "OutputName": "out", "FilePath": "r.json"}]},
            {"Name": "Check", "Type": "Condition", "Arguments": {
                "Conditions": [{"Type": "LessThanOrEqualTo",
                                "LeftValue": {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Prep.PropertyFiles.Report"}, "Path": "mse"}},
                                "RightValue": {"Get": "Parameters.Threshold"}}],
                "IfSteps": [{"Name": "Model", "Type": "Model", "Arguments": {"PrimaryContainer": {"Image": XGBOOST}}}],
                "ElseSteps": [{"Name": "Stop", "Type": "Fail", "Arguments": {"ErrorMessage": {"Std:Join": {
                    "On": " ", "Values": ["mse above", {"Get": "Parameters.Threshold"}]}}}}]}},
        ],
    }


def control_only() -> dict:
    """Condition -> Fail | Fail: runs in milliseconds, no job processes."""
    return {
        "Version": "2020-12-01",
        "Parameters": [{"Name": "Threshold", "Type": "Float", "DefaultValue": 6.0}],
        "Steps": [{"Name": "Check", "Type": "Condition", "Arguments": {
            "Conditions": [{"Type": "GreaterThan", "LeftValue": 7, "RightValue": {"Get": "Parameters.Threshold"}}],
            "IfSteps": [{"Name": "High", "Type": "Fail", "Arguments": {"ErrorMessage": "high"}}],
            "ElseSteps": [{"Name": "Low", "Type": "Fail", "Arguments": {"ErrorMessage": {"Std:Join": {
                "On": " ", "Values": ["low", {"Get": "Parameters.Threshold"}]}}}}]}}],
    }


def _containers(value, path=()):
    """Every (path, container) in a JSON value, the root included."""
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _containers(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _containers(item, (*path, index))


@st.composite
def mutated(draw, base):
    """``base()`` with one to three places replaced by junk, deleted or given junk siblings."""
    definition = copy.deepcopy(base())
    for _ in range(draw(st.integers(1, 3))):
        places = [(path, value) for path, value in _containers(definition) if path]
        path, _ = draw(st.sampled_from(places))
        parent = definition
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "delete", "sibling"]))
        if action == "replace":
            parent[path[-1]] = draw(JSONISH)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(KEYS))] = draw(JSONISH)
        else:
            parent.append(draw(JSONISH))
    return definition


def _all_lines(problems) -> None:
    assert isinstance(problems, list)
    for problem in problems:
        assert isinstance(problem, str) and problem and "\n" not in problem


@JUNK
@given(definition=st.one_of(mutated(project_like), JSONISH))
def test_validator_reports_lines_for_any_junk(definition):
    _all_lines(validate_definition(definition))
    if isinstance(definition, dict) and not validate_definition(definition):
        _all_lines(local_problems(definition))
        _all_lines(parameter_value_problems(definition, {"Threshold": math.nan, "Count": 0, "Input": "x\ny"}))
        for step in definition["Steps"]:
            _all_lines(argument_problems(step.get("Type", ""), step.get("Arguments")))
    try:
        text = json.dumps(definition, allow_nan=True)
    except (TypeError, ValueError):
        return
    try:
        parse_definition(text)
    except DefinitionError as exc:
        assert "\n" not in str(exc)


@RUNS
@given(definition=mutated(control_only), parameters=st.dictionaries(
    st.sampled_from(["Threshold", "Nope", ""]), st.one_of(SCALARS, JSONISH), max_size=2))
def test_runner_entry_refuses_with_an_airsage_error_or_runs(tmp_path_factory, definition, parameters):
    from sm_pipeline.local import run_pipeline

    root = tmp_path_factory.mktemp("root")
    try:
        result = run_pipeline(definition, parameters, root=root)
    except AirsageError as exc:
        assert "\n" not in str(exc)
        assert not any(root.iterdir()), "refused, yet something was written"
    else:
        assert result.status in ("Succeeded", "Failed")
        assert result.failure_reason is None or "\n" not in result.failure_reason
