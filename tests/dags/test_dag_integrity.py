"""DagBag integrity (Astronomer-template style): imports cleanly, fast, light, and wired right.

The parse runs in a fresh interpreter so ``sys.modules`` shows exactly what parsing the DAG
folder imported, with no connections or Variables defined.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("sagemaker", "pandas", "sklearn", "xgboost", "matplotlib", "boto3", "sm_pipeline")

PARSE = r"""
import json, sys
from pathlib import Path
from airflow.dag_processing.dagbag import BundleDagBag
dags = Path(sys.argv[1])
bag = BundleDagBag(dag_folder=str(dags), bundle_path=dags)
out = {
    "import_errors": {str(k): v for k, v in bag.import_errors.items()},
    "files": sorted(Path(f).name for f in bag.file_last_changed),
    "heavy": sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[2].split(","))),
    "dags": {},
}
for dag_id, dag in bag.dags.items():
    out["dags"][dag_id] = {
        "tags": sorted(dag.tags),
        "schedule": str(getattr(dag.timetable, "_expression", dag.timetable)),
        "catchup": dag.catchup,
        "max_active_runs": dag.max_active_runs,
        "doc_md": bool(dag.doc_md),
        "params": {k: dag.params.get_param(k).resolve(suppress_exception=True) for k in dag.params},
        "tasks": {
            t.task_id: {"retries": t.retries, "backoff": t.retry_exponential_backoff, "doc_md": bool(t.doc_md),
                        "upstream": sorted(t.upstream_task_ids), "on_failure": bool(t.on_failure_callback)}
            for t in dag.tasks
        },
    }
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def parsed():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "plugins"), env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-c", PARSE, str(REPO / "dags"), ",".join(HEAVY)], env=env,
                          capture_output=True, text=True, timeout=300, cwd="/")
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_no_import_errors_and_both_dags(parsed):
    assert parsed["import_errors"] == {}
    assert set(parsed["dags"]) == {"abalone_pipeline", "abalone_pipeline_local"}
    # dags/ holds the DAG file and nothing else (the factory is airsage.dag_factory, the launchers launchers/)
    assert parsed["files"] == ["abalone_pipeline.py"]


def test_parsing_imports_nothing_heavy(parsed):
    assert parsed["heavy"] == []


@pytest.mark.parametrize("dag_id", ["abalone_pipeline", "abalone_pipeline_local"])
def test_schedule_tags_retries_docs(parsed, dag_id):
    dag = parsed["dags"][dag_id]
    assert {"airsage", "abalone"} <= set(dag["tags"])
    assert "0 0 * * *" in dag["schedule"]  # @daily
    assert dag["catchup"] is False and 1 <= dag["max_active_runs"] <= 3
    assert dag["doc_md"]
    # every param is valid at its default (the UI form submits with one click)
    assert dag["params"] == {"mse_threshold": 6.0, "source": None, "bucket": None, "prefix": None,
                             "pipeline_version": "latest", "rerun_steps": None, "rerun_reference": None,
                             "dry_run": False, "approve_backfills": False}
    for task_id, task in dag["tasks"].items():
        assert task["retries"] >= 2 and task["backoff"] > 1, task_id
        assert task["doc_md"] and task["on_failure"], task_id


def _order(tasks):
    """Tasks in dependency order (ties by name), checked against the intended chain."""
    done, order = set(), []
    while len(order) < len(tasks):
        ready = sorted(t for t, v in tasks.items() if t not in done and set(v["upstream"]) <= done)
        order.append(ready[0])
        done.add(ready[0])
    return order


def test_sagemaker_task_order(parsed):
    tasks = parsed["dags"]["abalone_pipeline"]["tasks"]
    assert _order(tasks)[:6] == ["stage_input", "upsert_pipeline", "start_execution", "wait_for_execution",
                                 "read_metrics", "gate"]
    assert "wait_for_execution" in tasks["read_metrics"]["upstream"]
    assert tasks["alert_on_call"]["upstream"] == ["gate", "read_metrics"]
    # the report also reads the execution's XCom (its steps and cost)
    assert tasks["publish_report"]["upstream"] == ["gate", "read_metrics", "wait_for_execution"]


def test_local_task_order_matches_with_run_local_for_start_and_wait(parsed):
    tasks = parsed["dags"]["abalone_pipeline_local"]["tasks"]
    assert _order(tasks)[:5] == ["stage_input", "upsert_pipeline", "run_local", "read_metrics", "gate"]
    assert set(tasks) == set(parsed["dags"]["abalone_pipeline"]["tasks"]) - {"start_execution",
                                                                           "wait_for_execution"} | {"run_local"}
