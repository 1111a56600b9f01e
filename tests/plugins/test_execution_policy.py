"""The execution policy both backends share, decision by decision, over an in-memory backend.

The real backends (SageMaker on the emulated service, the local runner) are driven through the
operators in test_sagemaker_operators.py, test_run_local.py and test_run_local_stop_resume.py; here
every branch of the one decision tree is pinned, with the line it logs.
"""

from __future__ import annotations

import logging

import pytest

from airsage.execution_inputs import ExecutionInputs
from airsage.execution_policy import (
    DefinitionUnreadable,
    ResumeConflict,
    ResumeRefused,
    selection_to_run,
    start_or_reattach,
    version_to_run,
)
from airsage.naming import client_request_token

DEFINITION = {"Version": "2020-12-01", "Steps": [{"Name": "A", "Type": "Processing"}]}
CHANGED = {"Version": "2020-12-01", "Steps": [{"Name": "B", "Type": "Processing"}]}
INPUTS = ExecutionInputs(dag_id="dag", ds="2026-11-01", definition_sha256="d" * 64, parameters={"P": "1"},
                         data={"input data": "a" * 64, "batch data": "b" * 64})
DISPLAY = INPUTS.display_name()


class Memory:
    """An ExecutionBackend over a list of execution dicts (newest first)."""

    def __init__(self, *executions: dict, steps: dict | None = None, definitions: dict | None = None,
                 resume_error: Exception | None = None):
        self.executions = list(executions)
        self.step_lists = steps or {}
        self.definitions = definitions or {}
        self.resume_error = resume_error
        self.calls: list[tuple] = []

    def find(self, display_name):
        return [e for e in self.executions if e["PipelineExecutionDisplayName"] == display_name]

    def list_by_prefix(self, display_prefix):
        return [e for e in self.executions if e["PipelineExecutionDisplayName"].startswith(display_prefix)]

    def describe(self, arn):
        return next(e for e in self.executions if e["PipelineExecutionArn"] == arn)

    def steps(self, arn):
        return self.step_lists.get(arn, [])

    def definition_of(self, arn):
        if arn not in self.definitions:
            raise DefinitionUnreadable("no such record")
        return self.definitions[arn]

    def resume(self, arn, token):
        self.calls.append(("resume", arn, token))
        if self.resume_error is not None:
            raise self.resume_error
        return arn

    def start(self, display_name, parameters, token, description, *, version=None, selective=None):
        self.calls.append(("start", display_name, parameters, token, description))
        self.started_with = {"version": version, "selective": selective}
        return f"arn:new/{len(self.calls)}"

    def version_ids(self):
        return self.versions

    versions: list[int] = [1, 2, 3]


def execution(arn: str, status: str, display: str = DISPLAY, **more) -> dict:
    return {"PipelineExecutionArn": arn, "PipelineExecutionStatus": status, "PipelineExecutionDisplayName": display,
            **more}


def decide(backend, caplog, **kwargs):
    caplog.set_level(logging.INFO)
    decision = start_or_reattach(backend, display_name=DISPLAY, inputs=INPUTS, definition=DEFINITION,
                                 parameters={"P": "1"}, quality_gate_steps=("Gate",),
                                 log=logging.getLogger("policy"), **kwargs)
    return decision, caplog.text


def test_the_first_run_of_a_date_starts_with_the_generation_zero_token(caplog):
    backend = Memory()
    decision, text = decide(backend, caplog)
    assert (decision.action, decision.status, decision.ran_now) == ("started", "Executing", True)
    kind, display, parameters, token, description = backend.calls[0]
    assert (kind, display, parameters, token) == ("start", DISPLAY, {"P": "1"}, client_request_token(DISPLAY, 0))
    assert description == INPUTS.description()
    assert f"no execution for ds=2026-11-01 yet; inputs: {INPUTS.summary()}" in text


@pytest.mark.parametrize("status", ["Executing", "Stopping", "Succeeded"])
def test_a_running_or_succeeded_execution_is_reattached(caplog, status):
    backend = Memory(execution("arn:1", status))
    decision, text = decide(backend, caplog)
    assert (decision.action, decision.arn, decision.status, decision.ran_now) == ("reattached", "arn:1", status, False)
    assert backend.calls == []
    assert f"Re-attaching to {status} execution arn:1: same inputs" in text


