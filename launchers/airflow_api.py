"""Airflow's public REST API (/api/v2) as the launchers, the benchmarks and the stack tests use it, and polling.

stdlib only (urllib), so a launcher talks to a running Airflow without importing it.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import TypeVar

from launchers import LauncherError

T = TypeVar("T")
#: the parts of /api/v2/monitor/health that must say "healthy" before a launcher reports ready
HEALTH_PARTS = ("metadatabase", "scheduler", "dag_processor", "triggerer")


class AirflowApi:
    """A small client of Airflow's public REST API (/api/v2) with a JWT from /auth/token.

    ``attempts``: how often a GET is tried when the server does not answer (a busy api-server may
    time out; a read is safe to repeat, a write is not).
    """

    def __init__(self, base_url: str, username: str, password: str, timeout: float = 30.0, attempts: int = 3):
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.password = password
        self.timeout = timeout
        self.attempts = attempts
        self._token: str | None = None

    def _send(self, method: str, url: str, body=None, headers: dict | None = None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method,  # noqa: S310 - http on loopback
                                         headers={"Content-Type": "application/json", **(headers or {})})
        with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
            text = response.read().decode()
        return json.loads(text) if text else None

    def token(self) -> str:
        """A fresh access token for the user (the simple auth manager's login)."""
        answer = self._send("POST", f"{self.base_url}/auth/token",
                            {"username": self.username, "password": self.password})
        self._token = answer["access_token"]
        return self._token

    def request(self, method: str, path: str, body=None):
        """``method`` /api/v2``path`` with the token; the parsed JSON answer (LauncherError on HTTP errors)."""
        if self._token is None:
            self.token()
        url = f"{self.base_url}/api/v2{path}"
        for attempt in range(max(self.attempts, 2)):
            try:
                return self._send(method, url, body, {"Authorization": f"Bearer {self._token}"})
            except urllib.error.HTTPError as err:
                if err.code == 401 and attempt == 0:  # the token expired: log in again, once
                    self.token()
                    continue
                detail = err.read().decode(errors="replace")[:500]
                raise LauncherError(f"{method} {url}: HTTP {err.code}: {detail}") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError):
                if method != "GET" or attempt >= self.attempts - 1:
                    raise
                time.sleep(2)
        raise LauncherError(f"{method} {url}: no answer")

    def get(self, path: str):
        """GET /api/v2``path``."""
        return self.request("GET", path)

    def post(self, path: str, body):
        """POST /api/v2``path``."""
        return self.request("POST", path, body)

    def patch(self, path: str, body):
        """PATCH /api/v2``path``."""
        return self.request("PATCH", path, body)

    def run_state(self, dag_id: str, run_id: str) -> str:
        """The state of one DAG run."""
        return self.get(f"/dags/{dag_id}/dagRuns/{quoted(run_id)}")["state"]

    def active_runs(self, dag_id: str) -> list[str]:
        """The ids of ``dag_id``'s runs that are queued or running (of its latest 100)."""
        return [r["dag_run_id"] for r in self.get(f"/dags/{dag_id}/dagRuns?limit=100")["dag_runs"]
                if r["state"] in ("queued", "running")]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        """The task instances of one run (task_id, state, hostname, queue, try_number ...)."""
        return self.get(f"/dags/{dag_id}/dagRuns/{quoted(run_id)}/taskInstances")["task_instances"]

    def parsed_dags(self) -> tuple[list[str], list[dict]] | None:
        """(DAG ids, import errors) once the DAG processor has parsed the DAG folder; None before
        (or while the API cannot say)."""
        try:
            dags = self.get("/dags?limit=100")["dags"]
            errors = self.get("/importErrors?limit=100")["import_errors"]
        except (LauncherError, OSError, ValueError, KeyError, TypeError, urllib.error.URLError):
            return None
        if not dags and not errors:
            return None
        return sorted(d["dag_id"] for d in dags), errors


def quoted(value: str) -> str:
    """A run id or task id as one URL path segment (run ids hold ':' and '+')."""
    return urllib.parse.quote(value, safe="")


def http_json(url: str, timeout: float = 5.0):
    """GET ``url`` (no auth) and parse the JSON answer; None when it does not answer yet."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - http on loopback
            return json.loads(response.read().decode() or "null")
    except (urllib.error.URLError, OSError, ValueError):
        return None


def components_healthy(base_url: str, timeout: float = 5.0) -> bool:
    """Whether the api-server at ``base_url`` answers and reports every part of :data:`HEALTH_PARTS` healthy."""
    health = http_json(f"{base_url.rstrip('/')}/api/v2/monitor/health", timeout=timeout)
    return isinstance(health, dict) and all((health.get(part) or {}).get("status") == "healthy"
                                            for part in HEALTH_PARTS)


def poll(condition: Callable[[], T], timeout: float, interval: float = 0.3) -> T | None:
    """Call ``condition`` every ``interval`` s for up to ``timeout`` s; its first truthy value, else None."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def wait_until(what: str, condition: Callable[[], T], timeout: float, interval: float = 2.0) -> T:
    """:func:`poll`, and LauncherError naming ``what`` when ``condition`` stays falsy for ``timeout`` s."""
    value = poll(condition, timeout, interval)
    if not value:
        raise LauncherError(f"timed out after {timeout:.0f} s waiting for {what}")
    return value
