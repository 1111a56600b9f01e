"""The abalone definition: contract shape, offline build, telemetry kept off, determinism.

The pipeline is built once per session per config (the SDK import alone takes seconds).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sm_pipeline.abalone.code_staging import code_objects
from sm_pipeline.abalone.config import load_config
from sm_pipeline.abalone.definition import (
    PARAMETER_NAMES,
    XGBOOST_HYPERPARAMETERS,
    definition_dict,
    definition_json,
    pipeline_tags,
)

EXECUTION_ID = {"Get": "Execution.PipelineExecutionId"}
VPC = {
    "subnets": ["subnet-0123456789abcdef0"],
    "security_group_ids": ["sg-0123456789abcdef0"],
    "enable_network_isolation": True,
    "kms_key_id": "alias/airsage-ml",
}
RESOURCE_STEP_TYPES = {"Processing", "Training", "RegisterModel", "Model", "Transform"}
JOB_STEP_TYPES = {"Processing", "Training", "Transform"}


@pytest.fixture(scope="session")
def code_dir(tmp_path_factory) -> Path:
    """Fixed script bytes, so these tests do not depend on processing_code/'s current content."""
    path = tmp_path_factory.mktemp("code")
    (path / "preprocess.py").write_text("print('preprocess')\n")
    (path / "evaluate.py").write_text("print('evaluate')\n")
    return path


@pytest.fixture(scope="session")
def built(code_dir):
    """Build the default and the VPC/KMS definitions with sockets disabled and every exit watched.

    Records: socket creations/connects/DNS lookups (audit hook: sees attempts even where the SDK
    swallows the error), botocore requests, calls reaching the SDK's real telemetry sender, and
    calls caught by our drop-in. Then one control build with telemetry on, to prove the spy sees
    SDK events when they are not suppressed.
    """
    import importlib

    import botocore.endpoint
    import pytest_socket

    from sm_pipeline import telemetry

    sdk_telemetry = importlib.import_module(telemetry.SDK_TELEMETRY_MODULE)
    record = {"network": [], "botocore": [], "sdk_sender": [], "dropped": [], "watching": False}

    def audit(event, args):
        if record["watching"] and event in ("socket.__new__", "socket.connect", "socket.getaddrinfo"):
            record["network"].append((event, repr(args)[:200]))

    sys.addaudithook(audit)

    def no_request(self, operation_model, request_dict):
        record["botocore"].append(operation_model.name)
        raise AssertionError(f"botocore request during build: {operation_model.name}")

    configs = {
        "default": load_config(env={}, overrides={"code_dir": str(code_dir)}),
        "vpc": load_config(env={}, overrides={"code_dir": str(code_dir), **VPC}),
    }
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sdk_telemetry, telemetry.SDK_SENDER, lambda *a, **k: record["sdk_sender"].append(a))
        mp.setattr(telemetry, "_drop_event", lambda *a, **k: record["dropped"].append(a))
        mp.setattr(botocore.endpoint.Endpoint, "make_request", no_request)
        record["watching"] = True
        pytest_socket.disable_socket(allow_unix_socket=False)
        try:
            defs = {name: definition_dict(cfg) for name, cfg in configs.items()}
        finally:
            pytest_socket.enable_socket()
            record["watching"] = False
        sdk_sender_calls_when_off = len(record["sdk_sender"])
        control = load_config(env={}, overrides={"code_dir": str(code_dir), "telemetry": True})
        definition_dict(control)
    return {
        "defs": defs,
        "configs": configs,
        "record": record,
        "sdk_sender_calls_when_off": sdk_sender_calls_when_off,
        "sdk_sender_calls_when_on": len(record["sdk_sender"]) - sdk_sender_calls_when_off,
    }


@pytest.fixture(scope="session")
def definition(built) -> dict:
    return built["defs"]["default"]


def steps_by_name(definition: dict) -> dict[str, dict]:
    """Every step, including those nested in condition branches, by name."""
    out = {}

    def walk(steps):
        for step in steps:
            out[step["Name"]] = step
            if step["Type"] == "Condition":
                walk(step["Arguments"]["IfSteps"])
                walk(step["Arguments"]["ElseSteps"])

    walk(definition["Steps"])
    return out


def find_keys(obj, key: str) -> list:
    """Every value stored under ``key`` anywhere in ``obj``."""
    found = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == key:
                found.append(v)
            found.extend(find_keys(v, key))
    elif isinstance(obj, list):
        for item in obj:
            found.extend(find_keys(item, key))
    return found


