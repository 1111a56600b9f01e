"""Session-wide test setup: no real AWS, no telemetry, no network beyond loopback.

The environment is fixed here, at import time, before any test module imports boto3,
the SageMaker SDK or Airflow:
- pytest-socket (``--allow-hosts`` in pyproject) fails any connection to a non-loopback address;
- AWS_ENDPOINT_URL points at a closed loopback port, so a boto3 client that was not given the
  emulated service's endpoint fails at once with "connection refused" instead of reaching AWS;
- credentials are fake, shared config files are ignored, the instance-metadata lookup is off;
- the SageMaker SDK's role validation and telemetry are off.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

# airsage's pytest kit: the emulated SageMaker service, the AWS connection on it, buckets, object roots,
# the metadata DB and run_dag, for every test folder (the installed distribution registers it as a pytest
# plugin under this same name, so it is loaded once either way).
pytest_plugins = ["airsage.testing"]

REPO_ROOT = Path(__file__).resolve().parents[1]
CLOSED_LOOPBACK_ENDPOINT = "http://127.0.0.1:9"  # discard port: nothing listens, refused at once

_SESSION_TMP = Path(tempfile.mkdtemp(prefix="airsage-tests-"))

os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",  # noqa: S105 - fake credentials
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_RETRY_MODE": "standard",
        "AWS_ENDPOINT_URL": CLOSED_LOOPBACK_ENDPOINT,
        "SAGEMAKER_VALIDATE_ROLE": "false",
        "AIRSAGE_TELEMETRY": "off",
        "AIRFLOW_HOME": str(_SESSION_TMP / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_SESSION_TMP / 'airflow' / 'airflow.db'}",
    }
)
# In-process DAG runs skip approve_model by themselves (no one can answer there); the Airflows tests start from
# this environment (make ui in tests/e2e) skip it too, unless a test sets the Variable itself (test_approval).
os.environ.setdefault("AIRFLOW_VAR_AIRSAGE_APPROVAL", '{"required": false}')
for _var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
             "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"):
    os.environ.pop(_var, None)
(_SESSION_TMP / "airflow").mkdir(parents=True, exist_ok=True)


@pytest.fixture(autouse=True)
def fail_on_any_blocked_connection(request, monkeypatch):
    """Fail the test if anything tried a non-loopback connection, even if the code swallowed the error.

    pytest-socket raises at the attempt, but library code (the SageMaker SDK's telemetry, for
    one) catches broad exceptions; the attempt is recorded here and reported at teardown.
    """
    import pytest_socket

    attempts: list[str] = []
    original_init = pytest_socket.SocketConnectBlockedError.__init__

    def recording_init(self, allowed, host, *args, **kwargs):
        attempts.append(str(host))
        original_init(self, allowed, host, *args, **kwargs)

    monkeypatch.setattr(pytest_socket.SocketConnectBlockedError, "__init__", recording_init)
    yield
    if attempts and request.node.get_closest_marker("expects_blocked_connection") is None:
        pytest.fail(f"code under test tried to connect to non-loopback address(es): {sorted(set(attempts))}")


@pytest.fixture(autouse=True)
def fresh_boto3_default_session():
    """Each test starts with no boto3 default session and leaves none behind.

    ``boto3.client()`` reuses ``boto3.DEFAULT_SESSION``, whose region and credentials are fixed when
    it is created: a test that made one (say in eu-central-1) would otherwise decide the region of
    every later test's bare ``boto3.client()`` calls, depending on the order the tests run in.
    """
    import boto3

    boto3.DEFAULT_SESSION = None
    yield
    boto3.DEFAULT_SESSION = None


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root."""
    return REPO_ROOT


# -- running the suite on every core (pytest-xdist; `make test` passes -n N --dist loadfile) -------------------
# Work is shared out by module: a module's tests run in one worker, in file order, so module fixtures (a stack,
# a `make ui`, a browser) are made once. Modules are independent of one another: each keeps its state under
# its own temporary directories (what runs in the repository itself, `make demo` in tests/dags/test_demo.py and
# tests/test_offline_network.py, or `make wheel` in tests/package, gets its own AIRFLOW_HOME, object root and
# DIST), and the README test works on a copy that leaves out every build output.
# The longest modules go out first (with --no-loadscope-reorder, modules are handed out in collection order),
# so that no worker is left with one of them at the end while the other idles. Wall-clock figures of a CI
# run: the stack ~6 min, the browser scenarios ~3.5 min, the README ~2.5 min, approval ~2 min, the SageMaker
# DAG and the offline-network checks ~1.5 min each. Every other module follows in collection order.
LONG_MODULES_FIRST = ("tests/stack/test_stack.py", "tests/e2e/test_ui_scenarios.py", "tests/test_readme.py",
                      "tests/e2e/test_approval.py", "tests/dags/test_sagemaker_dag.py",
                      "tests/test_offline_network.py")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """The longest modules first, each module's tests in file order, the rest in collection order."""
    rank = {module: index for index, module in enumerate(LONG_MODULES_FIRST)}

    def module(item) -> str:
        return Path(str(item.fspath)).resolve().relative_to(REPO_ROOT).as_posix()

    first_seen: dict[str, int] = {}
    for item in items:
        first_seen.setdefault(module(item), len(first_seen))
    items.sort(key=lambda item: (rank.get(module(item), len(rank)), first_seen[module(item)]))


TEST_ARTIFACTS = REPO_ROOT / "build" / "test-artifacts"
# areas of build/test-artifacts/ whose files of an earlier run would be taken for this run's (screenshots, logs,
# the durations the summary prints)
EMPTIED_AT_START = ("e2e",)


def pytest_sessionstart(session):
    """Empty those areas once per run: in the controller, or in the only process without pytest-xdist (a worker
    emptying them would delete what another worker has already written)."""
    if hasattr(session.config, "workerinput"):
        return
    import shutil

    for area in EMPTIED_AT_START:
        shutil.rmtree(TEST_ARTIFACTS / area, ignore_errors=True)


def pytest_terminal_summary(terminalreporter):
    """The wall-clock durations those areas recorded in ``<area>/durations/*.json`` during this run (the browser
    scenarios and make ui start-ups; one file per test process), one section per area: they belong in the report,
    and pytest hides a passing test's prints. Not benchmarks: the machine is shared with the rest of the suite.
    Then, last, one line per place where failing tests broke (tests/failure_sites.py)."""
    for area in EMPTIED_AT_START:
        rows = [row for part in sorted((TEST_ARTIFACTS / area / "durations").glob("*.json"))
                for row in json.loads(part.read_text())]
        if rows:
            terminalreporter.section(f"{area} scenario durations (wall clock; not benchmarks)")
            for row in rows:
                terminalreporter.write_line(f"{row['seconds']:8.1f} s  {row['outcome']:6}  {row['what']}")
    # last, so that the tail of the output (all CI keeps) says where each failure broke, not only its last line;
    # a copy of this file run as another project's conftest (tests/test_network_guard.py) has no module beside it
    if not (Path(__file__).parent / "failure_sites.py").is_file():
        return
    from tests.failure_sites import failure_sites

    broken = [r for key in ("failed", "error") for r in terminalreporter.stats.get(key, [])
              if getattr(r, "when", None) in ("setup", "call", "teardown")]
    if broken:
        terminalreporter.section("where the failures broke (frames in this repository, outermost first)")
        for line in failure_sites(broken, REPO_ROOT):
            terminalreporter.write_line(line)
