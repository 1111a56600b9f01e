"""Expressions: Get (parameters, execution variables, step properties), Std:Join, Std:JsonGet."""

from __future__ import annotations

import pytest

from sm_pipeline.expressions import (
    ExpressionContext,
    ExpressionError,
    Reference,
    get_path,
    references,
    render,
    resolve,
)

PROCESSING_RECORD = {
    "ProcessingJobName": "pipelines-abc-Pre",
    "ProcessingOutputConfig": {"Outputs": [
        {"OutputName": "train", "S3Output": {"S3Uri": "s3://b/exec/train", "LocalPath": "/opt/ml/processing/train"}},
        {"OutputName": "test", "S3Output": {"S3Uri": "s3://b/exec/test", "LocalPath": "/opt/ml/processing/test"}},
    ]},
}
RECORDS = {
    "Pre": PROCESSING_RECORD,
    "Train": {"ModelArtifacts": {"S3ModelArtifacts": "s3://b/model.tar.gz"},
              "FinalMetricDataList": [{"MetricName": "validation:rmse", "Value": 2.5}]},
    "Model": {"ModelName": "m-1"},
    "Register": {"ModelPackageArn": "arn:aws:sagemaker:us-east-1:000000000000:model-package/g/1"},
    "Transform": {"TransformOutput": {"S3OutputPath": "s3://b/out"}},
    # A Lambda/Callback step's properties: OutputParameters by name (what the runner records)
    "Lambda": {"OutputParameters": {"answer": 42, "label": "ok"}},
}
REPORT = {"regression_metrics": {"mse": {"value": 4.5}}, "items": [{"x": 1}, {"x": 2}], "odd key": 3}


def context(**overrides):
    base = dict(
        parameters={"Threshold": 6.0, "Flag": True, "Name": "abalone", "Count": 2},
        execution_variables={"PipelineExecutionId": "exec123", "PipelineExecutionArn": "arn:x", "PipelineName": "p",
                             "StartDateTime": "2024-01-01T00:00:00+00:00"},
        step_records=RECORDS,
        read_property_file=lambda step, name: REPORT if (step, name) == ("Eval", "EvaluationReport") else None,
        read_json_uri=lambda uri: {"from": uri},
    )
    base.update(overrides)
    return ExpressionContext(**base)


@pytest.mark.parametrize(("expression", "expected"), [
    ({"Get": "Parameters.Threshold"}, 6.0),
    ({"Get": "Parameters.Flag"}, True),
    ({"Get": "Execution.PipelineExecutionId"}, "exec123"),
    ({"Get": "Execution.PipelineExecutionArn"}, "arn:x"),
    ({"Get": "Execution.PipelineName"}, "p"),
    ({"Get": "Execution.StartDateTime"}, "2024-01-01T00:00:00+00:00"),
    ({"Get": "Steps.Pre.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"}, "s3://b/exec/train"),
    ({"Get": 'Steps.Pre.ProcessingOutputConfig.Outputs["test"].S3Output.S3Uri'}, "s3://b/exec/test"),
    ({"Get": "Steps.Pre.ProcessingOutputConfig.Outputs[1].OutputName"}, "test"),
    ({"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}, "s3://b/model.tar.gz"),
    ({"Get": "Steps.Train.FinalMetricDataList['validation:rmse'].Value"}, 2.5),
    ({"Get": "Steps.Model.ModelName"}, "m-1"),
    ({"Get": "Steps.Register.ModelPackageArn"}, "arn:aws:sagemaker:us-east-1:000000000000:model-package/g/1"),
    ({"Get": "Steps.Transform.TransformOutput.S3OutputPath"}, "s3://b/out"),
    # the form the SDK emits for LambdaOutput/CallbackOutput (never a trailing .Value)
    ({"Get": "Steps.Lambda.OutputParameters['answer']"}, 42),
    ({"Get": 'Steps.Lambda.OutputParameters["label"]'}, "ok"),
    ({"Std:Join": {"On": "/", "Values": ["s3://b", {"Get": "Execution.PipelineExecutionId"}, "eval"]}}, "s3://b/exec123/eval"),
    ({"Std:Join": {"On": " ", "Values": ["MSE >", {"Get": "Parameters.Threshold"}, {"Get": "Parameters.Flag"}]}},
     "MSE > 6.0 true"),
    ({"Std:Join": {"Values": ["a", {"Std:Join": {"On": "-", "Values": ["b", {"Get": "Parameters.Count"}]}}]}}, "ab-2"),
    ({"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Eval.PropertyFiles.EvaluationReport"},
                      "Path": "regression_metrics.mse.value"}}, 4.5),
    ({"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Eval.PropertyFiles.EvaluationReport"}, "Path": "items[1].x"}}, 2),
    ({"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Eval.PropertyFiles.EvaluationReport"}, "Path": "['odd key']"}}, 3),
    ({"Std:JsonGet": {"S3Uri": {"Std:Join": {"On": "/", "Values": ["s3://b", {"Get": "Execution.PipelineExecutionId"}]}},
                      "Path": "from"}}, "s3://b/exec123"),
])
def test_every_expression_form(expression, expected):
    assert resolve(expression, context()) == expected


