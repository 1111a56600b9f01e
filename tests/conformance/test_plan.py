"""The cache-impact plan says what the local runner's cache then does (one rule: sm_pipeline.cache_config's key).

cache_forms.json (SDK v3, eight cached Processing steps) runs once; ``python -m sm_pipeline plan`` against that
execution (read from the object root's records, code read from the root) predicts the hits; the runner's next
run hits exactly those: unchanged, one step's arguments changed. A script replaced in place (same URI) is the
one documented difference: SageMaker's key and the plan do not see it, the local runner does.
"""

from __future__ import annotations

import json
import subprocess
import sys

from sm_pipeline.local import run_pipeline

from .conftest import BUCKET, REPO, load

PIPELINE = "conf-plan"


def planned_hits(definition: dict, root, tmp_path) -> list[str]:
    path = tmp_path / "new.json"
    path.write_text(json.dumps(definition))
    done = subprocess.run([sys.executable, "-m", "sm_pipeline", "plan", str(path), "--pipeline", PIPELINE,
                           "--root", str(root), "--json"], cwd=REPO, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["hits"]


def run_hits(definition: dict, root) -> list[str]:
    result = run_pipeline(definition, root=root, pipeline_name=PIPELINE, max_parallel=4)
    assert result.status == "Succeeded", result.failure_reason
    return sorted(step["StepName"] for step in result.steps if "CacheHitResult" in step)


def test_the_plan_predicts_the_runners_cache_hits(store, tmp_path):
    definition = load("cache_forms")
    everything = sorted(step["Name"] for step in definition["Steps"])
    assert planned_hits(definition, store.root, tmp_path) == []  # nothing ran yet
    assert run_hits(definition, store.root) == []

    assert sorted(planned_hits(definition, store.root, tmp_path)) == everything
    assert run_hits(definition, store.root) == everything

    definition["Steps"][3]["Arguments"]["AppSpecification"]["ContainerArguments"][-1] = "changed"
    predicted = sorted(planned_hits(definition, store.root, tmp_path))
    assert predicted == [name for name in everything if name != "Cached3"]
    assert run_hits(definition, store.root) == predicted

    # the same URI, other bytes: SageMaker's key (the arguments) does not see it, so neither does the plan,
    # which compares the reference's code with the new one; the local runner also hashes the bytes it runs
    # (docs/CONTRACTS.md, "Deliberate differences") and misses
    code = store.path_for(f"{BUCKET}/code/conformance_step.py")
    edited = code.read_text() + "\n# edited in place\n"
    code.unlink()  # the staged object may be a hard link to the repository's script
    code.write_text(edited)
    assert sorted(planned_hits(definition, store.root, tmp_path)) == everything
    assert run_hits(definition, store.root) == []
