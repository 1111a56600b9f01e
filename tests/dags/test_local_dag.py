"""``dag.test()`` of abalone_pipeline_local end to end on SQLite: both gate outcomes, idempotency per
date and inputs, per-run reports, and on-call notifications (a loopback webhook and SNS on moto → SQS).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from airsage_test_support import WebhookInbox, asset_events, sns_inbox

pytestmark = pytest.mark.slow

BUCKET_DIR = ("airsage-artifacts", "abalone")
PIPELINE, GROUP = "airsage-abalone", "airsage-abalone"
DAY1, DAY2 = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC)


def states(dag_run):
    return {ti.task_id: str(ti.state.value if hasattr(ti.state, "value") else ti.state)
            for ti in dag_run.get_task_instances()}


def state(dag_run) -> str:
    return str(getattr(dag_run.state, "value", dag_run.state))


def run_date(dag_module, logical_date, threshold, run_after=None, **conf):
    """dag.test() with run_after = the logical date by default: the run id is then the same on every
    re-run of that date, as when a run is cleared in the UI; another run_after is another manual run."""
    return dag_module.abalone_pipeline_local.test(logical_date=logical_date, run_after=run_after or logical_date,
                                                run_conf={"mse_threshold": threshold, **conf})


def executions(root):
    from sm_pipeline.local import LocalExecutionStore

    return LocalExecutionStore(root).find(PIPELINE)


def versions(root):
    from sm_pipeline.local.registry import LocalModelRegistry

    return LocalModelRegistry(root).list_model_packages(GROUP)


def latest(root, day):
    return json.loads(root.joinpath(*BUCKET_DIR, "reports", f"ds={day}", "latest.json").read_text())


@pytest.fixture(scope="module")
def shared_root(tmp_path_factory):
    """One object root for the module: later runs reuse the first one's step cache."""
    return tmp_path_factory.mktemp("local-dag") / "objects"


@pytest.fixture
def on_call(aws_connection, monkeypatch):
    """The Variable airsage_on_call pointing at a loopback webhook and an SNS topic (moto) with a queue."""
    topic_arn, receive = sns_inbox(aws_connection)
    with WebhookInbox() as inbox:
        monkeypatch.setenv("AIRFLOW_VAR_AIRSAGE_ON_CALL",
                           json.dumps({"webhook_url": inbox.url, "sns_topic_arn": topic_arn}))
        yield inbox, receive


