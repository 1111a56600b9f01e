"""The churn pipeline: ScoreChurn (Processing, PropertyFile ChurnEvaluation) → AccuracyCheck (accuracy ≥
AccuracyThreshold) → RegisterChurnModel, else AccuracyTooLow (Fail).

A builder as airsage's DAG factory takes it: ``build(overrides)`` with the config overrides (bucket,
prefix, role_arn, ...) returns a PipelineSource: the definition and the code objects to stage.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from airsage.pipeline_source import CodeObject, PipelineSource

SCRIPT = Path(__file__).with_name("score.py")
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
ACCURACY = {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.ScoreChurn.PropertyFiles.ChurnEvaluation"},
                            "Path": "classification_metrics.accuracy.value"}}


def build(overrides: dict) -> PipelineSource:
    """The churn pipeline for these overrides."""
    bucket, prefix = overrides.get("bucket") or "churn-artifacts", overrides.get("prefix") or "churn"
    role = overrides.get("role_arn") or "arn:aws:iam::000000000000:role/ChurnPipeline"
    digest = hashlib.sha256(SCRIPT.read_bytes()).hexdigest()
    code_uri = f"s3://{bucket}/{prefix}/code/{digest[:16]}/score.py"
    definition = {
        "Version": "2020-12-01",
        "Metadata": {},
        "Parameters": [
            {"Name": "Customers", "Type": "String", "DefaultValue": f"s3://{bucket}/{prefix}/input/customers.csv"},
            {"Name": "AccuracyThreshold", "Type": "Float", "DefaultValue": 0.7},
        ],
        "Steps": [
            {"Name": "ScoreChurn", "Type": "Processing", "Arguments": {
                "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.t3.medium", "InstanceCount": 1,
                                                          "VolumeSizeInGB": 10}},
                "AppSpecification": {"ImageUri": IMAGE,
                                     "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/score.py"]},
                "RoleArn": role,
                "ProcessingInputs": [
                    {"InputName": "code", "S3Input": {"S3Uri": code_uri, "LocalPath": "/opt/ml/processing/input/code",
                                                      "S3DataType": "S3Prefix", "S3InputMode": "File",
                                                      "S3DataDistributionType": "FullyReplicated"}},
                    {"InputName": "customers", "S3Input": {"S3Uri": {"Get": "Parameters.Customers"},
                                                           "LocalPath": "/opt/ml/processing/input/customers",
                                                           "S3DataType": "S3Prefix", "S3InputMode": "File",
                                                           "S3DataDistributionType": "FullyReplicated"}},
                ],
                "ProcessingOutputConfig": {"Outputs": [{"OutputName": "evaluation", "AppManaged": False, "S3Output": {
                    "S3Uri": {"Std:Join": {"On": "/", "Values": ["s3:/", bucket, prefix, "executions",
                                                                 {"Get": "Execution.PipelineExecutionId"}, "evaluation"]}},
                    "LocalPath": "/opt/ml/processing/evaluation", "S3UploadMode": "EndOfJob"}}]},
            }, "PropertyFiles": [{"PropertyFileName": "ChurnEvaluation", "OutputName": "evaluation",
                                  "FilePath": "evaluation.json"}]},
            {"Name": "AccuracyCheck", "Type": "Condition", "Arguments": {
                "Conditions": [{"Type": "GreaterThanOrEqualTo", "LeftValue": ACCURACY,
                                "RightValue": {"Get": "Parameters.AccuracyThreshold"}}],
                "IfSteps": [{"Name": "RegisterChurnModel", "Type": "RegisterModel", "Arguments": {
                    "ModelPackageGroupName": "churn-classifier", "ModelApprovalStatus": "PendingManualApproval",
                    "InferenceSpecification": {"Containers": [{"Image": IMAGE}], "SupportedContentTypes": ["text/csv"],
                                               "SupportedResponseMIMETypes": ["text/csv"]}}}],
                "ElseSteps": [{"Name": "AccuracyTooLow", "Type": "Fail", "Arguments": {"ErrorMessage": {"Std:Join": {
                    "On": " ", "Values": ["accuracy", ACCURACY, "is below", {"Get": "Parameters.AccuracyThreshold"}]}}}}],
            }},
        ],
    }
    return PipelineSource(pipeline_name="churn-classifier", definition=json.dumps(definition), role_arn=role,
                          bucket=bucket, prefix=prefix,
                          code_objects=(CodeObject(str(SCRIPT), digest, code_uri),),
                          description="churn classifier (deployed by Airflow)")
