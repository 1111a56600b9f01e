"""Fixtures of the local runner tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sm_pipeline.storage import ObjectStore

# --import-mode=importlib puts no test directory on sys.path; the test modules share the builders.
sys.path.insert(0, str(Path(__file__).parent))

@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    """An empty object root."""
    return ObjectStore(tmp_path / "objects")