def test_pass_path_publishes_the_report_in_the_runs_own_folder(dag_module, shared_root, monkeypatch):
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    monkeypatch.setenv("AIRFLOW_VAR_AIRSAGE_LOCAL_ROOT", str(shared_root))
    monkeypatch.setenv("AIRFLOW_VAR_AIRSAGE_APPROVAL", "{}")  # approval required, as in a deployed Airflow
    run = run_date(dag_module, DAY1, 50.0)
    assert states(run) == {
        "stage_input": "success", "upsert_pipeline": "success", "run_local": "success",
        "read_metrics": "success", "gate": "success", "publish_report": "success", "alert_on_call": "skipped",
        "approve_model": "skipped",  # dag.test() cannot answer: it skips itself instead of waiting for a human
    }
    pointer = latest(shared_root, "2026-11-01")
    assert (pointer["run_id"], pointer["kind"]) == (run.run_id, "report")
    report = shared_root.joinpath(*BUCKET_DIR, "reports", "ds=2026-11-01")
    (folder,) = [p for p in report.iterdir() if p.is_dir()]
    assert folder.name.startswith("run=manual__2026-11-01T00-00-00-00-00")
    assert pointer["location"] == str(folder / "report.html")
    assert sorted(p.name for p in folder.iterdir()) == ["metrics.json", "report.html"]  # plots: inline SVG
    metrics = json.loads((folder / "metrics.json").read_text())
    assert 0 < metrics["value"] <= 50.0 and metrics["threshold"] == 50.0 and metrics["run_id"] == run.run_id
    assert metrics["model_package_arn"].split(":")[5].startswith("model-package/")
    from sm_pipeline.local.registry import LocalModelRegistry

    package = LocalModelRegistry(shared_root).describe_model_package(metrics["model_package_arn"])
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    html = (folder / "report.html").read_text()
    assert html.count("<svg") == 3  # predicted vs actual, residuals, the mse history
    base = shared_root.joinpath(*BUCKET_DIR)
    header = (base / "batch" / "ds=2026-11-01" / "batch.csv").read_text().splitlines()[0]
    assert "rings" not in header.split(",")

    # run_local's extra link: the execution page served by the API server, and the page itself
    def xcom(key):
        with create_session() as session:
            row = session.query(XComModel).filter_by(dag_id=run.dag_id, run_id=run.run_id, task_id="run_local",
                                                     key=key).one()
            try:
                return json.loads(row.value) if isinstance(row.value, str | bytes) else row.value
            except ValueError:
                return row.value

    link = xcom("airsage_local_execution")
    (execution,) = executions(shared_root)
    assert link["url"].endswith(f"/airsage/executions/{PIPELINE}/{execution['PipelineExecutionId']}")
    assert metrics["console_url"] == link["url"]
    # what the UI shows: the link the task runner resolved when the task finished
    assert xcom("_link_LocalExecutionLink") == link["url"]
    page = shared_root / ".airsage" / "executions" / PIPELINE / execution["PipelineExecutionId"] / "index.html"
    assert "TrainAbalone" in page.read_text() and "Succeeded" in page.read_text()
    # the report links the page where it is opened: the file beside the records, relative to the report
    import re

    href = re.search(r'<a href="([^"]+)">execution page \(file beside the records\)</a>', html).group(1)
    assert not href.startswith(("/", "http")) and (folder / href).resolve() == page.resolve()
    # the XCom carries each step and the cost: the bound and the estimate (ml.m5.xlarge is in the repository's
    # us-east-1 table; a Lambda or an unpriced type would be unknown, never 0)
    result = xcom("return_value")
    assert [s["name"] for s in result["steps"]][:3] == ["PreprocessAbalone", "TrainAbalone", "EvaluateAbalone"]
    assert result["cost"]["currency"] == "USD" and result["cost"]["estimate"]["steps"]
    estimate = {line["step"]: line for line in result["cost"]["estimate"]["steps"]}
    assert estimate["RegisterAbaloneModel"]["usd"] == 0.0
    assert estimate["TrainAbalone"]["usd"] > 0 and estimate["TransformAbalone"]["usd"] > 0
    assert result["cost"]["estimate"]["complete"] and result["cost"]["estimate"]["usd"] > 0
    assert "Lineage and cost" in html and "TrainAbalone" in html
    # the Airflow Assets the run updated, with what a downstream DAG needs in their extras
    events = asset_events(run)
    base = "x-airsage://abalone_pipeline_local"
    assert set(events) == {f"{base}/input-partition", f"{base}/metrics", f"{base}/model-package", f"{base}/report"}
    assert events[f"{base}/model-package"]["model_package_arn"] == metrics["model_package_arn"]
    assert events[f"{base}/input-partition"]["uri"].endswith("/input/ds=2026-11-01/abalone.csv")
    assert events[f"{base}/metrics"]["value"] == metrics["value"] and events[f"{base}/report"]["ds"] == "2026-11-01"


def test_a_failed_gate_notifies_on_call_once_and_fails_the_run(dag_module, shared_root, monkeypatch, on_call):
    inbox, receive = on_call
    monkeypatch.setenv("AIRFLOW_VAR_AIRSAGE_LOCAL_ROOT", str(shared_root))
    run = run_date(dag_module, DAY2, 0.01)
    assert state(run) == "failed"
    assert states(run) == {
        "stage_input": "success", "upsert_pipeline": "success", "run_local": "success",
        "read_metrics": "success", "gate": "success", "publish_report": "skipped", "alert_on_call": "failed",
        "approve_model": "skipped",
    }
    pointer = latest(shared_root, "2026-11-02")
    assert pointer["kind"] == "alert"
    folder = shared_root.joinpath(*BUCKET_DIR, "reports", "ds=2026-11-02")
    (run_folder,) = [p for p in folder.iterdir() if p.is_dir()]
    assert [p.name for p in run_folder.iterdir()] == ["ALERT.json"]
    alert = json.loads((run_folder / "ALERT.json").read_text())
    assert alert["threshold"] == 0.01 and alert["value"] > 0.01 and (alert["metric"], alert["comparison"]) == ("mse", "<=")
    assert alert["pipeline_quality_gate_failed"] is True  # the pipeline's own Fail step agreed
    assert alert["failing_steps"] == ["AbaloneMseFail"]
    assert alert["execution_link"].startswith("http") and "/airsage/executions/" in alert["execution_link"]

    (payload,) = inbox.received  # the failure callback did not notify a second time
    assert payload["kind"] == "quality_gate" and payload["run_id"] == run.run_id
    assert payload["dag_id"] == "abalone_pipeline_local" and payload["task_id"] == "alert_on_call"
    assert payload["logical_date"].startswith("2026-11-02") and payload["execution_arn"] == alert["execution_arn"]
    assert payload["message"].splitlines()[1].startswith("quality gate: mse ")
    (envelope,) = receive()
    assert envelope["Message"] == payload["message"]
    assert envelope["Subject"] == "airsage: quality gate failed for abalone_pipeline_local 2026-11-02"


