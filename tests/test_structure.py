"""The house's layers across packages, read from the source (tests/import_graph.py; a lazy import counts).

``dags/`` → ``airsage`` → ``sm_pipeline``, never back up; no import circle inside ``airsage``; the
container scripts import nothing of the repository. ``sm_pipeline``'s own rules are in
tests/sm_pipeline/test_structure.py, the launchers' in tests/launchers/test_layers.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
import import_graph as graphs  # noqa: E402

AIRSAGE = graphs.import_graph(REPO / "plugins" / "airsage", REPO / "plugins")
REPOSITORY_PACKAGES = {"airsage", "sm_pipeline", "dags", "launchers", "processing_code", "tests"}


def test_airsage_has_no_import_cycle():
    graph, _ = AIRSAGE
    assert "airsage.execution_policy" in graph and "airsage.operators.run_local" in graph  # the source was read
    assert graphs.cycles(graph) == []


def test_airsage_never_imports_dags_launchers_or_tests():
    _, external = AIRSAGE
    offending = {name: sorted(names & {"dags", "launchers", "tests"}) for name, names in external.items()
                 if names & {"dags", "launchers", "tests"}}
    assert offending == {}


def test_dag_files_import_airsage_never_the_engine():
    for path in (REPO / "dags").glob("*.py"):
        imported = graphs.imports_of(path.stem, path, set())[1]
        assert imported & REPOSITORY_PACKAGES <= {"airsage"}, f"{path.name} imports {imported & REPOSITORY_PACKAGES}"


def test_container_scripts_import_nothing_of_the_repository():
    for path in (REPO / "processing_code").glob("*.py"):
        imported = graphs.imports_of(path.stem, path, set())[1]
        assert not imported & REPOSITORY_PACKAGES, f"{path.name} imports {imported & REPOSITORY_PACKAGES}"


def test_the_repository_tracks_no_machine_local_files():
    """A clone must not carry one machine's state: no tracked symlink (a venv link once got committed and
    broke every fresh clone's ``make setup``), nothing the Makefile or Airflow creates (.venv, .airflow,
    .airsage, build/, caches)."""
    import subprocess

    listing = subprocess.run(["git", "ls-files", "-s"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    if not listing:  # not a git checkout (an unpacked sdist): nothing to check
        return
    symlinks = [line.split("\t", 1)[1] for line in listing.splitlines() if line.startswith("120000 ")]
    assert symlinks == [], f"tracked symlinks: {symlinks}"
    local = (".venv", ".airflow", ".airsage", ".airsage-sagemaker", "build/", "dist/", ".pytest_cache", "__pycache__")
    tracked = [line.split("\t", 1)[1] for line in listing.splitlines()]
    offending = [path for path in tracked if any(path == name.rstrip("/") or path.startswith(name.rstrip("/") + "/")
                                                 or f"/{name.rstrip('/')}/" in f"/{path}" for name in local)]
    assert offending == [], f"machine-local files tracked: {offending[:10]}"