def is_execution_join(value, step: str) -> bool:
    join = value.get("Std:Join") if isinstance(value, dict) else None
    return bool(join) and EXECUTION_ID in join["Values"] and step in join["Values"]


# --- shape -------------------------------------------------------------------------------------


def test_top_level_steps(definition):
    assert [(s["Name"], s["Type"]) for s in definition["Steps"]] == [
        ("PreprocessAbalone", "Processing"),
        ("TrainAbalone", "Training"),
        ("EvaluateAbalone", "Processing"),
        ("CheckMseAbalone", "Condition"),
    ]


def test_condition_branches(definition):
    condition = definition["Steps"][3]["Arguments"]
    assert [(s["Name"], s["Type"]) for s in condition["IfSteps"]] == [
        ("RegisterAbaloneModel", "RegisterModel"),
        ("CreateAbaloneModel", "Model"),
        ("TransformAbalone", "Transform"),
    ]
    assert [(s["Name"], s["Type"]) for s in condition["ElseSteps"]] == [("AbaloneMseFail", "Fail")]


def test_seven_parameters_with_types_and_defaults(definition):
    params = {p["Name"]: (p["Type"], p.get("DefaultValue")) for p in definition["Parameters"]}
    assert tuple(params) == PARAMETER_NAMES
    assert params == {
        "ProcessingInstanceCount": ("Integer", 1),
        "ProcessingInstanceType": ("String", "ml.m5.xlarge"),
        "TrainingInstanceType": ("String", "ml.m5.xlarge"),
        "ModelApprovalStatus": ("String", "PendingManualApproval"),
        "InputData": ("String", "s3://airsage-artifacts/abalone/input/abalone.csv"),
        "BatchData": ("String", "s3://airsage-artifacts/abalone/batch/batch.csv"),
        "MseThreshold": ("Float", 6.0),
    }


def test_preprocess_inputs_outputs_and_arguments(definition, built, code_dir):
    args = steps_by_name(definition)["PreprocessAbalone"]["Arguments"]
    inputs = {i["InputName"]: i["S3Input"] for i in args["ProcessingInputs"]}
    assert inputs["input"]["S3Uri"] == {"Get": "Parameters.InputData"}
    assert inputs["input"]["LocalPath"] == "/opt/ml/processing/input"
    assert inputs["batch-input"]["S3Uri"] == {"Get": "Parameters.BatchData"}
    assert inputs["batch-input"]["LocalPath"] == "/opt/ml/processing/batch-input"
    staged = {o.script: o.s3_uri for o in code_objects(built["configs"]["default"])}
    assert inputs["code"]["S3Uri"] == staged["preprocess.py"]
    assert args["AppSpecification"]["ContainerEntrypoint"] == ["python3", "/opt/ml/processing/input/code/preprocess.py"]
    assert "sagemaker-scikit-learn:1.2-1" in args["AppSpecification"]["ImageUri"]
    argv = args["AppSpecification"]["ContainerArguments"]
    assert argv[argv.index("--seed") + 1] == "42"
    assert argv[argv.index("--batch-dir") + 1] == "/opt/ml/processing/batch"
    outputs = {o["OutputName"]: o["S3Output"] for o in args["ProcessingOutputConfig"]["Outputs"]}
    assert list(outputs) == ["train", "validation", "test", "batch"]
    for name, out in outputs.items():
        assert out["LocalPath"] == f"/opt/ml/processing/{name}"
    assert args["ProcessingResources"]["ClusterConfig"]["InstanceCount"] == {"Get": "Parameters.ProcessingInstanceCount"}
    assert args["ProcessingResources"]["ClusterConfig"]["InstanceType"] == {"Get": "Parameters.ProcessingInstanceType"}


def test_training_uses_builtin_xgboost_on_preprocess_outputs(definition):
    args = steps_by_name(definition)["TrainAbalone"]["Arguments"]
    assert "sagemaker-xgboost:1.7-1" in args["AlgorithmSpecification"]["TrainingImage"]
    assert args["HyperParameters"] == {k: str(v) for k, v in XGBOOST_HYPERPARAMETERS.items()}
    assert args["HyperParameters"]["objective"] == "reg:squarederror"
    channels = {c["ChannelName"]: c for c in args["InputDataConfig"]}
    assert set(channels) == {"train", "validation"}
    for name, channel in channels.items():
        assert channel["ContentType"] == "text/csv"
        assert channel["DataSource"]["S3DataSource"]["S3Uri"] == {
            "Get": f"Steps.PreprocessAbalone.ProcessingOutputConfig.Outputs['{name}'].S3Output.S3Uri"
        }
    assert args["ResourceConfig"]["InstanceType"] == {"Get": "Parameters.TrainingInstanceType"}


