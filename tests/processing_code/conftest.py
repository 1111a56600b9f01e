"""Fixtures for the container scripts: load them by path (they are not a package) and write tiny CSVs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "processing_code"

ABALONE_HEADER = "sex,length,diameter,height,whole_weight,shucked_weight,viscera_weight,shell_weight,rings"


def load_script(name: str):
    """Import ``processing_code/<name>.py`` as a module, as the container would run it."""
    module_name = f"airsage_script_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def preprocess():
    """The preprocess.py module."""
    return load_script("preprocess")


@pytest.fixture(scope="session")
def evaluate():
    """The evaluate.py module."""
    return load_script("evaluate")


def abalone_lines(rows: int, seed: int = 0, label: bool = True) -> list[str]:
    """``rows`` plausible abalone CSV lines (no header), deterministic for ``seed``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    lines = []
    for i in range(rows):
        length = round(float(rng.uniform(0.2, 0.7)), 3)
        weight = round(4.5 * length**3, 4)
        fields = [
            "MFI"[i % 3], f"{length}", f"{round(length * 0.8, 3)}", f"{round(length * 0.27, 3)}",
            f"{weight}", f"{round(weight * 0.43, 4)}", f"{round(weight * 0.22, 4)}", f"{round(weight * 0.29, 4)}",
        ]
        if label:
            fields.append(str(int(rng.integers(3, 20))))
        lines.append(",".join(fields))
    return lines


def write_lines(path: Path, lines: list[str], header: str | None = None) -> Path:
    """Write ``lines`` (and an optional header line) to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(([header] if header else []) + lines)
    path.write_text(text + "\n" if text else "", encoding="utf-8")
    return path


def files_under(root: Path) -> list[Path]:
    """Every file below ``root``, hidden temp files included."""
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


# Tests run with --import-mode=importlib, where a test module cannot import this conftest; the
# helpers reach them as fixtures instead.
@pytest.fixture(scope="session")
def make_lines():
    """:func:`abalone_lines`."""
    return abalone_lines


@pytest.fixture(scope="session")
def write_csv():
    """:func:`write_lines`."""
    return write_lines


@pytest.fixture(scope="session")
def list_files():
    """:func:`files_under`."""
    return files_under


@pytest.fixture(scope="session")
def header():
    """The abalone CSV header line."""
    return ABALONE_HEADER
