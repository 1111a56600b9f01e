"""Constants shared by the SageMaker-DAG tests and their emulated-AWS fixture."""

BUCKET, PREFIX = "airsage-artifacts", "abalone"
MSE = 4.75  # what the emulated EvaluateAbalone step reports
