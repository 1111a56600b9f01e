"""Test-only speed-up shared by tests/plugins and tests/dags.

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
