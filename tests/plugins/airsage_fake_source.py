"""A tiny hand-written pipeline for the plugin tests (no SageMaker SDK import: fast).

Shaped like the abalone definition where the plugins look: the parameters, and the
EvaluateAbalone step whose ``evaluation`` output holds the ``EvaluationReport`` PropertyFile
under ``executions/{PipelineExecutionId}/EvaluateAbalone/evaluation``.
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


def definition(bucket: str = BUCKET, prefix: str = PREFIX, threshold: float = 6.0) -> dict:
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
        ],
        "PipelineExperimentConfig": {},
        "Steps": [
            {
                "Name": "EvaluateAbalone",
                "Type": "Processing",
                "Arguments": {
                    "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge",
                                                              "VolumeSizeInGB": 30}},
                    "AppSpecification": {"ImageUri": "sklearn", "ContainerEntrypoint": ["python3", "evaluate.py"]},
                    "RoleArn": ROLE,
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
                "PropertyFiles": [
                    {"PropertyFileName": "EvaluationReport", "OutputName": "evaluation", "FilePath": "evaluation.json"}
                ],
            },
            {
                "Name": "AbaloneMseFail",
                "Type": "Fail",
                "Arguments": {"ErrorMessage": "MSE above threshold"},
            },
        ],
    }


def build(overrides: dict | None = None, *, cache_dir: str | None = None) -> PipelineSource:
    """PipelineSource for the tests; ``overrides`` may set bucket, prefix, mse (definition change)."""
    overrides = overrides or {}
    bucket = overrides.get("bucket") or BUCKET
    prefix = overrides.get("prefix") or PREFIX
    code = Path(__file__)
    digest = hashlib.sha256(code.read_bytes()).hexdigest()
    return PipelineSource(
        pipeline_name=overrides.get("pipeline_name") or PIPELINE,
        definition=json.dumps(definition(bucket, prefix, float(overrides.get("mse", 6.0)))),
        role_arn=ROLE,
        bucket=bucket,
        prefix=prefix,
        tags={"cost-center": "ml-abalone"},
        code_objects=(CodeObject(str(code), digest, f"s3://{bucket}/{prefix}/code/{digest[:16]}/evaluate.py"),),
    )
