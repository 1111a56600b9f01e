"""Abalone-shaped synthetic data for scale tests (``python -m sm_pipeline make-data``).

The UCI file has 4,177 rows; benchmarks need millions. The generator below mimics the real
data's marginals and correlations closely enough that preprocessing and training behave as they
would on real rows (weights grow with the cube of length, rings follow shell weight, infants are
smaller), without copying any real row. Coefficients were fitted on ``data/abalone.csv``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from sm_pipeline.errors import InvalidInput
from sm_pipeline.storage_io import open_atomic

ABALONE_COLUMNS = (
    "sex", "length", "diameter", "height",
    "whole_weight", "shucked_weight", "viscera_weight", "shell_weight", "rings",
)

# Rows generated per chunk: bounds memory at a few MB whatever the total row count.
_CHUNK_ROWS = 100_000

_SEX_CODES = np.array(["M", "F", "I"])
_SEX_SHARE = (0.366, 0.313, 0.321)  # UCI proportions
_LENGTH_MEAN = np.array([0.561, 0.579, 0.428])  # indexed like _SEX_CODES
_LENGTH_STD = np.array([0.103, 0.086, 0.109])


def _abalone_chunk(rng: np.random.Generator, rows: int) -> dict[str, np.ndarray]:
    """One chunk of synthetic rows as columns, drawn from ``rng`` in a fixed order."""
    sex_index = rng.choice(3, size=rows, p=_SEX_SHARE)
    length = np.clip(rng.normal(_LENGTH_MEAN[sex_index], _LENGTH_STD[sex_index]), 0.075, 0.815)
    diameter = np.clip(0.815 * length - 0.019 + rng.normal(0.0, 0.016, rows), 0.055, 0.65)
    height = np.clip(0.288 * length - 0.012 + rng.normal(0.0, 0.012, rows), 0.0, 0.25)
    # Weight scales with volume, so log-weight is linear in log-length with slope ~3.
    whole = np.clip(np.exp(1.616 + 3.03 * np.log(length) + rng.normal(0.0, 0.15, rows)), 0.002, 2.83)
    # The 0.0005 floor is the real data's smallest weight: rounding must never yield 0.
    shucked = np.maximum(whole * 0.427 * np.exp(rng.normal(0.0, 0.14, rows)), 0.0005)
    viscera = np.maximum(whole * 0.216 * np.exp(rng.normal(0.0, 0.16, rows)), 0.0005)
    shell = np.maximum(whole * 0.292 * np.exp(rng.normal(0.0, 0.15, rows)), 0.0005)
    rings = np.clip(np.rint(np.exp(2.733 + 0.291 * np.log(shell) + rng.normal(0.0, 0.215, rows))), 1, 29)
    return {
        "sex": _SEX_CODES[sex_index],
        "length": length.round(4),
        "diameter": diameter.round(4),
        "height": height.round(4),
        "whole_weight": whole.round(4),
        "shucked_weight": shucked.round(4),
        "viscera_weight": viscera.round(4),
        "shell_weight": shell.round(4),
        "rings": rings.astype(np.int64),
    }


def _whole_number(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, np.integer))


def write_abalone_like(rows: int, seed: int, output: Path | str, header: bool = True) -> Path:
    """Write ``rows`` abalone-shaped CSV rows to ``output`` atomically; same seed, same bytes.

    Columns are those of ``data/abalone.csv`` (sex M/F/I, seven measurements, integer rings); with
    ``header`` (the default, like ``data/abalone.csv``, so the file feeds ``stage_input`` and
    ``run-local --stage-data`` as is) the first line names them; without it the layout is the UCI
    original's. Raises InvalidInput for ``rows < 1``, a negative seed, an output that names a
    directory (an existing one, or a path ending in a separator) or cannot be written.
    """
    import pandas as pd  # heavy; only this command needs it

    if not _whole_number(rows) or rows < 1:
        raise InvalidInput(f"make-data: --rows must be a whole number of at least 1, got {rows!r}")
    if not _whole_number(seed) or seed < 0:
        raise InvalidInput(f"make-data: --seed must be a whole number of at least 0, got {seed!r}")
    text = os.fspath(output)
    if text.endswith(tuple(filter(None, ("/", os.sep, os.altsep)))):
        raise InvalidInput(f"make-data: output {text} ends with a path separator, expected a file path "
                           f"such as {text}abalone.csv")
    output = Path(output)
    if output.is_dir():
        raise InvalidInput(f"make-data: output {output} is a directory, expected a file path")
    rng = np.random.default_rng(seed)
    try:
        with open_atomic(output, "w", newline="") as fh:
            written = 0
            while written < rows:
                chunk_rows = min(_CHUNK_ROWS, rows - written)
                frame = pd.DataFrame(_abalone_chunk(rng, chunk_rows), columns=list(ABALONE_COLUMNS))
                frame.to_csv(fh, header=header and written == 0, index=False)
                written += chunk_rows
    except OSError as exc:
        raise InvalidInput(f"make-data: cannot write {output}: {exc.strerror or exc}") from None
    return output
