"""Claims: exclusive ownership of one execution display name in an object root.

Two tries of one DAG run's ``run_local`` (or two runs whose inputs are equal) that overlap must
make ONE execution. Whoever wants to start or adopt the execution of a display name first takes
its claim: the lock (:class:`sm_pipeline.locks.FileLock`, an exclusive ``flock``) on
``<root>/.airsage/claims/<pipeline>/<display name>.lock``. The kernel drops it when the owning process
exits for any reason (even SIGKILL), so a dead owner's claim is free again at once and nothing has to
guess whether a pid is still alive. A second process finds the claim held, waits for it, and then sees
the owner's finished execution in the records. Claim files are never deleted (see ``sm_pipeline.locks``).
"""

from __future__ import annotations

import re
from pathlib import Path

from sm_pipeline.errors import InvalidInput
from sm_pipeline.locks import FileLock
from sm_pipeline.storage import INTERNAL_DIR

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,255}$")


def claims_dir(root: Path | str) -> Path:
    """``<root>/.airsage/claims``."""
    return Path(root) / INTERNAL_DIR / "claims"


class ExecutionClaim(FileLock):
    """The claim on one display name's execution; use as a context manager.

    The file's content is a note: ``Owner`` (pid, host, process start, when; rewritten by each
    owner) and the fields an owner gives ``try_acquire``. It stays after release, so a later owner
    reads what earlier ones noted.
    """

    def __init__(self, root: Path | str, pipeline_name: str, display_name: str):
        for what, name in (("pipeline name", pipeline_name), ("display name", display_name)):
            if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
                raise InvalidInput(f"invalid {what} {name!r} for an execution claim "
                                   "(letters, digits, '.', '_' and '-'; no '..')")
        super().__init__(claims_dir(root) / pipeline_name / f"{display_name}.lock")
