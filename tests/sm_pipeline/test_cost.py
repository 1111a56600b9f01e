"""sm_pipeline.cost: the bound before a run, the estimate after it, the price tables, and ``python -m sm_pipeline cost``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sm_pipeline.cost import (
    PriceTableError,
    cost_bound,
    cost_estimate,
    figure,
    load_prices,
    step_jobs,
    summary_line,
)

REPO = Path(__file__).resolve().parents[2]
REGION = "eu-west-1"
PRICES = {"regions": {REGION: {"processing": {"ml.m5.xlarge": 0.3}, "training": {"ml.m5.2xlarge": 0.6},
                               "transform": {"ml.m5.large": 0.12}}}}


def definition() -> dict:
    """Processing (count from a parameter), Training (heterogeneous groups, retried), a condition whose branches
    register a model and transform, and a Lambda step."""
    return {
        "Version": "2020-12-01",
        "Parameters": [{"Name": "Count", "Type": "Integer", "DefaultValue": 2},
                       {"Name": "TrainType", "Type": "String", "DefaultValue": "ml.m5.2xlarge"}],
        "Steps": [
            {"Name": "Prep", "Type": "Processing", "Arguments": {
                "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.xlarge",
                                                          "InstanceCount": {"Get": "Parameters.Count"},
                                                          "VolumeSizeInGB": 30}},
                "StoppingCondition": {"MaxRuntimeInSeconds": 1800}}},
            {"Name": "Train", "Type": "Training", "RetryPolicies": [
                {"StepExceptionTypes": ["SageMaker.JOB_INTERNAL_ERROR"], "MaxAttempts": 2}], "Arguments": {
                "ResourceConfig": {"InstanceGroups": [
                    {"InstanceGroupName": "a", "InstanceType": {"Get": "Parameters.TrainType"}, "InstanceCount": 1},
                    {"InstanceGroupName": "b", "InstanceType": "ml.m5.2xlarge", "InstanceCount": 2}]},
                "StoppingCondition": {"MaxRuntimeInSeconds": 3600}}},
            {"Name": "Check", "Type": "Condition", "Arguments": {
                "Conditions": [],
                "IfSteps": [{"Name": "Register", "Type": "RegisterModel", "Arguments": {}},
                            {"Name": "Score", "Type": "Transform", "Arguments": {
                                "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1}}}],
                "ElseSteps": [{"Name": "Stop", "Type": "Fail", "Arguments": {"ErrorMessage": "no"}}]}},
            {"Name": "Notify", "Type": "Lambda", "Arguments": {}},
        ],
    }


@pytest.fixture
def prices(tmp_path):
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(PRICES))
    return load_prices(path)


def by_step(part: dict) -> dict:
    return {line["step"]: line for line in part["steps"]}


def test_the_bound_is_count_times_price_times_max_runtime_times_attempts_with_parameters_resolved(prices):
    bound = cost_bound(definition(), {"Count": "3"}, region=REGION, prices=prices)
    steps = by_step(bound)
    assert steps["Prep"]["usd"] == pytest.approx(3 * 0.3 * 1800 / 3600)
    # 1 + 2 retries, both instance groups (the first's type from a parameter)
    assert steps["Train"]["usd"] == pytest.approx(3 * 0.6 * 3 * 3600 / 3600)
    assert (steps["Register"]["usd"], steps["Stop"]["usd"], steps["Check"]["usd"]) == (0.0, 0.0, 0.0)
    # a transform job has no run-time limit; a Lambda is billed by AWS Lambda: unknown, never 0
    assert steps["Score"]["usd"] is None and "no run-time limit" in steps["Score"]["note"]
    assert steps["Notify"]["usd"] is None
    assert bound["unknown"] == ["Score", "Notify"] and not bound["complete"]
    assert bound["usd"] == pytest.approx(0.45 + 5.4)
    assert figure(bound) == "$5.85 + unknown (Score, Notify)"


def test_an_instance_type_without_a_price_is_unknown_never_zero(prices):
    bound = cost_bound(definition(), {"TrainType": "ml.p4d.24xlarge"}, region=REGION, prices=prices)
    assert by_step(bound)["Train"]["usd"] is None
    assert by_step(bound)["Train"]["note"] == f"no training price for ml.p4d.24xlarge in {REGION}"
    assert cost_bound(definition(), region="us-east-2", prices=prices)["usd"] == 0.0  # nothing priced there
    assert figure(cost_bound(definition(), region="us-east-2", prices=prices)).startswith("unknown (Prep, Train")


def test_the_estimate_prices_what_ran_cache_hits_cost_nothing_and_billable_time_wins(prices):
    steps = [
        {"StepName": "Prep", "StepStatus": "Succeeded", "StartTime": "2026-11-01T00:00:00+00:00",
         "EndTime": "2026-11-01T00:10:00.2+00:00"},
        {"StepName": "Train", "StepStatus": "Succeeded", "StartTime": "2026-11-01T00:10:00+00:00",
         "EndTime": "2026-11-01T01:10:00+00:00"},
        {"StepName": "Check", "StepStatus": "Succeeded", "StartTime": "2026-11-01T01:10:00+00:00",
         "EndTime": "2026-11-01T01:10:01+00:00"},
        {"StepName": "Score", "StepStatus": "Succeeded", "StartTime": "2026-11-01T01:11:00+00:00",
         "EndTime": "2026-11-01T01:21:00+00:00",
         "CacheHitResult": {"SourcePipelineExecutionArn": "arn:aws:sagemaker:eu-west-1:1:pipeline/p/execution/old"}},
        {"StepName": "Stop", "StepStatus": "NotExecuted"},
    ]
    jobs = {"Train": {"ResourceConfig": {"InstanceType": "ml.m5.2xlarge", "InstanceCount": 2},
                      "BillableTimeInSeconds": 1200}}
    estimate = cost_estimate(definition(), steps, {"Count": 1}, region=REGION, prices=prices, jobs=jobs)
    lines = by_step(estimate)
    assert list(lines) == ["Prep", "Train", "Check", "Score"]  # a step of the branch not taken is not listed
    assert lines["Prep"]["seconds"] == 601 and lines["Prep"]["usd"] == pytest.approx(0.3 * 601 / 3600, abs=1e-6)
    assert lines["Train"]["usd"] == pytest.approx(0.6 * 2 * 1200 / 3600)  # the job's billed time, its instances
    assert lines["Score"]["usd"] == 0.0 and lines["Score"]["note"].startswith("cache hit of ")
    assert estimate["complete"] and summary_line({"currency": "USD", "region": REGION, "estimate": estimate,
                                                  "bound": None}).startswith("estimated $0.4501 (bound unknown)")


def test_steps_a_selective_execution_reused_cost_nothing_there(prices):
    reference = "arn:aws:sagemaker:us-east-1:000000000000:pipeline/p/execution/ref"
    steps = [{"StepName": "Train", "StepStatus": "Succeeded", "StartTime": "2026-11-01T00:10:00+00:00",
              "EndTime": "2026-11-01T01:10:00+00:00", "SelectiveExecutionResult": {"SourcePipelineExecutionArn": reference},
              "Metadata": {"TrainingJob": {"Arn": "arn:aws:sagemaker:us-east-1:000000000000:training-job/t"}}}]
    line = by_step(cost_estimate(definition(), steps, {"Count": 1}, region=REGION, prices=prices, jobs={}))["Train"]
    assert (line["usd"], line["note"]) == (0.0, f"outputs of {reference} (selective execution)")
    assert step_jobs(None, steps) == {}  # its job is the reference's: not described, not billed here


@pytest.mark.parametrize(("content", "problem"), [
    ("[]", "expected an object with 'regions'"),
    ('{"regions": {"x": {"hosting": {}}}}', "regions.x.hosting: unknown usage"),
    ('{"regions": {"x": {"training": {"ml.a": -1}}}}', "regions.x.training.ml.a: -1 is not a price"),
    ('{"regions": {"x": {"training": {"ml.a": "0.2"}}}}', "regions.x.training.ml.a: '0.2' is not a price"),
    ("{", "not valid JSON"),
])
def test_a_bad_price_table_is_one_line_naming_the_entry(tmp_path, content, problem):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(PriceTableError) as err:
        load_prices(path)
    assert str(err.value).startswith(f"price table {path}: ") and problem in str(err.value)


def test_the_repository_table_names_its_source_and_invents_no_price():
    table = json.loads((REPO / "sm_pipeline" / "sagemaker_prices.json").read_text())
    assert table["source"].startswith("https://aws.amazon.com/sagemaker/pricing/")
    priced = [p for usages in table["regions"].values() for prices in usages.values() for p in prices]
    # a price goes in only with the date it was read from the AWS page
    assert table["retrieved"] or not priced


def test_the_cli_prints_the_bound_and_a_local_executions_estimate(tmp_path):
    from sm_pipeline.arns import execution_arn
    from sm_pipeline.local.records import ExecutionRecorder, new_execution_describe

    (tmp_path / "def.json").write_text(json.dumps(definition()))
    (tmp_path / "prices.json").write_text(json.dumps(PRICES))
    describe = new_execution_describe("p", "exec1", region=REGION, display_name=None, status="Succeeded",
                                      parameters={"Count": 1}, max_parallel=2, created="2026-11-01T00:00:00+00:00")
    ExecutionRecorder(tmp_path / "root", describe, steps=[
        {"StepName": "Prep", "StepStatus": "Succeeded", "StartTime": "2026-11-01T00:00:00+00:00",
         "EndTime": "2026-11-01T00:01:00+00:00"}])
    done = subprocess.run([sys.executable, "-m", "sm_pipeline", "cost", str(tmp_path / "def.json"), "--prices",
                           str(tmp_path / "prices.json"), "--root", str(tmp_path / "root"), "--execution",
                           execution_arn("p", "exec1", REGION)],
                          cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "bound before it starts: $5.55 + unknown (Score, Notify)"  # Count=1 from the execution
    assert f"estimate of execution {execution_arn('p', 'exec1', REGION)} (Succeeded): $0.0050" in lines
    assert "  Prep (Succeeded): $0.0050 (1 x ml.m5.xlarge; 60 s)" in lines
    assert lines[-1].startswith("an estimate of the instance time SageMaker bills, not a bill")

    bad = subprocess.run([sys.executable, "-m", "sm_pipeline", "cost", str(tmp_path / "def.json"), "--execution",
                          "nope"], cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert (bad.returncode, bad.stderr.strip()) == (2, "error: cost: --execution: 'nope' is not a pipeline execution ARN.")
