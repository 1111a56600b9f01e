"""validate_definition: one problem per string, for every kind of broken definition."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from sm_pipeline.__main__ import main
from sm_pipeline.errors import DefinitionError
from sm_pipeline.step_graph import find_cycles, load_definition_file
from sm_pipeline.validate import validate_definition

REFERENCE = Path(__file__).resolve().parents[1] / "fixtures" / "sdk2" / "aws_abalone_definition.json"


# The members CreateProcessingJob requires (besides the job name SageMaker gives): a step without them is refused.
PROCESSING_REQUIRED = {
    "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30}},
    "AppSpecification": {"ImageUri": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"},
    "RoleArn": "arn:aws:iam::000000000000:role/Test",
}


def step(name, kind="Processing", arguments=None, **extra):
    arguments = arguments or {}
    if kind == "Processing":
        arguments = {**PROCESSING_REQUIRED, **arguments}
    return {"Name": name, "Type": kind, "Arguments": arguments, **extra}


def base():
    return {
        "Version": "2020-12-01",
        "Parameters": [{"Name": "Threshold", "Type": "Float", "DefaultValue": 6.0}],
        "Steps": [
            step("A", arguments={"ProcessingOutputConfig": {"Outputs": [{"OutputName": "eval", "S3Output": {}}]}},
                 PropertyFiles=[{"PropertyFileName": "Report", "OutputName": "eval", "FilePath": "e.json"}]),
            step("B", arguments={"In": {"Get": "Steps.A.ProcessingOutputConfig.Outputs['eval'].S3Output.S3Uri"}}),
            step("Check", "Condition", {
                "Conditions": [{"Type": "LessThanOrEqualTo",
                                "LeftValue": {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.A.PropertyFiles.Report"},
                                                              "Path": "mse"}},
                                "RightValue": {"Get": "Parameters.Threshold"}}],
                "IfSteps": [step("Good", "Model")],
                "ElseSteps": [step("Bad", "Fail", {"ErrorMessage": {"Std:Join": {"On": " ", "Values": [
                    "mse >", {"Get": "Parameters.Threshold"}]}}})],
            }),
        ],
    }


def test_reference_and_base_definitions_are_valid():
    assert validate_definition(load_definition_file(REFERENCE)) == []
    assert validate_definition(base()) == []


def test_known_top_level_fields_are_accepted():
    definition = base()
    definition["Metadata"] = {}
    definition["MlflowConfig"] = {"MlflowResourceArn": None, "MlflowExperimentName": {"Get": "Execution.PipelineName"}}
    definition["PipelineExperimentConfig"] = {"ExperimentName": {"Get": "Execution.PipelineName"}}
    definition["ParallelismConfiguration"] = {"MaxParallelExecutionSteps": 3}
    assert validate_definition(definition) == []
    definition["MlflowConfig"] = None  # what the SDK writes when no MLflow is configured
    assert validate_definition(definition) == []


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("Foo", 1, "unknown top-level field 'Foo' (known: Version, Metadata, "),
    ("MlflowConfig", "arn", "MlflowConfig must be an object, not 'arn'"),
    ("MlflowConfig", {"MlflowResourceArn": 3}, "MlflowConfig.MlflowResourceArn must be a string, not 3"),
    ("ParallelismConfiguration", {}, "ParallelismConfiguration.MaxParallelExecutionSteps is required"),
    ("ParallelismConfiguration", {"MaxParallelExecutionSteps": 0},
     "ParallelismConfiguration.MaxParallelExecutionSteps must be at least 1, not 0"),
    ("ParallelismConfiguration", {"MaxParallelExecutionSteps": "2"}, "must be an integer, not '2'"),
])
def test_bad_top_level_fields(field, value, expected):
    definition = base()
    definition[field] = value
    problems = validate_definition(definition)
    assert len(problems) == 1 and expected in problems[0], problems


def mutate(change):
    definition = copy.deepcopy(base())
    change(definition)
    return validate_definition(definition)


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: d["Steps"].append(step("A")), "duplicate step name 'A'"),
    (lambda d: d["Steps"][2]["Arguments"]["ElseSteps"].append(step("B")), "duplicate step name 'B'"),
    (lambda d: d["Steps"].append(step("X", "Teleport")), "step 'X': unknown step type 'Teleport'"),
    (lambda d: d["Steps"].append({"Type": "Processing"}), "step #"),
    (lambda d: d["Steps"][1]["Arguments"].update(Q={"Get": "Steps.Nope.ModelName"}),
     "step 'B': Get references unknown step 'Nope'"),
    (lambda d: d["Steps"][1]["Arguments"].update(Q={"Get": "Parameters.Nope"}),
     "step 'B': Get references unknown parameter 'Nope'"),
    (lambda d: d["Steps"][1]["Arguments"].update(Q={"Get": "Execution.Nope"}),
     "step 'B': Get references unknown execution variable 'Nope'"),
    (lambda d: d["Steps"][1]["Arguments"].update(Q={"Get": "Pipeline.X"}), "unknown namespace 'Pipeline'"),
    (lambda d: d["Steps"][1]["Arguments"].update(Q={"Get": "Steps.A"}), "Get of step 'A' has no property path"),
    (lambda d: d["Steps"][1]["Arguments"].update(Q={"Std:JsonGet": {"PropertyFile": {"Get": "Steps.A.PropertyFiles.Nope"},
                                                                    "Path": "x"}}),
     "step 'B': step 'A' has no property file 'Nope'"),
    (lambda d: d["Steps"][1]["Arguments"].update(Q={"Std:JsonGet": {"PropertyFile": "Report", "Path": "x"}}),
     "malformed Std:JsonGet PropertyFile"),
    (lambda d: d["Steps"][1]["Arguments"].update(Q={"Std:Concat": {"Values": []}}), "unknown function 'Std:Concat'"),
    (lambda d: d["Steps"][1].update(DependsOn=["Ghost"]), "step 'B': DependsOn unknown step 'Ghost'"),
    (lambda d: d["Steps"][1].update(DependsOn="A"), "DependsOn must be a list"),
    (lambda d: d["Steps"][0].update(DependsOn=["B"]), "dependency cycle: A -> B -> A"),
    (lambda d: d["Steps"][1]["Arguments"].update(Q={"Get": "Steps.B.X"}), "step 'B': references itself"),
    (lambda d: d["Steps"][0]["Arguments"].update(Q={"Get": "Steps.Good.ModelName"}), "dependency cycle"),
    (lambda d: d["Steps"][0]["PropertyFiles"][0].update(OutputName="nope"),
     "property file 'Report' names unknown output 'nope'"),
    (lambda d: d["Steps"][2]["Arguments"].pop("Conditions"), "needs an Arguments.Conditions list"),
    (lambda d: d["Parameters"].append({"Name": "Threshold", "Type": "Float"}), "duplicate parameter 'Threshold'"),
    (lambda d: d["Parameters"].append({"Name": "N", "Type": "Decimal"}), "parameter 'N': unknown type 'Decimal'"),
    (lambda d: d["Parameters"].append({"Name": "N", "Type": "Integer", "DefaultValue": "3"}),
     "parameter 'N': DefaultValue '3' is not a Integer"),
    (lambda d: d["Parameters"].append({"Name": "N", "Type": "Integer", "DefaultValue": True}), "is not a Integer"),
    (lambda d: d["Parameters"].append({"Type": "String"}), "parameter #2 has no Name"),
    (lambda d: d.update(Parameters={}), "'Parameters' must be a list"),
    (lambda d: d.update(Steps=[]), "no 'Steps' list"),
    (lambda d: d.pop("Steps"), "no 'Steps' list"),
    (lambda d: d["Steps"][0].update(CacheConfig={"Enabled": True, "ExpireAfter": "30 days"}),
     "step 'A': CacheConfig.ExpireAfter '30 days' is not a duration (e.g. 30d, 5y, T16m, 30dT5h, P30D, PT12H)"),
    (lambda d: d["Steps"][0].update(CacheConfig={"Enabled": False, "ExpireAfter": "T"}),
     "step 'A': CacheConfig.ExpireAfter 'T' is not a duration"),
    (lambda d: d["Steps"][0]["Arguments"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"].update(
        LocalPath="/opt/ml/model"),
     "step 'A': Arguments.ProcessingOutputConfig.Outputs[0].S3Output.LocalPath must be a path under "
     "/opt/ml/processing/, not '/opt/ml/model'"),
    (lambda d: d["Steps"][0]["Arguments"].update(ProcessingInputs=[
        {"InputName": "x", "S3Input": {"S3Uri": "s3://b/k", "LocalPath": "/opt/ml/processing/../code"}}]),
     "ProcessingInputs[0].S3Input.LocalPath must be a path under /opt/ml/processing/, not"),
])
def test_every_invalid_definition_case(change, expected):
    problems = mutate(change)
    assert any(expected in problem for problem in problems), problems


@pytest.mark.parametrize("expire", ["30d", "5y", "T16m", "30dT5h", "30DT5h", "4w", "2m", "P30D", "PT12H", "P1Y2M"])
def test_every_documented_expire_after_form_is_valid(expire):
    definition = base()
    definition["Steps"][0]["CacheConfig"] = {"Enabled": True, "ExpireAfter": expire}
    assert validate_definition(definition) == []


def test_not_an_object():
    assert validate_definition([1]) == ["a pipeline definition must be a JSON object, not list"]


def test_several_problems_are_all_reported():
    def change(d):
        d["Steps"].append(step("A"))
        d["Steps"][1]["Arguments"]["Q"] = {"Get": "Parameters.Nope"}

    assert len(mutate(change)) == 2


def test_cycle_listing():
    definition = {"Steps": [step("A", DependsOn=["C"]), step("B", DependsOn=["A"]), step("C", DependsOn=["B"])]}
    problems = validate_definition(definition)
    assert problems == ["dependency cycle: A -> C -> B -> A"]
    assert find_cycles({}) == []


def test_load_definition_file_errors(tmp_path):
    with pytest.raises(DefinitionError, match="cannot read"):
        load_definition_file(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"Steps": [\n')
    with pytest.raises(DefinitionError, match="invalid JSON at line 2"):
        load_definition_file(bad)
    array = tmp_path / "array.json"
    array.write_text("[]")
    with pytest.raises(DefinitionError, match="must be a JSON object"):
        load_definition_file(array)


def test_validate_cli_exit_codes(tmp_path, capsys):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(base()))
    assert main(["validate", str(good)]) == 0
    broken = copy.deepcopy(base())
    broken["Steps"].append(step("A"))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(broken))
    assert main(["validate", str(bad)]) == 2
    assert "duplicate step name 'A'" in capsys.readouterr().err
    assert main(["validate", str(tmp_path / "nope.json")]) == 2


FOR_EACH = Path(__file__).resolve().parents[1] / "conformance" / "definitions" / "for_each.json"


def for_each_problems(change):
    definition = json.loads(FOR_EACH.read_text())
    change(definition)
    return validate_definition(definition)


def _each(definition):
    return definition["Steps"][0]["Arguments"]


def _use_best(definition):
    return definition["Steps"][2]["Arguments"]["IfSteps"][0]["Arguments"]["AppSpecification"]["ContainerArguments"]


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: _each(d).update(MaxConcurrency=0),
     "step 'ScoreEach': Arguments.MaxConcurrency must be an integer from 1 to 50, not 0"),
    (lambda d: _each(d).update(IterableItems=[]),
     "step 'ScoreEach': Arguments.IterableItems, a list, must have 1 to 100 items, not 0"),
    (lambda d: _each(d).update(IterableItems="abc"),
     "step 'ScoreEach': Arguments.IterableItems must be a reference that resolves to a JSON list, or a list of "
     "items, not 'abc'"),
    (lambda d: _each(d)["ForEachBody"].append({"Name": "Stop", "Type": "Fail", "Arguments": {"ErrorMessage": "x"}}),
     "step 'ScoreEach': body step 'Stop' is a Fail step; a ForEach body holds no Condition, Fail, ForEach step"),
    (lambda d: _each(d)["Selector"].update(Pick="Median"),
     "step 'ScoreEach': Arguments.Selector.Pick must be MaxBy or MinBy, not 'Median'"),
    (lambda d: _each(d)["Selector"].update(Field={"Get": "IterationOutput.EchoTag.OutputParameters['score']"}),
     "step 'ScoreEach': Arguments.Selector.Field must be {\"Get\": \"IterationOutput.<body step>.<property>\"} with a "
     "body step of this ForEach (CountItem, ScoreItem)"),
    (lambda d: _use_best(d).append({"Get": "Steps.ScoreItem.OutputParameters['score']"}),
     "step 'UseBest': Get references step 'ScoreItem', a body step of ForEach step 'ScoreEach', which runs once "
     "per item: read it as Steps.ScoreEach.IterationOutputs[<index>].ScoreItem... or Steps.ScoreEach.Selected..."),
    (lambda d: _use_best(d).append({"Get": "Steps.ScoreEach.IterationOutputs.ScoreItem"}),
     "step 'UseBest': Get Steps.ScoreEach.IterationOutputs.ScoreItem: IterationOutputs is read as "
     "IterationOutputs[<index>].<body step>.<property>, with a body step of 'ScoreEach' (CountItem, ScoreItem)"),
    (lambda d: _use_best(d).append({"Get": "Steps.ScoreEach.Outputs"}),
     "step 'UseBest': ForEach step 'ScoreEach' has no property 'Outputs'"),
    (lambda d: _each(d).pop("Selector"),
     "step 'UseBest': Get Steps.ScoreEach.Selected.OutputParameters['label']: ForEach step 'ScoreEach' has no "
     "Selector, so nothing is Selected"),
    (lambda d: _use_best(d).append({"Get": "IterationOutput.ScoreItem.OutputParameters['score']"}),
     "step 'UseBest': Get IterationOutput.ScoreItem is valid only as a ForEach step's Selector.Field"),
    (lambda d: d["Steps"][2]["Arguments"]["IfSteps"][0].update(Name="CountItem-1"),
     "step 'ScoreEach': step 'CountItem-1' would have the name of child 'CountItem-1' of body step 'CountItem'"),
])
def test_for_each_rules(change, expected):
    problems = for_each_problems(change)
    assert any(problem.startswith(expected) for problem in problems), problems


def test_the_for_each_definition_is_valid():
    assert for_each_problems(lambda d: None) == []


@pytest.mark.parametrize(("condition", "expected"), [
    ({"Type": "Equals", "LeftValue": 1, "RightValue": 1, "Right": 2},
     "step 'Check': Arguments.Conditions[0]: unknown property 'Right' in a Equals condition (SageMaker cannot parse "
     "it: a Equals condition has LeftValue, RightValue)"),
    ({"Type": "Or", "Conditions": [{"Type": "In", "QueryValue": 1, "Values": [1], "Value": 1}]},
     "step 'Check': Arguments.Conditions[0].Conditions[0]: unknown property 'Value' in a In condition"),
    ({"Type": "Not", "Expression": {"Type": "Equals", "LeftValue": 1, "RightValue": 1}},
     "step 'Check': Arguments.Conditions[0]: unknown property 'Expression' in a Not condition (SageMaker cannot "
     "parse it: a Not takes its condition as 'Condition'"),
])
def test_condition_properties_sagemaker_cannot_parse(condition, expected):
    problems = mutate(lambda d: d["Steps"][2]["Arguments"].update(Conditions=[condition]))
    assert len(problems) == 1 and problems[0].startswith(expected), problems
