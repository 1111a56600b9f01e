"""``python -m sm_pipeline definition --output``: a place that cannot be written is one line, exit 2, nothing left."""

from __future__ import annotations

import errno
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run_definition(output: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sm_pipeline", "definition", "--output", output], cwd=REPO,
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.parametrize(
    ("make", "output", "problem"),
    [
        pytest.param(lambda t: (t / "out").mkdir(), "{t}/out", "is a directory, expected a file path", id="a-directory"),
        pytest.param(lambda t: None, "{t}/new/", "is a directory, expected a file path", id="trailing-separator"),
        pytest.param(lambda t: (t / "file").write_text("x"), "{t}/file/def.json", "{t}/file is not a directory",
                     id="under-a-file"),
        pytest.param(lambda t: (t / "file").write_text("x"), "{t}/file/deeper/def.json", "{t}/file is not a directory",
                     id="deep-under-a-file"),
    ],
)
def test_unwritable_output_is_refused_before_the_build(tmp_path, make, output, problem):
    make(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    output = output.format(t=tmp_path)
    done = run_definition(output)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines() == [
        f"error: definition: cannot write --output {output}: {problem.format(t=tmp_path)}"]
    assert sorted(tmp_path.rglob("*")) == before


def test_a_write_that_fails_late_is_one_line_too(tmp_path, monkeypatch, capsys):
    from sm_pipeline import __main__ as cli
    from sm_pipeline import storage_io
    from sm_pipeline.abalone import definition

    def full_disk(path, text):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(definition, "definition_json", lambda config: "{}\n")  # the build is not under test
    monkeypatch.setattr(storage_io, "write_text_atomic", full_disk)
    output = tmp_path / "def.json"
    assert cli.main(["definition", "--output", str(output)]) == 2
    assert capsys.readouterr().err == f"error: definition: cannot write --output {output}: No space left on device\n"
    assert list(tmp_path.iterdir()) == []
