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


def ran_the_same_definition(log, arn: str, status: str, ran: str | dict, wanted: str | dict) -> bool:
    """Whether execution ``arn`` ran ``wanted``; if not, the INFO line saying a new execution starts and why.

    The resume rule of both backends: a Failed/Stopped execution is resumed only with its own definition.
    """
    ran_sha, wanted_sha = definition_sha256(ran), definition_sha256(wanted)
    if ran_sha == wanted_sha:
        return True
    log.info("Starting a new execution: definition changed since %s (%s) (sha256 %s -> %s)", arn, status,
             ran_sha[:16], wanted_sha[:16])
    return False


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


def _build_key(config: Any, objects: tuple[CodeObject, ...]) -> str:
    """What the built definition depends on: config, scripts, the builder's own files, the SDK version."""
    import dataclasses
    import importlib.metadata
    from pathlib import Path

    import sm_pipeline

    package = Path(sm_pipeline.__file__).parent
    builder = {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
               for p in sorted([*package.glob("*.py"), *package.glob("*.yaml")])}
    sdk = sorted(f"{d.metadata['Name']}=={d.version}" for d in importlib.metadata.distributions()
                 if (d.metadata["Name"] or "").lower().startswith("sagemaker"))
    key = {"config": dataclasses.asdict(config), "code": [o.sha256 for o in objects], "builder": builder, "sdk": sdk}
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


def _definition(config: Any, objects: tuple[CodeObject, ...], cache_dir: str | None) -> str:
    """``definition_json(config)``, from ``cache_dir`` when an identical build is stored there.

    Building imports the SageMaker SDK (~10 s); an unchanged config, script set, builder and
    SDK always give the same bytes, so a daily run need not pay for it again.
    """
    from pathlib import Path

    from sm_pipeline.definition import definition_json
    from sm_pipeline.storage_io import write_text_atomic

    if not cache_dir:
        return definition_json(config)
    cached = Path(cache_dir) / f"{_build_key(config, objects)}.json"
    if cached.is_file():
        return cached.read_text(encoding="utf-8")
    definition = definition_json(config)
    write_text_atomic(cached, definition)
    return definition


def abalone_source(overrides: dict[str, Any] | None = None, *, cache_dir: str | None = None) -> PipelineSource:
    """The abalone pipeline from ``sm_pipeline`` (config + SDK v3 definition + staged code).

    :param cache_dir: where built definitions are kept by build key (see :func:`_definition`).
    """
    from sm_pipeline.code_staging import code_objects
    from sm_pipeline.config import load_config
    from sm_pipeline.definition import pipeline_tags

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
        definition=_definition(config, objects, cache_dir),
        role_arn=config.role_arn,
        bucket=config.bucket,
        prefix=config.prefix,
        tags=_tags_dict(pipeline_tags(config)),
        code_objects=objects,
        description="airsage abalone pipeline (deployed by Airflow)",
    )
