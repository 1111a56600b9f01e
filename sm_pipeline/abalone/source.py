"""The abalone pipeline as a deployable PipelineSource: config, SDK v3 definition (cached by build key), code.

The DAG file names :func:`abalone_source` as its pipeline source (``"sm_pipeline.abalone.source:abalone_source"``);
``upsert_pipeline`` calls it in the task, never while the DAG file is parsed.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sm_pipeline.deployable import CodeObject, PipelineSource


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
    builder = {p.relative_to(package).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
               for p in sorted([*package.glob("*.py"), *package.glob("abalone/*.py"), *package.glob("abalone/*.yaml")])}
    sdk = sorted(f"{d.metadata['Name']}=={d.version}" for d in importlib.metadata.distributions()
                 if (d.metadata["Name"] or "").lower().startswith("sagemaker"))
    key = {"config": dataclasses.asdict(config), "code": [o.sha256 for o in objects], "builder": builder, "sdk": sdk}
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


def _definition(config: Any, objects: tuple[CodeObject, ...], cache_dir: str | None) -> str:
    """``definition_json(config)``, from ``cache_dir`` when an identical build is stored there.

    Building imports the SageMaker SDK (seconds, and as long again for the process to exit): it
    happens in a child process (:mod:`sm_pipeline.abalone.build_child`), never in the task's own.
    An unchanged config, script set, builder and SDK always give the same bytes, so a daily run
    need not pay for it again.
    """
    from pathlib import Path

    from sm_pipeline.abalone.build_child import build_in_child
    from sm_pipeline.storage_io import write_text_atomic

    if not cache_dir:
        return build_in_child(config)
    cached = Path(cache_dir) / f"{_build_key(config, objects)}.json"
    if cached.is_file():
        return cached.read_text(encoding="utf-8")
    definition = build_in_child(config)
    write_text_atomic(cached, definition)
    return definition


def abalone_source(overrides: dict[str, Any] | None = None, *, cache_dir: str | None = None) -> PipelineSource:
    """The abalone pipeline from ``sm_pipeline`` (config + SDK v3 definition + staged code).

    :param cache_dir: where built definitions are kept by build key (see :func:`_definition`).
    """
    from sm_pipeline.abalone.code_staging import code_objects
    from sm_pipeline.abalone.config import load_config
    from sm_pipeline.abalone.definition import pipeline_tags

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
