"""``python -m sm_pipeline cost DEFINITION [--execution ARN]``: the bound before a run, the estimate after it.

The execution's steps come from the local records (``--root``) or from the SageMaker API (boto3's
configuration; ``AWS_ENDPOINT_URL`` for the emulated service), with each job's Describe*Job for its
billed time. The figures are :mod:`sm_pipeline.cost`'s.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sm_pipeline.errors import InvalidInput

DESCRIPTION = ("Print what a pipeline execution costs in SageMaker instance time: a bound before it starts "
               "(every job step at its MaxRuntimeInSeconds) and, with --execution, the estimate after it ended. "
               "An estimate of on-demand prices, not a bill.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``cost``."""
    parser.add_argument("definition", help="the pipeline definition JSON file")
    parser.add_argument("--execution", metavar="ARN", help="an execution of it: its estimate after it ended")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="a parameter value for the bound (default: the definition's defaults; "
                             "with --execution: the execution's own)")
    parser.add_argument("--region", help="the region whose prices apply (default: the execution's, else AWS_REGION, "
                                         "else us-east-1)")
    parser.add_argument("--prices", metavar="FILE", help="your own price table, overlaid on the repository's "
                                                         "(default: $AIRSAGE_PRICE_TABLE)")
    parser.add_argument("--root", help="read the execution from the local records under this object root "
                                       "(default: ask the SageMaker API)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")


def _from_records(root: str, arn: str) -> dict[str, Any]:
    from sm_pipeline.arns import parse_execution_arn
    from sm_pipeline.local.records import ExecutionRecords, LocalExecutionStore

    _, execution_id = parse_execution_arn(arn)
    found = ExecutionRecords.with_execution_id(root, execution_id)
    if not found:
        raise InvalidInput(f"cost: no local execution {execution_id} under {root}")
    store = LocalExecutionStore(root)
    describe = store.describe(found[0].pipeline_name, execution_id)
    return {"describe": describe, "steps": store.steps(found[0].pipeline_name, execution_id), "jobs": {}}


def _from_api(arn: str) -> dict[str, Any]:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from sm_pipeline.cost import step_jobs

    region = arn.split(":")[3] or None
    client = boto3.client("sagemaker", region_name=region)
    try:
        describe = client.describe_pipeline_execution(PipelineExecutionArn=arn)
        steps, token = [], None
        while True:
            page = client.list_pipeline_execution_steps(PipelineExecutionArn=arn, **({"NextToken": token} if token else {}))
            steps += page.get("PipelineExecutionSteps", [])
            token = page.get("NextToken")
            if not token:
                break
        parameters = client.list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)
        describe["PipelineParameters"] = parameters.get("PipelineParameters", [])
        jobs = step_jobs(client, steps)
    except (ClientError, BotoCoreError) as err:
        raise InvalidInput(f"cost: cannot read execution {arn}: {err}") from None
    return {"describe": describe, "steps": steps, "jobs": jobs}


def run(args: argparse.Namespace) -> int:
    """Print the bound (and with ``--execution``, the estimate); exit 0, or 2 for invalid input."""
    from sm_pipeline.arns import default_region, parse_execution_arn
    from sm_pipeline.cost import execution_cost, figure, load_prices
    from sm_pipeline.step_graph import load_definition_file

    definition = load_definition_file(Path(args.definition))
    prices = load_prices(args.prices)
    from sm_pipeline.local.cli import parse_params

    given = parse_params(args.param)
    region, execution = args.region, None
    if args.execution:
        try:
            parse_execution_arn(args.execution)
        except ValueError as err:
            raise InvalidInput(f"cost: --execution: {err}") from None
        execution = _from_records(args.root, args.execution) if args.root else _from_api(args.execution)
        region = region or args.execution.split(":")[3] or None
        given = {**{p["Name"]: p["Value"] for p in execution["describe"].get("PipelineParameters") or []}, **given}
    region = region or default_region()
    cost = execution_cost(definition, given, steps=execution["steps"] if execution else None, region=region,
                          prices=prices, jobs=execution["jobs"] if execution else None)
    if args.json:
        print(json.dumps(cost, indent=2, default=str))
        return 0
    out = sys.stdout
    print(f"bound before it starts: {figure(cost['bound'])}", file=out)
    for line in cost["bound"]["steps"]:
        print(f"  {line['step']}: {_amount(line)}{_detail(line)}", file=out)
    if execution:
        describe = execution["describe"]
        print(f"estimate of execution {describe.get('PipelineExecutionArn', args.execution)} "
              f"({describe.get('PipelineExecutionStatus')}): {figure(cost['estimate'])}", file=out)
        for line in cost["estimate"]["steps"]:
            print(f"  {line['step']} ({line.get('status')}): {_amount(line)}{_detail(line)}", file=out)
    source = cost["prices"]
    print(f"prices: on-demand USD per instance-hour, region {region}; {source['source']}"
          f" (read {source['retrieved'] or 'never: no price transcribed'}); files: {', '.join(source['files'])}",
          file=out)
    print("an estimate of the instance time SageMaker bills, not a bill (no storage, transfer, Savings Plans, Spot, "
          "free tier or tax)", file=out)
    return 0


def _amount(line: dict) -> str:
    from sm_pipeline.cost import usd

    return usd(line.get("usd"))


def _detail(line: dict) -> str:
    parts = []
    if line.get("instances"):
        parts.append(" + ".join(f"{count} x {kind}" for kind, count in line["instances"]))
    if line.get("max_runtime_s") is not None:
        parts.append(f"at most {line['max_runtime_s']} s x {line.get('attempts')} attempt(s)")
    if line.get("seconds") is not None:
        parts.append(f"{line['seconds']:.0f} s")
    if line.get("note"):
        parts.append(line["note"])
    return f" ({'; '.join(parts)})" if parts else ""
