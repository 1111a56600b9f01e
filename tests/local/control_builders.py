"""Small definitions for controlling runs: a step that waits for a gate file, a step that needs an object.

Shared by the runner-control tests (tests/local) and the emulated-service tests (tests/service).
"""

from __future__ import annotations

from local_runner_builders import definition, processing_step

# Waits until the file named by $GATE exists (the test opens the gate); one line per run (with its
# pid, so a test can end a job a killed runner left behind) in $RUNS.
GATE_SCRIPT = """
    import os, pathlib, sys, time
    with open(os.environ["RUNS"], "a") as fh:
        fh.write(f"run {os.getpid()}\\n")
    gate = pathlib.Path(os.environ["GATE"])
    deadline = time.monotonic() + 300
    while not gate.exists():
        if time.monotonic() > deadline:
            sys.exit("the test never opened the gate " + str(gate))
        time.sleep(0.05)
    os.makedirs("/opt/ml/processing/output", exist_ok=True)
    open("/opt/ml/processing/output/first.txt", "w").write("first step output")
"""
# Copies its input (the first step's output) and a "needed" object to its output.
SECOND_SCRIPT = """
    import os, pathlib
    with open(os.environ["RUNS"], "a") as fh:
        fh.write(f"run {os.getpid()}\\n")
    first = pathlib.Path("/opt/ml/processing/input/first/first.txt").read_text()
    needed = pathlib.Path("/opt/ml/processing/input/needed/needed.txt").read_text()
    os.makedirs("/opt/ml/processing/output", exist_ok=True)
    open("/opt/ml/processing/output/second.txt", "w").write(first + " + " + needed)
"""


def gated_definition(bucket: str, gate: str, runs_first: str, runs_second: str) -> dict:
    """``First`` (waits for ``gate``) then ``Second`` (reads First's output and ``needed/needed.txt``).

    Output URIs are Joins over the execution id, as in the project's pipeline, so a resumed execution
    finds the outputs of the steps it reuses.
    """
    def output(step: str) -> dict:
        return {"Std:Join": {"On": "/", "Values": [f"s3://{bucket.removeprefix('s3://')}/executions",
                                                    {"Get": "Execution.PipelineExecutionId"}, step]}}

    first = processing_step("First", f"{bucket}/code/gate.py",
                            outputs=[("out", "/opt/ml/processing/output", output("First"))])
    first["Arguments"]["Environment"] = {"GATE": gate, "RUNS": runs_first}
    second = processing_step("Second", f"{bucket}/code/second.py", inputs=[
        ("first", {"Get": "Steps.First.ProcessingOutputConfig.Outputs['out'].S3Output.S3Uri"},
         "/opt/ml/processing/input/first"),
        ("needed", f"{bucket}/needed/", "/opt/ml/processing/input/needed"),
    ], outputs=[("out", "/opt/ml/processing/output", output("Second"))])
    second["Arguments"]["Environment"] = {"RUNS": runs_second}
    return definition([first, second])
