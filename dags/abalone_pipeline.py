"""Airflow DAG file: ``abalone_pipeline`` (SageMaker) and ``abalone_pipeline_local`` (local runner).

Wiring only: the abalone pipeline (SDK v3 builder in ``sm_pipeline``), what its quality gate reads,
and how its daily data is staged; ``airsage.dag_factory`` builds the same task shape for both backends.
"""

import os
from pathlib import Path

from airsage.dag_factory import CsvPartition, PipelineSpec, build_pipeline_dag
from airsage.quality_gate import QualityGate

REPO = Path(__file__).resolve().parents[1]

ABALONE = PipelineSpec(
    name="abalone",
    description="Trains and evaluates the abalone rings regressor (UCI data) once per logical date, then "
                "publishes a report, or — when the model's MSE is above the threshold — notifies on-call and "
                "fails the run.",
    source="sm_pipeline.abalone.source:abalone_source",
    gate=QualityGate(step="EvaluateAbalone", property_file="EvaluationReport", json_path="regression_metrics.mse.value",
                     metric="mse", comparison="<=", threshold=6.0, threshold_param="mse_threshold",
                     pipeline_parameter="MseThreshold", fail_steps=("AbaloneMseFail",)),
    stage=CsvPartition(default_source=str(REPO / "data" / "abalone.csv"), input_parameter="InputData",
                       label_column="rings", batch_parameter="BatchData", input_file="abalone.csv",
                       batch_file="batch.csv"),
    predictions_file="predictions.csv",
)
# (the label column is the data's: data/abalone.csv's header, as processing_code/preprocess.py and
# `run-local --stage-data` read it; a DAG file imports airsage only, never sm_pipeline at parse time)
# the local object root unless the Variable airsage_local_root says otherwise: an environment
# variable, not a Variable, because parse time must not touch the metadata DB (make ui sets it)
LOCAL_ROOT = os.environ.get("AIRSAGE_ROOT", str(REPO / ".airsage"))

abalone_pipeline = build_pipeline_dag("abalone_pipeline", ABALONE, backend="sagemaker", default_local_root=LOCAL_ROOT)
abalone_pipeline_local = build_pipeline_dag("abalone_pipeline_local", ABALONE, backend="local",
                                            default_local_root=LOCAL_ROOT)
