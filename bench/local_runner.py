"""Benchmark of the local runner, measured side by side in one run (issues 4 and 12).

    python bench/local_runner.py --json            # full: 3 rounds; 1M-row scale, 3M-row parallel, one 10M-row run
    python bench/local_runner.py --quick --json    # smoke: 20,000 rows, 1 round, no 10M run (shape only)

Every figure is a ratio measured side by side; each is taken in ``--rounds`` rounds (default 3) and
reported as the median, with min and max (``name: min / median / max``, stderr). The last stdout line
is JSON with ``--json``: ``{figure: median, figure_min, figure_max, ..., "goals": {figure: "<=x"},
"met": {figure: bool}}``.
- overhead_ratio: the abalone pipeline through the runner ÷ the same scripts and training run back
  to back without it (alternating, on data/abalone.csv). Goal ≤ 1.25.
- cache_ratio: a fully cached re-run ÷ its cold run (a fresh pipeline name each round). Goal ≤ 0.15.
- scale_peak_rss_ratio: the peak RSS of the largest process of a ``run-local`` run on ``--rows``
  synthetic rows (make-data's generator) ÷ the input CSV's bytes. The largest process's peak is
  getrusage(RUSAGE_CHILDREN).ru_maxrss in a small wrapper process (the max over the runner and every
  descendant). Goal ≤ 2.5 at 1M rows (the fixed cost of importing xgboost dominates there).
  ``scale_peak_rss_tree_ratio`` is the stricter sum over the live process tree, sampled every 50 ms.
- scale_10m_peak_rss_ratio: the same on ``--rows-10m`` rows (10,000,000: a ~530 MB CSV), measured in
  ``--rounds-10m`` rounds (default 1: a run takes minutes). Goal ≤ 1.5 — the runner and the scripts
  stream; no step loads a whole CSV into pandas.
- parallel_speedup: the preprocessing step on ``--parallel-rows`` rows (default 3,000,000, a
  158 MB CSV) with InstanceCount 1 ÷ with 2. The step is the real definition's PreprocessAbalone
  with its InputData input switched to ``S3DataDistributionType: ShardedByS3Key`` over ``--parts``
  objects under an input prefix and ``--input-distribution sharded`` appended to its arguments, so
  each host parses only its objects. Goal ≥ 1.8 on 2 cores. What does not split: each host's
  interpreter start and numpy import (~0.17 s, measured with ``python -X importtime``; SageMaker
  pays a container start per instance instead), and the runner's ~10 ms of staging and
  publishing. On 1M rows the job's own work is ~2.1 s, so that fixed start alone caps the
  speedup near 1.85 on ideal cores; ``parallel_speedup_at_scale_rows`` reports the same figure
  on the ``--rows`` data set for comparison (not a goal). ``parallel_ceiling`` (two identical
  CPU-bound processes at once vs one alone, measured in each round) is what the cores themselves
  give two processes, and ``parallel_efficiency`` = parallel_speedup ÷ parallel_ceiling.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from figures import progress, summarise  # noqa: E402 - bench/ is on sys.path when this runs as a script

from sm_pipeline.abalone.config import load_config  # noqa: E402
from sm_pipeline.abalone.definition import definition_dict  # noqa: E402
from sm_pipeline.abalone.synthetic import write_abalone_like  # noqa: E402
from sm_pipeline.local import builtin_xgboost, run_pipeline  # noqa: E402
from sm_pipeline.local.staging import stage_code_objects  # noqa: E402
from sm_pipeline.storage import ObjectStore  # noqa: E402

CODE_DIR = REPO_ROOT / "processing_code"


def step_of(definition: dict, step_type: str, name_start: str = "") -> dict:
    from sm_pipeline.step_graph import flatten_steps

    return next(e.step for e in flatten_steps(definition) if e.type == step_type and e.name.startswith(name_start))


def stage_inputs(definition: dict, root: Path, input_csv: Path, batch_csv: Path) -> None:
    store = ObjectStore(root)
    defaults = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
    store.put_file(defaults["InputData"], input_csv)
    store.put_file(defaults["BatchData"], batch_csv)
    stage_code_objects(definition, root, [CODE_DIR])


def write_batch(source_csv: Path, target: Path, rows: int = 1000) -> None:
    import pandas as pd

    frame = pd.read_csv(source_csv, nrows=rows, header=0)
    frame.drop(columns=[frame.columns[-1]]).to_csv(target, index=False)


def remapped(arguments: list, base: Path) -> list[str]:
    return [str(a).replace("/opt/ml/", f"{base}/opt/ml/") for a in arguments]


def run(argv: list[str], cwd: Path) -> None:
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})


def baseline(definition: dict, input_csv: Path, batch_csv: Path, work: Path) -> float:
    """The pipeline's scripts and training run back to back by hand, no runner."""
    shutil.rmtree(work, ignore_errors=True)
    base = work / "base"
    pre = step_of(definition, "Processing", "Preprocess")["Arguments"]["AppSpecification"]
    ev = step_of(definition, "Processing", "Evaluate")["Arguments"]["AppSpecification"]
    hyperparameters = step_of(definition, "Training")["Arguments"]["HyperParameters"]
    ml = base / "opt" / "ml" / "processing"
    for sub in ("input", "batch-input", "train", "validation", "test", "batch", "model", "evaluation"):
        (ml / sub).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(input_csv, ml / "input" / input_csv.name)
    shutil.copyfile(batch_csv, ml / "batch-input" / batch_csv.name)
    started = time.perf_counter()
    run([sys.executable, str(CODE_DIR / "preprocess.py"), *remapped(pre.get("ContainerArguments", []), base)], work)
    model_dir = work / "model"
    config = {"channels": {"train": str(ml / "train"), "validation": str(ml / "validation")},
              "hyperparameters": hyperparameters, "model_dir": str(model_dir), "metrics_file": str(work / "m.json"),
              "pickle_model": False}
    (work / "train.json").write_text(json.dumps(config))
    run([sys.executable, builtin_xgboost.__file__, "train", "--config", str(work / "train.json")], work)
    with tarfile.open(ml / "model" / "model.tar.gz", "w:gz") as tar:
        tar.add(model_dir / "xgboost-model", arcname="xgboost-model")
    run([sys.executable, str(CODE_DIR / "evaluate.py"), *remapped(ev.get("ContainerArguments", []), base)], work)
    items = [{"input": str(p), "output": str(work / "out" / f"{p.name}.out")} for p in sorted((ml / "batch").iterdir())]
    (work / "predict.json").write_text(json.dumps({"model_tar": str(ml / "model" / "model.tar.gz"), "items": items}))
    run([sys.executable, builtin_xgboost.__file__, "predict", "--config", str(work / "predict.json")], work)
    return time.perf_counter() - started


