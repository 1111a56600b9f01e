"""A small local pipeline for run_local tests: a stdlib Processing step that sleeps, then RegisterModel.

Shaped where run_local looks: the upsert XCom (``definition_uri``, ``pipeline_name``), a
``MseThreshold`` parameter (to change an input) and a RegisterModel step (to count model versions).
``Gate`` (a file path, or empty) keeps the Work step waiting until the test creates the file, so a
test can hold an execution running while a second try starts, without guessing at timings.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from sm_pipeline.storage import ObjectStore

PIPELINE = "airsage-test-local"
GROUP = "airsage-test-group"
BUCKET = "airsage-test"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
CODE_URI = f"s3://{BUCKET}/code/work.py"
DEFINITION_URI = f"s3://{BUCKET}/pipelines/{PIPELINE}/definition.json"
SCRIPT = """
    import os, sys, time
    deadline = time.monotonic() + 300
    while sys.argv[1] and not os.path.exists(sys.argv[1]):
        if time.monotonic() > deadline:
            sys.exit("the gate file never appeared")
        time.sleep(0.05)
    if sys.argv[2] == "fail":
        print("work failed on purpose", file=sys.stderr)
        sys.exit(3)
    open("/opt/ml/processing/output/done.txt", "w").write("done")
    print("worked", flush=True)
"""


def definition() -> dict:
    """Work (waits for the Gate file, fails when Outcome=fail) → RegisterModel."""
    return {
        "Version": "2020-12-01", "Metadata": {},
        "Parameters": [
            {"Name": "MseThreshold", "Type": "Float", "DefaultValue": 6.0},
            {"Name": "Gate", "Type": "String", "DefaultValue": ""},
            {"Name": "Outcome", "Type": "String", "DefaultValue": "ok"},
        ],
        "Steps": [
            {
                "Name": "Work", "Type": "Processing",
                "Arguments": {
                    "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1,
                                                              "VolumeSizeInGB": 30}},
                    "AppSpecification": {
                        "ImageUri": IMAGE,
                        "ContainerEntrypoint": ["python3", "/opt/ml/processing/input/code/work.py"],
                        "ContainerArguments": [{"Get": "Parameters.Gate"}, {"Get": "Parameters.Outcome"}],
                    },
                    "RoleArn": "arn:aws:iam::000000000000:role/Test",
                    "ProcessingInputs": [{"InputName": "code", "S3Input": {
                        "S3Uri": CODE_URI, "LocalPath": "/opt/ml/processing/input/code", "S3DataType": "S3Prefix",
                        "S3InputMode": "File", "S3DataDistributionType": "FullyReplicated"}}],
                    "ProcessingOutputConfig": {"Outputs": [{"OutputName": "out", "S3Output": {
                        "S3Uri": {"Std:Join": {"On": "/", "Values": [
                            f"s3://{BUCKET}/executions", {"Get": "Execution.PipelineExecutionId"}, "Work"]}},
                        "LocalPath": "/opt/ml/processing/output", "S3UploadMode": "EndOfJob"}}]},
                },
                # a cache would let a second execution skip the work and hide the overlap
                "CacheConfig": {"Enabled": False},
            },
            {
                "Name": "Register", "Type": "RegisterModel", "DependsOn": ["Work"],
                "Arguments": {
                    "ModelPackageGroupName": GROUP,
                    "ModelApprovalStatus": "PendingManualApproval",
                    "InferenceSpecification": {"Containers": [{"Image": IMAGE}],
                                               "SupportedContentTypes": ["text/csv"],
                                               "SupportedResponseMIMETypes": ["text/csv"]},
                },
            },
        ],
    }


def deploy(root: Path) -> dict:
    """Stage the script and the definition into the object root; returns upsert_pipeline's XCom."""
    store = ObjectStore(root)
    store.put_bytes(CODE_URI, textwrap.dedent(SCRIPT).encode())
    store.put_bytes(DEFINITION_URI, json.dumps(definition()).encode())
    return {"pipeline_name": PIPELINE, "definition_uri": DEFINITION_URI, "bucket": BUCKET, "prefix": "p"}
