"""Emulation of SageMaker's built-in XGBoost algorithm container: ``train`` and ``predict`` (batch transform).

Run by the local runner as a standalone subprocess (it imports nothing from this repository), so its
memory is released when the job ends and a stop request can kill it like any other job.

    python builtin_xgboost.py train --config job.json
    python builtin_xgboost.py predict --config job.json
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
import tarfile
import tempfile
import warnings
from pathlib import Path

# Hyperparameters the SageMaker container consumes itself; xgboost would reject or ignore them.
_CONTAINER_ONLY = {"num_round", "silent", "csv_weights", "save_model_on_termination", "early_stopping_rounds",
                   "_kfold", "_num_cv_round", "_tuning_objective_metric", "use_dask_gpu_training"}
_OBJECTIVE_ALIASES = {"reg:linear": "reg:squarederror"}
_BLOCK_BYTES = 1 << 19  # ~6k rows of 11 columns per parse: small temporaries


def typed_hyperparameters(raw: dict[str, str]) -> dict:
    """SageMaker passes every hyperparameter as a string; xgboost wants ints, floats and strings."""
    params: dict = {}
    for key, value in raw.items():
        if key in _CONTAINER_ONLY or key.startswith("sagemaker_"):
            continue
        params[key] = _typed(value)
    objective = params.get("objective")
    if objective in _OBJECTIVE_ALIASES:
        params["objective"] = _OBJECTIVE_ALIASES[objective]
    if isinstance(params.get("eval_metric"), str) and "," in params["eval_metric"]:
        params["eval_metric"] = params["eval_metric"].split(",")
    return params


def _typed(value):
    if not isinstance(value, str):
        return value
    text = value.strip().strip('"')
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def _data_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file() and not p.name.startswith("."))


def _line_blocks(fh):
    """Blocks of whole lines (each ending with a newline) of about ``_BLOCK_BYTES``."""
    rest = b""
    while True:
        block = fh.read(_BLOCK_BYTES)
        if not block:
            if rest:
                yield rest + b"\n"
            return
        data = rest + block if rest else block
        cut = data.rfind(b"\n") + 1
        rest = data[cut:]
        if cut:
            yield data[:cut]


def _parse_block(block: bytes, width: int | None):
    """A block of numeric CSV lines as float32 rows: one ``np.fromstring`` call in the common case.

    Newlines become commas so the whole block is one comma-separated list; per-line comma counts
    guard the shape. Blank lines or anything fromstring refuses go through ``np.loadtxt``, whose
    error names the problem.
    """
    import numpy as np

    raw = np.frombuffer(block, dtype=np.uint8)
    ends = np.flatnonzero(raw == 10)
    per_line = np.diff(np.searchsorted(np.flatnonzero(raw == 44), ends), prepend=0)
    columns = int(per_line[0]) + 1
    if (per_line == columns - 1).all() and (ends[1:] - ends[:-1] > 1).all() and ends[0] > 0:
        text = raw.copy()
        text[ends] = 44
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # numpy < 2 warns, numpy 2 raises
            try:
                numbers = np.fromstring(text[:-1].tobytes(), dtype=np.float32, sep=",")
            except ValueError:
                numbers = None
        if numbers is not None and numbers.size == len(ends) * columns:
            block_rows = numbers.reshape(len(ends), columns)
        else:
            block_rows = None
    else:
        block_rows = None
    if block_rows is None:
        lines = [line for line in block.decode("utf-8", errors="replace").splitlines() if line.strip()]
        block_rows = np.loadtxt(lines, delimiter=",", dtype=np.float32, ndmin=2)
    if width is not None and block_rows.shape[0] and block_rows.shape[1] != width:
        raise SystemExit(f"rows have {block_rows.shape[1]} columns, earlier rows had {width}")
    return block_rows


_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def _skip_bom(fh, path: Path) -> None:
    """Past a UTF-8 byte-order mark (Excel's "CSV UTF-8"); SystemExit naming UTF-16 files."""
    start = fh.read(3)
    if start.startswith(_UTF16_BOMS):
        raise SystemExit(f"{path}: file is UTF-16 encoded; save it as UTF-8")
    if start != b"\xef\xbb\xbf":
        fh.seek(0)


def iter_csv_blocks(path: Path):
    """Float32 row blocks of a headerless numeric CSV file, about ``_BLOCK_BYTES`` of text at a time."""
    width = None
    with open(path, "rb") as fh:
        _skip_bom(fh, path)
        for raw in _line_blocks(fh):
            try:
                block = _parse_block(raw, width)
            except ValueError as exc:
                raise SystemExit(f"{path}: not a numeric headerless CSV ({exc})") from None
            if not block.shape[0]:
                continue
            width = block.shape[1]
            yield block


def load_csv(files: list[Path], label_first: bool):
    """Headerless numeric CSV files as float32 ``(features, labels)``.

    Filled block by block into arrays preallocated from the line count: the data is held once
    (no list of blocks, no concatenated copy, no contiguous re-copies of the two parts).
    """
    import numpy as np

    capacity = 0
    for file in files:
        with open(file, "rb") as fh:
            capacity += sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b"")) + 1
    offset = 1 if label_first else 0
    features = labels = None
    filled = 0
    for file in files:
        for block in iter_csv_blocks(file):
            if features is None:
                if block.shape[1] <= offset:
                    raise SystemExit(f"{file}: rows have {block.shape[1]} column; expected the label then the features")
                features = np.empty((capacity, block.shape[1] - offset), dtype=np.float32)
                labels = np.empty(capacity, dtype=np.float32) if label_first else None
            elif block.shape[1] != features.shape[1] + offset:
                raise SystemExit(f"{file}: rows have {block.shape[1]} columns, earlier rows had {features.shape[1] + offset}")
            n = len(block)
            if label_first:
                labels[filled:filled + n] = block[:, 0]
            features[filled:filled + n] = block[:, offset:]
            filled += n
    if features is None:
        raise SystemExit(f"no CSV rows found in {', '.join(str(f) for f in files) or 'the channel'}")
    return features[:filled], (labels[:filled] if label_first else None)


