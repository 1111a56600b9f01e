"""airsage's pipeline package: the SageMaker definition, its validator and the local runner.

Nothing here imports Airflow; the CLI is ``python -m sm_pipeline``.
"""
