"""Unit tests of the runner's parts: conditions, parameters, durations, images, registry, path remapping."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from sm_pipeline.cache_config import parse_expire_after
from sm_pipeline.errors import DefinitionError, InvalidInput
from sm_pipeline.expressions import ExpressionContext
from sm_pipeline.local.builtin_xgboost import typed_hyperparameters
from sm_pipeline.local.control_steps import evaluate_condition
from sm_pipeline.local.images import has_local_equivalent, xgboost_writes_pickle
from sm_pipeline.local.jobs import StepFailed, entrypoint_argv, failure_from_exit, remap_argument
from sm_pipeline.local.registry import LocalModelRegistry
from sm_pipeline.parameters import cast_parameters

CTX = ExpressionContext({"T": 6.0, "S": "b"}, {})


@pytest.mark.parametrize(("condition", "expected"), [
    ({"Type": "Equals", "LeftValue": 1, "RightValue": 1.0}, True),
    ({"Type": "Equals", "LeftValue": "6.0", "RightValue": {"Get": "Parameters.T"}}, True),
    ({"Type": "GreaterThan", "LeftValue": 7, "RightValue": {"Get": "Parameters.T"}}, True),
    ({"Type": "GreaterThanOrEqualTo", "LeftValue": 6, "RightValue": {"Get": "Parameters.T"}}, True),
    ({"Type": "LessThan", "LeftValue": 6, "RightValue": {"Get": "Parameters.T"}}, False),
    ({"Type": "LessThanOrEqualTo", "LeftValue": 6, "RightValue": {"Get": "Parameters.T"}}, True),
    ({"Type": "In", "QueryValue": {"Get": "Parameters.S"}, "Values": ["a", "b"]}, True),
    ({"Type": "In", "QueryValue": 3, "Values": [1, 2]}, False),
    ({"Type": "Not", "Condition": {"Type": "Equals", "LeftValue": 1, "RightValue": 2}}, True),
    ({"Type": "Or", "Conditions": [{"Type": "Equals", "LeftValue": 1, "RightValue": 2},
                                   {"Type": "LessThan", "LeftValue": 1, "RightValue": 2}]}, True),
    ({"Type": "Or", "Conditions": []}, False),
])
def test_conditions(condition, expected):
    assert evaluate_condition(condition, CTX) is expected


def test_condition_errors():
    with pytest.raises(StepFailed, match="unknown condition type 'Xor'"):
        evaluate_condition({"Type": "Xor"}, CTX)
    with pytest.raises(StepFailed, match="cannot compare"):
        evaluate_condition({"Type": "LessThan", "LeftValue": "a", "RightValue": 1}, CTX)


def test_parameters_cast_strings_and_keep_defaults():
    declared = [{"Name": "I", "Type": "Integer", "DefaultValue": 1}, {"Name": "F", "Type": "Float", "DefaultValue": 1},
                {"Name": "B", "Type": "Boolean", "DefaultValue": False}, {"Name": "S", "Type": "String", "DefaultValue": "x",
                                                                           "EnumValues": ["x", "y"]}]
    assert cast_parameters(declared, {"I": "7", "F": "2.5", "B": "true"}) == {"I": 7, "F": 2.5, "B": True, "S": "x"}
    assert cast_parameters(declared, {})["F"] == 1.0
    with pytest.raises(InvalidInput, match="'z' is not one of"):
        cast_parameters(declared, {"S": "z"})


@pytest.mark.parametrize(("text", "expected"), [
    ("P30D", timedelta(days=30)), ("P30d", timedelta(days=30)), ("PT1H", timedelta(hours=1)),
    ("T30m", timedelta(minutes=30)), ("P1W", timedelta(weeks=1)), ("P1DT2H3M4S", timedelta(days=1, hours=2, minutes=3, seconds=4)),
    # AWS's caching guide: the P is optional ("30d" = 30 days, "5y", "T16m", "30dT5h"); M before T is months
    ("30d", timedelta(days=30)), ("5y", timedelta(days=5 * 365)), ("T16m", timedelta(minutes=16)),
    ("30dT5h", timedelta(days=30, hours=5)), ("30DT5h", timedelta(days=30, hours=5)), ("4w", timedelta(weeks=4)),
    ("2m", timedelta(days=60)), ("p1y2m", timedelta(days=425)),
])
def test_expire_after_durations(text, expected):
    assert parse_expire_after(text) == expected


@pytest.mark.parametrize("text", ["P", "PT", "P1X", "", "30", "30dT", "d30", "T5", " 30d", "1h", 30, None])
def test_bad_expire_after_durations(text):
    with pytest.raises(DefinitionError):
        parse_expire_after(text)


def test_images():
    assert has_local_equivalent("683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3")
    assert has_local_equivalent("246618743249.dkr.ecr.us-west-2.amazonaws.com/sagemaker-xgboost:1.0-1-cpu-py3")
    assert not has_local_equivalent("123.dkr.ecr.us-east-1.amazonaws.com/my-image:latest")
    assert xgboost_writes_pickle("x/sagemaker-xgboost:1.0-1-cpu-py3") and xgboost_writes_pickle("x/sagemaker-xgboost:0.90-2")
    assert not xgboost_writes_pickle("x/sagemaker-xgboost:1.7-1") and not xgboost_writes_pickle("x/sagemaker-xgboost:latest")


def test_hyperparameters_are_typed():
    params = typed_hyperparameters({"objective": "reg:linear", "num_round": "50", "max_depth": "5", "eta": "0.2",
                                    "silent": "0", "eval_metric": "rmse,mae", "sagemaker_region": "x"})
    assert params == {"objective": "reg:squarederror", "max_depth": 5, "eta": 0.2, "eval_metric": ["rmse", "mae"]}


def test_container_arguments_and_entrypoints_are_remapped():
    root = Path("/sandbox/algo-1")
    assert remap_argument("/opt/ml/processing/input", root) == "/sandbox/algo-1/opt/ml/processing/input"
    assert remap_argument("--dir=/opt/ml/model", root) == "--dir=/sandbox/algo-1/opt/ml/model"
    assert remap_argument("/optional", root) == "/optional" and remap_argument(42, root) == "42"
    argv = entrypoint_argv(["python3", "/opt/ml/processing/input/code/x.py"], root)
    assert argv[1] == "/sandbox/algo-1/opt/ml/processing/input/code/x.py"
    with pytest.raises(StepFailed, match="no local equivalent"):
        entrypoint_argv(["java", "-jar", "x.jar"], root)


def test_exit_codes_map_to_retryable_or_not():
    assert failure_from_exit("s", 1, "boom").error_type == "AlgorithmError"
    assert failure_from_exit("s", 75, "").error_type == "SageMaker.JOB_INTERNAL_ERROR"
    assert failure_from_exit("s", -9, "").error_type == "SageMaker.JOB_INTERNAL_ERROR"


def test_registry_versions_count_up_and_approval_changes(tmp_path):
    registry = LocalModelRegistry(tmp_path, region="eu-west-1")
    first = registry.register({"ModelPackageGroupName": "Abalone", "ModelMetrics": {"ModelQuality": {}}})
    second = registry.register({"ModelPackageGroupName": "Abalone", "ModelApprovalStatus": "Approved"})
    assert (first["ModelPackageVersion"], second["ModelPackageVersion"]) == (1, 2)
    assert second["ModelPackageArn"] == "arn:aws:sagemaker:eu-west-1:000000000000:model-package/abalone/2"
    assert first["ModelMetrics"] == {"ModelQuality": {}}
    assert registry.update_approval_status(first["ModelPackageArn"], "Approved")["ModelApprovalStatus"] == "Approved"
    assert [p["ModelApprovalStatus"] for p in registry.list_model_packages("Abalone")] == ["Approved", "Approved"]
    assert registry.list_groups() == ["Abalone"]
    with pytest.raises(InvalidInput, match="ModelApprovalStatus 'Maybe'"):
        registry.register({"ModelPackageGroupName": "Abalone", "ModelApprovalStatus": "Maybe"})
    with pytest.raises(InvalidInput, match="invalid ModelPackageGroupName"):
        registry.register({"ModelPackageGroupName": "bad name"})
