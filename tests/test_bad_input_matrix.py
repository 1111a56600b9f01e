"""The bad-input matrix: every kind of bad input gets one clear error naming what and where,
and leaves no half-written output behind.

One module across the boundaries a user can feed: data files (the container scripts),
pipeline parameters (the local runner), definition JSON (the validator and the CLI),
evaluation.json (the PropertyFile reader), S3 URIs and object keys (the object store),
config (file, env, overrides) and the DAG's params (the UI form).
"""

from __future__ import annotations

import copy
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from sm_pipeline.errors import ConfigError, InvalidInput, StorageError

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO / "tests" / "fixtures" / "sdk2" / "aws_abalone_definition.json"  # SDK 2.x, see its README
HEADER = "sex,length,diameter,height,whole_weight,shucked_weight,viscera_weight,shell_weight,rings"
GOOD_ROW = "M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15,15"


def files_under(path: Path) -> list[Path]:
    """Every file below ``path`` (none when it does not exist)."""
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.exists() else []


# --------------------------------------------------------------------------- data files
DATA_CASES = [
    pytest.param([HEADER, "M,0.455,abc,0.095,0.514,0.2245,0.101,0.15,15"],
                 "row 2 column 'diameter': not a number: 'abc'", id="non-numeric-value"),
    pytest.param([HEADER, "Q,0.455,0.365,0.095,0.514,0.2245,0.101,0.15,15"],
                 "row 2 column 'sex': unknown sex code 'Q'; expected one of F, I, M", id="unknown-sex-code"),
    pytest.param([HEADER, "M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15,"],
                 "row 2 column 'rings': missing label", id="missing-label"),
    pytest.param(["sex,length,diameter,height,whole_weight,shucked_weight,viscera_weight,rings",
                  "M,0.455,0.365,0.095,0.514,0.2245,0.101,15"],
                 "missing column(s) 'shell_weight' in header", id="missing-column"),
    pytest.param([HEADER, GOOD_ROW, GOOD_ROW], "too few rows to split 70/15/15: found 2, need at least 7",
                 id="too-few-rows"),
    pytest.param([], "empty file", id="empty-file"),
]


@pytest.mark.parametrize(("lines", "expected"), DATA_CASES)
def test_bad_input_data_file(tmp_path, lines, expected):
    src = tmp_path / "in" / "abalone.csv"
    src.parent.mkdir()
    src.write_text("".join(f"{line}\n" for line in lines))
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, str(REPO / "processing_code" / "preprocess.py"), "--input-dir", str(src.parent),
         "--batch-input-dir", str(tmp_path / "no-batch"), "--train-dir", str(out / "train"),
         "--validation-dir", str(out / "validation"), "--test-dir", str(out / "test"),
         "--batch-dir", str(out / "batch"), "--resource-config", str(tmp_path / "none.json")],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 2
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"preprocess: {src}") or last.startswith(f"preprocess: {src.parent}"), last
    assert expected in last
    assert "Traceback" not in proc.stderr
    assert files_under(out) == []


