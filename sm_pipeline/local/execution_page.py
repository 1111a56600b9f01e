"""A self-contained HTML view of one local execution: steps, statuses, durations, reasons, log tails.

With the definition it also draws the pipeline as SageMaker Studio does (a graph of the steps coloured by
status, with their dependencies), a timeline of the step durations, and the cost (``sm_pipeline.cost``:
the bound before the run, the estimate once it ended).

The local runner's counterpart of the SageMaker console's execution page: rendering only. The records
(:mod:`sm_pipeline.local.records`) write it as ``index.html`` beside the execution's records each time
they change, so it can be opened from the object root, and render it from those files for the Airflow
plugin, which serves it over HTTP (``/airsage/executions/<pipeline>/<execution id>``) for the
``run_local`` extra link. Everything shown is escaped: step logs are untrusted text.
"""

from __future__ import annotations

import html
import re
from datetime import datetime
from pathlib import Path

from sm_pipeline.charts import STATUS_COLOURS

TAIL_BYTES = 6000
TAIL_LINES = 40


def _duration(start: str | None, end: str | None) -> str:
    try:
        seconds = (datetime.fromisoformat(str(end)) - datetime.fromisoformat(str(start))).total_seconds()
    except (TypeError, ValueError):
        return ""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - TAIL_BYTES))
            data = fh.read()
    except OSError:
        return ""
    lines = data.decode("utf-8", errors="replace").splitlines()
    if size > TAIL_BYTES and lines:
        lines = lines[1:]  # the first line is probably cut
    return "\n".join(lines[-TAIL_LINES:])


def _step_logs(logs_dir: Path, step: str) -> list[tuple[str, str]]:
    pattern = re.compile(rf"^{re.escape(step)}(\.[^.]+)?(\.stderr)?\.log$")
    try:
        files = sorted(p for p in logs_dir.iterdir() if pattern.match(p.name))
    except OSError:
        return []
    return [(p.name, _tail(p)) for p in files if p.is_file()]


def _status(status: str | None) -> str:
    colour = STATUS_COLOURS.get(str(status), "#24292f")
    return f'<b style="color:{colour}">{html.escape(str(status or "?"))}</b>'


def _offset(start: str | None, moment: str | None) -> float | None:
    try:
        return (datetime.fromisoformat(str(moment)) - datetime.fromisoformat(str(start))).total_seconds()
    except (TypeError, ValueError):
        return None


def pipeline_views(describe: dict, steps: list[dict], definition: dict | None) -> str:
    """The graph of the steps (coloured by status, with dependencies), the timeline, and the cost, as HTML."""
    from sm_pipeline.charts import step_graph, timeline
    from sm_pipeline.cost import execution_cost, figure, usd
    from sm_pipeline.step_graph import flatten_steps, step_dependencies

    esc = html.escape
    status = {s.get("StepName"): s.get("StepStatus") for s in steps}
    parts = []
    if definition:
        entries = flatten_steps(definition)
        edges = [(dep, entry.name) for entry in entries for dep in sorted(step_dependencies(entry))]
        parts.append("<h2>Pipeline</h2>" + step_graph([(e.name, status.get(e.name)) for e in entries], edges))
    origin = describe.get("CreationTime")
    rows = []
    for step in sorted(steps, key=lambda s: str(s.get("StartTime") or "")):
        begin = _offset(origin, step.get("StartTime"))
        end = _offset(origin, step.get("EndTime") or describe.get("LastModifiedTime"))
        if begin is not None and end is not None:
            rows.append((str(step.get("StepName")), step.get("StepStatus"), begin, max(begin, end)))
    if rows:
        parts.append("<h2>Timeline</h2>" + timeline(rows))
    if definition:
        ended = describe.get("PipelineExecutionStatus") in ("Succeeded", "Failed", "Stopped")
        values = {p.get("Name"): p.get("Value") for p in describe.get("PipelineParameters") or []}
        region = str(describe.get("PipelineExecutionArn", "")).split(":")[3:4] or [None]
        cost = execution_cost(definition, values, steps=steps if ended else None, region=region[0])
        lines = {line["step"]: line for line in (cost["estimate"] or cost["bound"])["steps"]}
        body = "".join(f"<tr><td>{esc(name)}</td><td>{esc(usd(line.get('usd')))}</td>"
                       f"<td>{esc(line.get('note') or '')}</td></tr>" for name, line in lines.items())
        estimate = f"estimated {figure(cost['estimate'])}; " if cost["estimate"] else ""
        parts.append(f"<h2>Cost</h2><p>{esc(estimate)}bound before it started {esc(figure(cost['bound']))} "
                     f"(on-demand USD, region {esc(str(cost['region']))}; an estimate, not a bill; prices: "
                     f"{esc(cost['prices']['source'] or 'none')})</p>"
                     f"<table><tr><th>step</th><th>{'cost' if cost['estimate'] else 'bound'}</th><th></th></tr>"
                     f"{body}</table>")
    return "".join(parts)


