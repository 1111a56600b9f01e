"""Small inline SVG charts for the report and the local execution page: no plotting library, no image files.

Deterministic by construction (the same data gives the same bytes: coordinates are rounded, nothing
depends on time or randomness), so a re-run writes nothing; every text is escaped. Large inputs stay
small: a scatter of more than :data:`MAX_POINTS` points becomes a density grid.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

MAX_POINTS = 2000
WIDTH, HEIGHT = 480, 320
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 28, 44
STATUS_COLOURS = {"Succeeded": "#1a7f37", "Failed": "#cf222e", "Stopped": "#9a6700", "Executing": "#0969da",
                  "Starting": "#0969da", "NotExecuted": "#6e7781", "Stopping": "#9a6700"}
_BLUE, _GREY, _RED, _GREEN = "#0969da", "#8c959f", "#cf222e", "#1a7f37"


def _n(value: float) -> str:
    """A coordinate: 2 decimals, no trailing zeros (stable text for the same value)."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _label(value: float) -> str:
    """A tick label: up to 4 significant digits."""
    return f"{value:.4g}"


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (steps of 1, 2 or 5 x 10^k)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0]
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / max(1, count)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    ticks = [round(first, 10)]
    while ticks[-1] < high - step * 1e-9:  # the last tick is at or above high: every value is inside
        ticks.append(round(first + len(ticks) * step, 10))
    return ticks


class _Frame:
    """A plot area with linear x and y scales, axes, ticks and labels."""

    def __init__(self, xs: tuple[float, float], ys: tuple[float, float], *, title: str, xlabel: str, ylabel: str,
                 width: int = WIDTH, height: int = HEIGHT):
        self.xticks, self.yticks = nice_ticks(*xs), nice_ticks(*ys)
        self.x0, self.x1 = self.xticks[0], self.xticks[-1]
        self.y0, self.y1 = self.yticks[0], self.yticks[-1]
        self.width, self.height = width, height
        self.title, self.xlabel, self.ylabel = title, xlabel, ylabel

    def x(self, value: float) -> float:
        span = (self.x1 - self.x0) or 1.0
        return LEFT + (value - self.x0) / span * (self.width - LEFT - RIGHT)

    def y(self, value: float) -> float:
        span = (self.y1 - self.y0) or 1.0
        return self.height - BOTTOM - (value - self.y0) / span * (self.height - TOP - BOTTOM)

    def svg(self, body: Sequence[str], *, xlabels: Sequence[tuple[float, str]] | None = None) -> str:
        esc = html.escape
        parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {self.width} {self.height}" '
                 f'width="{self.width}" height="{self.height}" role="img" aria-label="{esc(self.title)}" '
                 'font-family="sans-serif" font-size="11">',
                 f'<text x="{_n(self.width / 2)}" y="16" text-anchor="middle" font-size="13">{esc(self.title)}</text>']
        bottom, left = self.height - BOTTOM, LEFT
        for tick in self.yticks:
            y = _n(self.y(tick))
            parts.append(f'<line x1="{left}" y1="{y}" x2="{self.width - RIGHT}" y2="{y}" stroke="#eaeef2"/>'
                         f'<text x="{left - 4}" y="{y}" text-anchor="end" dominant-baseline="middle">'
                         f'{esc(_label(tick))}</text>')
        for position, text in (xlabels if xlabels is not None else [(t, _label(t)) for t in self.xticks]):
            x = _n(self.x(position))
            parts.append(f'<line x1="{x}" y1="{bottom}" x2="{x}" y2="{bottom + 4}" stroke="#57606a"/>'
                         f'<text x="{x}" y="{bottom + 16}" text-anchor="middle">{esc(text)}</text>')
        parts.append(f'<line x1="{left}" y1="{bottom}" x2="{self.width - RIGHT}" y2="{bottom}" stroke="#57606a"/>'
                     f'<line x1="{left}" y1="{TOP}" x2="{left}" y2="{bottom}" stroke="#57606a"/>')
        parts.extend(body)
        parts.append(f'<text x="{_n((left + self.width - RIGHT) / 2)}" y="{self.height - 6}" '
                     f'text-anchor="middle">{esc(self.xlabel)}</text>'
                     f'<text x="12" y="{_n((TOP + bottom) / 2)}" text-anchor="middle" '
                     f'transform="rotate(-90 12 {_n((TOP + bottom) / 2)})">{esc(self.ylabel)}</text></svg>')
        return "".join(parts)


