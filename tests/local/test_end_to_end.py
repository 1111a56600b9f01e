"""End to end: the project's abalone definition (SDK v3) on both branches, and AWS's SDK 2.x example.

Each expensive run happens once per session; the tests only read its results.
"""

from __future__ import annotations

import json
import pickle
import tarfile
from pathlib import Path

import pytest

from sm_pipeline.local import LocalExecutionStore, LocalModelRegistry, run_pipeline
from sm_pipeline.local.staging import stage_code_objects
from sm_pipeline.storage import ObjectStore

REPO_ROOT = Path(__file__).resolve().parents[2]
# AWS's abalone example as SDK 2.x serialises it (tests/fixtures/sdk2/README.md regenerates it).
REFERENCE = REPO_ROOT / "tests" / "fixtures" / "sdk2" / "aws_abalone_definition.json"
STANDINS = Path(__file__).parent / "standins"
AWS_BUCKET = "s3://sagemaker-us-west-2-000000000000"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def abalone_runs(tmp_path_factory):
    """The abalone definition run twice on one root: default threshold, then MseThreshold=0.001."""
    import pandas as pd

    from sm_pipeline.abalone.config import load_config
    from sm_pipeline.abalone.definition import definition_dict

    definition = definition_dict(load_config())
    root = tmp_path_factory.mktemp("abalone-root")
    store = ObjectStore(root)
    data = pd.read_csv(REPO_ROOT / "data" / "abalone.csv")
    batch = root.parent / "batch.csv"
    data.drop(columns=["rings"]).head(60).to_csv(batch, index=False)
    params = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
    store.put_file(params["InputData"], REPO_ROOT / "data" / "abalone.csv")
    store.put_file(params["BatchData"], batch)
    stage_code_objects(definition, root, [REPO_ROOT / "processing_code"])
    passed = run_pipeline(definition, root=root, pipeline_name="abalone-e2e")
    failed = run_pipeline(definition, {"MseThreshold": "0.001"}, root=root, pipeline_name="abalone-e2e")
    return store, passed, failed


def test_default_threshold_registers_and_transforms(abalone_runs):
    store, result, _ = abalone_runs
    assert result.status == "Succeeded", result.failure_reason
    statuses = result.summary()["steps"]
    assert statuses["AbaloneMseFail"] == "NotExecuted"
    assert all(status == "Succeeded" for name, status in statuses.items() if name != "AbaloneMseFail")
    mse = result.property_files["EvaluateAbalone"]["EvaluationReport"]["regression_metrics"]["mse"]["value"]
    assert 0 < mse <= 6.0

    register = next(s for s in result.steps if s.get("Metadata", {}).get("RegisterModel"))
    arn = register["Metadata"]["RegisterModel"]["Arn"]
    package = LocalModelRegistry(store.root).describe_model_package(arn)
    assert arn.endswith("/1") and package["ModelApprovalStatus"] == "PendingManualApproval"
    assert package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"].endswith("/output/model.tar.gz")

    transform = next(s for s in result.steps if s.get("Metadata", {}).get("TransformJob"))
    assert transform["StepStatus"] == "Succeeded"
    outputs = [uri for uri in store.list("s3://airsage-artifacts/abalone/") if uri.endswith(".out")]
    assert len(outputs) == 1
    predictions = store.read_bytes(outputs[0]).decode().splitlines()
    assert len(predictions) == 60 and all(0 < float(p) < 40 for p in predictions)

    train = next(s for s in result.steps if s.get("Metadata", {}).get("TrainingJob"))
    job = train["Metadata"]["TrainingJob"]["Arn"].rsplit("/", 1)[1]
    artifacts = [uri for uri in store.list("s3://airsage-artifacts/") if uri.endswith(f"{job}/output/model.tar.gz")]
    assert len(artifacts) == 1
    with tarfile.open(store.path_for(artifacts[0])) as tar:
        assert tar.extractfile("xgboost-model").read(1) == b"{"  # native xgboost format for a 1.7 image


