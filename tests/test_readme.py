"""The README runs verbatim: every ```bash block is executed exactly as written, in a copy of the repo.

Each fenced ``bash`` block of README.md is one test case. It runs as one ``bash -euo pipefail`` script
(so every command in it must succeed) in a temporary copy of the repository whose ``.venv`` is a
symlink to the virtualenv running these tests (``make``'s setup step then finds it in sync and does
nothing), in a clean environment: no AWS variables, no Airflow variables, a fresh HOME. Blocks run in
README order and share the copy, as a reader following the README shares one checkout.

A block that cannot run here says so on the line right before its fence:

``<!-- readme-test: skip: <reason> -->``
    not run; the reason is mandatory (no Docker engine, no AWS, the test suite itself ...).

``<!-- readme-test: background until "<ready text>" [within <N>s] [while next] then SIGINT -->``
    a long-running command (a server): the block starts in a session of its own; once
    ``<ready text>`` appears in its output (stdout and stderr, within N seconds, default 600) the
    test sends SIGINT to the whole process group, as Ctrl-C in a terminal would, and requires the
    block to stop within 60 s. With ``while next``, the following ``bash`` block -- which must carry
    ``<!-- readme-test: with previous -->`` -- runs while the server is up (the "other terminal"),
    and must succeed, before the SIGINT.

``<!-- readme-test: with previous -->``
    run only inside the previous block's ``while next`` window (see above).

Any other ``readme-test`` comment, or a ``skip`` without a reason, fails the test. The output of every
block is kept in ``build/test-artifacts/readme/``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
ARTIFACTS = REPO / "build" / "test-artifacts" / "readme"
UV_CACHE_DIR = os.environ.get("UV_CACHE_DIR") or str(Path.home() / ".cache" / "uv")
BLOCK_TIMEOUT = 900  # seconds for a plain block (make demo on a cold, busy machine)
STOP_GRACE = 60  # seconds a background block gets to stop after SIGINT
# What a copy of the checkout leaves out: the venv (symlinked instead), VCS data, local state, caches and build
# output (a fresh clone has none; other test modules may be writing some in the checkout meanwhile).
COPY_IGNORE = shutil.ignore_patterns(".venv", ".git", "build", "dist", "*.egg-info", ".airflow", ".airsage",
                                     ".airsage-sagemaker",
                                     "__pycache__",
                                     ".pytest_cache", ".ruff_cache", "node_modules", "*.pyc")

_DIRECTIVE = re.compile(r"^<!--\s*readme-test:\s*(?P<body>.*?)\s*-->$")
_BACKGROUND = re.compile(
    r'^background until "(?P<ready>[^"]+)"(?:\s+within\s+(?P<within>\d+)s)?(?P<while_next>\s+while next)?\s+then SIGINT$')


@dataclass(frozen=True)
class Block:
    """One ```bash block of the README and the directive before it."""

    line: int  # 1-based line of the opening fence
    code: str
    directive: str | None

    @property
    def name(self) -> str:
        first = next((ln.strip() for ln in self.code.splitlines() if ln.strip() and not ln.strip().startswith("#")), "")
        return f"L{self.line}: {first[:60]}"


def parse_blocks(text: str) -> list[Block]:
    """Every ```bash block with the readme-test directive on the last non-blank line before it."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```bash":
            start = i
            previous = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
            match = _DIRECTIVE.match(previous)
            i += 1
            body: list[str] = []
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            if i == len(lines):
                raise ValueError(f"README.md line {start + 1}: ```bash block is never closed")
            blocks.append(Block(start + 1, "\n".join(body) + "\n", match.group("body") if match else None))
        i += 1
    return blocks


BLOCKS = parse_blocks(README.read_text(encoding="utf-8"))


def test_the_readme_has_runnable_blocks():
    runnable = [b for b in BLOCKS if not (b.directive or "").startswith("skip:")]
    assert runnable, "no README block is run by this test"


def test_parse_blocks_reads_fences_and_directives():
    text = (
        "intro\n```bash\necho one\n```\n\n<!-- readme-test: skip: no engine -->\n\n```bash\ndocker x\n```\n"
        "```python\nnot bash\n```\n"
    )
    assert parse_blocks(text) == [Block(2, "echo one\n", None), Block(8, "docker x\n", "skip: no engine")]
    with pytest.raises(ValueError, match="line 1: ```bash block is never closed"):
        parse_blocks("```bash\necho\n")


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """A copy of the repository with the running venv symlinked in, as a user's checkout after ``make setup``."""
    copy = tmp_path_factory.mktemp("readme") / "airsage"
    shutil.copytree(REPO, copy, ignore=COPY_IGNORE, symlinks=True)
    venv = (REPO / ".venv") if (REPO / ".venv" / "bin" / "python").exists() else Path(sys.prefix)
    (copy / ".venv").symlink_to(venv.resolve(), target_is_directory=True)
    return copy


@pytest.fixture(scope="module")
def user_env(tmp_path_factory) -> dict[str, str]:
    """A user's shell: a PATH, a HOME, a locale; nothing of AWS, Airflow or this test run.

    What belongs to the machine carries over, as it does on a reader's machine after ``make setup``: uv's
    package cache (``UV_CACHE_DIR``), so a block that installs into a new venv links the wheels the
    setup already fetched instead of downloading Airflow again into the fresh HOME, and the machine's
    TLS trust (``SSL_CERT_FILE``/``SSL_CERT_DIR``, where set), with which package indexes are reached.
    """
    home = tmp_path_factory.mktemp("readme-home")
    trust = {name: os.environ[name] for name in ("SSL_CERT_FILE", "SSL_CERT_DIR") if os.environ.get(name)}
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", "TERM": "dumb",
            "UV_CACHE_DIR": UV_CACHE_DIR, **trust}


