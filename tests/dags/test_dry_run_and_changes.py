"""``dry_run`` and "what changed" through both DAGs (``dag.test()``; the emulated service for the SageMaker one).

A run deploys and runs; the definition then changes (``AIRSAGE_CACHE_EXPIRE_AFTER``, read by the builder);
a dry run stages, diffs and plans, and ends: nothing updated, nothing started, the report shows the dry run.
The next real run's report and a failed gate's on-call alert say what changed since the last good run.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from airsage_test_support import WebhookInbox
from conftest_sagemaker import PREFIX

pytestmark = pytest.mark.slow

PIPELINE = "airsage-abalone"
DAY1, DAY2, DAY3 = (datetime(2026, 11, d, tzinfo=UTC) for d in (1, 2, 3))
PASS, FAIL = 50.0, 0.5
DRY_RUN_STATES = {"stage_input": "success", "upsert_pipeline": "success", "read_metrics": "skipped",
                  "gate": "skipped", "publish_report": "success", "alert_on_call": "skipped",
                  "approve_model": "skipped"}


def states(dag_run) -> dict[str, str]:
    return {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dag_run.get_task_instances()}


def state(dag_run) -> str:
    return str(getattr(dag_run.state, "value", dag_run.state))


def xcom(dag_run, task_id: str, key: str = "return_value"):
    return dag_run.get_task_instance(task_id).xcom_pull(task_ids=task_id, key=key)



def test_local_dry_run_then_what_changed_in_the_report_and_the_alert(dag_module, local_object_root, small_source,
                                                                      monkeypatch):
    from sm_pipeline.local import LocalExecutionStore
    from sm_pipeline.pipeline_versions import PipelineVersions, local_versions_dir

    dag = dag_module.abalone_pipeline_local

    def run(day, threshold, **conf):
        # a dry run is a manual run of its own (another run id) beside the date's scheduled one
        return dag.test(logical_date=day, run_after=day + timedelta(hours=1 if conf.get("dry_run") else 0),
                        # dag.test() writes a run's conf into the DAG's Params: say dry_run every time
                        run_conf={"mse_threshold": threshold, "source": small_source, "dry_run": False, **conf})

    root = local_object_root
    reports = root / "airsage-artifacts" / "abalone" / "reports"
    first = run(DAY1, PASS)
    assert state(first) == "success", states(first)
    assert xcom(first, "upsert_pipeline", "diff")["summary"] == [
        f"pipeline {PIPELINE} is not deployed yet: everything is new"]
    assert xcom(first, "upsert_pipeline", "plan")["reference"] is None
    (day1_execution,) = LocalExecutionStore(root).find(PIPELINE)
    versions = PipelineVersions(local_versions_dir(root, PIPELINE))
    deployed = versions.all()  # the newest version is what the local backend has deployed

    monkeypatch.setenv("AIRSAGE_CACHE_EXPIRE_AFTER", "P7D")
    dry = run(DAY2, PASS, dry_run=True)
    assert state(dry) == "success"
    assert states(dry) == {**DRY_RUN_STATES, "run_local": "skipped"}
    diff = xcom(dry, "upsert_pipeline", "diff")
    assert diff["changed"] is True
    assert "~ step TrainAbalone (Training): CacheConfig.ExpireAfter P30D -> P7D" in diff["summary"]
    plan = xcom(dry, "upsert_pipeline", "plan")
    assert plan["reference"] == day1_execution["PipelineExecutionArn"]
    # the date's data is another object: the first step reads it, everything after reads the first step
    assert plan["hits"] == [] and "PreprocessAbalone" in plan["reruns"]
    assert "InputName=input" in plan["steps"][0]["reason"]
    # nothing was deployed or started
    assert versions.all() == deployed
    assert len(LocalExecutionStore(root).find(PIPELINE)) == 1
    assert not (reports / "ds=2026-11-02" / "latest.json").exists()
    (folder,) = (reports / "ds=2026-11-02").iterdir()
    page = (folder / "report.html").read_text()
    assert "Dry run: what would change" in page and "CacheConfig.ExpireAfter P30D -&gt; P7D" in page
    assert json.loads((folder / "dry_run.json").read_text())["plan"]["reference"] == plan["reference"]

    smaller = Path(small_source).with_name("abalone-smaller.csv")
    smaller.write_text("".join(Path(small_source).read_text().splitlines(keepends=True)[:-1]))
    second = run(DAY2, PASS, source=str(smaller))
    assert state(second) == "success", states(second)
    assert xcom(second, "upsert_pipeline", "diff")["changed"] is True
    pointed = json.loads((reports / "ds=2026-11-02" / "latest.json").read_text())
    run_folder = reports / "ds=2026-11-02" / pointed["uri"].rsplit("/", 2)[-2]
    metrics = json.loads((run_folder / "metrics.json").read_text())
    changed = metrics["what_changed"]
    assert changed["last_good_run"]["ds"] == "2026-11-01"
    assert changed["since"] == day1_execution["PipelineExecutionArn"]
    assert changed["summary"][0] == f"since the last good run 2026-11-01 ({day1_execution['PipelineExecutionArn']}):"
    assert "definition: steps: 0 added, 0 removed, 4 changed; parameters: 0 changed; settings: 0 changed" \
        in changed["summary"]
    # the date's data: another CSV, so other bytes (the hashes the execution's description recorded)
    assert set(changed["data"]) == {"input data", "batch data"}
    assert any(line.startswith("input data (sha256): ") for line in changed["summary"])
    assert any(line.startswith("parameter InputData: ") for line in changed["summary"])
    report_page = (run_folder / "report.html").read_text()
    assert "What changed since the last good run" in report_page

    with WebhookInbox() as inbox:
        monkeypatch.setenv("AIRFLOW_VAR_AIRSAGE_ON_CALL", json.dumps({"webhook_url": inbox.url}))
        failed = run(DAY3, FAIL)
    assert state(failed) == "failed"
    (payload,) = inbox.received
    assert payload["what_changed"][0].startswith("since the last good run 2026-11-02 (")
    assert "what changed since the last good run:" in payload["message"]
    assert any(line.startswith("parameter MseThreshold: 50.0 -> 0.5") for line in payload["what_changed"])


def test_sagemaker_dry_run_updates_and_starts_nothing(dag_module, emulated_aws, monkeypatch):
    sm, s3, bucket, name = emulated_aws["sm"], emulated_aws["s3"], emulated_aws["bucket"], emulated_aws["pipeline"]
    dag = dag_module.abalone_pipeline

    def run(day, **conf):
        return dag.test(logical_date=day, run_after=day + timedelta(hours=1 if conf.get("dry_run") else 0),
                        run_conf={"mse_threshold": PASS, "source": emulated_aws["source"], "dry_run": False, **conf})

    first = run(DAY1)
    assert state(first) == "success", states(first)
    before = sm.describe_pipeline(PipelineName=name)
    (execution,) = sm.list_pipeline_executions(PipelineName=name)["PipelineExecutionSummaries"]

    monkeypatch.setenv("AIRSAGE_CACHE_EXPIRE_AFTER", "P7D")
    dry = run(DAY2, dry_run=True)
    assert state(dry) == "success"
    assert states(dry) == {**DRY_RUN_STATES, "start_execution": "skipped", "wait_for_execution": "skipped"}
    diff, plan = xcom(dry, "upsert_pipeline", "diff"), xcom(dry, "upsert_pipeline", "plan")
    assert "~ step EvaluateAbalone (Processing): CacheConfig.ExpireAfter P30D -> P7D" in diff["summary"]
    assert diff["detail"]["steps"]["changed"][0]["changes"]["CacheConfig"][0]["new"] == "P7D"
    assert plan["reference"] == execution["PipelineExecutionArn"]
    # no UpdatePipeline (the same definition, not modified since) and no StartPipelineExecution
    after = sm.describe_pipeline(PipelineName=name)
    assert after["PipelineDefinition"] == before["PipelineDefinition"]
    assert after["LastModifiedTime"] == before["LastModifiedTime"]
    assert len(sm.list_pipeline_executions(PipelineName=name)["PipelineExecutionSummaries"]) == 1
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{PREFIX}/reports/ds=2026-11-02/").get("Contents", [])
    assert sorted(o["Key"].rsplit("/", 1)[-1] for o in listed) == ["dry_run.json", "report.html"]
