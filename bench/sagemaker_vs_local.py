"""The SageMaker DAG against the emulated service vs the local DAG: same data, same machine, side by side.

Each sample is one ``airflow dags test`` of a DAG for a fresh date in a fresh place (local: a new
object root; SageMaker: a new bucket and pipeline name on the one service), so neither side re-attaches
or hits a step cache, with the repository's data/abalone.csv on both. The emulated SageMaker service
(``python -m sm_pipeline serve``) is started once, before timing, as a SageMaker endpoint exists
before a DAG run; its executions run in its own process. Local and SageMaker samples alternate, so
machine load hits both alike. ``ratio`` = sagemaker / local wall time (min, median, max of the
per-round ratios); goal <= 1.3.

    python bench/sagemaker_vs_local.py [--runs 3] [--json]

With ``--json`` the last line is the result as JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from figures import spread  # noqa: E402 - bench/ is on sys.path when this runs as a script

from launchers.airflow_env import DAG_IDS, airflow, airflow_env, ensure_db  # noqa: E402
from launchers.demo import outcome  # noqa: E402
from launchers.emulated_aws import EmulatedSageMaker, sagemaker_demo_env  # noqa: E402

GOAL = 1.3
FIRST_DAY = date(2026, 11, 10)  # on or after the DAGs' start_date, or no task runs


def run_dag(dag_id: str, ds: str, env: dict[str, str], log: Path, objects: Path) -> float:
    """Wall seconds of ``airflow dags test dag_id ds``; SystemExit unless it succeeded and wrote its report.

    ``objects`` is where the run's objects are (the local root, or the service's root).
    """
    started = time.perf_counter()
    with log.open("w") as out:
        done = subprocess.run(airflow("dags", "test", dag_id, ds, "--conf", json.dumps({"mse_threshold": 50.0})),  # noqa: S603
                              env=env, stdout=out, stderr=subprocess.STDOUT, check=False)
    seconds = time.perf_counter() - started
    text = log.read_text(errors="replace")
    kind, report, _ = outcome(objects, ds, env)
    if done.returncode != 0 or "state=success" not in text or kind != "report" or not report.is_file():
        raise SystemExit(f"{dag_id} for {ds} did not succeed with a report (exit {done.returncode}, outcome "
                         f"{kind}); log: {log}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="samples per backend (default 3)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON on the last line")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error(f"--runs must be at least 1, got {args.runs}")

    logs = REPO / "build" / "bench" / "sagemaker_vs_local"
    logs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="airsage-bench-") as tmp:
        work = Path(tmp)
        home = work / "airflow"
        base = airflow_env(home, work / "local-0")
        ensure_db(home, base)
        service = EmulatedSageMaker.start(work / "service", logs / "service.log",
                                               sagemaker_demo_env(base, "http://127.0.0.1:9"))
        local, sagemaker = [], []
        try:
            for i in range(args.runs):
                ds = (FIRST_DAY + timedelta(days=i)).isoformat()
                local_env = airflow_env(home, work / f"local-{i}")
                local.append(run_dag(DAG_IDS["local"], ds, local_env, logs / f"local-{i}.log", work / f"local-{i}"))
                bucket = f"airsage-bench-{i}"
                (work / "service" / bucket).mkdir(parents=True, exist_ok=True)  # a directory of the root is a bucket
                sm_env = sagemaker_demo_env(base, service.url)
                sm_env.update({"AIRFLOW_VAR_AIRSAGE_BUCKET": bucket, "AIRSAGE_PIPELINE_NAME": f"airsage-bench-{i}",
                               "AIRSAGE_POLL_INTERVAL": "0.5"})
                sagemaker.append(run_dag(DAG_IDS["sagemaker"], ds, sm_env, logs / f"sagemaker-{i}.log",
                                         work / "service"))
                print(f"run {i + 1}/{args.runs}: local {local[-1]:.2f}s  sagemaker (emulated) {sagemaker[-1]:.2f}s",
                      flush=True)
        finally:
            service.stop()

    ratios = [sm / lo for sm, lo in zip(sagemaker, local, strict=True)]
    result = {
        "ratio": spread(ratios),
        "sagemaker_seconds": spread(sagemaker),
        "local_seconds": spread(local),
        "runs": args.runs,
        "goal": GOAL,
        "meets_goal": statistics.median(ratios) <= GOAL,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"sagemaker/local ratio median {result['ratio']['median']} (goal <= {GOAL}); "
              f"sagemaker {result['sagemaker_seconds']}, local {result['local_seconds']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