def test_bad_input_corrupt_model_archive(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.tar.gz").write_bytes(b"not a tarball")
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "test.csv").write_text("10,0.1,0.2\n")
    out = tmp_path / "evaluation"
    proc = subprocess.run(
        [sys.executable, str(REPO / "processing_code" / "evaluate.py"), "--model-dir", str(tmp_path / "model"),
         "--test-dir", str(tmp_path / "test"), "--output-dir", str(out)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"evaluate: {tmp_path / 'model' / 'model.tar.gz'}: not a readable tar.gz archive (corrupt or truncated)"
    )
    assert files_under(out) == []


# --------------------------------------------------------------------------- pipeline parameters
PARAMETER_CASES = [
    pytest.param({"MseThreshold": "abc"}, "parameter MseThreshold (Float): expected a number, got 'abc'",
                 id="float-not-a-number"),
    pytest.param({"ProcessingInstanceCount": "1.5"},
                 "parameter ProcessingInstanceCount (Integer): expected an integer, got '1.5'", id="integer-fraction"),
    pytest.param({"Bogus": "1"}, "unknown parameter(s) Bogus (declared: BatchData, InputData,", id="unknown-name"),
    pytest.param({"InputData": "s3://bucket/../elsewhere.csv"},
                 "parameter InputData: 's3://bucket/../elsewhere.csv': object key '../elsewhere.csv' has a '.' or '..'",
                 id="s3-uri-escaping-its-bucket"),
]


@pytest.mark.parametrize(("params", "expected"), PARAMETER_CASES)
def test_bad_input_pipeline_parameter(tmp_path, params, expected):
    from sm_pipeline.local import run_pipeline

    definition = json.loads(REFERENCE.read_text())
    with pytest.raises(InvalidInput) as err:
        run_pipeline(definition, params, root=tmp_path / "root")
    assert expected in str(err.value)
    assert "\n" not in str(err.value)
    assert files_under(tmp_path / "root") == []  # rejected before any record or step


def test_bad_input_missing_required_parameter(tmp_path):
    from sm_pipeline.local import run_pipeline

    definition = json.loads(REFERENCE.read_text())
    del next(p for p in definition["Parameters"] if p["Name"] == "InputData")["DefaultValue"]
    with pytest.raises(InvalidInput, match=r"parameter InputData \(String\) is required: it has no default value"):
        run_pipeline(definition, {}, root=tmp_path / "root")
    assert files_under(tmp_path / "root") == []


# --------------------------------------------------------------------------- definition JSON
def _duplicate(d):
    d["Steps"].append(copy.deepcopy(d["Steps"][0]))


def _dangling_step(d):
    d["Steps"][1]["Arguments"]["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] = {
        "Get": "Steps.Nope.ProcessingOutputConfig.Outputs['train'].S3Output.S3Uri"}


def _dangling_parameter(d):
    d["Steps"][0]["Arguments"]["ProcessingResources"]["ClusterConfig"]["InstanceCount"] = {"Get": "Parameters.Nope"}


def _dangling_property_file(d):
    cond = d["Steps"][3]["Arguments"]["Conditions"][0]
    cond["LeftValue"]["Std:JsonGet"]["PropertyFile"] = {"Get": "Steps.AbaloneEval.PropertyFiles.Nope"}


def _cycle(d):
    d["Steps"][0]["DependsOn"] = ["AbaloneEval"]


def _unknown_type(d):
    d["Steps"][0]["Type"] = "Quantum"


DEFINITION_CASES = [
    pytest.param(_duplicate, "duplicate step name 'AbaloneProcess'", id="duplicate-step-name"),
    pytest.param(_dangling_step, "step 'AbaloneTrain': Get references unknown step 'Nope'", id="dangling-step-ref"),
    pytest.param(_dangling_parameter, "step 'AbaloneProcess': Get references unknown parameter 'Nope'",
                 id="dangling-parameter-ref"),
    pytest.param(_dangling_property_file, "step 'AbaloneMSECond': step 'AbaloneEval' has no property file 'Nope'",
                 id="dangling-property-file"),
    pytest.param(_cycle, "dependency cycle: AbaloneProcess -> AbaloneEval -> AbaloneProcess", id="cycle"),
    pytest.param(_unknown_type, "step 'AbaloneProcess': unknown step type 'Quantum'", id="unknown-step-type"),
]


@pytest.mark.parametrize(("mutate", "expected"), DEFINITION_CASES)
def test_bad_input_definition_json(tmp_path, mutate, expected):
    from sm_pipeline.local import run_pipeline
    from sm_pipeline.validate import validate_definition

    definition = json.loads(REFERENCE.read_text())
    mutate(definition)
    assert expected in validate_definition(definition)
    # the runner refuses the same definition, with the same line, before it writes anything
    with pytest.raises(InvalidInput) as err:
        run_pipeline(definition, {}, root=tmp_path / "root")
    assert str(err.value).startswith("invalid pipeline definition: ")
    assert expected in str(err.value)
    assert files_under(tmp_path / "root") == []


def test_bad_input_definition_file_not_json_via_cli(tmp_path):
    bad = tmp_path / "definition.json"
    bad.write_text('{"Steps": [}')
    proc = subprocess.run([sys.executable, "-m", "sm_pipeline", "validate", str(bad)], cwd=REPO,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {bad}: invalid JSON at line 1 column 12: Expecting value"


# --------------------------------------------------------------------------- evaluation.json
EVALUATION_CASES = [
    pytest.param(b'{"regression_metrics": {"mse": {"value": 1.0}', "is not valid JSON: Expecting ',' delimiter",
                 id="truncated-json"),
    pytest.param(b'{"regression_metrics": {"rmse": {"value": 1.0}}}',
                 "JSON path 'regression_metrics.mse.value' not found: no key 'mse' at regression_metrics",
                 id="missing-json-path"),
    pytest.param(b'{"regression_metrics": {"mse": {"value": NaN}}}',
                 "regression_metrics.mse.value is nan, not a finite number", id="nan-mse"),
    pytest.param(b'{"regression_metrics": {"mse": {"value": "low"}}}',
                 "regression_metrics.mse.value is 'low' (str), not a number", id="non-numeric-mse"),
    pytest.param(b"\xff\xfe", "is not UTF-8 text", id="not-utf8"),
]


@pytest.mark.parametrize(("data", "expected"), EVALUATION_CASES)
def test_bad_input_evaluation_json(data, expected):
    from airsage.property_files import PropertyFileError, json_path_value, numeric_value, parse_report

    uri = "s3://bucket/abalone/executions/e1/EvaluateAbalone/evaluation/evaluation.json"
    path = "regression_metrics.mse.value"
    with pytest.raises(PropertyFileError) as err:
        numeric_value(json_path_value(parse_report(data, uri), path, uri), path, uri)
    assert uri in str(err.value)
    assert expected in str(err.value)


# --------------------------------------------------------------------------- S3 URIs and object keys
URI_CASES = [
    pytest.param("s3://bucket/../etc/passwd", "object key '../etc/passwd' has a '.' or '..' segment", id="dotdot-key"),
    pytest.param("s3://bucket//etc/passwd", "object key '/etc/passwd' is absolute", id="absolute-key"),
    pytest.param("s3://Bad_Bucket/key", "invalid bucket name 'Bad_Bucket'", id="bad-bucket-name"),
    pytest.param("s3://bucket/a\x00b", "URI contains a NUL character", id="nul-in-key"),
    pytest.param("https://bucket/key", "not an s3:// URI", id="not-s3"),
]


@pytest.mark.parametrize(("uri", "expected"), URI_CASES)
def test_bad_input_s3_uri(tmp_path, uri, expected):
    from sm_pipeline.storage import ObjectStore

    store = ObjectStore(tmp_path / "root")
    with pytest.raises(StorageError) as err:
        store.put_bytes(uri, b"payload")
    assert str(err.value).startswith(repr(uri))
    assert expected in str(err.value)
    assert files_under(tmp_path) == []


# --------------------------------------------------------------------------- config
CONFIG_CASES = [
    pytest.param({"bucket": "Bad_Bucket"}, "config field 'bucket': S3 bucket names are 3-63 characters",
                 id="bucket-name"),
    pytest.param({"role_arn": "admin"}, "config field 'role_arn': expected an IAM role ARN", id="role-arn"),
    pytest.param({"bukcet": "x"}, "unknown config field 'bukcet' in overrides; did you mean 'bucket'?",
                 id="unknown-field"),
    pytest.param({"processing_instance_type": "m5.large"},
                 "config field 'processing_instance_type': SageMaker instance types look like ml.m5.xlarge",
                 id="instance-type"),
    pytest.param({"kms_key_id": "zzz"}, "config field 'kms_key_id': expected a KMS key id", id="kms-key"),
]


@pytest.mark.parametrize(("overrides", "expected"), CONFIG_CASES)
def test_bad_input_config(overrides, expected):
    from sm_pipeline.abalone.config import load_config

    with pytest.raises(ConfigError) as err:
        load_config(overrides=overrides, env={})
    assert expected in str(err.value)


def test_bad_input_config_env_variable():
    from sm_pipeline.abalone.config import load_config

    with pytest.raises(ConfigError, match="config field 'mse_threshold'"):
        load_config(env={"AIRSAGE_MSE_THRESHOLD": "low"})


def test_bad_input_config_file_leaves_no_definition_output(tmp_path):
    cfg = tmp_path / "config.json"
    cfg.write_text('{"bucket": "airsage-artifacts",}')
    out = tmp_path / "out" / "definition.json"
    proc = subprocess.run(
        [sys.executable, "-m", "sm_pipeline", "definition", "--config", str(cfg), "--output", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"error: config file '{cfg}': invalid JSON at line 1 column 32: "
        "Expecting property name enclosed in double quotes"
    )
    assert files_under(tmp_path / "out") == []


# --------------------------------------------------------------------------- DAG params
@pytest.fixture(scope="module")
def local_dag():
    from airflow.dag_processing.dagbag import BundleDagBag

    bag = BundleDagBag(dag_folder=str(REPO / "dags"), bundle_path=REPO / "dags")
    assert not bag.import_errors
    return bag.dags["abalone_pipeline_local"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(-1, "Invalid input for param mse_threshold: -1 is less than the minimum of 0",
                     id="negative-threshold"),
        pytest.param("low", "Invalid input for param mse_threshold: 'low' is not of type 'number'",
                     id="threshold-not-a-number"),
    ],
)
def test_bad_input_dag_param(local_dag, value, expected):
    from airflow.sdk.exceptions import ParamValidationError

    params = copy.deepcopy(local_dag.params)
    with pytest.raises(ParamValidationError) as err:
        params["mse_threshold"] = value
        params.validate()
    assert str(err.value).splitlines()[0] == expected


# =========================================================================== issue 11: the hardened entry points
# Definitions here are built inline (no file outside the repository, no SDK): a processing step fed by parameters, a
# condition with a RegisterModel and a Fail branch.
SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
XGBOOST_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
CONDITION_TYPES = "Equals, GreaterThan, GreaterThanOrEqualTo, LessThan, LessThanOrEqualTo, In, Not, Or"


def small_definition() -> dict:
    """A runnable definition: Prep (processing_code/preprocess.py) -> Check -> Register | TooHigh."""
    outputs = [{"OutputName": name, "S3Output": {"S3Uri": f"s3://matrix-bucket/out/{name}",
                                                 "LocalPath": f"/opt/ml/processing/{name}", "S3UploadMode": "EndOfJob"}}
               for name in ("train", "validation", "test", "batch")]
    return {
        "Version": "2020-12-01", "Metadata": {},
        "Parameters": [{"Name": "InputData", "Type": "String", "DefaultValue": "s3://matrix-bucket/in/abalone.csv"},
                       {"Name": "InstanceCount", "Type": "Integer", "DefaultValue": 1},
                       {"Name": "Threshold", "Type": "Float", "DefaultValue": 6.0},
                       {"Name": "Approval", "Type": "String", "DefaultValue": "PendingManualApproval"}],
        "Steps": [
            {"Name": "Prep", "Type": "Processing", "Arguments": {
                "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.large", "VolumeSizeInGB": 30,
                                                          "InstanceCount": {"Get": "Parameters.InstanceCount"}}},
                "AppSpecification": {"ImageUri": SKLEARN_IMAGE,
                                     "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/preprocess.py"]},
                "RoleArn": "arn:aws:iam::000000000000:role/Matrix",
                "ProcessingInputs": [
                    {"InputName": "input", "S3Input": {"S3Uri": {"Get": "Parameters.InputData"},
                                                       "LocalPath": "/opt/ml/processing/input", "S3DataType": "S3Prefix"}},
                    {"InputName": "code", "S3Input": {"S3Uri": "s3://matrix-bucket/code/preprocess.py",
                                                      "LocalPath": "/opt/ml/processing/input/code", "S3DataType": "S3Prefix"}}],
                "ProcessingOutputConfig": {"Outputs": outputs}}},
            {"Name": "Check", "Type": "Condition", "DependsOn": ["Prep"], "Arguments": {
                "Conditions": [{"Type": "LessThanOrEqualTo", "LeftValue": 1.0, "RightValue": {"Get": "Parameters.Threshold"}}],
                "IfSteps": [{"Name": "Register", "Type": "RegisterModel", "Arguments": {
                    "ModelPackageGroupName": "matrix", "ModelApprovalStatus": {"Get": "Parameters.Approval"},
                    "InferenceSpecification": {"Containers": [{"Image": XGBOOST_IMAGE,
                                                               "ModelDataUrl": "s3://matrix-bucket/model.tar.gz"}]}}}],
                "ElseSteps": [{"Name": "TooHigh", "Type": "Fail", "Arguments": {"ErrorMessage": "too high"}}]}},
        ],
    }