def test_a_failure_only_at_the_quality_gate_is_reattached_not_resumed(caplog):
    backend = Memory(execution("arn:1", "Failed"), definitions={"arn:1": DEFINITION},
                     steps={"arn:1": [{"StepName": "Gate", "StepStatus": "Failed", "FailureReason": "mse too high"}]})
    decision, text = decide(backend, caplog)
    assert (decision.action, decision.status) == ("reattached", "Failed")
    assert backend.calls == []
    assert "it failed only at the pipeline's quality gate (Gate: mse too high)" in text


def test_a_failed_execution_with_the_same_definition_is_resumed_once_per_ended_attempt(caplog):
    failed = execution("arn:1", "Failed", FailureReason="step B failed", LastModifiedTime="t1")
    backend = Memory(failed, definitions={"arn:1": DEFINITION},
                     steps={"arn:1": [{"StepName": "A", "StepStatus": "Succeeded"},
                                      {"StepName": "B", "StepStatus": "Failed"}]})
    decision, text = decide(backend, caplog)
    assert (decision.action, decision.arn, decision.ran_now) == ("resumed", "arn:1", True)
    assert backend.calls == [("resume", "arn:1", client_request_token("arn:1#retry@t1", 0))]
    assert "Resuming execution arn:1 (definition unchanged; 1 steps succeeded): it ended Failed: step B failed" in text


def test_a_stopped_execution_whose_runner_died_says_so_when_resumed(caplog):
    died = execution("arn:1", "Stopped", FailureReason="the local runner (pid 7) is no longer running; interrupted")
    decision, text = decide(Memory(died, definitions={"arn:1": DEFINITION}), caplog)
    assert decision.action == "resumed"
    assert "(its runner died)" in text


def test_a_changed_definition_starts_anew_with_the_next_generation(caplog):
    backend = Memory(execution("arn:1", "Failed"), definitions={"arn:1": CHANGED})
    decision, text = decide(backend, caplog)
    assert decision.action == "started"
    assert backend.calls[0][3] == client_request_token(DISPLAY, 1)
    assert "Starting a new execution: definition changed since arn:1 (Failed)" in text
    assert "the last execution with the same inputs, arn:1, ended Failed" in text


def test_an_unreadable_definition_starts_anew(caplog):
    decision, text = decide(Memory(execution("arn:1", "Stopped")), caplog)
    assert decision.action == "started"
    assert "the definition arn:1 ran with cannot be read (no such record)" in text


def test_a_resume_lost_to_a_concurrent_one_reattaches(caplog):
    backend = Memory(execution("arn:1", "Failed"), definitions={"arn:1": DEFINITION},
                     resume_error=ResumeConflict("running"))
    decision, text = decide(backend, caplog)
    assert (decision.action, decision.status, decision.ran_now) == ("reattached", "Executing", False)
    assert "it is running again (resumed concurrently)" in text


def test_a_refused_resume_starts_anew(caplog):
    backend = Memory(execution("arn:1", "Failed"), definitions={"arn:1": DEFINITION},
                     resume_error=ResumeRefused("not retryable"))
    decision, text = decide(backend, caplog)
    assert decision.action == "started"
    assert "RetryPipelineExecution of arn:1 was refused (not retryable)" in text


def test_a_failure_that_ended_while_this_try_waited_is_adopted(caplog):
    backend = Memory(execution("arn:2", "Failed"), execution("arn:1", "Failed"), definitions={"arn:2": DEFINITION})
    decision, text = decide(backend, caplog, ended_before=frozenset({"arn:1"}))
    assert (decision.action, decision.arn) == ("adopted", "arn:2")
    assert backend.calls == []
    assert "Adopting execution arn:2, which a concurrent try or run with the same inputs owned" in text
    # the same failure seen before the wait is history: it is resumed instead
    decision, _ = decide(backend, caplog, ended_before=frozenset({"arn:1", "arn:2"}))
    assert decision.action == "resumed"


