"""Names derived from a DAG run: execution display names, idempotency tokens, report folders."""

from __future__ import annotations

import hashlib
import re

# SageMaker: PipelineExecutionDisplayName matches ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,81}
MAX_DISPLAY_NAME = 82
FINGERPRINT_LENGTH = 12
_INVALID = re.compile(r"[^a-zA-Z0-9]+")
_PATH_UNSAFE = re.compile(r"[^a-zA-Z0-9._-]+")
MAX_RUN_SEGMENT = 120


def run_ds(context) -> str:
    """The run's date as YYYY-MM-DD: its logical date, else (a run triggered without one) its run_after.

    Airflow 3 lets the REST API and ``airflow dags trigger`` create runs whose logical date is null;
    their context has no ``ds``. Such a run belongs to the day it was queued for. The DAG's
    templates use the same rule (``RUN_DS`` in airsage.dag_factory).
    """
    ds = context.get("ds")
    if ds:
        return str(ds)
    return context["dag_run"].run_after.date().isoformat()


def _clean(text: str) -> str:
    return _INVALID.sub("-", text).strip("-")


def date_display_prefix(dag_id: str, ds: str) -> str:
    """The part of every display name of ``dag_id``'s executions for logical date ``ds``.

    ``<dag id, cleaned and cut>-<ds>-``; what follows is the inputs fingerprint. Used to find
    the earlier executions of a date, to say what changed since the last one.
    """
    room = MAX_DISPLAY_NAME - FINGERPRINT_LENGTH - len(ds) - 2
    dag = _clean(dag_id)[:room].rstrip("-") or "dag"
    return f"{dag}-{_clean(ds) or 'nodate'}-"


def execution_display_name(dag_id: str, ds: str, fingerprint: str) -> str:
    """The execution display name for ``dag_id``'s run on ``ds`` with these inputs.

    Deterministic in (dag id, logical date, inputs fingerprint): every run of a date whose
    inputs are the same (a retry, a second manual run, a re-created backfill) gets the same
    name and therefore finds the same execution; a changed input gives a new name. The
    fingerprint is a hash over the dag id as well, so two dag ids that clean to the same
    text never share a name.
    """
    digest = _clean(fingerprint)[:FINGERPRINT_LENGTH].lower()
    if len(digest) < 8:
        raise ValueError(f"inputs fingerprint {fingerprint!r} is too short")
    return f"{date_display_prefix(dag_id, ds)}{digest}"


def client_request_token(display_name: str, generation: int) -> str:
    """The ClientRequestToken for the ``generation``-th start of this display name.

    SageMaker returns the existing execution when a token is reused, so a start whose
    response was lost (worker killed mid-call), or two runs with the same inputs starting
    together, cannot create a second execution. The generation (number of earlier
    Failed/Stopped executions) changes the token only when a fresh start is intended.
    32..128 characters, [a-zA-Z0-9-].
    """
    return hashlib.sha256(f"{display_name}#{generation}".encode()).hexdigest()[:64]


def run_path_segment(run_id: str) -> str:
    """``run=<run id made path-safe>``: one folder per DAG run under ``reports/ds=.../``.

    Letters, digits, ``.``, ``_`` and ``-`` are kept; anything else (``:``, ``+``, spaces) becomes
    ``-``, and then a hash of the original run id is appended, so two run ids that clean to
    the same text never share a folder. The same run id always gives the same folder.
    """
    cleaned = _PATH_UNSAFE.sub("-", run_id).strip("-.") or "run"
    if cleaned == run_id and len(cleaned) <= MAX_RUN_SEGMENT:
        return f"run={cleaned}"
    digest = hashlib.sha256(run_id.encode("utf-8")).hexdigest()[:8]
    return f"run={cleaned[: MAX_RUN_SEGMENT - 9].rstrip('-.')}-{digest}"