def sm_cli(*args: str, env: dict | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """``python -m sm_pipeline ARGS`` as a user runs it."""
    return subprocess.run([sys.executable, "-m", "sm_pipeline", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, check=False, env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})})


def _prep(d):
    return d["Steps"][0]


def _check(d):
    return d["Steps"][1]


def _args(d):
    return _prep(d)["Arguments"]


def _set(path_fn, key, value):
    def change(d):
        path_fn(d)[key] = value
    return change


def _branch(key):
    return lambda d: _check(d)["Arguments"][key]


# (change, the exact problem lines both commands print after "<file>: ")
DEFINITION_CLI_CASES = [
    pytest.param(_set(_prep, "Arguments", ["x"]), ["step 'Prep': Arguments must be an object, not ['x']"],
                 id="arguments-not-an-object"),
    pytest.param(lambda d: _check(d)["Arguments"]["IfSteps"][0].update(Arguments="x"),
                 ["step 'Register': Arguments must be an object, not 'x'"], id="branch-step-arguments-not-an-object"),
    pytest.param(lambda d: d["Steps"].append(42), ["Steps[2] must be a step object, not 42"], id="step-not-an-object"),
    pytest.param(lambda d: _branch("ElseSteps")(d).append(None),
                 ["step 'Check': Arguments.ElseSteps[1] must be a step object, not None"], id="branch-step-not-an-object"),
    pytest.param(_set(_prep, "DependsOn", ["Prep"]), ["step 'Prep': DependsOn itself"], id="depends-on-itself"),
    pytest.param(lambda d: _check(d)["Arguments"].update(IfSteps={"a": 1}),
                 ["step 'Check': Arguments.IfSteps must be a list of steps, not {'a': 1}"], id="branch-not-a-list"),
    pytest.param(lambda d: _args(d)["ProcessingResources"]["ClusterConfig"].update(InstanceCount=0),
                 ["step 'Prep': Arguments.ProcessingResources.ClusterConfig.InstanceCount must be at least 1, not 0"],
                 id="literal-instance-count-0"),
    pytest.param(lambda d: _args(d)["ProcessingInputs"][1]["S3Input"].update(S3Uri="s3://matrix-bucket/code/pre\nprocess.py"),
                 ["step 'Prep': Arguments.ProcessingInputs[1].S3Input.S3Uri must not contain a control character (\\n), "
                  "as 's3://matrix-bucket/code/pre\\nprocess.py' does"], id="literal-s3-uri-with-newline"),
    pytest.param(lambda d: d["Parameters"][0].update(DefaultValue="s3://matrix-bucket/in/a\x00.csv"),
                 ["parameter 'InputData': DefaultValue 's3://matrix-bucket/in/a\\x00.csv' contains a control character (\\x00)"],
                 id="nul-in-parameter-default"),
    pytest.param(lambda d: _prep(d).update(Name="Pre p"),
                 ["step 'Pre p': a step name is 1-64 letters, digits, '-' or '_'", "step 'Check': DependsOn unknown step 'Prep'"],
                 id="step-name-with-space"),
    pytest.param(lambda d: _check(d)["Arguments"]["Conditions"][0].update(Type="Between"),
                 [f"step 'Check': Arguments.Conditions[0]: unknown condition type 'Between' (known: {CONDITION_TYPES})"],
                 id="unknown-condition-type"),
    pytest.param(lambda d: _check(d)["Arguments"]["Conditions"].append("LeftValue <= 6"),
                 ["step 'Check': Arguments.Conditions[1] must be a condition object, not 'LeftValue <= 6'"],
                 id="condition-not-an-object"),
    pytest.param(lambda d: _args(d)["AppSpecification"].update(ContainerEntrypoint="python3 x.py"),
                 ["step 'Prep': Arguments.AppSpecification.ContainerEntrypoint must be a list, not 'python3 x.py'"],
                 id="entrypoint-not-a-list"),
    pytest.param(lambda d: _args(d).update(Environment={"N": 5}),
                 ["step 'Prep': Arguments.Environment['N'] must be a string, not 5"], id="environment-value-not-a-string"),
    pytest.param(lambda d: _prep(d).update(PropertyFiles=[{"PropertyFileName": "R", "OutputName": "train"}]),
                 ["step 'Prep': PropertyFiles[0].FilePath is required"], id="property-file-without-path"),
    pytest.param(lambda d: _prep(d).update(RetryPolicies={"MaxAttempts": 2}),
                 ["step 'Prep': RetryPolicies must be a list, not {'MaxAttempts': 2}"], id="retry-policies-not-a-list"),
    pytest.param(lambda d: _prep(d).update(CacheConfig={"Enabled": "yes"}),
                 ["step 'Prep': CacheConfig.Enabled must be true or false, not 'yes'"], id="cache-enabled-not-a-boolean"),
    pytest.param(lambda d: d["Parameters"][1].update(DefaultValue=0),
                 ["parameter InstanceCount: DefaultValue 0 feeds step 'Prep' "
                  "Arguments.ProcessingResources.ClusterConfig.InstanceCount, which must be at least 1, not 0"],
                 id="parameter-default-instance-count-0"),
    pytest.param(lambda d: d["Parameters"][3].update(DefaultValue="Maybe"),
                 ["parameter Approval: DefaultValue 'Maybe' feeds step 'Register' Arguments.ModelApprovalStatus, "
                  "which must be one of Approved, Rejected, PendingManualApproval, not 'Maybe'"],
                 id="parameter-default-approval-status"),
    pytest.param(lambda d: d["Parameters"].append({"Name": "bad name", "Type": "String"}),
                 ["parameter 'bad name': a parameter name is 1-256 letters, digits, '-' or '_'"], id="parameter-name"),
]