def timed_run(definition: dict, root: Path, **kwargs) -> tuple[float, object]:
    started = time.perf_counter()
    result = run_pipeline(definition, root=root, **kwargs)
    elapsed = time.perf_counter() - started
    if result.status != "Succeeded":
        raise SystemExit(f"benchmark run {result.status}: {result.failure_reason}")
    return elapsed, result


def measure_overhead_and_cache(definition: dict, work: Path, rounds: int) -> dict[str, list[float]]:
    """Per round: the runner ÷ the bare scripts (overhead), and a cached re-run ÷ its cold run (cache)."""
    input_csv = REPO_ROOT / "data" / "abalone.csv"
    work.mkdir(parents=True, exist_ok=True)
    batch_csv = work / "batch.csv"
    write_batch(input_csv, batch_csv)
    root = work / "objects"
    stage_inputs(definition, root, input_csv, batch_csv)
    figures: dict[str, list[float]] = {"overhead_ratio": [], "overhead_runner_seconds": [],
                                       "overhead_baseline_seconds": [], "cache_ratio": [],
                                       "cache_cold_seconds": [], "cache_warm_seconds": []}
    for attempt in range(rounds):
        base = baseline(definition, input_csv, batch_csv, work / "baseline")
        local = timed_run(definition, root, pipeline_name=f"bench-cold-{attempt}", use_cache=False)[0]
        cold, _ = timed_run(definition, root, pipeline_name=f"bench-cache-{attempt}")
        warm, result = timed_run(definition, root, pipeline_name=f"bench-cache-{attempt}")
        hits = sum("CacheHitResult" in s for s in result.steps)
        progress(f"round {attempt + 1}: baseline {base:.2f}s, runner {local:.2f}s; "
                 f"cache: cold {cold:.2f}s, cached re-run {warm:.3f}s ({hits} cache hits)")
        for key, value in (("overhead_ratio", local / base), ("overhead_runner_seconds", local),
                           ("overhead_baseline_seconds", base), ("cache_ratio", warm / cold),
                           ("cache_cold_seconds", cold), ("cache_warm_seconds", warm)):
            figures[key].append(value)
    return figures


