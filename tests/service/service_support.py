"""Helpers of the emulated-service tests: a service of a test's own, unique names, the gated pipeline.

The session's service, the clients and the waits are airsage's pytest kit's (``airsage.testing``).
"""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path

from airsage.testing import TERMINAL, EmulatedSageMaker, start_service, wait_for_execution, wait_for_step

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "build" / "test-artifacts" / "service"
wait_for = wait_for_execution
__all__ = ["ARTIFACTS", "REPO", "ROLE", "TERMINAL", "end_orphans", "gated_pipeline", "runs", "serve", "unique",
           "wait_for", "wait_for_step"]


def serve(root: Path, name: str, extra_args: tuple[str, ...] = ()) -> EmulatedSageMaker:
    """A service of the test's own over ``root`` (the kit's ``start_service``), its log in build/test-artifacts."""
    return start_service(root, ARTIFACTS, name=name, extra_args=extra_args)


def unique(prefix: str) -> str:
    """A name no other test uses (valid as a pipeline name and as a bucket name)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


ROLE = "arn:aws:iam::000000000000:role/airsage-test"


def gated_pipeline(sm, s3, tmp_path: Path, needed: bool = True) -> dict:
    """A pipeline of the two-step gated definition in its own bucket, staged through S3.

    ``First`` waits until ``gate`` exists; ``Second`` needs ``s3://<bucket>/needed/needed.txt`` (put
    only when ``needed``). Returns the names and paths the test uses.
    """
    import json
    import textwrap

    from control_builders import GATE_SCRIPT, SECOND_SCRIPT, gated_definition

    bucket = unique("gated")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="code/gate.py", Body=textwrap.dedent(GATE_SCRIPT).encode())
    s3.put_object(Bucket=bucket, Key="code/second.py", Body=textwrap.dedent(SECOND_SCRIPT).encode())
    if needed:
        s3.put_object(Bucket=bucket, Key="needed/needed.txt", Body=b"the needed object")
    paths = {name: tmp_path / f"{bucket}-{name}" for name in ("gate", "runs-first", "runs-second")}
    definition = gated_definition(f"s3://{bucket}", str(paths["gate"]), str(paths["runs-first"]),
                                  str(paths["runs-second"]))
    name = unique("gated")
    sm.create_pipeline(PipelineName=name, PipelineDefinition=json.dumps(definition), RoleArn=ROLE)
    return {"name": name, "bucket": bucket, **paths}


def runs(path: Path) -> list[int]:
    """The pids of a gated step's runs so far."""
    return [int(line.split()[1]) for line in path.read_text().splitlines()] if path.exists() else []


def end_orphans(path: Path) -> None:
    """Kill the job processes (own sessions) a killed service left behind; they are this test's."""
    for pid in runs(path):
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
