"""What every local job needs: its context, its failure type, and moving data in and out of its sandbox.

Inputs are hard-linked from the object root into the sandbox (no bytes copied, no data loaded into the
runner). Outputs are published only after the job succeeded: each output directory is first moved next
to its destination under a temporary name, then renamed into place, so a failed or stopped job leaves
nothing under its output URIs.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sm_pipeline.arns import sagemaker_arn
from sm_pipeline.errors import one_line
from sm_pipeline.local.processes import JobProcesses, StopRequested
from sm_pipeline.step_kinds import StepKind
from sm_pipeline.storage import INTERNAL_DIR, ObjectStore, link_or_copy, temp_path_beside

if TYPE_CHECKING:
    from sm_pipeline.expressions import ExpressionContext

CONTAINER_PREFIX = "/opt/ml"
HOOK_DIR = Path(__file__).resolve().parent / "container_hook"
_PYTHON_RE = re.compile(r"^python(\d+(\.\d+)?)?$")
_SHELLS = {"bash", "sh"}
# What job_name() spells: pipelines-<execution id>-<step>-<random>.
_JOB_NAME_RE = re.compile(r"^pipelines-([a-z0-9]+)-")

__all__ = ["JobContext", "StepFailed", "StepOutcome", "StopRequested"]


class StepFailed(Exception):
    """A step failed; ``error_type`` decides whether a RetryPolicy applies (SageMaker's exception names)."""

    def __init__(self, reason: str, error_type: str = "ClientError", metadata: dict | None = None):
        super().__init__(reason)
        self.reason = reason
        self.error_type = error_type
        self.metadata = metadata or {}


@dataclass
class StepOutcome:
    """A finished step: its Describe-shaped properties (for ``Get Steps.X...``) and its list metadata."""

    properties: dict
    metadata: dict
    output_uris: list[str] = field(default_factory=list)


@dataclass
class ExecutionInfo:
    """Identity of the running execution."""

    pipeline_name: str
    execution_id: str
    execution_arn: str
    region: str
    start_time: str


@dataclass
class JobContext:
    """Everything a step implementation may use.

    ``kind`` is the step's row of :mod:`sm_pipeline.step_kinds`, ``step`` the step as the definition
    has it (unresolved), ``expressions`` what its expressions resolve against. ``name`` is the step's name,
    or for a ForEach body step its child's (``<body step>-<index>``). ``run_child(entry, iteration)`` runs and
    records one child of a ForEach step (``sm_pipeline.local.step_attempt.Iteration``).
    """

    name: str
    execution: ExecutionInfo
    store: ObjectStore
    work_dir: Path
    logs_dir: Path
    processes: JobProcesses
    job_name: str
    kind: StepKind
    step: dict = field(default_factory=dict)
    expressions: ExpressionContext | None = None
    lambdas: dict[str, Callable[[dict], dict]] = field(default_factory=dict)
    run_child: Callable[..., StepOutcome] | None = None
    # (sandbox path, what the user knows it as): a job's error line names s3:// objects and
    # /opt/ml paths, never a sandbox that is gone by the time anyone reads it.
    path_names: list[tuple[str, str]] = field(default_factory=list)

    def materialize(self, uri: str, local_dir: Path, container_root: Path | None = None, **options) -> list[Path]:
        """:func:`materialize` the objects under ``uri`` into ``local_dir``, remembering the names for errors."""
        placed = materialize(self.store, uri, local_dir, **options)
        base = uri.rstrip("/") if self.store.path_for(uri).is_dir() else uri.rsplit("/", 1)[0]
        self.path_names.append((str(local_dir), base))
        if container_root is not None:
            self.path_names.append(("/" + local_dir.relative_to(container_root).as_posix(), base))
        return placed

    def name_sandbox(self, container_root: Path) -> None:
        """Show paths inside ``container_root`` as the container paths they stand for (``/opt/ml/...``)."""
        self.path_names.append((str(container_root), ""))

    def made_arn(self) -> str:
        """The ARN of what this step makes (``<kind's arn resource>/<job name>``: a processing job, a model)."""
        return sagemaker_arn(f"{self.kind.arn_resource}/{self.job_name}", self.execution.region)

    def step_metadata(self, **fields) -> dict:
        """The step's ListPipelineExecutionSteps ``Metadata``: ``{<kind's metadata key>: fields}``."""
        return {self.kind.metadata: fields}

    def run_job(self, argv: list[str], *, cwd: Path, env: dict[str, str], what: str, log_name: str | None = None) -> None:
        """Run one job process with its output in ``logs/<log_name>[.stderr].log``; StepFailed if it exits non-zero."""
        log_name = log_name or self.name
        result = self.processes.run(argv, cwd=cwd, env=env, stdout_log=self.logs_dir / f"{log_name}.log",
                                    stderr_log=self.logs_dir / f"{log_name}.stderr.log")
        if result.returncode != 0:
            raise failure_from_exit(what, result.returncode, rename_paths(result.stderr_tail, self.path_names))

    @property
    def internal_root(self) -> Path:
        """``<root>/.airsage``: records, registry, cache and sandboxes."""
        return self.store.root / INTERNAL_DIR


def job_name(execution_id: str, step_name: str) -> str:
    """A SageMaker-style job name: ``pipelines-<execution>-<step>-<random>``, at most 63 characters."""
    step = re.sub(r"[^A-Za-z0-9-]", "-", step_name)[:30].strip("-") or "step"
    return f"pipelines-{execution_id}-{step}-{uuid.uuid4().hex[:10]}"[:63]


def execution_id_of_job(name: str) -> str | None:
    """The execution id a :func:`job_name` carries, or None for a name it did not make."""
    match = _JOB_NAME_RE.match(name)
    return match.group(1) if match else None


def container_path(container_root: Path, path: str) -> Path:
    """Where ``/opt/ml/...`` lives in a host's sandbox."""
    if not (path == CONTAINER_PREFIX or path.startswith(CONTAINER_PREFIX + "/")):
        raise StepFailed(f"container path {path!r} is outside {CONTAINER_PREFIX}; the local runner only maps {CONTAINER_PREFIX}")
    return container_root / path.lstrip("/")


def remap_argument(argument: Any, container_root: Path) -> str:
    """A container argument with any ``/opt/ml`` path (bare or ``--flag=/opt/ml/...``) made local."""
    text = str(argument)
    prefix, eq, value = text.partition("=")
    if eq and value.startswith(CONTAINER_PREFIX + "/"):
        return f"{prefix}={container_root}{value}"
    if text == CONTAINER_PREFIX or text.startswith(CONTAINER_PREFIX + "/"):
        return f"{container_root}{text}"
    return text


def entrypoint_argv(entrypoint: list, container_root: Path) -> list[str]:
    """The local command for a container entrypoint: python runs as this interpreter, shells as themselves."""
    program = os.path.basename(str(entrypoint[0]))
    rest = [remap_argument(arg, container_root) for arg in entrypoint[1:]]
    if _PYTHON_RE.match(program):
        return [sys.executable, *rest]
    if program in _SHELLS:
        return [shutil.which(program) or f"/bin/{program}", *rest]
    raise StepFailed(f"entrypoint {entrypoint[0]!r} has no local equivalent (python or a shell script)")


def is_runnable_entrypoint(entrypoint: Any) -> bool:
    """True if :func:`entrypoint_argv` can run it."""
    if not isinstance(entrypoint, list) or not entrypoint:
        return False
    program = os.path.basename(str(entrypoint[0]))
    return bool(_PYTHON_RE.match(program)) or program in _SHELLS


def job_environment(container_root: Path, extra: dict | None, shim_dir: Path, threads: int | None = None) -> dict[str, str]:
    """The environment of a job process: the path-remapping hook, python shims and the job's variables."""
    env = dict(os.environ)
    env.update({str(k): str(v) for k, v in (extra or {}).items()})
    env["AIRSAGE_CONTAINER_ROOT"] = str(container_root)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HOOK_DIR), os.environ.get("PYTHONPATH", "")) if p)
    env["PATH"] = os.pathsep.join([str(shim_dir), os.environ.get("PATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    # OpenMP threads spin while waiting; on a laptop shared with other jobs that turns a 0.2 s
    # xgboost fit into 15 s. SageMaker instances are dedicated, so its containers never see this.
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if threads:
        # N hosts on one machine: without this each host's BLAS/OpenMP pool would claim every core.
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setdefault(var, str(threads))
    write_python_shims(shim_dir)
    return env


def write_python_shims(shim_dir: Path) -> None:
    """``python``/``python3`` on PATH that exec this interpreter (a symlink would lose the venv)."""
    shim_dir.mkdir(parents=True, exist_ok=True)
    for name in ("python", "python3"):
        shim = shim_dir / name
        if not shim.exists():
            shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
            shim.chmod(0o755)


def materialize(store: ObjectStore, uri: str, local_dir: Path, *, data_type: str = "S3Prefix",
                shard: tuple[int, int] | None = None, what: str = "input") -> list[Path]:
    """Hard-link the objects under ``uri`` into ``local_dir`` as SageMaker downloads them.

    ``shard=(index, count)`` gives host ``index`` every ``count``-th object (ShardedByS3Key).
    """
    if data_type not in ("S3Prefix", None):
        raise StepFailed(f"{what}: S3DataType {data_type!r} is not supported locally (S3Prefix only)")
    local_dir.mkdir(parents=True, exist_ok=True)
    path = store.path_for(uri)
    objects = store.list_with_paths(uri)
    if not objects:
        raise StepFailed(f"{what}: no objects under {uri} (local object root {store.root})")
    if path.is_dir():
        base = uri.rstrip("/")
    else:
        base = uri.rsplit("/", 1)[0]
    if shard is not None:
        index, count = shard
        objects = objects[index::count]
    placed = []
    for object_uri, object_path in objects:
        relative = object_uri[len(base):].lstrip("/") or object_path.name
        target = local_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            target.unlink()
        link_or_copy(object_path, target)
        placed.append(target)
    return placed


def publish_outputs(store: ObjectStore, outputs: list[tuple[Path, str]]) -> list[str]:
    """Publish directories to URIs after success: stage beside each destination, then rename into place.

    A destination that already holds objects is merged into object by object (S3 overwrites same keys).
    """
    staged: list[tuple[Path, Path, str]] = []
    try:
        for local_dir, uri in outputs:
            target = store.path_for(uri)
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = temp_path_beside(target)
            if local_dir.is_dir():
                try:
                    os.rename(local_dir, tmp)
                except OSError:
                    shutil.copytree(local_dir, tmp)
            else:
                tmp.mkdir()
            staged.append((tmp, target, uri))
    except BaseException:
        for tmp, _, _ in staged:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    published = []
    for tmp, target, uri in staged:
        if target.is_file():
            target.unlink()  # an object where the prefix now goes: S3 would keep both, a filesystem cannot
        if not target.exists():
            os.rename(tmp, target)
        else:
            move_files_into(tmp, target)
            shutil.rmtree(tmp, ignore_errors=True)
        published.append(uri)
    return published


def move_files_into(source_dir: Path, target_dir: Path) -> None:
    """Move every file under ``source_dir`` to the same relative path under ``target_dir`` (same key: replaced)."""
    for dirpath, _, filenames in os.walk(source_dir):
        for filename in filenames:
            source = Path(dirpath) / filename
            destination = target_dir / source.relative_to(source_dir)
            destination.parent.mkdir(parents=True, exist_ok=True)
            if destination.is_dir():
                shutil.rmtree(destination)
            os.replace(source, destination)


def failure_from_exit(what: str, returncode: int, stderr_tail: str) -> StepFailed:
    """The StepFailed for a job process that exited non-zero; one line ending with the job's own last error line.

    Exit code 75 (EX_TEMPFAIL) and death by a signal count as SageMaker.JOB_INTERNAL_ERROR, which a
    RetryPolicy may retry; any other exit is an AlgorithmError, which SageMaker never retries. The
    whole stderr stays in the step's log (``logs/<step>.stderr.log``).
    """
    if returncode < 0:
        error_type, how = "SageMaker.JOB_INTERNAL_ERROR", f"was killed by signal {-returncode}"
    elif returncode == 75:
        error_type, how = "SageMaker.JOB_INTERNAL_ERROR", "exited with code 75 (temporary failure)"
    else:
        error_type, how = "AlgorithmError", f"exited with code {returncode}"
    lines = [line.strip() for line in stderr_tail.splitlines() if line.strip()]
    last = f": {lines[-1]}" if lines else " (no stderr)"
    return StepFailed(one_line(f"{error_type}: {what} {how}{last}"), error_type)


def rename_paths(text: str, names: list[tuple[str, str]]) -> str:
    """``text`` with every sandbox path in ``names`` replaced by its name (longest paths first)."""
    for path, name in sorted(names, key=lambda pair: len(pair[0]), reverse=True):
        if path and path in text:
            text = re.sub(re.escape(path) + r"(?![\w.-])", lambda _m, name=name: name, text)
    return text
