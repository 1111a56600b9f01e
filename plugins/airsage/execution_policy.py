"""The one execution policy of both backends: re-attach to, resume or start a date's execution.

The rule (README "Backfills"), decided here once for ``start_execution`` (SageMaker) and
``run_local`` (local), over a small per-backend protocol (:class:`ExecutionBackend`):

1. No execution with this display name (date + inputs fingerprint): **start** one.
2. The newest one is Executing, Stopping or Succeeded: **re-attach** (a retry, a second manual run,
   a re-created backfill with unchanged inputs: no new execution, no new model version).
3. It Failed only at the pipeline's own quality-gate steps: **re-attach** (running it again would
   fail the same way; the DAG's gate alerts on-call).
4. It ended Failed while this try waited for it (a concurrent try or run owned it): **adopt** it,
   as a wait on it would have reported it.
5. It Failed or was Stopped and ran the definition that is to run now: **resume** it in place
   (RetryPipelineExecution; the runner's resume): its succeeded steps are not run again. A resume
   that loses to a concurrent one re-attaches; one the backend refuses starts afresh.
6. Otherwise (its definition changed, or cannot be read): **start** a new one; the ClientRequestToken
   carries the number of earlier Failed/Stopped executions, so a start whose answer was lost is not
   repeated, while a deliberate fresh start gets a new token.

Every decision is one INFO line saying which case happened and why.

What runs is decided here too, before the rule above, for both backends alike:

- **Which pipeline version** (DAG param ``pipeline_version``, :func:`version_to_run`): ``latest`` (the
  default: the version ``upsert_pipeline`` just deployed), ``first`` (the version this logical date's first
  execution ran with, read from its DescribePipelineExecution ``PipelineVersionId``, the durable record; the
  latest when the date never ran) or a version number. A pinned version runs that version's definition, so
  the inputs fingerprint (the definition's sha256) is that version's: a backfill of a date with ``first``
  re-attaches to the date's first execution when nothing else changed.
- **Which steps** (DAG params ``rerun_steps`` and ``rerun_reference``, :func:`selection_to_run`): a
  selective execution (SelectiveExecutionConfig) of the named steps on a reference execution's outputs
  (``last``, the default: this date's newest execution; or an execution ARN). The selection is one of the
  inputs (``ExecutionInputs.selection``): the same selective re-run re-attaches, a different one is a new
  execution, and a plain run never re-attaches to a selective one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from airsage.execution_inputs import ExecutionInputs, changed_inputs, record_from_description
from airsage.execution_result import failed_steps, quality_gate_failure
from airsage.naming import client_request_token, date_display_prefix
from airsage.pipeline_source import ran_the_same_definition

RUNNING = frozenset({"Executing", "Stopping"})
REATTACHABLE = RUNNING | {"Succeeded"}
RESUMABLE = frozenset({"Failed", "Stopped"})
TERMINAL = frozenset({"Succeeded", "Failed", "Stopped"})
# what a local execution whose runner died says (sm_pipeline.local.records)
_RUNNER_DIED = "no longer running"


class DefinitionUnreadable(Exception):
    """The definition an execution ran with cannot be read; a new execution starts instead of a resume."""


class ResumeConflict(Exception):
    """The execution is running again: a concurrent resume of it won."""


class ResumeRefused(Exception):
    """The backend will not resume this execution; a new one starts instead."""


class ExecutionBackend(Protocol):
    """What the policy needs from a backend (SageMaker through the hook, or the local records and runner).

    Executions are dicts shaped like DescribePipelineExecution or its list summary: at least
    ``PipelineExecutionArn`` and ``PipelineExecutionStatus``.
    """

    def find(self, display_name: str) -> list[dict]:
        """The executions with this display name, newest first."""

    def list_by_prefix(self, display_prefix: str) -> list[dict]:
        """The executions whose display name starts with ``display_prefix``, newest first."""

    def describe(self, arn: str) -> dict:
        """DescribePipelineExecution of ``arn``."""

    def steps(self, arn: str) -> list[dict] | None:
        """ListPipelineExecutionSteps of ``arn`` (None when the endpoint cannot list them)."""

    def definition_of(self, arn: str) -> dict:
        """The definition ``arn`` ran with; DefinitionUnreadable when it cannot be read."""

    def resume(self, arn: str, token: str) -> str:
        """Resume a Failed/Stopped execution in place; its ARN. ResumeConflict / ResumeRefused."""

    def start(self, display_name: str, parameters: dict[str, str], token: str, description: str, *,
              version: int | None = None, selective: dict | None = None) -> str:
        """Start a new execution (of pipeline version ``version``, None: the latest; ``selective``: a
        SelectiveExecutionConfig); its ARN."""

    def version_ids(self) -> list[int]:
        """Every version id of the pipeline, ascending (empty for a backend that keeps none)."""

    def version_definition(self, version: int) -> dict:
        """The definition of one version of the pipeline."""


@dataclass(frozen=True)
class Decision:
    """What the policy did: ``action`` is ``reattached``, ``adopted``, ``resumed`` or ``started``.

    ``status`` is the execution's status as the decision saw it (``Executing`` after a start or resume).
    """

    action: str
    arn: str
    status: str
    execution: dict | None = None

    @property
    def ran_now(self) -> bool:
        """True when this try started or resumed the execution (and so may stop it when killed)."""
        return self.action in ("started", "resumed")


def start_or_reattach(backend: ExecutionBackend, *, display_name: str, inputs: ExecutionInputs, definition: dict,
                      parameters: dict[str, str], quality_gate_steps: tuple[str, ...] | list[str], log,
                      ended_before: frozenset[str] | None = None, version: int | None = None,
                      selective: dict | None = None) -> Decision:
    """Apply the policy for this run's execution; the Decision says what happened.

    ``ended_before``: the ARNs of this display name's executions that had already ended when this try
    first looked, for a backend that waits for a concurrent owner before deciding (local claims);
    None for one that does not wait (SageMaker: a running execution is re-attached and waited for).
    """
    existing = backend.find(display_name)
    newest = existing[0] if existing else None
    if newest is not None:
        arn, status = newest["PipelineExecutionArn"], newest["PipelineExecutionStatus"]
        if status in REATTACHABLE:
            log.info("Re-attaching to %s execution %s: same inputs (%s)", status, arn, inputs.summary())
            return Decision("reattached", arn, status, newest)
        gate = quality_gate_failure(failed_steps(backend.steps(arn)), quality_gate_steps) if status == "Failed" else ""
        if gate:
            log.info("Re-attaching to Failed execution %s: it failed only at the pipeline's quality gate (%s); "
                     "running it again would fail the same way. Same inputs (%s)", arn, gate, inputs.summary())
            return Decision("reattached", arn, status, newest)
        if ended_before is not None and arn not in ended_before and status == "Failed":
            log.info("Adopting execution %s, which a concurrent try or run with the same inputs owned: it ended %s",
                     arn, status)
            return Decision("adopted", arn, status, newest)
        if status in RESUMABLE:
            resumed = _resume(backend, newest, definition, log)
            if resumed is not None:
                return resumed
    generation = sum(1 for e in existing if e["PipelineExecutionStatus"] in RESUMABLE)
    log.info("Starting a new execution (display name %s): %s", display_name, _why_new(backend, inputs, newest))
    arn = backend.start(display_name, parameters, client_request_token(display_name, generation),
                        inputs.description(), version=version, selective=selective)
    log.info("Started execution %s (attempt generation %d)", arn, generation)
    return Decision("started", arn, "Executing")


def _resume(backend: ExecutionBackend, newest: dict, definition: dict, log) -> Decision | None:
    """Resume ``newest`` when it ran ``definition``; None (and the line saying why) when a new one must start."""
    arn, status = newest["PipelineExecutionArn"], newest["PipelineExecutionStatus"]
    try:
        ran = backend.definition_of(arn)
    except DefinitionUnreadable as err:
        log.info("Starting a new execution: the definition %s ran with cannot be read (%s)", arn, err)
        return None
    if not ran_the_same_definition(log, arn, status, ran, definition):
        return None
    steps = backend.steps(arn)
    succeeded = sum(1 for s in steps or [] if s.get("StepStatus") == "Succeeded")
    describe = backend.describe(arn)
    # one token per ended attempt: two clears racing send the same token and resume it once
    token = client_request_token(f"{arn}#retry@{describe.get('LastModifiedTime')}", 0)
    reason = describe.get("FailureReason") or "no reason given"
    try:
        resumed = backend.resume(arn, token)
    except ResumeConflict:
        log.info("Re-attaching to execution %s: it is running again (resumed concurrently)", arn)
        return Decision("reattached", arn, "Executing", describe)
    except ResumeRefused as err:
        log.warning("Starting a new execution: RetryPipelineExecution of %s was refused (%s)", arn, err)
        return None
    log.info("Resuming execution %s (definition unchanged; %s steps succeeded): it ended %s: %s%s", arn,
             succeeded if steps is not None else "unknown", status, reason,
             " (its runner died)" if _RUNNER_DIED in reason else "")
    return Decision("resumed", resumed, "Executing", describe)


def _why_new(backend: ExecutionBackend, inputs: ExecutionInputs, newest: dict | None) -> str:
    """Why a new execution starts: what ended, or which input changed since the date's last execution."""
    if newest is not None:
        return (f"the last execution with the same inputs, {newest['PipelineExecutionArn']}, ended "
                f"{newest['PipelineExecutionStatus']}; inputs: {inputs.summary()}")
    same_date = backend.list_by_prefix(date_display_prefix(inputs.dag_id, inputs.ds))
    if not same_date:
        return f"no execution for ds={inputs.ds} yet; inputs: {inputs.summary()}"
    last = same_date[0]
    try:
        description = backend.describe(last["PipelineExecutionArn"]).get("PipelineExecutionDescription")
    except Exception:  # noqa: BLE001 - the explanation is for the log; the start does not depend on it
        description = None
    changes = changed_inputs(record_from_description(description), inputs.record())
    what = "definition" if "definition" in changes.split(", ") else "inputs"
    return f"{what} changed since {last['PipelineExecutionArn']} ({last.get('PipelineExecutionStatus')}): {changes}"



