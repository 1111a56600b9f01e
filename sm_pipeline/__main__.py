"""``python -m sm_pipeline``: definition | validate | make-data | run-local | serve.

Exit codes: 0 ok, 1 pipeline Failed/Stopped (run-local), 2 invalid input. Errors go to stderr
as one line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sm_pipeline.errors import InvalidInput, error_lines


def _output_problem(output: str) -> str | None:
    """Why ``output`` cannot be written as a file (checked before the seconds-long build), or None."""
    import os

    if output.endswith(tuple(filter(None, ("/", os.sep, os.altsep)))) or Path(output).is_dir():
        return "is a directory, expected a file path"
    parent = Path(output).parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent  # the folders in between are created by the write
    if not parent.is_dir():
        return f"{parent} is not a directory"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"{parent} is not writable"
    return None


def _cmd_definition(args: argparse.Namespace) -> int:
    from sm_pipeline.config import load_config

    config = load_config(args.config)  # before the SDK import: a bad config fails in a fraction of a second
    from sm_pipeline.definition import definition_json
    from sm_pipeline.storage_io import write_text_atomic

    if args.output and (problem := _output_problem(args.output)):
        raise InvalidInput(f"definition: cannot write --output {args.output}: {problem}")
    text = definition_json(config)
    if args.output:
        try:
            write_text_atomic(Path(args.output), text)
        except OSError as exc:  # what the early check cannot foresee: a full disk, a read-only mount
            raise InvalidInput(f"definition: cannot write --output {args.output}: {exc.strerror or exc}") from None
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

    # The string as given: a trailing separator means a directory, which Path() would drop.
    path = write_abalone_like(rows=args.rows, seed=args.seed, output=args.output, header=args.header)
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

    p = sub.add_parser("make-data", help="write abalone-shaped synthetic data for scale tests",
                       description="Write abalone-shaped synthetic rows (same seed, same bytes) with the columns "
                                   "of data/abalone.csv; the file feeds run-local --stage-data and the DAG's "
                                   "stage_input as is.")
    p.add_argument("--rows", type=int, required=True, help="number of data rows (at least 1)")
    p.add_argument("--seed", type=int, default=0, help="random seed, 0 or more (default 0)")
    p.add_argument("--output", required=True, help="CSV file to write (atomically; parent folders are created)")
    p.add_argument("--header", action=argparse.BooleanOptionalAction, default=True,
                   help="first line names the columns, like data/abalone.csv (default); "
                        "--no-header writes the UCI original's headerless layout")
    p.set_defaults(func=_cmd_make_data)

    from sm_pipeline.local.cli import DESCRIPTION, EPILOG, add_arguments

    p = sub.add_parser("run-local", help="run a pipeline definition locally, without Docker or AWS",
                       description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)

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
