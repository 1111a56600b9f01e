"""Test helpers shared by tests/plugins and tests/dags (and the processes they start).

Every Airflow AWS hook builds a fresh boto3 session, and every fresh botocore loader parses
the SageMaker service model (megabytes of JSON) again: about a second per operator call on
a busy 2-core machine. The parsed models are immutable data, so the tests share one copy.
"""

from __future__ import annotations

import functools


def share_botocore_models() -> None:
    """Cache parsed botocore service models across loader instances (idempotent)."""
    from botocore.loaders import Loader

    if getattr(Loader.load_service_model, "_airsage_shared", False):
        return
    original = Loader.load_service_model
    cache: dict = {}

    @functools.wraps(original)
    def load_service_model(self, service_name, type_name, api_version=None):
        key = (service_name, type_name, api_version)
        if key not in cache:
            cache[key] = original(self, service_name, type_name, api_version)
        return cache[key]

    load_service_model._airsage_shared = True
    Loader.load_service_model = load_service_model


def moto_execution(arn: str):
    """moto's in-process record of a pipeline execution (to set Failed/Stopped and reasons)."""
    from moto.backends import get_backend

    backend = get_backend("sagemaker")["123456789012"]["us-east-1"]
    pipeline = arn.split(":pipeline/", 1)[1].split("/", 1)[0]
    return backend.pipelines[pipeline].pipeline_executions[arn]


class FakeTI:
    """Just enough of a TaskInstance for operators run outside the task runner."""

    def __init__(self, task_id: str = "task", try_number: int = 1):
        self.task_id = task_id
        self.try_number = try_number
        self.xcoms: dict[str, object] = {}

    def get_first_reschedule_date(self, context):
        return None

    def xcom_push(self, key, value, **_):
        self.xcoms[key] = value

    def xcom_pull(self, task_ids=None, key="return_value", **_):
        return self.xcoms.get(key)
