"""bench/service_scale.py runs end to end on a small scale and prints its figures in the documented shape.

Only the shape: timings and ratios are the benchmark's business (never asserted in tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow

CALLS = ("CreatePipeline", "UpdatePipeline", "DescribePipeline", "StartPipelineExecution", "DescribePipelineExecution",
         "ListPipelineExecutions", "ListPipelineExecutionSteps", "ListPipelineVersions")


def test_a_small_run_prints_every_calls_ratio_with_min_median_max_as_the_last_json_line():
    ran = subprocess.run([sys.executable, str(REPO / "bench" / "service_scale.py"), "--large", "40", "--rounds", "1",
                          "--calls", "2", "--json"], capture_output=True, text=True, cwd=REPO, timeout=600,
                         check=False, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert ran.returncode in (0, 1), ran.stderr[-3000:]  # 1: a goal missed, which is for the figures to say
    figures = json.loads(ran.stdout.strip().splitlines()[-1])
    assert (figures["small"], figures["large"], figures["rounds"], figures["calls"]) == (10, 40, 1, 2)
    for call in CALLS:
        for suffix in ("_ratio", "_ratio_min", "_ratio_max", "_ms_small", "_ms_large"):
            assert figures[f"{call}{suffix}"] > 0, f"{call}{suffix}"
        assert figures["goals"][f"{call}_ratio"] == "<=2.0" and isinstance(figures["met"][f"{call}_ratio"], bool)
    bad = subprocess.run([sys.executable, str(REPO / "bench" / "service_scale.py"), "--actions", "Nope"],
                         capture_output=True, text=True, cwd=REPO, timeout=60, check=False)
    assert bad.returncode == 2 and "--actions: unknown call(s) Nope" in bad.stderr
