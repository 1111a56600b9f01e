"""``python -m sm_pipeline run-local``: run a definition JSON locally and print a JSON summary.

Progress goes to stderr, one line per step as it starts and ends; the summary is the last thing on
stdout. Exit code 0 when the execution Succeeded, 1 when it Failed or was Stopped, 2 on invalid input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sm_pipeline.errors import InvalidInput
from sm_pipeline.storage import DEFAULT_ROOT


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add run-local's options to ``parser``."""
    parser.add_argument("--definition", required=True, help="pipeline definition JSON file")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="pipeline parameter (repeatable); cast to the declared type")
    parser.add_argument("--root", default=str(DEFAULT_ROOT),
                        help=f"object root: s3://bucket/key -> ROOT/bucket/key (default {DEFAULT_ROOT})")
    parser.add_argument("--max-parallel", type=int, default=2, help="steps run at the same time (default 2)")
    parser.add_argument("--pipeline-name", default="abalone-local", help="pipeline name for records and cache")
    parser.add_argument("--display-name", default=None, help="execution display name")
    parser.add_argument("--code-dir", action="append", default=[], metavar="DIR",
                        help="stage missing code objects (inputs named 'code', submit directories) "
                             "from files of the same name in DIR before running (repeatable)")
    parser.add_argument("--no-cache", action="store_true", help="ignore CacheConfig (run every step)")


def parse_params(pairs: list[str]) -> dict[str, str]:
    """``["A=1", "B=x"]`` as ``{"A": "1", "B": "x"}``; InvalidInput on a pair without '='."""
    params: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise InvalidInput(f"--param {pair!r}: expected NAME=VALUE")
        params[name] = value
    return params


def print_progress(event: dict) -> None:
    """One stderr line per step start/end."""
    kind = event.get("event")
    step = event.get("step")
    if kind == "step_started":
        print(f"[{step}] started ({event.get('type')})", file=sys.stderr, flush=True)
    elif kind in ("step_succeeded", "step_failed", "step_stopped"):
        status = kind.removeprefix("step_")
        extra = " (cache hit)" if event.get("cache_hit") else ""
        reason = f": {event['reason'].splitlines()[0]}" if event.get("reason") else ""
        print(f"[{step}] {status} in {event.get('duration', 0.0):.1f}s{extra}{reason}", file=sys.stderr, flush=True)
    elif kind == "step_retrying":
        print(f"[{step}] attempt {event.get('attempt')} failed, retrying in {event.get('delay', 0):.1f}s",
              file=sys.stderr, flush=True)
    elif kind == "step_not_executed":
        print(f"[{step}] not executed ({event.get('reason')})", file=sys.stderr, flush=True)


def run_local(args: argparse.Namespace) -> int:
    """Run the pipeline described by ``args``; returns the exit code."""
    from sm_pipeline.local.runner import run_pipeline
    from sm_pipeline.local.staging import stage_code_objects
    from sm_pipeline.validate import load_definition_file

    if args.max_parallel < 1:
        raise InvalidInput(f"--max-parallel must be at least 1, not {args.max_parallel}")
    definition = load_definition_file(Path(args.definition))
    params = parse_params(args.param)
    root = Path(args.root)
    if args.code_dir:
        for uri in stage_code_objects(definition, root, [Path(d) for d in args.code_dir], params):
            print(f"staged {uri}", file=sys.stderr)
    result = run_pipeline(definition, parameters=params, root=root, pipeline_name=args.pipeline_name,
                          display_name=args.display_name, max_parallel=args.max_parallel,
                          on_event=print_progress, use_cache=not args.no_cache, source=args.definition)
    print(json.dumps(result.summary(), indent=2, default=str))
    return 0 if result.status == "Succeeded" else 1
