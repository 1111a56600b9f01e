"""Throughput of the distributed stack: N concurrent local-backend DAG runs, 1 vs 2 Celery workers, and standalone.

    python bench/stack.py --json                                    # 6 runs on 1M-row inputs, 3 repeats
    python bench/stack.py --rows 0 --json                           # the repository's 4,177-row data
    python bench/stack.py --runs 2 --repeats 1 --rows 20000 --json  # a smoke run

Measured side by side in one invocation (progress on stderr, JSON on the last stdout line):

- **stack**: one ``make stack`` stack (``launchers.stack.up``: CeleryExecutor, PostgreSQL, Redis)
  with 2 workers of ``--concurrency`` task slots each; per repeat, N runs of
  abalone_pipeline_local with both workers, and N with worker2 stopped (1 worker).
- **standalone**: ``airflow standalone`` (SQLite, LocalExecutor) with ``make ui``'s environment
  (``launchers.airflow_env.airflow_env``), its parallelism set to the 2-worker stack's slots. Standalone and
  not ``airflow dags test``: ``dags test`` runs one DAG run inside its own process, so N runs
  would run one after another; standalone is the one-machine deployment the stack replaces.

What one measurement is:

- The N runs are **one backfill** of N logical dates (2026-11-02 ...) with ``max_active_runs`` N,
  created through the REST API, so all N are active at once (triggered one by one they would
  be capped by the DAG's own ``max_active_runs=3``).
- Their input is ``--rows`` synthetic abalone rows (make-data's generator; default 1,000,000, a
  53 MB CSV, a daily batch worth distributing; ``0``: ``data/abalone.csv``), passed as the
  ``source`` param. On the repository's 4,177 rows every task takes well under a second and the
  figure measures Airflow's per-task overhead and scheduling latency more than the workers.
- Each measurement has its own ``prefix`` param, so it shares no object-root data with an
  earlier one (no step cache hit, no re-attach). A new prefix is a new pipeline definition,
  whose first build imports the SageMaker SDK (~6 s, once per configuration in production):
  one unmeasured run on a later date builds it before the measurement starts, then is deleted.
- The makespan: the earliest run's ``queued_at`` to the latest ``end_date`` (server
  timestamps). The runs are deleted afterwards; each measurement starts when neither system
  has an active run. After one unmeasured warm-up per system, the order of the three
  alternates between repeats.

Ratios per repeat, then min/median/max:

- ``one_worker_over_two_workers`` = t(1 worker) / t(2 workers): goal >= 1.5 on 2 cores with
  ``--concurrency 1`` (one task at a time per worker, so 2 workers = 2 slots).
- ``standalone_over_two_workers`` = t(standalone) / t(2 workers) (> 1: the stack is faster).

Needs PostgreSQL and Redis (as ``make stack``); exits 2 with one line when they are missing.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from figures import spread  # noqa: E402 - bench/ is on sys.path when this runs as a script

from launchers import LOOPBACK, LauncherError  # noqa: E402
from launchers import stack as stack_module  # noqa: E402
from launchers.airflow_api import AirflowApi, quoted, wait_until  # noqa: E402
from launchers.airflow_env import airflow_env  # noqa: E402
from launchers.supervisor import Component, Supervisor, free_port  # noqa: E402

DAG_ID = "abalone_pipeline_local"
FIRST_DAY = 2  # logical dates 2026-11-02 ... (after the DAG's start_date, before today)


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def quiet(api) -> bool:
    """No run of the DAG is queued or running (the catch-up run unpausing creates, an earlier measurement)."""
    return not api.active_runs(DAG_ID)


def prime(api, conf: dict, day: int, label: str, timeout: float) -> None:
    """One unmeasured run with ``conf`` on ``day``: the prefix's definition is built (then cached)."""
    run_id = api.post(f"/dags/{DAG_ID}/dagRuns", {"logical_date": f"2026-11-{day:02d}T00:00:00Z",
                                                  "conf": conf})["dag_run_id"]
    state = wait_until(f"the priming run of {label}",
                       lambda: (s := api.run_state(DAG_ID, run_id)) in ("success", "failed") and s, timeout)
    if state != "success":
        raise LauncherError(f"{label}: priming run {run_id} {state}; see the task logs")
    api.request("DELETE", f"/dags/{DAG_ID}/dagRuns/{quoted(run_id)}")


def backfill_done(api) -> bool:
    return all(b.get("completed_at") for b in api.get(f"/backfills?dag_id={DAG_ID}")["backfills"])