@pytest.mark.parametrize(("change", "lines"), DEFINITION_CLI_CASES)
def test_bad_input_definition_validate_and_run_local_print_the_same_lines(tmp_path, change, lines):
    from sm_pipeline.errors import DefinitionInvalid
    from sm_pipeline.local import run_pipeline
    from sm_pipeline.validate import validate_definition

    definition = small_definition()
    change(definition)
    path = tmp_path / "def.json"
    path.write_text(json.dumps(definition))
    expected = [f"{path}: {line}" for line in lines]
    validated = sm_cli("validate", str(path))
    assert (validated.returncode, validated.stderr.splitlines()) == (2, expected)
    root = tmp_path / "root"
    ran = sm_cli("run-local", "--definition", str(path), "--root", str(root))
    assert (ran.returncode, ran.stderr.splitlines(), ran.stdout) == (2, expected, "")
    assert not root.exists()  # refused before anything was written
    # the API: the same problems, the same code
    assert validate_definition(definition) == lines
    with pytest.raises(DefinitionInvalid) as err:
        run_pipeline(definition, root=root)
    assert err.value.problems == lines and err.value.lines() == [f"definition: {line}" for line in lines]
    assert not root.exists()


def _huge(path: Path) -> str:
    d = small_definition()
    d["Steps"][0]["Description"] = "x" * 1_100_000
    path.write_text(json.dumps(d))
    return f"definition is {len(path.read_text()):,} characters; SageMaker's limit for a PipelineDefinition is 1,048,576"


def _deep(path: Path) -> str:
    path.write_text('{"Steps": ' + "[" * 100_000 + "]" * 100_000 + "}")
    return "JSON nested more than 100 levels deep at line 1 column 110"


def _nan(path: Path) -> str:
    path.write_text(json.dumps(small_definition()).replace('"DefaultValue": 6.0', '"DefaultValue": NaN'))
    return "NaN is not valid JSON (numbers must be finite)"


def _latin1(path: Path) -> str:
    text = json.dumps(small_definition()).replace('"too high"', '"trop \u00e9lev\u00e9"')
    path.write_bytes(text.encode("latin-1"))
    return f"cannot read definition: not UTF-8 text (byte {text.index(chr(0xe9))})"


def _huge_int(path: Path) -> str:
    path.write_text(json.dumps(small_definition()).replace('"DefaultValue": 1', '"DefaultValue": ' + "9" * 5000))
    return "an integer of 5000 digits is too large"


@pytest.mark.parametrize("write", [
    pytest.param(_huge, id="over-sagemaker-size-limit"),
    pytest.param(_deep, id="nested-100k-deep"),
    pytest.param(_nan, id="nan-literal"),
    pytest.param(_latin1, id="not-utf8-file"),
    pytest.param(_huge_int, id="integer-over-digit-limit"),
])
def test_bad_input_definition_file_limits_same_line_in_both_commands(tmp_path, write):
    path = tmp_path / "def.json"
    expected = [f"error: {path}: {write(path)}"]
    validated = sm_cli("validate", str(path))
    assert (validated.returncode, validated.stderr.splitlines()) == (2, expected)
    root = tmp_path / "root"
    ran = sm_cli("run-local", "--definition", str(path), "--root", str(root))
    assert (ran.returncode, ran.stderr.splitlines(), ran.stdout) == (2, expected, "")
    assert not root.exists()


