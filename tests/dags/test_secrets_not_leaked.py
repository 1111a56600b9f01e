"""Secrets set in the AWS connection never reach task logs, XCom or reports.

A full run of abalone_pipeline (emulated AWS, both gate outcomes) is made with a connection
whose access key and secret are recognisable strings; then everything a person or another
system could read afterwards is grepped for them: everything printed or logged, Airflow's
log folder, every XCom value in the metadata DB, every object written to the bucket, and the
on-call notifications (webhook payloads, SNS messages).
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _all_xcom_values() -> list[str]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        return [f"{row.key}={row.value!r}" for row in session.query(XComModel).all()]


def _all_bucket_objects(s3, bucket: str) -> dict[str, bytes]:
    objects = s3.list_objects_v2(Bucket=bucket, MaxKeys=1000).get("Contents", [])
    return {o["Key"]: s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read() for o in objects}


def test_connection_secrets_appear_in_no_log_xcom_report_or_notification(dag_module, emulated_aws, aws_connection,
                                                                          capfd, caplog, monkeypatch):
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
    from airsage_test_support import WebhookInbox, sns_inbox

    topic_arn, receive = sns_inbox(aws_connection)

    conn = json.loads(os.environ["AIRFLOW_CONN_AWS_DEFAULT"])
    FAKE_KEY_ID, FAKE_SECRET = conn["login"], conn["password"]  # noqa: N806
    caplog.set_level(logging.DEBUG)
    # The secret really is what the tasks authenticate with (otherwise the grep proves nothing).
    credentials = AwsBaseHook(aws_conn_id="aws_default", client_type="s3").get_credentials()
    assert (credentials.access_key, credentials.secret_key) == (FAKE_KEY_ID, FAKE_SECRET)

    with WebhookInbox() as inbox:
        monkeypatch.setenv("AIRFLOW_VAR_AIRSAGE_ON_CALL",
                           json.dumps({"webhook_url": inbox.url, "sns_topic_arn": topic_arn}))
        passed = dag_module.abalone_pipeline.test(logical_date=datetime(2026, 11, 20, tzinfo=UTC),
                                                 run_conf={"mse_threshold": 50.0,
                                                           "source": emulated_aws["source"]})
        alerted = dag_module.abalone_pipeline.test(logical_date=datetime(2026, 11, 21, tzinfo=UTC),
                                                  run_conf={"mse_threshold": 0.5,
                                                            "source": emulated_aws["source"]})
    notifications = json.dumps(inbox.received) + json.dumps(receive())
    assert str(getattr(passed.state, "value", passed.state)) == "success"
    assert str(getattr(alerted.state, "value", alerted.state)) == "failed"  # the gate failed: a red run

    out, err = capfd.readouterr()
    logged = "\n".join(f"{r.getMessage()} {r.args!r}" for r in caplog.records)
    # botocore's own DEBUG wire log prints the SigV4 Authorization header, whose credential
    # scope holds the access key *id* (an identifier, not a secret; the signature does not
    # reveal the key). Task logs run at INFO, so the id must not appear from INFO up.
    logged_info = "\n".join(f"{r.getMessage()} {r.args!r}" for r in caplog.records if r.levelno >= logging.INFO)
    log_dir = Path(os.environ["AIRFLOW_HOME"]) / "logs"
    log_files = "\n".join(p.read_text(errors="replace") for p in log_dir.rglob("*") if p.is_file()) \
        if log_dir.exists() else ""
    xcoms = "\n".join(_all_xcom_values())
    objects = _all_bucket_objects(emulated_aws["s3"], emulated_aws["bucket"])

    # what is grepped is not empty: the run's own traces are there
    assert "arn:aws:sagemaker" in xcoms
    assert any(key.endswith("report.html") for key in objects)
    assert any(key.endswith("ALERT.json") for key in objects)
    assert "quality gate: mse" in notifications
    assert out or err or logged

    for secret, records in ((FAKE_SECRET, logged), (FAKE_KEY_ID, logged_info)):
        for where, text in (("stdout", out), ("stderr", err), ("log records", records),
                            ("log files", log_files), ("xcom", xcoms), ("notifications", notifications)):
            assert secret not in text, f"{secret!r} leaked into {where}"
        for key, body in objects.items():
            assert secret.encode() not in body, f"{secret!r} leaked into s3://{emulated_aws['bucket']}/{key}"
