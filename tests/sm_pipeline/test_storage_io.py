"""Atomic writes: the final name appears only complete, with an ordinary file mode."""

import os
import stat
from pathlib import Path

import pytest

from sm_pipeline.storage_io import write_bytes_atomic, write_text_atomic


def test_atomic_write_publishes_complete_file_with_umask_mode(tmp_path):
    target = write_text_atomic(tmp_path / "a" / "b.txt", "hello")
    assert target.read_text() == "hello"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    assert [p.name for p in target.parent.iterdir()] == ["b.txt"]


def test_failed_atomic_write_leaves_nothing(tmp_path, monkeypatch):
    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_bytes_atomic(tmp_path / "out.bin", b"data")
    assert list(tmp_path.iterdir()) == []


def _make_data_caught_mid_file(tmp_path, sig):
    """Start make-data on a large file, send ``sig`` once its temp file has bytes; returns (exit code, stderr)."""
    import os
    import subprocess
    import sys
    import time

    repo = Path(__file__).resolve().parents[2]
    output = tmp_path / "big.csv"
    env = {**os.environ, "PYTHONPATH": str(repo)}
    writer = subprocess.Popen([sys.executable, "-m", "sm_pipeline", "make-data", "--rows", "50000000", "--output",
                               str(output)], cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(p.stat().st_size for p in tmp_path.glob(".big.csv.*.tmp")):
            time.sleep(0.05)
        assert writer.poll() is None, "make-data ended before it could be stopped mid-file"
        writer.send_signal(sig)
        _, stderr = writer.communicate(timeout=60)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    return writer.returncode, stderr


@pytest.mark.parametrize(("signame", "code", "line"), [
    ("SIGTERM", 143, "make-data: stopped by signal 15"),
    ("SIGINT", 1, "interrupted"),
])
def test_make_data_stopped_by_a_signal_removes_its_temp_file(tmp_path, signame, code, line):
    """A writer stopped by SIGTERM or SIGINT mid-file removes its temp file before it exits, and says so."""
    import signal

    returncode, stderr = _make_data_caught_mid_file(tmp_path, getattr(signal, signame))
    assert (returncode, stderr.splitlines()) == (code, [line])
    assert list(tmp_path.iterdir()) == []


def test_make_data_killed_by_sigkill_leaves_a_temp_file_that_the_next_run_removes(tmp_path):
    """SIGKILL runs no cleanup: the temp name stays; the next write of that file removes it."""
    import os
    import signal
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    output = tmp_path / "big.csv"
    _make_data_caught_mid_file(tmp_path, signal.SIGKILL)
    leftovers = list(tmp_path.glob(".big.csv.*.tmp"))
    assert leftovers and not output.exists(), "the writer was not caught mid-file"
    again = subprocess.run([sys.executable, "-m", "sm_pipeline", "make-data", "--rows", "10", "--output", str(output)],
                           cwd=repo, env={**os.environ, "PYTHONPATH": str(repo)}, capture_output=True, text=True,
                           timeout=300, check=False)
    assert again.returncode == 0, again.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.csv"]
    assert output.read_text().count("\n") == 11  # the header row and 10 rows
