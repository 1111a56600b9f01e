"""PublishReportOperator: HTML report with plots for a model that passed the gate."""

from __future__ import annotations

import csv
import html
import io
import json
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from airsage.operators.report_outcome import ReportOutcomeOperator

REPORT_FILES = ("report.html", "metrics.json", "predicted_vs_actual.png", "residual_histogram.png")


def read_predictions(data: bytes, uri: str) -> tuple[list[float], list[float]]:
    """(actual, predicted) columns of predictions.csv; ValueError naming the URI and row."""
    reader = csv.DictReader(io.StringIO(data.decode("utf-8")))
    if not reader.fieldnames or not {"actual", "predicted"} <= set(reader.fieldnames):
        raise ValueError(f"{uri}: header {reader.fieldnames} lacks 'actual,predicted'")
    actual, predicted = [], []
    for line, row in enumerate(reader, start=2):
        try:
            actual.append(float(row["actual"]))
            predicted.append(float(row["predicted"]))
        except (TypeError, ValueError):
            raise ValueError(f"{uri}: line {line} is not numeric: {row}") from None
    if not actual:
        raise ValueError(f"{uri}: no predictions")
    return actual, predicted


def render_plots(actual: list[float], predicted: list[float]) -> dict[str, bytes]:
    """The two PNGs; matplotlib is imported here, in the task, never at DAG parse time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pngs = {}
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(actual, predicted, s=8, alpha=0.5)
    low, high = min(actual + predicted), max(actual + predicted)
    ax.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=1)
    ax.set(xlabel="actual rings", ylabel="predicted rings", title="Predicted vs actual")
    pngs["predicted_vs_actual.png"] = _png(fig, plt)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.hist([p - a for a, p in zip(actual, predicted, strict=True)], bins=30)
    ax.set(xlabel="residual (predicted - actual)", ylabel="count", title="Residuals")
    pngs["residual_histogram.png"] = _png(fig, plt)
    return pngs


def _png(fig, plt) -> bytes:
    buffer = io.BytesIO()
    # no Software/date metadata: the same data gives the same bytes, so re-runs write nothing
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def render_html(*, ds: str, metrics: dict, threshold: float, value: float, metric: str,
                execution: dict, model_package_arn: str | None) -> str:
    """The report page; every value is escaped."""
    esc = html.escape
    rows = "".join(
        f"<tr><td>{esc(str(name))}</td><td>{esc(str(m.get('value')))}</td>"
        f"<td>{esc(str(m.get('standard_deviation', '')))}</td></tr>"
        for name, m in metrics.items() if isinstance(m, dict)
    )
    version = model_package_arn.rsplit("/", 1)[-1] if model_package_arn else "n/a"
    link = execution.get("console_url") or ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>abalone model report {esc(ds)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px}}</style>
</head><body>
<h1>Abalone model report &mdash; {esc(ds)}</h1>
<p>{esc(metric)} = <b>{value:.4f}</b> &le; threshold {threshold:g}: passed.</p>
<h2>Metrics</h2>
<table><tr><th>metric</th><th>value</th><th>standard deviation</th></tr>{rows}</table>
<h2>Model</h2>
<table>
<tr><td>model package ARN</td><td>{esc(model_package_arn or 'n/a (not reported by the backend)')}</td></tr>
<tr><td>model package version</td><td>{esc(version)}</td></tr>
<tr><td>pipeline execution</td><td>{esc(execution.get('execution_arn') or '')}</td></tr>
<tr><td>execution link</td><td><a href="{esc(link)}">{esc(link)}</a></td></tr>
</table>
<h2>Predicted vs actual</h2><img src="predicted_vs_actual.png" alt="predicted vs actual">
<h2>Residuals</h2><img src="residual_histogram.png" alt="residual histogram">
</body></html>
"""


class PublishReportOperator(ReportOutcomeOperator):
    """Write ``report.html``, ``metrics.json`` and two PNGs under ``reports/ds=YYYY-MM-DD/``.

    Plots come from ``predictions.csv`` beside the evaluation report. Objects whose bytes
    are unchanged are not rewritten. Nothing from the connection goes into the report.

    Parameters: see :class:`ReportOutcomeOperator`.
    """

    ui_color = "#e8fdf0"

    def execute(self, context) -> dict[str, Any]:
        from airsage.hooks.artifact_store import ArtifactNotFound, ArtifactStore

        ds = context["ds"]
        if not self.report_prefix.rstrip("/").endswith(f"ds={ds}"):
            raise AirflowFailException(f"report prefix {self.report_prefix} is not this run's ds={ds}")
        store = ArtifactStore(self.backend, self.aws_conn_id, self.local_root)
        predictions_uri = self.metrics["report_uri"].rsplit("/", 1)[0] + "/predictions.csv"
        try:
            actual, predicted = read_predictions(store.read_bytes(predictions_uri), predictions_uri)
        except (ArtifactNotFound, ValueError) as err:
            raise AirflowFailException(f"cannot plot: {err}") from None

        execution = {k: self.metrics.get(k) for k in ("execution_arn", "console_url")}
        report = self.metrics.get("report") or {}
        files = render_plots(actual, predicted)
        files["metrics.json"] = json.dumps(
            {"ds": ds, "metric": self.metrics["metric"], "value": self.metrics["value"],
             "threshold": float(self.threshold), "report": report, **execution,
             "model_package_arn": self.metrics.get("model_package_arn")},
            indent=2, sort_keys=True,
        ).encode()
        files["report.html"] = render_html(
            ds=ds, metrics=report.get("regression_metrics", {}), threshold=float(self.threshold),
            value=float(self.metrics["value"]), metric=self.metrics["metric"], execution=execution,
            model_package_arn=self.metrics.get("model_package_arn"),
        ).encode()
        prefix = self.report_prefix.rstrip("/")
        types = {".html": "text/html", ".json": "application/json", ".png": "image/png"}
        written = [
            name for name in REPORT_FILES
            if store.put_if_changed(f"{prefix}/{name}", files[name], types[name[name.rindex("."):]])
        ]
        location = store.location(f"{prefix}/report.html")
        self.log.info("Report for ds=%s: %s (%d of %d files written)", ds, location, len(written), len(files))
        return {"report_uri": f"{prefix}/report.html", "report_location": location, "written": written}
