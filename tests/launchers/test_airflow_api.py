"""The REST client of the launchers and tests: what it repeats when the API server does not answer, and
what it says then (the request and the wait, not a bare "timed out")."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from launchers import LauncherError
from launchers.airflow_api import AirflowApi, NoAnswer


class _Server(ThreadingHTTPServer):
    daemon_threads = True


@pytest.fixture
def slow_api():
    """An API server that answers the login at once and lets ``hang`` paths go unanswered; counts requests."""
    seen: list[tuple[str, str]] = []
    hang: set[str] = set()
    release = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self):
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            seen.append((self.command, self.path))
            if self.path in hang:
                release.wait(10)
                return
            body = json.dumps({"access_token": "t"} if self.path == "/auth/token" else {"ok": self.path}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PATCH = _answer

        def log_message(self, *args):
            pass

    server = _Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", seen, hang
    release.set()
    server.shutdown()


def test_a_read_is_repeated_and_the_error_names_the_request(slow_api, monkeypatch):
    url, seen, hang = slow_api
    monkeypatch.setattr("launchers.airflow_api.time.sleep", lambda _s: None)
    hang.add("/api/v2/dags")
    api = AirflowApi(url, "admin", "pw", timeout=0.3, attempts=3)
    with pytest.raises(NoAnswer) as caught:
        api.get("/dags")
    assert seen.count(("GET", "/api/v2/dags")) == 3
    message = str(caught.value)
    assert message.startswith(f"GET {url}/api/v2/dags: no answer (")
    assert "3 tries of up to 0.3 s" in message
    assert isinstance(caught.value, OSError) and isinstance(caught.value, LauncherError)


def test_a_write_is_sent_once(slow_api):
    url, seen, hang = slow_api
    hang.add("/api/v2/dags/d/dagRuns")
    api = AirflowApi(url, "admin", "pw", timeout=0.3, attempts=3)
    with pytest.raises(NoAnswer, match=r"^POST .*/api/v2/dags/d/dagRuns: no answer .*1 try"):
        api.post("/dags/d/dagRuns", {"logical_date": None})
    assert seen.count(("POST", "/api/v2/dags/d/dagRuns")) == 1


def test_the_login_is_repeated(slow_api, monkeypatch):
    url, seen, hang = slow_api
    monkeypatch.setattr("launchers.airflow_api.time.sleep", lambda _s: None)
    hang.add("/auth/token")
    api = AirflowApi(url, "admin", "pw", timeout=0.3, attempts=2)
    with pytest.raises(NoAnswer, match=r"^POST .*/auth/token: no answer"):
        api.patch("/variables/x", {"key": "x", "value": "1"})
    assert seen.count(("POST", "/auth/token")) == 2
    assert ("PATCH", "/api/v2/variables/x") not in seen


def test_an_answer_is_parsed(slow_api):
    url, seen, _hang = slow_api
    assert AirflowApi(url, "admin", "pw", timeout=5).patch("/variables/x", {"value": "1"}) == {"ok": "/api/v2/variables/x"}
    assert seen == [("POST", "/auth/token"), ("PATCH", "/api/v2/variables/x")]


def test_a_refused_connection_is_no_answer():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(NoAnswer, match=r"^POST http://127.0.0.1:\d+/auth/token: no answer \(.*refused"):
        AirflowApi(f"http://127.0.0.1:{port}", "admin", "pw", timeout=1, attempts=1).get("/dags")
