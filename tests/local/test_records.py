"""The records layout, the describe record and the claims: each written once, used by the runner and the service."""

from __future__ import annotations

import os

import pytest

from sm_pipeline.errors import InvalidInput
from sm_pipeline.local.claims import ExecutionClaim
from sm_pipeline.local.records import (
    ExecutionRecorder,
    ExecutionRecords,
    LocalExecutionStore,
    new_execution_describe,
    pipeline_records_dir,
    render_records_page,
)
from sm_pipeline.locks import FileLock


def test_the_layout_is_the_documented_one(tmp_path):
    """docs/CONTRACTS.md, "Records": the one place a test spells the layout out."""
    records = ExecutionRecords(tmp_path, "pipe", "abc123")
    base = tmp_path / ".airsage" / "executions" / "pipe" / "abc123"
    assert records.dir == base
    assert pipeline_records_dir(tmp_path, "pipe") == base.parent
    assert {name: getattr(records, name) for name in (
        "describe_file", "steps_file", "definition_file", "properties_file", "page_file", "logs_dir",
        "run_lock_file", "stop_request_file")} == {
        "describe_file": base / "describe.json", "steps_file": base / "steps.json",
        "definition_file": base / "definition.json", "properties_file": base / "properties.json",
        "page_file": base / "index.html", "logs_dir": base / "logs", "run_lock_file": base / ".run.lock",
        "stop_request_file": base / "stop-request.json"}
    assert ExecutionRecords.in_dir(base) == records
    assert (ExecutionRecords.in_dir(base).pipeline_name, ExecutionRecords.in_dir(base).execution_id) == ("pipe", "abc123")


def _describe(pipeline: str, execution_id: str, **fields) -> dict:
    return new_execution_describe(pipeline, execution_id, region="eu-west-1", display_name=None, status="Executing",
                                  parameters={"Flag": True, "Threshold": 6.5}, max_parallel=2,
                                  created="2026-11-01T00:00:00+00:00", fields=fields)


def test_the_describe_record_is_shaped_like_describe_pipeline_execution():
    describe = _describe("Pipe", "abc123", PipelineVersionId=3)
    assert describe == {
        "PipelineName": "Pipe", "PipelineExecutionId": "abc123",
        "PipelineArn": "arn:aws:sagemaker:eu-west-1:000000000000:pipeline/pipe",
        "PipelineExecutionArn": "arn:aws:sagemaker:eu-west-1:000000000000:pipeline/pipe/execution/abc123",
        "PipelineExecutionDisplayName": "abc123", "PipelineExecutionStatus": "Executing",
        "ParallelismConfiguration": {"MaxParallelExecutionSteps": 2},
        "PipelineParameters": [{"Name": "Flag", "Value": "true"}, {"Name": "Threshold", "Value": "6.5"}],
        "CreationTime": "2026-11-01T00:00:00+00:00", "LastModifiedTime": "2026-11-01T00:00:00+00:00",
        "CreatedBy": {}, "LastModifiedBy": {}, "PipelineVersionId": 3}


def test_records_are_written_and_found_through_the_layout(tmp_path):
    recorder = ExecutionRecorder(tmp_path, _describe("pipe", "abc123"))
    recorder.records.definition_file.write_text('{"Steps": []}')
    (recorder.records.logs_dir / "Prep.log").write_text("prepared <rows>\n")
    recorder.update_step("Prep", StepStatus="Succeeded", StartTime="2026-11-01T00:00:01+00:00")  # rewrites the page
    ExecutionRecorder(tmp_path, _describe("other", "def456"))

    assert ExecutionRecords.of_pipeline(tmp_path, "pipe") == [recorder.records]
    assert ExecutionRecords.with_execution_id(tmp_path, "def456") == [ExecutionRecords(tmp_path, "other", "def456")]
    assert ExecutionRecords.of_pipeline(tmp_path, "none") == []
    store = LocalExecutionStore(tmp_path)
    assert store.describe("pipe", "abc123")["LocalRunner"]["Pid"] == os.getpid()
    assert [s["StepName"] for s in store.steps("pipe", "abc123")] == ["Prep"]
    assert store.definition("pipe", "abc123") == {"Steps": []}
    page = render_records_page(recorder.records)
    assert page == recorder.records.page_file.read_text() and "prepared &lt;rows&gt;" in page


def test_a_claim_is_the_one_lock_with_its_public_api(tmp_path):
    claim = ExecutionClaim(tmp_path, "pipe", "abalone-2026-11-01-1a2b3c")
    assert isinstance(claim, FileLock)
    assert claim.path == tmp_path / ".airsage" / "claims" / "pipe" / "abalone-2026-11-01-1a2b3c.lock"
    other = ExecutionClaim(tmp_path, "pipe", "abalone-2026-11-01-1a2b3c")
    assert claim.try_acquire(inputs={"definition": "sha"})
    assert claim.held and not other.try_acquire()
    assert other.owner()["Pid"] == os.getpid()
    claim.release()
    waited = other.acquire(poll_interval=0.01, on_wait=lambda owner, seconds: None)
    assert waited is False and other.note()["inputs"] == {"definition": "sha"}
    other.release()


