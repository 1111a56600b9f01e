"""PublishReportOperator: HTML report with plots for a model that passed the gate."""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Sequence
from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from airsage.naming import run_ds
from airsage.numbers import readable
from airsage.operators.report_outcome import ReportOutcomeOperator, reported_dates
from airsage.property_files import is_number, metric_rows


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


def render_plots(actual: list[float], predicted: list[float]) -> dict[str, str]:
    """The two plots as inline SVG (``sm_pipeline.charts``: no plotting library, the same data gives the same bytes)."""
    from sm_pipeline.charts import histogram, scatter

    return {
        "Predicted vs actual": scatter(actual, predicted, title="Predicted vs actual", xlabel="actual",
                                       ylabel="predicted"),
        "Residuals": histogram([p - a for a, p in zip(actual, predicted, strict=True)], title="Residuals",
                               xlabel="residual (predicted - actual)"),
    }


def render_html(*, title: str, ds: str, report: Any, threshold: float, value: float, metric: str, comparison: str,
                execution: dict, model_package_arn: str | None, run_id: str = "", plots: dict[str, str] | None = None,
                sections: tuple[str, ...] = ()) -> str:
    """The report page; every value is escaped, every number shown with 4 significant digits.

    ``plots``: heading -> inline SVG (``render_plots``); ``sections``: HTML blocks appended in order (each
    built by its own function, e.g. :func:`lineage_section`, :func:`metric_history_section`).
    """
    from airsage.quality_gate import outcome_line

    esc = html.escape
    rows = "".join(
        f"<tr><td>{esc(path)}</td><td>{esc(readable(v))}</td>"
        f"<td>{esc(readable(std)) if std is not None else ''}</td></tr>"
        for path, v, std in metric_rows(report)
    )
    version = model_package_arn.rsplit("/", 1)[-1] if model_package_arn else "n/a"
    links = execution_links(execution)
    images = "".join(f'<h2>{esc(heading)}</h2><figure>{svg}</figure>' for heading, svg in (plots or {}).items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)} {esc(ds)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px}}
figure{{margin:0}}.num{{text-align:right}}</style>
</head><body>
<h1>{esc(title)} &mdash; {esc(ds)}</h1>
<p>quality gate: <b>{esc(outcome_line(metric, value, threshold, comparison))}</b>: passed.
DAG run {esc(run_id)}. Raw values: metrics.json.</p>
<h2>Metrics</h2>
<table><tr><th>metric</th><th>value</th><th>standard deviation</th></tr>{rows}</table>
<h2>Model</h2>
<table>
<tr><td>model package ARN</td><td>{esc(model_package_arn or 'n/a (not reported by the backend)')}</td></tr>
<tr><td>model package version</td><td>{esc(version)}</td></tr>
<tr><td>pipeline execution</td><td>{esc(execution.get('execution_arn') or '')}</td></tr>
<tr><td>execution link</td><td>{links}</td></tr>
</table>
{images}
{"".join(sections)}
</body></html>
"""


def changes_section(what_changed: dict | None) -> str:
    """What changed since the last good run (``airsage.what_changed.changes_since_last_good_run``), one line each."""
    if not what_changed:
        return ""
    esc = html.escape
    items = "".join(f"<li>{esc(line)}</li>" for line in what_changed.get("summary") or [])
    return f"<h2>What changed since the last good run</h2><ul>{items}</ul>"


def dry_run_html(*, title: str, ds: str, run_id: str, diff: dict | None, plan: dict | None) -> str:
    """The page of a dry run: what the deploy would change and what the run would re-run (nothing ran)."""
    esc = html.escape

    def lines(part: dict | None, missing: str) -> str:
        return "".join(f"<li><code>{esc(line)}</code></li>" for line in (part or {}).get("summary") or [missing])

    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)} {esc(ds)} (dry run)</title>
<style>body{{font-family:sans-serif;margin:2em}}li{{margin:2px 0}}</style>
</head><body>
<h1>{esc(title)} &mdash; {esc(ds)} (dry run)</h1>
<p>DAG run {esc(run_id)} was a dry run: the data was staged, the pipeline was not updated and no execution started.
Raw values: dry_run.json.</p>
<h2>Dry run: what would change</h2>
<h3>The definition (against the deployed one)</h3><ul>{lines(diff, "upsert_pipeline recorded no diff")}</ul>
<h3>What would re-run (against the last Succeeded execution)</h3><ul>{lines(plan, "upsert_pipeline recorded no plan")}</ul>
</body></html>
"""


