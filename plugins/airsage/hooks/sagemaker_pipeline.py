"""SageMakerPipelineHook: the pipeline calls the amazon provider's SageMakerHook lacks.

Upsert with a definition hash, idempotent start (find-by-display-name plus a
ClientRequestToken), failure details that name the failing steps, and the outputs of one
step of one execution. Everything goes through ``self.conn`` (the provider's boto3 client),
so connection handling, endpoint URL and credentials stay the provider's business.
"""

from __future__ import annotations

import json
from typing import Any

from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook
from botocore.exceptions import ClientError

from airsage.execution_result import failed_steps
from airsage.pipeline_source import canonical_definition, definition_sha256

DEFINITION_HASH_TAG = "airsage:definition-sha256"


def is_absent_error(error: ClientError) -> bool:
    """True when a SageMaker error means "no such pipeline/execution".

    Real SageMaker answers ResourceNotFound; moto answers ValidationException "Could not
    find ...". A ValidationException about anything else is a real error, not absence.
    """
    err = error.response.get("Error", {})
    code, message = err.get("Code", ""), err.get("Message", "")
    if code in ("ResourceNotFound", "ResourceNotFoundException"):
        return True
    lowered = message.lower()
    return code == "ValidationException" and ("could not find" in lowered or "does not exist" in lowered)


def is_already_exists_error(error: ClientError) -> bool:
    """True when CreatePipeline lost a race to a concurrent create of the same name."""
    err = error.response.get("Error", {})
    message = err.get("Message", "").lower()
    return err.get("Code") in ("ResourceInUse", "ValidationException") and "already exists" in message


