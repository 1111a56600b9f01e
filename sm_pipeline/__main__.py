"""``python -m sm_pipeline``: definition | validate | make-data | run-local | serve | cost | diff | plan.

Exit codes: 0 ok, 1 pipeline Failed/Stopped (run-local) or definitions differ (diff), 2 invalid input. Errors go to stderr
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
    from sm_pipeline.abalone.config import load_config

    config = load_config(args.config)  # before the SDK import: a bad config fails in a fraction of a second
    from sm_pipeline.abalone.definition import definition_json
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


def validate_file(path: str, *, local: bool = False) -> tuple[int, list[str]]:
    """``python -m sm_pipeline validate [--local] FILE``: (exit code, stderr lines).

    SageMaker problems are ``FILE: <problem>`` (exit 2). A definition SageMaker accepts but the local
    runner cannot run gets ``FILE: cannot run locally: <problem>`` lines — the very lines ``run-local``
    refuses it with — and exit 0 (``--local``: exit 2). Parameters take their defaults.
    """
    from sm_pipeline.errors import DefinitionInvalid
    from sm_pipeline.local.capabilities import require_runnable
    from sm_pipeline.step_graph import load_definition_file
    from sm_pipeline.validate import require_valid

    try:
        definition = load_definition_file(Path(path))
        require_valid(definition, path)
        defaults = {p["Name"]: p["DefaultValue"] for p in definition.get("Parameters") or [] if "DefaultValue" in p}
        require_runnable(definition, defaults, None, path)
    except DefinitionInvalid as exc:
        if exc.local and not local:
            return 0, [*exc.lines(), f"{path}: ok for SageMaker (run-local would refuse it: see above)"]
        return 2, exc.lines()
    except InvalidInput as exc:
        return 2, error_lines(exc)
    return 0, [f"{path}: ok"]


def _cmd_validate(args: argparse.Namespace) -> int:
    code, lines = validate_file(args.file, local=args.local)
    for line in lines:
        print(line, file=sys.stderr)
    return code


def _cmd_make_data(args: argparse.Namespace) -> int:
    from sm_pipeline.abalone.synthetic import write_abalone_like

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


def _cmd_cost(args: argparse.Namespace) -> int:
    from sm_pipeline.cost_cli import run

    return run(args)


def _cmd_diff(args: argparse.Namespace) -> int:
    from sm_pipeline.change_cli import run_diff

    return run_diff(args)


def _cmd_plan(args: argparse.Namespace) -> int:
    from sm_pipeline.change_cli import run_plan

    return run_plan(args)


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

    from sm_pipeline.cost_cli import DESCRIPTION as COST_DESCRIPTION
    from sm_pipeline.cost_cli import add_arguments as add_cost_arguments

    p = sub.add_parser("cost", help="what an execution costs: the bound before it starts, the estimate after it",
                       description=COST_DESCRIPTION)
    add_cost_arguments(p)
    p.set_defaults(func=_cmd_cost)

    from sm_pipeline.change_cli import (
        DIFF_DESCRIPTION,
        PLAN_DESCRIPTION,
        add_diff_arguments,
        add_plan_arguments,
    )

    p = sub.add_parser("diff", help="what differs between two definitions, step by step (exit 1 when they differ)",
                       description=DIFF_DESCRIPTION)
    add_diff_arguments(p)
    p.set_defaults(func=_cmd_diff)

    p = sub.add_parser("plan", help="which steps the step cache would reuse and which re-run, and why",
                       description=PLAN_DESCRIPTION)
    add_plan_arguments(p)
    p.set_defaults(func=_cmd_plan)
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
    except KeyboardInterrupt as exc:
        # SIGTERM during a write arrives as storage_io.StoppedBySignal, after the write removed its temp file.
        signum = getattr(exc, "signum", None)
        if signum is not None and signum != 2:  # 2: SIGINT, which stays "interrupted", exit 1
            print(f"{args.command}: stopped by signal {signum}", file=sys.stderr)
            return 128 + signum
        print("interrupted", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
