"""Abalone model evaluation for a SageMaker Processing job (XGBoost image).

Loads ``model.tar.gz`` (holding ``xgboost-model``), predicts the test split (headerless CSV,
label first) and writes ``evaluation.json``::

    {"regression_metrics": {
        "mse":  {"value": ..., "standard_deviation": <std of the squared errors>},
        "rmse": {"value": ...},
        "mae":  {"value": ..., "standard_deviation": <std of the absolute errors>},
        "r2":   {"value": ...}}}

``standard_deviation`` is the spread of the per-row quantity a metric averages, so it exists
only for mse and mae; rmse and r2 are not per-row means. ``predictions.csv`` (header
``actual,predicted``) feeds the report's plots.

This file is uploaded alone into the container: it imports nothing from the airsage repo, only
the standard library, numpy, pandas and xgboost. Every path is an argument whose default is
the container path. Exit status: 0 on success, 2 on bad input with one line on stderr naming
the file, the row and the column. Outputs are written under temporary names and renamed only
when both are complete.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
import tarfile
import time
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb

PROG = "evaluate"
MODEL_ARCHIVE = "model.tar.gz"
MODEL_MEMBER = "xgboost-model"
_FLOAT_FORMAT = "%.6g"


class BadInput(Exception):
    """Input the script cannot use; the message is the one line shown to the user."""


def log(message: str) -> None:
    """Progress line on stdout (collected into the job's CloudWatch log)."""
    print(f"{PROG}: {message}", flush=True)


# ----------------------------------------------------------------------------- model


def find_model_archive(model_dir: Path) -> Path:
    """``model_dir/model.tar.gz``; ``model_dir`` may also name the archive itself."""
    archive = model_dir if model_dir.is_file() else model_dir / MODEL_ARCHIVE
    if not archive.is_file():
        raise BadInput(f"{archive}: model archive not found")
    return archive


def read_model_bytes(archive: Path) -> bytes:
    """The bytes of the ``xgboost-model`` member of ``archive``, read without extracting to disk."""
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = [m for m in tar.getmembers() if m.isfile()]
            member = next((m for m in members if Path(m.name).name == MODEL_MEMBER), None)
            if member is None:
                found = ", ".join(m.name for m in members) or "nothing"
                raise BadInput(f"{archive}: no '{MODEL_MEMBER}' inside (found: {found})")
            return tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, OSError, zlib.error):
        raise BadInput(f"{archive}: not a readable tar.gz archive (corrupt or truncated)") from None


def load_booster(data: bytes, archive: Path) -> xgb.Booster:
    """An XGBoost Booster from native model bytes, or from a pickle as the 0.90-x/1.0-x images write."""
    booster = xgb.Booster()
    try:
        booster.load_model(bytearray(data))
        return booster
    except xgb.core.XGBoostError:
        pass
    try:
        # The archive is this pipeline's own training output, so unpickling it is trusted;
        # old SageMaker XGBoost images save the model only this way.
        loaded = pickle.loads(data)  # noqa: S301
    except Exception:  # noqa: BLE001 - any unpickling failure means "not a model"
        loaded = None
    if isinstance(loaded, xgb.XGBModel):
        loaded = loaded.get_booster()
    if not isinstance(loaded, xgb.Booster):
        raise BadInput(f"{archive}: '{MODEL_MEMBER}' is neither a native XGBoost model nor a pickled Booster")
    return loaded


# ----------------------------------------------------------------------------- test data


