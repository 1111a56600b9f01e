"""bench/dag_end_to_end.py compares the local DAG with a floor DAG "of the same shape": the floor must keep the
local DAG's task ids, dependencies and retries, and the bench's list of tasks must be the DAG's. (When
approve_model joined the DAG, the bench stopped at its warm-up with "did not succeed": nothing had checked
the shape.) Parsing only, in a child process as Airflow's DAG processor parses; no run, no timing."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

PARSE = r"""
import json, sys
from pathlib import Path
from airflow.dag_processing.dagbag import BundleDagBag
out = {}
for folder in sys.argv[1:]:
    bag = BundleDagBag(dag_folder=folder, bundle_path=Path(folder))
    if bag.import_errors:
        raise SystemExit(f"import errors in {folder}: {bag.import_errors}")
    for dag_id, dag in bag.dags.items():
        out[dag_id] = {t.task_id: {"upstream": sorted(t.upstream_task_ids), "retries": t.retries} for t in dag.tasks}
print(json.dumps(out))
"""


def _bench_module():
    sys.path.insert(0, str(REPO / "bench"))  # the bench imports its sibling `figures`, as when run as a script
    try:
        spec = importlib.util.spec_from_file_location("dag_end_to_end_bench", REPO / "bench" / "dag_end_to_end.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(REPO / "bench"))


def test_the_floor_dag_has_the_local_dags_tasks_dependencies_and_retries(tmp_path):
    bench = _bench_module()
    floor_folder = tmp_path / "floor"
    floor_folder.mkdir()
    (floor_folder / "floor.py").write_text(bench.FLOOR_DAG)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "plugins"), str(REPO), env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-c", PARSE, str(REPO / "dags"), str(floor_folder)], env=env,
                          capture_output=True, text=True, timeout=300, cwd="/", check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    dags = json.loads(done.stdout.strip().splitlines()[-1])
    real, floor = dags[bench.DAG_ID], dags[bench.FLOOR_DAG_ID]
    assert sorted(bench.TASKS) == sorted(real), "bench TASKS is not the local DAG's task list"
    assert set(bench.SKIPPED) <= set(real)
    assert floor == real