@pytest.mark.parametrize("pipeline, display", [("..", "x"), ("p", "a/b"), ("p", ""), ("p", "x..y")])
def test_a_claim_on_a_bad_name_is_one_line(tmp_path, pipeline, display):
    with pytest.raises(InvalidInput, match="for an execution claim"):
        ExecutionClaim(tmp_path, pipeline, display)


def _record(root, execution_id: str, created: str, display: str, version: int | None = 1) -> dict:
    """A new execution's first record, written by ExecutionRecorder (which indexes it)."""
    describe = new_execution_describe("pipe", execution_id, region="us-east-1", display_name=display,
                                      status="Succeeded", parameters={}, max_parallel=2, created=created,
                                      fields={"PipelineVersionId": version} if version else None)
    ExecutionRecorder(root, describe)
    return describe


def test_the_execution_index_lists_by_creation_time_and_finds_display_names(tmp_path):
    from sm_pipeline.local.records import ExecutionIndex

    _record(tmp_path, "b", "2026-11-02T00:00:00+00:00", "dag-2026-11-01-x", version=2)
    _record(tmp_path, "a", "2026-11-01T00:00:00+00:00", "dag-2026-11-01-y")
    _record(tmp_path, "c", "2026-11-03T00:00:00+00:00", "dag-2026-11-02-z", version=None)
    index = ExecutionIndex(tmp_path, "pipe")
    assert index.path == pipeline_records_dir(tmp_path, "pipe") / "index.tsv"
    assert [(e.execution_id, e.version, e.display_name) for e in index.entries()] == [
        ("a", 1, "dag-2026-11-01-y"), ("b", 2, "dag-2026-11-01-x"), ("c", None, "dag-2026-11-02-z")]
    store = LocalExecutionStore(tmp_path)
    assert [d["PipelineExecutionId"] for d in store.find("pipe", display_prefix="dag-2026-11-01")] == ["b", "a"]
    assert [d["PipelineExecutionId"] for d in store.find("pipe", display_name="dag-2026-11-02-z")] == ["c"]
    # a later record of the same execution (a resume, an interruption) adds no line
    store.mark_interrupted("pipe", "a", "Stopped", "gone")
    assert len(index.path.read_text().splitlines()) == 3


def test_the_index_is_rebuilt_from_the_records_and_a_line_written_twice_counts_once(tmp_path):
    from sm_pipeline.local.records import ExecutionIndex

    _record(tmp_path, "a", "2026-11-01T00:00:00+00:00", "one")
    _record(tmp_path, "b", "2026-11-02T00:00:00+00:00", "two")
    index = ExecutionIndex(tmp_path, "pipe")
    index.path.unlink()  # records written before the index existed
    assert [e.execution_id for e in index.entries()] == ["a", "b"]
    with open(index.path, "a") as fh:  # a runner's append racing the rebuild that already found it
        fh.write(index.path.read_text().splitlines(keepends=True)[1])
    assert [e.execution_id for e in ExecutionIndex(tmp_path, "pipe").entries()] == ["a", "b"]
    assert index.rebuild() == 2 and len(index.path.read_text().splitlines()) == 2


def test_the_execution_page_shows_the_registered_version_s_approval_state_read_live(tmp_path):
    from sm_pipeline.local.execution_page import render_execution_page
    from sm_pipeline.local.records import _registered_packages
    from sm_pipeline.local.registry import LocalModelRegistry

    registry = LocalModelRegistry(tmp_path)
    arn = registry.register({"ModelPackageGroupName": "abalone"})["ModelPackageArn"]
    steps = [{"StepName": "RegisterAbalone", "StepStatus": "Succeeded", "Metadata": {"RegisterModel": {"Arn": arn}}},
             {"StepName": "Train", "StepStatus": "Succeeded", "Metadata": {}}]
    describe = {"PipelineName": "p", "PipelineExecutionId": "x", "PipelineExecutionStatus": "Succeeded"}
    assert "PendingManualApproval" in render_execution_page(describe, steps,
                                                            model_packages=_registered_packages(tmp_path, steps))
    registry.update_model_package(arn, {"ModelApprovalStatus": "Approved", "ApprovalDescription": "Approved by alice",
                                        "LastModifiedBy": {"UserProfileName": "alice"}})
    page = render_execution_page(describe, steps, model_packages=_registered_packages(tmp_path, steps))
    assert "<td>Approved</td><td>Approved by alice</td><td>alice</td>" in page
