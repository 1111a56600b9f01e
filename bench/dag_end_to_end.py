"""What Airflow users wait on: the local DAG end to end through ``airflow dags test``, against Airflow's floor.

    python bench/dag_end_to_end.py --json            # 3 rounds
    python bench/dag_end_to_end.py --quick --json    # 1 round (a smoke run; the figures are not comparable)

Measured side by side in one run, each round in alternating order (so machine load hits all alike),
every ``dags test`` a fresh process with ``make demo``'s environment (launchers.airflow_env: SQLite,
the repository's plugins), on the repository's data/abalone.csv:

- ``floor``: ``airflow dags test`` of a DAG of the same shape -- the same task ids, dependencies and
  branch as abalone_pipeline_local, the same retries -- whose tasks do nothing, generated into a
  temporary DAG folder of its own (never into dags/). What any DAG of that shape costs in this Airflow.
- ``pipeline_alone``: ``python -m sm_pipeline run-local --sample`` of the very definition the DAG
  deployed (the file upsert_pipeline stored), on a fresh object root each round, so no step cache
  hits: the work itself, staging included, without Airflow.
- ``airsage_warm``: ``airflow dags test abalone_pipeline_local`` for a fresh date each round, definition
  unchanged: the definition build is cached under the object root (``.airsage/definition-builds``) and
  the code objects are in place, so no SDK import; a fresh date is a new input partition, so the run
  neither re-attaches nor hits the step cache. This is a user's daily run.
- ``airsage_definition_change``: the same for another fresh date with a new prefix (Variable
  ``airsage_prefix``), which changes the definition: the first run after a change pays the SageMaker
  SDK's import, the build and the code upload.

Ratios per round: ``warm_ratio`` = airsage_warm / (floor + pipeline_alone) (goal <= 1.15),
``definition_change_ratio`` = airsage_definition_change / (floor + pipeline_alone) (goal <= 1.5);
min / median / max over ``--rounds`` (default 3). ``task_seconds`` holds each task's median
duration as the metadata DB records it (floor / warm / definition change): where the time goes
inside the runs; the rest of a run (interpreter start, Airflow's import, DAG parsing, the
in-process execution API) is ``outside_tasks_seconds``. The load average is recorded at the start
and the end. With ``--json`` the last stdout line is the result as JSON; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from figures import progress, summarise  # noqa: E402 - bench/ is on sys.path when this runs as a script

from launchers.airflow_env import DAG_IDS, airflow, airflow_env, ensure_db  # noqa: E402
from launchers.demo import RunProgress, outcome  # noqa: E402

DAG_ID = DAG_IDS["local"]
FLOOR_DAG_ID = "abalone_shape_floor"
GOALS = {"warm_ratio": ("<=", 1.15), "definition_change_ratio": ("<=", 1.5)}
FIRST_DAY = date(2026, 11, 2)  # on or after the DAG's start_date; each run its own date
TASKS = ("stage_input", "upsert_pipeline", "run_local", "read_metrics", "gate", "publish_report", "alert_on_call",
         "approve_model")
# what a passing run's tasks end as under `dags test`: the branch skips the alert, and approve_model skips
# itself in an in-process test run (no one could answer there)
SKIPPED = ("alert_on_call", "approve_model")

FLOOR_DAG = f'''
"""Airflow's floor for abalone_pipeline_local: its task ids, dependencies, branch and retries; tasks do nothing."""
from datetime import datetime, timedelta

from airflow.sdk import DAG, BaseBranchOperator, BaseOperator, chain
from airflow.sdk.exceptions import AirflowSkipException


class Nothing(BaseOperator):
    def execute(self, context):
        return None


class SkipsItself(BaseOperator):
    def execute(self, context):
        raise AirflowSkipException("as approve_model does under dags test")


class TakeReport(BaseBranchOperator):
    def choose_branch(self, context):
        return "publish_report"


