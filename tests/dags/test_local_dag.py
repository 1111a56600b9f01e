"""``dag.test()`` of abalone_pipeline_local end to end on SQLite: both gate outcomes."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

pytestmark = pytest.mark.slow

BUCKET_DIR = ("airsage-artifacts", "abalone")


def states(dag_run):
    return {ti.task_id: str(ti.state.value if hasattr(ti.state, "value") else ti.state)
            for ti in dag_run.get_task_instances()}


def run_date(dag_module, logical_date, threshold):
    """dag.test() with run_after = the logical date: the run id is then the same on every re-run of
    that date, as when a run is cleared in the UI."""
    return dag_module.abalone_pipeline_local.test(logical_date=logical_date, run_after=logical_date,
                                                run_conf={"mse_threshold": threshold})


@pytest.fixture(scope="module")
def shared_root(tmp_path_factory):
    """One object root for the module: the second run reuses the first one's step cache."""
    return tmp_path_factory.mktemp("local-dag") / "objects"


def test_pass_path_publishes_the_report(dag_module, shared_root, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_AIRSAGE_LOCAL_ROOT", str(shared_root))
    run = run_date(dag_module, datetime(2026, 11, 1, tzinfo=UTC), 50.0)
    assert states(run) == {
        "stage_input": "success", "upsert_pipeline": "success", "run_local": "success",
        "read_metrics": "success", "gate": "success", "publish_report": "success", "alert_on_call": "skipped",
    }
    base = shared_root.joinpath(*BUCKET_DIR)
    report = base / "reports" / "ds=2026-11-01"
    assert sorted(p.name for p in report.iterdir()) == [
        "metrics.json", "predicted_vs_actual.png", "report.html", "residual_histogram.png"]
    metrics = json.loads((report / "metrics.json").read_text())
    assert 0 < metrics["value"] <= 50.0 and metrics["threshold"] == 50.0
    assert metrics["model_package_arn"].split(":")[5].startswith("model-package/")
    assert (report / "predicted_vs_actual.png").read_bytes()[:4] == b"\x89PNG"
    assert (base / "input" / "ds=2026-11-01" / "abalone.csv").is_file()
    header = (base / "batch" / "ds=2026-11-01" / "batch.csv").read_text().splitlines()[0]
    assert "rings" not in header.split(",")


def test_mse_above_threshold_alerts_on_call_and_skips_the_report(dag_module, shared_root, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_AIRSAGE_LOCAL_ROOT", str(shared_root))
    run = run_date(dag_module, datetime(2026, 11, 2, tzinfo=UTC), 0.01)
    assert states(run) == {
        "stage_input": "success", "upsert_pipeline": "success", "run_local": "success",
        "read_metrics": "success", "gate": "success", "publish_report": "skipped", "alert_on_call": "success",
    }
    report = shared_root.joinpath(*BUCKET_DIR, "reports", "ds=2026-11-02")
    assert [p.name for p in report.iterdir()] == ["ALERT.json"]
    alert = json.loads((report / "ALERT.json").read_text())
    assert alert["threshold"] == 0.01 and alert["value"] > 0.01
    assert alert["pipeline_quality_gate_failed"] is True  # the pipeline's own Fail step agreed
    assert alert["console_url"].startswith("file://") and alert["execution_arn"]


def test_rerunning_a_date_reattaches_and_rewrites_nothing(dag_module, shared_root, monkeypatch):
    from sm_pipeline.local import LocalExecutionStore

    monkeypatch.setenv("AIRFLOW_VAR_AIRSAGE_LOCAL_ROOT", str(shared_root))
    base = shared_root.joinpath(*BUCKET_DIR)
    watched = [p for p in (base / "reports" / "ds=2026-11-01").iterdir()]
    watched += [base / "input" / "ds=2026-11-01" / "abalone.csv", base / "batch" / "ds=2026-11-01" / "batch.csv"]
    before = {p: p.stat().st_mtime_ns for p in watched}
    executions = len(LocalExecutionStore(shared_root).find("airsage-abalone"))

    run = run_date(dag_module, datetime(2026, 11, 1, tzinfo=UTC), 50.0)
    assert states(run)["publish_report"] == "success"
    assert {p: p.stat().st_mtime_ns for p in watched} == before
    assert len(LocalExecutionStore(shared_root).find("airsage-abalone")) == executions
