"""The churn DAGs, tested the way airsage's kit offers: offline, on the emulated SageMaker service."""

import pytest

from airsage.testing import check_pipeline_dag


@pytest.fixture(scope="module")
def dags(airflow_metadata_db):
    import churn_dags

    return churn_dags


def test_the_dags_parse_and_their_gate_fits_the_pipeline(dags):
    assert dags.churn.task_ids == ["stage_input", "upsert_pipeline", "start_execution", "wait_for_execution",
                                   "read_metrics", "gate", "publish_report", "alert_on_call", "approve_model"]
    assert "run_local" in dags.churn_local.task_ids
    assert check_pipeline_dag(dags.churn) == []


def test_the_local_dag_passes_the_accuracy_gate(dags, run_dag, local_object_root):
    run = run_dag(dags.churn_local, "2026-11-01")
    assert run.state == "success", run.task_states
    assert run.task_states["publish_report"] == "success" and run.task_states["alert_on_call"] == "skipped"
    metrics = run.xcom("read_metrics")
    assert metrics["metric"] == "accuracy" and metrics["value"] == 0.9
    steps = {s["StepName"]: s["StepStatus"] for s in run.execution_steps()}
    assert steps == {"ScoreChurn": "Succeeded", "AccuracyCheck": "Succeeded", "RegisterChurnModel": "Succeeded",
                     "AccuracyTooLow": "NotExecuted"}


def test_the_sagemaker_dag_fails_the_gate_on_the_emulated_service(dags, run_dag, s3_bucket, pipeline_role,
                                                                  sagemaker_client):
    run = run_dag(dags.churn, "2026-11-02", conf={"accuracy_threshold": 0.95})
    assert run.state == "failed"
    assert run.task_states["alert_on_call"] == "failed" and run.task_states["publish_report"] == "skipped"
    execution = run.execution
    assert execution["quality_gate_failed"] is True and execution["status"] == "Failed"
    described = sagemaker_client.describe_pipeline_execution(PipelineExecutionArn=execution["execution_arn"])
    assert "accuracy 0.9 is below 0.95" in described["FailureReason"]
    assert [s["StepName"] for s in run.execution_steps() if s["StepStatus"] == "Failed"] == ["AccuracyTooLow"]