def version_to_run(backend: ExecutionBackend, wanted, *, dag_id: str, ds: str, log) -> int | None:
    """The pipeline version this run starts (DAG param ``pipeline_version``); None: the latest, unpinned.

    ValueError (one line) for a version that does not exist or a value that names none.
    """
    from sm_pipeline.pipeline_versions import resolve_version

    text = str(wanted).strip().lower() if wanted is not None else ""
    if text in ("", "latest", "none"):
        return None
    ids = backend.version_ids()
    first = first_version_of_date(backend, dag_id, ds) if text == "first" else None
    version = resolve_version(wanted, latest=ids[-1] if ids else None, first_ran=first, exists=ids.__contains__,
                              where="DAG param pipeline_version")
    if text == "first":
        log.info("pipeline_version=first: ds=%s %s", ds, f"first ran with version {first}; running it" if first
                 else f"has not run yet; running the latest version, {version}")
    else:
        log.info("pipeline_version=%s: running version %d (the latest is %d)", wanted, version, ids[-1])
    return version


def first_version_of_date(backend: ExecutionBackend, dag_id: str, ds: str) -> int | None:
    """The PipelineVersionId the first execution of this logical date ran with (None: the date never ran)."""
    executions = backend.list_by_prefix(date_display_prefix(dag_id, ds))
    for execution in reversed(executions):  # oldest first
        version = backend.describe(execution["PipelineExecutionArn"]).get("PipelineVersionId")
        if version is not None:
            return int(version)
    return None