class SageMakerPipelineHook(SageMakerHook):
    """SageMaker Pipelines operations on top of the provider's SageMakerHook (AWS connections, ``aws_default``)."""

    hook_name = "Amazon SageMaker Pipelines (airsage)"

    def get_client_type(self, region_name=None, config=None, deferrable: bool = False):
        """The provider's boto3 client, whose permanent errors fail the task at once (``airsage.aws_errors``)."""
        client = super().get_client_type(region_name=region_name, config=config, deferrable=deferrable)
        if deferrable:  # an aiobotocore client (a trigger's): its failures reach the task as events
            return client
        from airsage.aws_errors import classify_errors

        return classify_errors(client, self.aws_conn_id)

    # -- pipelines -------------------------------------------------------------------------
    def describe_pipeline_or_none(self, pipeline_name: str) -> dict | None:
        """DescribePipeline, or None when the pipeline does not exist."""
        try:
            return self.conn.describe_pipeline(PipelineName=pipeline_name)
        except ClientError as err:
            if is_absent_error(err):
                return None
            raise

    def upsert_pipeline(
        self,
        pipeline_name: str,
        definition: str,
        role_arn: str,
        description: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Create the pipeline or update it; no write at all when the definition is unchanged.

        Returns ``{"pipeline_name", "pipeline_arn", "definition_sha256", "action"}`` where
        action is ``created``, ``updated`` or ``unchanged``.
        """
        canonical = canonical_definition(definition)
        digest = definition_sha256(canonical)
        result = {"pipeline_name": pipeline_name, "definition_sha256": digest}
        deployed = self.describe_pipeline_or_none(pipeline_name)
        if deployed is not None and definition_sha256(deployed["PipelineDefinition"]) == digest:
            self.log.info("Pipeline %s is up to date (definition sha256 %s)", pipeline_name, digest[:16])
            return {**result, "pipeline_arn": deployed["PipelineArn"], "action": "unchanged"}

        all_tags = {**(tags or {}), DEFINITION_HASH_TAG: digest}
        if deployed is None:
            try:
                arn = self.conn.create_pipeline(
                    PipelineName=pipeline_name,
                    PipelineDefinition=canonical,
                    PipelineDescription=description or pipeline_name,
                    RoleArn=role_arn,
                    Tags=[{"Key": k, "Value": v} for k, v in all_tags.items()],
                )["PipelineArn"]
                self.log.info("Created pipeline %s (definition sha256 %s)", pipeline_name, digest[:16])
                return {**result, "pipeline_arn": arn, "action": "created"}
            except ClientError as err:
                if not is_already_exists_error(err):
                    raise
                # another DAG run created it between our describe and create: update instead
                self.log.info("Pipeline %s was created concurrently; updating it instead", pipeline_name)

        arn = self.conn.update_pipeline(
            PipelineName=pipeline_name,
            PipelineDefinition=canonical,
            PipelineDescription=description or pipeline_name,
            RoleArn=role_arn,
        )["PipelineArn"]
        self._tag_definition_hash(arn, digest)
        self.log.info("Updated pipeline %s (definition sha256 %s)", pipeline_name, digest[:16])
        return {**result, "pipeline_arn": arn, "action": "updated"}

    def _tag_definition_hash(self, pipeline_arn: str, digest: str) -> None:
        # UpdatePipeline takes no tags; the hash tag is informational, so a tagging
        # permission gap must not fail a deployment that already happened.
        try:
            self.conn.add_tags(ResourceArn=pipeline_arn, Tags=[{"Key": DEFINITION_HASH_TAG, "Value": digest}])
        except ClientError as err:
            self.log.warning("Could not tag %s with its definition hash: %s", pipeline_arn, err)

    def deployed_definition(self, pipeline_name: str) -> dict:
        """The deployed definition (what a start runs); ValueError when the pipeline does not exist."""
        deployed = self.describe_pipeline_or_none(pipeline_name)
        if deployed is None:
            raise ValueError(f"pipeline {pipeline_name!r} does not exist: run upsert_pipeline first")
        return json.loads(deployed["PipelineDefinition"])

    def pipeline_parameters(self, pipeline_name: str) -> list[dict]:
        """The ``Parameters`` declared in the deployed definition (Name, Type, DefaultValue)."""
        return self.deployed_definition(pipeline_name).get("Parameters", [])

    # -- executions ------------------------------------------------------------------------
    def list_executions(self, pipeline_name: str, display_prefix: str = "") -> list[dict]:
        """Execution summaries of ``pipeline_name`` whose display name starts with ``display_prefix``, newest first."""
        found, token = [], None
        while True:
            kwargs: dict[str, Any] = {"PipelineName": pipeline_name, "SortBy": "CreationTime", "SortOrder": "Descending"}
            if token:
                kwargs["NextToken"] = token
            page = self.conn.list_pipeline_executions(**kwargs)
            found += [
                s for s in page.get("PipelineExecutionSummaries", [])
                if str(s.get("PipelineExecutionDisplayName") or "").startswith(display_prefix)
            ]
            token = page.get("NextToken")
            if not token:
                break
        return sorted(found, key=lambda s: s.get("StartTime") or 0, reverse=True)

    def find_executions(self, pipeline_name: str, display_name: str) -> list[dict]:
        """Execution summaries of ``pipeline_name`` with this display name, newest first."""
        return [s for s in self.list_executions(pipeline_name, display_name)
                if s.get("PipelineExecutionDisplayName") == display_name]

    def start_execution(
        self, pipeline_name: str, display_name: str, parameters: dict[str, str], client_request_token: str,
        description: str | None = None, pipeline_version_id: int | None = None, selective: dict | None = None,
    ) -> str:
        """StartPipelineExecution with an idempotency token (of a version, selective); returns the execution ARN."""
        extra: dict[str, Any] = {}
        if pipeline_version_id is not None:
            extra["PipelineVersionId"] = int(pipeline_version_id)
        if selective:
            extra["SelectiveExecutionConfig"] = selective
        response = self.conn.start_pipeline_execution(
            PipelineName=pipeline_name,
            PipelineExecutionDisplayName=display_name,
            PipelineExecutionDescription=description or f"started by Airflow ({display_name})",
            PipelineParameters=[{"Name": k, "Value": v} for k, v in parameters.items()],
            ClientRequestToken=client_request_token,
            **extra,
        )
        return response["PipelineExecutionArn"]

    def pipeline_version_ids(self, pipeline_name: str) -> list[int]:
        """Every PipelineVersionId of the pipeline (ListPipelineVersions), ascending."""
        pages = self.conn.get_paginator("list_pipeline_versions").paginate(PipelineName=pipeline_name)
        return sorted(int(v["PipelineVersionId"]) for page in pages for v in page.get("PipelineVersionSummaries", []))

    def version_definition(self, pipeline_name: str, pipeline_version_id: int) -> dict:
        """The definition of one version of the pipeline (DescribePipeline with PipelineVersionId)."""
        described = self.conn.describe_pipeline(PipelineName=pipeline_name, PipelineVersionId=int(pipeline_version_id))
        return json.loads(described["PipelineDefinition"])

    def stop_execution(self, execution_arn: str, reason: str, wait_seconds: float = 10.0) -> dict:
        """StopPipelineExecution (a no-op on one that is not Executing); waits up to ``wait_seconds`` for the end.

        Returns the last DescribePipelineExecution. ``reason`` is only logged: the API takes none.
        """
        import time

        status = self.stop_pipeline(execution_arn)
        self.log.warning("Asked SageMaker to stop execution %s (%s); it is %s", execution_arn, reason, status)
        deadline = time.monotonic() + wait_seconds
        describe = self.describe_pipeline_exec(execution_arn)
        while describe["PipelineExecutionStatus"] in ("Executing", "Stopping") and time.monotonic() < deadline:
            time.sleep(0.5)
            describe = self.describe_pipeline_exec(execution_arn)
        self.log.warning("Execution %s is %s: %s", execution_arn, describe["PipelineExecutionStatus"],
                         describe.get("FailureReason") or "no reason given")
        return describe

    def retry_execution(self, execution_arn: str, client_request_token: str) -> str:
        """RetryPipelineExecution: the same ARN runs again, reusing the steps that Succeeded."""
        return self.conn.retry_pipeline_execution(PipelineExecutionArn=execution_arn,
                                                  ClientRequestToken=client_request_token)["PipelineExecutionArn"]

    def execution_steps(self, execution_arn: str) -> list[dict] | None:
        """ListPipelineExecutionSteps (all pages), or None when the endpoint does not offer it.

        moto does not implement the call; callers fall back to what Describe gives.
        """
        steps, token = [], None
        try:
            while True:
                kwargs: dict[str, Any] = {"PipelineExecutionArn": execution_arn}
                if token:
                    kwargs["NextToken"] = token
                page = self.conn.list_pipeline_execution_steps(**kwargs)
                steps += page.get("PipelineExecutionSteps", [])
                token = page.get("NextToken")
                if not token:
                    return steps
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            # an emulator without the action: 501/NotImplemented, or moto's HTML 500 page whose
            # "code" is the bare status; real AWS 500s carry InternalFailure and are raised
            if code in ("NotImplemented", "InvalidAction", "UnknownOperationException", "500") or status == 501:
                self.log.warning("ListPipelineExecutionSteps is not available here: %s", code or status)
                return None
            raise

    def failure_details(self, execution_arn: str, describe: dict | None = None) -> dict[str, Any]:
        """Status, failure reason and failing steps of an execution, as precise as the API allows.

        The reason comes from DescribePipelineExecution, else the execution's list summary
        (where moto keeps it); failing steps come from ListPipelineExecutionSteps.
        """
        describe = describe or self.describe_pipeline_exec(execution_arn)
        status = describe.get("PipelineExecutionStatus", "")
        reason = (describe.get("FailureReason") or "").strip()
        if not reason:
            reason = self._reason_from_summary(execution_arn)
        steps = self.execution_steps(execution_arn)
        return {
            "status": status,
            "reason": reason or f"the execution ended {status} and SageMaker gave no reason",
            "failed_steps": failed_steps(steps),
            "steps_available": steps is not None,
            "steps": steps or [],
        }

    def _reason_from_summary(self, execution_arn: str) -> str:
        pipeline_name = execution_arn.split(":pipeline/", 1)[-1].split("/", 1)[0]
        try:
            page = self.conn.list_pipeline_executions(PipelineName=pipeline_name)
        except ClientError:
            return ""
        for summary in page.get("PipelineExecutionSummaries", []):
            if summary.get("PipelineExecutionArn") == execution_arn:
                reason = str(summary.get("PipelineExecutionFailureReason") or "")
                return "" if reason == "None" else reason  # moto renders a missing reason as "None"
        return ""

    def definition_for_execution(self, execution_arn: str) -> dict:
        """The definition an execution ran with (not the pipeline's current one)."""
        raw = self.conn.describe_pipeline_definition_for_execution(PipelineExecutionArn=execution_arn)
        return json.loads(raw["PipelineDefinition"])

    def execution_parameters(self, execution_arn: str) -> dict[str, str]:
        """The parameter values an execution was started with."""
        raw = self.conn.list_pipeline_parameters_for_execution(PipelineExecutionArn=execution_arn)
        return {p["Name"]: p["Value"] for p in raw.get("PipelineParameters", [])}

    def step_jobs(self, steps: list[dict] | None) -> dict[str, dict]:
        """``{step name: Describe*Job}`` of the job each billed step ran (``sm_pipeline.cost.step_jobs``)."""
        from sm_pipeline.cost import step_jobs

        return step_jobs(self.conn, steps)

    def processing_output_uri(self, steps: list[dict] | None, step_name: str, output_name: str) -> str | None:
        """The S3 URI of one output of a processing step, from the step's processing job.

        ``steps`` is what :meth:`execution_steps` returned. None when the steps could not be
        listed or the step ran no processing job, so the caller can fall back to resolving the
        execution's definition. A cached step's metadata names the source job, whose outputs
        are the ones the step's properties refer to.
        """
        for step in steps or []:
            if step.get("StepName") != step_name:
                continue
            job_arn = step.get("Metadata", {}).get("ProcessingJob", {}).get("Arn")
            if not job_arn:
                return None
            job = self.describe_processing_job(job_arn.rsplit("/", 1)[-1])
            for output in job.get("ProcessingOutputConfig", {}).get("Outputs", []):
                if output.get("OutputName") == output_name:
                    return output["S3Output"]["S3Uri"]
        return None
