"""SageMaker ARNs: how the local runner, the emulated service and the Airflow tasks name and read them.

One owner for the spelling of every ARN the project makes (pipelines, executions, jobs, model
packages) and for reading one back (the execution id of an execution ARN, the pipeline of it).
"""

from __future__ import annotations

import os
import re

# The account every local and emulated ARN carries (no AWS account is involved).
ACCOUNT_ID = "000000000000"
_EXECUTION_ARN_RE = re.compile(
    r"^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:pipeline/([^/]+)/execution/([^/]+)$")
# A pipeline ARN as DescribePipeline & co. take it in place of the name (the account may also read "aws").
_PIPELINE_ARN_RE = re.compile(r"^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:(?:[0-9]{12}|aws):pipeline/(.+)$")
_MODEL_PACKAGE_ARN_RE = re.compile(
    r"^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:model-package/([^/]+)/(\d+)$")


def default_region() -> str:
    """The region put into local ARNs: AWS_REGION, else AWS_DEFAULT_REGION, else us-east-1."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def sagemaker_arn(resource: str, region: str | None = None) -> str:
    """``arn:aws:sagemaker:<region>:000000000000:<resource>`` (``resource`` as ``processing-job/<name>``)."""
    return f"arn:aws:sagemaker:{region or default_region()}:{ACCOUNT_ID}:{resource}"


def pipeline_arn(pipeline_name: str, region: str | None = None) -> str:
    """``arn:aws:sagemaker:<region>:000000000000:pipeline/<name in lower case>``, as SageMaker spells it."""
    return sagemaker_arn(f"pipeline/{pipeline_name.lower()}", region)


def execution_arn(pipeline_name: str, execution_id: str, region: str | None = None) -> str:
    """The ARN of execution ``execution_id`` of ``pipeline_name``."""
    return f"{pipeline_arn(pipeline_name, region)}/execution/{execution_id}"


def model_package_group_arn(group: str, region: str | None = None) -> str:
    """``arn:aws:sagemaker:<region>:000000000000:model-package-group/<group>``."""
    return sagemaker_arn(f"model-package-group/{group}", region)


def model_package_arn(group: str, version: int, region: str | None = None) -> str:
    """``arn:aws:sagemaker:<region>:000000000000:model-package/<group in lower case>/<version>``."""
    return sagemaker_arn(f"model-package/{group.lower()}/{version}", region)


def pipeline_name_of(name_or_arn: str) -> str:
    """The pipeline name a pipeline ARN ends in (in lower case, as SageMaker spells it there), else the name given."""
    match = _PIPELINE_ARN_RE.match(name_or_arn)
    return match.group(1) if match else name_or_arn


def parse_model_package_arn(arn: str) -> tuple[str, int]:
    """``(group in lower case, version)`` of a model package ARN; ValueError naming it if it is not one."""
    match = _MODEL_PACKAGE_ARN_RE.match(arn or "") if isinstance(arn, str) else None
    if not match:
        raise ValueError(f"not a model package ARN: {arn!r}")
    return match.group(1), int(match.group(2))


def parse_execution_arn(arn: str) -> tuple[str, str]:
    """``(pipeline name in lower case, execution id)`` of an execution ARN; ValueError naming it if malformed."""
    match = _EXECUTION_ARN_RE.match(arn or "") if isinstance(arn, str) else None
    if not match:
        raise ValueError(f"'{arn}' is not a pipeline execution ARN.")
    return match.group(1), match.group(2)


def execution_id_of(arn: str) -> str:
    """The execution id an execution ARN ends in (``…/execution/<id>``); ValueError if it is not one."""
    return parse_execution_arn(arn)[1]