def test_low_threshold_fails_with_the_join_message_and_reuses_the_cache(abalone_runs):
    _, passed, result = abalone_runs
    assert result.status == "Failed"
    mse = passed.property_files["EvaluateAbalone"]["EvaluationReport"]["regression_metrics"]["mse"]["value"]
    assert "0.001" in result.failure_reason and str(mse) in result.failure_reason
    statuses = result.summary()["steps"]
    assert statuses["AbaloneMseFail"] == "Failed"
    assert [name for name, status in statuses.items() if status == "NotExecuted"]
    cached = [s["StepName"] for s in result.steps if "CacheHitResult" in s]
    assert len(cached) == 3  # preprocess, train, evaluate
    found = LocalExecutionStore(passed.root).find("abalone-e2e")
    assert [d["PipelineExecutionStatus"] for d in found] == ["Failed", "Succeeded"]


@pytest.fixture(scope="session")
def reference_run(tmp_path_factory):
    """AWS's SDK 2.x abalone definition with stand-in scripts that hard-code /opt/ml paths."""
    import numpy as np

    from sm_pipeline.abalone.synthetic import write_abalone_like
    from sm_pipeline.local.staging import code_input_uris

    root = tmp_path_factory.mktemp("reference-root")
    store = ObjectStore(root)
    definition = json.loads(REFERENCE.read_text())
    defaults = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
    raw = root.parent / "raw.csv"
    write_abalone_like(300, 7, raw, header=False)  # AWS's abalone-dataset.csv has no header row
    store.put_file(defaults["InputData"], raw)
    features = np.random.default_rng(0).random((25, 10)).round(3)
    store.put_bytes(defaults["BatchData"], "".join(",".join(map(str, row)) + "\n" for row in features).encode())
    standins = {"preprocessing.py": STANDINS / "aws_preprocessing.py", "evaluation.py": STANDINS / "aws_evaluation.py"}
    code = code_input_uris(definition)
    assert sorted(uri.rsplit("/", 1)[1] for uri in code) == sorted(standins)
    for uri in code:
        store.put_file(uri, standins[uri.rsplit("/", 1)[1]])
    return store, run_pipeline(definition, {"MseThreshold": 100.0}, root=root, pipeline_name="aws-reference")


def test_aws_reference_definition_runs_with_hard_coded_path_scripts(reference_run):
    store, result = reference_run
    assert result.status == "Succeeded", result.failure_reason
    assert result.summary()["steps"]["AbaloneMSEFail"] == "NotExecuted"
    assert result.property_files["AbaloneEval"]["EvaluationReport"]["regression_metrics"]["mse"]["value"] > 0
    # The SDK 2.x step names with their suffixes resolve; the 1.0-1 image's model is a pickle.
    model_step = result.step("AbaloneCreateModel-CreateModel")
    assert model_step["Metadata"]["Model"]["Arn"].startswith("arn:aws:sagemaker:us-east-1:000000000000:model/")
    artifact = [u for u in store.list(f"{AWS_BUCKET}/AbaloneTrain/") if u.endswith("model.tar.gz")]
    assert len(artifact) == 1
    with tarfile.open(store.path_for(artifact[0])) as tar:
        booster = pickle.loads(tar.extractfile("xgboost-model").read())  # noqa: S301 - our own test artifact
    assert booster.num_boosted_rounds() == 50
    out = store.read_bytes(f"{AWS_BUCKET}/AbaloneTransform/abalone-dataset-batch.out").decode().splitlines()
    assert len(out) == 25
    registered = result.step("AbaloneRegisterModel-RegisterModel")["Metadata"]["RegisterModel"]["Arn"]
    assert registered == "arn:aws:sagemaker:us-east-1:000000000000:model-package/abalonemodelpackagegroupname/1"
    # SDK 2.x puts processing outputs at a Std:Join over the pipeline name and the execution id.
    outputs = f"{AWS_BUCKET}/AbalonePipeline/{result.execution_id}/AbaloneProcess/output"
    for name in ("train", "validation", "test"):
        assert store.list(f"{outputs}/{name}/") == [f"{outputs}/{name}/{name}.csv"]
