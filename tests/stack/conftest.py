"""Fixtures of the stack tests: PostgreSQL/Redis or a clear skip, the emulated AWS, one stack per module.

Where PostgreSQL or Redis is not reachable the stack tests are skipped with the reason on a
laptop, and FAIL on CI (``CI`` set to true/1/yes, or a known CI's variable): CI machines have
both, so a missing server there is a broken machine, not a reason to go green.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

for _path in (Path(__file__).resolve().parents[2], Path(__file__).parent):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from stack_support import ARTIFACTS, REPO, launcher_environment, on_ci  # noqa: E402

from launchers import LauncherError  # noqa: E402
from launchers import stack as stack_module  # noqa: E402

# Through Airflow's documented [scheduler] options, for the kill test: a killed worker's running
# task instance is declared dead after 40 s without a heartbeat (default 300), and one the dead
# worker had received but not started is handed out again after 180 s queued (default 600).
STACK_TEST_ENV = {
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "40",
    "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "180",
    # the emulated service ends an execution in seconds; a deferred wait polling at SageMaker's 60 s
    # cadence spent most of the triggerer-restart scenario waiting for its next poll
    "AIRSAGE_POLL_INTERVAL": "5",
}


@pytest.fixture(scope="session")
def services() -> tuple[str, str]:
    """(PostgreSQL URL, Redis URL) when both answer; skip (laptop) or fail (CI) otherwise."""
    postgres = os.environ.get("AIRSAGE_STACK_POSTGRES", stack_module.DEFAULT_POSTGRES)
    redis_url = os.environ.get("AIRSAGE_STACK_REDIS", stack_module.DEFAULT_REDIS)
    try:
        stack_module.check_services(postgres, redis_url)
    except LauncherError as err:
        if on_ci():
            pytest.fail(f"on CI, PostgreSQL and Redis must be running: {err}")
        pytest.skip(str(err))
    return postgres, redis_url


def _first_line(path: Path, process: subprocess.Popen, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_text() if path.exists() else ""
        if "\n" in text:
            return text.splitlines()[0].strip()
        if process.poll() is not None:
            raise AssertionError(f"{process.args} exited {process.returncode}: {text[-2000:]}")
        time.sleep(0.2)
    raise AssertionError(f"{process.args} printed no URL within {timeout:.0f} s")


@pytest.fixture(scope="module")
def emulated_aws(services, tmp_path_factory):
    """The emulated AWS endpoint the stack's DAGs use: ``{"url", "kind"}``.

    ``python -m sm_pipeline serve`` (SageMaker + S3 on one loopback endpoint): executions run for real
    and last, so waits defer and stops, failures and restarts meet the service, not stand-ins.
    """
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    kind = "sm_pipeline serve"
    root = tmp_path_factory.mktemp("emulated-aws")
    argv = [sys.executable, "-m", "sm_pipeline", "serve", "--host", "127.0.0.1", "--port", "0", "--root", str(root)]
    out = ARTIFACTS / f"emulated-aws-{secrets.token_hex(3)}.log"
    with open(out, "wb") as log:
        process = subprocess.Popen(argv, cwd=REPO, env=launcher_environment(), stdout=log,  # noqa: S603
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = _first_line(out, process, timeout=300)
        yield {"url": url, "kind": kind}
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def stack(emulated_aws):
    """One stack for the module (two workers), started the way ``make stack`` starts it.

    Yields the :class:`launchers.stack.Stack`; the module's last test tears it down and checks the
    teardown, this only makes sure nothing outlives a failed module.
    """
    directory = ARTIFACTS / f"stack-{secrets.token_hex(3)}"
    argv = [sys.executable, "-m", "launchers.stack", "up", "--dir", str(directory), "--workers", "2",
            "--aws-endpoint", emulated_aws["url"]]
    for key, value in STACK_TEST_ENV.items():
        argv += ["--env", f"{key}={value}"]
    done = subprocess.run(argv, cwd=REPO, env=launcher_environment(), capture_output=True, text=True,  # noqa: S603
                          timeout=900, check=False)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "up.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        pytest.fail(f"make stack failed (exit {done.returncode}):\n{(done.stdout + done.stderr)[-3000:]}")
    started = stack_module.Stack.load(directory)
    started.up_output = done.stdout
    yield started
    if (directory / stack_module.Stack.STATE).exists():
        subprocess.run([sys.executable, "-m", "launchers.stack", "down", "--dir", str(directory)], cwd=REPO,  # noqa: S603
                       env=launcher_environment(), capture_output=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def api(stack):
    """The stack's REST API, logged in with the simple auth manager's generated password."""
    return stack.api()
