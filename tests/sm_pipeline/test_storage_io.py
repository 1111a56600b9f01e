"""Atomic writes: the final name appears only complete, with an ordinary file mode."""

import os
import stat

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
