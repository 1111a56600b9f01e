"""abalone.json (the project's own definition, SDK v3): Processing, Training (built-in XGBoost), the
PropertyFile, Condition, ModelStep's RegisterModel and Model, Transform — and the Fail branch's message."""

from __future__ import annotations

import csv

import pytest

from sm_pipeline.local import LocalModelRegistry, run_pipeline
from sm_pipeline.local.staging import stage_code_objects

from .conftest import REPO, load

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def abalone_root(tmp_path_factory):
    """An object root with the sample data (and its first 60 rows unlabelled as BatchData) and the scripts."""
    from sm_pipeline.storage import ObjectStore

    definition = load("abalone")
    root = tmp_path_factory.mktemp("abalone")
    store = ObjectStore(root)
    defaults = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
    store.put_file(defaults["InputData"], REPO / "data" / "abalone.csv")
    with open(REPO / "data" / "abalone.csv", newline="") as fh:
        rows = list(csv.reader(fh))[:61]
    rings = rows[0].index("rings")
    batch = root.parent / "batch.csv"
    with open(batch, "w", newline="") as fh:
        csv.writer(fh).writerows([r[:rings] + r[rings + 1:] for r in rows])
    store.put_file(defaults["BatchData"], batch)
    stage_code_objects(definition, root, [REPO / "processing_code"])
    return root


def test_if_branch_registers_creates_the_model_and_transforms(abalone_root):
    from plugins.airsage.execution_result import model_package_arn

    result = run_pipeline(load("abalone"), root=abalone_root, pipeline_name="conf-abalone")
    assert result.status == "Succeeded", result.failure_reason
    assert result.summary()["steps"] == {
        "PreprocessAbalone": "Succeeded", "TrainAbalone": "Succeeded", "EvaluateAbalone": "Succeeded",
        "CheckMseAbalone": "Succeeded", "RegisterAbaloneModel": "Succeeded", "CreateAbaloneModel": "Succeeded",
        "TransformAbalone": "Succeeded", "AbaloneMseFail": "NotExecuted",
    }
    metrics = result.property_files["EvaluateAbalone"]["EvaluationReport"]["regression_metrics"]
    assert 0 < metrics["mse"]["value"] <= 6.0 and set(metrics) == {"mse", "mae", "rmse", "r2"}
    assert result.step("CheckMseAbalone")["Metadata"] == {"Condition": {"Outcome": "True"}}
    # What the operators read (execution_result.model_package_arn) finds the package the registry holds.
    arn = model_package_arn(result.steps)
    package = LocalModelRegistry(abalone_root).describe_model_package(arn)
    assert package["ModelPackageGroupName"] == "airsage-abalone"
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    assert ":model/" in result.step("CreateAbaloneModel")["Metadata"]["Model"]["Arn"]
    assert "TransformJob" in result.step("TransformAbalone")["Metadata"]


def test_else_branch_fails_with_the_mse_and_the_threshold(abalone_root):
    result = run_pipeline(load("abalone"), {"MseThreshold": "0.001"}, root=abalone_root, pipeline_name="conf-abalone")
    assert result.status == "Failed"
    mse = result.property_files["EvaluateAbalone"]["EvaluationReport"]["regression_metrics"]["mse"]["value"]
    assert result.step("AbaloneMseFail")["FailureReason"] == f"Evaluation MSE {mse} is above the MseThreshold 0.001"
    assert {name: status for name, status in result.summary()["steps"].items() if status == "NotExecuted"} == {
        "RegisterAbaloneModel": "NotExecuted", "CreateAbaloneModel": "NotExecuted", "TransformAbalone": "NotExecuted"}
