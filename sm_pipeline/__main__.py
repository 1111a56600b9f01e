"""``python -m sm_pipeline``: definition | validate | make-data | run-local | serve.

Exit codes: 0 ok, 1 pipeline Failed/Stopped (run-local), 2 invalid input. Errors go to stderr
as one line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sm_pipeline.errors import InvalidInput, error_lines


def _cmd_definition(args: argparse.Namespace) -> int:
    from sm_pipeline.config import load_config

    config = load_config(args.config)  # before the SDK import: a bad config fails in a fraction of a second
    from sm_pipeline.definition import definition_json
    from sm_pipeline.storage_io import write_text_atomic

    text = definition_json(config)
    if args.output:
        write_text_atomic(Path(args.output), text)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from sm_pipeline.validate import validate_file

    code, lines = validate_file(args.file, local=args.local)
    for line in lines:
        print(line, file=sys.stderr)
    return code


def _cmd_make_data(args: argparse.Namespace) -> int:
    from sm_pipeline.synthetic import write_abalone_like

    path = write_abalone_like(rows=args.rows, seed=args.seed, output=Path(args.output), header=args.header)
    print(f"wrote {args.rows} rows to {path}", file=sys.stderr)
    return 0


def _cmd_run_local(args: argparse.Namespace) -> int:
    from sm_pipeline.local.cli import run_local

    return run_local(args)


def _cmd_serve(args: argparse.Namespace) -> int:
    from sm_pipeline.service.server import serve

    return serve(args)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m sm_pipeline``."""
    parser = argparse.ArgumentParser(prog="python -m sm_pipeline", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("definition", help="print the abalone pipeline definition JSON (built offline)")
    p.add_argument("--config", help="config file (JSON); environment AIRSAGE_* variables override it")
    p.add_argument("--output", help="write here instead of stdout (atomically)")
    p.set_defaults(func=_cmd_definition)

    p = sub.add_parser("validate", help="check a pipeline definition JSON; one line per problem")
    p.add_argument("file")
    p.add_argument("--local", action="store_true",
                   help="also fail (exit 2) when the local runner cannot run it; without it those lines are notes")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("make-data", help="write abalone-shaped synthetic data for scale tests")
    p.add_argument("--rows", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output", required=True)
    p.add_argument("--header", action="store_true", help="write a header row (default: none, like UCI)")
    p.set_defaults(func=_cmd_make_data)

    p = sub.add_parser("run-local", help="run a pipeline definition locally, without Docker or AWS")
    from sm_pipeline.local.cli import add_arguments

    add_arguments(p)
    p.set_defaults(func=_cmd_run_local)

    p = sub.add_parser("serve", help="serve an emulated SageMaker (pipelines run by the local runner) and S3 "
                                     "on one loopback endpoint; prints its URL first")
    from sm_pipeline.service.server import add_arguments as add_serve_arguments

    add_serve_arguments(p)
    p.set_defaults(func=_cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except InvalidInput as exc:
        for line in error_lines(exc):
            print(line, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
