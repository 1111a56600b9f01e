"""``python -m sm_pipeline serve`` on bad input: one line naming the problem, exit code 2, nothing served."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest
from service_support import REPO


def run_serve(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sm_pipeline", "serve", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300)


@pytest.fixture
def busy_port():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        yield taken.getsockname()[1]


def test_bad_options_are_one_line_and_exit_2(tmp_path, busy_port):
    a_file = tmp_path / "not-a-directory"
    a_file.write_text("x")
    cases = [
        (("--port", "70000", "--root", str(tmp_path / "r1")), "error: --port 70000: must be between 0 and 65535"),
        (("--root", str(a_file / "below")), f"error: --root {a_file / 'below'}: cannot create the object root"),
        (("--port", str(busy_port), "--root", str(tmp_path / "r2")),
         f"error: --host 127.0.0.1 --port {busy_port}: cannot listen there: Address already in use"),
    ]
    for args, expected in cases:
        result = run_serve(*args)
        assert (result.returncode, result.stdout) == (2, ""), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith(expected), result.stderr


def test_serve_is_a_subcommand_of_the_cli():
    result = subprocess.run([sys.executable, "-m", "sm_pipeline", "--help"], cwd=REPO, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0 and "serve" in result.stdout
