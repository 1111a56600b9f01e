"""Helpers of the stack tests: the REST API calls a user makes, and counting executions."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

from launchers import LauncherError
from launchers.airflow_api import quoted
from launchers.airflow_api import wait_until as wait_for  # a LauncherError naming what it waited for

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "build" / "test-artifacts" / "stack"
TERMINAL_RUN_STATES = {"success", "failed"}
PIPELINE = "airsage-abalone"
CI_VARIABLES = ("GITHUB_ACTIONS", "GITLAB_CI", "BUILDKITE", "JENKINS_URL", "TEAMCITY_VERSION", "TF_BUILD")


def on_ci() -> bool:
    """Whether this runs on a CI machine (``CI`` true/1/yes, or a known CI's own variable)."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes") or any(
        os.environ.get(name) for name in CI_VARIABLES)


def launcher_environment() -> dict[str, str]:
    """The caller's environment without the test session's Airflow/AWS settings (as a user's shell)."""
    return {key: value for key, value in os.environ.items()
            if not key.startswith(("AIRFLOW", "AWS_", "SAGEMAKER_", "MPLBACKEND"))
            and (not key.startswith("AIRSAGE_") or key.startswith("AIRSAGE_STACK_"))}


def unpause(api, dag_id: str) -> None:
    """Unpause ``dag_id`` (DAGs start paused, as in compose)."""
    api.patch(f"/dags/{dag_id}", {"is_paused": False})


def trigger(api, dag_id: str, day: str, conf: dict | None = None) -> str:
    """Trigger ``dag_id`` for logical date ``day`` (YYYY-MM-DD); its run id."""
    run = api.post(f"/dags/{dag_id}/dagRuns", {"logical_date": f"{day}T00:00:00Z", "conf": conf or {}})
    return run["dag_run_id"]


def wait_for_runs(api, dag_id: str, run_ids: Iterable[str], timeout: float, approve: bool = True) -> dict[str, str]:
    """Wait until every run is success or failed; ``{run_id: state}``. With ``approve``, every run of the DAG
    whose ``approve_model`` waits for input is approved through the REST API (as an approver would): also a
    scheduled run the test did not start, which would otherwise hold one of the DAG's max_active_runs."""
    run_ids = list(run_ids)
    states: dict[str, str] = {}

    def finished():
        if approve:
            approve_every_waiting(api, dag_id)
        for run_id in run_ids:
            if states.get(run_id) not in TERMINAL_RUN_STATES:
                states[run_id] = api.run_state(dag_id, run_id)
        return all(states[r] in TERMINAL_RUN_STATES for r in run_ids)

    try:
        wait_for(f"runs {run_ids} of {dag_id} to finish", finished, timeout)
    except LauncherError as err:  # the states at the timeout, not those when the wait began
        raise LauncherError(f"{err} (now {states})") from None
    return states


def wait_for_no_active_runs(api, dag_id: str, timeout: float) -> None:
    """Wait until no run of ``dag_id`` is queued or running, approving those that wait for approval."""
    def settled():
        approve_every_waiting(api, dag_id)
        return not api.active_runs(dag_id)

    wait_for(f"earlier runs of {dag_id} to finish", settled, timeout)


def approve_every_waiting(api, dag_id: str) -> None:
    """Approve every active run of ``dag_id`` whose ``approve_model`` waits for input."""
    for run_id in api.active_runs(dag_id):
        approve_waiting(api, dag_id, run_id)


def approve_waiting(api, dag_id: str, run_id: str) -> bool:
    """Approve the run's model version when its ``approve_model`` is awaiting input; True when it did."""
    waiting = [ti for ti in api.task_instances(dag_id, run_id)
               if ti["task_id"] == "approve_model" and ti["state"] == "awaiting_input"]
    if not waiting:
        return False
    # Airflow 3.3 loses an answer given within about a second of the task parking (the scheduler takes the
    # parking process's exit for a kill: up_for_retry, and the retry asks again); answer as a human would
    time.sleep(5)
    if not any(ti["task_id"] == "approve_model" and ti["state"] == "awaiting_input"
               for ti in api.task_instances(dag_id, run_id)):
        return False
    api.patch(f"/dags/{dag_id}/dagRuns/{quoted(run_id)}/taskInstances/approve_model/-1/hitlDetails",
              {"chosen_options": ["Approve"], "params_input": {}})
    return True


def tries(api, dag_id: str, run_id: str, task_id: str) -> list[dict]:
    """Every try of one task instance, oldest first (each with the hostname it ran on)."""
    answer = api.get(f"/dags/{dag_id}/dagRuns/{quoted(run_id)}/taskInstances/{quoted(task_id)}/tries")
    return sorted(answer["task_instances"], key=lambda t: t["try_number"])


#: the task whose XCom is a run's execution result (same shape on both backends)
EXECUTION_TASK = {"abalone_pipeline_local": "run_local", "abalone_pipeline": "wait_for_execution"}


def execution_of(api, dag_id: str, run_id: str) -> dict:
    """A finished run's execution result (``execution_arn``, ``display_name``, ``status`` ...), from its XCom."""
    task = EXECUTION_TASK[dag_id]
    entry = api.get(f"/dags/{dag_id}/dagRuns/{quoted(run_id)}/taskInstances/{task}/xcomEntries/return_value")
    return entry["value"]


def local_executions(root, display_name: str) -> list[dict]:
    """The local backend's executions with this display name, from the object root's records."""
    from sm_pipeline.local import LocalExecutionStore

    return LocalExecutionStore(root).find(PIPELINE, display_name=display_name)


def emulated_executions(endpoint: str, display_name: str | None = None) -> list[dict]:
    """The pipeline's executions on the emulated AWS (ListPipelineExecutions), or those with this display name."""
    import boto3

    client = boto3.client("sagemaker", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")  # noqa: S106
    found, token = [], None
    while True:
        try:
            page = client.list_pipeline_executions(PipelineName=PIPELINE, **({"NextToken": token} if token else {}))
        except client.exceptions.ResourceNotFound:  # no pipeline yet: no execution
            return []
        found += [e for e in page["PipelineExecutionSummaries"]
                  if display_name is None or e.get("PipelineExecutionDisplayName") == display_name]
        token = page.get("NextToken")
        if not token:
            return found


def one_execution_per_run(api, dag_id: str, run_ids, count) -> None:
    """Assert that each run's execution is the only one with its display name, and Succeeded.

    ``count(display_name)`` lists the executions with that name (local records or emulated AWS).
    """
    for run_id in run_ids:
        result = execution_of(api, dag_id, run_id)
        executions = count(result["display_name"])
        assert [e["PipelineExecutionArn"] for e in executions] == [result["execution_arn"]], (run_id, executions)
        assert executions[0]["PipelineExecutionStatus"] == "Succeeded", (run_id, executions)
