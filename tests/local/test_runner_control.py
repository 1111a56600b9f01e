"""Controlling a local run from outside: a preassigned id, a stop from a thread or another process, resume."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from control_builders import GATE_SCRIPT, SECOND_SCRIPT, gated_definition
from local_runner_builders import BUCKET, definition, stage_script

from sm_pipeline.errors import InvalidInput
from sm_pipeline.local import (
    LocalExecutionStore,
    StopHandle,
    execution_arn,
    request_stop,
    resume_pipeline,
    run_pipeline,
)
from sm_pipeline.local.records import ExecutionRecords

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def gated(store, tmp_path):
    """The two-step gated definition with its scripts staged; ``needed`` is not there yet."""
    stage_script(store, f"{BUCKET}/code/gate.py", GATE_SCRIPT)
    stage_script(store, f"{BUCKET}/code/second.py", SECOND_SCRIPT)
    gate, runs_first, runs_second = tmp_path / "gate", tmp_path / "runs-first", tmp_path / "runs-second"
    return {"definition": gated_definition(BUCKET, str(gate), str(runs_first), str(runs_second)),
            "gate": gate, "runs_first": runs_first, "runs_second": runs_second}


def runs(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def in_background(target) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def run():
        try:
            outcome["result"] = target()
        except BaseException as exc:  # handed to the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def wait_for_event(events: list, kind: str, step: str | None = None, timeout: float = 120) -> None:
    ready = threading.Event()

    def seen():
        return any(e.get("event") == kind and (step is None or e.get("step") == step) for e in list(events))

    for _ in range(int(timeout / 0.05)):
        if seen():
            return
        ready.wait(0.05)
    raise AssertionError(f"no {kind} event for {step} in {events}")


def test_a_preassigned_id_names_the_execution_and_cannot_be_taken_twice(store):
    fail = {"Name": "Boom", "Type": "Fail", "Arguments": {"ErrorMessage": "no"}}
    events: list[dict] = []
    result = run_pipeline(definition([fail]), root=store.root, pipeline_name="ids", execution_id="abc123def456",
                          on_event=events.append)
    assert result.execution_id == "abc123def456"
    assert result.execution_arn == execution_arn("ids", "abc123def456") == result.describe()["PipelineExecutionArn"]
    assert events[0]["event"] == "execution_started" and events[0]["execution_arn"] == result.execution_arn
    with pytest.raises(InvalidInput, match="execution id abc123def456 of pipeline ids is already taken"):
        run_pipeline(definition([fail]), root=store.root, pipeline_name="ids", execution_id="abc123def456")
    with pytest.raises(InvalidInput, match="must be 1-64 lowercase letters or digits"):
        run_pipeline(definition([fail]), root=store.root, pipeline_name="ids", execution_id="../escape")
    assert LocalExecutionStore(store.root).describe("ids", "abc123def456")["FailureReason"] == "no"


def test_a_stop_handle_stops_the_run_from_another_thread(store, gated):
    handle, events = StopHandle(), []
    thread, outcome = in_background(lambda: run_pipeline(
        gated["definition"], root=store.root, pipeline_name="stops", stop=handle, on_event=events.append))
    wait_for_event(events, "step_started", "First")
    handle.stop("stopped by the test")
    thread.join(120)
    result = outcome["result"]
    assert (result.status, result.failure_reason) == ("Stopped", "stopped by the test")
    assert result.step("First")["StepStatus"] == "Stopped"
    assert not store.list(f"{BUCKET}/executions/")  # the killed job published nothing
    assert [s["StepName"] for s in result.steps] == ["First"]  # Second never started


def test_request_stop_from_another_process_is_honoured(store, gated):
    events: list[dict] = []
    thread, outcome = in_background(lambda: run_pipeline(
        gated["definition"], root=store.root, pipeline_name="stops", execution_id="fromafar", on_event=events.append))
    wait_for_event(events, "step_started", "First")
    code = ("import sys; from sm_pipeline.local import request_stop; "
            "request_stop(sys.argv[1], 'stops', 'fromafar', 'on_kill of the Airflow task')")
    subprocess.run([sys.executable, "-c", code, str(store.root)], check=True, cwd=REPO_ROOT, timeout=120)
    thread.join(120)
    result = outcome["result"]
    assert (result.status, result.failure_reason) == ("Stopped", "on_kill of the Airflow task")
    assert not ExecutionRecords(store.root, "stops", "fromafar").stop_request_file.exists()
    with pytest.raises(InvalidInput, match="no local execution stops/nosuchrun"):
        request_stop(store.root, "stops", "nosuchrun")


def test_resume_reuses_succeeded_steps_and_runs_the_failed_one_again(store, gated):
    gated["gate"].touch()
    failed = run_pipeline(gated["definition"], root=store.root, pipeline_name="resume")
    assert failed.status == "Failed" and "no objects under s3://test-bucket/needed/" in failed.failure_reason
    first = failed.step("First")
    assert (first["StepStatus"], runs(gated["runs_first"]), runs(gated["runs_second"])) == ("Succeeded", 1, 0)
    assert failed.step("Second")["Metadata"]["ProcessingJob"]["Arn"].startswith(
        "arn:aws:sagemaker:us-east-1:000000000000:processing-job/pipelines-")

    store.put_bytes(f"{BUCKET}/needed/needed.txt", b"the missing object")
    resumed = resume_pipeline(failed.execution_id, store.root, "resume")
    assert (resumed.status, resumed.execution_arn) == ("Succeeded", failed.execution_arn)
    assert resumed.step("First") == first  # the same record: not run again
    assert (runs(gated["runs_first"]), runs(gated["runs_second"])) == (1, 1)
    out = store.read_bytes(f"{BUCKET}/executions/{failed.execution_id}/Second/second.txt")
    assert out == b"first step output + the missing object"
    describe = LocalExecutionStore(store.root).describe("resume", failed.execution_id)
    assert describe["PipelineExecutionStatus"] == "Succeeded" and describe.get("FailureReason") is None
    assert describe["CreationTime"] == failed.describe()["CreationTime"]

    with pytest.raises(InvalidInput, match="is Succeeded; only a Failed or Stopped execution can be resumed"):
        resume_pipeline(failed.execution_id, store.root, "resume")
    with pytest.raises(InvalidInput, match="no local execution resume/nosuchrun"):
        resume_pipeline("nosuchrun", store.root, "resume")


def test_a_stopped_execution_resumes_and_cannot_be_run_twice_at_once(store, gated):
    store.put_bytes(f"{BUCKET}/needed/needed.txt", b"there")
    handle, events = StopHandle(), []
    thread, outcome = in_background(lambda: run_pipeline(
        gated["definition"], root=store.root, pipeline_name="twice", stop=handle, on_event=events.append))
    wait_for_event(events, "step_started", "First")
    handle.stop()
    thread.join(120)
    stopped = outcome["result"]
    assert stopped.status == "Stopped"

    events2: list[dict] = []
    thread, outcome = in_background(lambda: resume_pipeline(stopped.execution_id, store.root, "twice",
                                                            on_event=events2.append))
    wait_for_event(events2, "step_started", "First")
    with pytest.raises(InvalidInput, match="is Executing; only a Failed or Stopped execution can be resumed"):
        resume_pipeline(stopped.execution_id, store.root, "twice")
    gated["gate"].touch()
    thread.join(120)
    assert outcome["result"].status == "Succeeded"
    assert runs(gated["runs_first"]) == 2  # stopped mid-step, so it ran again
