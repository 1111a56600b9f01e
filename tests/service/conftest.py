"""The emulated-service tests: the session's service and clients are airsage's pytest kit's.

``sagemaker_service`` (one ``python -m sm_pipeline serve --port 0`` for the session, shared with the DAG
and plugin tests), ``aws_endpoint`` (``AWS_ENDPOINT_URL`` set to the URL the service printed, fake
credentials), ``sagemaker_client`` / ``s3_client`` (made with no endpoint argument, as users make them).
Each test uses its own pipeline names and buckets; a test that needs a service of its own (restarts,
signals) starts one with ``service_support.serve``, its log in ``build/test-artifacts/service/``.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# This directory's helpers, the small definitions shared with the runner tests, the plugin test support.
for _path in (Path(__file__).parent, REPO / "tests" / "local", REPO / "tests" / "plugins"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))