def tree_rss(pid: int, include_root: bool = True) -> tuple[int, str]:
    """Summed RSS of a process (unless not ``include_root``) and its descendants, and the largest one's command."""
    import psutil

    try:
        parent = psutil.Process(pid)
        processes = [*([parent] if include_root else []), *parent.children(recursive=True)]
    except psutil.Error:
        return 0, ""
    total, largest, command = 0, 0, ""
    for process in processes:
        try:
            rss = process.memory_info().rss
            total += rss
            if rss > largest:
                largest, command = rss, " ".join(process.cmdline()[1:3])[-80:]
        except psutil.Error:
            pass
    return total, f"{command} ({largest / 1e6:.0f} MB)"


def scale_data(definition: dict, work: Path, rows: int, name: str) -> tuple[Path, Path, Path, Path]:
    """``rows`` synthetic rows (make-data's generator) staged on a root of their own: (csv, batch, root, definition file)."""
    input_csv = work / f"{name}.csv"
    progress(f"writing {rows:,} synthetic rows")
    write_abalone_like(rows, 11, input_csv, header=True)
    batch_csv = work / f"{name}-batch.csv"
    write_batch(input_csv, batch_csv)
    root = work / f"{name}-objects"
    stage_inputs(definition, root, input_csv, batch_csv)
    definition_file = work / f"{name}-definition.json"
    definition_file.write_text(json.dumps(definition))
    return input_csv, batch_csv, root, definition_file


def measure_scale(input_csv: Path, root: Path, definition_file: Path, label: str) -> dict:
    """One ``run-local`` run: the largest process's peak RSS and the live tree's summed peak."""
    started = time.perf_counter()
    # A fresh, small parent whose getrusage(RUSAGE_CHILDREN) ru_maxrss is the max over the runner and
    # every descendant it waited for. Not the runner itself: Linux carries the peak RSS of the
    # process that forked it across exec, and this one has the SDK loaded (~340 MB).
    wrapper = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
               "sys.stderr.write(r.stderr); sys.stdout.write(r.stdout); "
               "sys.stdout.write('\\nMAXRSS %d\\n' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r.returncode)")
    process = subprocess.Popen([sys.executable, "-c", wrapper, sys.executable, "-m", "sm_pipeline", "run-local",
                                "--definition", str(definition_file), "--root", str(root), "--no-cache",
                                "--pipeline-name", "bench-scale"],
                               cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak, peak_command = 0, ""
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak, peak_command
        while not stop.is_set():
            total, largest = tree_rss(process.pid, include_root=False)  # the runner's tree, not the wrapper
            if total > peak:
                peak, peak_command = total, largest
            stop.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = process.communicate()
    stop.set()
    sampler.join()
    elapsed = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"scale run failed ({process.returncode}): {err[-2000:]}")
    out, _, maxrss = out.rpartition("\nMAXRSS ")
    max_process = int(maxrss) * 1024  # KiB on Linux
    size = input_csv.stat().st_size
    progress(f"{label}: {size / 1e6:.1f} MB CSV in {elapsed:.1f}s, largest process {max_process / 1e6:.1f} MB "
             f"(ratio {max_process / size:.3f}), tree peak {peak / 1e6:.1f} MB ({peak_command})")
    if json.loads(out)["status"] != "Succeeded":
        raise SystemExit(f"scale run {json.loads(out)['status']}: {err[-2000:]}")
    return {"peak_rss_ratio": max_process / size, "peak_rss_bytes": max_process, "peak_rss_tree_ratio": peak / size,
            "seconds": elapsed, "largest_process": peak_command}


def sharded_preprocess_definition(definition: dict, input_prefix: str) -> dict:
    """The definition reduced to its PreprocessAbalone step, with InputData sharded by S3 key.

    Derived from the real step (same image, code, arguments and outputs): the input named
    ``input`` reads every object under ``input_prefix`` with ShardedByS3Key, and the script is
    told so with ``--input-distribution sharded``. BatchData stays FullyReplicated.
    """
    step = copy.deepcopy(step_of(definition, "Processing", "Preprocess"))
    arguments = step["Arguments"]
    for item in arguments["ProcessingInputs"]:
        if item["InputName"] == "input":
            item["S3Input"].update({"S3Uri": input_prefix, "S3DataType": "S3Prefix",
                                    "S3DataDistributionType": "ShardedByS3Key"})
    app = arguments["AppSpecification"]
    app["ContainerArguments"] = [*app.get("ContainerArguments", []), "--input-distribution", "sharded"]
    return {**definition, "Steps": [step]}


