"""``python -m sm_pipeline diff OLD NEW`` and ``python -m sm_pipeline plan NEW``: see a change before it runs.

A definition is named as a file (``definition.json``), ``pipeline:NAME`` (the pipeline's current definition,
DescribePipeline) or ``execution:ARN`` (the definition an execution ran); the last two ask the SageMaker API
at ``--endpoint-url`` (else boto3's configuration: ``AWS_ENDPOINT_URL``, the region, the credential chain), or
with ``--root`` read ``execution:ARN`` from the local records under an object root. The figures are
:mod:`sm_pipeline.definition_diff`'s and :mod:`sm_pipeline.plan`'s.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from sm_pipeline.errors import InvalidInput

DIFF_DESCRIPTION = ("Print what differs between two pipeline definitions, step by step: steps added/removed/changed; "
                    "per step image, instances, code (by content), arguments, CacheConfig, RetryPolicies, DependsOn, "
                    "property files; parameters; top-level settings. OLD and NEW: a definition file, pipeline:NAME "
                    "(its current definition) or execution:ARN (the definition it ran). "
                    "Exit 0 the same, 1 different, 2 bad input.")
PLAN_DESCRIPTION = ("Print, for each step of a definition, whether SageMaker's step cache would reuse its run in an "
                    "earlier execution (hit) or run it (miss / not cached), and why; then which steps re-run. "
                    "Default reference: the pipeline's last Succeeded execution (--pipeline). Exit 0, 2 bad input.")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoint-url", metavar="URL",
                        help="the SageMaker API (and S3) endpoint, e.g. the emulated service's "
                             "(default: boto3's configuration, AWS_ENDPOINT_URL)")
    parser.add_argument("--region", help="the region of the API (default: AWS_REGION, else us-east-1)")
    parser.add_argument("--root", help="an object root: read executions from its local records and code objects "
                                       "from it (the local backend)")
    parser.add_argument("--json", action="store_true", help="print JSON (for tools) instead of text")


def add_diff_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``diff``."""
    parser.add_argument("old", help="the definition before: FILE, pipeline:NAME or execution:ARN")
    parser.add_argument("new", help="the definition after: FILE, pipeline:NAME or execution:ARN")
    _common(parser)


def add_plan_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``plan``."""
    parser.add_argument("new", help="the definition to plan: FILE, pipeline:NAME or execution:ARN")
    parser.add_argument("--against", metavar="EXECUTION",
                        help="the execution ARN to compare with (default: --pipeline's last Succeeded execution)")
    parser.add_argument("--pipeline", metavar="NAME", help="the pipeline whose last Succeeded execution is the reference")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="a parameter value of the planned run (default: the definition's defaults)")
    _common(parser)


class _Sources:
    """The clients and readers the arguments call for, made once and only when needed."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self._clients: dict[str, Any] = {}

    def client(self, service: str = "sagemaker"):
        if service not in self._clients:
            import boto3

            from sm_pipeline.arns import default_region

            region = self.args.region or default_region()
            url = self.args.endpoint_url
            kwargs: dict[str, Any] = {"region_name": region, **({"endpoint_url": url} if url else {})}
            if url and _is_loopback(url):
                # an emulated service: fixed keys, and the credential chain (files, instance metadata) is never run
                from sm_pipeline.offline_aws import offline_aws

                with offline_aws():
                    self._clients[service] = boto3.client(service, aws_access_key_id="airsage",
                                                          aws_secret_access_key="airsage", **kwargs)  # noqa: S106
            else:
                self._clients[service] = boto3.client(service, **kwargs)
        return self._clients[service]

    def read_code(self):
        if self.args.root:
            from sm_pipeline.change_sources import object_root_reader

            return object_root_reader(self.args.root)
        if self.args.endpoint_url:
            from sm_pipeline.change_sources import s3_reader

            return s3_reader(self.client("s3"))
        return None

    def definition(self, spec: str, what: str) -> dict:
        from sm_pipeline import change_sources as sources

        if spec.startswith(sources.PIPELINE_PREFIX):
            name = spec[len(sources.PIPELINE_PREFIX):]
            if not name:
                raise InvalidInput(f"{what} {spec!r}: pipeline: needs a name (pipeline:NAME)")
            return sources.deployed_definition(self.client(), name)
        if spec.startswith(sources.EXECUTION_PREFIX):
            return self.reference(spec[len(sources.EXECUTION_PREFIX):], what).definition
        return _definition_file(spec, what)

    def reference(self, arn: str, what: str):
        from sm_pipeline import change_sources as sources
        from sm_pipeline.arns import parse_execution_arn

        try:
            parse_execution_arn(arn)
        except ValueError as err:
            raise InvalidInput(f"{what}: {err}") from None
        return sources.reference_local(self.args.root, arn) if self.args.root else sources.reference_api(self.client(), arn)


def _is_loopback(url: str) -> bool:
    from urllib.parse import urlsplit

    host = urlsplit(url).hostname or ""
    return host in ("localhost", "::1") or host.startswith("127.")


def _definition_file(path: str, what: str) -> dict:
    from sm_pipeline.step_graph import load_definition_file

    if not Path(path).is_file():
        raise InvalidInput(f"{what} {path}: no such file (expected a definition file, pipeline:NAME or execution:ARN)")
    return load_definition_file(Path(path))


def run_diff(args: argparse.Namespace) -> int:
    """Print the diff; exit 0 same, 1 different (2, bad input, is raised as InvalidInput)."""
    from sm_pipeline.definition_diff import diff_definitions

    sources = _Sources(args)
    old, new = sources.definition(args.old, "OLD"), sources.definition(args.new, "NEW")
    diff = diff_definitions(old, new, read_code=sources.read_code())
    if args.json:
        print(json.dumps(diff.to_json(), indent=2, sort_keys=True, default=str))
    else:
        print("\n".join(diff.summary_lines()))
    return 0 if diff.is_empty else 1


def run_plan(args: argparse.Namespace) -> int:
    """Print the plan; exit 0 (2, bad input, is raised as InvalidInput)."""
    from sm_pipeline import change_sources
    from sm_pipeline.local.cli import parse_params
    from sm_pipeline.plan import plan_definition

    sources = _Sources(args)
    new = sources.definition(args.new, "NEW")
    given = parse_params(args.param)
    arn = args.against
    if arn is None:
        if not args.pipeline:
            raise InvalidInput("plan: name the reference: --against EXECUTION_ARN, or --pipeline NAME "
                               "(its last Succeeded execution)")
        arn = (change_sources.last_succeeded_local(args.root, args.pipeline) if args.root
               else change_sources.last_succeeded_api(sources.client(), args.pipeline))
    reference = sources.reference(arn, "--against") if arn else None
    plan = plan_definition(new, reference, parameters=given)
    if args.json:
        print(json.dumps(plan.to_json(), indent=2, sort_keys=True))
    else:
        print("\n".join(plan.summary_lines()))
    if reference is not None and reference.status != "Succeeded":
        print(f"note: the reference execution is {reference.status}, not Succeeded", file=sys.stderr)
    return 0