def scatter(xs: Sequence[float], ys: Sequence[float], *, title: str, xlabel: str, ylabel: str,
            diagonal: bool = True) -> str:
    """Points (a density grid above :data:`MAX_POINTS`), with the y = x line when ``diagonal``."""
    low, high = min(min(xs), min(ys)), max(max(xs), max(ys))
    frame = _Frame((low, high), (low, high), title=title, xlabel=xlabel, ylabel=ylabel, width=HEIGHT + 40)
    body = []
    if len(xs) <= MAX_POINTS:
        body += [f'<circle cx="{_n(frame.x(x))}" cy="{_n(frame.y(y))}" r="2" fill="{_BLUE}" fill-opacity="0.45"/>'
                 for x, y in zip(xs, ys, strict=True)]
    else:
        cells = 40
        grid: dict[tuple[int, int], int] = {}
        for x, y in zip(xs, ys, strict=True):
            cx = min(cells - 1, int((x - frame.x0) / ((frame.x1 - frame.x0) or 1) * cells))
            cy = min(cells - 1, int((y - frame.y0) / ((frame.y1 - frame.y0) or 1) * cells))
            grid[cx, cy] = grid.get((cx, cy), 0) + 1
        most = max(grid.values())
        w = (frame.x(frame.x1) - frame.x(frame.x0)) / cells
        h = (frame.y(frame.y0) - frame.y(frame.y1)) / cells
        for (cx, cy), count in sorted(grid.items()):
            opacity = 0.15 + 0.85 * math.log1p(count) / math.log1p(most)
            body.append(f'<rect x="{_n(frame.x(frame.x0) + cx * w)}" y="{_n(frame.y(frame.y0) - (cy + 1) * h)}" '
                        f'width="{_n(w)}" height="{_n(h)}" fill="{_BLUE}" fill-opacity="{_n(opacity)}"/>')
    if diagonal:
        body.append(f'<line x1="{_n(frame.x(frame.x0))}" y1="{_n(frame.y(frame.x0))}" x2="{_n(frame.x(frame.x1))}" '
                    f'y2="{_n(frame.y(frame.x1))}" stroke="{_GREY}" stroke-dasharray="4 3"/>')
    return frame.svg(body)


def histogram(values: Sequence[float], *, title: str, xlabel: str, bins: int = 30) -> str:
    """Counts of ``values`` in ``bins`` equal bins."""
    low, high = min(values), max(values)
    width = (high - low) / bins or 1.0
    counts = [0] * bins
    for value in values:
        counts[min(bins - 1, int((value - low) / width))] += 1
    frame = _Frame((low, low + width * bins), (0, max(counts)), title=title, xlabel=xlabel, ylabel="count")
    body = []
    for i, count in enumerate(counts):
        if count:
            x0, x1 = frame.x(low + i * width), frame.x(low + (i + 1) * width)
            body.append(f'<rect x="{_n(x0)}" y="{_n(frame.y(count))}" width="{_n(max(0.5, x1 - x0 - 1))}" '
                        f'height="{_n(frame.y(0) - frame.y(count))}" fill="{_BLUE}"/>')
    return frame.svg(body)


def history(points: Sequence[tuple[str, float, bool]], *, threshold: float, title: str, ylabel: str) -> str:
    """A metric per date: ``(label, value, passed)`` in order, a line through them, the threshold dashed in red."""
    values = [value for _, value, _ in points] + [threshold]
    frame = _Frame((0, max(1, len(points) - 1)), (min(values), max(values)), title=title, xlabel="logical date",
                   ylabel=ylabel, width=max(WIDTH, 40 * len(points) + LEFT + RIGHT))
    frame.x0, frame.x1 = -0.5, len(points) - 0.5
    body = [f'<line x1="{LEFT}" y1="{_n(frame.y(threshold))}" x2="{frame.width - RIGHT}" '
            f'y2="{_n(frame.y(threshold))}" stroke="{_RED}" stroke-dasharray="6 3"/>'
            f'<text x="{frame.width - RIGHT}" y="{_n(frame.y(threshold) - 4)}" text-anchor="end" fill="{_RED}">'
            f'threshold {html.escape(_label(threshold))}</text>']
    if len(points) > 1:
        path = " ".join(f"{_n(frame.x(i))},{_n(frame.y(v))}" for i, (_, v, _) in enumerate(points))
        body.append(f'<polyline points="{path}" fill="none" stroke="{_BLUE}"/>')
    for i, (label, value, passed) in enumerate(points):
        body.append(f'<circle cx="{_n(frame.x(i))}" cy="{_n(frame.y(value))}" r="4" '
                    f'fill="{_GREEN if passed else _RED}"><title>{html.escape(label)}: '
                    f'{html.escape(_label(value))}</title></circle>')
    step = max(1, math.ceil(len(points) / 12))  # at most about 12 date labels
    labels = [(float(i), label[5:] if len(label) == 10 else label) for i, (label, _, _) in enumerate(points)
              if i % step == 0]
    return frame.svg(body, xlabels=labels)