def measure(api, runs: int, label: str, timeout: float, source: str | None, idle=()) -> float:
    """Makespan (s) of ``runs`` concurrent runs of the local DAG (one backfill); the runs are deleted afterwards.

    Starts once no run is active here nor on the ``idle`` systems (so the other system's runs
    never share the machine with this measurement).
    """
    wait_until("earlier runs to finish", lambda: all(quiet(a) and backfill_done(a) for a in (api, *idle)), timeout)
    conf = {"prefix": f"bench-{label}-{secrets.token_hex(3)}", **({"source": source} if source else {})}
    prime(api, conf, FIRST_DAY + runs, label, timeout)
    backfill = {
        "dag_id": DAG_ID, "from_date": f"2026-11-{FIRST_DAY:02d}T00:00:00Z",
        "to_date": f"2026-11-{FIRST_DAY + runs - 1:02d}T00:00:00Z", "max_active_runs": runs,
        "run_backwards": False, "dag_run_conf": conf, "reprocess_behavior": "none",
    }
    for attempt in range(10):
        try:
            api.post("/backfills", backfill)
            break
        except LauncherError as err:
            # SQLite (standalone): "Database is locked. Backfill creation is not supported on SQLite
            # under concurrent access" while the scheduler writes; it passes on a later attempt
            if "HTTP 503" not in str(err) or attempt == 9:
                raise
            progress(f"{label}: backfill creation refused ({str(err)[-80:]}); trying again")
            time.sleep(2)

    def backfill_runs():
        found = [r["dag_run_id"] for r in api.get(f"/dags/{DAG_ID}/dagRuns?limit=100")["dag_runs"]
                 if r["run_type"] == "backfill"]
        return found if len(found) == runs else None

    run_ids = wait_until(f"the backfill's {runs} runs ({label})", backfill_runs, 120, interval=0.5)

    def finished():
        answers = [api.get(f"/dags/{DAG_ID}/dagRuns/{quoted(r)}") for r in run_ids]
        return answers if all(a["state"] in ("success", "failed") for a in answers) else None

    answers = wait_until(f"{runs} runs ({label})", finished, timeout, interval=3.0)
    failed = [a["dag_run_id"] for a in answers if a["state"] != "success"]
    if failed:
        raise LauncherError(f"{label}: run(s) {failed} failed; see the task logs")
    start = min(datetime.fromisoformat(a["queued_at"]) for a in answers)
    end = max(datetime.fromisoformat(a["end_date"]) for a in answers)
    wait_until(f"the backfill of {label} to complete", lambda: backfill_done(api), timeout, interval=1.0)
    for run_id in run_ids:
        api.request("DELETE", f"/dags/{DAG_ID}/dagRuns/{quoted(run_id)}")
    seconds = (end - start).total_seconds()
    progress(f"{label}: {runs} runs in {seconds:.1f} s")
    return seconds


