"""UpsertPipelineOperator: deploy the pipeline definition (and its code) only when it changed."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from airsage.operators._aws import AWS_TEMPLATE_FIELDS, AwsPipelineMixin
from airsage.pipeline_source import DEFAULT_SOURCE


class UpsertPipelineOperator(AwsPipelineMixin, BaseOperator):
    """Stage the code objects, then create/update the pipeline; no write when nothing changed.

    ``sagemaker``: code goes to S3 (content-addressed keys, so an existing key is skipped)
    and the pipeline is upserted by definition hash (see SageMakerPipelineHook.upsert_pipeline).
    ``local``: code goes to the object root and the definition is stored there
    content-addressed at ``s3://{bucket}/{prefix}/pipelines/{name}/definition-{sha16}.json``,
    which is what ``run_local`` executes.

    :param source: ``"module:function"`` returning a PipelineSource for ``config_overrides``;
        with the local backend it is also given ``cache_dir=`` (a directory in the object root).
    :param config_overrides: sm_pipeline config fields (bucket, prefix, ...), templated.
    """

    template_fields: Sequence[str] = ("config_overrides", "backend", "local_root", "source", *AWS_TEMPLATE_FIELDS)
    template_fields_renderers = {"config_overrides": "json"}
    ui_color = "#fdf1e8"

    def __init__(self, *, backend: str, config_overrides: dict[str, Any] | None = None,
                 source: str = DEFAULT_SOURCE, aws_conn_id: str | None = "aws_default",
                 region_name: str | None = None, local_root: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.backend = backend
        self.config_overrides = config_overrides or {}
        self.source = source
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.local_root = local_root

    def execute(self, context) -> dict[str, Any]:
        from airsage.hooks.artifact_store import ArtifactStore
        from airsage.pipeline_source import definition_sha256, load_source
        from sm_pipeline.errors import InvalidInput

        overrides = dict(self.config_overrides)
        build = load_source(self.source)
        if self.backend == "sagemaker":
            if not overrides.get("region"):
                # image URIs in the definition are per region: build for the region we deploy to
                overrides["region"] = self.resolved_region
        else:
            from sm_pipeline.storage import INTERNAL_DIR

            # the object root outlives the task: an unchanged build is not paid for again
            build = functools.partial(build, cache_dir=str(Path(self.local_root) / INTERNAL_DIR / "definition-builds"))
        try:
            src = build(overrides)
        except InvalidInput as err:
            # a bad config does not get better on retry
            raise AirflowFailException(f"pipeline configuration: {err}") from None
        store = ArtifactStore(self.backend, self.aws_conn_id, self.local_root)
        uploaded = 0
        for obj in src.code_objects:
            if not store.exists(obj.s3_uri):
                store.put_bytes(obj.s3_uri, Path(obj.path).read_bytes(), "text/x-python")
                uploaded += 1
        self.log.info("Code objects: %d uploaded, %d already present", uploaded, len(src.code_objects) - uploaded)

        common = {"backend": self.backend, "bucket": src.bucket, "prefix": src.prefix, "code_uploaded": uploaded}
        if self.backend == "sagemaker":
            result = self.hook.upsert_pipeline(
                src.pipeline_name, src.definition, src.role_arn, src.description, src.tags
            )
            return {**result, **common, "definition_uri": None}

        digest = definition_sha256(src.definition)
        uri = f"s3://{src.bucket}/{src.prefix}/pipelines/{src.pipeline_name}/definition-{digest[:16]}.json"
        written = store.put_if_changed(uri, src.definition.encode("utf-8"), "application/json")
        self.log.info("Local pipeline %s definition %s: %s", src.pipeline_name, digest[:16],
                      "stored" if written else "unchanged")
        return {
            **common,
            "pipeline_name": src.pipeline_name,
            "pipeline_arn": None,
            "definition_sha256": digest,
            "definition_uri": uri,
            "action": "created" if written else "unchanged",
        }
