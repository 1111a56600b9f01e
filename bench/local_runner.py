"""Benchmark of the local runner, measured side by side in one run (issue 4, item 10).

    python bench/local_runner.py --json            # full: 1,000,000-row scale and parallel runs
    python bench/local_runner.py --rows 100000     # quicker check

Figures (the last stdout line is JSON with --json; progress goes to stderr):
- overhead_ratio: the abalone pipeline through the runner ÷ the same scripts and training run back
  to back without it (best of N each, alternating, on data/abalone.csv). Goal ≤ 1.25.
- cache_ratio: a fully cached re-run ÷ the cold run. Goal ≤ 0.15.
- scale_peak_rss_ratio: peak RSS of a run-local run on ``--rows`` synthetic rows ÷ the input CSV's size,
  where the run's peak is the max over the runner process and its children (each process's
  ru_maxrss: getrusage(RUSAGE_CHILDREN) in a small wrapper process). Goal ≤ 2.5.
  ``scale_peak_rss_tree_ratio`` is the stricter sum over the live process tree (runner + running
  step, without the wrapper), sampled every 50 ms.
- parallel_speedup: the preprocessing step on ``--rows`` rows with InstanceCount 1 ÷ with 2. The step
  is the real definition's PreprocessAbalone with its InputData input switched to
  ``S3DataDistributionType: ShardedByS3Key`` over ``--parts`` objects under an input prefix and
  ``--input-distribution sharded`` appended to its arguments, so each host parses only its objects.
  Goal ≥ 1.7 on 2 cores.
"""

from __future__ import annotations

import argparse
import copy
import itertools
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
    progress(f"scale: {rows:,} rows ({size / 1e6:.1f} MB) in {elapsed:.1f}s, largest process {max_process / 1e6:.1f} MB, "
             f"tree peak {peak / 1e6:.1f} MB ({peak_command})")
    status = json.loads(out)["status"]
    return {
        "scale_rows": rows,
        "scale_input_bytes": size,
        "scale_seconds": round(elapsed, 2),
        "scale_status": status,
        "scale_peak_rss_ratio": round(max_process / size, 3),
        "scale_peak_rss_bytes": max_process,
        "scale_peak_rss_tree_ratio": round(peak / size, 3),
        "scale_peak_rss_tree_bytes": peak,
        "scale_peak_tree_largest_process": peak_command,
        "_input_csv": str(input_csv), "_batch_csv": str(batch_csv),
    }


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
                     repeats: int = 2) -> dict:
    root = work / "parallel-objects"
    defaults = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
    input_prefix = defaults["InputData"].rsplit("/", 1)[0] + "/parts/"
    sharded = sharded_preprocess_definition(definition, input_prefix)
    stage_inputs(sharded, root, input_csv, batch_csv)
    store = ObjectStore(root)
    for part in split_csv(input_csv, work / "parts", parts):
        store.put_file(input_prefix + part.name, part)
    times = {1: float("inf"), 2: float("inf")}
    # Best of alternating rounds: the 2 cores are shared, and a busy neighbour hurts the
    # 2-host run most.
    for _round in range(repeats):
        for count in (1, 2):
            elapsed, _ = timed_run(sharded, root, parameters={"ProcessingInstanceCount": count},
                                   pipeline_name=f"bench-parallel-{count}", use_cache=False)
            times[count] = min(times[count], elapsed)
            progress(f"preprocessing ({parts} objects, ShardedByS3Key) with InstanceCount {count}: {elapsed:.2f}s")
    return {"parallel_speedup": round(times[1] / times[2], 3), "parallel_seconds_1": round(times[1], 2),
            "parallel_seconds_2": round(times[2], 2), "parallel_input_objects": parts,
            "parallel_step": "PreprocessAbalone of the abalone definition, InputData ShardedByS3Key over "
                             f"{parts} objects, --input-distribution sharded"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the scale and parallel runs")
    parser.add_argument("--parts", type=int, default=8, help="objects the parallel run's input is split into")
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
        figures.update(measure_parallel(definition, work, Path(scale["_input_csv"]), Path(scale["_batch_csv"]),
                                        args.parts, args.repeats))
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