def train(config: dict) -> None:
    """Train on the 'train' channel (validation as eval set) and write xgboost-model into the model dir."""
    import xgboost as xgb

    channels = {name: Path(path) for name, path in config["channels"].items()}
    content_type = config.get("content_type", "text/csv")
    if not content_type.startswith("text/csv"):
        raise SystemExit(f"content type {content_type!r} is not supported locally (text/csv only)")
    if "train" not in channels:
        raise SystemExit("the built-in XGBoost algorithm needs a 'train' channel")
    raw = config.get("hyperparameters", {})
    params = typed_hyperparameters(raw)
    rounds = int(_typed(raw.get("num_round", "100")))
    max_bin = params.get("max_bin")
    # QuantileDMatrix keeps only the quantised features (a byte per cell); the float arrays are
    # freed before training starts.
    features, labels = load_csv(_data_files(channels["train"]), label_first=True)
    dtrain = xgb.QuantileDMatrix(features, label=labels, max_bin=max_bin)
    del features, labels
    evals = [(dtrain, "train")]
    if "validation" in channels:
        features, labels = load_csv(_data_files(channels["validation"]), label_first=True)
        evals.append((xgb.QuantileDMatrix(features, label=labels, ref=dtrain, max_bin=max_bin), "validation"))
        del features, labels
    history: dict = {}
    early = raw.get("early_stopping_rounds")
    booster = xgb.train(params, dtrain, num_boost_round=rounds, evals=evals, evals_result=history,
                        early_stopping_rounds=int(_typed(early)) if early else None, verbose_eval=10)
    model_dir = Path(config["model_dir"])
    model_dir.mkdir(parents=True, exist_ok=True)
    target = model_dir / "xgboost-model"
    if config.get("pickle_model"):
        # The 0.90/1.0 containers pickled the Booster, and scripts written for them unpickle it.
        with open(target, "wb") as fh:
            pickle.dump(booster, fh)
    else:
        # Serialised in memory, written by Python: a full disk is an OSError naming the file and
        # "No space left on device", not a C++ stack trace from xgboost's own writer.
        data = booster.save_raw(raw_format="ubj")
        with tempfile.TemporaryDirectory(dir=model_dir) as tmp:
            native = Path(tmp) / "xgboost-model.ubj"
            native.write_bytes(data)
            os.replace(native, target)
    metrics = [{"MetricName": f"{data}:{metric}", "Value": float(values[-1])}
               for data, by_metric in history.items() for metric, values in by_metric.items()]
    Path(config["metrics_file"]).write_text(json.dumps(metrics))


