"""A three-step chain (Prep -> Train -> Evaluate) whose steps log each run, for the selective-execution tests.

Each step writes ``<its name>.txt`` = the upstream step's text + its own name + the execution id, so a step's
output says which execution produced each link of the chain; each run appends a line to ``<log dir>/runs.log``.
"""

from __future__ import annotations

from pathlib import Path

from local_runner_builders import BUCKET, definition, processing_step, stage_script

from sm_pipeline.storage import ObjectStore

CHAIN_STEP = """
    import pathlib, sys
    name, log, execution = sys.argv[1], sys.argv[2], sys.argv[3]
    upstream = sorted(pathlib.Path("/opt/ml/processing/input/upstream").glob("*.txt"))
    before = upstream[0].read_text() if upstream else ""
    pathlib.Path(f"/opt/ml/processing/output/{name}.txt").write_text(before + f"{name}@{execution};")
    with open(log, "a") as fh:
        fh.write(f"{name} {execution}\\n")
"""

STEPS = ("Prep", "Train", "Evaluate")


def chain_definition(store: ObjectStore, log_dir: Path, bucket: str = BUCKET) -> dict:
    """Prep -> Train -> Evaluate, each reading the previous step's output (a ``Get`` of its S3Uri)."""
    code = stage_script(store, f"{bucket}/code/chain.py", CHAIN_STEP)
    steps = []
    for index, name in enumerate(STEPS):
        out = {"Std:Join": {"On": "/", "Values": [f"{bucket}/out", {"Get": "Execution.PipelineExecutionId"}, name]}}
        inputs = []
        if index:
            upstream = STEPS[index - 1]
            inputs = [("upstream", {"Get": f"Steps.{upstream}.ProcessingOutputConfig.Outputs['out'].S3Output.S3Uri"},
                       "/opt/ml/processing/input/upstream")]
        steps.append(processing_step(name, code, inputs=inputs, outputs=[("out", "/opt/ml/processing/output", out)],
                                     arguments=[name, str(log_dir / "runs.log"),
                                                {"Get": "Execution.PipelineExecutionId"}]))
    return definition(steps)


def runs(log_dir: Path) -> list[tuple[str, str]]:
    """``(step, execution id)`` of every step run so far."""
    path = log_dir / "runs.log"
    return [tuple(line.split()) for line in path.read_text().splitlines()] if path.exists() else []