def test_bad_input_valid_for_sagemaker_but_not_locally(tmp_path):
    definition = small_definition()
    _branch("ElseSteps")(definition).append({"Name": "Cb", "Type": "Callback", "Arguments": {}})
    path = tmp_path / "def.json"
    path.write_text(json.dumps(definition))
    line = f"{path}: cannot run locally: step 'Cb': step type 'Callback' is not runnable locally"
    notes = sm_cli("validate", str(path))
    assert (notes.returncode, notes.stderr.splitlines()) == (0, [line, f"{path}: ok for SageMaker (run-local would refuse it: see above)"])
    strict = sm_cli("validate", "--local", str(path))
    assert (strict.returncode, strict.stderr.splitlines()) == (2, [line])
    root = tmp_path / "root"
    ran = sm_cli("run-local", "--definition", str(path), "--root", str(root))
    assert (ran.returncode, ran.stderr.splitlines()) == (2, [line])
    assert not root.exists()


# --------------------------------------------------------------------------- run-local: parameters and the root
RUN_LOCAL_PARAMETER_CASES = [
    pytest.param(["--param", "Threshold=nan"], "parameter Threshold (Float): nan is not a finite number", id="float-nan"),
    pytest.param(["--param", "Threshold=inf"], "parameter Threshold (Float): inf is not a finite number", id="float-inf"),
    pytest.param(["--param", "Threshold=-Infinity"], "parameter Threshold (Float): -inf is not a finite number",
                 id="float-minus-infinity"),
    pytest.param(["--param", "InstanceCount=0"],
                 "parameter InstanceCount: 0 feeds step 'Prep' Arguments.ProcessingResources.ClusterConfig.InstanceCount, "
                 "which must be at least 1, not 0", id="instance-count-0"),
    pytest.param(["--param", "InstanceCount=101"],
                 "parameter InstanceCount: 101 feeds step 'Prep' Arguments.ProcessingResources.ClusterConfig.InstanceCount, "
                 "which must be at most 100, not 101", id="instance-count-101"),
    pytest.param(["--param", "InputData=s3://matrix-bucket/in/a\nb.csv"],
                 "parameter InputData (String): 's3://matrix-bucket/in/a\\nb.csv' contains a control character (\\n)",
                 id="s3-uri-with-newline"),
    pytest.param(["--param", "InputData=s3://matrix-bucket/in/\x1b[31mred.csv"],
                 "parameter InputData (String): 's3://matrix-bucket/in/\\x1b[31mred.csv' contains a control character (\\x1b)",
                 id="s3-uri-with-escape-sequence"),
    pytest.param(["--param", "InputData=/tmp/local.csv"],
                 "parameter InputData: '/tmp/local.csv' feeds step 'Prep' Arguments.ProcessingInputs[0].S3Input.S3Uri, "
                 "which must be an s3:// URI, not '/tmp/local.csv'", id="s3-uri-not-s3"),
    pytest.param(["--param", "Approval=Maybe"],
                 "parameter Approval: 'Maybe' feeds step 'Register' Arguments.ModelApprovalStatus, "
                 "which must be one of Approved, Rejected, PendingManualApproval, not 'Maybe'", id="approval-status"),
    pytest.param(["--param", "InputData=s3://matrix-bucket/" + "k" * 1100],
                 "parameter InputData (String): 's3://matrix-bucket/" + "k" * 18 + "..." + "k" * 38 + "'"
                 " is 1119 characters; SageMaker allows at most 1024", id="parameter-too-long"),
    pytest.param(["--param", "Threshold"], "--param 'Threshold': expected NAME=VALUE", id="param-without-equals"),
    pytest.param(["--param", "Nope=1"], "unknown parameter(s) Nope (declared: Approval, InputData, InstanceCount, Threshold)",
                 id="unknown-parameter"),
    pytest.param(["--max-parallel", "0"], "--max-parallel must be at least 1, not 0", id="max-parallel-0"),
]


@pytest.mark.parametrize(("args", "message"), RUN_LOCAL_PARAMETER_CASES)
def test_bad_input_run_local_parameter(tmp_path, args, message):
    path = tmp_path / "def.json"
    path.write_text(json.dumps(small_definition()))
    root = tmp_path / "root"
    ran = sm_cli("run-local", "--definition", str(path), "--root", str(root), *args)
    assert (ran.returncode, ran.stderr.splitlines(), ran.stdout) == (2, [f"error: {message}"], "")
    assert not root.exists()


def test_bad_input_run_local_retry_scale_environment(tmp_path):
    path = tmp_path / "def.json"
    path.write_text(json.dumps(small_definition()))
    ran = sm_cli("run-local", "--definition", str(path), "--root", str(tmp_path / "root"),
                 env={"AIRSAGE_RETRY_INTERVAL_SCALE": "fast"})
    assert (ran.returncode, ran.stderr.splitlines()) == (
        2, ["error: environment variable AIRSAGE_RETRY_INTERVAL_SCALE='fast': expected a number >= 0"])
    assert not (tmp_path / "root").exists()


@pytest.mark.parametrize(("make_root", "condition"), [
    pytest.param(lambda tmp: (tmp / "file").write_text("x") and tmp / "file", "not a directory (it is a file)",
                 id="root-is-a-file"),
    pytest.param(lambda tmp: (tmp / "file").write_text("x") and tmp / "file" / "root", None, id="root-below-a-file"),
])
def test_bad_input_run_local_root(tmp_path, make_root, condition):
    path = tmp_path / "def.json"
    path.write_text(json.dumps(small_definition()))
    root = make_root(tmp_path)
    ran = sm_cli("run-local", "--definition", str(path), "--root", str(root))
    condition = condition or f"Not a directory ({root})"
    assert (ran.returncode, ran.stderr.splitlines(), ran.stdout) == (2, [f"error: object root {root}: {condition}"], "")
    assert (tmp_path / "file").read_text() == "x"


def test_bad_input_failed_processing_step_names_the_s3_object_and_ends_with_the_scripts_line(tmp_path):
    from sm_pipeline.storage import ObjectStore

    root = tmp_path / "root"
    store = ObjectStore(root)
    store.put_bytes("s3://matrix-bucket/in/abalone.csv",
                    (f"{HEADER}\n{GOOD_ROW}\nM,0.455,0.365,0.095,0.514,0.2245,0.101\n").encode())
    path = tmp_path / "def.json"
    path.write_text(json.dumps(small_definition()))
    ran = sm_cli("run-local", "--definition", str(path), "--root", str(root),
                 "--code-dir", str(REPO / "processing_code"))
    assert ran.returncode == 1, ran.stderr
    script_line = (f"preprocess: s3://matrix-bucket/in/abalone.csv row 3: has 7 columns, expected 9 ({HEADER.replace(',', ', ')})")
    reason = json.loads(ran.stdout)["failure_reason"]
    assert reason == f"Step failure: Prep: AlgorithmError: processing script exited with code 2: {script_line}"
    assert ran.stderr.splitlines()[-1].endswith(f"[Prep] failed in {ran.stderr.split('[Prep] failed in ')[1].split('s:')[0]}s: "
                                                f"AlgorithmError: processing script exited with code 2: {script_line}")
    assert store.list("s3://matrix-bucket/out/") == []