def selection_to_run(backend: ExecutionBackend, steps, reference, *, dag_id: str, ds: str, log) -> dict | None:
    """The SelectiveExecutionConfig of DAG params ``rerun_steps`` / ``rerun_reference``; None for a full run.

    ``steps``: step names (a list, or its JSON text); ``reference``: an execution ARN, or ``last`` / empty for
    this date's newest execution. ValueError (one line) when they name nothing usable.
    """
    import json

    from sm_pipeline.local.selective import selection_config

    if isinstance(steps, str):
        text = steps.strip()
        try:
            steps = (json.loads(text) if text.startswith("[") else [] if text in ("", "null", "None")
                     else [s.strip() for s in text.split(",")])
        except json.JSONDecodeError as err:
            raise ValueError(f"DAG param rerun_steps: not a list of step names ({err.msg})") from None
    steps = [s for s in (steps or []) if s not in (None, "", "None")]
    if not all(isinstance(s, str) for s in steps):
        raise ValueError(f"DAG param rerun_steps: expected step names, got {steps!r}")
    if not steps:
        if reference not in (None, "", "None", "last"):
            raise ValueError("DAG param rerun_reference is set but rerun_steps is empty: name the steps to re-run")
        return None
    if reference in (None, "", "None", "last"):
        executions = backend.list_by_prefix(date_display_prefix(dag_id, ds))
        if not executions:
            raise ValueError(f"DAG param rerun_reference 'last': ds={ds} has no execution yet to take the "
                             "outputs of the steps that are not re-run from")
        reference = executions[0]["PipelineExecutionArn"]
    log.info("Selective re-run of %s on the outputs of %s", ", ".join(steps), reference)
    return selection_config(steps, reference)
