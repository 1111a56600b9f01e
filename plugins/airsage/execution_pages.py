"""The local execution pages over HTTP, mounted in the Airflow API server by the airsage plugin.

``GET /airsage/executions/<pipeline>/<execution id>`` renders the execution's records from the
object root (``sm_pipeline.local.records.render_records_page``): steps, statuses, durations, failure reasons
and log tails. It is what ``run_local``'s "Local Execution" extra link opens. Only Airflow users
who may read DAG runs see it (the UI's session cookie or a bearer token, like the REST API).

The object root is the one the local DAG uses: the Variable ``airsage_local_root``, else the
environment variable ``AIRSAGE_ROOT``, else ``<repository>/.airsage``. Names are checked against
SageMaker's patterns and the resolved directory must lie inside the root (no path traversal,
no symlink escape).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

_PIPELINE = re.compile(r"^[A-Za-z0-9](-*[A-Za-z0-9]){0,255}$")
_EXECUTION_ID = re.compile(r"^[A-Za-z0-9]{1,64}$")
REPO_ROOT = Path(__file__).resolve().parents[2]
SECURITY_HEADERS = {
    # the page is self-contained: no script, no remote anything
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}


def object_root() -> Path:
    """The local backend's object root, resolved the way the local DAG resolves it."""
    root = None
    try:
        from airflow.models.variable import Variable

        root = Variable.get("airsage_local_root", default_var=None)
    except Exception:  # noqa: BLE001 - no metadata DB here: fall back like the DAG's default does
        root = None
    return Path(root or os.environ.get("AIRSAGE_ROOT") or REPO_ROOT / ".airsage").resolve()


def records_dir_for(root: Path, pipeline: str, execution_id: str) -> Path | None:
    """The records directory of one execution, or None when the names are invalid or it escapes the root."""
    from sm_pipeline.local.records import ExecutionRecords, executions_dir

    if not _PIPELINE.match(pipeline) or not _EXECUTION_ID.match(execution_id):
        return None
    base = executions_dir(root).resolve()
    candidate = ExecutionRecords(root, pipeline, execution_id).dir.resolve()
    if base not in candidate.parents:
        return None
    return candidate


def create_app():
    """The FastAPI app (imported only when the API server first serves it)."""
    from airflow.api_fastapi.core_api.security import DagAccessEntity, requires_access_dag
    from fastapi import Depends, FastAPI, HTTPException
    from fastapi.responses import HTMLResponse

    app = FastAPI(title="airsage local execution pages", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/executions/{pipeline}/{execution_id}", response_class=HTMLResponse,
             dependencies=[Depends(requires_access_dag("GET", DagAccessEntity.RUN))])
    def execution_page(pipeline: str, execution_id: str) -> HTMLResponse:
        """One local execution's page."""
        from sm_pipeline.local.records import ExecutionRecords, render_records_page

        directory = records_dir_for(object_root(), pipeline, execution_id)
        if directory is None:
            raise HTTPException(status_code=404, detail="no such execution (invalid pipeline or execution id)")
        records = ExecutionRecords.in_dir(directory)
        if not records.describe_file.is_file():
            raise HTTPException(status_code=404, detail=f"no local execution {pipeline}/{execution_id}")
        try:
            page = render_records_page(records)
        except (OSError, ValueError) as err:
            raise HTTPException(status_code=500, detail=f"the execution's records are unreadable: {err}") from None
        return HTMLResponse(page, headers=SECURITY_HEADERS)

    return app


class LazyApp:
    """An ASGI app that builds :func:`create_app` on its first request.

    Every Airflow component imports the plugin; only the API server serves it, and only it
    should pay for FastAPI and the API's security module.
    """

    def __init__(self):
        self._app: Any = None

    async def __call__(self, scope, receive, send) -> None:
        """ASGI entry point."""
        if self._app is None:
            self._app = create_app()
        await self._app(scope, receive, send)

    def __repr__(self) -> str:
        return "airsage.execution_pages.LazyApp()"
