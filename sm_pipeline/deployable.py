"""What a deploy needs, whoever built it: the definition, its canonical form and hash, the code objects.

A pipeline builder (the abalone one in :mod:`sm_pipeline.abalone.source`, or a team's own, see
``airsage.pipeline_source``) returns a :class:`PipelineSource`; the Airflow tasks and the diff and plan
commands hash definitions with :func:`definition_sha256`, so "the same definition" means one thing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field


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
