"""Helpers of the stack tests: the REST API calls a user makes, and counting executions."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from dags.stack import StackError, quoted
from dags.stack import wait_until as wait_for  # a StackError naming what it waited for

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


def wait_for_runs(api, dag_id: str, run_ids: Iterable[str], timeout: float) -> dict[str, str]:
    """Wait until every run is success or failed; ``{run_id: state}``."""
    run_ids = list(run_ids)
    states: dict[str, str] = {}

    def finished():
        for run_id in run_ids:
            if states.get(run_id) not in TERMINAL_RUN_STATES:
                states[run_id] = api.run_state(dag_id, run_id)
        return all(states[r] in TERMINAL_RUN_STATES for r in run_ids)

    try:
        wait_for(f"runs {run_ids} of {dag_id} to finish", finished, timeout)
    except StackError as err:  # the states at the timeout, not those when the wait began
        raise StackError(f"{err} (now {states})") from None
    return states


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
