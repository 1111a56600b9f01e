"""Backfill of abalone_pipeline_local over three logical dates.

Each date must get its own input partition, its own pipeline execution, its own model-registry
version and its own report (``reports/ds=…/run=…/``, pointed at by ``latest.json``); re-running a
date afterwards must change nothing. The runs go
through ``dag.test()`` one date after another, which is what a backfill's runs do once the
scheduler picks them up (``airflow backfill create`` itself only queues runs).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

# after the DAG's start_date (2026-11-01): earlier dates have no task instances to run
DATES = [datetime(2026, 11, day, tzinfo=UTC) for day in (10, 11, 12)]
PIPELINE = "airsage-abalone"
GROUP = "airsage-abalone"


def _states(run) -> dict[str, str]:
    return {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in run.get_task_instances()}


def _snapshot(root):
    """Every file under the object root with its modification time (the runner's own
    bookkeeping directory is left out: re-attaching reads it, and may refresh a lock file)."""
    return {p.relative_to(root): p.stat().st_mtime_ns for p in root.rglob("*")
            if p.is_file() and ".airsage" not in p.relative_to(root).parts}


@pytest.fixture(scope="module")
def backfilled(dag_module, tmp_path_factory):
    """Run the three dates once, in order; yields the object root."""
    root = tmp_path_factory.mktemp("backfill") / "objects"
    mp = pytest.MonkeyPatch()
    mp.setenv("AIRFLOW_VAR_AIRSAGE_LOCAL_ROOT", str(root))
    runs = [dag_module.abalone_pipeline_local.test(logical_date=d, run_after=d, run_conf={"mse_threshold": 50.0})
            for d in DATES]
    yield root, runs
    mp.undo()


def test_every_date_runs_to_a_published_report(backfilled):
    _, runs = backfilled
    for run in runs:
        states = _states(run)
        assert states["publish_report"] == "success", states
        assert states["alert_on_call"] == "skipped"


def test_each_date_has_its_own_partition_execution_registry_version_and_report(backfilled):
    from sm_pipeline.local import LocalExecutionStore
    from sm_pipeline.local.registry import LocalModelRegistry

    root, runs = backfilled
    base = root / "airsage-artifacts" / "abalone"
    days = [d.strftime("%Y-%m-%d") for d in DATES]
    reports = {}
    for day, run in zip(days, runs, strict=True):
        assert (base / "input" / f"ds={day}" / "abalone.csv").is_file()
        assert (base / "batch" / f"ds={day}" / "batch.csv").is_file()
        latest = json.loads((base / "reports" / f"ds={day}" / "latest.json").read_text())
        assert (latest["run_id"], latest["kind"]) == (run.run_id, "report")
        reports[day] = Path(latest["location"])
        assert reports[day].is_file() and reports[day].parent.parent.name == f"ds={day}"

    executions = LocalExecutionStore(root).find(PIPELINE)
    assert len(executions) == 3
    assert len({e["PipelineExecutionDisplayName"] for e in executions}) == 3
    assert {e["PipelineExecutionStatus"] for e in executions} == {"Succeeded"}

    packages = LocalModelRegistry(root).list_model_packages(GROUP)
    assert sorted(p["ModelPackageVersion"] for p in packages) == [1, 2, 3]
    reported = [json.loads(reports[day].with_name("metrics.json").read_text())["model_package_arn"] for day in days]
    assert len(set(reported)) == 3
    assert set(reported) == {p["ModelPackageArn"] for p in packages}

    # each execution read its own date's partition
    for execution, day in zip(sorted(executions, key=lambda e: e["CreationTime"]), days, strict=True):
        params = {p["Name"]: p["Value"] for p in execution.get("PipelineParameters", [])}
        assert f"/input/ds={day}/" in params["InputData"]
        assert f"/batch/ds={day}/" in params["BatchData"]


def test_rerunning_a_backfilled_date_changes_nothing(backfilled, dag_module, monkeypatch):
    from sm_pipeline.local import LocalExecutionStore
    from sm_pipeline.local.registry import LocalModelRegistry

    root, _ = backfilled
    monkeypatch.setenv("AIRFLOW_VAR_AIRSAGE_LOCAL_ROOT", str(root))
    before = _snapshot(root)
    executions = len(LocalExecutionStore(root).find(PIPELINE))
    versions = len(LocalModelRegistry(root).list_model_packages(GROUP))

    run = dag_module.abalone_pipeline_local.test(logical_date=DATES[1], run_after=DATES[1],
                                                 run_conf={"mse_threshold": 50.0})

    assert _states(run)["publish_report"] == "success"
    assert _snapshot(root) == before
    assert len(LocalExecutionStore(root).find(PIPELINE)) == executions
    assert len(LocalModelRegistry(root).list_model_packages(GROUP)) == versions
