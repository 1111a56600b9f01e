"""Definitions SDK 2.x writes (tests/fixtures/sdk2): its control-flow forms run locally like SDK v3's; the Not an
early SDK 2.x wrote ('Expression', which CreatePipeline refuses) is refused by validate and run-local alike."""

from __future__ import annotations

import json
import subprocess
import sys

from sm_pipeline.local import LocalExecutionStore, run_pipeline

from .conftest import LAMBDA_ARN, REPO, cli_env

SDK2 = REPO / "tests" / "fixtures" / "sdk2"


def classify(inputs: dict) -> dict:
    rows, big_at = int(inputs["rows"]), int(inputs["big_at"])
    return {"label": "big" if rows >= big_at else "small", "score": rows / big_at}


def test_the_sdk2_control_flow_forms_run_locally(store):
    definition = json.loads((SDK2 / "sdk2_control_flow.json").read_text())
    gate = next(step for step in definition["Steps"] if step["Type"] == "Condition")
    assert [c["Type"] for c in gate["Arguments"]["Conditions"]] == ["In", "Not", "Or"]
    assert set(gate["Arguments"]["Conditions"][1]) == {"Type", "Condition"}  # SDK 2.257 writes Condition
    result = run_pipeline(definition, root=store.root, pipeline_name="conf-sdk2", lambdas={LAMBDA_ARN: classify})
    assert result.status == "Succeeded", result.failure_reason
    assert result.summary()["steps"] == {"ShardCount": "Succeeded", "SumCounts": "Succeeded",
                                         "ClassifyRows": "Succeeded", "GateOnLabel": "Succeeded",
                                         "PublishBig": "Succeeded", "TooSmall": "NotExecuted"}
    properties = LocalExecutionStore(store.root).step_properties("conf-sdk2", result.execution_id)
    tag = properties["PublishBig"]["Properties"]["AppSpecification"]["ContainerArguments"][2].split("|")
    assert tag[0] == "conf-sdk2" and tag[2] == result.execution_id
    assert tag[-3:] == ["experiment-conf-sdk2", f"trial-{result.execution_id}", "big"]
    small = run_pipeline(definition, {"BigAt": "1000"}, root=store.root, pipeline_name="conf-sdk2",
                         lambdas={LAMBDA_ARN: classify})
    assert (small.status, small.failure_reason) == ("Failed", "label small for 40 rows")


def test_the_early_sdk2_not_is_refused_alike_by_validate_and_run_local(tmp_path):
    path = SDK2 / "sdk2_68_not_expression.json"
    line = (f"{path}: step 'UnlessSkipped': Arguments.Conditions[0]: unknown property 'Expression' in a Not "
            "condition (SageMaker cannot parse it: a Not takes its condition as 'Condition'; regenerate the "
            "definition with a current SDK)")
    validate = subprocess.run([sys.executable, "-m", "sm_pipeline", "validate", str(path)], capture_output=True,
                              text=True, env=cli_env(), check=False)
    run = subprocess.run([sys.executable, "-m", "sm_pipeline", "run-local", "--definition", str(path), "--root",
                          str(tmp_path / "root")], capture_output=True, text=True, env=cli_env(), check=False)
    assert (validate.returncode, validate.stderr.splitlines()) == (2, [line])
    assert (run.returncode, run.stderr.splitlines()) == (2, [line])
    assert not (tmp_path / "root").exists()
