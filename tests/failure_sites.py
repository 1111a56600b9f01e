"""Where each failed test broke, in one line per distinct site, for the end of the test report.

CI keeps only the tail of the output; pytest's short summary there gives the exception's last line
("TimeoutError: timed out"), not which fixture, which request or which line of ours raised it. This names
the frames inside the repository (the outermost exception of a chain, then what caused it) and the message.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

OUTSIDE = ("/.venv/", "/site-packages/", "/lib/python")


def _chain(longrepr) -> list:
    """(reprtraceback, reprcrash) of each exception in the chain, the outermost last (pytest's order)."""
    chain = getattr(longrepr, "chain", None)
    if chain:
        return [(tb, crash) for tb, crash, _descr in chain]
    tb, crash = getattr(longrepr, "reprtraceback", None), getattr(longrepr, "reprcrash", None)
    return [(tb, crash)] if tb is not None else []


def _our_frames(reprtraceback, root: Path) -> list[str]:
    frames = []
    for entry in getattr(reprtraceback, "reprentries", []):
        loc = getattr(entry, "reprfileloc", None)
        if loc is None:
            continue
        path = Path(loc.path)
        full = path if path.is_absolute() else root / path
        if any(part in str(full) for part in OUTSIDE):
            continue
        try:
            shown = full.resolve().relative_to(root).as_posix()
        except ValueError:
            continue
        frames.append(f"{shown}:{loc.lineno}")
    return frames


def site(longrepr, root: Path) -> str:
    """``frame → frame → frame: message`` for the outermost exception and, when it was raised from another,
    ``(from frame: message)`` for that one. Falls back to pytest's own text for reports without a traceback."""
    parts = []
    for tb, crash in reversed(_chain(longrepr)):
        frames = _our_frames(tb, root)
        message = (getattr(crash, "message", "") or "").strip().splitlines()
        if len(frames) > 3:  # where the test's own code called in, and where it broke
            frames = [frames[0], "…", *frames[-2:]]
        text = f"{' → '.join(frames) or '(outside the repository)'}: {message[0] if message else '?'}"
        parts.append(text if not parts else f"(from {text})")
        if len(parts) == 2:
            break
    if not parts:
        lines = str(longrepr).strip().splitlines()
        return lines[-1] if lines else "?"
    return " ".join(parts)


def failure_sites(reports, root: Path) -> list[str]:
    """One line per distinct site: how many tests broke there, in which phase, the first test's id."""
    grouped: dict[str, list] = defaultdict(list)
    for report in reports:
        grouped[site(report.longrepr, root)].append(report)
    lines = []
    for where, broken in grouped.items():
        first = broken[0]
        more = f" and {len(broken) - 1} more" if len(broken) > 1 else ""
        lines.append(f"{first.nodeid} ({first.when}){more}: {where}")
    return lines