def test_expressions_nested_inside_arguments_resolve_and_input_is_untouched():
    arguments = {"Inputs": [{"S3Uri": {"Get": "Parameters.Name"}, "Mode": "File"}], "Count": {"Get": "Parameters.Count"}}
    resolved = resolve(arguments, context())
    assert resolved == {"Inputs": [{"S3Uri": "abalone", "Mode": "File"}], "Count": 2}
    assert arguments["Inputs"][0]["S3Uri"] == {"Get": "Parameters.Name"}


def test_current_datetime_defaults_to_now():
    value = resolve({"Get": "Execution.CurrentDateTime"}, context())
    assert value[:2] == "20" and "T" in value


def test_resolve_standalone_with_parameters_and_execution_id_only():
    """The Airflow PropertyFile reader resolves an output S3Uri without any step records."""
    ctx = ExpressionContext({"Bucket": "airsage"}, {"PipelineExecutionId": "e1"})
    uri = {"Std:Join": {"On": "/", "Values": ["s3:/", {"Get": "Parameters.Bucket"}, "executions",
                                              {"Get": "Execution.PipelineExecutionId"}, "evaluation"]}}
    assert resolve(uri, ctx) == "s3://airsage/executions/e1/evaluation"


@pytest.mark.parametrize(("expression", "message"), [
    ({"Get": "Parameters.Nope"}, "no pipeline parameter named 'Nope'"),
    ({"Get": "Execution.TrainingJobName"}, "not available"),
    ({"Get": "Steps.Missing.ModelName"}, "step 'Missing' has no record"),
    ({"Get": "Steps.Pre"}, "needs a property path"),
    ({"Get": "Steps.Pre.ProcessingOutputConfig.Outputs['nope'].S3Output"}, "has no 'nope'"),
    ({"Get": "Steps.Pre.ProcessingOutputConfig.Outputs[9]"}, "out of range"),
    ({"Get": "Steps.Pre.Bad..Path"}, "cannot parse"),
    ({"Get": "Steps.Eval.PropertyFiles.EvaluationReport"}, "Std:JsonGet"),
    ({"Get": "Other.X"}, "unknown namespace"),
    ({"Get": 5}, "string reference"),
    ({"Std:Join": {"On": "/"}}, "Std:Join expects"),
    ({"Std:Join": {"On": 1, "Values": []}}, "'On' must be a string"),
    ({"Std:JsonGet": {"PropertyFile": "EvaluationReport", "Path": "x"}}, "PropertyFile must be"),
    ({"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Eval.PropertyFiles.EvaluationReport"}, "Path": "missing.key"}},
     "JSON path 'missing.key' not found"),
    ({"Std:JsonGet": {"Path": "x"}}, "needs a PropertyFile or an S3Uri"),
    ({"Std:JsonGet": {"S3Uri": "s3://b/x"}}, "expects a 'Path'"),
    ({"Std:Concat": {}}, "unknown function"),
])
def test_errors_name_the_reference(expression, message):
    with pytest.raises(ExpressionError) as excinfo:
        resolve(expression, context())
    assert message in str(excinfo.value)


def test_jsonget_without_reader_is_a_clear_error():
    ctx = ExpressionContext({}, {})
    with pytest.raises(ExpressionError, match="cannot be read in this context"):
        resolve({"Std:JsonGet": {"S3Uri": "s3://b/x.json", "Path": "a"}}, ctx)


def test_references_finds_everything():
    value = {"A": {"Get": "Parameters.P"}, "B": [{"Get": "Steps.S.ModelName"}, {"Get": "Execution.PipelineName"}],
             "C": {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.E.PropertyFiles.R"}, "Path": "a"}}}
    assert set(references(value)) == {
        Reference("Parameters", "P"), Reference("Steps", "S", "ModelName"), Reference("Execution", "PipelineName"),
        Reference("Steps", "E", "PropertyFiles.R"), Reference("PropertyFile", "E", "R")}


def test_render_and_get_path():
    assert render(False) == "false" and render(None) == "" and render(1.5) == "1.5"
    assert get_path({"a": [{"b": 1}]}, "a[0].b") == 1
