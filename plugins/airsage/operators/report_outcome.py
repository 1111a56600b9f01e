"""The base of the two tasks that record a DAG run's outcome under ``reports/ds=YYYY-MM-DD/``.

Layout (one folder per DAG run, never shared)::

    reports/ds=YYYY-MM-DD/run=<run id made path-safe>/   report.html (plots inline), metrics.json — or ALERT.json
    reports/ds=YYYY-MM-DD/latest.json                    {"run_id", "kind", "uri", "location", "updated"}

``latest.json`` points at the outcome of the run that finished last for the date; it is
replaced atomically (a local rename, an S3 PUT) and only when it would point elsewhere, so a
re-run of the same DAG run rewrites nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from airsage.naming import run_ds

# the plots are inline SVG in report.html; earlier versions wrote these PNGs beside it (removed when met)
LEGACY_PLOT_FILES = ("predicted_vs_actual.png", "residual_histogram.png")
REPORT_FILES = ("report.html", "metrics.json", *LEGACY_PLOT_FILES)
ALERT_FILES = ("ALERT.json",)
LATEST = "latest.json"
OUTCOME_FILES = {"report": REPORT_FILES, "alert": ALERT_FILES}


def reported_dates(store, reports_base: str) -> list[str]:
    """The dates (``YYYY-MM-DD``, oldest first) under ``reports_base`` that have a ``latest.json``."""
    base = reports_base.rstrip("/")
    return sorted({uri.rsplit("/", 2)[-2][3:] for uri in store.list_uris(f"{base}/ds=")
                   if uri.endswith(f"/{LATEST}") and uri.rsplit("/", 2)[-2].startswith("ds=")})


class ReportOutcomeOperator(BaseOperator):
    """Writes a run's outcome (report or alert) through the backend's artifact store.

    :param metrics: read_metrics' XCom dict.
    :param threshold: the threshold the gate used (templated).
    :param comparison: the quality gate's comparison, ``<=`` or ``>=`` (``airsage.quality_gate``).
    :param report_prefix: ``s3://{bucket}/{prefix}/reports/ds=YYYY-MM-DD`` (templated); the run's
        own folder ``run=<run id>`` is created below it.
    :param backend: ``sagemaker`` (S3 through the connection) or ``local`` (the object root).
    """

    template_fields: Sequence[str] = ("metrics", "threshold", "report_prefix", "backend", "aws_conn_id", "local_root")

    def __init__(self, *, metrics: dict | Any, threshold: Any, report_prefix: str, backend: str,
                 comparison: str = "<=", aws_conn_id: str | None = "aws_default", local_root: str | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        from airsage.quality_gate import COMPARISONS

        if comparison not in COMPARISONS:
            raise ValueError(f"comparison must be '<=' or '>=', not {comparison!r}")
        self.metrics = metrics
        self.threshold = threshold
        self.comparison = comparison
        self.report_prefix = report_prefix
        self.backend = backend
        self.aws_conn_id = aws_conn_id
        self.local_root = local_root

    def date_prefix(self, context) -> str:
        """``.../reports/ds=<ds>``, checked to be this run's date (a template slip never writes another date)."""
        prefix = self.report_prefix.rstrip("/")
        if not prefix.endswith(f"ds={run_ds(context)}"):
            raise AirflowFailException(f"report prefix {self.report_prefix} is not this run's ds={run_ds(context)}")
        return prefix

    def run_prefix(self, context) -> str:
        """``.../reports/ds=<ds>/run=<path-safe run id>``: this DAG run's own folder."""
        from airsage.naming import run_path_segment

        return f"{self.date_prefix(context)}/{run_path_segment(context['run_id'])}"

    def publish_outcome(self, store, context, kind: str, files: dict[str, bytes], main: str) -> dict[str, Any]:
        """Write ``files`` into the run's folder and point ``latest.json`` at ``main``.

        The other kind's files are removed from the run's folder first (a run re-done after its
        inputs changed may flip from alert to report): a folder never holds both. Unchanged
        objects are not rewritten.
        """
        types = {".html": "text/html", ".json": "application/json"}
        folder = self.run_prefix(context)
        for other, names in OUTCOME_FILES.items():
            if other != kind:
                for name in names:
                    if store.delete(f"{folder}/{name}"):
                        self.log.info("Removed %s/%s left by an earlier %s of this run", folder, name, other)
        written = [name for name, data in files.items()
                   if store.put_if_changed(f"{folder}/{name}", data, types.get(name[name.rfind("."):],
                                                                               "application/octet-stream"))]
        uri = f"{folder}/{main}"
        latest = self.point_latest(store, context, kind, uri)
        return {"uri": uri, "location": store.location(uri), "folder": folder, "written": written,
                "latest_uri": latest}

    def point_latest(self, store, context, kind: str, uri: str) -> str:
        """Replace ``latest.json`` of the date unless it already points at this outcome."""
        from airsage.hooks.artifact_store import ArtifactNotFound

        latest_uri = f"{self.date_prefix(context)}/{LATEST}"
        pointer = {"run_id": context["run_id"], "kind": kind, "uri": uri, "location": store.location(uri)}
        try:
            current = json.loads(store.read_bytes(latest_uri))
        except (ArtifactNotFound, ValueError):
            current = None
        if isinstance(current, dict) and all(current.get(k) == v for k, v in pointer.items()):
            return latest_uri
        pointer["updated"] = datetime.now(UTC).isoformat(timespec="seconds")
        store.put_bytes(latest_uri, json.dumps(pointer, indent=2, sort_keys=True).encode(), "application/json")
        self.log.info("%s now points at %s", store.location(latest_uri), pointer["location"])
        return latest_uri
