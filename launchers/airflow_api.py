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

from launchers import SQLITE_LOCK_WAIT_SECONDS, LauncherError

T = TypeVar("T")


class NoAnswer(LauncherError, OSError):
    """The API server did not answer (timed out, refused, reset): says which request and how long it waited.
    An OSError too, so a caller that polls through a restart keeps catching it as one."""
#: the parts of /api/v2/monitor/health that must say "healthy" before a launcher reports ready
HEALTH_PARTS = ("metadatabase", "scheduler", "dag_processor", "triggerer")


#: seconds to wait for an answer: longer than a write on make ui's SQLite may wait for the lock, so such a
#: request gets its answer (or the server's "database is locked"), never a client time-out of unknown outcome
DEFAULT_TIMEOUT = 2.0 * SQLITE_LOCK_WAIT_SECONDS


class AirflowApi:
    """A small client of Airflow's public REST API (/api/v2) with a JWT from /auth/token.

    ``attempts``: how often a request that is safe to repeat is tried when the server does not answer (a busy
    api-server may time out): reads, and the login; another write is sent once (it may have been applied).
    """

    def __init__(self, base_url: str, username: str, password: str, timeout: float = DEFAULT_TIMEOUT,
                 attempts: int = 3):
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.password = password
        self.timeout = timeout
        self.attempts = attempts
        self._token: str | None = None

    def _send(self, method: str, url: str, body=None, headers: dict | None = None, repeatable: bool = False):
        """One request; with ``repeatable``, up to ``attempts`` tries while the server does not answer.
        NoAnswer names the request and the wait when no try got an answer."""
        data = None if body is None else json.dumps(body).encode()
        tries = max(self.attempts, 1) if repeatable else 1
        for attempt in range(1, tries + 1):
            request = urllib.request.Request(url, data=data, method=method,  # noqa: S310 - http on loopback
                                             headers={"Content-Type": "application/json", **(headers or {})})
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                    text = response.read().decode()
                return json.loads(text) if text else None
            except urllib.error.HTTPError:
                raise
            except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
                reason = getattr(err, "reason", err)
                if attempt == tries:
                    raise NoAnswer(f"{method} {url}: no answer ({reason}; {tries} tr{'y' if tries == 1 else 'ies'}"
                                   f" of up to {self.timeout:g} s)") from err
                time.sleep(2)
        raise AssertionError("unreachable")

    def token(self) -> str:
        """A fresh access token for the user (the simple auth manager's login; safe to repeat)."""
        answer = self._send("POST", f"{self.base_url}/auth/token",
                            {"username": self.username, "password": self.password}, repeatable=True)
        self._token = answer["access_token"]
        return self._token

    def request(self, method: str, path: str, body=None):
        """``method`` /api/v2``path`` with the token; the parsed JSON answer (LauncherError on HTTP errors,
        NoAnswer when the server does not answer)."""
        if self._token is None:
            self.token()
        url = f"{self.base_url}/api/v2{path}"
        for attempt in range(2):
            try:
                return self._send(method, url, body, {"Authorization": f"Bearer {self._token}"},
                                  repeatable=method == "GET")
            except urllib.error.HTTPError as err:
                if err.code == 401 and attempt == 0:  # the token expired: log in again, once
                    self.token()
                    continue
                detail = err.read().decode(errors="replace")[:500]
                raise LauncherError(f"{method} {url}: HTTP {err.code}: {detail}") from None
        raise LauncherError(f"{method} {url}: HTTP 401 after logging in again")

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