def step_graph(steps: Sequence[tuple[str, str | None]], edges: Sequence[tuple[str, str]]) -> str:
    """The pipeline as SageMaker Studio draws it: one box per step, coloured by status, left to right by dependency.

    ``steps``: ``(name, status or None)`` in definition order; ``edges``: ``(upstream, downstream)``.
    """
    names = [name for name, _ in steps]
    upstream: dict[str, list[str]] = {name: [] for name in names}
    for first, then in edges:
        if first in upstream and then in upstream:
            upstream[then].append(first)
    depth: dict[str, int] = {}

    def level(name: str, seen: frozenset = frozenset()) -> int:
        if name not in depth:
            parents = [p for p in upstream[name] if p not in seen]
            depth[name] = 1 + max((level(p, seen | {name}) for p in parents), default=-1)
        return depth[name]

    columns: dict[int, list[str]] = {}
    for name in names:
        columns.setdefault(level(name), []).append(name)
    box_w, box_h, gap_x, gap_y = 168, 34, 48, 14
    rows = max((len(c) for c in columns.values()), default=1)
    width = max(1, len(columns)) * (box_w + gap_x) + gap_x
    height = rows * (box_h + gap_y) + gap_y
    place = {name: (gap_x + col * (box_w + gap_x), gap_y + row * (box_h + gap_y))
             for col, members in columns.items() for row, name in enumerate(members)}
    status_of = dict(steps)
    esc = html.escape
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" role="img" aria-label="pipeline steps" font-family="sans-serif" font-size="11">'
             '<defs><marker id="arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="7" markerHeight="7" '
             'orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#57606a"/></marker></defs>']
    for first, then in sorted(set(edges)):
        if first in place and then in place:
            (x1, y1), (x2, y2) = place[first], place[then]
            sx, sy, tx, ty = x1 + box_w, y1 + box_h / 2, x2, y2 + box_h / 2
            mid = (sx + tx) / 2
            parts.append(f'<path d="M{_n(sx)},{_n(sy)} C{_n(mid)},{_n(sy)} {_n(mid)},{_n(ty)} {_n(tx)},{_n(ty)}" '
                         'fill="none" stroke="#57606a" marker-end="url(#arrow)"/>')
    for name in names:
        x, y = place[name]
        status = status_of.get(name)
        colour = STATUS_COLOURS.get(str(status), "#d0d7de")
        label = name if len(name) <= 24 else name[:23] + "…"
        parts.append(f'<g class="step" data-step="{esc(name)}" data-status="{esc(str(status or "not started"))}">'
                     f'<rect x="{x}" y="{y}" width="{box_w}" height="{box_h}" rx="6" fill="#ffffff" '
                     f'stroke="{colour}" stroke-width="2"/>'
                     f'<rect x="{x}" y="{y}" width="6" height="{box_h}" rx="3" fill="{colour}"/>'
                     f'<text x="{x + 12}" y="{y + 14}">{esc(label)}</text>'
                     f'<text x="{x + 12}" y="{y + 27}" fill="{colour}">{esc(str(status or "not started"))}</text>'
                     f'<title>{esc(name)}: {esc(str(status or "not started"))}</title></g>')
    parts.append("</svg>")
    return "".join(parts)


def timeline(rows: Sequence[tuple[str, str | None, float, float]]) -> str:
    """Step durations on one time axis: ``(name, status, start seconds, end seconds)`` from the execution's start."""
    if not rows:
        return ""
    end = max(r[3] for r in rows) or 1.0
    ticks = nice_ticks(0, end)
    label_w, bar_h, gap, width = 180, 16, 6, 640
    height = len(rows) * (bar_h + gap) + 40
    span = ticks[-1] or 1.0

    def x(seconds: float) -> float:
        return label_w + seconds / span * (width - label_w - 16)

    esc = html.escape
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" role="img" aria-label="step timeline" font-family="sans-serif" font-size="11">']
    for tick in ticks:
        parts.append(f'<line x1="{_n(x(tick))}" y1="4" x2="{_n(x(tick))}" y2="{height - 24}" stroke="#eaeef2"/>'
                     f'<text x="{_n(x(tick))}" y="{height - 10}" text-anchor="middle">{esc(_label(tick))} s</text>')
    for i, (name, status, start, stop) in enumerate(rows):
        y = 6 + i * (bar_h + gap)
        colour = STATUS_COLOURS.get(str(status), "#8c959f")
        parts.append(f'<text x="{label_w - 6}" y="{y + bar_h - 4}" text-anchor="end">{esc(name)}</text>'
                     f'<rect x="{_n(x(start))}" y="{y}" width="{_n(max(1.0, x(stop) - x(start)))}" height="{bar_h}" '
                     f'fill="{colour}"><title>{esc(name)} ({esc(str(status))}): {esc(_label(stop - start))} s'
                     '</title></rect>')
    parts.append("</svg>")
    return "".join(parts)