def execution_links(execution: dict) -> str:
    """Links to the execution that work where the report is opened.

    The local backend's page is a file beside the execution's records (``execution_page_href``, relative
    to the report, so it works from the object root on any machine) and the same page on the Airflow
    API server; the SageMaker backend links the console.
    """
    esc = html.escape
    links = []
    if execution.get("execution_page_href"):
        links.append(f'<a href="{esc(execution["execution_page_href"])}">execution page (file beside the records)</a>')
    url = execution.get("console_url") or ""
    if url:
        what = "on the Airflow API server" if execution.get("execution_page_href") else url
        links.append(f'<a href="{esc(url)}">{esc(what)}</a>')
    return " &middot; ".join(links) or "n/a"


def _seconds(value: Any) -> str:
    if value is None:
        return ""
    seconds = float(value)
    return f"{seconds:.1f} s" if seconds < 60 else f"{int(seconds // 60)} min {int(round(seconds % 60)):02d} s"


def lineage_section(execution: dict, model_package_arn: str | None, billed: str | None = None) -> str:
    """Lineage and cost of the run: the execution, its steps (duration, cost), its inputs, the model package;
    ``billed``: what Cost Explorer says (a line), on real AWS."""
    from sm_pipeline.cost import figure, usd

    esc = html.escape
    cost = execution.get("cost") or {}
    estimate = {line["step"]: line for line in (cost.get("estimate") or {}).get("steps") or []}
    rows = "".join(
        f"<tr><td>{esc(step['name'])}</td><td>{esc(str(step.get('status')))}</td>"
        f"<td class=num>{esc(_seconds(step.get('seconds')))}</td>"
        f"<td class=num>{esc(usd(estimate[step['name']]['usd']) if step['name'] in estimate else '')}</td>"
        f"<td>{esc(step.get('note') or (estimate.get(step['name']) or {}).get('note') or '')}</td></tr>"
        for step in execution.get("steps") or [])
    inputs = "".join(f"<tr><td>{esc(name)}</td><td>{esc(str(value))}</td></tr>"
                     for name, value in sorted((execution.get("parameters") or {}).items())
                     if str(value).startswith("s3://"))
    prices = cost.get("prices") or {}
    return f"""<h2>Lineage and cost</h2>
<table>
<tr><td>pipeline execution</td><td>{esc(execution.get('execution_arn') or '')} ({esc(str(execution.get('status') or ''))})</td></tr>
<tr><td>links</td><td>{execution_links(execution)}</td></tr>
{inputs}
<tr><td>model package</td><td>{esc(model_package_arn or 'none registered')}</td></tr>
<tr><td>estimated cost</td><td>{esc(figure(cost.get('estimate')))} (bound before it started: {esc(figure(cost.get('bound')))})</td></tr>
{f"<tr><td>billed</td><td>{esc(billed)}</td></tr>" if billed else ""}
</table>
<table><tr><th>step</th><th>status</th><th>duration</th><th>cost</th><th></th></tr>{rows}</table>
<p><small>Cost: an estimate of the on-demand instance time SageMaker bills ({esc(cost.get('currency') or 'USD')}, region
{esc(str(cost.get('region') or 'unknown'))}, prices: {esc(prices.get('source') or 'none')}, read
{esc(str(prices.get('retrieved') or 'never'))}), not a bill: no storage, data transfer, Savings Plans, Spot, free tier or
tax. Unknown is unknown, never 0.</small></p>
"""


def metric_history_section(history: list[tuple[str, float, bool]], *, metric: str, threshold: float,
                           comparison: str) -> str:
    """The metric per logical date reported so far (from each date's latest.json), drawn with the threshold."""
    from sm_pipeline.charts import history as draw

    if not history:
        return ""
    esc = html.escape
    svg = draw(history, threshold=threshold, title=f"{metric} per logical date (gate: {comparison} {readable(threshold)})",
               ylabel=metric)
    return f"<h2>{esc(metric)} history</h2><figure>{svg}</figure>"


