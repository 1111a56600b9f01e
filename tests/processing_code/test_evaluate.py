"""processing_code/evaluate.py with a tiny XGBoost model: metrics against scikit-learn, both model forms, bad input."""

from __future__ import annotations

import io
import json
import pickle
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

N_FEATURES = 10


@pytest.fixture(scope="module")
def booster():
    """A small XGBoost regressor trained on 10 features, like preprocess.py's output."""
    import xgboost as xgb

    rng = np.random.default_rng(0)
    features = rng.normal(size=(60, N_FEATURES)).astype(np.float32)
    label = 10 + 3 * features[:, 0] + rng.normal(scale=0.5, size=60)
    return xgb.train({"objective": "reg:squarederror", "max_depth": 3, "eta": 0.3, "nthread": 1},
                     xgb.DMatrix(features, label=label), num_boost_round=5)


def native_bytes(booster) -> bytes:
    return bytes(booster.save_raw(raw_format="ubj"))


def write_archive(path: Path, members: dict[str, bytes]) -> Path:
    """A model.tar.gz holding ``members`` (name -> bytes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def test_rows():
    """Label-first test rows for the 10-feature model."""
    rng = np.random.default_rng(1)
    features = rng.normal(size=(25, N_FEATURES))
    label = np.round(10 + 3 * features[:, 0] + rng.normal(scale=0.5, size=25))
    return np.column_stack([label, features])


def write_rows(path: Path, rows: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, rows, delimiter=",", fmt="%.6g")
    return path


def run_args(tmp_path: Path) -> list[str]:
    return ["--model-dir", str(tmp_path / "model"), "--test-dir", str(tmp_path / "test"),
            "--output-dir", str(tmp_path / "evaluation")]


@pytest.mark.parametrize("form", ["native", "pickle"])
def test_metrics_match_scikit_learn(form, evaluate, booster, tmp_path, test_rows):
    import xgboost as xgb
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    model = native_bytes(booster) if form == "native" else pickle.dumps(booster)
    write_archive(tmp_path / "model" / "model.tar.gz", {"xgboost-model": model})
    write_rows(tmp_path / "test" / "test.csv", test_rows)

    assert evaluate.main(run_args(tmp_path)) == 0

    report = json.loads((tmp_path / "evaluation" / "evaluation.json").read_text())
    assert set(report) == {"regression_metrics"}
    metrics = report["regression_metrics"]
    assert set(metrics) == {"mse", "rmse", "mae", "r2"}
    actual = np.loadtxt(tmp_path / "test" / "test.csv", delimiter=",")[:, 0]
    features = np.loadtxt(tmp_path / "test" / "test.csv", delimiter=",", dtype=np.float32)[:, 1:]
    predicted = booster.predict(xgb.DMatrix(features))
    errors = actual - predicted
    assert metrics["mse"] == pytest.approx(
        {"value": mean_squared_error(actual, predicted), "standard_deviation": np.std(errors**2)}, rel=1e-5)
    assert metrics["rmse"] == pytest.approx({"value": np.sqrt(mean_squared_error(actual, predicted))}, rel=1e-5)
    assert metrics["mae"] == pytest.approx(
        {"value": mean_absolute_error(actual, predicted), "standard_deviation": np.std(np.abs(errors))}, rel=1e-5)
    assert metrics["r2"] == pytest.approx({"value": r2_score(actual, predicted)}, rel=1e-5)

    lines = (tmp_path / "evaluation" / "predictions.csv").read_text().splitlines()
    assert lines[0] == "actual,predicted"
    pairs = np.array([[float(v) for v in line.split(",")] for line in lines[1:]])
    assert np.allclose(pairs[:, 0], actual)
    assert np.allclose(pairs[:, 1], predicted, rtol=1e-5)


def test_model_dir_may_name_the_archive_and_tests_may_span_files(evaluate, booster, tmp_path, test_rows):
    archive = write_archive(tmp_path / "m" / "model.tar.gz", {"./xgboost-model": native_bytes(booster)})
    write_rows(tmp_path / "test" / "test-algo-1.csv", test_rows[:10])
    write_rows(tmp_path / "test" / "test-algo-2.csv", test_rows[10:])
    args = ["--model-dir", str(archive), "--test-dir", str(tmp_path / "test"), "--output-dir", str(tmp_path / "out")]
    assert evaluate.main(args) == 0
    lines = (tmp_path / "out" / "predictions.csv").read_text().splitlines()
    assert len(lines) == 1 + len(test_rows)


def test_constant_labels_follow_scikit_learn_r2(evaluate):
    from sklearn.metrics import r2_score

    actual = np.array([5.0, 5.0, 5.0])
    for predicted in (np.array([5.0, 5.0, 5.0]), np.array([4.0, 5.0, 6.0])):
        assert evaluate.regression_metrics(actual, predicted)["r2"]["value"] == r2_score(actual, predicted)


# ----------------------------------------------------------------------------- bad input


def _setup(tmp_path, booster, test_rows, case):
    """Arrange one bad-input case; return the expected stderr line (without the program prefix)."""
    model_dir = tmp_path / "model"
    archive = model_dir / "model.tar.gz"
    test_file = tmp_path / "test" / "test.csv"
    good_model = {"xgboost-model": native_bytes(booster)}
    if case != "missing archive":
        model_dir.mkdir(parents=True)
    if case not in {"missing archive", "corrupt archive", "truncated archive", "no model inside", "model is garbage"}:
        write_archive(archive, good_model)
    if case != "missing test dir":
        write_rows(test_file, test_rows)

    if case == "missing archive":
        return f"{archive}: model archive not found"
    if case == "corrupt archive":
        archive.write_bytes(b"\x1f\x8b not really gzip")
        return f"{archive}: not a readable tar.gz archive (corrupt or truncated)"
    if case == "truncated archive":
        whole = write_archive(archive, good_model).read_bytes()
        archive.write_bytes(whole[: len(whole) // 2])
        return f"{archive}: not a readable tar.gz archive (corrupt or truncated)"
    if case == "no model inside":
        write_archive(archive, {"model.json": b"{}", "notes.txt": b"hi"})
        return f"{archive}: no 'xgboost-model' inside (found: model.json, notes.txt)"
    if case == "model is garbage":
        write_archive(archive, {"xgboost-model": b"definitely not a model"})
        return f"{archive}: 'xgboost-model' is neither a native XGBoost model nor a pickled Booster"
    if case == "missing test dir":
        return f"test data {tmp_path / 'test'} does not exist"
    if case == "empty test file":
        test_file.write_text("")
        return f"{test_file}: empty file"
    if case == "non-numeric value":
        lines = test_file.read_text().splitlines()
        fields = lines[3].split(",")
        fields[4] = "oops"
        lines[3] = ",".join(fields)
        lines[1] = lines[1].split(",", 1)[0] + ",NA," + lines[1].split(",", 2)[2]  # missing, not bad
        test_file.write_text("\n".join(lines) + "\n")
        return f"{test_file} row 4 column 5: not a number: 'oops'"
    if case == "missing label":
        lines = test_file.read_text().splitlines()
        lines[2] = "," + lines[2].split(",", 1)[1]
        test_file.write_text("\n".join(lines) + "\n")
        return f"{test_file} row 3 column 1: missing label"
    if case == "feature count mismatch":
        write_rows(test_file, test_rows[:, :-2])
        return f"{test_file}: has 8 feature columns after the label, but the model expects 10"
    raise AssertionError(case)


BAD_CASES = ["missing archive", "corrupt archive", "truncated archive", "no model inside", "model is garbage", "missing test dir",
             "empty test file", "non-numeric value", "missing label", "feature count mismatch"]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_fails_with_one_line_and_no_output(case, evaluate, booster, tmp_path, test_rows, list_files, capsys):
    expected = _setup(tmp_path, booster, test_rows, case)
    assert evaluate.main(run_args(tmp_path)) == 2
    err = capsys.readouterr().err
    assert err == f"evaluate: {expected}\n"
    assert list_files(tmp_path / "evaluation") == []


def test_failure_while_writing_leaves_no_output(evaluate, booster, tmp_path, test_rows, list_files, monkeypatch,
                                                capsys):
    write_archive(tmp_path / "model" / "model.tar.gz", {"xgboost-model": native_bytes(booster)})
    write_rows(tmp_path / "test" / "test.csv", test_rows)

    def write_half_then_fail(fh, actual, predicted):
        fh.write("actual,predicted\n1,")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(evaluate, "write_predictions", write_half_then_fail)
    assert evaluate.main(run_args(tmp_path)) == 2
    assert capsys.readouterr().err == "evaluate: No space left on device\n"
    # evaluation.json was complete by then, but it must not appear without its predictions.
    assert list_files(tmp_path / "evaluation") == []


def test_defaults_are_the_container_paths(evaluate, capsys):
    if Path("/opt/ml").exists():
        pytest.skip("running inside a SageMaker-like container")
    assert evaluate.main([]) == 2
    assert capsys.readouterr().err == "evaluate: /opt/ml/processing/model/model.tar.gz: model archive not found\n"


def test_runs_as_a_standalone_script(evaluate, booster, tmp_path, test_rows):
    write_archive(tmp_path / "model" / "model.tar.gz", {"xgboost-model": pickle.dumps(booster)})
    write_rows(tmp_path / "test" / "test.csv", test_rows)
    (tmp_path / "work").mkdir()
    done = subprocess.run([sys.executable, evaluate.__file__, *run_args(tmp_path)], cwd=tmp_path / "work",
                          env={"PATH": "/usr/bin:/bin", "PYTHONNOUSERSITE": "1"}, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "read 25 test rows" in done.stdout
    assert json.loads((tmp_path / "evaluation" / "evaluation.json").read_text())["regression_metrics"]["mse"]["value"] > 0
