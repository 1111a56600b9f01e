"""``run-local --sample/--stage-data/--code-dir``: a fresh object root runs, and nothing is written for a bad run.

Every case runs the CLI as a user does (a subprocess from the repository root).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sm_pipeline.abalone.input_data import batch_rows
from sm_pipeline.storage import ObjectStore

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "abalone.csv"


def cli(*args: str) -> subprocess.CompletedProcess:
    """``python -m sm_pipeline ARGS`` from the repository root."""
    return subprocess.run([sys.executable, "-m", "sm_pipeline", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=600, check=False)


def files_under(path: Path) -> list[Path]:
    """Every file below ``path`` (none when it does not exist)."""
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.exists() else []


@pytest.fixture(scope="module")
def definition_file(tmp_path_factory) -> Path:
    """The project's abalone definition (SDK v3), built once for the module."""
    from sm_pipeline.abalone.config import load_config
    from sm_pipeline.abalone.definition import definition_json

    path = tmp_path_factory.mktemp("definition") / "def.json"
    path.write_text(definition_json(load_config(env={})))
    return path


@pytest.fixture(scope="module")
def defaults(definition_file) -> dict:
    return {p["Name"]: p.get("DefaultValue") for p in json.loads(definition_file.read_text())["Parameters"]}


def code_uris(definition_file: Path) -> dict[str, str]:
    from sm_pipeline.local.staging import code_input_uris

    return {uri.rsplit("/", 1)[1]: uri for uri in code_input_uris(json.loads(definition_file.read_text()))}


def test_sample_on_a_fresh_root_stages_data_and_code_then_runs(definition_file, defaults, tmp_path):
    root = tmp_path / "fresh"
    done = cli("run-local", "--definition", str(definition_file), "--param", "MseThreshold=7.5",
               "--root", str(root), "--sample")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["status"] == "Succeeded"
    assert summary["steps"]["TransformAbalone"] == "Succeeded"
    store = ObjectStore(root)
    assert store.read_bytes(defaults["InputData"]) == SAMPLE.read_bytes()
    batch, rows = batch_rows(SAMPLE.read_bytes(), str(SAMPLE))
    assert store.read_bytes(defaults["BatchData"]) == batch
    assert b"rings" not in store.read_bytes(defaults["BatchData"]).splitlines()[0]
    code = code_uris(definition_file)
    for name, uri in code.items():
        assert store.read_bytes(uri) == (REPO / "processing_code" / name).read_bytes()
    staged = [line for line in done.stderr.splitlines() if line.startswith("staged ")]
    assert staged == [
        f"staged {defaults['InputData']} ({rows} rows from {SAMPLE})",
        f"staged {defaults['BatchData']} ({rows} rows from {SAMPLE} without the label)",
        *[f"staged {uri} (from {REPO / 'processing_code' / name})" for name, uri in code.items()],
    ]
    # A second run on the same root finds everything in place: nothing of the code is staged again.
    again = cli("run-local", "--definition", str(definition_file), "--root", str(root), "--sample")
    assert again.returncode == 0, again.stderr
    assert [line.split(" (")[0] for line in again.stderr.splitlines() if line.startswith("staged ")] == [
        f"staged {defaults['InputData']}", f"staged {defaults['BatchData']}"]


def test_make_data_output_feeds_stage_data(definition_file, defaults, tmp_path):
    data = tmp_path / "synthetic.csv"
    made = cli("make-data", "--rows", "400", "--seed", "3", "--output", str(data))
    assert made.returncode == 0, made.stderr
    root = tmp_path / "objects"
    done = cli("run-local", "--definition", str(definition_file), "--root", str(root), "--param", "MseThreshold=100",
               "--stage-data", str(data), "--code-dir", "processing_code")
    assert done.returncode == 0, done.stderr
    store = ObjectStore(root)
    assert store.read_bytes(defaults["InputData"]) == data.read_bytes()
    assert store.read_bytes(defaults["BatchData"]) == batch_rows(data.read_bytes(), str(data))[0]
    assert json.loads(done.stdout)["status"] == "Succeeded"


def test_stage_data_follows_the_input_parameters_of_the_run(definition_file, tmp_path):
    root = tmp_path / "objects"
    done = cli("run-local", "--definition", str(definition_file), "--root", str(root), "--sample",
               "--param", "InputData=s3://elsewhere/in/", "--param", "BatchData=s3://elsewhere/batch.csv")
    assert done.returncode == 0, done.stderr
    store = ObjectStore(root)
    assert store.read_bytes("s3://elsewhere/in/abalone.csv") == SAMPLE.read_bytes()
    assert store.read_bytes("s3://elsewhere/batch.csv") == batch_rows(SAMPLE.read_bytes(), str(SAMPLE))[0]


def _cycle(definition: dict) -> None:
    definition["Steps"][0]["DependsOn"] = [definition["Steps"][1]["Name"]]


def _unknown_type(definition: dict) -> None:
    definition["Steps"][1]["Type"] = "Quantum"


