"""Builders for small pipeline definitions whose scripts use only the standard library (fast to start)."""

from __future__ import annotations

import textwrap

from sm_pipeline.storage import ObjectStore

SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
XGBOOST_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
BUCKET = "s3://test-bucket"


def processing_step(name: str, code_uri: str, *, inputs=(), outputs=(), arguments=(), instance_count=1,
                    image=SKLEARN_IMAGE, **extra) -> dict:
    """A Processing step running ``code_uri`` (staged at /opt/ml/processing/input/code)."""
    script = code_uri.rsplit("/", 1)[-1]
    processing_inputs = [
        {"InputName": input_name, "S3Input": {"S3Uri": uri, "LocalPath": local, "S3DataType": "S3Prefix",
                                              "S3InputMode": "File", "S3DataDistributionType": distribution}}
        for input_name, uri, local, distribution in [(*i, "FullyReplicated")[:4] for i in inputs]
    ]
    processing_inputs.append({"InputName": "code", "S3Input": {
        "S3Uri": code_uri, "LocalPath": "/opt/ml/processing/input/code", "S3DataType": "S3Prefix",
        "S3InputMode": "File", "S3DataDistributionType": "FullyReplicated"}})
    step = {
        "Name": name,
        "Type": "Processing",
        "Arguments": {
            "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.large", "InstanceCount": instance_count,
                                                      "VolumeSizeInGB": 30}},
            "AppSpecification": {"ImageUri": image,
                                 "ContainerEntrypoint": ["python3", f"/opt/ml/processing/input/code/{script}"],
                                 "ContainerArguments": list(arguments)},
            "RoleArn": "arn:aws:iam::000000000000:role/Test",
            "ProcessingInputs": processing_inputs,
            "ProcessingOutputConfig": {"Outputs": [
                {"OutputName": output_name, "S3Output": {"S3Uri": uri, "LocalPath": local, "S3UploadMode": "EndOfJob"}}
                for output_name, local, uri in outputs]},
        },
    }
    step.update(extra)
    return step


def definition(steps: list[dict], parameters: list[dict] | None = None) -> dict:
    """A pipeline definition around ``steps``."""
    return {"Version": "2020-12-01", "Metadata": {}, "Parameters": parameters or [], "Steps": steps}


def stage_script(store: ObjectStore, uri: str, source: str) -> str:
    """Put a dedented script at ``uri``; returns the URI."""
    store.put_bytes(uri, textwrap.dedent(source).encode())
    return uri
