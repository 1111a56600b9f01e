"""run_local: on_kill stops its execution (Stopped, the task fails with the reason); a cleared run resumes.

The pipeline is tests/local's gated definition: ``First`` waits for a gate file, ``Second`` needs the
object ``needed/needed.txt``; each step appends a line per run to its own runs file, so a test counts
what ran again.
"""

from __future__ import annotations

import json
import sys
import textwrap
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from airsage_test_support import FakeTI

from airsage.exceptions import PipelineExecutionFailed
from airsage.operators.run_local import RunLocalPipelineOperator

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "local"))
from control_builders import GATE_SCRIPT, SECOND_SCRIPT, gated_definition  # noqa: E402

PIPELINE, BUCKET = "airsage-test-gated", "airsage-gated"


def deploy(root: Path, tmp_path: Path, version: str = "") -> dict:
    """Stage the scripts and the definition (``version`` changes it); returns upsert_pipeline's XCom."""
    from sm_pipeline.storage import ObjectStore

    store = ObjectStore(root)
    store.put_bytes(f"s3://{BUCKET}/code/gate.py", textwrap.dedent(GATE_SCRIPT).encode())
    store.put_bytes(f"s3://{BUCKET}/code/second.py", textwrap.dedent(SECOND_SCRIPT).encode())
    definition = gated_definition(f"s3://{BUCKET}", str(tmp_path / "gate"), str(tmp_path / "runs-first"),
                                  str(tmp_path / "runs-second"))
    if version:
        definition["Steps"][1]["Description"] = version
    uri = f"s3://{BUCKET}/pipelines/{PIPELINE}/definition{version}.json"
    store.put_bytes(uri, json.dumps(definition).encode())
    return {"pipeline_name": PIPELINE, "definition_uri": uri, "bucket": BUCKET, "prefix": "p"}


def operator(root: Path, pipeline: dict) -> RunLocalPipelineOperator:
    return RunLocalPipelineOperator(task_id="run_local", pipeline=pipeline, local_root=str(root),
                                    claim_poll_interval=0.1)


def context():
    return {"dag": SimpleNamespace(dag_id="abalone_pipeline_local"), "run_id": "manual__2026-11-01",
            "ds": "2026-11-01", "ti": FakeTI("run_local"), "params": {}}


def runs(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def executions(root: Path) -> list[dict]:
    from sm_pipeline.local import LocalExecutionStore

    return LocalExecutionStore(root).find(PIPELINE)


def put_needed(root: Path) -> None:
    from sm_pipeline.storage import ObjectStore

    ObjectStore(root).put_bytes(f"s3://{BUCKET}/needed/needed.txt", b"the needed object")


def logged(capfd) -> str:
    out, err = capfd.readouterr()
    return out + err


def test_on_kill_stops_the_running_execution_and_the_task_fails_with_the_reason(tmp_path):
    root = tmp_path / "objects"
    op = operator(root, deploy(root, tmp_path))
    outcome: dict = {}

    def run():
        try:
            outcome["result"] = op.execute(context())
        except Exception as err:  # noqa: BLE001 - the test asserts on it
            outcome["error"] = err

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 120
    while runs(tmp_path / "runs-first") == 0:  # First is running (and waits for the gate that never opens)
        assert time.monotonic() < deadline and thread.is_alive(), outcome
        time.sleep(0.05)
    op.on_kill()
    thread.join(60)
    assert not thread.is_alive()
    error = outcome["error"]
    assert isinstance(error, PipelineExecutionFailed)
    (execution,) = executions(root)
    assert execution["PipelineExecutionStatus"] == "Stopped"
    assert "was killed: marked failed or cleared by a user" in execution["FailureReason"]
    assert f"ended Stopped: {execution['FailureReason']}" in str(error)
    assert [s["name"] for s in error.failed_steps] == ["First"]


def test_a_cleared_failed_run_resumes_reusing_succeeded_steps_and_a_changed_definition_starts_anew(tmp_path,
                                                                                                   capfd):
    root = tmp_path / "objects"
    (tmp_path / "gate").touch()
    pipeline = deploy(root, tmp_path)
    with pytest.raises(PipelineExecutionFailed, match="ended Failed") as failed:  # Second: needed.txt is missing
        operator(root, pipeline).execute(context())
    arn = failed.value.execution["execution_arn"]
    assert [s["name"] for s in failed.value.failed_steps] == ["Second"]
    assert (runs(tmp_path / "runs-first"), runs(tmp_path / "runs-second")) == (1, 0)

    put_needed(root)  # the cause is fixed; the run is cleared
    result = operator(root, pipeline).execute(context())
    assert result["execution_arn"] == arn and result["status"] == "Succeeded"
    assert (runs(tmp_path / "runs-first"), runs(tmp_path / "runs-second")) == (1, 1)  # First was reused
    assert len(executions(root)) == 1
    assert f"Resuming execution {arn} (definition unchanged; 1 steps succeeded)" in logged(capfd)

    # Another definition for the same date: a fresh execution, and the log says why
    changed = deploy(root, tmp_path, version="2")
    result = operator(root, changed).execute(context())
    assert result["execution_arn"] != arn and result["status"] == "Succeeded"
    assert len(executions(root)) == 2
    assert f"Starting a new execution (display name {result['display_name']}): definition changed since {arn}" \
        in logged(capfd)
