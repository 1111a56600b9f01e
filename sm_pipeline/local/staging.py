"""Stage a definition's code objects into the object root from local files (``run-local --code-dir``).

Definitions point their processing steps at code URIs (``.../code/<hash>/preprocess.py``); on a laptop
those objects usually do not exist yet. Each missing one is filled from a file of the same name in
one of the given directories.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sm_pipeline.errors import InvalidInput
from sm_pipeline.expressions import ExpressionContext, ExpressionError, resolve
from sm_pipeline.local.cache import is_code_input
from sm_pipeline.local.parameters import cast_parameters
from sm_pipeline.storage import ObjectStore
from sm_pipeline.validate import flatten_steps


def code_input_uris(definition: dict, parameters: Mapping[str, Any] | None = None) -> list[str]:
    """S3 URIs of the processing steps' code inputs that can be resolved from parameters alone."""
    ctx = ExpressionContext(parameters=cast_parameters(definition.get("Parameters") or [], parameters))
    uris: list[str] = []
    for entry in flatten_steps(definition):
        if entry.type != "Processing":
            continue
        for item in (entry.step.get("Arguments") or {}).get("ProcessingInputs") or []:
            if not is_code_input(item):
                continue
            try:
                uri = resolve((item.get("S3Input") or {}).get("S3Uri"), ctx)
            except ExpressionError:
                continue
            if isinstance(uri, str) and uri not in uris:
                uris.append(uri)
    return uris


def stage_code_objects(definition: dict, root: Path | str, code_dirs: list[Path],
                       parameters: Mapping[str, Any] | None = None) -> list[str]:
    """Put every missing code object in place from ``code_dirs``; returns the URIs staged."""
    store = ObjectStore(root)
    staged = []
    for uri in code_input_uris(definition, parameters):
        if store.path_for(uri).is_file():
            continue
        name = uri.rstrip("/").rsplit("/", 1)[-1]
        source = next((Path(d) / name for d in code_dirs if (Path(d) / name).is_file()), None)
        if source is None:
            if store.list(uri):
                continue
            raise InvalidInput(f"code object {uri} is missing and no {name!r} exists in {', '.join(map(str, code_dirs))}")
        store.put_file(uri, source)
        staged.append(uri)
    return staged
