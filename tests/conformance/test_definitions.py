"""Every conformance definition (and the SDK 2.x ones) is valid for SageMaker; what the local runner
cannot run, validate and run-local refuse with the very same lines; what SageMaker refuses, they refuse."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sm_pipeline.local.capabilities import local_problems
from sm_pipeline.validate import validate_definition

from .conftest import DEFINITIONS, LAMBDA_ARN, REPO, SCORE_ARN, cli_env, load

SDK2_EXAMPLE = REPO / "tests" / "fixtures" / "sdk2" / "aws_abalone_definition.json"
NAMES = sorted(path.stem for path in DEFINITIONS.glob("*.json"))


def test_the_set_is_complete():
    assert NAMES == ["abalone", "cache_forms", "callback", "control_flow", "evaluation", "for_each", "for_each_jobs",
                     "parallelism", "references", "run_conditions", "step_types"]


@pytest.mark.parametrize("name", NAMES)
def test_valid_for_sagemaker(name):
    assert validate_definition(load(name)) == []


def test_the_sdk2_example_is_valid_and_runnable_locally():
    definition = json.loads(SDK2_EXAMPLE.read_text())
    assert validate_definition(definition) == []
    assert local_problems(definition) == []


@pytest.mark.parametrize(("name", "lambdas", "expected"), [
    ("abalone", None, []),
    ("cache_forms", None, []),
    ("parallelism", None, []),
    ("control_flow", {LAMBDA_ARN: print}, []),
    ("control_flow", None, [f"step 'ClassifyRows': Lambda function '{LAMBDA_ARN}' is not runnable locally "
                            "(register a Python callable with sm_pipeline.local.register_lambda)"]),
    ("callback", None, ["step 'AwaitApproval': step type 'Callback' is not runnable locally"]),
    ("for_each", {SCORE_ARN: print}, []),
    ("for_each_jobs", None, []),
    ("references", None, []),
    ("evaluation", None, [
        "step 'CreateEvaluationAction': step type 'Lineage' is not runnable locally",
        "step 'EvaluateBaseModel': a serverless Evaluation job (ServerlessJobConfig) with no algorithm image "
        "(AlgorithmSpecification.TrainingImage) has no local equivalent",
        "step 'EvaluateCustomModel': a serverless Evaluation job (ServerlessJobConfig) with no algorithm image "
        "(AlgorithmSpecification.TrainingImage) has no local equivalent",
        "step 'AssociateLineage': step type 'Lineage' is not runnable locally"]),
    ("run_conditions", None, [
        f"step '{step}': DependsOn step 'MayFail' with Trigger '{trigger}' (a run condition) has no local "
        "equivalent: the local runner starts a step only once its dependencies succeeded"
        for step, trigger in (("NotifyOnFailure", "Failed"), ("AlwaysAfter", "Any"))]),
    ("step_types", None, [f"step '{step}': step type '{kind}' is not runnable locally" for step, kind in (
        ("MakeEndpointConfig", "EndpointConfig"), ("MakeEndpoint", "Endpoint"), ("MakeComponent", "InferenceComponent"),
        ("RecordLineage", "Lineage"), ("RunEmr", "EMR"), ("RunEmrServerless", "EMRServerless"),
        ("CleanScratch", "Cleanup"))]),
])
def test_what_runs_locally(name, lambdas, expected):
    assert local_problems(load(name), lambdas=lambdas) == expected


def test_the_step_types_of_the_sdk_are_all_in_the_set():
    """Every SDK 3.x step type is in some conformance definition, except those the SDK cannot build offline."""
    from sm_pipeline.step_graph import flatten_steps

    built = {entry.type for name in NAMES for entry in flatten_steps(load(name))}
    # Tuning, AutoML, QualityCheck, ClarifyCheck, NotebookJob, Job: their builders need AWS (a tuning job's
    # estimator session, a baseline's S3 upload, a notebook upload, a job catalog) - unit rows in
    # tests/sm_pipeline cover them.
    assert built >= {"Processing", "Training", "Transform", "Model", "RegisterModel", "Condition", "Fail", "Lambda",
                     "Callback", "ForEach", "EndpointConfig", "Endpoint", "InferenceComponent", "Lineage", "EMR",
                     "EMRServerless", "Cleanup"}


@pytest.mark.parametrize("name", ["evaluation", "run_conditions", "step_types"])
def test_what_cannot_run_locally_is_refused_alike_by_validate_local_and_run_local(tmp_path, name):
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(load(name)))
    lines = [f"{path}: cannot run locally: {line}" for line in local_problems(load(name))]
    validate = subprocess.run([sys.executable, "-m", "sm_pipeline", "validate", "--local", str(path)],
                              capture_output=True, text=True, env=cli_env(), check=False)
    assert (validate.returncode, validate.stderr.splitlines()) == (2, lines)
    run = subprocess.run([sys.executable, "-m", "sm_pipeline", "run-local", "--definition", str(path),
                          "--root", str(tmp_path / "root")], capture_output=True, text=True, env=cli_env(), check=False)
    assert (run.returncode, run.stderr.splitlines()) == (2, lines)
    assert not (tmp_path / "root").exists()


def test_callback_is_refused_alike_by_validate_and_run_local(tmp_path):
    path = tmp_path / "callback.json"
    path.write_text(json.dumps(load("callback")))
    line = f"{path}: cannot run locally: step 'AwaitApproval': step type 'Callback' is not runnable locally"
    validate = subprocess.run([sys.executable, "-m", "sm_pipeline", "validate", str(path)],
                              capture_output=True, text=True, env=cli_env(), check=False)
    assert (validate.returncode, validate.stderr.splitlines()) == (
        0, [line, f"{path}: ok for SageMaker (run-local would refuse it: see above)"])
    run = subprocess.run([sys.executable, "-m", "sm_pipeline", "run-local", "--definition", str(path),
                          "--root", str(tmp_path / "root")], capture_output=True, text=True, env=cli_env(), check=False)
    assert (run.returncode, run.stderr.splitlines()) == (2, [line])


@pytest.mark.parametrize(("mutate", "expected"), [
    (lambda d: d["Steps"][0].update(CacheConfig={"Enabled": True, "ExpireAfter": "30 days"}),
     "step 'Sleepy0': CacheConfig.ExpireAfter '30 days' is not a duration (e.g. 30d, 5y, T16m, 30dT5h, P30D, PT12H)"),
    (lambda d: d["Steps"][0]["Arguments"]["ProcessingOutputConfig"]["Outputs"][0]["S3Output"].update(
        LocalPath="/opt/ml/out"),
     "step 'Sleepy0': Arguments.ProcessingOutputConfig.Outputs[0].S3Output.LocalPath must be a path under "
     "/opt/ml/processing/, not '/opt/ml/out'"),
    (lambda d: d.update(ParallelismConfiguration={"MaxParallelExecutionSteps": 0}),
     "ParallelismConfiguration.MaxParallelExecutionSteps must be at least 1, not 0"),
    (lambda d: d.update(Schedule="daily"), "unknown top-level field 'Schedule'"),
    # The Arguments a step's type requires (the required members of its API request, less the name)
    (lambda d: d["Steps"][0]["Arguments"].pop("RoleArn"), "step 'Sleepy0': Arguments.RoleArn is required "
                                                          "(CreateProcessingJob)"),
    (lambda d: d["Steps"][0].pop("Arguments"), "step 'Sleepy0': a Processing step needs Arguments (the "
                                               "CreateProcessingJob request)"),
    (lambda d: d["Steps"][0].update(DependsOn=[{"Step": "Sleepy1", "Trigger": "Sometimes"}]),
     "step 'Sleepy0': a DependsOn object is {\"Step\": <name>, \"Trigger\": Completed|Failed|Stopped|Any}"),
    (lambda d: d["Steps"][1].update(Arguments={"Conditions": [{"Type": "Not", "Expression": {
        "Type": "Equals", "LeftValue": 1, "RightValue": 1}}], "IfSteps": [], "ElseSteps": []}, Type="Condition"),
     "step 'Sleepy1': Arguments.Conditions[0]: unknown property 'Expression' in a Not condition"),
    (lambda d: d["Steps"][0]["Arguments"]["AppSpecification"]["ContainerArguments"].append(
        {"Get": "ForEach.CurrentItem"}),
     "step 'Sleepy0': Get ForEach.CurrentItem is valid only in the body steps of a ForEach step"),
    (lambda d: d["Steps"][0]["Arguments"]["AppSpecification"]["ContainerArguments"].append(
        {"Get": "PipelineExperimentConfig.RunName"}),
     "step 'Sleepy0': Get references unknown PipelineExperimentConfig property 'RunName'"),
])
def test_bad_fields_are_one_line_from_validate_and_run_local_alike(tmp_path, mutate, expected):
    definition = load("parallelism")
    mutate(definition)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(definition))
    validate = subprocess.run([sys.executable, "-m", "sm_pipeline", "validate", str(path)],
                              capture_output=True, text=True, env=cli_env(), check=False)
    run = subprocess.run([sys.executable, "-m", "sm_pipeline", "run-local", "--definition", str(path),
                          "--root", str(tmp_path / "root")], capture_output=True, text=True, env=cli_env(), check=False)
    assert validate.returncode == run.returncode == 2
    assert validate.stderr == run.stderr
    (line,) = validate.stderr.splitlines()
    assert line.startswith(f"{path}: {expected}"), line
    assert not (tmp_path / "root").exists()
