"""Prepare an object root for a run from local files (``run-local --code-dir``/``--stage-data``/``--sample``).

Definitions point their processing steps at code URIs (``.../code/<hash>/preprocess.py``) and their
data parameters at S3 URIs; on a laptop those objects usually do not exist yet.

- Code: each missing code object is filled from a file of the same name in one of the given
  directories.
- Data: a labelled abalone CSV (a header row with a ``rings`` column, like ``data/abalone.csv`` or
  ``make-data`` output) goes where the run's ``InputData`` parameter points, and the same rows
  without the label where ``BatchData`` points -- the same rule as the DAG's ``stage_input`` task
  (:mod:`sm_pipeline.abalone.input_data`).

Staging is planned first (every source found, every URI valid, the CSV read and checked) and only
then written, so a bad flag leaves the root untouched. Each object is written atomically.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sm_pipeline.abalone.input_data import batch_rows
from sm_pipeline.errors import InvalidInput
from sm_pipeline.expressions import ExpressionContext, ExpressionError, resolve
from sm_pipeline.local.cache import is_code_input
from sm_pipeline.parameters import cast_parameters
from sm_pipeline.step_graph import flatten_steps
from sm_pipeline.storage import ObjectStore

INPUT_PARAMETER = "InputData"
BATCH_PARAMETER = "BatchData"


@dataclass(frozen=True)
class Staging:
    """One object to put in place: from a local file or from bytes, with a note for the user."""

    uri: str
    source: Path | None = None
    data: bytes | None = None
    note: str = ""


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


def plan_code_objects(definition: dict, root: Path | str, code_dirs: Iterable[Path],
                      parameters: Mapping[str, Any] | None = None) -> list[Staging]:
    """The missing code objects and the files that fill them; InvalidInput if one has no source."""
    store = ObjectStore(root)
    code_dirs = [Path(d) for d in code_dirs]
    plan: list[Staging] = []
    for uri in code_input_uris(definition, parameters):
        if store.path_for(uri).is_file():
            continue
        name = uri.rstrip("/").rsplit("/", 1)[-1]
        source = next((d / name for d in code_dirs if (d / name).is_file()), None)
        if source is None:
            if store.list(uri):
                continue
            raise InvalidInput(f"code object {uri} is missing and no {name!r} exists in {', '.join(map(str, code_dirs))}")
        plan.append(Staging(uri, source=source, note=f"from {source}"))
    return plan


def _data_uri(values: Mapping[str, Any], name: str, file_name: str, store: ObjectStore) -> str:
    uri = values[name]
    if not isinstance(uri, str):
        raise InvalidInput(f"--stage-data: parameter {name} is {uri!r}, not an s3:// URI")
    if uri.endswith("/"):  # a prefix: the object goes inside it
        uri += file_name
    store.path_for(uri)  # StorageError (InvalidInput) naming the URI when it is not a valid object URI
    return uri


def plan_input_data(definition: dict, root: Path | str, csv_path: Path,
                    values: Mapping[str, Any]) -> list[Staging]:
    """``csv_path`` at the run's InputData and its rows without the label at BatchData (if declared).

    ``values`` are the run's parameter values (defaults and ``--param`` overrides, cast). Raises
    InvalidInput when the definition has no InputData parameter or the CSV is not a labelled
    abalone CSV with a header.
    """
    declared = {p.get("Name") for p in definition.get("Parameters") or [] if isinstance(p, dict)}
    if INPUT_PARAMETER not in declared:
        raise InvalidInput(f"--stage-data: the definition declares no {INPUT_PARAMETER} parameter to stage the data at")
    csv_path = Path(csv_path)
    try:
        data = csv_path.read_bytes()
    except FileNotFoundError:
        raise InvalidInput(f"--stage-data: {csv_path} does not exist") from None
    except IsADirectoryError:
        raise InvalidInput(f"--stage-data: {csv_path} is a directory, expected a CSV file") from None
    except OSError as exc:
        raise InvalidInput(f"--stage-data: cannot read {csv_path}: {exc.strerror or exc}") from None
    try:
        batch, rows = batch_rows(data, str(csv_path))
    except ValueError as exc:
        raise InvalidInput(f"--stage-data: {exc}") from None
    store = ObjectStore(root)
    plan = [Staging(_data_uri(values, INPUT_PARAMETER, csv_path.name, store), source=csv_path,
                    note=f"{rows} rows from {csv_path}")]
    if BATCH_PARAMETER in declared:
        plan.append(Staging(_data_uri(values, BATCH_PARAMETER, csv_path.name, store), data=batch,
                            note=f"{rows} rows from {csv_path} without the label"))
    return plan


def apply_staging(plan: Iterable[Staging], root: Path | str) -> list[Staging]:
    """Write every planned object (atomically); returns the plan entries written."""
    store = ObjectStore(root)
    done: list[Staging] = []
    for item in plan:
        try:
            if item.source is not None:
                store.put_file(item.uri, item.source)
            else:
                store.put_bytes(item.uri, item.data or b"")
        except OSError as exc:
            raise InvalidInput(f"cannot stage {item.uri} under {store.root}: {exc.strerror or exc}") from None
        done.append(item)
    return done


def stage_code_objects(definition: dict, root: Path | str, code_dirs: list[Path],
                       parameters: Mapping[str, Any] | None = None) -> list[str]:
    """Put every missing code object in place from ``code_dirs``; returns the URIs staged."""
    return [item.uri for item in apply_staging(plan_code_objects(definition, root, code_dirs, parameters), root)]
