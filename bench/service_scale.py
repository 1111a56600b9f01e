"""The emulated SageMaker service as records grow: every call's median at --small vs --large stored executions.

    python bench/service_scale.py --json                 # 10 vs 10,000 executions, 3 rounds
    python bench/service_scale.py --large 2000 --json    # quicker

Two services run side by side (``python -m sm_pipeline serve``), each over its own object root holding one
pipeline with ``--small`` (default 10) or ``--large`` (default 10,000) executions. The stored executions
are written directly through the records layout (``sm_pipeline.local.records``: describe.json, steps.json,
definition.json; the service's recover indexes them when it starts), not run, so making 10,000 takes
seconds. Each round calls, on both services alternately through boto3, ``--calls`` times each:
CreatePipeline, UpdatePipeline, DescribePipeline, StartPipelineExecution, DescribePipelineExecution,
ListPipelineExecutions, ListPipelineExecutionSteps and ListPipelineVersions. ``<call>_ratio`` = the
call's median on the large root ÷ on the small one, per round; reported as the median over the rounds
with min and max (stderr: ``min / median / max``). Goal: every ratio <= 2. The last stdout line is JSON
with ``--json`` (also the per-call medians in ms, ``<call>_ms_small`` / ``<call>_ms_large``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "plugins")]

from figures import progress, summarise  # noqa: E402 - bench/ is on sys.path when this runs as a script

from airsage.testing import offline_aws_environment, start_service  # noqa: E402
from sm_pipeline.local.records import ExecutionRecords, new_execution_describe  # noqa: E402
from sm_pipeline.storage_io import write_text_atomic  # noqa: E402

GOAL = 2.0
ROLE = "arn:aws:iam::000000000000:role/airsage-bench"
PIPELINE = "scale"
CALLS = ("CreatePipeline", "UpdatePipeline", "DescribePipeline", "StartPipelineExecution",
         "DescribePipelineExecution", "ListPipelineExecutions", "ListPipelineExecutionSteps", "ListPipelineVersions")


def definition(message: str = "bench") -> dict:
    """A one-step pipeline that ends at once (a Fail step), so started executions do not pile up running."""
    return {"Version": "2020-12-01", "Parameters": [],
            "Steps": [{"Name": "End", "Type": "Fail", "Arguments": {"ErrorMessage": message}}]}


def store_executions(root: Path, count: int) -> None:
    """``count`` ended executions of PIPELINE, written straight into the records layout (oldest first)."""
    text = json.dumps(definition())
    steps = json.dumps({"PipelineExecutionSteps": [{"StepName": "End", "StepStatus": "Failed"}]})
    start = datetime.now(UTC) - timedelta(days=30)
    for i in range(count):
        execution_id = f"stored{i:08d}"
        created = (start + timedelta(seconds=i)).isoformat()
        describe = new_execution_describe(PIPELINE, execution_id, region="us-east-1", display_name=f"stored-{i}",
                                          status="Failed", parameters={}, max_parallel=2, created=created,
                                          fields={"FailureReason": "bench", "EndTime": created,
                                                  "PipelineVersionId": 1})
        records = ExecutionRecords(root, PIPELINE, execution_id)
        records.dir.mkdir(parents=True)
        write_text_atomic(records.describe_file, json.dumps(describe))
        write_text_atomic(records.steps_file, steps)
        write_text_atomic(records.definition_file, text)


class Side:
    """One service over a root holding ``count`` executions, and a client of it."""

    def __init__(self, count: int, work: Path):
        import boto3

        self.count = count
        self.root = work / f"root-{count}"
        self.root.mkdir()
        client = boto3.client("sagemaker", **_client_args(start_service, self.root, work, side=self))
        # the pipeline exists before its records are "found": create it, then store the executions, then restart
        client.create_pipeline(PipelineName=PIPELINE, PipelineDefinition=json.dumps(definition()), RoleArn=ROLE,
                               ClientRequestToken=uuid.uuid4().hex)
        self.service.stop()
        began = time.monotonic()
        store_executions(self.root, count)
        progress(f"{count} executions stored in {time.monotonic() - began:.1f} s")
        self.client = boto3.client("sagemaker", **_client_args(start_service, self.root, work, side=self))
        self.arn = self.client.start_pipeline_execution(PipelineName=PIPELINE,
                                                        ClientRequestToken=uuid.uuid4().hex)["PipelineExecutionArn"]
        _wait_ended(self.client, self.arn)

    def call(self, action: str, n: int) -> None:
        c = self.client
        if action == "CreatePipeline":
            c.create_pipeline(PipelineName=f"other-{uuid.uuid4().hex[:12]}", PipelineDefinition=json.dumps(definition()),
                              RoleArn=ROLE, ClientRequestToken=uuid.uuid4().hex)
        elif action == "UpdatePipeline":
            c.update_pipeline(PipelineName=PIPELINE, PipelineDefinition=json.dumps(definition(f"v{n}")))
        elif action == "DescribePipeline":
            c.describe_pipeline(PipelineName=PIPELINE)
        elif action == "StartPipelineExecution":
            c.start_pipeline_execution(PipelineName=PIPELINE, ClientRequestToken=uuid.uuid4().hex)
        elif action == "DescribePipelineExecution":
            c.describe_pipeline_execution(PipelineExecutionArn=self.arn)
        elif action == "ListPipelineExecutions":
            c.list_pipeline_executions(PipelineName=PIPELINE, MaxResults=20)
        elif action == "ListPipelineExecutionSteps":
            c.list_pipeline_execution_steps(PipelineExecutionArn=self.arn)
        elif action == "ListPipelineVersions":
            c.list_pipeline_versions(PipelineName=PIPELINE, MaxResults=20)


def _client_args(start, root: Path, work: Path, side: Side) -> dict:
    """Start a service over ``root`` (kept as ``side.service``); the arguments of a boto3 client of it."""
    side.service = start(root, work / "logs", name=f"scale-{root.name}")
    env = offline_aws_environment(side.service.url)
    return {"endpoint_url": side.service.url, "region_name": env["AWS_DEFAULT_REGION"],
            "aws_access_key_id": env["AWS_ACCESS_KEY_ID"], "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"]}


def _wait_ended(client, arn: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while client.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"] == "Executing":
        if time.monotonic() > deadline:
            raise RuntimeError(f"{arn} still Executing after {timeout} s")
        time.sleep(0.05)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10, help="executions stored on the small side (default 10)")
    parser.add_argument("--large", type=int, default=10_000, help="executions stored on the large side (default 10,000)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--calls", type=int, default=15, help="calls of each action per side and round (default 15)")
    parser.add_argument("--actions", default=",".join(CALLS),
                        help="comma-separated calls to measure (default: all; a service without one, leave it out)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON on the last line")
    args = parser.parse_args()
    actions = [a for a in args.actions.split(",") if a]
    unknown = sorted(set(actions) - set(CALLS))
    if unknown:
        parser.error(f"--actions: unknown call(s) {', '.join(unknown)}; known: {', '.join(CALLS)}")

    series: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="airsage-service-scale-") as tmp:
        work = Path(tmp)
        small, large = Side(args.small, work), Side(args.large, work)
        try:
            for side in (small, large):  # warm both (imports, first-call caches) before measuring
                for n, action in enumerate(actions):
                    side.call(action, -1 - n)
            for round_no in range(args.rounds):
                medians: dict[tuple[str, int], float] = {}
                for action in actions:
                    times: dict[int, list[float]] = {small.count: [], large.count: []}
                    for n in range(args.calls):
                        for side in (small, large) if n % 2 == 0 else (large, small):  # alternate who goes first
                            began = time.perf_counter()
                            side.call(action, round_no * 1000 + n)
                            times[side.count].append(time.perf_counter() - began)
                    for count, values in times.items():
                        medians[(action, count)] = statistics.median(values) * 1000
                    series.setdefault(f"{action}_ratio", []).append(medians[(action, large.count)]
                                                                    / medians[(action, small.count)])
                    series.setdefault(f"{action}_ms_small", []).append(medians[(action, small.count)])
                    series.setdefault(f"{action}_ms_large", []).append(medians[(action, large.count)])
                progress(f"round {round_no + 1}/{args.rounds}: " + ", ".join(
                    f"{a} {medians[(a, small.count)]:.1f}/{medians[(a, large.count)]:.1f} ms" for a in actions))
        finally:
            for side in (small, large):
                if getattr(side, "service", None) is not None:
                    side.service.stop()
    figures = summarise(series, {f"{action}_ratio": ("<=", GOAL) for action in actions})
    figures.update({"small": args.small, "large": args.large, "rounds": args.rounds, "calls": args.calls})
    if args.json:
        print(json.dumps(figures, sort_keys=True))
    else:
        for action in actions:
            print(f"{action}: {figures[f'{action}_ms_small']:.1f} ms at {args.small}, "
                  f"{figures[f'{action}_ms_large']:.1f} ms at {args.large} (ratio {figures[f'{action}_ratio']:.2f})")
    return 0 if all(figures["met"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