def test_evaluate_step_inputs_and_property_file(definition, built):
    step = steps_by_name(definition)["EvaluateAbalone"]
    assert step["PropertyFiles"] == [
        {"PropertyFileName": "EvaluationReport", "OutputName": "evaluation", "FilePath": "evaluation.json"}
    ]
    inputs = {i["InputName"]: i["S3Input"] for i in step["Arguments"]["ProcessingInputs"]}
    assert inputs["model"]["S3Uri"] == {"Get": "Steps.TrainAbalone.ModelArtifacts.S3ModelArtifacts"}
    assert inputs["model"]["LocalPath"] == "/opt/ml/processing/model"
    assert inputs["test"]["S3Uri"] == {
        "Get": "Steps.PreprocessAbalone.ProcessingOutputConfig.Outputs['test'].S3Output.S3Uri"
    }
    staged = {o.script: o.s3_uri for o in code_objects(built["configs"]["default"])}
    assert inputs["code"]["S3Uri"] == staged["evaluate.py"]
    assert "sagemaker-xgboost:1.7-1" in step["Arguments"]["AppSpecification"]["ImageUri"]
    [output] = step["Arguments"]["ProcessingOutputConfig"]["Outputs"]
    assert output["OutputName"] == "evaluation" and output["S3Output"]["LocalPath"] == "/opt/ml/processing/evaluation"


def test_condition_is_jsonget_mse_le_threshold(definition):
    [condition] = steps_by_name(definition)["CheckMseAbalone"]["Arguments"]["Conditions"]
    assert condition == {
        "Type": "LessThanOrEqualTo",
        "LeftValue": {
            "Std:JsonGet": {
                "PropertyFile": {"Get": "Steps.EvaluateAbalone.PropertyFiles.EvaluationReport"},
                "Path": "regression_metrics.mse.value",
            }
        },
        "RightValue": {"Get": "Parameters.MseThreshold"},
    }


def test_fail_message_joins_mse_and_threshold(definition):
    message = steps_by_name(definition)["AbaloneMseFail"]["Arguments"]["ErrorMessage"]
    values = message["Std:Join"]["Values"]
    assert {"Get": "Parameters.MseThreshold"} in values
    assert any("Std:JsonGet" in v and v["Std:JsonGet"]["Path"] == "regression_metrics.mse.value"
               for v in values if isinstance(v, dict))
    assert any(isinstance(v, str) and "MSE" in v for v in values)


def test_register_model_package(definition):
    args = steps_by_name(definition)["RegisterAbaloneModel"]["Arguments"]
    assert args["ModelPackageGroupName"] == "airsage-abalone"
    assert args["ModelApprovalStatus"] == {"Get": "Parameters.ModelApprovalStatus"}
    spec = args["InferenceSpecification"]
    assert spec["SupportedContentTypes"] == ["text/csv"] and spec["SupportedResponseMIMETypes"] == ["text/csv"]
    assert spec["Containers"][0]["ModelDataUrl"] == {"Get": "Steps.TrainAbalone.ModelArtifacts.S3ModelArtifacts"}
    stats = args["ModelMetrics"]["ModelQuality"]["Statistics"]
    assert stats["ContentType"] == "application/json"
    assert is_execution_join(stats["S3Uri"], "EvaluateAbalone")
    assert stats["S3Uri"]["Std:Join"]["Values"][-2:] == ["evaluation", "evaluation.json"]


def test_create_model_and_transform(definition):
    steps = steps_by_name(definition)
    model = steps["CreateAbaloneModel"]["Arguments"]
    assert model["PrimaryContainer"]["ModelDataUrl"] == {"Get": "Steps.TrainAbalone.ModelArtifacts.S3ModelArtifacts"}
    transform = steps["TransformAbalone"]["Arguments"]
    assert transform["ModelName"] == {"Get": "Steps.CreateAbaloneModel.ModelName"}
    assert transform["TransformInput"]["ContentType"] == "text/csv"
    assert transform["TransformInput"]["SplitType"] == "Line"
    assert transform["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == {
        "Get": "Steps.PreprocessAbalone.ProcessingOutputConfig.Outputs['batch'].S3Output.S3Uri"
    }
    assert transform["TransformOutput"]["AssembleWith"] == "Line"