def split_csv(source: Path, target_dir: Path, parts: int) -> list[Path]:
    """``source`` split into ``parts`` headerless CSV files of about equal line counts."""
    target_dir.mkdir(parents=True, exist_ok=True)
    with open(source, "rb") as fh:
        rows = sum(1 for _ in fh) - 1  # minus the header
    per_part = -(-rows // parts)
    files = []
    with open(source, "rb") as fh:
        fh.readline()
        for index in range(parts):
            path = target_dir / f"part-{index:03d}.csv"
            with open(path, "wb") as out:
                out.writelines(itertools.islice(fh, per_part))
            files.append(path)
    return files


def measure_parallel(definition: dict, work: Path, input_csv: Path, batch_csv: Path, parts: int,
                     rounds: int, name: str = "parallel", ceiling: bool = True) -> dict[str, list[float]]:
    """Per round: InstanceCount 1 then 2 on the sharded preprocessing step; their ratio (figures ``<name>_...``)."""
    root = work / f"{name}-objects"
    defaults = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
    input_prefix = defaults["InputData"].rsplit("/", 1)[0] + "/parts/"
    sharded = sharded_preprocess_definition(definition, input_prefix)
    stage_inputs(sharded, root, input_csv, batch_csv)
    store = ObjectStore(root)
    for part in split_csv(input_csv, work / f"{name}-parts", parts):
        store.put_file(input_prefix + part.name, part)
    speedup = "parallel_speedup" if name == "parallel" else f"parallel_speedup_at_{name}"
    figures: dict[str, list[float]] = {speedup: [], f"{name}_seconds_1": [], f"{name}_seconds_2": []}
    for _round in range(rounds):
        times = {}
        for count in (1, 2):
            times[count], _ = timed_run(sharded, root, parameters={"ProcessingInstanceCount": count},
                                        pipeline_name=f"bench-{name}-{count}", use_cache=False)
            progress(f"{name}: preprocessing ({parts} objects, ShardedByS3Key) with InstanceCount {count}: "
                     f"{times[count]:.2f}s")
        figures[speedup].append(times[1] / times[2])
        figures[f"{name}_seconds_1"].append(times[1])
        figures[f"{name}_seconds_2"].append(times[2])
        if ceiling:
            machine = machine_parallel_ceiling()
            figures.setdefault("parallel_ceiling", []).append(machine)
            figures.setdefault("parallel_efficiency", []).append(figures[speedup][-1] / machine)
            progress(f"machine ceiling (two CPU-bound processes at once vs one alone): {machine:.2f}")
    shutil.rmtree(root, ignore_errors=True)
    return figures


# A fixed, pure-Python CPU-bound task (no I/O, no threads): what two cores give two independent processes.
_SPIN = "s = 0\nfor i in range(12_000_000):\n    s += i * i % 7\n"


def machine_parallel_ceiling() -> float:
    """2 x (one spin process alone) / (two spin processes at once): the best InstanceCount 2 can do here.

    On a quiet machine with two real cores this is ~2.0; on shared or virtual cores it is less, and
    ``parallel_efficiency`` = parallel_speedup / this ceiling says how much of it the runner gets.
    """
    argv = [sys.executable, "-c", _SPIN]
    started = time.perf_counter()
    subprocess.run(argv, check=True)  # noqa: S603 - our own interpreter and a constant program
    alone = time.perf_counter() - started
    started = time.perf_counter()
    both = [subprocess.Popen(argv) for _ in range(2)]  # noqa: S603
    for process in both:
        process.wait()
    together = time.perf_counter() - started
    return 2 * alone / together


GOALS = {"overhead_ratio": ("<=", 1.25), "cache_ratio": ("<=", 0.15), "scale_peak_rss_ratio": ("<=", 2.5),
         "scale_10m_peak_rss_ratio": ("<=", 1.5), "parallel_speedup": (">=", 1.8)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the scale and parallel runs")
    parser.add_argument("--rows-10m", type=int, default=10_000_000, help="rows of the large scale run (0: skip it)")
    parser.add_argument("--parallel-rows", type=int, default=3_000_000,
                        help="rows of the parallel_speedup run (default 3,000,000)")
    parser.add_argument("--parts", type=int, default=8, help="objects the parallel run's input is split into")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every figure (median, min, max)")
    parser.add_argument("--rounds-10m", type=int, default=1, help="rounds of the large scale run")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 20,000 rows, 1 round, no large scale run (figures not comparable)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON on the last line")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.rows_10m, args.rounds, args.rounds_10m, args.parts = 20_000, 0, 1, 1, 4
        args.parallel_rows = 40_000
    if min(args.rows, args.parallel_rows) < args.parts or args.rounds < 1 or args.rounds_10m < 1 or args.rows_10m < 0:
        parser.error("--rows and --parallel-rows must be at least --parts; --rounds and --rounds-10m at least 1; --rows-10m >= 0")
    definition = definition_dict(load_config())
    logging.getLogger("sm_pipeline.local").setLevel(logging.WARNING)  # the SDK's import turned INFO on
    work = Path(tempfile.mkdtemp(prefix="airsage-bench-"))
    series: dict[str, list[float]] = {}
    # The machine may be shared: the load average says how much of it the figures had.
    extra: dict = {"rounds": args.rounds, "scale_rows": args.rows, "quick": args.quick, "cpu_count": os.cpu_count(),
                   "load_average_at_start": round(os.getloadavg()[0], 2)}
    try:
        series.update(measure_overhead_and_cache(definition, work / "small", args.rounds))
        input_csv, batch_csv, root, definition_file = scale_data(definition, work, args.rows, "scale")
        extra["scale_input_bytes"] = input_csv.stat().st_size
        runs = [measure_scale(input_csv, root, definition_file, f"scale {args.rows:,} rows, round {i + 1}")
                for i in range(args.rounds)]
        series["scale_peak_rss_ratio"] = [r["peak_rss_ratio"] for r in runs]
        series["scale_peak_rss_tree_ratio"] = [r["peak_rss_tree_ratio"] for r in runs]
        series["scale_seconds"] = [r["seconds"] for r in runs]
        extra["scale_peak_tree_largest_process"] = runs[-1]["largest_process"]
        series.update(measure_parallel(definition, work, input_csv, batch_csv, args.parts, args.rounds,
                                       name="scale_rows", ceiling=False))
        shutil.rmtree(work / "scale-objects", ignore_errors=True)
        # only the files: measure_parallel stages them on its own root
        parallel_csv, parallel_batch = work / "parallel-data.csv", work / "parallel-data-batch.csv"
        progress(f"writing {args.parallel_rows:,} synthetic rows")
        write_abalone_like(args.parallel_rows, 11, parallel_csv, header=True)
        write_batch(parallel_csv, parallel_batch)
        extra["parallel_rows"] = args.parallel_rows
        extra["parallel_input_bytes"] = parallel_csv.stat().st_size
        series.update(measure_parallel(definition, work, parallel_csv, parallel_batch, args.parts, args.rounds))
        for path in (parallel_csv, parallel_batch):
            path.unlink(missing_ok=True)
        extra.update({"parallel_input_objects": args.parts,
                      "parallel_step": "PreprocessAbalone of the abalone definition, InputData ShardedByS3Key over "
                                       f"{args.parts} objects, --input-distribution sharded"})
        if args.rows_10m:
            shutil.rmtree(work / "scale-objects", ignore_errors=True)  # the disk holds one large data set at a time
            input_csv, _, root, definition_file = scale_data(definition, work, args.rows_10m, "scale-10m")
            extra.update({"scale_10m_rows": args.rows_10m, "scale_10m_input_bytes": input_csv.stat().st_size})
            runs = [measure_scale(input_csv, root, definition_file, f"scale {args.rows_10m:,} rows, round {i + 1}")
                    for i in range(args.rounds_10m)]
            series["scale_10m_peak_rss_ratio"] = [r["peak_rss_ratio"] for r in runs]
            series["scale_10m_peak_rss_tree_ratio"] = [r["peak_rss_tree_ratio"] for r in runs]
            series["scale_10m_seconds"] = [r["seconds"] for r in runs]
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    extra["load_average_at_end"] = round(os.getloadavg()[0], 2)
    figures = {**extra, **summarise(series, GOALS)}
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:36} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