def read_metric_history(store, reports_prefix: str, *, metric: str, comparison: str,
                        current: tuple[str, float, float], limit: int = 90) -> list[tuple[str, float, bool]]:
    """``(ds, value, passed)`` of the latest outcome of the ``limit`` dates up to this run's under ``reports_prefix``.

    Reads each date's ``latest.json`` and the metrics.json / ALERT.json it points at; ``passed`` is against
    the threshold that date's run used. Later dates are left out: a date's report shows the history as of
    that date, so re-running it (a backfill, a clear) writes the same bytes. ``current`` = ``(ds, value, threshold)`` of this run, which its date's
    latest.json does not point at yet. A date whose files are missing, malformed or about another metric is
    left out.
    """
    from airsage.hooks.artifact_store import ArtifactNotFound
    from airsage.quality_gate import passes

    base = reports_prefix.rstrip("/")
    dates = reported_dates(store, base)
    found: dict[str, tuple[float, float]] = {}
    for ds in [d for d in dates if d < current[0]][-limit:]:
        try:
            pointer = json.loads(store.read_bytes(f"{base}/ds={ds}/latest.json"))
            folder = str(pointer["uri"]).rsplit("/", 1)[0]
            record = json.loads(store.read_bytes(f"{folder}/{'metrics.json' if pointer.get('kind') == 'report' else 'ALERT.json'}"))
            if record.get("metric") == metric and is_number(record.get("value")) and is_number(record.get("threshold")):
                found[ds] = (float(record["value"]), float(record["threshold"]))
        except (ArtifactNotFound, ValueError, KeyError, TypeError, AttributeError):
            continue
    found[current[0]] = (float(current[1]), float(current[2]))
    return [(ds, value, passes(value, threshold, comparison)) for ds, (value, threshold) in sorted(found.items())[-limit:]]


