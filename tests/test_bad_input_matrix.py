"""The bad-input matrix: every kind of bad input gets one clear error naming what and where,
and leaves no half-written output behind.

One module across the boundaries a user can feed: data files (the container scripts),
pipeline parameters (the local runner), definition JSON (the validator and the CLI),
evaluation.json (the PropertyFile reader), S3 URIs and object keys (the object store),
config (file, env, overrides) and the DAG's params (the UI form).
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
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
    from sm_pipeline.config import load_config

    with pytest.raises(ConfigError) as err:
        load_config(overrides=overrides, env={})
    assert expected in str(err.value)


def test_bad_input_config_env_variable():
    from sm_pipeline.config import load_config

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
