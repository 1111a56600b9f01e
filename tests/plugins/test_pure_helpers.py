"""Display names, idempotency tokens, parameter casting and PropertyFile parsing (no AWS)."""

from __future__ import annotations

import re

import pytest

from airsage.naming import MAX_DISPLAY_NAME, client_request_token, execution_display_name
from airsage.parameters import ParameterError, cast_parameters
from airsage.property_files import (
    PropertyFileError,
    json_path_value,
    numeric_value,
    parse_report,
    property_file_location,
)

VALID_DISPLAY = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,81}$")


@pytest.mark.parametrize("run_id", [
    "scheduled__2026-11-01T00:00:00+00:00",
    "manual__2026-11-01T12:34:56.789012+00:00",
    "backfill__2026-11-02T00:00:00+00:00",
    "x" * 300,
    "---",
    "ünïcödé run",
])
def test_display_name_is_valid_and_deterministic(run_id):
    name = execution_display_name("abalone_pipeline", run_id)
    assert VALID_DISPLAY.match(name), name
    assert len(name) <= MAX_DISPLAY_NAME
    assert name == execution_display_name("abalone_pipeline", run_id)


def test_display_names_differ_per_run_even_when_truncated_or_cleaned():
    long_a, long_b = "a" * 200 + "1", "a" * 200 + "2"
    assert execution_display_name("d", long_a) != execution_display_name("d", long_b)
    assert execution_display_name("d", "x:y") != execution_display_name("d", "x+y")
    assert execution_display_name("d", "plain-run") == "d-plain-run"


def test_client_request_token_changes_only_with_generation():
    token = client_request_token("abalone-run", 0)
    assert token == client_request_token("abalone-run", 0)
    assert token != client_request_token("abalone-run", 1)
    assert 32 <= len(token) <= 128 and re.fullmatch(r"[a-zA-Z0-9-]+", token)


DECLARED = [
    {"Name": "ProcessingInstanceCount", "Type": "Integer", "DefaultValue": 1},
    {"Name": "MseThreshold", "Type": "Float", "DefaultValue": 6.0},
    {"Name": "InputData", "Type": "String", "DefaultValue": "s3://b/k"},
    {"Name": "UseCache", "Type": "Boolean", "DefaultValue": True},
]


def test_parameters_cast_to_strings():
    out = cast_parameters(
        {"ProcessingInstanceCount": "2", "MseThreshold": 5, "InputData": "s3://b/x", "UseCache": True},
        DECLARED,
    )
    assert out == {"ProcessingInstanceCount": "2", "MseThreshold": "5.0", "InputData": "s3://b/x", "UseCache": "true"}
    assert cast_parameters({"ProcessingInstanceCount": 3.0, "MseThreshold": None}, DECLARED) == {
        "ProcessingInstanceCount": "3"
    }


@pytest.mark.parametrize(("values", "message"), [
    ({"MseTreshold": 5}, "unknown pipeline parameter 'MseTreshold'"),
    ({"ProcessingInstanceCount": "two"}, "'ProcessingInstanceCount' is Integer"),
    ({"ProcessingInstanceCount": 1.5}, "'ProcessingInstanceCount' is Integer"),
    ({"ProcessingInstanceCount": True}, "'ProcessingInstanceCount' is Integer"),
    ({"MseThreshold": "nan"}, "'MseThreshold' is Float"),
    ({"MseThreshold": "abc"}, "'MseThreshold' is Float"),
    ({"UseCache": "maybe"}, "'UseCache' is Boolean"),
    ({"InputData": ["s3://a"]}, "'InputData' is String"),
])
def test_bad_parameters_name_the_parameter(values, message):
    with pytest.raises(ParameterError, match=re.escape(message)):
        cast_parameters(values, DECLARED)


URI = "s3://b/p/evaluation.json"


def test_json_path_reads_nested_values_and_indexes():
    doc = {"regression_metrics": {"mse": {"value": 4.2}}, "items": [{"x": 1}]}
    assert json_path_value(doc, "regression_metrics.mse.value", URI) == 4.2
    assert json_path_value(doc, "items[0].x", URI) == 1


@pytest.mark.parametrize(("data", "path", "message"), [
    (b"{not json", "a", "is not valid JSON: Expecting property name enclosed in double quotes at line 1 column 2"),
    (b"\xff\xfe", "a", "is not UTF-8"),
    (b'{"regression_metrics": {"rmse": {}}}', "regression_metrics.mse.value", "no key 'mse' at regression_metrics"),
    (b'{"a": [1]}', "a[3]", "no index [3]"),
    (b'{"a": 1}', "", "empty or malformed JSON path"),
    (b'{"a": 1}', "a..b", "empty or malformed JSON path"),
])
def test_bad_reports_and_paths_fail_clearly(data, path, message):
    with pytest.raises(PropertyFileError, match=re.escape(message)):
        json_path_value(parse_report(data, URI), path, URI)


@pytest.mark.parametrize("value", ["4.2", None, True, float("nan"), float("inf"), {"v": 1}])
def test_non_numeric_or_non_finite_values_are_rejected(value):
    with pytest.raises(PropertyFileError, match=re.escape(f"{URI}: x is")):
        numeric_value(value, "x", URI)


def test_property_file_location_errors_name_the_missing_piece():
    from airsage_fake_source import definition

    d = definition()
    name, expr, path = property_file_location(d, "EvaluateAbalone", "EvaluationReport")
    assert (name, path) == ("evaluation", "evaluation.json") and "Std:Join" in expr
    with pytest.raises(PropertyFileError, match="step 'Nope' is not in the pipeline definition"):
        property_file_location(d, "Nope", "EvaluationReport")
    with pytest.raises(PropertyFileError, match="declares no PropertyFile 'Other'"):
        property_file_location(d, "EvaluateAbalone", "Other")
