"""WebhookNotifier: POST a JSON payload to a URL (Slack/Teams/PagerDuty bridges, an HTTP inbox)."""

from __future__ import annotations

import ipaddress
import json
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from airflow.sdk.bases.notifier import BaseNotifier

DEFAULT_TIMEOUT = 10.0


class WebhookError(RuntimeError):
    """The webhook did not accept the notification; the message is one line without secrets."""


def redacted(url: str) -> str:
    """``scheme://host[:port]/…``: webhook paths and queries often hold the secret (Slack, Teams)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    rest = "/…" if (parts.path not in ("", "/") or parts.query) else ""
    return f"{parts.scheme}://{host}{port}{rest}"


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirected POST turns into a GET without the payload: report it instead of following it.
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class WebhookNotifier(BaseNotifier):
    """POST ``payload`` as JSON to ``url``; raises WebhookError (one line) when it is not accepted.

    Loopback-safe: a loopback URL (127.0.0.1, ::1, localhost) never goes through the proxy of
    ``HTTP(S)_PROXY``; other URLs use the environment's proxy settings as urllib does. Redirects
    are not followed (they would drop the payload), any 2xx is success, and ``timeout`` bounds
    the whole call. Errors name the URL without its path (which often is the secret).

    Nothing is templated: the payload holds failure reasons, which are data, not Jinja.
    """

    template_fields = ()

    def __init__(self, *, url: str, payload: dict, timeout: float = DEFAULT_TIMEOUT, **kwargs):
        super().__init__(**kwargs)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"webhook URL must be http:// or https:// with a host, got {redacted(url)}")
        self.url = url
        self.payload = payload
        self.timeout = timeout

    def notify(self, context) -> None:
        """Send the payload (sync; the task and its failure callback run it)."""
        body = json.dumps(self.payload, default=str).encode("utf-8")
        request = urllib.request.Request(  # noqa: S310 - scheme checked in __init__ (http/https only)
            self.url, data=body, method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "airsage-on-call/1"},
        )
        handlers: list = [_NoRedirect()]
        if _is_loopback(urlsplit(self.url).hostname):
            handlers.append(urllib.request.ProxyHandler({}))
        opener = urllib.request.build_opener(*handlers)
        where = redacted(self.url)
        try:
            with opener.open(request, timeout=self.timeout) as response:
                status = response.status
        except urllib.error.HTTPError as err:
            raise WebhookError(f"POST {where} answered HTTP {err.code} {err.reason}") from None
        except TimeoutError:
            raise WebhookError(f"POST {where} timed out after {self.timeout:g} s") from None
        except urllib.error.URLError as err:
            reason = err.reason
            if isinstance(reason, TimeoutError):
                raise WebhookError(f"POST {where} timed out after {self.timeout:g} s") from None
            raise WebhookError(f"POST {where} failed: {reason}") from None
        except OSError as err:
            raise WebhookError(f"POST {where} failed: {err}") from None
        if not 200 <= status < 300:
            raise WebhookError(f"POST {where} answered HTTP {status}")
