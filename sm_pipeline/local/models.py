"""Model steps (CreateModel) and the local model store that Transform steps look models up in."""

from __future__ import annotations

import json
from pathlib import Path

from sm_pipeline.local.jobs import JobContext, StepFailed, StepOutcome
from sm_pipeline.storage_io import write_text_atomic


def model_containers(request: dict) -> list[dict]:
    """The containers of a CreateModel request (PrimaryContainer or Containers)."""
    if request.get("PrimaryContainer"):
        return [request["PrimaryContainer"]]
    return list(request.get("Containers") or [])


def run_model(arguments: dict, ctx: JobContext) -> StepOutcome:
    """Record a model (as CreateModel does) so that later Transform steps can find it by name."""
    if not model_containers(arguments):
        raise StepFailed("a Model step needs a PrimaryContainer or Containers")
    name = ctx.job_name
    arn = ctx.made_arn()
    record = {**arguments, "ModelName": name, "ModelArn": arn, "CreationTime": ctx.execution.start_time}
    write_text_atomic(_models_dir(ctx.internal_root) / f"{name}.json", json.dumps(record, indent=2, default=str))
    return StepOutcome(record, ctx.step_metadata(Arn=arn))


def describe_model(internal_root: Path, name: str) -> dict:
    """The record a Model step wrote for ``name``; StepFailed if there is none."""
    path = _models_dir(internal_root) / f"{name}.json"
    if not path.is_file():
        raise StepFailed(f"model {name!r} does not exist locally (it must be created by a Model step)")
    return json.loads(path.read_text())


def _models_dir(internal_root: Path) -> Path:
    return internal_root / "models"
