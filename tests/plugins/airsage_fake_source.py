"""A tiny hand-written pipeline for the plugin tests (no SageMaker SDK import: fast).

Shaped like the abalone definition where the plugins look, and small enough to really run on the
emulated SageMaker service in about a second: the parameters; an EvaluateAbalone processing step
(airsage_fake_evaluate.py, staged as code) whose ``evaluation`` output holds the ``EvaluationReport``
PropertyFile under ``executions/{PipelineExecutionId}/EvaluateAbalone/evaluation``; a condition on
its MSE against MseThreshold that registers a model version or ends in the AbaloneMseFail step.
The parameters Outcome, Mse, Sleep and Report steer the script (see airsage_fake_evaluate.py).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from airsage.pipeline_source import CodeObject, PipelineSource

BUCKET = "airsage-test"
PREFIX = "abalone"
PIPELINE = "airsage-test-abalone"
ROLE = "arn:aws:iam::123456789012:role/AirsageTest"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
SCRIPT = Path(__file__).with_name("airsage_fake_evaluate.py")
REPORT = {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.EvaluateAbalone.PropertyFiles.EvaluationReport"},
                          "Path": "regression_metrics.mse.value"}}


def code_uri(bucket: str = BUCKET, prefix: str = PREFIX) -> str:
    """Where the evaluate script is staged (content-addressed, as the project stages code)."""
    digest = hashlib.sha256(SCRIPT.read_bytes()).hexdigest()
    return f"s3://{bucket}/{prefix}/code/{digest[:16]}/evaluate.py"


def definition(bucket: str = BUCKET, prefix: str = PREFIX, threshold: float = 6.0, group: str = PIPELINE) -> dict:
    """The definition dict; ``threshold`` changes it (for update tests)."""
    return {
        "Version": "2020-12-01",
        "Metadata": {},
        "Parameters": [
            {"Name": "ProcessingInstanceCount", "Type": "Integer", "DefaultValue": 1},
            {"Name": "ProcessingInstanceType", "Type": "String", "DefaultValue": "ml.m5.xlarge"},
            {"Name": "InputData", "Type": "String", "DefaultValue": f"s3://{bucket}/{prefix}/input/abalone.csv"},
            {"Name": "BatchData", "Type": "String", "DefaultValue": f"s3://{bucket}/{prefix}/batch/batch.csv"},
            {"Name": "MseThreshold", "Type": "Float", "DefaultValue": threshold},
            {"Name": "UseCache", "Type": "Boolean", "DefaultValue": True},
            {"Name": "Outcome", "Type": "String", "DefaultValue": "ok"},
            {"Name": "Mse", "Type": "String", "DefaultValue": "4.25"},
            {"Name": "Sleep", "Type": "String", "DefaultValue": "0"},
            {"Name": "Report", "Type": "String", "DefaultValue": ""},
        ],
        "PipelineExperimentConfig": {},
        "Steps": [
            {
                "Name": "EvaluateAbalone",
                "Type": "Processing",
                "Arguments": {
                    "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge",
                                                              "VolumeSizeInGB": 30}},
                    "AppSpecification": {
                        "ImageUri": IMAGE,
                        "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/evaluate.py"],
                        "ContainerArguments": [{"Get": "Parameters.Outcome"}, {"Get": "Parameters.Mse"},
                                               {"Get": "Parameters.Sleep"}, {"Get": "Parameters.Report"}],
                    },
                    "RoleArn": ROLE,
                    "ProcessingInputs": [{"InputName": "code", "S3Input": {
                        "S3Uri": code_uri(bucket, prefix), "LocalPath": "/opt/ml/processing/input/code",
                        "S3DataType": "S3Prefix", "S3InputMode": "File", "S3DataDistributionType": "FullyReplicated"}}],
                    "ProcessingOutputConfig": {"Outputs": [{
                        "OutputName": "evaluation",
                        "AppManaged": False,
                        "S3Output": {
                            "S3Uri": {"Std:Join": {"On": "/", "Values": [
                                "s3:/", bucket, prefix, "executions",
                                {"Get": "Execution.PipelineExecutionId"}, "EvaluateAbalone", "evaluation",
                            ]}},
                            "LocalPath": "/opt/ml/processing/evaluation",
                            "S3UploadMode": "EndOfJob",
                        },
                    }]},
                },
                # a cached step (same arguments, same code) reuses the source job's outputs, as on SageMaker
                "CacheConfig": {"Enabled": True, "ExpireAfter": "P30D"},
                "PropertyFiles": [
                    {"PropertyFileName": "EvaluationReport", "OutputName": "evaluation", "FilePath": "evaluation.json"}
                ],
            },
            {
                "Name": "CheckMseAbalone",
                "Type": "Condition",
                "Arguments": {
                    "Conditions": [{"Type": "LessThanOrEqualTo", "LeftValue": REPORT,
                                    "RightValue": {"Get": "Parameters.MseThreshold"}}],
                    "IfSteps": [{
                        "Name": "RegisterAbaloneModel-RegisterModel", "Type": "RegisterModel",
                        "Arguments": {
                            "ModelPackageGroupName": group,
                            "ModelApprovalStatus": "PendingManualApproval",
                            "InferenceSpecification": {"Containers": [{"Image": IMAGE}],
                                                       "SupportedContentTypes": ["text/csv"],
                                                       "SupportedResponseMIMETypes": ["text/csv"]},
                        },
                    }],
                    "ElseSteps": [{
                        "Name": "AbaloneMseFail",
                        "Type": "Fail",
                        "Arguments": {"ErrorMessage": {"Std:Join": {"On": " ", "Values": [
                            "MSE", REPORT, "is above the MseThreshold", {"Get": "Parameters.MseThreshold"}]}}},
                    }],
                },
            },
        ],
    }


def build(overrides: dict | None = None, *, cache_dir: str | None = None) -> PipelineSource:
    """PipelineSource for the tests; ``overrides`` may set bucket, prefix, pipeline_name, mse (definition change)."""
    overrides = overrides or {}
    bucket = overrides.get("bucket") or BUCKET
    prefix = overrides.get("prefix") or PREFIX
    pipeline = overrides.get("pipeline_name") or PIPELINE
    digest = hashlib.sha256(SCRIPT.read_bytes()).hexdigest()
    return PipelineSource(
        pipeline_name=pipeline,
        definition=json.dumps(definition(bucket, prefix, float(overrides.get("mse", 6.0)), group=pipeline)),
        role_arn=ROLE,
        bucket=bucket,
        prefix=prefix,
        tags={"cost-center": "ml-abalone"},
        code_objects=(CodeObject(str(SCRIPT), digest, code_uri(bucket, prefix)),),
    )