@pytest.mark.parametrize(
    ("mutate", "extra", "expected"),
    [
        pytest.param(_cycle, [], "{definition}: dependency cycle: "
                     "PreprocessAbalone -> TrainAbalone -> PreprocessAbalone", id="cycle"),
        pytest.param(_unknown_type, [], "{definition}: step 'TrainAbalone': "
                     "unknown step type 'Quantum'", id="unknown-step-type"),
        pytest.param(None, ["--param", "MseThreshold=low"],
                     "error: parameter MseThreshold (Float): expected a number, got 'low'", id="bad-parameter"),
        pytest.param(None, ["--param", "Bogus=1"], "error: unknown parameter(s) Bogus (declared: BatchData, "
                     "InputData, ModelApprovalStatus, MseThreshold, ProcessingInstanceCount, ProcessingInstanceType, "
                     "TrainingInstanceType)", id="unknown-parameter"),
        pytest.param(None, ["--max-parallel", "0"], "error: --max-parallel must be at least 1, not 0",
                     id="max-parallel"),
    ],
)
def test_an_invalid_run_stages_nothing(definition_file, tmp_path, mutate, extra, expected):
    definition = json.loads(definition_file.read_text())
    if mutate:
        mutate(definition)
    path = tmp_path / "def.json"
    path.write_text(json.dumps(definition))
    root = tmp_path / "objects"
    done = cli("run-local", "--definition", str(path), "--root", str(root), "--sample",
               "--code-dir", "processing_code", *extra)
    assert (done.returncode, done.stdout) == (2, "")
    # definition problems are the lines `validate` prints, prefixed with the file
    assert done.stderr.splitlines() == [expected.format(definition=path)]
    assert files_under(root) == []


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        pytest.param(lambda p: p.write_text("M,0.455,0.365,0.095,0.514,0.2245,0.101,0.15,15\n"),
                     "error: --stage-data: {csv}: header ['M', '0.455', '0.365', '0.095', '0.514', '0.2245', "
                     "'0.101', '0.15', '15'] has no 'rings' column", id="headerless"),
        pytest.param(lambda p: p.write_text("sex,length,rings\n"), "error: --stage-data: {csv}: header only, no data rows",
                     id="header-only"),
        pytest.param(lambda p: p.write_bytes(b"sex,rings\n\xff\xfe,1\n"),
                     "error: --stage-data: {csv}: not UTF-8 text ('utf-8' codec can't decode byte 0xff in position "
                     "10: invalid start byte)", id="not-utf8"),
        pytest.param(lambda p: None, "error: --stage-data: {csv} does not exist", id="missing"),
        pytest.param(lambda p: p.mkdir(), "error: --stage-data: {csv} is a directory, expected a CSV file",
                     id="directory"),
    ],
)
def test_a_bad_data_file_stages_nothing(definition_file, tmp_path, make, expected):
    csv_path = tmp_path / "in.csv"
    make(csv_path)
    root = tmp_path / "objects"
    done = cli("run-local", "--definition", str(definition_file), "--root", str(root), "--stage-data", str(csv_path),
               "--code-dir", "processing_code")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines() == [expected.format(csv=csv_path)]
    assert files_under(root) == []


def test_a_missing_code_source_stages_no_data_either(definition_file, tmp_path):
    empty = tmp_path / "no-scripts"
    empty.mkdir()
    root = tmp_path / "objects"
    done = cli("run-local", "--definition", str(definition_file), "--root", str(root), "--stage-data", str(SAMPLE),
               "--code-dir", str(empty))
    uri = code_uris(definition_file)["preprocess.py"]
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines() == [f"error: code object {uri} is missing and no 'preprocess.py' exists in {empty}"]
    assert files_under(root) == []


def test_a_root_that_is_a_file_is_refused(definition_file, tmp_path):
    root = tmp_path / "objects"
    root.write_text("not a directory")
    done = cli("run-local", "--definition", str(definition_file), "--root", str(root), "--sample")
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines() == [f"error: object root {root}: not a directory (it is a file)"]
    assert root.read_text() == "not a directory"


def test_stage_data_needs_an_input_parameter(tmp_path):
    definition = json.loads((REPO / "tests" / "fixtures" / "sdk2" / "aws_abalone_definition.json").read_text())
    definition["Parameters"] = [p for p in definition["Parameters"] if p["Name"] != "InputData"]
    for step in definition["Steps"][:1]:
        step["Arguments"]["ProcessingInputs"][0]["S3Input"]["S3Uri"] = "s3://bucket/in.csv"
    path = tmp_path / "def.json"
    path.write_text(json.dumps(definition))
    done = cli("run-local", "--definition", str(path), "--root", str(tmp_path / "objects"), "--stage-data", str(SAMPLE))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines() == [
        "error: --stage-data: the definition declares no InputData parameter to stage the data at"]
    assert files_under(tmp_path / "objects") == []


def test_help_documents_the_fresh_root_quickstart():
    done = cli("run-local", "--help")
    assert done.returncode == 0
    assert "--sample" in done.stdout and "--stage-data CSV" in done.stdout
    assert "python -m sm_pipeline run-local --definition def.json --root objects --sample" in done.stdout
