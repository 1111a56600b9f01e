"""Abalone preprocessing for a SageMaker Processing job (scikit-learn image).

Reads raw abalone CSV rows, fits a feature transform on the training split (median-impute and
standardise the seven measurements, one-hot the sex code), and writes headerless CSVs with the
label first: ``train.csv``, ``validation.csv``, ``test.csv`` (70/15/15, fixed seed), plus
``batch.csv`` (features only) when unlabelled batch rows are given.

This file is uploaded alone into the container: it imports nothing from the airsage repo, only
the standard library, numpy, pandas and scikit-learn. Every path is an argument whose default
is the container path.

Multi-host jobs: every host receives the same input (FullyReplicated), computes the same split
and fits the same transform, then writes only its own share of each split under a host-suffixed
name (``train-algo-2.csv``). The union of all hosts' files equals the single-host output, the
scaling is identical on every host, and the costly part (transform and CSV writing) is divided.

Exit status: 0 on success, 2 on bad input with one line on stderr naming the file, the row
(1-based line number in the file, header included) and the column. No output file is left
behind on failure: everything is written under temporary names and renamed at the very end.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import re
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

PROG = "preprocess"
FEATURE_COLUMNS = (
    "sex", "length", "diameter", "height",
    "whole_weight", "shucked_weight", "viscera_weight", "shell_weight",
)
NUMERIC_FEATURES = FEATURE_COLUMNS[1:]
LABEL_COLUMN = "rings"
LABELLED_COLUMNS = (*FEATURE_COLUMNS, LABEL_COLUMN)
# Fixed order so the one-hot block is always three columns (F, I, M), whichever codes a
# dataset happens to contain: the model's input width must not depend on the data.
SEX_CODES = ("F", "I", "M")
SPLIT_PERCENT = (70, 15, 15)
MIN_ROWS_TO_SPLIT = 7  # smallest n with n*15//100 >= 1, so every split gets a row

_READ_CHUNK_ROWS = 50_000
_WRITE_CHUNK_ROWS = 25_000
_FLOAT_FORMAT = "%.6g"  # float32 carries ~7 significant digits; 6 keeps files small and exact enough


class BadInput(Exception):
    """Input the script cannot use; the message is the one line shown to the user."""


def log(message: str) -> None:
    """Progress line on stdout (collected into the job's CloudWatch log)."""
    print(f"{PROG}: {message}", flush=True)


# ----------------------------------------------------------------------------- reading


def list_csv_files(location: Path, what: str) -> list[Path]:
    """The CSV file ``location`` names, or every ``*.csv`` below it, sorted for determinism."""
    if location.is_file():
        return [location]
    if not location.is_dir():
        raise BadInput(f"{what} {location} does not exist")
    # rglob: an S3Prefix input may arrive as nested keys (e.g. ds=2024-01-01/abalone.csv).
    files = sorted(p for p in location.rglob("*.csv") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise BadInput(f"{what} {location} holds no .csv files")
    return files


def _first_line(path: Path) -> str | None:
    """The first non-blank line of ``path``, or None when the file has no content."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.strip():
                return line.rstrip("\r\n")
    return None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def detect_header(path: Path, columns: tuple[str, ...]) -> list[str] | None:
    """The normalised column names of ``path``'s header row, or None for a headerless file.

    A header is recognised by a non-numeric ``length`` field (the second column) in the first
    row and must name every column once (any order, any case); a headerless file must have
    exactly ``len(columns)`` fields per row.
    """
    first = _first_line(path)
    if first is None:
        raise BadInput(f"{path}: empty file")
    fields = [f.strip() for f in first.split(",")]
    expected = ", ".join(columns)
    if len(fields) > 1 and fields[1] and not _is_number(fields[1]):
        names = [f.strip("\"'").lower() for f in fields]
        if fields[0] in SEX_CODES and not set(names) & set(columns):
            # A data row with a bad length, not a header: say so rather than "missing columns".
            raise BadInput(f"{path} row 1 column 'length': not a number: {fields[1]!r}")
        missing = [c for c in columns if c not in names]
        if missing:
            raise BadInput(f"{path}: missing column(s) {', '.join(map(repr, missing))} in header; expected {expected}")
        unexpected = [n for n in names if n not in columns]
        if unexpected:
            raise BadInput(f"{path}: unexpected column(s) {', '.join(map(repr, unexpected))} in header; expected {expected}")
        if len(names) != len(set(names)):
            raise BadInput(f"{path}: duplicate column names in header")
        return names
    if len(fields) != len(columns):
        raise BadInput(f"{path} row 1: has {len(fields)} columns, expected {len(columns)} ({expected})")
    return None


def _count_lines(path: Path) -> int:
    """Upper bound of the rows in ``path``: its line count (a last line without newline counts)."""
    lines = 0
    last = b"\n"
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            lines += block.count(b"\n")
            last = block[-1:]
    return lines + (last != b"\n")


def _csv_chunks(path: Path, **read_kwargs):
    """``pd.read_csv`` chunks of ``path``, closing the file however the loop ends.

    Blank lines are kept as all-empty rows so that row numbers match file lines. (The reader
    is a context manager only from pandas 1.2; older sklearn images ship pandas 1.1.)
    """
    reader = pd.read_csv(path, chunksize=_READ_CHUNK_ROWS, skip_blank_lines=False, **read_kwargs)
    try:
        yield from reader
    finally:
        reader.close()


def _csv_layout(header: list[str] | None, columns: tuple[str, ...]) -> tuple[dict, int]:
    """read_csv arguments naming the columns, and the file line of the first data row."""
    if header is not None:
        return {"header": 0, "names": header}, 2  # names= replaces the file's spelling
    return {"header": None, "names": list(columns)}, 1


def _find_non_numeric(path: Path, header: list[str] | None, columns: tuple[str, ...],
                      numeric: tuple[str, ...]) -> str:
    """Slow second pass, run only after the fast parser failed: locate the first bad cell."""
    read_kwargs, first_line_of_data = _csv_layout(header, columns)
    # Same NA spellings as the fast pass ("", "NA", "NaN", ...): those are missing, not bad.
    for chunk in _csv_chunks(path, dtype=str, **read_kwargs):
        best: tuple[int, str, str] | None = None
        for column in numeric:
            text = chunk[column].astype(object)
            stripped = text.str.strip()
            present = (stripped.notna() & (stripped != "")).to_numpy()
            parsed = pd.to_numeric(stripped.where(present), errors="coerce")
            bad = np.flatnonzero(parsed.isna().to_numpy() & present)
            if bad.size and (best is None or bad[0] < best[0]):
                best = (int(bad[0]), column, str(text.iloc[bad[0]]))
        if best is not None:
            row = int(chunk.index[best[0]]) + first_line_of_data
            return f"{path} row {row} column '{best[1]}': not a number: {best[2]!r}"
    return f"{path}: not a number in one of the columns {', '.join(numeric)}"


def read_abalone_csvs(files: list[Path], labelled: bool) -> tuple[np.ndarray, np.ndarray]:
    """Parse and validate abalone rows from ``files``.

    Returns ``(values, sex_index)``: a float32 array with the seven measurements (and the label
    as an eighth column when ``labelled``) and an int8 array indexing ``SEX_CODES``. Arrays are
    preallocated from a line count and filled chunk by chunk, so the peak is the result plus
    one chunk rather than pandas' usual several copies of the whole file.
    """
    columns = LABELLED_COLUMNS if labelled else FEATURE_COLUMNS
    numeric = columns[1:]
    capacity = sum(_count_lines(f) for f in files)
    values = np.empty((capacity, len(numeric)), dtype=np.float32)
    sex_index = np.empty(capacity, dtype=np.int8)
    dtypes = {c: np.float32 for c in numeric}
    dtypes["sex"] = "category"
    filled = 0
    for path in files:
        header = detect_header(path, columns)
        read_kwargs, first_line_of_data = _csv_layout(header, columns)
        rows_in_file = 0
        try:
            for chunk in _csv_chunks(path, dtype=dtypes, engine="c", **read_kwargs):
                rows = _validated_chunk(path, chunk, numeric, first_line_of_data)
                n = len(rows[0])
                values[filled:filled + n] = rows[0]
                sex_index[filled:filled + n] = rows[1]
                filled += n
                rows_in_file += n
        except pd.errors.ParserError as exc:
            match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
            if match:
                expected, line, saw = match.groups()
                raise BadInput(f"{path} row {line}: has {saw} columns, expected {expected} "
                               f"({', '.join(columns)})") from None
            raise BadInput(f"{path}: not a readable CSV file: {str(exc).strip().splitlines()[-1]}") from None
        except UnicodeDecodeError:
            raise BadInput(f"{path}: not a text CSV file (undecodable bytes)") from None
        except (ValueError, TypeError):
            # The fast float32 parser says only "could not convert"; find the row and column.
            raise BadInput(_find_non_numeric(path, header, columns, numeric)) from None
        if rows_in_file == 0:
            raise BadInput(f"{path}: empty file: no data rows")
    return values[:filled], sex_index[:filled]


def _validated_chunk(path: Path, chunk: pd.DataFrame, numeric: tuple[str, ...],
                     first_line_of_data: int) -> tuple[np.ndarray, np.ndarray]:
    """Check one parsed chunk (sex codes, label present, finite numbers); return its arrays."""
    numbers = chunk[list(numeric)].to_numpy(dtype=np.float32)
    sex = chunk["sex"]
    categories = list(sex.cat.categories)
    codes = sex.cat.codes.to_numpy()
    lines = chunk.index.to_numpy() + first_line_of_data
    blank = (codes < 0) & np.isnan(numbers).all(axis=1)
    if blank.any():  # blank lines (or lines of bare commas) carry no data
        keep = ~blank
        numbers, codes, lines = numbers[keep], codes[keep], lines[keep]

    lookup = np.array([SEX_CODES.index(c) if c in SEX_CODES else -1 for c in categories] + [-1], dtype=np.int8)
    index = lookup[codes]  # code -1 (missing) hits the trailing -1
    bad = np.flatnonzero(index < 0)
    if bad.size:
        i = bad[0]
        value = "" if codes[i] < 0 else categories[codes[i]]
        raise BadInput(f"{path} row {lines[i]} column 'sex': unknown sex code {value!r}; "
                       f"expected one of {', '.join(SEX_CODES)}")
    if numeric[-1] == LABEL_COLUMN:
        missing = np.flatnonzero(np.isnan(numbers[:, -1]))
        if missing.size:
            raise BadInput(f"{path} row {lines[missing[0]]} column '{LABEL_COLUMN}': missing label")
    infinite = np.argwhere(np.isinf(numbers))
    if infinite.size:
        i, j = infinite[0]
        raise BadInput(f"{path} row {lines[i]} column '{numeric[j]}': not a finite number")
    return numbers, index


# ----------------------------------------------------------------------------- transform


def _numeric_pipeline() -> Pipeline:
    """Median-impute then standardise one measurement column."""
    imputer_kwargs = {"strategy": "median"}
    if "keep_empty_features" in inspect.signature(SimpleImputer).parameters:
        # An all-missing column must stay a column, or the model's input width would change.
        imputer_kwargs["keep_empty_features"] = True
    return Pipeline([("impute", SimpleImputer(**imputer_kwargs)), ("scale", StandardScaler())])


def _sex_encoder() -> OneHotEncoder:
    """One-hot encoder of the sex code, always three columns F, I, M."""
    encoder_kwargs = {"categories": [list(SEX_CODES)], "handle_unknown": "ignore", "dtype": np.float32}
    # scikit-learn renamed `sparse` to `sparse_output` in 1.2; SageMaker images span both.
    if "sparse_output" in inspect.signature(OneHotEncoder).parameters:
        encoder_kwargs["sparse_output"] = False
    else:
        encoder_kwargs["sparse"] = False
    return OneHotEncoder(**encoder_kwargs)


class FeatureTransform:
    """Median-impute + standardise the measurements and one-hot the sex code.

    Output columns: the seven measurements (in ``NUMERIC_FEATURES`` order), then sex F, I, M.
    Each measurement has its own impute+scale pipeline. The result is what a ColumnTransformer
    over all seven columns would give (both steps work column by column), but a ColumnTransformer
    fit materialises the transformed training set and SimpleImputer's median makes several
    float64 copies of its input: on a million rows that alone doubled the peak memory.
    """

    width = len(NUMERIC_FEATURES) + len(SEX_CODES)

    def __init__(self) -> None:
        self.numeric = [_numeric_pipeline() for _ in NUMERIC_FEATURES]
        self.sex = _sex_encoder()

    def fit(self, values: np.ndarray, sex_index: np.ndarray, rows: np.ndarray) -> FeatureTransform:
        """Fit on ``rows`` of ``values`` (measurement columns first) and ``sex_index``."""
        for column, pipeline in enumerate(self.numeric):
            pipeline.fit(values[rows, column:column + 1])
        self.sex.fit(_sex_strings(sex_index[rows]))
        return self

    def transform_into(self, out: np.ndarray, values: np.ndarray, sex_index: np.ndarray, rows: np.ndarray) -> None:
        """Write the features of ``rows`` into ``out`` (shape ``(len(rows), width)``)."""
        for column, pipeline in enumerate(self.numeric):
            out[:, column] = pipeline.transform(values[rows, column:column + 1])[:, 0]
        out[:, len(self.numeric):] = self.sex.transform(_sex_strings(sex_index[rows]))


def _sex_strings(sex_index: np.ndarray) -> np.ndarray:
    """The sex codes of ``sex_index`` as a one-column object array, the encoder's input."""
    return np.asarray(SEX_CODES, dtype=object)[sex_index].reshape(-1, 1)


def split_rows(n_rows: int, seed: int) -> dict[str, np.ndarray]:
    """Shuffled row indices for train/validation/test, 70/15/15; the same for the same seed."""
    # int32 halves the index memory; the shuffle is the same as permuting an int64 range.
    index_type = np.int32 if n_rows < 2**31 else np.int64
    order = np.random.default_rng(seed).permutation(np.arange(n_rows, dtype=index_type))
    n_train = n_rows * SPLIT_PERCENT[0] // 100
    n_validation = n_rows * SPLIT_PERCENT[1] // 100
    return {
        "train": order[:n_train],
        "validation": order[n_train:n_train + n_validation],
        "test": order[n_train + n_validation:],
    }


# ----------------------------------------------------------------------------- writing


class StagedOutputs:
    """Files written under temporary names and renamed together only when all succeeded."""

    def __init__(self) -> None:
        self._staged: list[tuple[Path, Path]] = []

    def open(self, final: Path):
        """Open a temp file beside ``final`` for writing text."""
        final.parent.mkdir(parents=True, exist_ok=True)
        temp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
        self._staged.append((temp, final))
        return open(temp, "w", encoding="utf-8", newline="\n")

    def commit(self) -> None:
        """Give every staged file its final name."""
        for temp, final in self._staged:
            os.replace(temp, final)
        self._staged.clear()

    def discard(self) -> None:
        """Remove every staged file (after a failure)."""
        for temp, _ in self._staged:
            temp.unlink(missing_ok=True)
        self._staged.clear()


def write_transformed(fh, transform: FeatureTransform, values: np.ndarray, sex_index: np.ndarray,
                      rows: np.ndarray, with_label: bool) -> None:
    """Transform ``rows`` chunk by chunk and append them as headerless CSV (label first)."""
    offset = 1 if with_label else 0
    width = offset + transform.width
    # Row-wise %-formatting of Python floats is ~3x faster than DataFrame.to_csv with
    # float_format, and np.savetxt is slower still.
    line_format = ",".join([_FLOAT_FORMAT] * width)
    for start in range(0, len(rows), _WRITE_CHUNK_ROWS):
        chunk_rows = rows[start:start + _WRITE_CHUNK_ROWS]
        block = np.empty((len(chunk_rows), width), dtype=np.float32)
        if with_label:
            block[:, 0] = values[chunk_rows, -1]
        transform.transform_into(block[:, offset:], values, sex_index, chunk_rows)
        fh.write("\n".join(line_format % tuple(row) for row in block.tolist()))
        fh.write("\n")


# ----------------------------------------------------------------------------- hosts


def read_host_share(resource_config: Path) -> tuple[int, int, str | None]:
    """``(host_rank, host_count, current_host)`` from SageMaker's resourceconfig.json.

    A missing file means a single host (the local runner and single-instance jobs).
    """
    if not resource_config.is_file():
        return 0, 1, None
    try:
        config = json.loads(resource_config.read_text(encoding="utf-8"))
        current = config["current_host"]
        hosts = sorted(config["hosts"])  # every host sorts the same list the same way
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BadInput(f"{resource_config}: not a valid resource config ({exc.__class__.__name__}: {exc}); "
                       'expected {"current_host": ..., "hosts": [...]}') from None
    if not isinstance(current, str) or current not in hosts:
        raise BadInput(f"{resource_config}: current_host {current!r} is not in hosts {hosts}")
    return hosts.index(current), len(hosts), current


def output_name(stem: str, host: str | None, host_count: int) -> str:
    """``train.csv`` on one host, ``train-algo-2.csv`` when several hosts share the job."""
    return f"{stem}-{host}.csv" if host_count > 1 else f"{stem}.csv"


# ----------------------------------------------------------------------------- main


def _peak_rss_mb() -> float:
    """This process's peak resident memory so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line arguments; every path defaults to its SageMaker container location."""
    parser = argparse.ArgumentParser(prog="preprocess.py", description=__doc__.splitlines()[0])
    parser.add_argument("--input-dir", default="/opt/ml/processing/input",
                        help="labelled abalone CSV file, or a directory of them")
    parser.add_argument("--batch-input-dir", default="/opt/ml/processing/batch-input",
                        help="unlabelled rows to transform for batch scoring; skipped if absent")
    parser.add_argument("--train-dir", default="/opt/ml/processing/train")
    parser.add_argument("--validation-dir", default="/opt/ml/processing/validation")
    parser.add_argument("--test-dir", default="/opt/ml/processing/test")
    parser.add_argument("--batch-dir", default="/opt/ml/processing/batch")
    parser.add_argument("--resource-config", default="/opt/ml/config/resourceconfig.json")
    parser.add_argument("--seed", type=int, default=42, help="seed of the train/validation/test shuffle")
    return parser.parse_args(argv)


def run(args: argparse.Namespace, outputs: StagedOutputs) -> None:
    """Read, validate, split, fit, transform; stage every output file in ``outputs``."""
    started = time.perf_counter()
    host_rank, host_count, host = read_host_share(Path(args.resource_config))
    if host_count > 1:
        log(f"host {host} ({host_rank + 1} of {host_count}) writes its share of each split")

    input_location = Path(args.input_dir)
    files = list_csv_files(input_location, "input")
    values, sex_index = read_abalone_csvs(files, labelled=True)
    n_rows = len(values)
    log(f"read {n_rows:,} rows from {len(files)} file(s) in {time.perf_counter() - started:.1f}s")
    if n_rows < MIN_ROWS_TO_SPLIT:
        raise BadInput(f"{input_location}: too few rows to split {'/'.join(map(str, SPLIT_PERCENT))}: "
                       f"found {n_rows}, need at least {MIN_ROWS_TO_SPLIT}")

    batch_location = Path(args.batch_input_dir)
    batch = None
    if batch_location.exists() and (batch_location.is_file() or any(batch_location.rglob("*.csv"))):
        batch_files = list_csv_files(batch_location, "batch input")
        batch = read_abalone_csvs(batch_files, labelled=False)
        log(f"read {len(batch[0]):,} batch rows from {len(batch_files)} file(s)")
    else:
        log(f"no batch CSV at {batch_location}; skipping batch output")

    splits = split_rows(n_rows, args.seed)
    log("split " + " ".join(f"{name}={len(rows):,}" for name, rows in splits.items()))

    fit_started = time.perf_counter()
    transform = FeatureTransform().fit(values, sex_index, splits["train"])
    log(f"fitted the feature transform on the training rows in {time.perf_counter() - fit_started:.1f}s")

    targets = {"train": Path(args.train_dir), "validation": Path(args.validation_dir), "test": Path(args.test_dir)}
    for name, rows in splits.items():
        share = np.array_split(rows, host_count)[host_rank]
        write_started = time.perf_counter()
        path = targets[name] / output_name(name, host, host_count)
        with outputs.open(path) as fh:
            write_transformed(fh, transform, values, sex_index, share, with_label=True)
        log(f"wrote {len(share):,} rows to {path} in {time.perf_counter() - write_started:.1f}s")
    del values, sex_index

    if batch is not None:
        batch_values, batch_sex = batch
        share = np.array_split(np.arange(len(batch_values)), host_count)[host_rank]
        path = Path(args.batch_dir) / output_name("batch", host, host_count)
        with outputs.open(path) as fh:
            write_transformed(fh, transform, batch_values, batch_sex, share, with_label=False)
        log(f"wrote {len(share):,} batch rows to {path}")
    log(f"done in {time.perf_counter() - started:.1f}s; peak memory {_peak_rss_mb():.0f} MB")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (0 ok, 2 bad input)."""
    args = parse_args(argv)
    outputs = StagedOutputs()
    try:
        run(args, outputs)
        outputs.commit()
    except BadInput as exc:
        outputs.discard()
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        outputs.discard()
        where = f" {exc.filename}" if exc.filename else ""
        print(f"{PROG}:{where} {exc.strerror or exc}", file=sys.stderr)
        return 2
    except BaseException:
        outputs.discard()
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
