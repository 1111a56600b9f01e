"""The report's "where the failures broke" lines: our frames, the chain, one line per distinct site."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.failure_sites import failure_sites, site

ROOT = Path(__file__).resolve().parents[1]


def _inner():
    raise TimeoutError("timed out")


def _outer():
    try:
        _inner()
    except TimeoutError as err:
        raise RuntimeError("PATCH http://127.0.0.1:1/api/v2/variables/x: no answer") from err


def _longrepr():
    with pytest.raises(RuntimeError) as caught:
        _outer()
    return caught.getrepr(style="long", chain=True)


def test_a_chained_error_names_our_frames_outermost_first():
    line = site(_longrepr(), ROOT)
    outer, _, cause = line.partition(" (from ")
    assert outer.startswith("tests/test_failure_sites.py:")
    assert outer.endswith(": RuntimeError: PATCH http://127.0.0.1:1/api/v2/variables/x: no answer")
    assert outer.count("tests/test_failure_sites.py:") == 2  # _longrepr's call, then _outer's raise
    assert cause.endswith(": TimeoutError: timed out)")


def test_one_line_per_site_with_how_many_broke_there():
    repr_ = _longrepr()
    reports = [SimpleNamespace(nodeid=f"tests/x.py::test_{i}", when="setup", longrepr=repr_) for i in range(6)]
    reports.append(SimpleNamespace(nodeid="tests/y.py::test_z", when="call", longrepr="AssertionError: 1 != 2"))
    lines = failure_sites(reports, ROOT)
    assert len(lines) == 2
    assert lines[0].startswith("tests/x.py::test_0 (setup) and 5 more: tests/test_failure_sites.py:")
    assert lines[1] == "tests/y.py::test_z (call): AssertionError: 1 != 2"


def _deep(n):
    if n == 0:
        raise ValueError("deep")
    _deep(n - 1)


def test_a_deep_stack_keeps_where_the_test_called_in_and_where_it_broke():
    with pytest.raises(ValueError) as caught:
        _deep(5)
    frames, _, message = site(caught.getrepr(style="long", chain=True), ROOT).rpartition(": ValueError")
    shown = frames.split(" → ")
    assert len(shown) == 4 and shown[1] == "…"
    assert shown[0].startswith("tests/test_failure_sites.py:")
    assert message == ": deep"
