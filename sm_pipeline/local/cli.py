"""``python -m sm_pipeline run-local``: run a definition JSON locally and print a JSON summary.

Progress goes to stderr, one line per step as it starts and ends; the summary is the last thing on
stdout. Exit code 0 when the execution Succeeded, 1 when it Failed or was Stopped, 2 on invalid input.

The definition and the parameters are checked completely before anything is written; then the
objects asked for by ``--sample``/``--stage-data``/``--code-dir`` are staged into the object root,
then the pipeline runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sm_pipeline.errors import InvalidInput
from sm_pipeline.storage import DEFAULT_ROOT

# The repository's own sample data and container scripts (what --sample stages).
REPO = Path(__file__).resolve().parents[2]
SAMPLE_DATA = REPO / "data" / "abalone.csv"
SAMPLE_CODE_DIR = REPO / "processing_code"

DESCRIPTION = "Run a pipeline definition JSON locally, without Docker or AWS."
EPILOG = f"""\
On a fresh object root the run's inputs do not exist yet; stage them first:
  --sample            the bundled {SAMPLE_DATA.relative_to(REPO)} at InputData (and its rows without
                      the 'rings' label at BatchData), and the scripts of
                      {SAMPLE_CODE_DIR.relative_to(REPO)}/ at the definition's code URIs
  --stage-data CSV    your own labelled CSV (header row with a 'rings' column, e.g. make-data
                      output) at InputData/BatchData, as the DAG's stage_input task does
  --code-dir DIR      missing code objects from files of the same name in DIR

quickstart (from the repository root):
  python -m sm_pipeline definition --output def.json
  python -m sm_pipeline run-local --definition def.json --root objects --sample

The definition and parameters are checked before anything is staged or run.
Exit codes: 0 Succeeded, 1 Failed or Stopped, 2 invalid input (one line on stderr)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add run-local's options to ``parser``."""
    parser.add_argument("--definition", required=True, help="pipeline definition JSON file")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="pipeline parameter (repeatable); cast to the declared type")
    parser.add_argument("--root", default=str(DEFAULT_ROOT),
                        help=f"object root: s3://bucket/key -> ROOT/bucket/key (default {DEFAULT_ROOT})")
    parser.add_argument("--max-parallel", type=int, default=None,
                        help="steps run at the same time, as a StartPipelineExecution ParallelismConfiguration "
                             "(default: the definition's ParallelismConfiguration, else 2)")
    parser.add_argument("--pipeline-name", default="abalone-local", help="pipeline name for records and cache")
    parser.add_argument("--display-name", default=None, help="execution display name")
    parser.add_argument("--code-dir", action="append", default=[], metavar="DIR",
                        help="stage missing code objects (inputs named 'code', submit directories) "
                             "from files of the same name in DIR before running (repeatable)")
    parser.add_argument("--stage-data", metavar="CSV", default=None,
                        help="stage a labelled abalone CSV (header row with a 'rings' column) where the "
                             "run's InputData points, and its rows without the label where BatchData points")
    parser.add_argument("--sample", action="store_true",
                        help=f"stage the bundled sample: {SAMPLE_DATA.relative_to(REPO)} as with --stage-data "
                             f"(unless --stage-data is given) and the scripts in {SAMPLE_CODE_DIR.relative_to(REPO)}/ "
                             "as with --code-dir")
    parser.add_argument("--no-cache", action="store_true", help="ignore CacheConfig (run every step)")
    parser.add_argument("--select", nargs="+", metavar="STEP", default=None,
                        help="selective execution: run only these steps (SelectiveExecutionConfig.SelectedSteps)")
    parser.add_argument("--reference", metavar="EXECUTION", default=None,
                        help="with --select: the execution (ARN or id of --pipeline-name, or 'last') whose outputs "
                             "the steps that are not selected give the selected ones")


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
    elif kind in ("parallelism", "mlflow_ignored"):
        print(event["message"], file=sys.stderr, flush=True)
    elif kind == "execution_started" and event.get("reused_steps"):
        print(f"selective execution: {', '.join(event['reused_steps'])} take the reference's outputs",
              file=sys.stderr, flush=True)
    elif kind == "step_not_executed":
        print(f"[{step}] not executed ({event.get('reason')})", file=sys.stderr, flush=True)


def _sample_files() -> tuple[Path, Path]:
    """The bundled sample data and code directory; InvalidInput when this is not a repository checkout."""
    if not SAMPLE_DATA.is_file() or not SAMPLE_CODE_DIR.is_dir():
        raise InvalidInput(f"--sample: the bundled {SAMPLE_DATA} and {SAMPLE_CODE_DIR}/ are not there "
                           "(not a repository checkout); use --stage-data and --code-dir")
    return SAMPLE_DATA, SAMPLE_CODE_DIR


def run_local(args: argparse.Namespace) -> int:
    """Run the pipeline described by ``args``; returns the exit code."""
    from sm_pipeline.local.runner import prepare_run, run_pipeline
    from sm_pipeline.local.staging import apply_staging, plan_code_objects, plan_input_data
    from sm_pipeline.step_graph import load_definition_file
    from sm_pipeline.storage import prepare_root

    definition = load_definition_file(Path(args.definition))
    params = parse_params(args.param)
    root = Path(args.root)
    # Everything run_pipeline would refuse is refused here, before a single object is staged.
    if args.max_parallel is not None and args.max_parallel < 1:
        raise InvalidInput(f"--max-parallel must be at least 1, not {args.max_parallel}")
    definition, values, _ = prepare_run(definition, params, source=args.definition)
    selective = _selection(args, definition, root)
    code_dirs = [Path(d) for d in args.code_dir]
    data = Path(args.stage_data) if args.stage_data else None
    if args.sample:
        sample_data, sample_code = _sample_files()
        data = data or sample_data
        code_dirs.append(sample_code)
    root = prepare_root(root)  # the same "object root PATH: condition" line run_pipeline would give
    plan = plan_input_data(definition, root, data, values) if data else []
    if code_dirs:
        plan += plan_code_objects(definition, root, code_dirs, values)
    for item in apply_staging(plan, root):
        print(f"staged {item.uri} ({item.note})", file=sys.stderr)
    result = run_pipeline(definition, parameters=params, root=root, pipeline_name=args.pipeline_name,
                          display_name=args.display_name, max_parallel=args.max_parallel,
                          on_event=print_progress, use_cache=not args.no_cache, source=args.definition,
                          selective=selective)
    print(json.dumps(result.summary(), indent=2, default=str))
    return 0 if result.status == "Succeeded" else 1


def _selection(args: argparse.Namespace, definition: dict, root: Path) -> dict | None:
    """``--select``/``--reference`` as a SelectiveExecutionConfig, checked (one line) before anything is staged."""
    from sm_pipeline.arns import default_region, execution_arn
    from sm_pipeline.local.records import LocalExecutionStore
    from sm_pipeline.local.selective import check_selection, selection_config
    from sm_pipeline.step_graph import flatten_steps

    if args.select is None:
        if args.reference:
            raise InvalidInput("--reference needs --select (the steps to run)")
        return None
    reference = args.reference
    if reference == "last":
        found = LocalExecutionStore(root).find(args.pipeline_name)
        if not found:
            raise InvalidInput(f"--reference last: pipeline {args.pipeline_name} has no execution under {root}")
        reference = found[0]["PipelineExecutionArn"]
    elif reference and not reference.startswith("arn:"):
        reference = execution_arn(args.pipeline_name, reference, default_region())
    config = selection_config(args.select, reference)
    check_selection(config, flatten_steps(definition), root, args.pipeline_name)
    return config
