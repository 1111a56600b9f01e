"""PublishReportOperator: HTML report with plots for a model that passed the gate."""

from __future__ import annotations

import csv
import html
import io
import json
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from airsage.naming import run_ds
from airsage.numbers import readable
from airsage.operators.report_outcome import REPORT_FILES, ReportOutcomeOperator


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
                execution: dict, model_package_arn: str | None, run_id: str = "") -> str:
    """The report page; every value is escaped, every number shown with 4 significant digits."""
    esc = html.escape
    rows = "".join(
        f"<tr><td>{esc(str(name))}</td><td>{esc(readable(m.get('value')))}</td>"
        f"<td>{esc(readable(m['standard_deviation']) if 'standard_deviation' in m else '')}</td></tr>"
        for name, m in metrics.items() if isinstance(m, dict)
    )
    version = model_package_arn.rsplit("/", 1)[-1] if model_package_arn else "n/a"
    link = execution.get("console_url") or ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>abalone model report {esc(ds)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px}}</style>
</head><body>
<h1>Abalone model report &mdash; {esc(ds)}</h1>
<p>{esc(metric)} = <b>{esc(readable(value))}</b> &le; threshold {esc(readable(threshold))}: passed.
DAG run {esc(run_id)}. Raw values: metrics.json.</p>
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
    """Write ``report.html``, ``metrics.json`` and two PNGs under ``reports/ds=YYYY-MM-DD/run=<run id>/``.

    Plots come from ``predictions.csv`` beside the evaluation report. ``metrics.json`` keeps the
    raw values; the page shows 4 significant digits. Objects whose bytes are unchanged are not
    rewritten; ``latest.json`` of the date then points at this report. Nothing from the
    connection goes into the report.

    Parameters: see :class:`ReportOutcomeOperator`.
    """

    ui_color = "#e8fdf0"

    def execute(self, context) -> dict[str, Any]:
        from airsage.hooks.artifact_store import ArtifactNotFound, ArtifactStore

        ds, run_id = run_ds(context), context["run_id"]
        self.date_prefix(context)  # fail before reading anything when the prefix is another date's
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
            {"ds": ds, "run_id": run_id, "metric": self.metrics["metric"], "value": self.metrics["value"],
             "threshold": float(self.threshold), "report": report, **execution,
             "model_package_arn": self.metrics.get("model_package_arn")},
            indent=2, sort_keys=True,
        ).encode()
        files["report.html"] = render_html(
            ds=ds, metrics=report.get("regression_metrics", {}), threshold=float(self.threshold),
            value=float(self.metrics["value"]), metric=self.metrics["metric"], execution=execution,
            model_package_arn=self.metrics.get("model_package_arn"), run_id=run_id,
        ).encode()
        out = self.publish_outcome(store, context, "report", {name: files[name] for name in REPORT_FILES},
                                   "report.html")
        self.log.info("Report for ds=%s run %s: %s (%s %s <= threshold %s; %d of %d files written)", ds, run_id,
                      out["location"], self.metrics["metric"], readable(self.metrics["value"]),
                      readable(self.threshold), len(out["written"]), len(REPORT_FILES))
        return {"report_uri": out["uri"], "report_location": out["location"], "written": out["written"],
                "latest_uri": out["latest_uri"]}
