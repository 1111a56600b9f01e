"""Browser tests: Debian's Chromium, driven by Playwright, against the Airflow ``make ui`` starts.

One Airflow per session (started by ``make ui PORT=0`` with a scratch AIRFLOW_HOME and object
root, exactly as a user starts it), one loopback webhook receiver for on-call notifications,
one browser. Screenshots of every scenario go to ``build/test-artifacts/e2e/``; on failure the
page's HTML and the Airflow logs go there too.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

# --import-mode=importlib puts no test directory on sys.path; the tests share this helper.
sys.path.insert(0, str(Path(__file__).parent))
from ui_under_test import AirflowUnderTest  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
#: what /usr/bin/chromium (Debian's wrapper script) runs
CHROMIUM_BINARY = Path("/usr/lib/chromium/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update"]
# A busy 2-core machine: Airflow takes a minute to start, a pipeline run a few minutes.
START_TIMEOUT = 600.0
UI_TIMEOUT_MS = 60_000
DAG_ID = "abalone_pipeline_local"
ARTIFACTS = Path(__file__).resolve().parents[2] / "build" / "test-artifacts" / "e2e"
# (what, seconds, outcome) of every scenario and make ui start in this test process, kept in its own file under
# ARTIFACTS/durations/: the root conftest prints them in the run's summary (with pytest-xdist the controller
# prints it, and the scenarios ran in a worker)
DURATIONS: list[tuple[str, float, str]] = []


def record_duration(what: str, seconds: float, outcome: str) -> None:
    """One wall-clock duration (a scenario, a make ui start-up) for the summary at the end of the run."""
    DURATIONS.append((what, seconds, outcome))
    (ARTIFACTS / "durations").mkdir(parents=True, exist_ok=True)
    mine = ARTIFACTS / "durations" / f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}.json"
    mine.write_text(json.dumps([{"what": w, "seconds": round(s, 1), "outcome": o} for w, s, o in DURATIONS], indent=1))


def pytest_collection_modifyitems(config, items):
    """Every test in this folder is an ``e2e`` test; skip them (with the reason) only off CI
    when Debian's Chromium is missing. On CI a missing browser is a failure, not a skip."""
    here = Path(__file__).parent
    mine = [item for item in items if Path(str(item.fspath)).is_relative_to(here)]
    for item in mine:
        item.add_marker(pytest.mark.e2e)
    if not CHROMIUM.exists() and not os.environ.get("CI"):
        skip = pytest.mark.skip(reason=f"browser tests need Debian's Chromium at {CHROMIUM} "
                                       "(apt-get install chromium); CI installs it")
        for item in mine:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """build/test-artifacts/e2e/ (emptied once at the start of the run: tests/conftest.py's pytest_sessionstart)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


class WebhookReceiver:
    """A loopback HTTP server that records every JSON POST (the on-call webhook target)."""

    def __init__(self):
        self.received: list[dict] = []
        self._cond = threading.Condition()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    payload = json.loads(body or b"null")
                except ValueError:
                    payload = {"_raw": body.decode(errors="replace")}
                with receiver._cond:
                    receiver.received.append({"path": self.path, "payload": payload})
                    receiver._cond.notify_all()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"ok": true}')

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/on-call"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, predicate, timeout: float) -> dict:
        """The first received payload for which ``predicate(payload)`` is true; fails after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for entry in self.received:
                    if predicate(entry["payload"]):
                        return entry["payload"]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no matching webhook call within {timeout:.0f} s; got {self.received}")
                self._cond.wait(left)

    def close(self):
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


# Module scope, not session: the tests of this folder live in one module, and what they hold must
# end with it -- Playwright's sync API keeps an asyncio loop running in the main thread while it is
# active (later tests calling asyncio.run() would fail), and an idle Airflow would keep using the CPU.
@pytest.fixture(scope="module")
def webhook():
    """The on-call webhook receiver (``AIRFLOW_VAR_AIRSAGE_ON_CALL`` points at it)."""
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


def _started_ui(scratch: Path, repo_root: Path, artifacts: Path, webhook) -> AirflowUnderTest:
    ui = AirflowUnderTest(
        repo=repo_root, home=scratch / "home", root=scratch / "objects", artifacts=artifacts,
        extra_env={"AIRFLOW_VAR_AIRSAGE_ON_CALL": json.dumps({"webhook_url": webhook.url})})
    started = time.monotonic()
    try:
        ui.start(timeout=START_TIMEOUT)
    except Exception:
        ui.kill_everything()
        ui.save_logs(artifacts / "startup-failure")
        raise
    seconds = time.monotonic() - started
    record_duration(f"make ui until ready ({scratch.name})", seconds, "ready")
    print(f"\n[e2e] make ui ready at {ui.url} after {seconds:.1f} s (machine shared; not a benchmark)")
    return ui