# --------------------------------------------------------------------------- definition / make-data subcommands
CONFIG_CLI_CASES = [
    pytest.param({"AIRSAGE_REGION": "xx-nowhere-1"},
                 "config field 'region': not an AWS region botocore knows (offline list of its partitions) (got 'xx-nowhere-1')",
                 id="region-unknown"),
    pytest.param({"AIRSAGE_REGION": "us-est-1"},
                 "config field 'region': not an AWS region botocore knows (offline list of its partitions); "
                 "did you mean 'us-west-1'? (got 'us-est-1')", id="region-typo"),
    pytest.param({"AIRSAGE_REGION": "ap-east-2"},
                 "config field 'region': the SageMaker SDK has no sklearn 1.2-1 image in this region (got 'ap-east-2')",
                 id="region-without-sdk-images"),
    pytest.param({"AIRSAGE_XGBOOST_VERSION": "9.9-9"},
                 "config field 'xgboost_version': the SageMaker SDK has no xgboost image of this version (known: 0.90-1, "
                 "0.90-2, 1, 1.0-1, 1.2-1, 1.2-2, 1.3-1, 1.5-1, 1.7-1, 3.0-5, 3.2-0) (got '9.9-9')", id="xgboost-version"),
    pytest.param({"AIRSAGE_TRANSFORM_INSTANCE_COUNT": "0"}, "config field 'transform_instance_count': must be 1-100 (got 0)",
                 id="transform-instance-count"),
    pytest.param({"AIRSAGE_MSE_THRESHOLD": "nan"}, "config field 'mse_threshold': must be a positive finite number (got nan)",
                 id="mse-threshold-nan"),
]


@pytest.mark.parametrize(("env", "message"), CONFIG_CLI_CASES)
def test_bad_input_definition_command_config(tmp_path, env, message):
    out = tmp_path / "out" / "def.json"
    proc = sm_cli("definition", "--output", str(out), env=env)
    assert (proc.returncode, proc.stderr.splitlines()) == (2, [f"error: {message}"])
    assert files_under(tmp_path / "out") == []


@pytest.mark.parametrize(("text", "problem"), [
    pytest.param('{"tags": ' + "[" * 50_000 + "]" * 50_000 + "}", "JSON nested more than 100 levels deep at line 1 column 109",
                 id="config-file-nested-deep"),
    pytest.param('{"mse_threshold": NaN}', "NaN is not valid JSON (numbers must be finite)", id="config-file-nan"),
    pytest.param('{"transform_instance_count": ' + "1" * 5000 + "}", "an integer of 5000 digits is too large",
                 id="config-file-huge-integer"),
])
def test_bad_input_definition_command_config_file(tmp_path, text, problem):
    cfg = tmp_path / "config.json"
    cfg.write_text(text)
    out = tmp_path / "out" / "def.json"
    proc = sm_cli("definition", "--config", str(cfg), "--output", str(out))
    assert (proc.returncode, proc.stderr.splitlines()) == (2, [f"error: config file '{cfg}': {problem}"])
    assert files_under(tmp_path / "out") == []


def test_bad_input_make_data_rows(tmp_path):
    proc = sm_cli("make-data", "--rows", "0", "--output", str(tmp_path / "out" / "big.csv"))
    assert (proc.returncode, proc.stderr.splitlines()) == (2, ["error: make-data: --rows must be a whole number of at least 1, got 0"])
    assert files_under(tmp_path) == []


@pytest.mark.parametrize(("args", "line"), [
    pytest.param(["--seed", "-1", "--output", "OUT/big.csv"],
                 "error: make-data: --seed must be a whole number of at least 0, got -1", id="make-data-negative-seed"),
    pytest.param(["--output", "OUT/new/"],
                 "error: make-data: output OUT/new/ ends with a path separator, expected a file path such as "
                 "OUT/new/abalone.csv", id="make-data-output-is-a-directory-path"),
])
def test_bad_input_make_data_seed_and_output(tmp_path, args, line):
    out = str(tmp_path / "out")
    proc = sm_cli("make-data", "--rows", "10", *[a.replace("OUT", out) for a in args])
    assert (proc.returncode, proc.stderr.splitlines()) == (2, [line.replace("OUT", out)])
    assert files_under(tmp_path) == []


# --------------------------------------------------------------------------- container scripts: encodings, columns
def run_preprocess(tmp_path: Path, data: bytes, batch: bytes | None = None) -> tuple[subprocess.CompletedProcess, Path]:
    src = tmp_path / "in" / "abalone.csv"
    src.parent.mkdir()
    src.write_bytes(data)
    batch_dir = tmp_path / "batch-in"
    if batch is not None:
        batch_dir.mkdir()
        (batch_dir / "batch.csv").write_bytes(batch)
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, str(REPO / "processing_code" / "preprocess.py"), "--input-dir", str(src.parent),
         "--batch-input-dir", str(batch_dir), "--train-dir", str(out / "train"),
         "--validation-dir", str(out / "validation"), "--test-dir", str(out / "test"),
         "--batch-dir", str(out / "batch"), "--resource-config", str(tmp_path / "none.json")],
        capture_output=True, text=True, timeout=120, check=False)
    return proc, src


def _rows(n: int = 10, row: str = GOOD_ROW) -> str:
    return HEADER + "\n" + "".join(row + "\n" for _ in range(n))


