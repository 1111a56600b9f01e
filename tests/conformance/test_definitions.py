"""Every conformance definition (and AWS's SDK 2.x example) is valid for SageMaker; what the local runner
cannot run, validate and run-local refuse with the very same lines."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from sm_pipeline.validate import local_problems, validate_definition

from .conftest import DEFINITIONS, LAMBDA_ARN, REPO, cli_env, load

SDK2_EXAMPLE = REPO / "tests" / "fixtures" / "sdk2" / "aws_abalone_definition.json"
NAMES = sorted(path.stem for path in DEFINITIONS.glob("*.json"))


def test_the_set_is_complete():
    assert NAMES == ["abalone", "cache_forms", "callback", "control_flow", "parallelism"]


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
])
def test_what_runs_locally(name, lambdas, expected):
    assert local_problems(load(name), lambdas=lambdas) == expected


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
