"""Helpers of the emulated-service tests: start ``serve`` as a subprocess, unique names, polling."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "build" / "test-artifacts" / "service"
TERMINAL = ("Succeeded", "Failed", "Stopped")


@dataclass
class Served:
    """One running ``serve`` process."""

    url: str
    root: Path
    process: subprocess.Popen
    log: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 120) -> int:
        """Send ``sig`` and wait for the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        finally:
            if self.process.stdout:
                self.process.stdout.close()


def serve(root: Path, name: str, extra_args: tuple[str, ...] = (), artifacts: Path = ARTIFACTS) -> Served:
    """Start a service on a free port over ``root`` (its log in ``artifacts``); returns once it printed its URL."""
    artifacts.mkdir(parents=True, exist_ok=True)
    log = artifacts / f"{name}-{uuid.uuid4().hex[:8]}.log"
    with open(log, "w") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "sm_pipeline", "serve", "--port", "0", "--root", str(root), *extra_args],
            cwd=REPO, stdout=subprocess.PIPE, stderr=err, env=os.environ.copy(), text=True)
    ready, _, _ = select.select([process.stdout], [], [], 300)
    line = process.stdout.readline().strip() if ready else ""
    if not line.startswith("http://"):
        process.kill()
        process.wait()
        raise AssertionError(f"serve did not print its URL (got {line!r}); log: {log}\n{log.read_text()[-3000:]}")
    return Served(line, root, process, log)


def unique(prefix: str) -> str:
    """A name no other test uses (valid as a pipeline name and as a bucket name)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def wait_for(sm, arn: str, statuses=TERMINAL, timeout: float = 600) -> dict:
    """Poll DescribePipelineExecution until its status is one of ``statuses``."""
    deadline = time.monotonic() + timeout
    while True:
        describe = sm.describe_pipeline_execution(PipelineExecutionArn=arn)
        if describe["PipelineExecutionStatus"] in statuses:
            return describe
        if time.monotonic() > deadline:
            raise AssertionError(f"{arn} is still {describe['PipelineExecutionStatus']} after {timeout} s")
        time.sleep(0.2)


def wait_for_step(sm, arn: str, step: str, status: str, timeout: float = 300) -> dict:
    """Poll ListPipelineExecutionSteps until ``step`` has ``status``."""
    deadline = time.monotonic() + timeout
    while True:
        steps = {s["StepName"]: s for s in sm.list_pipeline_execution_steps(PipelineExecutionArn=arn)
                 ["PipelineExecutionSteps"]}
        if steps.get(step, {}).get("StepStatus") == status:
            return steps[step]
        if time.monotonic() > deadline:
            raise AssertionError(f"step {step} of {arn} never became {status}: {steps}")
        time.sleep(0.1)


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
