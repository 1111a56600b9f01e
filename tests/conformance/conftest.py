"""Shared helpers of the conformance set: the committed definitions, a staged object root, step timing.

Every execution a conformance test leaves under its ``tmp_path`` has its recorded step order checked
afterwards (``step_order.py``): no step starts before a step it depends on ended.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import pytest

from sm_pipeline.storage import ObjectStore

from .step_order import records_order_problems

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DEFINITIONS = HERE / "definitions"
CODE = HERE / "code" / "conformance_step.py"
BUCKET = "s3://airsage-conformance"
LAMBDA_ARN = "arn:aws:lambda:us-east-1:000000000000:function:classify-rows"
SCORE_ARN = "arn:aws:lambda:us-east-1:000000000000:function:score-item"


def load(name: str) -> dict:
    """A committed conformance definition (tests/conformance/definitions/NAME.json)."""
    return json.loads((DEFINITIONS / f"{name}.json").read_text())


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch):
    monkeypatch.setenv("AIRSAGE_RETRY_INTERVAL_SCALE", "0")


@pytest.fixture(autouse=True)
def _steps_recorded_in_dependency_order(request, tmp_path):
    """After each test: every execution it recorded lists no step as starting before a dependency ended."""
    yield
    problems = {where: found for where, found in records_order_problems(tmp_path).items() if found}
    assert problems == {}


@pytest.fixture(scope="session", autouse=True)
def _every_run_in_dependency_order(tmp_path_factory):
    """At the end: the same for every execution of the session, those of module-scoped roots included."""
    yield
    checked = records_order_problems(tmp_path_factory.getbasetemp())
    problems = {where: found for where, found in checked.items() if found}
    assert problems == {}, problems


@pytest.fixture
def store(tmp_path) -> ObjectStore:
    """An object root with the conformance script and four row objects (10 rows each) staged."""
    root = tmp_path / "objects"
    root.mkdir()
    objects = ObjectStore(root)
    objects.put_file(f"{BUCKET}/code/conformance_step.py", CODE)
    for index in range(4):
        rows = tmp_path / f"part-{index}.csv"
        rows.write_text("".join(f"{index},{row}\n" for row in range(10)))
        objects.put_file(f"{BUCKET}/data/rows/part-{index}.csv", rows)
    return objects


def max_concurrency(steps: list[dict], names: set[str] | None = None) -> int:
    """The most steps that were running at one moment, from their recorded StartTime/EndTime."""
    edges = []
    for step in steps:
        if names is not None and step["StepName"] not in names:
            continue
        edges.append((datetime.fromisoformat(step["StartTime"]), 1))
        edges.append((datetime.fromisoformat(step["EndTime"]), -1))
    running = peak = 0
    for _, delta in sorted(edges):  # an end sorts before a start at the same instant
        running += delta
        peak = max(peak, running)
    return peak


def cli_env() -> dict[str, str]:
    """The environment for ``python -m sm_pipeline`` subprocesses: the repository on the path."""
    return {**os.environ, "PYTHONPATH": str(REPO)}
