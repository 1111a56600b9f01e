"""Display names, idempotency tokens, parameter casting and PropertyFile parsing (no AWS)."""

from __future__ import annotations

import re

import pytest

from airsage.execution_inputs import ExecutionInputs, changed_inputs, record_from_description
from airsage.naming import (
    MAX_DISPLAY_NAME,
    client_request_token,
    date_display_prefix,
    execution_display_name,
    run_path_segment,
)
from airsage.numbers import readable
from airsage.property_files import (
    PropertyFileError,
    json_path_value,
    numeric_value,
    parse_report,
    property_file_location,
)
from sm_pipeline.parameters import ParameterError, start_request_values

VALID_DISPLAY = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,81}$")


def inputs(**changes):
    base = {"dag_id": "abalone_pipeline", "ds": "2026-11-01", "definition_sha256": "d" * 64,
            "parameters": {"MseThreshold": "6.0", "InputData": "s3://b/p/input/ds=2026-11-01/abalone.csv"},
            "data": {"input data": "a" * 64, "batch data": "b" * 64}}
    return ExecutionInputs(**{**base, **changes})


@pytest.mark.parametrize("dag_id", ["abalone_pipeline", "x" * 300, "---", "ünïcödé dag", "a"])
def test_display_name_is_valid_deterministic_and_starts_with_the_date_prefix(dag_id):
    fingerprint = inputs(dag_id=dag_id).fingerprint()
    name = execution_display_name(dag_id, "2026-11-01", fingerprint)
    assert VALID_DISPLAY.match(name), name
    assert len(name) <= MAX_DISPLAY_NAME
    assert name == execution_display_name(dag_id, "2026-11-01", fingerprint)
    assert name.startswith(date_display_prefix(dag_id, "2026-11-01"))
    assert name.endswith(fingerprint[:12])


def test_same_inputs_same_name_any_changed_input_another_name():
    name = inputs().display_name()
    assert inputs().display_name() == name  # a retry, a second manual run, a re-created backfill
    for changed in ({"data": {"input data": "c" * 64, "batch data": "b" * 64}},
                    {"data": {"input data": "a" * 64, "batch data": "c" * 64}},
                    {"data": {"input data": "a" * 64}}, {"definition_sha256": "e" * 64},
                    {"parameters": {"MseThreshold": "0.01", "InputData": "s3://b/p/input/ds=2026-11-01/abalone.csv"}},
                    {"ds": "2026-11-02"}, {"dag_id": "abalone_pipeline_local"}):
        assert inputs(**changed).display_name() != name, changed
    assert execution_display_name("a_b", "2026-11-01", inputs(dag_id="a_b").fingerprint()) != \
        execution_display_name("a-b", "2026-11-01", inputs(dag_id="a-b").fingerprint())


def test_changed_inputs_names_what_differs():
    before, after = inputs().record(), inputs(parameters={"MseThreshold": "0.01"},
                                             data={"input data": "c" * 64, "batch data": "b" * 64}).record()
    assert changed_inputs(before, after) == (
        "input data, parameter InputData (s3://b/p/input/ds=2026-11-01/abalone.csv -> unset), "
        "parameter MseThreshold (6.0 -> 0.01)")
    assert changed_inputs(None, after) == "its inputs were not recorded"
    assert record_from_description(inputs().description()) == before
    assert record_from_description("started by hand") is None
    assert len(inputs(parameters={f"P{i}": "x" * 100 for i in range(40)}).description()) <= 3072


@pytest.mark.parametrize(("run_id", "segment"), [
    ("plain-run_1.2", "run=plain-run_1.2"),
    ("scheduled__2026-11-01T00:00:00+00:00", None),
    ("manual__2026-11-01T12:34:56.789012+00:00", None),
    ("../../etc", None),
    ("x" * 300, None),
])
def test_run_path_segment_is_path_safe_and_unique(run_id, segment):
    out = run_path_segment(run_id)
    assert re.fullmatch(r"run=[A-Za-z0-9._-]+", out) and len(out) <= 124 and "/" not in out
    assert not out[len("run="):].startswith(".")
    if segment:
        assert out == segment
    assert out == run_path_segment(run_id)
    assert run_path_segment("a:b") != run_path_segment("a+b")


@pytest.mark.parametrize(("value", "text"), [
    (4.123456789, "4.123"), (6.0, "6"), (0.001, "0.001"), (123456.7, "1.235e+05"), ("6.50", "6.5"), (None, "None"),
    (float("nan"), "nan"),
])
def test_numbers_read_with_four_significant_digits(value, text):
    assert readable(value) == text


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
    out = start_request_values(
        DECLARED,
        {"ProcessingInstanceCount": "2", "MseThreshold": 5, "InputData": "s3://b/x", "UseCache": True},
    )
    assert out == {"ProcessingInstanceCount": "2", "MseThreshold": "5.0", "InputData": "s3://b/x", "UseCache": "true"}
    assert start_request_values(DECLARED, {"ProcessingInstanceCount": 3.0, "MseThreshold": None}) == {
        "ProcessingInstanceCount": "3"
    }
    assert start_request_values(DECLARED, {"UseCache": "FALSE"}) == {"UseCache": "false"}


@pytest.mark.parametrize(("values", "message"), [
    ({"MseTreshold": 5}, "unknown parameter(s) MseTreshold (declared: InputData, MseThreshold,"),
    ({"ProcessingInstanceCount": "two"}, "parameter ProcessingInstanceCount (Integer): expected an integer"),
    ({"ProcessingInstanceCount": 1.5}, "parameter ProcessingInstanceCount (Integer): expected an integer"),
    ({"ProcessingInstanceCount": True}, "parameter ProcessingInstanceCount (Integer): expected an integer"),
    ({"MseThreshold": "nan"}, "parameter MseThreshold (Float): nan is not a finite number"),
    ({"MseThreshold": "abc"}, "parameter MseThreshold (Float): expected a number"),
    ({"UseCache": "maybe"}, "parameter UseCache (Boolean): expected true or false"),
    ({"UseCache": "yes"}, "parameter UseCache (Boolean): expected true or false"),
    ({"InputData": ["s3://a"]}, "parameter InputData (String): expected a string"),
])
def test_bad_parameters_name_the_parameter(values, message):
    with pytest.raises(ParameterError, match=re.escape(message)):
        start_request_values(DECLARED, values)


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
