"""cache_forms.json and parallelism.json (SDK v3): CacheConfig in every ExpireAfter form AWS documents,
and MaxParallelExecutionSteps from the definition and from the start request, checked on the recorded
step start/end times. Plus the definition-level fields the runner reads or says it ignores."""

from __future__ import annotations

from sm_pipeline.local import LocalExecutionStore, run_pipeline

from .conftest import load, max_concurrency

EXPIRE_AFTER_FORMS = ("30d", "5y", "T16m", "30dT5h", "4w", "2m", "P30D", "PT12H")


def test_the_sdk_writes_every_expire_after_form_verbatim():
    forms = [step["CacheConfig"]["ExpireAfter"] for step in load("cache_forms")["Steps"]]
    assert forms == list(EXPIRE_AFTER_FORMS)


def test_every_expire_after_form_runs_and_hits_the_cache(store):
    definition = load("cache_forms")
    first = run_pipeline(definition, root=store.root, pipeline_name="conf-cache", max_parallel=4)
    assert first.status == "Succeeded", first.failure_reason
    assert not any("CacheHitResult" in step for step in first.steps)
    second = run_pipeline(definition, root=store.root, pipeline_name="conf-cache", max_parallel=4)
    assert second.status == "Succeeded", second.failure_reason
    assert sorted(step["StepName"] for step in second.steps if "CacheHitResult" in step) == [
        f"Cached{i}" for i in range(len(EXPIRE_AFTER_FORMS))]
    assert {step["CacheHitResult"]["SourcePipelineExecutionArn"] for step in second.steps} == {first.execution_arn}


def test_the_definitions_parallelism_configuration_is_honoured(store):
    events = []
    definition = load("parallelism")
    assert definition["ParallelismConfiguration"] == {"MaxParallelExecutionSteps": 1}
    result = run_pipeline(definition, root=store.root, pipeline_name="conf-parallel", on_event=events.append)
    assert result.status == "Succeeded", result.failure_reason
    assert max_concurrency(result.steps) == 1
    assert result.describe()["ParallelismConfiguration"] == {"MaxParallelExecutionSteps": 1}
    notice = next(e for e in events if e["event"] == "parallelism")
    assert notice["message"] == ("at most 1 step(s) at a time "
                                 "(MaxParallelExecutionSteps from the definition's ParallelismConfiguration)")


def test_a_start_requests_limit_overrides_the_definitions(store):
    events = []
    result = run_pipeline(load("parallelism"), root=store.root, pipeline_name="conf-parallel", max_parallel=3,
                          on_event=events.append)
    assert result.status == "Succeeded", result.failure_reason
    # four one-second steps with three slots: never more than three at once, and more than one
    assert 1 < max_concurrency(result.steps) <= 3
    assert LocalExecutionStore(store.root).describe("conf-parallel", result.execution_id)[
        "ParallelismConfiguration"] == {"MaxParallelExecutionSteps": 3}
    assert next(e for e in events if e["event"] == "parallelism")["source"] == "start request"


def test_mlflow_config_is_understood_and_said_to_be_ignored(store):
    events = []
    definition = load("parallelism")
    definition["MlflowConfig"] = {"MlflowResourceArn": None, "MlflowExperimentName": "abalone"}
    definition["Steps"] = definition["Steps"][:1]
    result = run_pipeline(definition, root=store.root, pipeline_name="conf-mlflow", on_event=events.append)
    assert result.status == "Succeeded", result.failure_reason
    assert [e["message"] for e in events if e["event"] == "mlflow_ignored"] == [
        'MlflowConfig {"MlflowExperimentName": "abalone"} is ignored locally: '
        "no step logs to an MLflow tracking server"]


def test_run_local_says_the_limit_and_where_it_came_from(tmp_path):
    import json
    import subprocess
    import sys

    from .conftest import CODE, cli_env

    definition = load("parallelism")
    definition["Steps"] = definition["Steps"][:2]
    path = tmp_path / "parallelism.json"
    path.write_text(json.dumps(definition))

    def run_local(*extra: str) -> list[str]:
        ran = subprocess.run([sys.executable, "-m", "sm_pipeline", "run-local", "--definition", str(path),
                              "--root", str(tmp_path / "root"), "--code-dir", str(CODE.parent), *extra],
                             capture_output=True, text=True, env=cli_env(), check=False)
        assert ran.returncode == 0, ran.stderr
        return ran.stderr.splitlines()

    assert ("at most 1 step(s) at a time (MaxParallelExecutionSteps from the definition's "
            "ParallelismConfiguration)") in run_local()
    assert "at most 2 step(s) at a time (MaxParallelExecutionSteps from the start request)" in run_local(
        "--max-parallel", "2", "--no-cache")
