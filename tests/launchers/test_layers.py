"""Nothing imports a launcher, and ``dags/`` holds DAG code only (the layer rules of docs and DESIGN).

Read as text (no import), so a violation is found even in a module no test happens to import.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
import import_graph as graphs  # noqa: E402  (tests/import_graph.py)

#: what Airflow, its task processes and the containers load: none of it may depend on a launcher
LOADED_BY_AIRFLOW = ("dags", "plugins", "sm_pipeline", "processing_code")


def imported_modules(path: Path) -> set[str]:
    """The top-level names of everything ``path`` imports, at any depth of the file."""
    return graphs.imports_of(path.stem, path, set())[1]


def test_nothing_airflow_loads_imports_a_launcher():
    offenders = {str(path.relative_to(REPO)) for folder in LOADED_BY_AIRFLOW for path in (REPO / folder).rglob("*.py")
                 if "launchers" in imported_modules(path)}
    assert offenders == set()


def test_dags_holds_dag_files_and_the_factory_only():
    for path in (REPO / "dags").glob("*.py"):
        tree = ast.parse(path.read_text())
        mains = [n for n in ast.walk(tree) if isinstance(n, ast.Compare) and ast.unparse(n) == "__name__ == '__main__'"]
        assert not mains, f"{path.name} is a script, not DAG code: launchers live in launchers/"
        assert not {"argparse", "subprocess"} & imported_modules(path), f"{path.name} starts processes"
    assert not (REPO / "dags" / "__init__.py").exists()  # nothing runs `python -m dags.<x>`


def test_no_container_mounts_a_launcher():
    compose = yaml.safe_load((REPO / "docker-compose.yaml").read_text())
    services = [compose["x-airflow-common"], *compose["services"].values()]
    sources = {str(v).split(":")[0] for service in services for v in service.get("volumes", [])}
    assert not {s for s in sources if "launchers" in s}, sources
    assert "./dags" in sources  # and the DAG folder is what it mounts for DAGs, launcher-free