EXPECTED_COLUMNS = HEADER.replace(",", ", ")
PREPROCESS_CASES = [
    pytest.param(_rows().encode("utf-16"), "{src}: file is UTF-16 encoded; save it as UTF-8", id="utf16-with-bom"),
    pytest.param(_rows().encode("utf-16-le"), "{src}: file is UTF-16 encoded; save it as UTF-8", id="utf16-without-bom"),
    pytest.param(_rows().encode("utf-32"), "{src}: file is UTF-32 encoded; save it as UTF-8", id="utf32"),
    pytest.param((_rows(3) + "\u00c9," + GOOD_ROW[2:] + "\n").encode("latin-1"),
                 "{src} row 5: not UTF-8 text (byte 0xc9); it looks Windows-1252/Latin-1 encoded; save the file as UTF-8",
                 id="latin1-byte"),
    pytest.param((_rows(2) + "M,0.4\x00,1\n").encode(), "{src}: file is binary, not CSV text", id="binary"),
    pytest.param(_rows(10, "M,0.455,0.365,,0.514,0.2245,0.101,0.15,15").encode(),
                 "{src}: column 'height' is empty in every row", id="column-empty-in-every-row"),
    pytest.param(_rows(10, "M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15,15") .replace(",0.15,15\n", ",NA,15\n").encode(),
                 "{src}: column 'shell_weight' is empty in every row", id="column-all-na"),
    pytest.param((_rows(3) + "M,0.455,0.365,0.095,0.514,0.2245,0.101\n").encode(),
                 "{src} row 5: has 7 columns, expected 9 (" + EXPECTED_COLUMNS + ")", id="short-row"),
    pytest.param((_rows(3) + "M,inf,0.365,0.095,0.514,0.2245,0.101,0.15,15\n").encode(),
                 "{src} row 5 column 'length': not a finite number", id="infinite-value"),
    pytest.param((HEADER + ",age\n" + GOOD_ROW + ",3\n").encode(),
                 "{src}: unexpected column(s) 'age' in header; expected " + EXPECTED_COLUMNS, id="unexpected-column"),
    pytest.param((HEADER + ",rings\n" + GOOD_ROW + ",3\n").encode(), "{src}: duplicate column names in header",
                 id="duplicate-column"),
]


@pytest.mark.parametrize(("data", "expected"), PREPROCESS_CASES)
def test_bad_input_preprocess_file(tmp_path, data, expected):
    proc, src = run_preprocess(tmp_path, data)
    assert (proc.returncode, proc.stderr.splitlines()) == (2, [f"preprocess: {expected.format(src=src)}"])
    assert files_under(tmp_path / "out") == []


def test_bad_input_preprocess_batch_file_encoding(tmp_path):
    proc, _ = run_preprocess(tmp_path, _rows().encode(), batch=HEADER.rsplit(",", 1)[0].encode("utf-16"))
    batch = tmp_path / "batch-in" / "batch.csv"
    assert (proc.returncode, proc.stderr.splitlines()) == (2, [f"preprocess: {batch}: file is UTF-16 encoded; save it as UTF-8"])
    assert files_under(tmp_path / "out") == []


def test_excel_csv_utf8_with_bom_simply_works(tmp_path):
    proc, _ = run_preprocess(tmp_path, b"\xef\xbb\xbf" + _rows().encode())
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "train" / "train.csv").read_text().count("\n") == 7