class PublishReportOperator(ReportOutcomeOperator):
    """Write ``report.html`` and ``metrics.json`` under ``reports/ds=YYYY-MM-DD/run=<run id>/``.

    The page shows the quality gate's outcome, every number of the evaluation report, the model
    package, the run's lineage and cost (the execution, its steps with durations and cost, its S3
    inputs, the model package; :func:`lineage_section`) and the metric's history over the dates reported
    so far (:func:`metric_history_section`). With ``predictions_file`` (a CSV with ``actual`` and
    ``predicted`` columns beside the evaluation report, as a regression's evaluation step writes it) it
    also draws predicted vs actual and the residuals, as inline SVG. ``metrics.json`` keeps the raw
    values; the page shows 4 significant digits. Objects whose bytes are unchanged are not rewritten;
    ``latest.json`` of the date then points at this report. Nothing from the connection goes into the report.

    :param title: the report's heading (default: the DAG id).
    :param predictions_file: the predictions CSV's name beside the evaluation report, or None (no plots).
    :param execution: the execution task's XCom (``airsage.execution_result``; templated): steps, cost,
        the local execution page. Optional: without it the lineage section shows what ``metrics`` carries.
    :param cost_explorer: ``"auto"`` (default: on the SageMaker backend against real AWS, not an emulator),
        True or False: add what Cost Explorer says for the pipeline's cost tag (``airsage.hooks.cost_explorer``).
    :param cost_tag_key: the tag the pipeline puts on every step (its value is read from the execution's
        definition).
    :param dry_run: the DAG run is a dry run (templated, ``"{{ params.dry_run }}"``): write ``report.html`` with
        "Dry run: what would change" (``upsert_task_id``'s ``diff`` and ``plan`` XComs) and ``dry_run.json`` in the
        run's folder; ``latest.json`` keeps pointing at the date's last real outcome.
    Every real report also says what changed since the last good run (``airsage.what_changed``), also in
    ``metrics.json`` under ``what_changed``.
    Other parameters: see :class:`ReportOutcomeOperator`.
    """

    template_fields: Sequence[str] = (*ReportOutcomeOperator.template_fields, "title", "execution", "dry_run")
    ui_color = "#e8fdf0"

    def __init__(self, *, title: str | None = None, predictions_file: str | None = None,
                 execution: dict | Any = None, cost_explorer: bool | str = "auto", cost_tag_key: str = "cost-center",
                 dry_run: bool | str = False, upsert_task_id: str = "upsert_pipeline", **kwargs):
        super().__init__(**kwargs)
        self.title = title
        self.predictions_file = predictions_file
        self.execution = execution
        self.cost_explorer = cost_explorer
        self.cost_tag_key = cost_tag_key
        self.dry_run = dry_run
        self.upsert_task_id = upsert_task_id

    def billed_line(self, execution: dict) -> str | None:
        """What Cost Explorer says for the execution's cost tag and days, as one line; None when not asked."""
        from datetime import date

        from airsage.hooks.cost_explorer import CostExplorerHook

        if self.backend != "sagemaker" or self.cost_explorer is False or not execution.get("execution_arn"):
            return None
        hook = CostExplorerHook(aws_conn_id=self.aws_conn_id)
        if self.cost_explorer == "auto" and not hook.is_real_aws():
            return None
        tag = self._cost_tag(execution["execution_arn"])
        days = [date.fromisoformat(str(s[k])[:10]) for s in execution.get("steps") or [] for k in ("start", "end")
                if s.get(k)]
        if tag is None or not days:
            return f"Cost Explorer: not asked (no {self.cost_tag_key!r} tag on the execution's steps, or no step ran)"
        figure = hook.tagged_cost(self.cost_tag_key, tag, min(days), max(days))
        (self.log.info if figure["usd"] is not None else self.log.warning)("%s", figure["line"])
        return figure["line"]

    def _cost_tag(self, execution_arn: str) -> str | None:
        from airsage.hooks.sagemaker_pipeline import SageMakerPipelineHook

        definition = SageMakerPipelineHook(aws_conn_id=self.aws_conn_id).definition_for_execution(execution_arn)
        for step in definition.get("Steps") or []:
            for tag in (step.get("Arguments") or {}).get("Tags") or []:
                if isinstance(tag, dict) and tag.get("Key") == self.cost_tag_key and isinstance(tag.get("Value"), str):
                    return tag["Value"]
        return None

    def execute(self, context) -> dict[str, Any]:
        import os

        from airsage.hooks.artifact_store import ArtifactNotFound, ArtifactStore
        from airsage.operators.report_outcome import LEGACY_PLOT_FILES

        ds, run_id = run_ds(context), context["run_id"]
        self.date_prefix(context)  # fail before reading anything when the prefix is another date's
        store = ArtifactStore(self.backend, self.aws_conn_id, self.local_root)
        if str(self.dry_run).strip().lower() in ("true", "1", "yes"):
            return self._publish_dry_run(context, store, ds, run_id)
        if not isinstance(self.metrics, dict):
            raise AirflowFailException("no metrics to report: read_metrics gave none (and this is not a dry run)")
        files: dict[str, bytes] = {}
        plots: dict[str, str] = {}
        if self.predictions_file:
            predictions_uri = self.metrics["report_uri"].rsplit("/", 1)[0] + "/" + self.predictions_file
            try:
                actual, predicted = read_predictions(store.read_bytes(predictions_uri), predictions_uri)
            except (ArtifactNotFound, ValueError) as err:
                raise AirflowFailException(f"cannot plot: {err}") from None
            plots = render_plots(actual, predicted)

        from airsage.model_approval import report_section
        from airsage.quality_gate import outcome_line

        execution = {k: self.metrics.get(k) for k in ("execution_arn", "console_url")}
        full = {**(self.execution if isinstance(self.execution, dict) else {}), **execution}
        folder = self.run_prefix(context)
        if full.get("execution_page") and self.backend == "local":
            # relative to the report, so the link works wherever the object root is opened
            report_dir = os.path.dirname(store.location(f"{folder}/report.html"))
            full["execution_page_href"] = os.path.relpath(full["execution_page"], report_dir)
        report = self.metrics.get("report") or {}
        model_package = self.metrics.get("model_package_arn")
        threshold, value = float(self.threshold), float(self.metrics["value"])
        from airsage.what_changed import changes_since_last_good_run

        what_changed = changes_since_last_good_run(
            self.backend, store, self.report_prefix.rstrip("/").rsplit("/", 1)[0], ds, execution.get("execution_arn"),
            aws_conn_id=self.aws_conn_id, local_root=self.local_root, log=self.log)
        self.log.info("What changed since the last good run:\n%s", "\n".join(what_changed["summary"]))
        files["metrics.json"] = json.dumps(
            {"ds": ds, "run_id": run_id, "metric": self.metrics["metric"], "value": self.metrics["value"],
             "threshold": threshold, "comparison": self.comparison, "report": report, **execution,
             "model_package_arn": model_package, "cost": full.get("cost"), "what_changed": what_changed},
            indent=2, sort_keys=True,
        ).encode()
        history = read_metric_history(store, self.report_prefix.rstrip("/").rsplit("/", 1)[0],
                                      metric=self.metrics["metric"], comparison=self.comparison,
                                      current=(ds, value, threshold))
        files["report.html"] = render_html(
            title=self.title or f"{context['dag'].dag_id} model report", ds=ds, report=report,
            threshold=threshold, value=value, metric=self.metrics["metric"],
            comparison=self.comparison, execution=full, model_package_arn=model_package,
            run_id=run_id, plots=plots,
            sections=(changes_section(what_changed),
                      lineage_section(full, model_package, billed=self.billed_line(full)),
                      metric_history_section(history, metric=self.metrics["metric"], threshold=threshold,
                                             comparison=self.comparison),
                      # the approval task replaces it with the decision (airsage.model_approval)
                      report_section(None, model_package)),
        ).encode()
        for name in LEGACY_PLOT_FILES:  # the PNGs earlier versions wrote beside the page
            store.delete(f"{folder}/{name}")
        out = self.publish_outcome(store, context, "report", files, "report.html")
        self.log.info("Report for ds=%s run %s: %s (%s; %d of %d files written)", ds, run_id, out["location"],
                      outcome_line(self.metrics["metric"], self.metrics["value"], self.threshold, self.comparison),
                      len(out["written"]), len(files))
        from airsage.assets import emit

        self._lineage = {"inputs": [self.metrics["report_uri"]], "outputs": [out["uri"], f"{folder}/metrics.json"]}
        emit(context, self.outlets, "report", {"ds": ds, "run_id": run_id, "uri": out["uri"],
                                               "location": out["location"], "dry_run": False})
        if full.get("cost"):
            from sm_pipeline.cost import summary_line

            self.log.info("Cost of execution %s: %s", full.get("execution_arn"), summary_line(full["cost"]))
        return {"report_uri": out["uri"], "report_location": out["location"], "written": out["written"],
                "latest_uri": out["latest_uri"]}

    def _publish_dry_run(self, context, store, ds: str, run_id: str) -> dict[str, Any]:
        """A dry run's page and record in the run's folder (no latest.json: nothing ran)."""
        ti = context["ti"]
        diff = ti.xcom_pull(task_ids=self.upsert_task_id, key="diff")
        plan = ti.xcom_pull(task_ids=self.upsert_task_id, key="plan")
        folder = self.run_prefix(context)
        files = {
            "report.html": dry_run_html(title=self.title or f"{context['dag'].dag_id} model report", ds=ds,
                                        run_id=run_id, diff=diff, plan=plan).encode(),
            "dry_run.json": json.dumps({"ds": ds, "run_id": run_id, "dry_run": True, "diff": diff, "plan": plan},
                                       indent=2, sort_keys=True, default=str).encode(),
        }
        written = [name for name, data in files.items()
                   if store.put_if_changed(f"{folder}/{name}", data,
                                           "text/html" if name.endswith(".html") else "application/json")]
        self.log.info("Dry run: what would change, for ds=%s run %s: %s\n%s\n%s", ds, run_id,
                      store.location(f"{folder}/report.html"), "\n".join((diff or {}).get("summary") or []),
                      "\n".join((plan or {}).get("summary") or []))
        self._lineage = {"inputs": [], "outputs": [f"{folder}/report.html"]}
        from airsage.assets import emit

        # the task succeeds, so Airflow records a report event: its extra says a consumer has nothing to act on
        emit(context, self.outlets, "report", {"ds": ds, "run_id": run_id, "uri": f"{folder}/report.html",
                                               "location": store.location(f"{folder}/report.html"), "dry_run": True})
        return {"report_uri": f"{folder}/report.html", "report_location": store.location(f"{folder}/report.html"),
                "written": written, "latest_uri": None, "dry_run": True}

    def get_openlineage_facets_on_complete(self, task_instance):
        """OpenLineage (the provider calls it): the evaluation report in, report.html and metrics.json out."""
        from airsage.lineage import operator_lineage, s3_datasets

        info = getattr(self, "_lineage", None) or {}
        return operator_lineage(inputs=s3_datasets(info.get("inputs", [])), outputs=s3_datasets(info.get("outputs", [])))
