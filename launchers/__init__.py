"""The launchers: ``make demo``, ``make ui`` / ``make airflow`` and ``make stack`` / ``make stack-down``.

They start and stop the project's processes (Airflow's components, the emulated SageMaker service,
``airflow dags test``) on this machine; every process they start goes through the one supervisor,
:mod:`launchers.supervisor`. Modules: ``airflow_env`` (the project-local Airflow's environment),
``airflow_api`` (Airflow's REST API and polling), ``emulated_aws`` (the emulated SageMaker service),
``demo``, ``ui`` and ``stack`` (one per make target family).

Launchers may import ``sm_pipeline`` and run Airflow's CLI; nothing imports a launcher (not the
DAGs, not ``plugins/``, not task processes), so this package is never mounted into containers.
Top-level imports are stdlib only: each launcher starts fast, and Airflow reads its settings
when it is imported, which must happen in the child processes that get the environment.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: every server a launcher starts listens here only
LOOPBACK = "127.0.0.1"
#: how long a write to make ui's SQLite database waits for another process's write lock before
#: "database is locked" (the driver's default is 5 s); an API request can take that long to answer
SQLITE_LOCK_WAIT_SECONDS = 30


class LauncherError(Exception):
    """A problem the user can act on; a launcher's ``main`` prints it as one line and exits ``exit_code``."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code
