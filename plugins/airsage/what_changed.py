"""What a deploy would change, and what changed since an earlier run: for the log, XComs, the report and on-call.

Two questions, one module:

- **Before a deploy** (``upsert_pipeline``): :func:`preview` diffs the built definition against the one deployed
  now (SageMaker: DescribePipeline; local: the newest local pipeline version, :mod:`sm_pipeline.pipeline_versions`,
  else the newest local execution's) and plans the run against the pipeline's last Succeeded execution
  (:mod:`sm_pipeline.definition_diff`, :mod:`sm_pipeline.plan`).
- **Since the last good run** (``publish_report``, ``alert_on_call``, the approval task): the facts of a run live in
  one place, its pipeline execution: the definition it ran, its parameter values, and the inputs record its
  description carries (:mod:`airsage.execution_inputs`: the staged data's hashes). The last good run is the newest
  earlier logical date whose ``latest.json`` points at a report (its gate passed); its ``metrics.json`` names the
  execution. :func:`changes_since` compares two executions; :func:`changes_since_last_good_run` finds the earlier one.
"""

from __future__ import annotations

import json
from typing import Any

MAX_LINES = 40


# -- the facts of one execution -------------------------------------------------------------------------------
class ExecutionFacts:
    """Reads what an execution ran with, on either backend: ``reference(arn)`` (definition, parameters, steps), the
    inputs record of its description, the pipeline's last Succeeded execution."""

    def __init__(self, backend: str, *, aws_conn_id: str | None = "aws_default", local_root: str | None = None,
                 hook=None):
        self.backend = backend
        self.aws_conn_id = aws_conn_id
        self.local_root = local_root
        self._hook = hook  # a task's own SageMakerPipelineHook, else one on aws_conn_id when first needed

    @property
    def hook(self):
        """The SageMaker hook (the sagemaker backend)."""
        if self._hook is None:
            from airsage.hooks.sagemaker_pipeline import SageMakerPipelineHook

            self._hook = SageMakerPipelineHook(aws_conn_id=self.aws_conn_id)
        return self._hook

    def reference(self, arn: str):
        """The execution as :class:`sm_pipeline.plan.Reference`."""
        from sm_pipeline import change_sources

        if self.backend == "local":
            return change_sources.reference_local(self.local_root, arn)
        return change_sources.reference_api(self.hook.conn, arn)

    def inputs_record(self, arn: str) -> dict | None:
        """The inputs record (data hashes, definition hash, parameters) the execution's description carries."""
        from airsage.execution_inputs import record_from_description

        if self.backend == "local":
            from sm_pipeline.arns import execution_id_of
            from sm_pipeline.local.records import ExecutionRecords, LocalExecutionStore

            found = ExecutionRecords.with_execution_id(self.local_root, execution_id_of(arn))
            if not found:
                return None
            describe = LocalExecutionStore(self.local_root).describe(found[0].pipeline_name, found[0].execution_id)
        else:
            describe = self.hook.describe_pipeline_exec(arn)
        return record_from_description(describe.get("PipelineExecutionDescription"))

    def last_succeeded(self, pipeline_name: str) -> str | None:
        """The ARN of the pipeline's newest Succeeded execution, or None."""
        from sm_pipeline import change_sources

        if self.backend == "local":
            return change_sources.last_succeeded_local(self.local_root, pipeline_name)
        return change_sources.last_succeeded_api(self.hook.conn, pipeline_name)


# -- before a deploy ------------------------------------------------------------------------------------------
def deployed_definition(backend: str, pipeline_name: str, *, facts: ExecutionFacts) -> dict | None:
    """The definition deployed now, or None when the pipeline was never deployed."""
    if backend == "sagemaker":
        deployed = facts.hook.describe_pipeline_or_none(pipeline_name)
        return json.loads(deployed["PipelineDefinition"]) if deployed else None
    from sm_pipeline.pipeline_versions import PipelineVersions, local_versions_dir

    # the local backend's deployed definition is its newest version (every non-dry upsert adds one on a change)
    versions = PipelineVersions(local_versions_dir(facts.local_root, pipeline_name))
    latest = versions.latest_id()
    record = versions.get(latest) if latest is not None else None
    if record and record.get("PipelineDefinition"):
        try:
            return json.loads(record["PipelineDefinition"])
        except ValueError:
            pass
    from sm_pipeline.local.records import LocalExecutionStore

    records = LocalExecutionStore(facts.local_root)
    for describe in records.find(pipeline_name):  # deployed before versions were kept: the newest execution's
        try:
            return records.definition(pipeline_name, describe["PipelineExecutionId"])
        except (OSError, ValueError, KeyError):
            continue
    return None


