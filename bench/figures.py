"""What every benchmark reports alike: progress lines on stderr, and figures as median with min and max."""

from __future__ import annotations

import statistics
import sys


def progress(message: str) -> None:
    """One progress line on stderr (stdout is the figures')."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def spread(values: list[float]) -> dict[str, float]:
    """min / median / max, rounded."""
    return {"min": round(min(values), 3), "median": round(statistics.median(values), 3), "max": round(max(values), 3)}


def summarise(series: dict[str, list[float]], goals: dict[str, tuple[str, float]]) -> dict:
    """Median of the rounds under each figure's name, with ``_min`` and ``_max``; goals and whether met.

    ``goals`` maps a figure to ``("<=" | ">=", limit)``; each measured goal is also said on stderr.
    """
    figures: dict = {}
    for name, values in series.items():
        if not values:
            continue
        figures[name] = round(statistics.median(values), 4)
        figures[f"{name}_min"] = round(min(values), 4)
        figures[f"{name}_max"] = round(max(values), 4)
        if name in goals:
            progress(f"{name}: {min(values):.3f} / {statistics.median(values):.3f} / {max(values):.3f} "
                     f"(min / median / max of {len(values)}; goal {goals[name][0]} {goals[name][1]})")
    measured = {name: goal for name, goal in goals.items() if name in figures}
    figures["goals"] = {name: f"{op}{limit}" for name, (op, limit) in measured.items()}
    figures["met"] = {name: (figures[name] <= limit if op == "<=" else figures[name] >= limit)
                      for name, (op, limit) in measured.items()}
    return figures
