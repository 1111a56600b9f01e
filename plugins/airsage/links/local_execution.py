"""Operator extra link to a local execution's page, served by the Airflow API server.

The page is ``sm_pipeline.local.execution_page``'s rendering of the execution's records, mounted
by the airsage plugin at ``<api base url>/airsage/executions/<pipeline>/<execution id>``. A
browser on the Airflow UI cannot follow a ``file://`` link, so the link is HTTP.
"""

from __future__ import annotations

from urllib.parse import quote

from airflow.sdk import BaseOperatorLink

URL_PREFIX = "/airsage"
EXECUTIONS_PATH = "/executions/{pipeline_name}/{execution_id}"


def api_base_url() -> str:
    """``[api] base_url`` when set, else ``http://<[api] host>:<[api] port>`` (0.0.0.0 → 127.0.0.1)."""
    from airflow.configuration import conf

    base = (conf.get("api", "base_url", fallback="") or "").strip()
    if base:
        return base.rstrip("/")
    host = (conf.get("api", "host", fallback="") or "").strip()
    if host in ("", "0.0.0.0", "::", "[::]"):  # noqa: S104 - reading the config, not binding
        host = "127.0.0.1"
    port = (conf.get("api", "port", fallback="8080") or "8080").strip()
    return f"http://{host}:{port}"


def execution_page_url(pipeline_name: str, execution_id: str, base_url: str | None = None) -> str:
    """The URL of one local execution's page on the Airflow API server."""
    path = EXECUTIONS_PATH.format(pipeline_name=quote(pipeline_name, safe=""), execution_id=quote(execution_id, safe=""))
    return f"{(base_url or api_base_url()).rstrip('/')}{URL_PREFIX}{path}"


class LocalExecutionLink(BaseOperatorLink):
    """"Local Execution" button on ``run_local``: the execution's page (steps, statuses, logs)."""

    name = "Local Execution"
    key = "airsage_local_execution"

    def get_link(self, operator, *, ti_key) -> str:
        """The URL ``run_local`` stored in its XCom (empty before it ran)."""
        from airflow.providers.common.compat.sdk import XCom

        try:
            value = XCom.get_value(key=self.key, ti_key=ti_key)
        except Exception:  # noqa: BLE001 - a missing link must not break the task or the UI
            return ""
        return value.get("url", "") if isinstance(value, dict) else ""

    @classmethod
    def persist(cls, context, operator, url: str) -> None:
        """Store the URL in this task's XCom (the link and the UI read it there)."""
        if getattr(operator, "do_xcom_push", True):
            context["ti"].xcom_push(key=cls.key, value={"url": url})
