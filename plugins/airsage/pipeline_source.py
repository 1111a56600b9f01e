"""Where a DAG gets the pipeline it deploys: definition JSON, code objects, name and role.

A DAG names its pipeline's *source* (``airsage.dag_factory.PipelineSpec.source``), resolved in the
``upsert_pipeline`` task, never while the DAG file is parsed (building imports the SageMaker SDK, ~5 s):

- a definition JSON file (a path ending in ``.json``): deployed as it is;
- ``"package.module:function"`` (or the function itself), called with the config overrides (bucket,
  prefix, role_arn, region) and returning an SDK v3 ``Pipeline`` (its ``definition()`` and ``name``), a
  definition (dict or JSON text), or a :class:`PipelineSource` (which also lists code objects to stage).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from typing import Any

# PipelineSource, CodeObject and the definition hash are sm_pipeline's (the abalone builder uses them too);
# they are airsage's public API for a team's builder, so they are importable from here.
from sm_pipeline.deployable import CodeObject, PipelineSource, canonical_definition, definition_sha256

__all__ = ["CodeObject", "PipelineSource", "SourceError", "build_source", "canonical_definition",
           "definition_sha256", "load_source", "ran_the_same_definition"]


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


class SourceError(ValueError):
    """A pipeline source cannot be resolved or built into a definition; the message names it."""


def load_source(dotted: str | Callable[..., Any]) -> Callable[..., Any]:
    """Resolve ``"package.module:function"`` to the builder function."""
    if callable(dotted):
        return dotted
    module_name, _, attr = str(dotted).partition(":")
    if not module_name or not attr:
        raise SourceError(f"pipeline source must be a definition .json file or 'package.module:function', "
                          f"got {dotted!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise SourceError(f"pipeline source {dotted!r}: cannot import {module_name!r}: {err}") from None
    builder = getattr(module, attr, None)
    if not callable(builder):
        raise SourceError(f"pipeline source {dotted!r}: {module_name} has no function {attr!r}")
    return builder


def build_source(source: str | Callable[..., Any], overrides: dict[str, Any], *, pipeline_name: str | None = None,
                 **builder_kwargs) -> PipelineSource:
    """The PipelineSource ``source`` gives for these config overrides (see the module doc).

    ``builder_kwargs`` (the local backend's ``cache_dir``) reach builders that accept them. SourceError names
    what is wrong: a missing or invalid file, a builder that cannot be imported or returns something else.
    """
    import inspect
    from pathlib import Path

    settings = {k: v for k, v in (overrides or {}).items() if v not in (None, "")}
    if isinstance(source, str | Path) and str(source).endswith(".json"):
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as err:
            raise SourceError(f"definition file {path}: {err.strerror or err}") from None
        return _from_definition(text, name=pipeline_name, settings=settings, where=f"definition file {path}")
    builder = load_source(source)
    accepted = inspect.signature(builder).parameters
    kwargs = {k: v for k, v in builder_kwargs.items()
              if k in accepted or any(p.kind is p.VAR_KEYWORD for p in accepted.values())}
    built = builder(dict(settings), **kwargs)
    if isinstance(built, PipelineSource):
        return built
    if callable(getattr(built, "definition", None)) and getattr(built, "name", None):
        # an SDK Pipeline: its definition() is the JSON SageMaker gets
        return _from_definition(built.definition(), name=pipeline_name or built.name, settings=settings,
                                where=f"pipeline source {source!r}")
    if isinstance(built, dict | str):
        return _from_definition(built, name=pipeline_name, settings=settings, where=f"pipeline source {source!r}")
    raise SourceError(f"pipeline source {source!r} returned a {type(built).__name__}; expected an SDK Pipeline, a "
                      "definition (dict or JSON text) or a PipelineSource")


def _from_definition(definition: str | dict, *, name: str | None, settings: dict[str, Any], where: str) -> PipelineSource:
    try:
        obj = json.loads(definition) if isinstance(definition, str) else definition
    except json.JSONDecodeError as err:
        raise SourceError(f"{where} is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("Steps"), list):
        raise SourceError(f"{where} is not a pipeline definition (no Steps list)")
    if not name:
        raise SourceError(f"{where}: no pipeline name (give the DAG's PipelineSpec a pipeline_name)")
    return PipelineSource(pipeline_name=name, definition=canonical_definition(obj),
                          role_arn=str(settings.get("role_arn") or ""), bucket=str(settings.get("bucket") or ""),
                          prefix=str(settings.get("prefix") or ""), description=f"{name} (deployed by Airflow)")
