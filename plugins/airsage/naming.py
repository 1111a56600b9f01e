"""Names derived from a DAG run: pipeline execution display names and idempotency tokens."""

from __future__ import annotations

import hashlib
import re

# SageMaker: PipelineExecutionDisplayName matches ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,81}
MAX_DISPLAY_NAME = 82
_INVALID = re.compile(r"[^a-zA-Z0-9]+")


def execution_display_name(dag_id: str, run_id: str) -> str:
    """A valid, deterministic execution display name for one DAG run.

    The same (dag_id, run_id) always gives the same name, which is how a retried task finds
    the execution its earlier try started. When the cleaned name is too long it is cut and a
    hash of the *original* pair is appended, so two long run ids never collapse into one name.
    """
    raw = f"{dag_id}-{run_id}"
    cleaned = _INVALID.sub("-", raw).strip("-") or "run"
    if len(cleaned) <= MAX_DISPLAY_NAME and cleaned == raw:
        return cleaned
    digest = hashlib.sha256(raw.encode("utf-8")).hexdigest()[:10]
    if len(cleaned) + 1 + len(digest) <= MAX_DISPLAY_NAME:
        # characters were replaced: the hash keeps "a:b" and "a+b" apart
        return f"{cleaned}-{digest}"
    head = cleaned[: MAX_DISPLAY_NAME - 1 - len(digest)].rstrip("-")
    return f"{head}-{digest}"


def client_request_token(display_name: str, generation: int) -> str:
    """The ClientRequestToken for the ``generation``-th start of this display name.

    SageMaker returns the existing execution when a token is reused, so a start whose
    response was lost (worker killed mid-call) cannot create a second execution on retry.
    The generation (number of earlier Failed/Stopped executions) changes the token only
    when a fresh start is intended. 32..128 characters, [a-zA-Z0-9-].
    """
    return hashlib.sha256(f"{display_name}#{generation}".encode()).hexdigest()[:64]