def load_booster(model_tar: Path):
    """The Booster inside a SageMaker model.tar.gz (pickled or native xgboost format)."""
    import xgboost as xgb

    with tarfile.open(model_tar) as tar:
        member = next((m for m in tar.getmembers() if Path(m.name).name == "xgboost-model"), None)
        if member is None:
            raise SystemExit(f"{model_tar}: no xgboost-model file inside")
        data = tar.extractfile(member).read()
    if data[:1] == b"\x80":  # pickle protocol marker
        return pickle.loads(data)  # noqa: S301 - our own training output, as the 1.0 container does
    booster = xgb.Booster()
    booster.load_model(bytearray(data))
    return booster


def predict(config: dict) -> None:
    """Batch transform: one ``<name>.out`` per input file, one prediction per line (SplitType Line)."""
    import xgboost as xgb

    booster = load_booster(Path(config["model_tar"]))
    for item in config["items"]:
        source, target = Path(item["input"]), Path(item["output"])
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "w") as out:
            for block in iter_csv_blocks(source):
                predictions = booster.predict(xgb.DMatrix(block)).reshape(len(block), -1)
                out.writelines(",".join(repr(float(v)) for v in row) + "\n" for row in predictions)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point of the emulated container."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["train", "predict"])
    parser.add_argument("--config", required=True, help="job description JSON written by the runner")
    args = parser.parse_args(argv)
    try:
        config = json.loads(Path(args.config).read_text())
        (train if args.mode == "train" else predict)(config)
    except OSError as exc:  # a full disk, a vanished file: one line naming the path and the condition
        where = f"{exc.filename}: " if exc.filename else ""
        raise SystemExit(f"{where}{exc.strerror or exc}") from None
    except Exception as exc:
        if type(exc).__name__ != "XGBoostError":
            raise
        # xgboost appends a native stack trace; its first line is the message.
        raise SystemExit(f"xgboost: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}") from None
    return 0


def _without_scipy() -> None:
    """Stand-ins for ``scipy``/``scipy.sparse``, which xgboost imports only to recognise sparse inputs.

    This emulation hands xgboost numpy arrays only, so every ``isinstance(data, scipy.sparse.*)``
    check is False with empty stand-in classes — and the job saves the ~28 MB and the second or so that
    importing scipy.sparse costs (it pulls in numpy.f2py), which at a million rows is a fifth of the
    training process's peak. Anything else from scipy raises AttributeError, loudly.
    """
    if "scipy" in sys.modules:
        return
    import types

    scipy = types.ModuleType("scipy", "stand-in: see builtin_xgboost._without_scipy")
    sparse = types.ModuleType("scipy.sparse", "stand-in: see builtin_xgboost._without_scipy")
    for name in ("spmatrix", "sparray", "csr_matrix", "csc_matrix", "coo_matrix", "csr_array", "csc_array", "coo_array"):
        setattr(sparse, name, type(name, (), {}))
    sparse.issparse = lambda value: False
    scipy.__path__ = []
    scipy.sparse = sparse
    sys.modules.update({"scipy": scipy, "scipy.sparse": sparse})


if __name__ == "__main__":
    # xgboost imports scikit-learn (and with it most of scipy) only for its sklearn wrappers, which
    # the container emulation never uses: blocking it saves seconds and ~100 MB per job.
    sys.modules.setdefault("sklearn", None)
    _without_scipy()
    sys.exit(main())
