"""run_local: idempotent per date and inputs, one execution for overlapping tries, the page link.

The pipeline is airsage_local_pipeline's (a stdlib Processing step, then RegisterModel), so each
execution that succeeds registers exactly one model version: counting versions counts re-runs.
Overlapping tries run as separate processes, as two Airflow workers would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from airsage_local_pipeline import GROUP, PIPELINE, deploy
from airsage_test_support import FakeTI

from airsage.exceptions import PipelineExecutionFailed
from airsage.links.local_execution import LocalExecutionLink
from airsage.operators.run_local import RunLocalPipelineOperator

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RUN_ID = "scheduled__2026-11-01T00:00:00+00:00"


def context(run_id=RUN_ID, ds="2026-11-01"):
    return {"dag": SimpleNamespace(dag_id="abalone_pipeline_local"), "run_id": run_id, "ds": ds,
            "ti": FakeTI("run_local"), "params": {}}


def run_local(root, params=None, run_id=RUN_ID, ds="2026-11-01", staged=None):
    ctx = context(run_id, ds)
    op = RunLocalPipelineOperator(task_id="run_local", pipeline=deploy(root), local_root=str(root),
                                  parameters=params or {"MseThreshold": 6.0}, inputs=staged,
                                  quality_gate_steps=("Fail",), claim_poll_interval=0.1)
    return op.execute(ctx), ctx


def executions(root):
    from sm_pipeline.local import LocalExecutionStore

    return LocalExecutionStore(root).find(PIPELINE)


def versions(root):
    from sm_pipeline.local.registry import LocalModelRegistry

    return LocalModelRegistry(root).list_model_packages(GROUP)


def logged(capfd) -> str:
    out, err = capfd.readouterr()
    return out + err


def test_same_inputs_reattach_without_a_new_model_version_and_a_changed_input_starts_anew(tmp_path, capfd):
    root = tmp_path / "objects"
    first, ctx = run_local(root)
    assert first["status"] == "Succeeded" and len(versions(root)) == 1
    assert "Starting a new execution" in logged(capfd)

    retry, _ = run_local(root)  # a retry of the same DAG run
    manual, _ = run_local(root, run_id="manual__2026-11-01T10:00:00+00:00")  # a second run of the date
    assert retry["execution_arn"] == manual["execution_arn"] == first["execution_arn"]
    assert retry["model_package_arn"] == first["model_package_arn"]
    assert len(executions(root)) == 1 and len(versions(root)) == 1
    text = logged(capfd)
    assert f"Re-attaching to Succeeded execution {first['execution_arn']}: same inputs (no staged data, definition" in text

    changed, _ = run_local(root, {"MseThreshold": 0.5})
    assert changed["execution_arn"] != first["execution_arn"]
    assert len(executions(root)) == 2 and len(versions(root)) == 2
    text = logged(capfd)
    assert f"inputs changed since {first['execution_arn']} (Succeeded): parameter MseThreshold (6.0 -> 0.5)" in text

    other_data, _ = run_local(root, staged={"hashes": {"input data": "c" * 64, "batch data": "d" * 64}})
    assert other_data["execution_arn"] not in (first["execution_arn"], changed["execution_arn"])
    assert "batch data" in logged(capfd)
    other_date, _ = run_local(root, ds="2026-11-02", run_id="scheduled__2026-11-02T00:00:00+00:00")
    assert other_date["display_name"] != first["display_name"]
    assert len(executions(root)) == 4 and len(versions(root)) == 4


def test_the_result_links_the_execution_page_served_by_airflow(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "http://127.0.0.1:8793")
    root = tmp_path / "objects"
    result, ctx = run_local(root)
    url = f"http://127.0.0.1:8793/airsage/executions/{PIPELINE}/{result['execution_id']}"
    assert result["console_url"] == url
    assert ctx["ti"].xcoms[LocalExecutionLink.key] == {"url": url}
    page = Path(result["execution_page"])
    assert page.name == "index.html" and page.parent.name == result["execution_id"]
    html = page.read_text()
    assert "Succeeded" in html and "Work" in html and "Register" in html and "worked" in html


def test_a_failed_execution_fails_the_task_with_the_on_call_line_and_a_retry_resumes_it(tmp_path, capfd):
    root = tmp_path / "objects"
    with pytest.raises(PipelineExecutionFailed, match="ended Failed") as failed:
        run_local(root, {"MseThreshold": 6.0, "Outcome": "fail"})
    text = logged(capfd)
    line = next(x for x in text.splitlines() if "ON-CALL task run_local failed" in x)
    arn = failed.value.execution["execution_arn"]
    for fact in ("DAG abalone_pipeline_local", f"run {RUN_ID}", "try 1", f"execution {arn}",
                 f"link {failed.value.execution['console_url']}", "failing step(s): Work"):
        assert fact in line, fact
    with pytest.raises(PipelineExecutionFailed) as again:
        run_local(root, {"MseThreshold": 6.0, "Outcome": "fail"})  # a retry resumes the failed execution in place
    assert again.value.execution["execution_arn"] == arn
    assert len(executions(root)) == 1 and versions(root) == []
    assert f"Resuming execution {arn} (definition unchanged; 0 steps succeeded)" in logged(capfd)


def test_a_claim_is_exclusive_keeps_its_notes_and_checks_its_names(tmp_path):
    from sm_pipeline.errors import InvalidInput
    from sm_pipeline.local.claims import ExecutionClaim

    first, second = ExecutionClaim(tmp_path, PIPELINE, "d-1"), ExecutionClaim(tmp_path, PIPELINE, "d-1")
    assert first.try_acquire(inputs={"definition": "abc"})
    assert not second.try_acquire()  # flock: exclusive even within one process
    assert second.owner()["Pid"] == os.getpid()
    first.release()
    assert second.try_acquire() and second.note()["inputs"] == {"definition": "abc"}  # notes outlive owners
    second.release()
    assert first.path == tmp_path / ".airsage" / "claims" / PIPELINE / "d-1.lock"
    for pipeline, display in (("..", "d"), (PIPELINE, "../x"), (PIPELINE, "a/b"), (PIPELINE, "")):
        with pytest.raises(InvalidInput, match="for an execution claim"):
            ExecutionClaim(tmp_path, pipeline, display)


# -- overlapping tries (separate processes) -------------------------------------------------------
def start_try(root, params, out: Path, run_id=RUN_ID) -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), str(REPO / "plugins"), str(REPO), env.get("PYTHONPATH", "")])
    return subprocess.Popen([sys.executable, str(HERE / "airsage_run_local_try.py"), str(root), run_id,  # noqa: S603
                             json.dumps(params)], env=env, stdout=out.open("w"), stderr=subprocess.STDOUT)


def wait_for(predicate, what: str, timeout: float = 180.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def outcome(process: subprocess.Popen, out: Path) -> dict:
    assert process.wait(timeout=300) == 0, out.read_text()[-3000:]
    return json.loads(out.read_text().strip().splitlines()[-1])


@pytest.fixture
def gate(tmp_path):
    """The gate file the Work step waits for, and the params that point the pipeline at it."""
    path = tmp_path / "gate"
    return path, {"MseThreshold": 6.0, "Gate": str(path)}


def executing(root):
    return [e for e in executions(root) if e["PipelineExecutionStatus"] == "Executing"]


@pytest.mark.slow
@pytest.mark.parametrize("outcome_param", ["ok", "fail"])
def test_an_overlapping_second_try_waits_for_the_first_and_adopts_its_result(tmp_path, gate, outcome_param):
    root, (gate_file, params) = tmp_path / "objects", gate
    params = {**params, "Outcome": outcome_param}
    first_out, second_out = tmp_path / "first.log", tmp_path / "second.log"
    first = start_try(root, params, first_out)
    wait_for(lambda: executing(root), "the first try's execution to be running")
    second = start_try(root, params, second_out)
    wait_for(lambda: "is claimed by pid" in second_out.read_text(), "the second try to wait for the claim")
    gate_file.touch()
    one, two = outcome(first, first_out), outcome(second, second_out)

    (execution,) = executions(root)
    if outcome_param == "ok":
        assert one["ok"] and two["ok"] and one["execution_arn"] == two["execution_arn"] == execution[
            "PipelineExecutionArn"]
        assert len(versions(root)) == 1
        assert "Adopting execution" in second_out.read_text() or "Re-attaching" in second_out.read_text()
    else:
        assert not one["ok"] and not two["ok"] and execution["PipelineExecutionStatus"] == "Failed"
        assert execution["PipelineExecutionArn"] in two["error"] and "ended Failed" in two["error"]
        assert versions(root) == []


@pytest.mark.slow
def test_two_tries_started_together_make_one_execution_and_one_model_version(tmp_path):
    root = tmp_path / "objects"
    outs = [tmp_path / "a.log", tmp_path / "b.log"]
    tries = [start_try(root, {"MseThreshold": 6.0}, out) for out in outs]
    results = [outcome(p, out) for p, out in zip(tries, outs, strict=True)]
    assert all(r["ok"] for r in results)
    assert len({r["execution_arn"] for r in results}) == 1
    assert len(executions(root)) == 1 and len(versions(root)) == 1


@pytest.mark.slow
def test_a_dead_owners_claim_is_taken_over(tmp_path, gate):
    root, (gate_file, params) = tmp_path / "objects", gate
    first_out, second_out = tmp_path / "first.log", tmp_path / "second.log"
    first = start_try(root, params, first_out)
    (running,) = wait_for(lambda: executing(root), "the first try's execution to be running")
    second = start_try(root, params, second_out)
    wait_for(lambda: "is claimed by pid" in second_out.read_text(), "the second try to wait for the claim")
    os.kill(first.pid, signal.SIGKILL)  # the worker dies; the kernel drops its claim
    first.wait(timeout=30)
    gate_file.touch()
    result = outcome(second, second_out)

    assert result["ok"] and result["status"] == "Succeeded"
    # the dead runner's execution (recorded Stopped) is resumed in place, not replaced
    assert result["execution_arn"] == running["PipelineExecutionArn"]
    statuses = {e["PipelineExecutionArn"]: e["PipelineExecutionStatus"] for e in executions(root)}
    assert statuses == {running["PipelineExecutionArn"]: "Succeeded"}
    assert len(versions(root)) == 1
    text = second_out.read_text()
    assert f"Resuming execution {running['PipelineExecutionArn']} (definition unchanged;" in text
    assert "(its runner died)" in text
