"""The emulated service's side of model approval: UpdateModelPackage records the decision, who made it
(LastModifiedBy, from the request's credentials) and the EventBridge state-change event; airsage's one
decision write (``airsage.model_approval.decide``) works on it through boto3."""

from __future__ import annotations

import uuid

import boto3

from airsage.model_approval import (
    APPROVED,
    PENDING,
    REJECTED,
    Decider,
    SageMakerRegistryClient,
    decide,
    decision_of,
    facts_of,
)
from airsage.testing import FAKE_ACCESS_KEY
from sm_pipeline.local.registry import STATE_CHANGE, LocalModelRegistry, read_events

EXECUTION = "arn:aws:sagemaker:us-east-1:000000000000:pipeline/airsage-abalone/execution/abc123"


def test_decisions_record_who_and_write_state_change_events(sagemaker_service, sagemaker_client):
    group = f"approval-{uuid.uuid4().hex[:8]}"
    arn = LocalModelRegistry(sagemaker_service.root).register({"ModelPackageGroupName": group})["ModelPackageArn"]
    registry = SageMakerRegistryClient(sagemaker_client)

    written = decide(registry, arn, APPROVED, Decider("alice", "abalone_pipeline", "manual__1", 0), when="t",
                     facts=facts_of(EXECUTION))
    assert written.outcome == "written"
    described = sagemaker_client.describe_model_package(ModelPackageName=arn)
    assert described["ModelApprovalStatus"] == APPROVED
    assert described["ApprovalDescription"].startswith("Approved by alice in Airflow (DAG abalone_pipeline, run manual__1)")
    assert described["LastModifiedBy"]["IamIdentity"]["SourceIdentity"] == FAKE_ACCESS_KEY  # the kit's credentials
    assert described["ModelPackageStatusDetails"] == {"ValidationStatuses": [], "ImageScanStatuses": []}
    assert described["CustomerMetadataProperties"] == {"airsage:execution": EXECUTION}

    # someone else, in the console or the CLI, with credentials of their own
    console = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="CONSOLEUSER",
                           aws_secret_access_key="x", aws_session_token="x")  # noqa: S106 - fake credentials
    console.update_model_package(ModelPackageArn=arn, ModelApprovalStatus=REJECTED,
                                 ApprovalDescription="rejected in the console: drift")
    decision = decision_of(console.describe_model_package(ModelPackageName=arn))
    assert (decision.status, decision.by, decision.where) == (
        REJECTED, "CONSOLEUSER", "outside Airflow (console, CLI or another tool)")

    events = [e for e in read_events(LocalModelRegistry(sagemaker_service.root).events_file)
              if e["resources"] == [arn]]
    assert [e["detail"]["ModelApprovalStatus"] for e in events] == [PENDING, APPROVED, REJECTED]
    assert all(e["detail-type"] == STATE_CHANGE and e["source"] == "aws.sagemaker" and e["account"] == "000000000000"
               and e["region"] == "us-east-1" and e["detail"]["ModelPackageArn"] == arn for e in events)
    assert events[-1]["detail"]["LastModifiedBy"]["IamIdentity"]["SourceIdentity"] == "CONSOLEUSER"