with DAG(dag_id="{FLOOR_DAG_ID}", schedule="@daily", start_date=datetime(2026, 11, 1), catchup=False,
         max_active_runs=3, default_args={{"retries": 2, "retry_delay": timedelta(minutes=1)}}) as dag:
    chain(Nothing(task_id="stage_input"), Nothing(task_id="upsert_pipeline"), Nothing(task_id="run_local"),
          Nothing(task_id="read_metrics"), TakeReport(task_id="gate"),
          [Nothing(task_id="publish_report"), Nothing(task_id="alert_on_call")])
    chain(dag.get_task("publish_report"), SkipsItself(task_id="approve_model"))
    # the edges the real DAG's XCom arguments add (tests/bench/test_dag_end_to_end_bench.py keeps them equal)
    task = dag.get_task
    task("stage_input") >> task("run_local")
    task("read_metrics") >> [task("publish_report"), task("alert_on_call"), task("approve_model")]
    task("run_local") >> [task("publish_report"), task("approve_model")]
'''


def dags_test(dag_id: str, ds: str, env: dict[str, str], home: Path, log: Path) -> tuple[float, dict[str, float]]:
    """Wall seconds of ``airflow dags test dag_id ds`` and each task's recorded seconds; SystemExit unless
    every task succeeded or was skipped by the branch."""
    db = home / "airflow.db"
    run = RunProgress(db, dag_id, ds, RunProgress.last_run_id(db))
    started = time.perf_counter()
    with log.open("w") as out:
        done = subprocess.run(airflow("dags", "test", dag_id, ds), env=env, stdout=out, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, check=False)
    seconds = time.perf_counter() - started
    ends = run.ended()
    states = {end.task_id: end.state for end in ends}
    expected = {task: "skipped" if task in SKIPPED else "success" for task in TASKS}
    if done.returncode != 0 or states != expected:
        raise SystemExit(f"{dag_id} for {ds} did not succeed (exit {done.returncode}, task states {states}); log: {log}")
    return seconds, {end.task_id: end.seconds for end in ends if end.seconds is not None}


def airsage_run(ds: str, env: dict[str, str], home: Path, root: Path, log: Path) -> tuple[float, dict[str, float]]:
    """:func:`dags_test` of the local DAG, which must have written this run's report."""
    seconds, tasks = dags_test(DAG_ID, ds, env, home, log)
    kind, report, _ = outcome(root, ds, env)
    if kind != "report" or report is None or not report.is_file():
        raise SystemExit(f"{DAG_ID} for {ds} wrote no report (outcome {kind}); log: {log}")
    return seconds, tasks


def pipeline_alone(definition: Path, root: Path, log: Path, env: dict[str, str]) -> float:
    """Wall seconds of ``python -m sm_pipeline run-local --sample`` of ``definition`` on a fresh ``root``."""
    started = time.perf_counter()
    with log.open("w") as out:
        done = subprocess.run([sys.executable, "-m", "sm_pipeline", "run-local", "--definition", str(definition),
                               "--root", str(root), "--sample"], env=env, cwd=REPO, stdout=out,
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"run-local of {definition} failed (exit {done.returncode}); log: {log}")
    return seconds


def deployed_definition(root: Path, env: dict[str, str]) -> Path:
    """The definition file upsert_pipeline stored under the object root (the newest, if several)."""
    bucket = env.get("AIRFLOW_VAR_AIRSAGE_BUCKET", "airsage-artifacts")
    prefix = env.get("AIRFLOW_VAR_AIRSAGE_PREFIX", "abalone")
    found = sorted((root / bucket / prefix / "pipelines").glob("*/definition-*.json"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise SystemExit(f"no deployed definition under {root / bucket / prefix / 'pipelines'}")
    return found[-1]


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every figure (median, min, max; default 3)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 round (figures not comparable)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON on the last line")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, object roots)")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds = 1
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    load_start = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="airsage-bench-e2e-"))
    logs = work / "logs"
    logs.mkdir()
    series: dict[str, list[float]] = {name: [] for name in (
        "floor_seconds", "pipeline_alone_seconds", "airsage_warm_seconds", "airsage_definition_change_seconds",
        "warm_ratio", "definition_change_ratio")}
    tasks: dict[str, dict[str, list[float]]] = {"floor": {}, "warm": {}, "definition_change": {}}
    outside: dict[str, list[float]] = {"floor": [], "warm": [], "definition_change": []}
    try:
        root = work / "objects"
        home, floor_home = work / "airflow", work / "airflow-floor"
        env = airflow_env(home, root)
        floor_folder = work / "floor-dags"
        floor_folder.mkdir()
        (floor_folder / "abalone_shape_floor.py").write_text(FLOOR_DAG)
        floor_env = {**airflow_env(floor_home, work / "floor-objects"), "AIRFLOW__CORE__DAGS_FOLDER": str(floor_folder)}
        for where, its_env in ((home, env), (floor_home, floor_env)):
            ensure_db(where, its_env)
        plain_env = {k: v for k, v in env.items() if not k.startswith("AIRFLOW")}
        day = iter(FIRST_DAY + timedelta(days=i) for i in range(60))
        progress("warm-up, not measured: one run of each (the definition is built and cached, OS caches fill)")
        airsage_run(next(day).isoformat(), env, home, root, logs / "warm-up-airsage.log")
        dags_test(FLOOR_DAG_ID, next(day).isoformat(), floor_env, floor_home, logs / "warm-up-floor.log")
        definition = deployed_definition(root, env)
        pipeline_alone(definition, work / "alone-warm-up", logs / "warm-up-alone.log", plain_env)
        for i in range(args.rounds):
            measured: dict[str, float] = {}

            def floor(i=i, measured=measured):
                seconds, per_task = dags_test(FLOOR_DAG_ID, next(day).isoformat(), floor_env, floor_home,
                                              logs / f"floor-{i}.log")
                measured["floor"] = seconds
                _record(tasks["floor"], outside["floor"], seconds, per_task)

            def alone(i=i, measured=measured):
                measured["alone"] = pipeline_alone(definition, work / f"alone-{i}", logs / f"alone-{i}.log", plain_env)

            def warm(i=i, measured=measured):
                seconds, per_task = airsage_run(next(day).isoformat(), env, home, root, logs / f"warm-{i}.log")
                measured["warm"] = seconds
                _record(tasks["warm"], outside["warm"], seconds, per_task)

            def changed(i=i, measured=measured):
                # a prefix no run used yet: a new definition (the SDK import and build), new objects
                changed_env = {**env, "AIRFLOW_VAR_AIRSAGE_PREFIX": f"bench-change-{i}-{os.getpid()}"}
                seconds, per_task = airsage_run(next(day).isoformat(), changed_env, home, root,
                                                logs / f"definition-change-{i}.log")
                measured["changed"] = seconds
                _record(tasks["definition_change"], outside["definition_change"], seconds, per_task)

            order = [floor, alone, warm, changed]
            for step in order if i % 2 == 0 else reversed(order):
                step()
            base = measured["floor"] + measured["alone"]
            series["floor_seconds"].append(measured["floor"])
            series["pipeline_alone_seconds"].append(measured["alone"])
            series["airsage_warm_seconds"].append(measured["warm"])
            series["airsage_definition_change_seconds"].append(measured["changed"])
            series["warm_ratio"].append(measured["warm"] / base)
            series["definition_change_ratio"].append(measured["changed"] / base)
            progress(f"round {i + 1}/{args.rounds}: floor {measured['floor']:.2f}s, pipeline alone "
                     f"{measured['alone']:.2f}s, airsage warm {measured['warm']:.2f}s "
                     f"(ratio {measured['warm'] / base:.3f}), after a definition change {measured['changed']:.2f}s "
                     f"(ratio {measured['changed'] / base:.3f})")
    finally:
        if args.keep:
            progress(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    result = {
        "bench": "dag_end_to_end", "rounds": args.rounds, "quick": args.quick,
        **summarise(series, GOALS),
        "task_seconds": {kind: {task: round(statistics.median(values), 3) for task, values in per_task.items()}
                         for kind, per_task in tasks.items()},
        "outside_tasks_seconds": {kind: round(statistics.median(values), 3) for kind, values in outside.items()},
        "cpu_count": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in load_start],
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(json.dumps(result, indent=2))
    return 0


def _record(per_task: dict[str, list[float]], outside: list[float], seconds: float, durations: dict[str, float]) -> None:
    """Keep one run's task durations, and the part of its wall time no task accounts for."""
    for task, value in durations.items():
        per_task.setdefault(task, []).append(value)
    outside.append(seconds - sum(durations.values()))


if __name__ == "__main__":
    sys.exit(main())