def test_every_output_uri_is_per_execution(definition):
    steps = steps_by_name(definition)
    outputs = []
    for name in ("PreprocessAbalone", "EvaluateAbalone"):
        for out in steps[name]["Arguments"]["ProcessingOutputConfig"]["Outputs"]:
            outputs.append((name, out["S3Output"]["S3Uri"]))
    outputs.append(("TrainAbalone", steps["TrainAbalone"]["Arguments"]["OutputDataConfig"]["S3OutputPath"]))
    outputs.append(("TransformAbalone", steps["TransformAbalone"]["Arguments"]["TransformOutput"]["S3OutputPath"]))
    assert len(outputs) == 7
    for step, uri in outputs:
        assert is_execution_join(uri, step), (step, uri)
        assert uri["Std:Join"]["Values"][0] == "s3://airsage-artifacts/abalone/executions"
    # No plain-string S3 location anywhere except the content-addressed code and the parameter defaults.
    plain = [u for u in find_keys(definition["Steps"], "S3Uri") + find_keys(definition["Steps"], "S3OutputPath")
             if isinstance(u, str)]
    assert all("/abalone/code/" in u for u in plain), plain


def test_cost_tag_on_every_resource_step_and_the_pipeline(definition, built):
    for step in steps_by_name(definition).values():
        if step["Type"] in RESOURCE_STEP_TYPES:
            assert {"Key": "cost-center", "Value": "ml-abalone"} in step["Arguments"]["Tags"], step["Name"]
    assert pipeline_tags(built["configs"]["default"]) == [{"Key": "cost-center", "Value": "ml-abalone"}]


def test_cache_and_retry_on_job_steps(definition):
    for step in steps_by_name(definition).values():
        if step["Type"] in JOB_STEP_TYPES:
            assert step["CacheConfig"] == {"Enabled": True, "ExpireAfter": "P30D"}, step["Name"]
            kinds = [tuple(p["ExceptionType"]) for p in step["RetryPolicies"]]
            assert ("Step.SERVICE_FAULT", "Step.THROTTLING") in kinds
            assert any("SageMaker.CAPACITY_ERROR" in k for k in kinds)
            assert all(p["MaxAttempts"] == 3 and p["IntervalSeconds"] == 10 for p in step["RetryPolicies"])
        elif step["Type"] in {"RegisterModel", "Model"}:
            # SageMakerJobStepRetryPolicy is not allowed on model steps.
            assert [tuple(p["ExceptionType"]) for p in step["RetryPolicies"]] == [("Step.SERVICE_FAULT", "Step.THROTTLING")]


def test_experiment_config(definition):
    assert definition["PipelineExperimentConfig"] == {
        "ExperimentName": {"Get": "Execution.PipelineName"},
        "TrialName": {"Get": "Execution.PipelineExecutionId"},
    }


def test_network_and_kms_absent_unless_configured(definition):
    for key in ("VpcConfig", "NetworkConfig", "EnableNetworkIsolation", "KmsKeyId", "VolumeKmsKeyId"):
        assert find_keys(definition, key) == [], key


def test_network_and_kms_when_configured(built):
    steps = steps_by_name(built["defs"]["vpc"])
    vpc = {"Subnets": VPC["subnets"], "SecurityGroupIds": VPC["security_group_ids"]}
    for name in ("PreprocessAbalone", "EvaluateAbalone"):
        args = steps[name]["Arguments"]
        assert args["NetworkConfig"]["VpcConfig"] == vpc
        assert args["NetworkConfig"]["EnableNetworkIsolation"] is True
        assert args["ProcessingOutputConfig"]["KmsKeyId"] == "alias/airsage-ml"
        assert args["ProcessingResources"]["ClusterConfig"]["VolumeKmsKeyId"] == "alias/airsage-ml"
    train = steps["TrainAbalone"]["Arguments"]
    assert train["VpcConfig"] == vpc and train["EnableNetworkIsolation"] is True
    assert train["OutputDataConfig"]["KmsKeyId"] == "alias/airsage-ml"
    assert train["ResourceConfig"]["VolumeKmsKeyId"] == "alias/airsage-ml"
    model = steps["CreateAbaloneModel"]["Arguments"]
    assert model["VpcConfig"] == vpc and model["EnableNetworkIsolation"] is True
    transform = steps["TransformAbalone"]["Arguments"]
    assert transform["TransformOutput"]["KmsKeyId"] == "alias/airsage-ml"
    assert transform["TransformResources"]["VolumeKmsKeyId"] == "alias/airsage-ml"


# --- offline, telemetry, determinism -------------------------------------------------------------


def test_build_makes_no_network_attempt(built):
    assert built["record"]["network"] == []
    assert built["record"]["botocore"] == []


