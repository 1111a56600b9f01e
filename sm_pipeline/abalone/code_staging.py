"""Content-addressed staging of the container scripts.

The definition references each script at ``s3://{bucket}/{prefix}/code/{sha256[:16]}/{script}``,
so the SDK uploads nothing while building, an unchanged script keeps its URI (and the step
cache stays valid), and a changed one can never overwrite what a running execution uses.
Uploading the bytes to those keys is the caller's job (the Airflow upsert task or the local
runner); :func:`code_objects` says what to put where.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from sm_pipeline.abalone.config import PipelineConfig
from sm_pipeline.errors import ConfigError

# The scripts the definition runs, in a fixed order so the list is deterministic.
SCRIPTS = ("preprocess.py", "evaluate.py")


@dataclass(frozen=True)
class CodeObject:
    """One script: where it is on disk, its digest, and the S3 URI the definition points at."""

    script: str
    local_path: Path
    sha256: str
    s3_uri: str


def code_object(config: PipelineConfig, script: str) -> CodeObject:
    """Hash ``script`` from the config's code directory and derive its content-addressed S3 URI."""
    path = config.resolved_code_dir / script
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config field 'code_dir': container script {str(path)!r} not found") from None
    digest = hashlib.sha256(data).hexdigest()
    return CodeObject(
        script=script,
        local_path=path,
        sha256=digest,
        s3_uri=f"{config.s3_root}/code/{digest[:16]}/{script}",
    )


def code_objects(config: PipelineConfig) -> list[CodeObject]:
    """Every script the definition needs staged, in a fixed order.

    No source-dir tarball is needed: both processing steps take a single S3 script, the training
    step uses the built-in XGBoost algorithm, and the model steps carry no inference code.
    """
    return [code_object(config, script) for script in SCRIPTS]
