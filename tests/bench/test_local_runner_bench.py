"""bench/local_runner.py --quick --json runs end to end and prints its figures in the documented shape.

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

FIGURES = ("overhead_ratio", "cache_ratio", "scale_peak_rss_ratio", "scale_peak_rss_tree_ratio", "parallel_speedup",
           "parallel_speedup_at_scale_rows")


def test_quick_run_prints_median_min_max_and_goals_as_the_last_json_line():
    ran = subprocess.run([sys.executable, str(REPO / "bench" / "local_runner.py"), "--quick", "--json"],
                         capture_output=True, text=True, cwd=REPO, timeout=900, check=False,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert ran.returncode == 0, ran.stderr[-3000:]
    figures = json.loads(ran.stdout.strip().splitlines()[-1])
    assert figures["quick"] is True and figures["rounds"] == 1 and figures["scale_rows"] == 20_000
    assert figures["parallel_rows"] == 40_000
    for name in FIGURES:
        assert isinstance(figures[name], float) and figures[name] > 0, name
        assert figures[f"{name}_min"] <= figures[name] <= figures[f"{name}_max"], name
    assert "scale_10m_peak_rss_ratio" not in figures  # --quick skips the 10M-row run
    assert figures["goals"] == {"overhead_ratio": "<=1.25", "cache_ratio": "<=0.15", "scale_peak_rss_ratio": "<=2.5",
                                "parallel_speedup": ">=1.8"}
    assert set(figures["met"]) == set(figures["goals"]) and all(isinstance(v, bool) for v in figures["met"].values())
    for name in ("overhead_ratio", "cache_ratio", "scale_peak_rss_ratio", "parallel_speedup"):
        assert f"{name}: " in ran.stderr and "(min / median / max of 1;" in ran.stderr