def code_reader(store, code_objects=()):
    """``read_code`` for the diff: the new code objects from their local files, the rest from the store."""
    from pathlib import Path

    from airsage.hooks.artifact_store import ArtifactNotFound

    local = {obj.s3_uri: obj.path for obj in code_objects}

    def read(uri: str) -> bytes | None:
        try:
            return Path(local[uri]).read_bytes() if uri in local else store.read_bytes(uri)
        except (OSError, ArtifactNotFound, ValueError):
            return None

    return read


def preview(definition: dict, old: dict | None, *, facts: ExecutionFacts, pipeline_name: str,
            parameters: dict[str, Any] | None, read_code=None) -> tuple[dict, dict]:
    """``(diff, plan)`` XComs of a deploy: ``{"summary", "changed", "detail"}`` and the plan's JSON plus ``summary``.

    A plan that cannot be made (a parameter value that does not fit, an unreadable reference) is
    ``{"error": one line, "summary": [...]}``: the deploy goes on, and the start says what is wrong.
    """
    from sm_pipeline.definition_diff import diff_definitions
    from sm_pipeline.errors import InvalidInput
    from sm_pipeline.plan import plan_definition

    if old is None:
        diff_out = {"summary": [f"pipeline {pipeline_name} is not deployed yet: everything is new"], "changed": True,
                    "detail": None}
    else:
        diff = diff_definitions(old, definition, read_code=read_code)
        diff_out = {"summary": diff.summary_lines(), "changed": not diff.is_empty, "detail": diff.to_json()}
    try:
        arn = facts.last_succeeded(pipeline_name) if old is not None else None
        reference = facts.reference(arn) if arn else None
        plan = plan_definition(definition, reference, parameters=parameters)
        plan_out = {**plan.to_json(), "summary": plan.summary_lines()}
    except InvalidInput as err:
        plan_out = {"error": str(err), "summary": [f"no plan: {err}"]}
    return diff_out, plan_out


# -- since an earlier run -------------------------------------------------------------------------------------
def last_good_run(store, reports_base: str, ds: str) -> dict | None:
    """The newest run before ``ds`` whose gate passed: ``{"ds", "run_id", "execution_arn", "report_uri"}``, or None.

    ``reports_base``: ``s3://{bucket}/{prefix}/reports``. Reads each earlier date's ``latest.json`` (newest first)
    and the ``metrics.json`` of a report it points at; a date whose latest outcome is an alert is passed over.
    """
    from airsage.hooks.artifact_store import ArtifactNotFound
    from airsage.operators.report_outcome import reported_dates

    base = reports_base.rstrip("/")
    for day in reversed([d for d in reported_dates(store, base) if d < ds]):
        try:
            pointer = json.loads(store.read_bytes(f"{base}/ds={day}/latest.json"))
            if pointer.get("kind") != "report":
                continue
            folder = str(pointer["uri"]).rsplit("/", 1)[0]
            metrics = json.loads(store.read_bytes(f"{folder}/metrics.json"))
        except (ArtifactNotFound, ValueError, KeyError, TypeError, AttributeError):
            continue
        if metrics.get("execution_arn"):
            return {"ds": day, "run_id": pointer.get("run_id"), "execution_arn": metrics["execution_arn"],
                    "report_uri": pointer["uri"]}
    return None