def test_telemetry_off_never_reaches_the_sdk_sender(built):
    assert built["sdk_sender_calls_when_off"] == 0
    # ...yet the SDK did emit events (run/train/register/build), and our drop-in took them.
    assert len(built["record"]["dropped"]) >= 4


def test_telemetry_on_control_reaches_the_sdk_sender(built):
    # Proves the spy would have seen leaked events: with telemetry on, the SDK sends.
    assert built["sdk_sender_calls_when_on"] >= 4


def test_definition_json_is_canonical(built, monkeypatch):
    # Serialisation only: reuse the session's build instead of building again.
    import sm_pipeline.abalone.definition as definition_module

    monkeypatch.setattr(definition_module, "definition_dict", lambda config: built["defs"]["default"])
    text = definition_json(built["configs"]["default"])
    assert text.endswith("}\n")
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    assert json.loads(text) == built["defs"]["default"]


def test_byte_identical_across_processes_via_cli(built, code_dir, tmp_path, repo_root):
    """A second interpreter (other hash seed, a hostile SDK config on the machine) writing
    through the CLI matches this process's build, and prints nothing but its own line."""
    import os

    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps({"code_dir": str(code_dir)}))
    out_file = tmp_path / "definition.json"
    # A schema-violating SageMaker SDK config where the SDK looks for the user's and the
    # admin's files: the SDK's own loader raises on it, so reading it would fail the build.
    hostile = tmp_path / "xdg" / "sagemaker" / "config.yaml"
    hostile.parent.mkdir(parents=True)
    hostile.write_text("SchemaVersion: '1.0'\nSageMaker:\n  Bogus: 1\n")
    env = {**os.environ, "PYTHONHASHSEED": "12345", "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
           "XDG_CONFIG_DIRS": str(tmp_path / "xdg"), "SAGEMAKER_USER_CONFIG_OVERRIDE": str(hostile),
           "SAGEMAKER_CORE_USER_CONFIG_OVERRIDE": str(hostile)}
    proc = subprocess.run(
        [sys.executable, "-m", "sm_pipeline", "definition", "--config", str(config_file), "--output", str(out_file)],
        cwd=repo_root, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout == ""
    assert proc.stderr == f"wrote {out_file}\n"
    in_process = json.dumps(built["defs"]["default"], sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    assert out_file.read_bytes() == in_process.encode("utf-8")


def test_cli_bad_config_exits_2_with_one_line(tmp_path, repo_root):
    config_file = tmp_path / "config.json"
    config_file.write_text('{"bukcet": "x"}')
    proc = subprocess.run([sys.executable, "-m", "sm_pipeline", "definition", "--config", str(config_file)],
                          cwd=repo_root, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.strip().splitlines()[-1].startswith("error: unknown config field 'bukcet'")


def test_importing_the_builder_does_not_import_the_sdk(repo_root):
    code = ("import sys, sm_pipeline.abalone.definition, sm_pipeline.abalone.config, sm_pipeline.abalone.code_staging, sm_pipeline.telemetry; "
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('sagemaker', 'boto3', 'airflow')); "
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=repo_root, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_model_steps_match_the_conformance_copy(definition, repo_root):
    """tests/conformance/definitions/abalone.json holds the model steps the pinned SDK builds today."""
    committed = json.loads((repo_root / "tests" / "conformance" / "definitions" / "abalone.json").read_text())
    ours, theirs = steps_by_name(definition), steps_by_name(committed)
    for name in ("RegisterAbaloneModel", "CreateAbaloneModel", "TransformAbalone", "CheckMseAbalone"):
        if name == "CheckMseAbalone":
            assert ours[name]["Arguments"]["Conditions"] == theirs[name]["Arguments"]["Conditions"]
        else:
            assert ours[name] == theirs[name], name


# --- the child-process build (what upsert_pipeline's abalone source uses) ---------------------------

def test_the_child_build_gives_the_same_bytes_as_building_here(built):
    from sm_pipeline.abalone.build_child import build_in_child
    from sm_pipeline.abalone.definition import definition_json

    config = built["configs"]["vpc"]
    assert build_in_child(config) == definition_json(config)


def test_the_child_build_refuses_a_bad_config_with_one_line(tmp_path, capsys):
    from sm_pipeline.abalone import build_child

    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps({"bucket": "Not_A_Bucket"}))
    assert build_child.main([str(config_file), str(tmp_path / "out.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: config field 'bucket'") and "\n" not in err
    assert not (tmp_path / "out.json").exists()
