"""DAG parse cost: importing dags/abalone_pipeline.py vs importing a one-task DAG file.

Each sample is a fresh interpreter that imports one DAG file the way the DAG processor does
(dags/ and plugins/ on sys.path) and reports the seconds the import took, Airflow's own
import included on both sides. Baseline and DAG samples alternate so machine load hits both
alike. ``parse_ratio`` = median(DAG) / median(baseline); goal <= 1.15.

    python bench/dag_parse.py [--runs 7] [--json]

With ``--json`` the last line is the result as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOAL = 1.15

ONE_TASK_DAG = '''
from datetime import datetime

from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator

with DAG(dag_id="one_task", schedule="@daily", start_date=datetime(2026, 1, 1), catchup=False, tags=["bench"]):
    EmptyOperator(task_id="only")
'''

PROBE = r"""
import importlib.util, sys, time
path, *extra = sys.argv[1:]
sys.path[:0] = extra
start = time.perf_counter()
spec = importlib.util.spec_from_file_location("bench_dag_module", path)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
elapsed = time.perf_counter() - start
dags = [v for v in vars(module).values() if type(v).__name__ == "DAG"]
print(f"{elapsed:.6f} {len(dags)}")
"""


def sample(dag_file: Path, env: dict[str, str]) -> tuple[float, int]:
    """Seconds to import ``dag_file`` in a fresh interpreter, and how many DAGs it defined."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(dag_file), str(REPO / "dags"), str(REPO / "plugins")],
        env=env, capture_output=True, text=True, check=True, cwd=tempfile.gettempdir(),
    )
    seconds, count = done.stdout.strip().splitlines()[-1].split()
    return float(seconds), int(count)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="samples per side (default 7)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON on the last line")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="airsage-bench-") as tmp:
        baseline_file = Path(tmp) / "one_task_dag.py"
        baseline_file.write_text(ONE_TASK_DAG)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_")}
        env.update({"AIRFLOW_HOME": str(Path(tmp) / "airflow"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{Path(tmp) / 'airflow.db'}"})
        dag_file = REPO / "dags" / "abalone_pipeline.py"
        sample(baseline_file, env)  # warm the OS file cache; not counted
        baseline, dag = [], []
        for i in range(args.runs):
            baseline.append(sample(baseline_file, env)[0])
            seconds, count = sample(dag_file, env)
            if count != 2:
                raise SystemExit(f"{dag_file} defined {count} DAGs, expected 2")
            dag.append(seconds)
            print(f"run {i + 1}/{args.runs}: one-task {baseline[-1]:.3f}s  abalone {dag[-1]:.3f}s", flush=True)

    result = {
        "parse_ratio": round(statistics.median(dag) / statistics.median(baseline), 4),
        "dag_file_seconds_median": round(statistics.median(dag), 4),
        "one_task_dag_seconds_median": round(statistics.median(baseline), 4),
        "runs": args.runs,
        "goal": GOAL,
        "meets_goal": statistics.median(dag) / statistics.median(baseline) <= GOAL,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"parse_ratio {result['parse_ratio']} (goal <= {GOAL}); medians: abalone "
              f"{result['dag_file_seconds_median']}s, one-task {result['one_task_dag_seconds_median']}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