def changes_since(backend: str, earlier_execution_arn: str, later_execution_arn: str, *,
                  aws_conn_id: str | None = "aws_default", local_root: str | None = None,
                  facts: ExecutionFacts | None = None) -> dict[str, Any]:
    """What changed from one execution to a later one: the definition diff, parameter values, input data hashes.

    ``{"since": earlier ARN, "changed": bool, "summary": [lines], "definition": <diff to_json()>,
    "parameters": {name: {"old", "new"}}, "data": {name: {"old", "new"}}}``. For the report, on-call and the
    approval task (``airsage.what_changed.changes_since``). Raises InvalidInput (one line) when either execution
    cannot be read.
    """
    from sm_pipeline.definition_diff import diff_definitions

    facts = facts or ExecutionFacts(backend, aws_conn_id=aws_conn_id, local_root=local_root)
    before, after = facts.reference(earlier_execution_arn), facts.reference(later_execution_arn)
    diff = diff_definitions(before.definition, after.definition)
    parameters = {name: {"old": before.parameters.get(name), "new": after.parameters.get(name)}
                  for name in sorted(set(before.parameters) | set(after.parameters))
                  if before.parameters.get(name) != after.parameters.get(name)}
    old_inputs = facts.inputs_record(earlier_execution_arn) or {}
    new_inputs = facts.inputs_record(later_execution_arn) or {}
    names = sorted((set(old_inputs) | set(new_inputs)) - {"definition", "parameters"})
    data = {name: {"old": old_inputs.get(name), "new": new_inputs.get(name)} for name in names
            if old_inputs.get(name) != new_inputs.get(name)}
    lines = [f"definition: {diff.headline()}", *diff.summary_lines()[1:]]
    lines += [f"parameter {name}: {v['old']} -> {v['new']}" for name, v in parameters.items()]
    lines += [f"{name} (sha256): {v['old'] or 'not recorded'} -> {v['new'] or 'not recorded'}"
              for name, v in data.items()]
    same = [f"{name} {new_inputs[name]}" for name in names if name not in data and new_inputs.get(name)]
    if same:
        lines.append(f"unchanged (sha256): {', '.join(same)}")
    if not old_inputs or not new_inputs:
        lines.append("staged data: not recorded for " + (earlier_execution_arn if not old_inputs else later_execution_arn))
    if len(lines) > MAX_LINES:
        lines = [*lines[:MAX_LINES - 1], f"... and {len(lines) - MAX_LINES + 1} more line(s)"]
    return {"since": earlier_execution_arn, "changed": bool(not diff.is_empty or parameters or data),
            "summary": lines, "definition": diff.to_json(), "parameters": parameters, "data": data}


def changes_since_last_good_run(backend: str, store, reports_base: str, ds: str, execution_arn: str | None, *,
                                aws_conn_id: str | None = "aws_default", local_root: str | None = None,
                                log=None) -> dict[str, Any]:
    """:func:`changes_since` the last good run before ``ds`` (its ``"last_good_run"`` added), or why there is none.

    Never raises: a report or a notification must not fail on it; a failure is ``{"error": line, "summary": [...]}``.
    """
    from sm_pipeline.errors import InvalidInput

    try:
        good = last_good_run(store, reports_base, ds)
        if good is None:
            return {"last_good_run": None, "changed": None,
                    "summary": [f"no earlier logical date than {ds} passed the gate: nothing to compare with"]}
        if not execution_arn:
            return {"last_good_run": good, "changed": None,
                    "summary": [f"last good run: {good['ds']} ({good['execution_arn']}); this run has no execution"]}
        if good["execution_arn"] == execution_arn:
            return {"last_good_run": good, "changed": False,
                    "summary": [f"last good run: {good['ds']}, the same execution ({execution_arn})"]}
        found = changes_since(backend, good["execution_arn"], execution_arn, aws_conn_id=aws_conn_id,
                              local_root=local_root)
        found["summary"] = [f"since the last good run {good['ds']} ({good['execution_arn']}):", *found["summary"]]
        return {"last_good_run": good, **found}
    except (InvalidInput, OSError, ValueError) as err:
        if log is not None:
            log.warning("What changed since the last good run: not known: %s", err)
        return {"error": str(err), "changed": None, "summary": [f"what changed since the last good run: not known: {err}"]}
    except Exception as err:  # noqa: BLE001 - an AWS error must not fail the report or hide an alert
        if log is not None:
            log.warning("What changed since the last good run: not known: %s", err)
        return {"error": str(err), "changed": None,
                "summary": [f"what changed since the last good run: not known: {type(err).__name__}: {err}"]}
