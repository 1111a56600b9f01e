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
the standard library, numpy and xgboost (no pandas: importing it alone cost ~75 MB, more than
the test split itself). Every path is an argument whose default is
the container path. Exit status: 0 on success, 2 on bad input with one line on stderr naming
the file, the row and the column. Outputs are written under temporary names and renamed only
when both are complete.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
import sys
import tarfile
import time
import warnings
import zlib
from pathlib import Path

import numpy as np

if __name__ == "__main__":
    # xgboost imports scikit-learn (and most of scipy, ~130 MB) only for its sklearn wrappers,
    # which this script never uses; without it the import is 59 MB instead of 187 MB.
    sys.modules.setdefault("sklearn", None)

import xgboost as xgb  # noqa: E402

PROG = "evaluate"
MODEL_ARCHIVE = "model.tar.gz"
MODEL_MEMBER = "xgboost-model"
_FLOAT_FORMAT = "%.6g"
_READ_BLOCK_BYTES = 1 << 20
# pandas' default NA spellings: such cells are missing values (XGBoost's NaN), not bad input.
NA_VALUES = frozenset({
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
})
_NA_CELL = re.compile(rb"(?<=,)[ \t\r]*(?:" + b"|".join(
    re.escape(v.encode()) for v in sorted(NA_VALUES, key=len, reverse=True) if v) + rb")?[ \t\r]*(?=,)")


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
        loaded = pickle.loads(data)  # noqa: S301 - own training output (see above)
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


def _line_blocks(fh):
    """Blocks of whole lines (each ending with a newline) of about ``_READ_BLOCK_BYTES``."""
    rest = b""
    while True:
        block = fh.read(_READ_BLOCK_BYTES)
        if not block:
            if rest:
                yield rest + b"\n"
            return
        data = rest + block if rest else block
        cut = data.rfind(b"\n") + 1
        rest = data[cut:]
        if cut:
            yield data[:cut]


def _parse_fast(block: bytes, width: int | None) -> np.ndarray | None:
    """A block of numeric CSV lines as a float32 array in one ``np.fromstring`` call, else None.

    Every line must have the same number of commas (and ``width - 1`` when ``width`` is known);
    missing cells (empty or NA spellings) become NaN. Anything else (blank lines, bad cells)
    returns None and the caller takes the line-by-line path, which names the bad cell.
    """
    raw = np.frombuffer(block, dtype=np.uint8)
    ends = np.flatnonzero(raw == ord("\n"))
    per_line = np.diff(np.searchsorted(np.flatnonzero(raw == ord(",")), ends), prepend=0)
    columns = int(per_line[0]) + 1
    if (width is not None and columns != width) or not (per_line == columns - 1).all():
        return None
    text = raw.copy()
    text[ends] = ord(",")
    expected = len(ends) * columns
    for attempt in (text[:-1].tobytes(), None):
        if attempt is None:
            attempt = _NA_CELL.sub(b"nan", b"," + text.tobytes())[1:-1]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # numpy < 2 warns, numpy 2 raises
            try:
                numbers = np.fromstring(attempt, dtype=np.float32, sep=",")
            except ValueError:
                continue
        if numbers.size == expected:
            return numbers.reshape(len(ends), columns)
    return None


_UTF8_BOM = b"\xef\xbb\xbf"


def skip_bom(fh, path: Path) -> None:
    """Position a binary file after a UTF-8 byte-order mark; BadInput naming UTF-16/UTF-32 or binary files."""
    head = fh.read(4096)
    if head.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        raise BadInput(f"{path}: file is UTF-32 encoded; save it as UTF-8")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or head[1:200:2].count(0) > len(head[1:200:2]) // 2 > 0 \
            or head[0:200:2].count(0) > len(head[0:200:2]) // 2 > 0:
        raise BadInput(f"{path}: file is UTF-16 encoded; save it as UTF-8")
    if b"\x00" in head:
        raise BadInput(f"{path}: file is binary, not CSV text")
    fh.seek(len(_UTF8_BOM) if head.startswith(_UTF8_BOM) else 0)


def _parse_slow(path: Path, block: bytes, first_row: int, width: int | None) -> np.ndarray:
    """Parse a block line by line; raises BadInput naming the first bad row (and column)."""
    try:
        lines = block.decode("utf-8").split("\n")[:-1]
    except UnicodeDecodeError as exc:
        row = first_row + block.count(b"\n", 0, exc.start)
        raise BadInput(f"{path} row {row}: not UTF-8 text (byte 0x{block[exc.start]:02x}); "
                       "save the file as UTF-8") from None
    rows = []
    for offset, line in enumerate(lines):
        row = first_row + offset
        if not line.strip():
            continue
        fields = line.rstrip("\r").split(",")
        if width is not None and len(fields) != width:
            raise BadInput(f"{path} row {row}: has {len(fields)} columns, expected {width}")
        width = len(fields)
        values = []
        for column, text in enumerate(fields, start=1):
            stripped = text.strip()
            try:
                if "_" in stripped:
                    raise ValueError
                values.append(float("nan") if stripped in NA_VALUES else float(stripped))
            except ValueError:
                raise BadInput(f"{path} row {row} column {column}: not a number: {text!r}") from None
        rows.append(values)
    return np.array(rows, dtype=np.float32).reshape(len(rows), width or 0)


def read_test_csv(path: Path) -> np.ndarray:
    """A headerless, label-first test CSV as a float32 array; validated.

    Read block by block into an array preallocated from the line count, so the peak is the
    result plus one block; row numbers in errors are the file's line numbers.
    """
    if path.stat().st_size == 0:
        raise BadInput(f"{path}: empty file")
    with open(path, "rb") as fh:
        capacity = sum(block.count(b"\n") for block in iter(lambda: fh.read(1 << 20), b"")) + 1
    values = None
    filled, row = 0, 1
    with open(path, "rb") as fh:
        skip_bom(fh, path)
        for block in _line_blocks(fh):
            width = None if values is None else values.shape[1]
            parsed = _parse_fast(block, width)
            if parsed is None:
                parsed = _parse_slow(path, block, row, width)
            row += block.count(b"\n")
            if not len(parsed):
                continue
            if values is None:
                values = np.empty((capacity, parsed.shape[1]), dtype=np.float32)
            values[filled:filled + len(parsed)] = parsed
            filled += len(parsed)
    if values is None:
        raise BadInput(f"{path}: empty file")
    values = values[:filled]
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
