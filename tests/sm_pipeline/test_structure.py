"""The house rules of ``sm_pipeline``, read from its source: who imports whom, and the one table of step kinds.

The import graph is tests/import_graph.py's (``ast`` over every module; a lazy import is an edge too).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import import_graph as graphs  # noqa: E402  (tests/import_graph.py)

from sm_pipeline.definition_schema import STEP_SCHEMAS
from sm_pipeline.step_kinds import KINDS, KNOWN_STEP_TYPES, LOCAL_STEP_TYPES, STEP_KINDS

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "sm_pipeline"
# The command-line entry points: the only modules outside local/ and service/ that may import the runner
# (`cost` reads a local execution's records and shares run-local's --param parser; `diff`/`plan` read them
# through change_sources, which upsert_pipeline shares).
CLI_ENTRY_POINTS = {"sm_pipeline.__main__", "sm_pipeline.cost_cli", "sm_pipeline.change_cli",
                    "sm_pipeline.change_sources"}
# SageMaker's rules: what validates a definition for SageMaker must not depend on what can run it locally.
VALIDATOR_MODULES = {"sm_pipeline.validate", "sm_pipeline.step_graph", "sm_pipeline.definition_schema",
                     "sm_pipeline.step_kinds", "sm_pipeline.cache_config", "sm_pipeline.parameters"}
FORBIDDEN_TOP_LEVEL = {"airflow", "airsage", "plugins", "dags", "launchers"}


def import_graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    return graphs.import_graph(PACKAGE, REPO)


cycles, reachable = graphs.cycles, graphs.reachable


def is_local(name: str) -> bool:
    return name == "sm_pipeline.local" or name.startswith("sm_pipeline.local.")


def test_the_graph_sees_lazy_imports():
    graph, _ = import_graph()
    # __main__ imports the runner's CLI inside a function only: still an edge
    assert "sm_pipeline.local.cli" in graph["sm_pipeline.__main__"]
    assert "sm_pipeline.local.runner" in graph["sm_pipeline.local"]  # the package's lazy __getattr__


def test_sm_pipeline_has_no_import_cycle():
    graph, _ = import_graph()
    assert cycles(graph) == []


def test_sm_pipeline_never_imports_airflow_plugins_dags_or_launchers():
    _, external = import_graph()
    offending = {name: sorted(names & FORBIDDEN_TOP_LEVEL) for name, names in external.items()
                 if names & FORBIDDEN_TOP_LEVEL}
    assert offending == {}


def test_only_the_runner_the_service_and_the_cli_import_the_runner():
    graph, _ = import_graph()
    importers = {name for name, targets in graph.items()
                 if any(is_local(target) for target in targets)
                 and not is_local(name) and not name.startswith("sm_pipeline.service")}
    assert importers == CLI_ENTRY_POINTS


def test_the_validator_imports_nothing_of_the_runner_even_indirectly():
    graph, _ = import_graph()
    assert VALIDATOR_MODULES <= set(graph)
    reached = {name: sorted(target for target in reachable(graph, name) if is_local(target))
               for name in VALIDATOR_MODULES}
    assert reached == {name: [] for name in VALIDATOR_MODULES}


def sdk_step_types() -> set[str]:
    """The values of the installed SDK's StepTypeEnum, read from its source (importing the SDK takes seconds)."""
    spec = importlib.util.find_spec("sagemaker")
    source = Path(spec.origin).parent / "mlops" / "workflow" / "steps.py"
    tree = ast.parse(source.read_text(encoding="utf-8"))
    enum = next(node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "StepTypeEnum")
    return {node.value.value for node in enum.body
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)}


def test_every_step_type_of_the_sdk_is_a_row_of_the_table():
    sdk = sdk_step_types()
    assert {"Processing", "Training", "Condition", "ForEach"} <= sdk  # the source was read
    assert sdk - KNOWN_STEP_TYPES == set()


def test_the_table_has_one_row_per_type_and_its_derived_lists_agree():
    assert len(KINDS) == len(STEP_KINDS)
    assert LOCAL_STEP_TYPES == ("Processing", "Training", "Transform", "Model", "RegisterModel", "Condition", "Fail",
                                "Lambda", "ForEach")
    assert set(STEP_SCHEMAS) <= KNOWN_STEP_TYPES
    assert {kind.type for kind in STEP_KINDS if kind.in_place} == {"Condition", "ForEach"}


@pytest.mark.parametrize("kind", [kind for kind in STEP_KINDS if kind.local], ids=lambda kind: kind.type)
def test_every_local_runner_named_in_the_table_exists(kind):
    module, _, function = kind.local.partition(":")
    assert is_local(module)
    assert callable(getattr(importlib.import_module(module), function))


def test_help_imports_neither_the_runner_nor_the_sdk():
    code = ("import sys\nfrom sm_pipeline.__main__ import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(' '.join(sorted(sys.modules)), file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    loaded = set(done.stderr.split())
    assert done.returncode == 0 and "sm_pipeline.__main__" in loaded, done.stderr
    heavy = {"sm_pipeline.local.runner", "sm_pipeline.validate", "sagemaker", "boto3", "moto", "numpy"}
    assert loaded & heavy == set()
