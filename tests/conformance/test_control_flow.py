"""control_flow.json (SDK v3): sharded multi-instance processing, a Lambda whose outputs drive In/Not/Or
conditions, DependsOn without data references, a Fail step's message — both branches."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime

from sm_pipeline.local import run_pipeline

from .conftest import LAMBDA_ARN, cli_env, load


def classify(inputs: dict) -> dict:
    """Stands in for the Lambda function: what the pipeline's conditions read come from here."""
    rows, big_at = int(inputs["rows"]), int(inputs["big_at"])
    return {"label": "big" if rows >= big_at else "small", "score": rows / big_at}


def test_if_branch_sharding_lambda_outputs_and_depends_on(store):
    result = run_pipeline(load("control_flow"), root=store.root, pipeline_name="conf-control",
                          lambdas={LAMBDA_ARN: classify})
    assert result.status == "Succeeded", result.failure_reason
    assert result.summary()["steps"] == {
        "ShardCount": "Succeeded", "SumCounts": "Succeeded", "ClassifyRows": "Succeeded",
        "AuditAfterSum": "Succeeded", "GateOnLabel": "Succeeded", "PublishBig": "Succeeded",
        "TooSmall": "NotExecuted",
    }
    report = result.property_files["SumCounts"]["RowReport"]
    assert report["rows"] == 40
    # ShardedByS3Key over 4 objects on 2 instances: each host got its own 2 objects, none twice.
    by_host = report["files_by_host"]
    assert sorted(by_host) == ["algo-1", "algo-2"]
    assert [len(files) for files in by_host.values()] == [2, 2]
    assert sorted(by_host["algo-1"] + by_host["algo-2"]) == [f"part-{i}.csv" for i in range(4)]
    # The Lambda's outputs, as ListPipelineExecutionSteps shows them and as the conditions read them.
    assert result.step("ClassifyRows")["Metadata"]["Lambda"]["OutputParameters"] == [
        {"Name": "label", "Value": "big"}, {"Name": "score", "Value": 4.0}]
    assert result.step("GateOnLabel")["Metadata"] == {"Condition": {"Outcome": "True"}}
    # DependsOn alone orders AuditAfterSum after SumCounts (it references no data of it).
    audit, summed = result.step("AuditAfterSum"), result.step("SumCounts")
    assert datetime.fromisoformat(audit["StartTime"]) >= datetime.fromisoformat(summed["EndTime"])


def test_else_branch_fails_with_the_lambda_output_in_the_message(store):
    result = run_pipeline(load("control_flow"), {"BigAt": "1000"}, root=store.root, pipeline_name="conf-control",
                          lambdas={LAMBDA_ARN: classify})
    assert result.status == "Failed"
    assert result.step("GateOnLabel")["Metadata"] == {"Condition": {"Outcome": "False"}}
    assert result.summary()["steps"]["PublishBig"] == "NotExecuted"
    assert result.step("TooSmall")["StepStatus"] == "Failed"
    assert result.step("TooSmall")["FailureReason"] == "label small for 40 rows (big at 1000 )"
    assert result.failure_reason.endswith("label small for 40 rows (big at 1000 )")


def test_or_condition_holds_through_either_side(store):
    def run(lambda_outputs: dict, **params) -> str:
        result = run_pipeline(load("control_flow"), params, root=store.root, pipeline_name="conf-control",
                              lambdas={LAMBDA_ARN: lambda inputs: lambda_outputs})
        return result.step("GateOnLabel")["Metadata"]["Condition"]["Outcome"]

    # Or(rows >= MinRows, label == "huge"): rows (40) < MinRows (100), so only the label can hold it
    assert run({"label": "big", "score": 1.0}, MinRows="100") == "False"
    assert run({"label": "huge", "score": 1.0}, MinRows="100") == "True"
    assert run({"label": "big", "score": 1.0}, MinRows="40") == "True"
    # Not(score == 0) and In(label, [big, huge]) must hold as well
    assert run({"label": "huge", "score": 0.0}) == "False"
    assert run({"label": "tiny", "score": 1.0}) == "False"


def test_validate_and_run_local_refuse_an_unregistered_lambda_with_the_same_line(store, tmp_path):
    path = tmp_path / "control_flow.json"
    path.write_text(__import__("json").dumps(load("control_flow")))
    expected = (f"{path}: cannot run locally: step 'ClassifyRows': Lambda function '{LAMBDA_ARN}' is not runnable "
                "locally (register a Python callable with sm_pipeline.local.register_lambda)")
    validate = subprocess.run([sys.executable, "-m", "sm_pipeline", "validate", "--local", str(path)],
                              capture_output=True, text=True, env=cli_env(), check=False)
    run = subprocess.run([sys.executable, "-m", "sm_pipeline", "run-local", "--definition", str(path),
                          "--root", str(tmp_path / "fresh")], capture_output=True, text=True, env=cli_env(), check=False)
    assert (validate.returncode, validate.stderr.splitlines()) == (2, [expected])
    assert (run.returncode, run.stderr.splitlines()) == (2, [expected])
    assert not (tmp_path / "fresh").exists()