def _model_packages_section(packages: list[dict] | None) -> str:
    if not packages:
        return ""
    esc = html.escape
    rows = []
    for package in packages:
        user = package.get("LastModifiedBy") or {}
        who = user.get("UserProfileName") or (user.get("IamIdentity") or {}).get("SourceIdentity") or ""
        rows.append(f"<tr><td>{esc(str(package.get('ModelPackageArn', '')))}</td>"
                    f"<td>{esc(str(package.get('ModelPackageVersion', '')))}</td>"
                    f"<td>{esc(str(package.get('ModelApprovalStatus', '')))}</td>"
                    f"<td>{esc(str(package.get('ApprovalDescription') or ''))}</td><td>{esc(str(who))}</td></tr>")
    return ("<h2>Model package</h2><table><tr><th>ARN</th><th>version</th><th>approval status</th>"
            f"<th>approval description</th><th>last modified by</th></tr>{''.join(rows)}</table>")


def render_execution_page(describe: dict, steps: list[dict], logs_dir: Path | None = None,
                          definition: dict | None = None, model_packages: list[dict] | None = None) -> str:
    """The page for one execution from its describe dict and ListPipelineExecutionSteps-shaped steps.

    ``definition`` (the one it ran) adds the step graph and the cost; without it those are left out.
    ``model_packages``: the registered versions as the registry describes them now (approval state and who set it).
    """
    esc = html.escape
    try:
        views = pipeline_views(describe, steps, definition)
    except Exception as err:  # noqa: BLE001 - a view that cannot be drawn must not hide the records
        views = f"<p>(the pipeline views could not be drawn: {esc(str(err))})</p>"
    status = describe.get("PipelineExecutionStatus")
    ordered = sorted(steps, key=lambda s: (s.get("StartTime") is None, s.get("StartTime") or ""))
    params = "".join(f"<tr><td>{esc(str(p.get('Name')))}</td><td>{esc(str(p.get('Value')))}</td></tr>"
                     for p in describe.get("PipelineParameters") or [])
    rows, logs = [], []
    for step in ordered:
        name = str(step.get("StepName", "?"))
        cache = (step.get("CacheHitResult") or {}).get("SourcePipelineExecutionArn")
        reason = step.get("FailureReason") or ""
        rows.append(
            f"<tr><td>{esc(name)}</td><td>{_status(step.get('StepStatus'))}</td>"
            f"<td>{esc(str(step.get('StartTime') or ''))}</td>"
            f"<td>{esc(_duration(step.get('StartTime'), step.get('EndTime')))}</td>"
            f"<td>{esc(str(step.get('AttemptCount') or ''))}</td>"
            f"<td>{esc('cache hit of ' + cache) if cache else ''}</td>"
            f"<td class=reason>{esc(reason)}</td></tr>"
        )
        for log_name, text in _step_logs(logs_dir, name) if logs_dir else []:
            opened = " open" if step.get("StepStatus") == "Failed" and text else ""
            logs.append(f"<details{opened}><summary>{esc(log_name)}</summary>"
                        f"<pre>{esc(text) or '(empty)'}</pre></details>")
    refresh = '<meta http-equiv="refresh" content="10">' if status in ("Executing", "Stopping") else ""
    reason = describe.get("FailureReason") or ""
    title = f"{describe.get('PipelineName', '?')} / {describe.get('PipelineExecutionId', '?')}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">{refresh}<title>{esc(title)} ({esc(str(status))})</title>
<style>body{{font-family:sans-serif;margin:1.5em}}table{{border-collapse:collapse;margin-bottom:1em}}
td,th{{border:1px solid #d0d7de;padding:4px 8px;text-align:left;vertical-align:top}}
.reason{{white-space:pre-wrap;max-width:50em}}pre{{background:#f6f8fa;padding:8px;overflow:auto;max-height:30em}}</style>
</head><body>
<h1>Local execution {esc(str(describe.get('PipelineExecutionId', '?')))}</h1>
<table>
<tr><th>pipeline</th><td>{esc(str(describe.get('PipelineName', '')))}</td></tr>
<tr><th>display name</th><td>{esc(str(describe.get('PipelineExecutionDisplayName', '')))}</td></tr>
<tr><th>execution ARN</th><td>{esc(str(describe.get('PipelineExecutionArn', '')))}</td></tr>
<tr><th>status</th><td>{_status(status)}</td></tr>
<tr><th>started</th><td>{esc(str(describe.get('CreationTime') or ''))}</td></tr>
<tr><th>duration</th><td>{esc(_duration(describe.get('CreationTime'), describe.get('EndTime')))}</td></tr>
<tr><th>failure reason</th><td class=reason>{esc(reason)}</td></tr>
</table>
{views}
<h2>Steps</h2>
<table><tr><th>step</th><th>status</th><th>started</th><th>duration</th><th>attempts</th><th>cache</th>
<th>failure reason</th></tr>
{"".join(rows) or '<tr><td colspan=7>no step started yet</td></tr>'}
</table>
<h2>Parameters</h2>
<table><tr><th>name</th><th>value</th></tr>{params}</table>
{_model_packages_section(model_packages)}
<h2>Step logs (last {TAIL_LINES} lines)</h2>
{"".join(logs) or "<p>no step logs</p>"}
</body></html>
"""
