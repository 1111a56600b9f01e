"""Selective execution in the local runner: only the selected steps run, upstream outputs come from the reference."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from selective_builders import chain_definition, runs

from sm_pipeline.local import run_pipeline
from sm_pipeline.local.records import LocalExecutionStore
from sm_pipeline.local.runner import resume_pipeline
from sm_pipeline.local.selective import SelectionInvalid, selection_config

PIPELINE = "chain"


@pytest.fixture
def reference(store, tmp_path):
    """A Succeeded run of the whole chain: (definition, its result, the log dir)."""
    logs = tmp_path / "logs"
    logs.mkdir()
    chain = chain_definition(store, logs)
    result = run_pipeline(chain, root=store.root, pipeline_name=PIPELINE)
    assert result.status == "Succeeded", result.failure_reason
    return chain, result, logs


def test_only_the_selected_step_runs_and_reads_the_references_upstream_output(store, reference):
    chain, first, logs = reference
    config = selection_config(["Train"], first.execution_arn)
    result = run_pipeline(chain, root=store.root, pipeline_name=PIPELINE, selective=config)

    assert result.status == "Succeeded", result.failure_reason
    assert runs(logs)[3:] == [("Train", result.execution_id)]  # Prep was not run again, Evaluate not at all
    steps = {s["StepName"]: s for s in result.steps}
    assert steps["Prep"]["StepStatus"] == "Succeeded"
    assert steps["Prep"]["SelectiveExecutionResult"] == {"SourcePipelineExecutionArn": first.execution_arn}
    assert steps["Evaluate"]["StepStatus"] == "NotExecuted"
    assert "SelectiveExecutionResult" not in steps["Train"]
    # Train read the reference's Prep output: its text names the reference's execution for Prep
    train_out = store.root / "test-bucket" / "out" / result.execution_id / "Train" / "Train.txt"
    assert train_out.read_text() == f"Prep@{first.execution_id};Train@{result.execution_id};"
    assert result.describe()["SelectiveExecutionConfig"] == config


def test_a_retried_selective_execution_keeps_its_selection(store, reference, tmp_path):
    chain, first, logs = reference
    (store.root / "test-bucket" / "code" / "chain.py").write_text("raise SystemExit('broken on purpose')\n")
    failed = run_pipeline(chain, root=store.root, pipeline_name=PIPELINE, use_cache=False,
                          selective=selection_config(["Train"], first.execution_arn))
    assert failed.status == "Failed"
    chain_definition(store, logs)  # the script works again
    resumed = resume_pipeline(failed.execution_id, store.root, PIPELINE)
    assert resumed.status == "Succeeded", resumed.failure_reason
    statuses = {s["StepName"]: s["StepStatus"] for s in resumed.steps}
    assert statuses == {"Prep": "Succeeded", "Train": "Succeeded", "Evaluate": "NotExecuted"}
    assert [step for step, execution in runs(logs) if execution == failed.execution_id] == ["Train"]


@pytest.mark.parametrize(("steps", "reference_of", "expected"), [
    (["Nope"], "first", "SelectiveExecutionConfig.SelectedSteps: Nope is not a step of pipeline chain"),
    ([], "first", "SelectiveExecutionConfig.SelectedSteps: select at least one step"),
    (["Prep", "Evaluate"], "first", "step Train lies on a path between the selected steps Prep and Evaluate"),
    (["Train"], None, "selected step(s) depend on step Prep, which is not selected: give SourcePipelineExecutionArn"),
    (["Train"], "other-pipeline", "is an execution of pipeline other, not of chain"),
    (["Train"], "missing", "does not exist"),
])
def test_each_broken_rule_is_one_line_and_nothing_starts(store, reference, steps, reference_of, expected):
    chain, first, _ = reference
    arn = {"first": first.execution_arn, None: None,
           "other-pipeline": first.execution_arn.replace("/chain/", "/other/"),
           "missing": first.execution_arn.rsplit("/", 1)[0] + "/nosuchexecution"}[reference_of]
    before = LocalExecutionStore(store.root).find(PIPELINE)
    with pytest.raises(SelectionInvalid) as raised:
        run_pipeline(chain, root=store.root, pipeline_name=PIPELINE, selective=selection_config(steps, arn))
    assert expected in str(raised.value) and "\n" not in str(raised.value)
    assert LocalExecutionStore(store.root).find(PIPELINE) == before


def test_a_reference_must_have_succeeded_or_failed_and_hold_the_needed_outputs(store, reference):
    chain, first, _ = reference
    records = LocalExecutionStore(store.root).records(PIPELINE, first.execution_id)
    describe = json.loads(records.describe_file.read_text())
    records.describe_file.write_text(json.dumps({**describe, "PipelineExecutionStatus": "Stopped"}))
    with pytest.raises(SelectionInvalid, match="is Stopped; the reference must be Succeeded or Failed"):
        run_pipeline(chain, root=store.root, pipeline_name=PIPELINE,
                     selective=selection_config(["Train"], first.execution_arn))
    records.describe_file.write_text(json.dumps(describe))
    prep_output = store.root / "test-bucket" / "out" / first.execution_id / "Prep"
    for path in prep_output.iterdir():
        path.unlink()
    prep_output.rmdir()
    with pytest.raises(SelectionInvalid, match=r"output s3://test-bucket/out/.*/Prep of step Prep .* no longer exists"):
        run_pipeline(chain, root=store.root, pipeline_name=PIPELINE,
                     selective=selection_config(["Train"], first.execution_arn))


def test_run_local_select_and_reference_from_the_cli(store, reference, tmp_path):
    chain, first, logs = reference
    definition_file = tmp_path / "chain.json"
    definition_file.write_text(json.dumps(chain))
    base = [sys.executable, "-m", "sm_pipeline", "run-local", "--definition", str(definition_file),
            "--root", str(store.root), "--pipeline-name", PIPELINE]
    ran = subprocess.run([*base, "--select", "Evaluate", "--reference", "last"], capture_output=True, text=True,
                         check=False, timeout=300)
    assert ran.returncode == 0, ran.stderr
    summary = json.loads(ran.stdout)
    assert summary["steps"] == {"Prep": "Succeeded", "Train": "Succeeded", "Evaluate": "Succeeded"}
    assert runs(logs)[3:] == [("Evaluate", summary["execution_id"])]
    bad = subprocess.run([*base, "--select", "Evaluate"], capture_output=True, text=True, check=False, timeout=300)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1].endswith(
        "selected step(s) depend on step Train, which is not selected: give SourcePipelineExecutionArn, an execution "
        "whose outputs of it to use")