class Standalone:
    """``airflow standalone`` with ``make ui``'s environment, on a free port, in a folder of its own."""

    def __init__(self, home: Path, slots: int):
        self.home = home
        self.port = free_port()
        self.id = "bench" + secrets.token_hex(4)
        env = airflow_env(home, home / "airsage-root")
        url = f"http://{LOOPBACK}:{self.port}"
        env.update({
            "AIRFLOW__API__HOST": LOOPBACK, "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": url + "/", "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": url + "/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            "AIRFLOW__CORE__PARALLELISM": str(slots),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "airflow:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
            # the log servers bind fixed ports; free ones keep this off a running `make ui`
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AWS_EC2_METADATA_DISABLED": "true",
        })
        self.env = env
        self.url = url
        # the marker finds the task processes' runner jobs, which start sessions of their own
        self.supervisor = Supervisor(marker=("AIRSAGE_BENCH_ID", self.id))
        self.component = Component("standalone", [sys.executable, "-m", "airflow", "standalone"])

    def start(self, timeout: float):
        """Start it; the REST client once the API answers and the DAG is parsed."""
        self.supervisor.start(self.component, self.env, self.home / "logs" / "standalone.log")

        def api():
            try:
                password = json.loads((self.home / "passwords.json").read_text())["airflow"]
                client = AirflowApi(self.url, "airflow", password)
                return client if any(d["dag_id"] == DAG_ID for d in client.get("/dags")["dags"]) else None
            except (OSError, ValueError, KeyError, LauncherError):
                return None

        return wait_until("airflow standalone", api, timeout, interval=3.0)

    def stop(self) -> None:
        self.supervisor.stop(grace=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=6, help="concurrent DAG runs per measurement (default 6)")
    parser.add_argument("--rows", type=int, default=1_000_000,
                        help="synthetic input rows per run (default 1,000,000; 0: the repository's data/abalone.csv)")
    parser.add_argument("--repeats", type=int, default=3, help="measurements of each setting (default 3)")
    parser.add_argument("--concurrency", type=int, default=1, help="task slots per Celery worker (default 1)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per measurement (default 1800)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON on the last line")
    args = parser.parse_args(argv)
    if not 1 <= args.runs <= 26 or args.repeats < 1 or args.concurrency < 1 or args.rows < 0:
        parser.error("--runs must be 1..26 (the backfill's dates and the priming run's date in the DAG's November, "
                     "before the catch-up run of the 29th), --repeats and --concurrency >= 1, --rows >= 0")
    load_start = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="airsage-bench-stack-", dir=REPO / "build" if (REPO / "build").is_dir() else None))
    stack = standalone = None
    seconds: dict[str, list[float]] = {"two_workers": [], "one_worker": [], "standalone": []}
    source = None
    try:
        if args.rows:
            from sm_pipeline.abalone.synthetic import write_abalone_like

            progress(f"writing {args.rows:,} synthetic rows (the runs' source)")
            source = str(write_abalone_like(args.rows, 7, work / "source.csv"))
        progress(f"starting the stack (2 workers x {args.concurrency} slots) in {work / 'stack'}")
        stack = stack_module.up(work / "stack", workers=2, concurrency=args.concurrency)
        stack_api = stack.api()
        progress(f"starting airflow standalone (parallelism {2 * args.concurrency}) in {work / 'standalone'}")
        standalone = Standalone(work / "standalone", slots=2 * args.concurrency)
        standalone_api = standalone.start(args.timeout)
        for api in (stack_api, standalone_api):
            api.patch(f"/dags/{DAG_ID}", {"is_paused": False})
        # warm-up, not measured: caches, the catch-up run unpausing creates, the first definition build
        measure(stack_api, args.runs, "warm-up-stack", args.timeout, source, idle=[standalone_api])
        measure(standalone_api, args.runs, "warm-up-standalone", args.timeout, source, idle=[stack_api])
        for repeat in range(args.repeats):
            order = ["two_workers", "one_worker", "standalone"]
            for label in order if repeat % 2 == 0 else reversed(order):
                if label == "standalone":
                    seconds[label].append(measure(standalone_api, args.runs, label, args.timeout, source, idle=[stack_api]))
                    continue
                if label == "one_worker":
                    stack.stop("worker2")
                seconds[label].append(measure(stack_api, args.runs, label, args.timeout, source, idle=[standalone_api]))
                if label == "one_worker":
                    stack.start("worker2")
                    node = stack.workers()["worker2"]["celery"]
                    wait_until("worker2 to rejoin", lambda node=node: node in stack.worker_queues(), args.timeout)
    except LauncherError as err:
        print(f"bench/stack.py: {err}", file=sys.stderr)
        return err.exit_code
    finally:
        if standalone is not None:
            standalone.stop()
        if stack is not None:
            stack_module.down(stack.dir, quiet=True)
        if source:
            Path(source).unlink(missing_ok=True)
    one_over_two = [a / b for a, b in zip(seconds["one_worker"], seconds["two_workers"], strict=True)]
    standalone_over_two = [a / b for a, b in zip(seconds["standalone"], seconds["two_workers"], strict=True)]
    result = {
        "bench": "stack",
        "runs": args.runs, "repeats": args.repeats, "concurrency_per_worker": args.concurrency,
        "rows": args.rows or "data/abalone.csv (4,177)", "runs_started_as": f"one backfill, max_active_runs {args.runs}",
        "slots": {"two_workers": 2 * args.concurrency, "one_worker": args.concurrency,
                  "standalone": 2 * args.concurrency},
        "seconds": {label: spread(values) for label, values in seconds.items()},
        "one_worker_over_two_workers": spread(one_over_two),
        "standalone_over_two_workers": spread(standalone_over_two),
        "goal": {"one_worker_over_two_workers": ">= 1.5 on 2 cores"},
        "cpus": os.cpu_count(), "load_average_at_start": [round(x, 2) for x in load_start],
    }
    print(json.dumps(result, indent=None if args.json else 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
