"""The emulated SageMaker service (``python -m sm_pipeline serve``) as the launchers start and reach it.

``make demo BACKEND=sagemaker`` and ``bench/sagemaker_vs_local.py`` start one on a free loopback port
(:class:`EmulatedSageMaker`) and point Airflow's ``aws_default`` and every AWS client at it
(:func:`sagemaker_demo_env`); ``make stack`` starts the compose file's command and waits for
:func:`emulator_answers`.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from launchers import LOOPBACK, LauncherError
from launchers.supervisor import TERM_LEADER, Component, Supervisor, log_tail, since_last_start

# the emulated service's fake credentials (it checks none); only ever sent to 127.0.0.1
EMULATED_KEY_ID, EMULATED_SECRET = "AKIAAIRSAGEDEMOKEY00", "airsage-demo-emulated"  # noqa: S105
EMULATED_REGION = "us-east-1"
SERVICE_START_SECONDS = 120
#: a SIGTERMed service stops its running executions (they end Stopped) before it exits
SERVICE_STOP_SECONDS = 60
EMULATOR_HEALTH_PATH = "/_airsage/health"  # sm_pipeline.service.server.HEALTH_PATH, what compose checks


def service_root(root: Path) -> Path:
    """The emulated SageMaker service's root (objects and state) for the object root ``root``."""
    return root.with_name(f"{root.name}-sagemaker")


class EmulatedSageMaker:
    """A ``python -m sm_pipeline serve`` process on a free loopback port, run by a supervisor, and its URL."""

    NAME = "emulated-sagemaker"

    def __init__(self, supervisor: Supervisor, url: str, log: Path):
        self.supervisor, self.url, self.log = supervisor, url, log

    @classmethod
    def start(cls, root: Path, log: Path, env: Mapping[str, str], supervisor: Supervisor | None = None,
              timeout: float = SERVICE_START_SECONDS) -> EmulatedSageMaker:
        """Start it over ``root``; returns once it printed its URL (LauncherError with its log's tail if not)."""
        supervisor = supervisor or Supervisor()
        root.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "sm_pipeline", "serve", "--host", LOOPBACK, "--port", "0", "--root", str(root)]
        supervisor.start(Component(cls.NAME, argv, term=TERM_LEADER), env, log, die_with_parent=True)
        deadline = time.monotonic() + timeout
        while True:
            # its first line on stdout is its URL (port 0: the OS picked a free one, no race)
            url = next((line.strip() for line in since_last_start(log) if line.startswith(f"http://{LOOPBACK}:")), None)
            if url:
                return cls(supervisor, url, log)
            if not supervisor.leader_alive(cls.NAME) or time.monotonic() > deadline:
                supervisor.stop([cls.NAME], grace=0)
                raise LauncherError(f"the emulated SageMaker service did not start (log {log}):\n"
                                    + "\n".join(log_tail(log, 10)))
            time.sleep(0.1)

    def stop(self) -> int | None:
        """SIGTERM (running executions end Stopped), SIGKILL after a minute; its exit code."""
        self.supervisor.stop([self.NAME], grace=SERVICE_STOP_SECONDS)
        return self.supervisor.returncode(self.NAME)


def sagemaker_demo_env(env: Mapping[str, str], url: str) -> dict[str, str]:
    """``env`` with ``aws_default`` and every AWS client pointed at the emulated service at ``url``."""
    env = dict(env)
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                 "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        env.pop(name, None)
    env.update({
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps({
            "conn_type": "aws", "login": EMULATED_KEY_ID, "password": EMULATED_SECRET,
            "extra": {"endpoint_url": url, "region_name": EMULATED_REGION}}),
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": EMULATED_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": EMULATED_SECRET,
        "AWS_DEFAULT_REGION": EMULATED_REGION,
        "AWS_REGION": EMULATED_REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "SAGEMAKER_VALIDATE_ROLE": "false",
        # the service finishes an execution in seconds: do not wait a minute between polls
        "AIRSAGE_POLL_INTERVAL": env.get("AIRSAGE_POLL_INTERVAL", "1"),
    })
    return env


def emulator_answers(endpoint: str) -> bool:
    """Whether the emulated AWS at ``endpoint`` answers HTTP (its health path; any answer from another emulator)."""
    try:
        with urllib.request.urlopen(f"{endpoint}{EMULATOR_HEALTH_PATH}", timeout=2):  # noqa: S310 - our loopback URL
            return True
    except urllib.error.HTTPError:
        return True  # an emulator without that path (moto) answered all the same
    except (OSError, ValueError):
        return False
