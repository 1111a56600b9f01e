"""The SageMaker SDK v3 drives the emulated service unchanged: its own Pipeline through upsert, start, wait,
list_steps and stop, with nothing but AWS_ENDPOINT_URL set — role validation included (SAGEMAKER_VALIDATE_ROLE
unset: the SDK asks IAM at the same endpoint), and no request anywhere but that endpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from service_support import REPO, unique

DRIVER = Path(__file__).with_name("sdk_pipeline_driver.py")
AUDIT = REPO / "tests" / "network_audit"
CODE = REPO / "tests" / "conformance" / "code" / "conformance_step.py"


def test_the_sdks_pipeline_upserts_starts_waits_lists_and_stops(sagemaker_service, tmp_path):
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("SAGEMAKER_", "AIRSAGE_")) and key != "PYTHONPATH"}
    # The SDK's usage telemetry goes straight to an AWS bucket whatever the endpoint; a user of the emulated
    # service opts out as the SDK documents (TelemetryOptOut in its defaults config), so nothing leaves.
    opt_out = tmp_path / "sdk_defaults.yaml"
    opt_out.write_text("SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n      TelemetryOptOut: true\n")
    env.update(AWS_ENDPOINT_URL=sagemaker_service.url, PYTHONPATH=str(AUDIT), AIRSAGE_NETWORK_AUDIT_DIR=str(tmp_path),
               SAGEMAKER_USER_CONFIG_OVERRIDE=str(opt_out), SAGEMAKER_ADMIN_CONFIG_OVERRIDE=str(opt_out))
    name = unique("sdk-driven")
    done = subprocess.run([sys.executable, str(DRIVER), name, name, str(CODE)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    arn = f"arn:aws:sagemaker:us-east-1:000000000000:pipeline/{name}"
    assert (report["created"], report["updated"]) == (arn, arn)
    assert report["first"] == "Succeeded"
    assert report["steps"] == [{"StepName": "Sleep", "StepStatus": "Succeeded"}]
    assert report["second"] == "Stopped"
    # The SDK validated the role through IAM, at the service's endpoint, like every other request.
    assert any(sent["action"].startswith("Action=GetRole&") for sent in report["sent"]), report["sent"]
    assert {sent["url"].split("/", 3)[2] for sent in report["sent"]} == {sagemaker_service.url.split("/", 3)[2]}
    attempts = tmp_path / "attempts.jsonl"
    assert not attempts.exists() or attempts.read_text() == ""