def _log_path(block: Block, log_dir: Path) -> Path:
    log_dir.mkdir(parents=True, exist_ok=True)
    return log_dir / f"L{block.line}.log"


def _bash(block: Block) -> list[str]:
    return ["bash", "-euo", "pipefail", "-c", block.code]


def _tail(path: Path, chars: int = 4000) -> str:
    text = path.read_text(errors="replace") if path.exists() else ""
    return text[-chars:]


def run_block(block: Block, cwd: Path, env: dict[str, str], log_dir: Path = ARTIFACTS) -> None:
    """Run a block to completion; fail with the end of its output unless it exits 0."""
    log = _log_path(block, log_dir)
    with log.open("w") as out:
        out.write(f"$ cd {cwd}\n{block.code}\n")
        out.flush()
        try:
            done = subprocess.run(_bash(block), cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, timeout=BLOCK_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            pytest.fail(f"README {block.name} did not finish within {BLOCK_TIMEOUT} s; log: {log}\n{_tail(log)}")
    assert done.returncode == 0, f"README {block.name} exited {done.returncode}; log: {log}\n{_tail(log)}"


def run_background(block: Block, ready: str, within: float, following: Block | None, cwd: Path,
                   env: dict[str, str], log_dir: Path = ARTIFACTS) -> int:
    """Start a long-running block, wait for ``ready``, optionally run ``following``, then SIGINT it.

    Returns the block's exit status after the SIGINT (bash reports 128 + 2 for a command killed by it).
    """
    log = _log_path(block, log_dir)
    out = log.open("w")
    out.write(f"$ cd {cwd}\n{block.code}\n")
    out.flush()
    header = out.tell()  # the ready text must come from the block's output, not from its echoed code
    process = subprocess.Popen(_bash(block), cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + within
        while ready not in log.read_text(errors="replace")[header:]:
            if process.poll() is not None:
                pytest.fail(f"README {block.name} exited {process.returncode} before printing {ready!r}; "
                            f"log: {log}\n{_tail(log)}")
            if time.monotonic() > deadline:
                pytest.fail(f"README {block.name} did not print {ready!r} within {within:.0f} s; log: {log}\n{_tail(log)}")
            time.sleep(0.5)
        if following is not None:
            run_block(following, cwd, env, log_dir)
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            pytest.fail(f"README {block.name} did not stop within {STOP_GRACE} s of SIGINT; log: {log}\n{_tail(log)}")
        return process.returncode
    finally:
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()
        out.close()


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(BLOCKS)), ids=[b.name for b in BLOCKS])
def test_readme_block_runs_as_written(index, checkout, user_env):
    block = BLOCKS[index]
    directive = block.directive
    following = BLOCKS[index + 1] if index + 1 < len(BLOCKS) else None
    if directive is None:
        run_block(block, checkout, user_env)
        return
    if directive.startswith("skip:"):
        reason = directive.removeprefix("skip:").strip()
        assert reason, f"README {block.name}: 'skip:' needs a reason"
        pytest.skip(f"README says: {reason}")
    if directive == "with previous":
        previous = BLOCKS[index - 1] if index > 0 else None
        match = _BACKGROUND.match(previous.directive or "") if previous else None
        assert match and match.group("while_next"), (
            f"README {block.name}: 'with previous' needs a block before it marked 'background ... while next ...'")
        pytest.skip("runs inside the previous block's background window")
    match = _BACKGROUND.match(directive)
    assert match, f"README {block.name}: unknown readme-test directive {directive!r}"
    if match.group("while_next"):
        assert following is not None and following.directive == "with previous", (
            f"README {block.name}: 'while next' needs the next bash block marked '<!-- readme-test: with previous -->'")
    else:
        following = None
    run_background(block, match.group("ready"), float(match.group("within") or 600), following, checkout, user_env)


def test_background_directive_stops_a_server_with_sigint(tmp_path):
    """The background runner itself, on a tiny server: ready text, a command beside it, then Ctrl-C."""
    server = Block(1, "echo starting\npython3 -c 'import time; print(\"serving\", flush=True); time.sleep(600)'\n"
                      "echo never reached\n", None)
    beside = Block(2, "echo beside > beside.txt\n", "with previous")
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    status = run_background(server, "serving", 120, beside, tmp_path, env, log_dir=tmp_path / "logs")
    assert (tmp_path / "beside.txt").read_text() == "beside\n"
    assert status != 0  # interrupted: the script never got past the server
    output = (tmp_path / "logs" / "L1.log").read_text().split("\n\n", 1)[1]  # after the echoed code
    assert output.splitlines()[:2] == ["starting", "serving"]
    assert "KeyboardInterrupt" in output and "never reached" not in output


def test_background_directive_fails_when_the_server_dies_before_ready(tmp_path):
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    with pytest.raises(pytest.fail.Exception, match=r"exited 3 before printing 'serving'"):
        run_background(Block(1, "exit 3\n", None), "serving", 60, None, tmp_path, env, log_dir=tmp_path)