def _stopped(ui: AirflowUnderTest, artifacts: Path) -> list[str]:
    """Ctrl-C it unless a test already did; what survived (killed then, so nothing leaks)."""
    survivors: list[str] = []
    try:
        if ui.process.poll() is None:
            ui.interrupt(timeout=60)
        survivors = ui.survivors()
    finally:
        ui.kill_everything()
        ui.save_logs(artifacts)
    return survivors


@pytest.fixture(scope="module")
def airflow_ui(repo_root, tmp_path_factory, artifacts, webhook):
    """``make ui PORT=0`` with a scratch home and object root, shared by the module's scenarios;
    Ctrl-C at the end, which must leave no process behind."""
    ui = _started_ui(tmp_path_factory.mktemp("e2e-airflow"), repo_root, artifacts, webhook)
    yield ui
    survivors = _stopped(ui, artifacts / "airflow")
    assert survivors == [], f"processes left after Ctrl-C of make ui: {survivors}"


@pytest.fixture
def own_airflow_ui(repo_root, tmp_path_factory, artifacts, webhook):
    """A ``make ui`` of the test's own, for a scenario that stops it."""
    ui = _started_ui(tmp_path_factory.mktemp("e2e-own-airflow"), repo_root, artifacts / "own", webhook)
    yield ui
    _stopped(ui, artifacts / "own" / "airflow")


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless; never a downloaded browser (closed with the module, see above)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        if chromium.is_connected():  # a dead make ui ends the browser (see the page fixture)
            chromium.close()


@pytest.fixture
def page(browser, request, artifacts):
    """A fresh browser page on the scenario's Airflow (``own_airflow_ui`` if the test has one,
    else the shared ``airflow_ui``); on failure its screenshot, HTML and the Airflow logs are saved."""
    from playwright.sync_api import expect

    fixture = "own_airflow_ui" if "own_airflow_ui" in request.fixturenames else "airflow_ui"
    airflow_ui = request.getfixturevalue(fixture)
    expect.set_options(timeout=UI_TIMEOUT_MS)
    context = browser.new_context(viewport={"width": 1400, "height": 900}, base_url=airflow_ui.url)
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = context.new_page()
    started, started_wall = time.monotonic(), time.time()
    watching = threading.Event()
    watchdog = threading.Thread(target=_end_browser_waits_if_make_ui_dies, args=(airflow_ui, watching), daemon=True)
    watchdog.start()
    yield page
    watching.set()
    watchdog.join()
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    died = airflow_ui.exited_unasked()
    if died is not None:
        print(f"\n[e2e] make ui exited (code {died}) while {request.node.name} ran; the browser was closed so the "
              "scenario ends now instead of waiting out its time-outs. make ui's last lines:\n"
              + "".join(airflow_ui.output[-25:]))
    if failed:
        target = artifacts / "failures" / name
        target.mkdir(parents=True, exist_ok=True)
        for index, open_page in enumerate(context.pages):
            try:
                open_page.screenshot(path=str(target / f"page{index}.png"), full_page=True)
                (target / f"page{index}.html").write_text(open_page.content())
            except Exception as error:  # noqa: BLE001 - best effort, the test already failed
                (target / f"page{index}.error.txt").write_text(repr(error))
        airflow_ui.save_logs(target)
        print(f"\n[e2e] task logs with errors since {request.node.name} started:\n"
              + airflow_ui.failure_digest(since=started_wall - 1))
    seconds = time.monotonic() - started
    record_duration(request.node.name, seconds, "failed" if failed else "passed")
    print(f"\n[e2e] {request.node.name}: {seconds:.1f} s "
          f"({'failed' if failed else 'done'}; machine shared, not a benchmark)")
    if died is None:
        context.close()


def _end_browser_waits_if_make_ui_dies(airflow_ui: AirflowUnderTest, done: threading.Event) -> None:
    """While a scenario runs: if make ui exits unasked (a component died and make ui stopped the rest), kill
    this process's Chromium. Playwright's waits (up to 20 minutes for a run) cannot be interrupted from another
    thread; with the browser gone they fail at once, and the page fixture says why."""
    while not done.wait(2.0):
        if airflow_ui.exited_unasked() is None:
            continue
        for proc in psutil.Process().children(recursive=True):
            try:
                if Path(proc.exe()) == CHROMIUM_BINARY:
                    proc.kill()
            except (psutil.Error, OSError):
                continue
        return


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Expose each phase's report on the item (``rep_call``) so fixtures can see a failure."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