def test_a_new_start_names_the_input_that_changed_since_the_date_s_last_execution(caplog):
    before = ExecutionInputs(**{**INPUTS.__dict__, "parameters": {"P": "0"}})
    last = execution("arn:0", "Succeeded", display=before.display_name(),
                     PipelineExecutionDescription=before.description())
    decision, text = decide(Memory(last), caplog)
    assert decision.action == "started"
    assert "inputs changed since arn:0 (Succeeded): parameter P (0 -> 1)" in text


# ---- which version and which steps run -------------------------------------------------------------------
DATE_PREFIX = DISPLAY.rsplit("-", 1)[0]


def dated(arn: str, version: int | None, suffix: str) -> dict:
    return execution(arn, "Succeeded", display=f"{DATE_PREFIX}-{suffix}", PipelineVersionId=version)


@pytest.mark.parametrize(("wanted", "expected"), [
    ("latest", None), (None, None), ("None", None), ("", None),  # None: unpinned, the pipeline's latest
    ("first", 1), ("2", 2), (3, 3),
])
def test_the_version_a_run_starts(caplog, wanted, expected):
    # newest first: the date first ran with version 1, then with 2
    backend = Memory(dated("arn:b", 2, "bbbb"), dated("arn:a", 1, "aaaa"))
    caplog.set_level(logging.INFO)
    assert version_to_run(backend, wanted, dag_id="dag", ds="2026-11-01", log=logging.getLogger("policy")) == expected
    if wanted == "first":
        assert "pipeline_version=first: ds=2026-11-01 first ran with version 1; running it" in caplog.text


def test_first_on_a_date_that_never_ran_is_the_latest_and_a_missing_version_is_one_line(caplog):
    log = logging.getLogger("policy")
    assert version_to_run(Memory(), "first", dag_id="dag", ds="2026-11-01", log=log) == 3
    for wanted, message in (("7", "DAG param pipeline_version: pipeline version 7 does not exist (the latest is 3)"),
                            ("newest", "DAG param pipeline_version: pipeline_version must be 'latest', 'first' or a "
                                       "version number, not 'newest'")):
        with pytest.raises(ValueError) as raised:
            version_to_run(Memory(), wanted, dag_id="dag", ds="2026-11-01", log=log)
        assert str(raised.value) == message


def test_a_selection_from_the_dag_params(caplog):
    backend = Memory(dated("arn:new", 2, "bbbb"), dated("arn:old", 1, "aaaa"))
    log = logging.getLogger("policy")
    where = {"dag_id": "dag", "ds": "2026-11-01", "log": log}
    assert selection_to_run(backend, "null", "", **where) is None  # the rendered empty param: a full run
    assert selection_to_run(backend, '["Train", "Evaluate"]', "", **where) == {
        "SelectedSteps": [{"StepName": "Train"}, {"StepName": "Evaluate"}], "SourcePipelineExecutionArn": "arn:new"}
    assert selection_to_run(backend, ["Train"], "arn:old", **where)["SourcePipelineExecutionArn"] == "arn:old"
    with pytest.raises(ValueError, match="rerun_reference 'last': ds=2026-11-01 has no execution yet"):
        selection_to_run(Memory(), ["Train"], "last", **where)
    with pytest.raises(ValueError, match="rerun_reference is set but rerun_steps is empty"):
        selection_to_run(backend, None, "arn:old", **where)


def test_the_selection_is_an_input_a_selective_run_starts_with_its_config_and_version(caplog):
    selective = {"SelectedSteps": [{"StepName": "Train"}], "SourcePipelineExecutionArn": "arn:aws:x/execution/ref1"}
    selected = ExecutionInputs(**{**INPUTS.__dict__, "selection": {"steps": ["Train"],
                                                                   "reference": selective["SourcePipelineExecutionArn"]}})
    assert selected.display_name() != DISPLAY  # never re-attached to the full run of the same inputs
    assert selected.record()["selection"] == {"steps": ["Train"], "reference": "ref1"}
    assert "re-running Train on ref1" in selected.summary()
    backend = Memory(execution("arn:1", "Succeeded"))
    caplog.set_level(logging.INFO)
    decision = start_or_reattach(backend, display_name=selected.display_name(), inputs=selected, definition=DEFINITION,
                                 parameters={"P": "1"}, quality_gate_steps=(), log=logging.getLogger("policy"),
                                 version=1, selective=selective)
    assert decision.action == "started"
    assert backend.started_with == {"version": 1, "selective": selective}