def list_test_files(test_dir: Path) -> list[Path]:
    """The test CSV ``test_dir`` names, or every ``*.csv`` in it (one per preprocessing host)."""
    if test_dir.is_file():
        return [test_dir]
    if not test_dir.is_dir():
        raise BadInput(f"test data {test_dir} does not exist")
    files = sorted(p for p in test_dir.rglob("*.csv") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise BadInput(f"test data {test_dir} holds no .csv files")
    return files


def _first_bad_cell(path: Path) -> str:
    """Slow second pass after the fast parser failed: the first non-numeric cell's position."""
    # Default NA spellings ("", "NA", "NaN", ...) are missing values to the fast pass too.
    reader = pd.read_csv(path, header=None, dtype=str, chunksize=50_000)
    try:
        for chunk in reader:
            for row, *values in chunk.itertuples(index=True, name=None):
                for column, text in enumerate(values):
                    if isinstance(text, str) and text.strip():
                        try:
                            float(text)
                        except ValueError:
                            return f"{path} row {row + 1} column {column + 1}: not a number: {text!r}"
    finally:
        reader.close()
    return f"{path}: not a number somewhere in the file"


def read_test_csv(path: Path) -> np.ndarray:
    """A headerless, label-first test CSV as a float32 array; validated."""
    if path.stat().st_size == 0:
        raise BadInput(f"{path}: empty file")
    try:
        frame = pd.read_csv(path, header=None, dtype=np.float32, engine="c")
    except pd.errors.EmptyDataError:
        raise BadInput(f"{path}: empty file") from None
    except pd.errors.ParserError as exc:
        raise BadInput(f"{path}: not a readable CSV file: {str(exc).strip().splitlines()[-1]}") from None
    except UnicodeDecodeError:
        raise BadInput(f"{path}: not a text CSV file (undecodable bytes)") from None
    except ValueError:
        raise BadInput(_first_bad_cell(path)) from None
    if frame.empty:
        raise BadInput(f"{path}: empty file")
    values = frame.to_numpy(dtype=np.float32)
    if values.shape[1] < 2:
        raise BadInput(f"{path}: has {values.shape[1]} column, expected the label then the features")
    missing = np.flatnonzero(np.isnan(values[:, 0]))
    if missing.size:
        raise BadInput(f"{path} row {missing[0] + 1} column 1: missing label")
    return values


# ----------------------------------------------------------------------------- metrics


def regression_metrics(actual: np.ndarray, predicted: np.ndarray) -> dict:
    """The ``regression_metrics`` block of evaluation.json (computed in float64)."""
    actual = actual.astype(np.float64)
    errors = actual - predicted.astype(np.float64)
    squared = errors**2
    absolute = np.abs(errors)
    mse = float(squared.mean())
    total = float(((actual - actual.mean()) ** 2).sum())
    residual = float(squared.sum())
    # Constant labels leave r2 undefined; follow scikit-learn: 1 if perfect, else 0.
    r2 = 1.0 - residual / total if total > 0 else (1.0 if residual == 0 else 0.0)
    return {
        "mse": {"value": mse, "standard_deviation": float(squared.std())},
        "rmse": {"value": float(np.sqrt(mse))},
        "mae": {"value": float(absolute.mean()), "standard_deviation": float(absolute.std())},
        "r2": {"value": float(r2)},
    }


def write_predictions(fh, actual: np.ndarray, predicted: np.ndarray) -> None:
    """predictions.csv: header ``actual,predicted``, one line per test row, in test-file order."""
    fh.write("actual,predicted\n")
    line = f"{_FLOAT_FORMAT},{_FLOAT_FORMAT}\n"
    pairs = np.column_stack([actual.astype(np.float64), predicted.astype(np.float64)]).tolist()
    fh.writelines(line % tuple(pair) for pair in pairs)


# ----------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line arguments; every path defaults to its SageMaker container location."""
    parser = argparse.ArgumentParser(prog="evaluate.py", description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default="/opt/ml/processing/model", help=f"directory holding {MODEL_ARCHIVE}")
    parser.add_argument("--test-dir", default="/opt/ml/processing/test", help="test CSV(s): label first, no header")
    parser.add_argument("--output-dir", default="/opt/ml/processing/evaluation")
    return parser.parse_args(argv)


def _write_atomic(path: Path, write) -> Path:
    """Call ``write(fh)`` on a temp file beside ``path``; return the temp path (not yet renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(temp, "w", encoding="utf-8", newline="\n") as fh:
            write(fh)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return temp


def run(args: argparse.Namespace, staged: list[tuple[Path, Path]]) -> None:
    """Load the model, score the test rows, stage evaluation.json and predictions.csv."""
    started = time.perf_counter()
    archive = find_model_archive(Path(args.model_dir))
    booster = load_booster(read_model_bytes(archive), archive)
    expected_features = booster.num_features()
    log(f"loaded {archive} ({expected_features} features)")

    files = list_test_files(Path(args.test_dir))
    parts = []
    for path in files:
        values = read_test_csv(path)
        if values.shape[1] - 1 != expected_features:
            raise BadInput(f"{path}: has {values.shape[1] - 1} feature columns after the label, "
                           f"but the model expects {expected_features}")
        parts.append(values)
    data = parts[0] if len(parts) == 1 else np.concatenate(parts)
    log(f"read {len(data):,} test rows from {len(files)} file(s)")

    actual = data[:, 0]
    predicted = booster.predict(xgb.DMatrix(data[:, 1:]))
    metrics = regression_metrics(actual, predicted)
    log(f"mse={metrics['mse']['value']:.4f} rmse={metrics['rmse']['value']:.4f} "
        f"mae={metrics['mae']['value']:.4f} r2={metrics['r2']['value']:.4f}")

    output_dir = Path(args.output_dir)
    report = {"regression_metrics": metrics}
    evaluation = output_dir / "evaluation.json"
    staged.append((_write_atomic(evaluation, lambda fh: fh.write(json.dumps(report, indent=2) + "\n")), evaluation))

    predictions = output_dir / "predictions.csv"
    staged.append((_write_atomic(predictions, lambda fh: write_predictions(fh, actual, predicted)), predictions))
    log(f"done in {time.perf_counter() - started:.1f}s")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 2 bad input)."""
    args = parse_args(argv)
    staged: list[tuple[Path, Path]] = []
    try:
        run(args, staged)
        for temp, final in staged:
            os.replace(temp, final)
    except BadInput as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        print(f"{PROG}:{where} {exc.strerror or exc}", file=sys.stderr)
        return 2
    finally:
        for temp, _ in staged:
            temp.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
