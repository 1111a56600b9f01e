"""Airflow DAG file: ``abalone_pipeline`` (SageMaker) and ``abalone_pipeline_local`` (local).

Airflow puts this folder on sys.path, so the factory is imported by its module name.
"""

from abalone_factory import build_abalone_dag

abalone_pipeline = build_abalone_dag("abalone_pipeline", backend="sagemaker")
abalone_pipeline_local = build_abalone_dag("abalone_pipeline_local", backend="local")
