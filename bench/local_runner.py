"""Benchmark of the local runner, measured side by side in one run (issue 4, item 10).

    python bench/local_runner.py --json            # full: 1,000,000-row scale and parallel runs
    python bench/local_runner.py --rows 100000     # quicker check

Figures (the last stdout line is JSON with --json; progress goes to stderr):
- overhead_ratio: the abalone pipeline through the runner ÷ the same scripts and training run back
  to back without it (best of N each, alternating, on data/abalone.csv). Goal ≤ 1.25.
- cache_ratio: a fully cached re-run ÷ the cold run. Goal ≤ 0.15.
- scale_peak_rss_ratio: peak RSS of a run-local process tree on ``--rows`` synthetic rows ÷ the input
  CSV's size; the tree's RSS is summed across live processes and sampled every 50 ms.
  ``scale_peak_rss_max_process_ratio`` is the largest single process (getrusage ru_maxrss). Goal ≤ 2.5.
- parallel_speedup: the preprocessing step on ``--rows`` rows with InstanceCount 1 ÷ with 2. Goal ≥ 1.7.
"""

from __future__ import annotations

import argparse
import json
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

from sm_pipeline.config import load_config  # noqa: E402
from sm_pipeline.definition import definition_dict  # noqa: E402
from sm_pipeline.local import builtin_xgboost, run_pipeline  # noqa: E402
from sm_pipeline.local.staging import stage_code_objects  # noqa: E402
from sm_pipeline.storage import ObjectStore  # noqa: E402
from sm_pipeline.synthetic import write_abalone_like  # noqa: E402

CODE_DIR = REPO_ROOT / "processing_code"


def progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def step_of(definition: dict, step_type: str, name_start: str = "") -> dict:
    from sm_pipeline.validate import flatten_steps

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


def measure_overhead_and_cache(definition: dict, work: Path, repeats: int) -> dict:
    input_csv = REPO_ROOT / "data" / "abalone.csv"
    work.mkdir(parents=True, exist_ok=True)
    batch_csv = work / "batch.csv"
    write_batch(input_csv, batch_csv)
    root = work / "objects"
    stage_inputs(definition, root, input_csv, batch_csv)
    base_times, local_times = [], []
    for attempt in range(repeats):
        base_times.append(baseline(definition, input_csv, batch_csv, work / "baseline"))
        local_times.append(timed_run(definition, root, pipeline_name=f"bench-cold-{attempt}", use_cache=False)[0])
        progress(f"overhead round {attempt + 1}: baseline {base_times[-1]:.2f}s, runner {local_times[-1]:.2f}s")
    cold, _ = timed_run(definition, root, pipeline_name="bench-cache")
    warm, result = timed_run(definition, root, pipeline_name="bench-cache")
    hits = sum("CacheHitResult" in s for s in result.steps)
    progress(f"cache: cold {cold:.2f}s, cached re-run {warm:.3f}s ({hits} cache hits)")
    return {
        "overhead_ratio": round(min(local_times) / min(base_times), 3),
        "overhead_runner_seconds": round(min(local_times), 3),
        "overhead_baseline_seconds": round(min(base_times), 3),
        "cache_ratio": round(warm / cold, 4),
        "cache_cold_seconds": round(cold, 3),
        "cache_warm_seconds": round(warm, 3),
    }


def tree_rss(pid: int) -> tuple[int, str]:
    """Summed RSS of a process and its descendants, and the largest one's command."""
    import psutil

    try:
        parent = psutil.Process(pid)
        processes = [parent, *parent.children(recursive=True)]
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


def measure_scale(definition: dict, work: Path, rows: int) -> dict:
    input_csv = work / "scale.csv"
    progress(f"writing {rows:,} synthetic rows")
    write_abalone_like(rows, 11, input_csv, header=True)
    batch_csv = work / "scale-batch.csv"
    write_batch(input_csv, batch_csv)
    root = work / "scale-objects"
    stage_inputs(definition, root, input_csv, batch_csv)
    definition_file = work / "definition.json"
    definition_file.write_text(json.dumps(definition))
    started = time.perf_counter()
    # A fresh parent whose getrusage(RUSAGE_CHILDREN) sees only this run's processes.
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
            total, largest = tree_rss(process.pid)
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
    progress(f"scale: {rows:,} rows ({size / 1e6:.1f} MB) in {elapsed:.1f}s, tree peak {peak / 1e6:.1f} MB, "
             f"largest process {max_process / 1e6:.1f} MB")
    status = json.loads(out)["status"]
    return {
        "scale_rows": rows,
        "scale_input_bytes": size,
        "scale_seconds": round(elapsed, 2),
        "scale_status": status,
        "scale_peak_rss_ratio": round(peak / size, 3),
        "scale_peak_rss_max_process_ratio": round(max_process / size, 3),
        "scale_peak_rss_bytes": peak,
        "scale_peak_largest_process": peak_command,
        "_input_csv": str(input_csv), "_batch_csv": str(batch_csv),
    }


def measure_parallel(definition: dict, work: Path, input_csv: Path, batch_csv: Path) -> dict:
    only_preprocess = {**definition, "Steps": [step_of(definition, "Processing", "Preprocess")]}
    root = work / "parallel-objects"
    stage_inputs(only_preprocess, root, input_csv, batch_csv)
    times = {}
    for count in (1, 2):
        elapsed, _ = timed_run(only_preprocess, root, parameters={"ProcessingInstanceCount": count},
                               pipeline_name=f"bench-parallel-{count}", use_cache=False)
        times[count] = elapsed
        progress(f"preprocessing with InstanceCount {count}: {elapsed:.2f}s")
    return {"parallel_speedup": round(times[1] / times[2], 3), "parallel_seconds_1": round(times[1], 2),
            "parallel_seconds_2": round(times[2], 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the scale and parallel runs")
    parser.add_argument("--repeats", type=int, default=2, help="overhead rounds (best of)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON on the last line")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    definition = definition_dict(load_config())
    work = Path(tempfile.mkdtemp(prefix="airsage-bench-"))
    try:
        figures = measure_overhead_and_cache(definition, work / "small", args.repeats)
        scale = measure_scale(definition, work, args.rows)
        figures.update({k: v for k, v in scale.items() if not k.startswith("_")})
        figures.update(measure_parallel(definition, work, Path(scale["_input_csv"]), Path(scale["_batch_csv"])))
        figures["cpu_count"] = os.cpu_count()
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(figures))
    else:
        for key, value in figures.items():
            print(f"{key:36} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
