"""Where a DAG gets the pipeline it deploys: definition JSON, code objects, name and role.

The operators take the dotted path of a builder (``"module:function"``) rather than a
definition, because building the abalone definition imports the SageMaker SDK (~5 s), which
must happen in the task, never while the DAG file is parsed. Tests point the path at a tiny
hand-written definition.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

DEFAULT_SOURCE = "airsage.pipeline_source:abalone_source"


@dataclass(frozen=True)
class CodeObject:
    """A file the pipeline's steps download: local file, its sha256 and its S3 URI."""

    path: str
    sha256: str
    s3_uri: str


@dataclass(frozen=True)
class PipelineSource:
    """Everything upsert needs to deploy one pipeline."""

    pipeline_name: str
    definition: str
    role_arn: str
    bucket: str
    prefix: str
    tags: dict[str, str] = field(default_factory=dict)
    code_objects: tuple[CodeObject, ...] = ()
    description: str = ""


def canonical_definition(definition: str | dict) -> str:
    """The definition JSON with sorted keys and no whitespace: what the hash is taken of."""
    obj = json.loads(definition) if isinstance(definition, str) else definition
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def definition_sha256(definition: str | dict) -> str:
    """sha256 of the canonical definition JSON."""
    return hashlib.sha256(canonical_definition(definition).encode("utf-8")).hexdigest()


def load_source(dotted: str | Callable[..., PipelineSource]) -> Callable[..., PipelineSource]:
    """Resolve ``"package.module:function"`` to the builder function."""
    if callable(dotted):
        return dotted
    module_name, _, attr = dotted.partition(":")
    if not module_name or not attr:
        raise ValueError(f"pipeline source must look like 'package.module:function', got {dotted!r}")
    return getattr(importlib.import_module(module_name), attr)


def _tags_dict(tags: Any) -> dict[str, str]:
    if isinstance(tags, dict):
        return {str(k): str(v) for k, v in tags.items()}
    return {str(t["Key"]): str(t["Value"]) for t in (tags or [])}


def abalone_source(overrides: dict[str, Any] | None = None) -> PipelineSource:
    """The abalone pipeline from ``sm_pipeline`` (config + SDK v3 definition + staged code)."""
    from sm_pipeline.code_staging import code_objects
    from sm_pipeline.config import load_config
    from sm_pipeline.definition import definition_json, pipeline_tags

    config = load_config(overrides={k: v for k, v in (overrides or {}).items() if v not in (None, "")})
    objects = tuple(
        CodeObject(
            path=str(getattr(o, "local_path", None) or o.path),
            sha256=o.sha256,
            s3_uri=o.s3_uri,
        )
        for o in code_objects(config)
    )
    return PipelineSource(
        pipeline_name=config.pipeline_name,
        definition=definition_json(config),
        role_arn=config.role_arn,
        bucket=config.bucket,
        prefix=config.prefix,
        tags=_tags_dict(pipeline_tags(config)),
        code_objects=objects,
        description="airsage abalone pipeline (deployed by Airflow)",
    )
