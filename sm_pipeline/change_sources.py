"""Where ``diff`` and ``plan`` read definitions, executions and code from: files, local records, the SageMaker API.

The readers of :mod:`sm_pipeline.definition_diff` and :mod:`sm_pipeline.plan` (which are pure). The API side takes
a boto3 SageMaker client (the CLI's, or an Airflow hook's ``conn``), so both callers share one reading.
Every failure is :class:`~sm_pipeline.errors.InvalidInput` with one line naming what could not be read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sm_pipeline.errors import InvalidInput
from sm_pipeline.plan import Reference

PIPELINE_PREFIX = "pipeline:"
EXECUTION_PREFIX = "execution:"
SUCCEEDED = "Succeeded"


def _api_errors():
    from botocore.exceptions import BotoCoreError, ClientError

    return (ClientError, BotoCoreError)


# -- code objects -------------------------------------------------------------------------------------------
def object_root_reader(root: Path | str):
    """``read_code`` over a local object root: an object's bytes, or None when it is not there."""
    from sm_pipeline.storage import ObjectStore

    store = ObjectStore(root)

    def read(uri: str) -> bytes | None:
        try:
            return store.path_for(uri).read_bytes()
        except (OSError, InvalidInput):
            return None

    return read


def s3_reader(s3_client):
    """``read_code`` over S3 (the emulated service's, or AWS's): an object's bytes, or None when it cannot be read."""
    from sm_pipeline.storage import parse_s3_uri

    def read(uri: str) -> bytes | None:
        try:
            bucket, key = parse_s3_uri(uri)
            return s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except (InvalidInput, *_api_errors()):
            return None

    return read


# -- definitions --------------------------------------------------------------------------------------------
def deployed_definition(client, pipeline_name: str) -> dict:
    """The pipeline's current definition (DescribePipeline)."""
    try:
        described = client.describe_pipeline(PipelineName=pipeline_name)
    except _api_errors() as err:
        raise InvalidInput(f"pipeline {pipeline_name}: cannot read its definition: {_error(err)}") from None
    return _parsed(described.get("PipelineDefinition"), f"pipeline {pipeline_name}'s definition")


def execution_definition(client, arn: str) -> dict:
    """The definition an execution ran (DescribePipelineDefinitionForExecution)."""
    try:
        described = client.describe_pipeline_definition_for_execution(PipelineExecutionArn=arn)
    except _api_errors() as err:
        raise InvalidInput(f"execution {arn}: cannot read its definition: {_error(err)}") from None
    return _parsed(described.get("PipelineDefinition"), f"execution {arn}'s definition")


def _parsed(text: Any, what: str) -> dict:
    from sm_pipeline.step_graph import parse_definition

    if not isinstance(text, str):
        raise InvalidInput(f"{what}: the API returned no definition")
    return parse_definition(text, what)


def _error(err: Exception) -> str:
    response = getattr(err, "response", None)
    if isinstance(response, dict):
        info = response.get("Error") or {}
        return f"{info.get('Code', 'error')}: {info.get('Message', '')}".strip()
    return str(err)


# -- reference executions -----------------------------------------------------------------------------------
def last_succeeded_api(client, pipeline_name: str) -> str | None:
    """The ARN of the pipeline's newest Succeeded execution (ListPipelineExecutions), or None."""
    token = None
    try:
        while True:
            page = client.list_pipeline_executions(PipelineName=pipeline_name, SortBy="CreationTime",
                                                   SortOrder="Descending", **({"NextToken": token} if token else {}))
            for summary in page.get("PipelineExecutionSummaries") or []:
                if summary.get("PipelineExecutionStatus") == SUCCEEDED:
                    return summary["PipelineExecutionArn"]
            token = page.get("NextToken")
            if not token:
                return None
    except _api_errors() as err:
        raise InvalidInput(f"pipeline {pipeline_name}: cannot list its executions: {_error(err)}") from None


def reference_api(client, arn: str) -> Reference:
    """An execution as a plan's reference, from the SageMaker API."""
    try:
        describe = client.describe_pipeline_execution(PipelineExecutionArn=arn)
        steps, token = [], None
        while True:
            page = client.list_pipeline_execution_steps(PipelineExecutionArn=arn, **({"NextToken": token} if token else {}))
            steps += page.get("PipelineExecutionSteps") or []
            token = page.get("NextToken")
            if not token:
                break
        params = client.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn).get("PipelineParameters") or []
    except _api_errors() as err:
        raise InvalidInput(f"execution {arn}: cannot read it: {_error(err)}") from None
    return Reference(arn=arn, status=describe.get("PipelineExecutionStatus", ""),
                     definition=execution_definition(client, arn),
                     parameters={p["Name"]: p["Value"] for p in params}, steps=steps)


def last_succeeded_local(root: Path | str, pipeline_name: str) -> str | None:
    """The ARN of the pipeline's newest Succeeded execution in the local records under ``root``, or None."""
    from sm_pipeline.local.records import LocalExecutionStore

    for describe in LocalExecutionStore(root).find(pipeline_name):
        if describe.get("PipelineExecutionStatus") == SUCCEEDED:
            return describe["PipelineExecutionArn"]
    return None


def reference_local(root: Path | str, arn: str) -> Reference:
    """An execution as a plan's reference, from the local records under ``root``."""
    from sm_pipeline.arns import parse_execution_arn
    from sm_pipeline.local.records import ExecutionRecords, LocalExecutionStore

    try:
        _, execution_id = parse_execution_arn(arn)
    except ValueError as err:
        raise InvalidInput(f"execution {arn}: {err}") from None
    found = ExecutionRecords.with_execution_id(root, execution_id)
    if not found:
        raise InvalidInput(f"execution {arn}: no local records of it under {root}")
    store, pipeline = LocalExecutionStore(root), found[0].pipeline_name
    try:
        describe = store.describe(pipeline, execution_id)
        steps = store.steps(pipeline, execution_id)
        definition = json.loads(store.definition_text(pipeline, execution_id))
    except (OSError, ValueError, KeyError) as err:
        raise InvalidInput(f"execution {arn}: its local records under {root} cannot be read: {err}") from None
    return Reference(arn=describe.get("PipelineExecutionArn", arn), status=describe.get("PipelineExecutionStatus", ""),
                     definition=definition,
                     parameters={p["Name"]: p["Value"] for p in describe.get("PipelineParameters") or []}, steps=steps)
