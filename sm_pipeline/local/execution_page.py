"""A self-contained HTML view of one local execution: steps, statuses, durations, reasons, log tails.

The local runner's counterpart of the SageMaker console's execution page. It is written as
``index.html`` beside the execution's records each time they change (see ``ExecutionRecorder``),
so it can be opened from the object root, and the Airflow plugin serves the same rendering over
HTTP (``/airsage/executions/<pipeline>/<execution id>``) for the ``run_local`` extra link.
Everything shown is escaped: step logs are untrusted text.
"""

from __future__ import annotations

import html
import json
import re
from datetime import datetime
from pathlib import Path

from sm_pipeline.storage_io import write_text_atomic

PAGE_NAME = "index.html"
TAIL_BYTES = 6000
TAIL_LINES = 40
STATUS_COLOURS = {"Succeeded": "#1a7f37", "Failed": "#cf222e", "Stopped": "#9a6700", "Executing": "#0969da",
                  "NotExecuted": "#6e7781", "Stopping": "#9a6700"}


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


def render_execution_page(describe: dict, steps: list[dict], logs_dir: Path | None = None) -> str:
    """The page for one execution from its describe dict and ListPipelineExecutionSteps-shaped steps."""
    esc = html.escape
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
<h2>Steps</h2>
<table><tr><th>step</th><th>status</th><th>started</th><th>duration</th><th>attempts</th><th>cache</th>
<th>failure reason</th></tr>
{"".join(rows) or '<tr><td colspan=7>no step started yet</td></tr>'}
</table>
<h2>Parameters</h2>
<table><tr><th>name</th><th>value</th></tr>{params}</table>
<h2>Step logs (last {TAIL_LINES} lines)</h2>
{"".join(logs) or "<p>no step logs</p>"}
</body></html>
"""


def render_records_dir(records_dir: Path) -> str:
    """The page for the execution recorded in ``records_dir`` (describe.json, steps.json, logs/)."""
    describe = json.loads((records_dir / "describe.json").read_text(encoding="utf-8"))
    try:
        steps = json.loads((records_dir / "steps.json").read_text(encoding="utf-8"))["PipelineExecutionSteps"]
    except (OSError, ValueError, KeyError, TypeError):
        steps = []
    return render_execution_page(describe, steps, records_dir / "logs")


def write_execution_page(records_dir: Path, describe: dict, steps: list[dict]) -> None:
    """Write ``index.html`` beside the records; never raises (a view must not break a run)."""
    try:
        write_text_atomic(Path(records_dir) / PAGE_NAME, render_execution_page(describe, steps, Path(records_dir) / "logs"))
    except Exception:  # noqa: S110, BLE001 - the page is a convenience; the records are the truth
        pass
