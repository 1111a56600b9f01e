"""sm_pipeline.charts: inline SVG that is deterministic, keeps every point inside its frame, and stays small."""

from __future__ import annotations

import random
import re

from sm_pipeline.charts import MAX_POINTS, histogram, history, nice_ticks, scatter, step_graph, timeline


def test_ticks_cover_the_whole_range():
    for low, high in [(-1.3, 20.4), (4.1, 6.9), (0, 3.1), (0.0012, 0.0049), (7, 7)]:
        ticks = nice_ticks(low, high)
        assert ticks[0] <= low and ticks[-1] >= high, (low, high, ticks)


def test_the_same_data_gives_the_same_bytes_and_points_stay_in_the_frame():
    rng = random.Random(3)  # noqa: S311 - test data, not secrets
    xs = [rng.uniform(1, 30) for _ in range(500)]
    ys = [x + rng.gauss(0, 3) for x in xs]
    svg = scatter(xs, ys, title="t <&>", xlabel="x", ylabel="y")
    assert svg == scatter(list(xs), list(ys), title="t <&>", xlabel="x", ylabel="y")
    assert "t &lt;&amp;&gt;" in svg and "<&>" not in svg
    width, height = map(float, re.search(r'viewBox="0 0 (\S+) (\S+)"', svg).groups())
    points = [(float(x), float(y)) for x, y in re.findall(r'<circle cx="([\d.-]+)" cy="([\d.-]+)"', svg)]
    assert len(points) == 500 and all(0 <= x <= width and 0 <= y <= height for x, y in points)
    assert histogram([y - x for x, y in zip(xs, ys, strict=True)], title="r", xlabel="r").count("<rect") <= 30


def test_a_large_scatter_is_a_density_grid():
    xs = [i % 997 / 10 for i in range(MAX_POINTS * 50)]
    svg = scatter(xs, xs, title="big", xlabel="x", ylabel="y")
    assert "<circle" not in svg and svg.count("<rect") <= 40 * 40 and len(svg) < 200_000


def test_history_graph_and_timeline_draw_every_item():
    svg = history([("2026-11-01", 4.2, True), ("2026-11-02", 7.5, False)], threshold=6, title="mse", ylabel="mse")
    assert svg.count("<circle") == 2 and "threshold 6" in svg and "#cf222e" in svg
    graph = step_graph([("A", "Succeeded"), ("B", "Failed"), ("C", None)], [("A", "B"), ("A", "C")])
    assert re.findall(r'data-step="(\w)" data-status="([\w ]+)"', graph) == [
        ("A", "Succeeded"), ("B", "Failed"), ("C", "not started")]
    assert graph.count("marker-end=") == 2  # one arrow per dependency
    assert timeline([("A", "Succeeded", 0, 2.5), ("B", "Failed", 2.5, 3)]).count("<rect") == 2
