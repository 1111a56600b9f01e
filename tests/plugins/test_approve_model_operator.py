"""ModelApprovalOperator's decisions before it asks: no version, backfill, approval off, already decided.

The asking itself (HITL request, awaiting_input, answers, time-out, decisions made while waiting) needs a real
Airflow: tests/e2e/test_approval.py.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from airflow.providers.common.compat.sdk import AirflowSkipException
from airflow.sdk.api.datamodels._generated import DagRunType

from airsage.model_approval import APPROVED, PENDING, REJECTED, Decider, LocalRegistryClient, decide
from airsage.operators.approve_model import ModelApprovalOperator

DAG_ID = "abalone_pipeline_local"


def operator(root, arn) -> ModelApprovalOperator:
    return ModelApprovalOperator(task_id="approve_model", execution={"model_package_arn": arn},
                                 metrics={"value": 4.2}, threshold=6.0, metric="mse", backend="local",
                                 local_root=str(root), approve_backfills=False)


def context(run_type=DagRunType.MANUAL, clear=0, run_id="manual__1"):
    return {"dag_run": SimpleNamespace(run_type=run_type, clear_number=clear), "dag": SimpleNamespace(dag_id=DAG_ID),
            "run_id": run_id, "ds": "2026-11-20"}


@pytest.fixture
def registered(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_AIRSAGE_APPROVAL", "{}")
    registry = LocalRegistryClient(str(tmp_path))
    return registry, registry.registry.register({"ModelPackageGroupName": "abalone"})["ModelPackageArn"]


def test_a_backfill_run_skips_with_the_version_left_pending(registered, tmp_path, capsys):
    registry, arn = registered
    with pytest.raises(AirflowSkipException, match="backfill run"):
        operator(tmp_path, arn).execute(context(run_type=DagRunType.BACKFILL))  # as the task SDK gives it
    assert registry.describe(arn)["ModelApprovalStatus"] == PENDING
    assert "Backfill run: not asking for approval" in capsys.readouterr().out  # the task log line


def test_approve_backfills_asks_in_a_backfill_run_too(registered, tmp_path):
    registry, arn = registered
    registry.registry.update_model_package(arn, {"ModelApprovalStatus": APPROVED})  # decided: no request needed
    task = operator(tmp_path, arn)
    task.approve_backfills = "True"  # the rendered DAG param
    assert task.execute(context(run_type=DagRunType.BACKFILL))["approval_status"] == APPROVED


def test_approval_off_skips(registered, tmp_path, monkeypatch):
    registry, arn = registered
    monkeypatch.setenv("AIRFLOW_VAR_AIRSAGE_APPROVAL", '{"required": false}')
    with pytest.raises(AirflowSkipException, match="approval off"):
        operator(tmp_path, arn).execute(context())
    assert registry.describe(arn)["ModelApprovalStatus"] == PENDING


def test_no_version_registered_skips(tmp_path, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_AIRSAGE_APPROVAL", "{}")
    with pytest.raises(AirflowSkipException, match="no model package version"):
        operator(tmp_path, None).execute(context())


def test_a_retry_after_the_decision_ends_with_it_without_asking_or_writing(registered, tmp_path):
    registry, arn = registered
    decide(registry, arn, APPROVED, Decider("alice", DAG_ID, "manual__1", 0), when="t")
    before = registry.describe(arn)
    result = operator(tmp_path, arn).execute(context())  # asking would need a task runner: it must not ask
    assert result["approval_status"] == APPROVED and result["decided_by"] == "alice" and result["source"] == "registry"
    assert registry.describe(arn) == before


def test_a_decision_made_elsewhere_before_the_task_is_adopted(registered, tmp_path):
    registry, arn = registered
    registry.registry.update_model_package(arn, {"ModelApprovalStatus": REJECTED,
                                                 "LastModifiedBy": {"UserProfileName": "carol"}})
    result = operator(tmp_path, arn).execute(context())
    assert (result["approval_status"], result["decided_by"]) == (REJECTED, "carol")
    assert "outside Airflow" in result["decided_where"]