@pytest.fixture(scope="module")
def model_archive(tmp_path_factory) -> Path:
    """A real model.tar.gz of a 3-feature XGBoost model."""
    import numpy as np
    import xgboost as xgb

    rng = np.random.default_rng(0)
    features = rng.normal(size=(40, 3))
    booster = xgb.train({"objective": "reg:squarederror"}, xgb.DMatrix(features, label=features.sum(axis=1)), 2)
    folder = tmp_path_factory.mktemp("model")
    data = bytes(booster.save_raw(raw_format="ubj"))
    with tarfile.open(folder / "model.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("xgboost-model")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return folder


def run_evaluate(tmp_path: Path, model_dir: Path, test: bytes) -> tuple[subprocess.CompletedProcess, Path]:
    test_file = tmp_path / "test" / "test.csv"
    test_file.parent.mkdir()
    test_file.write_bytes(test)
    proc = subprocess.run(
        [sys.executable, str(REPO / "processing_code" / "evaluate.py"), "--model-dir", str(model_dir),
         "--test-dir", str(test_file.parent), "--output-dir", str(tmp_path / "evaluation")],
        capture_output=True, text=True, timeout=120, check=False)
    return proc, test_file


EVALUATE_CASES = [
    pytest.param("10,1,2,3\n9,1,2,3\n".encode("utf-16"), "{test}: file is UTF-16 encoded; save it as UTF-8", id="utf16"),
    pytest.param(b"10,1,2,3\n9,1,abc,3\n", "{test} row 2 column 3: not a number: 'abc'", id="not-a-number"),
    pytest.param(b"10,1,2,3\n9,1,2\n", "{test} row 2: has 3 columns, expected 4", id="short-row"),
    pytest.param(b",1,2,3\n9,1,2,3\n", "{test} row 1 column 1: missing label", id="missing-label"),
    pytest.param(b"10,1,2,3\n9,1,\xe9,3\n", "{test} row 2: not UTF-8 text (byte 0xe9); save the file as UTF-8", id="latin1-byte"),
    pytest.param(b"10,1,2\n9,1,2\n", "{test}: has 2 feature columns after the label, but the model expects 3",
                 id="feature-count"),
    pytest.param(b"", "{test}: empty file", id="empty-file"),
]


@pytest.mark.parametrize(("data", "expected"), EVALUATE_CASES)
def test_bad_input_evaluate_test_file(tmp_path, model_archive, data, expected):
    proc, test = run_evaluate(tmp_path, model_archive, data)
    assert (proc.returncode, proc.stderr.splitlines()) == (2, [f"evaluate: {expected.format(test=test)}"])
    assert files_under(tmp_path / "evaluation") == []


def test_bad_input_evaluate_archive_without_model(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    with tarfile.open(folder / "model.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("notes.txt")
        tar.addfile(info, io.BytesIO(b""))
    proc, _ = run_evaluate(tmp_path, folder, b"10,1,2,3\n")
    assert (proc.returncode, proc.stderr.splitlines()) == (
        2, [f"evaluate: {folder / 'model.tar.gz'}: no 'xgboost-model' inside (found: notes.txt)"])
    assert files_under(tmp_path / "evaluation") == []


# --------------------------------------------------------------------------- config loader (in process)
CONFIG_LOADER_CASES = [
    pytest.param({"region": "xx-nowhere-1"},
                 "config field 'region': not an AWS region botocore knows (offline list of its partitions) (got 'xx-nowhere-1')",
                 id="region-unknown"),
    pytest.param({"region": "us-east-1\n"}, "config field 'region': expected an AWS region such as us-east-1 (got 'us-east-1\\n')",
                 id="region-with-newline"),
    pytest.param({"bucket": "airsage-artifacts\n"},
                 "config field 'bucket': S3 bucket names are 3-63 characters of a-z, 0-9, '.' and '-', starting and ending "
                 "with a letter or digit (got 'airsage-artifacts\\n')", id="bucket-with-newline"),
    pytest.param({"input_data_uri": "s3://b-1/in\x00.csv"},
                 "config field 'input_data_uri': must be an S3 URI s3://bucket/key (got 's3://b-1/in\\x00.csv')",
                 id="input-uri-with-nul"),
    pytest.param({"sklearn_version": "0.1-1"},
                 "config field 'sklearn_version': the SageMaker SDK has no sklearn image of this version "
                 "(known: 0.20.0, 0.23-1, 1.0-1, 1.2-1, 1.4-2, 1.4-2-py312, 1.9-0) (got '0.1-1')", id="sklearn-version"),
    pytest.param({"mse_threshold": float("inf")}, "config field 'mse_threshold': must be a positive finite number (got inf)",
                 id="threshold-inf"),
    pytest.param({"transform_instance_count": True},
                 "config field 'transform_instance_count': expected an integer, got bool True", id="count-bool"),
    pytest.param({"tags": {"cost-center": "x\ny"}},
                 "config field 'tags': tags allow letters, digits, spaces and _ . : / = + - @ (got 'cost-center=x\\ny')",
                 id="tag-with-newline"),
    pytest.param({7: "x"}, "unknown config field 7 in overrides; known fields: " , id="non-string-field-name"),
]


@pytest.mark.parametrize(("overrides", "expected"), CONFIG_LOADER_CASES)
def test_bad_input_config_loader(overrides, expected):
    from sm_pipeline.abalone.config import load_config

    with pytest.raises(ConfigError) as err:
        load_config(overrides=overrides, env={})
    assert str(err.value).startswith(expected) and "\n" not in str(err.value)


@pytest.mark.parametrize(("content", "problem"), [
    pytest.param(b'\xff\xfe{\x00}\x00', "not UTF-8 text (byte 0); save it as UTF-8", id="config-file-utf16"),
    pytest.param(b'[1, 2]', "expected a JSON object, got list", id="config-file-not-an-object"),
])
def test_bad_input_config_file(tmp_path, content, problem):
    from sm_pipeline.abalone.config import load_config

    cfg = tmp_path / "config.json"
    cfg.write_bytes(content)
    with pytest.raises(ConfigError) as err:
        load_config(cfg, env={})
    assert str(err.value) == f"config file '{cfg}': {problem}"


# --------------------------------------------------------------------------- PropertyFile reader
PROPERTY_FILE_CASES = [
    pytest.param(b'{"regression_metrics": {"mse": {"value": ' + b"1" * 5000 + b"}}}",
                 "s3://b/e.json is not usable JSON: an integer of 5000 digits is too large", id="int-over-digit-limit"),
    pytest.param(b'{"regression_metrics": {"mse": {"value": ' + b"9" * 400 + b"}}}",
                 "s3://b/e.json is not usable JSON: an integer of 400 digits is too large", id="int-over-float-range"),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, "s3://b/e.json is not usable JSON: nested more than 64 levels deep",
                 id="nested-100k-deep"),
    pytest.param(b'{"a":' * 70 + b"1" + b"}" * 70, "s3://b/e.json is not usable JSON: nested more than 64 levels deep",
                 id="nested-70-deep"),
    pytest.param(b'{"regression_metrics": {"mse": {"value": -0.5}}}',
                 "s3://b/e.json: regression_metrics.mse.value is -0.5, but an error metric is never negative", id="negative-mse"),
    pytest.param(b'{"regression_metrics": {"mse": {"value": 1e999}}}',
                 "s3://b/e.json: regression_metrics.mse.value is inf, not a finite number", id="overflowing-float"),
    pytest.param(b'{"regression_metrics": {"mse": {"value": Infinity}}}',
                 "s3://b/e.json: regression_metrics.mse.value is inf, not a finite number", id="infinity-literal"),
    pytest.param(b'{"regression_metrics": {"mse": {"value": [1]}}}',
                 "s3://b/e.json: regression_metrics.mse.value is [1] (list), not a number", id="list-value"),
]


@pytest.mark.parametrize(("data", "expected"), PROPERTY_FILE_CASES)
def test_bad_input_property_file_reader(data, expected):
    from airsage.property_files import PropertyFileError, json_path_value, numeric_value, parse_report

    path = "regression_metrics.mse.value"
    with pytest.raises(PropertyFileError) as err:
        numeric_value(json_path_value(parse_report(data, "s3://b/e.json"), path, "s3://b/e.json"), path, "s3://b/e.json")
    assert str(err.value) == expected


@pytest.mark.parametrize(("definition", "expected"), [
    pytest.param({"Steps": "EvaluateAbalone"},
                 "step 'EvaluateAbalone' is not in the pipeline definition (steps: [])", id="steps-not-a-list"),
    pytest.param({"Steps": [{"Name": "EvaluateAbalone", "PropertyFiles": "EvaluationReport"}]},
                 "step 'EvaluateAbalone' declares no PropertyFile 'EvaluationReport' (declared: [])", id="property-files-not-a-list"),
    pytest.param({"Steps": [{"Name": "EvaluateAbalone",
                             "PropertyFiles": [{"PropertyFileName": "EvaluationReport", "OutputName": "evaluation"}],
                             "Arguments": {"ProcessingOutputConfig": {"Outputs": [{"OutputName": "evaluation"}]}}}]},
                 "step 'EvaluateAbalone': output 'evaluation' has no S3Output.S3Uri or PropertyFile 'EvaluationReport' no FilePath",
                 id="output-without-s3"),
])
def test_bad_input_property_file_location(definition, expected):
    from airsage.property_files import PropertyFileError, property_file_location

    with pytest.raises(PropertyFileError) as err:
        property_file_location(definition, "EvaluateAbalone", "EvaluationReport")
    assert str(err.value) == expected


# --------------------------------------------------------------------------- operators' inputs
@pytest.mark.parametrize(("values", "expected"), [
    pytest.param({"MseThreshold": "nan"}, "parameter MseThreshold (Float): nan is not a finite number", id="float-nan"),
    pytest.param({"MseThreshold": float("inf")}, "parameter MseThreshold (Float): inf is not a finite number",
                 id="float-inf"),
    pytest.param({"ProcessingInstanceCount": True},
                 "parameter ProcessingInstanceCount (Integer): expected an integer, got True", id="integer-bool"),
    pytest.param({"ProcessingInstanceCount": "1.5"},
                 "parameter ProcessingInstanceCount (Integer): expected an integer, got '1.5'", id="integer-fraction"),
    pytest.param({"InputData": {"s3": "x"}}, "parameter InputData (String): expected a string, got dict {'s3': 'x'}",
                 id="string-dict"),
])
def test_bad_input_operator_parameters(values, expected):
    from sm_pipeline.parameters import ParameterError, start_request_values

    declared = [{"Name": "MseThreshold", "Type": "Float"}, {"Name": "ProcessingInstanceCount", "Type": "Integer"},
                {"Name": "InputData", "Type": "String"}]
    with pytest.raises(ParameterError) as err:
        start_request_values(declared, values)
    assert str(err.value) == expected
