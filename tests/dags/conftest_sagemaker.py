"""Constants shared by the SageMaker-DAG tests."""

PREFIX = "abalone"