def test_a_second_run_of_a_date_reattaches_and_a_changed_threshold_starts_anew(dag_module, shared_root,
                                                                              monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_AIRSAGE_LOCAL_ROOT", str(shared_root))
    before_executions, before_versions = executions(shared_root), versions(shared_root)
    first = latest(shared_root, "2026-11-01")

    manual = run_date(dag_module, DAY1, 50.0, run_after=DAY1 + timedelta(hours=9))  # same inputs, new run id
    assert manual.run_id != first["run_id"] and states(manual)["publish_report"] == "success"
    assert len(executions(shared_root)) == len(before_executions)
    assert len(versions(shared_root)) == len(before_versions)
    second = latest(shared_root, "2026-11-01")
    assert second["run_id"] == manual.run_id and second["uri"] != first["uri"]  # its own report folder
    old = json.loads((shared_root / first["location"]).with_name("metrics.json").read_text())
    new = json.loads((shared_root / second["location"]).with_name("metrics.json").read_text())
    assert new["model_package_arn"] == old["model_package_arn"]

    changed = run_date(dag_module, DAY1, 40.0, run_after=DAY1 + timedelta(hours=10))  # MseThreshold changed
    assert states(changed)["publish_report"] == "success"
    assert len(executions(shared_root)) == len(before_executions) + 1
    assert len(versions(shared_root)) == len(before_versions) + 1


def test_rerunning_the_same_run_reattaches_and_rewrites_nothing(dag_module, shared_root, monkeypatch):
    from airsage.naming import run_path_segment

    monkeypatch.setenv("AIRFLOW_VAR_AIRSAGE_LOCAL_ROOT", str(shared_root))
    base = shared_root.joinpath(*BUCKET_DIR)
    run = run_date(dag_module, DAY1, 50.0)
    pointer = base / "reports" / "ds=2026-11-01" / "latest.json"
    folder = base / "reports" / "ds=2026-11-01" / run_path_segment(run.run_id)
    watched = [*folder.iterdir(), pointer, base / "input" / "ds=2026-11-01" / "abalone.csv",
               base / "batch" / "ds=2026-11-01" / "batch.csv"]
    before = {p: p.stat().st_mtime_ns for p in watched}
    count = len(executions(shared_root))

    again = run_date(dag_module, DAY1, 50.0)
    assert again.run_id == run.run_id and states(again)["publish_report"] == "success"
    assert {p: p.stat().st_mtime_ns for p in watched} == before
    assert len(executions(shared_root)) == count


def test_an_infrastructure_failure_notifies_through_the_failure_callback(dag_module, shared_root, monkeypatch,
                                                                        on_call, tmp_path):
    inbox, receive = on_call
    monkeypatch.setenv("AIRFLOW_VAR_AIRSAGE_LOCAL_ROOT", str(shared_root))
    run = run_date(dag_module, datetime(2026, 11, 3, tzinfo=UTC), 6.0, source=str(tmp_path / "missing.csv"))
    assert state(run) == "failed" and states(run)["stage_input"] == "failed"
    (payload,) = inbox.received
    assert (payload["kind"], payload["task_id"], payload["run_id"]) == ("task_failure", "stage_input", run.run_id)
    assert "missing.csv does not exist" in payload["error"] and payload["execution_arn"] is None
    assert payload["threshold"] == 6.0
    (envelope,) = receive()
    assert envelope["Subject"] == "airsage: task stage_input failed in abalone_pipeline_local 2026-11-03"
    assert "missing.csv does not exist" in envelope["Message"]


def test_a_run_without_a_logical_date_uses_the_day_it_was_queued_for(dag_module, shared_root, monkeypatch):
    """The REST API and ``airflow dags trigger`` may create runs whose logical date is null (no ``ds``)."""
    monkeypatch.setenv("AIRFLOW_VAR_AIRSAGE_LOCAL_ROOT", str(shared_root))
    queued = datetime(2026, 11, 4, 9, 30, tzinfo=UTC)
    run = dag_module.abalone_pipeline_local.test(logical_date=None, run_after=queued,
                                                run_conf={"mse_threshold": 50.0})
    assert run.logical_date is None and state(run) == "success", states(run)
    pointer = latest(shared_root, "2026-11-04")
    assert (pointer["run_id"], pointer["kind"]) == (run.run_id, "report")
    assert shared_root.joinpath(*BUCKET_DIR, "input", "ds=2026-11-04", "abalone.csv").is_file()
