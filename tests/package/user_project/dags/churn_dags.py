"""Airflow DAG file: the churn DAGs, the same pipeline on SageMaker (``churn``) and on the local runner (``churn_local``).

Airflow parses only files that mention both "airflow" and "dag" (DAG discovery safe mode): this docstring does.
"""

from pathlib import Path

from airsage.dag_factory import CsvPartition, PipelineSpec, build_pipeline_dag
from airsage.quality_gate import QualityGate

PROJECT = Path(__file__).resolve().parents[1]

CHURN = PipelineSpec(
    name="churn",
    source="churn_pipeline:build",
    gate=QualityGate(step="ScoreChurn", property_file="ChurnEvaluation",
                     json_path="classification_metrics.accuracy.value", metric="accuracy", comparison=">=",
                     threshold=0.7, threshold_param="accuracy_threshold", pipeline_parameter="AccuracyThreshold",
                     fail_steps=("AccuracyTooLow",)),
    stage=CsvPartition(default_source=str(PROJECT / "data" / "customers.csv"), input_parameter="Customers",
                       input_file="customers.csv"),
    example_report=str(PROJECT / "tests" / "example_evaluation.json"),
)

churn = build_pipeline_dag("churn", CHURN, backend="sagemaker", default_local_root=str(PROJECT / ".objects"),
                           tags=("churn-team",))
churn_local = build_pipeline_dag("churn_local", CHURN, backend="local", default_local_root=str(PROJECT / ".objects"),
                                 tags=("churn-team",))
