"""The DAG factory: one team pipeline, one DAG per backend, the same task shape on both.

A team brings its pipeline and says what its quality gate reads::

    from airsage.dag_factory import CsvPartition, PipelineSpec, build_pipeline_dag
    from airsage.quality_gate import QualityGate

    CHURN = PipelineSpec(
        name="churn",
        source="churn.pipeline:build_pipeline",        # an SDK v3 Pipeline builder, or a definition .json file
        gate=QualityGate(step="EvaluateChurn", property_file="Evaluation", json_path="metrics.auc.value",
                         metric="auc", comparison=">=", threshold=0.8, threshold_param="auc_threshold",
                         pipeline_parameter="AucThreshold", fail_steps=("AucTooLow",)),
        stage=CsvPartition(default_source="/data/churn/daily.csv", input_parameter="InputData"),
    )
    churn = build_pipeline_dag("churn", CHURN, backend="sagemaker")

The DAG: ``stage_input`` → ``upsert_pipeline`` → ``start_execution`` → ``wait_for_execution``
(``run_local`` on the local backend) → ``read_metrics`` → ``gate`` → ``publish_report`` |
``alert_on_call``. Everything heavy is imported inside the tasks, so parsing a DAG file that uses
the factory costs little more than parsing a one-task DAG; the configuration is checked when the
DAG file is parsed, and a bad one is one line naming the field (an import error in the UI), not a
failed run: the gate's fields always; with a definition JSON file, the gate against the definition
(the step exists, declares the PropertyFile, the Fail steps are Fail steps, the pipeline parameter is
declared); with ``example_report``, the JSON path against it. A builder function is not called at
parse time (building imports the SageMaker SDK, ~5 s): its definition is checked the same way by
``upsert_pipeline`` right after the build, before anything is deployed, and by
``airsage.testing.check_pipeline_dag`` in a DAG test.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airsage.quality_gate import GateConfigError, QualityGate

if TYPE_CHECKING:
    from airflow.sdk import DAG, BaseOperator

BACKENDS = ("sagemaker", "local")
# Templates rendered per task run: DAG params win, then Airflow Variables, then defaults.
AWS_CONN_ID = "{{ var.value.get('airsage_aws_conn_id', 'aws_default') }}"
# The run's date: its logical date, else (an API/CLI trigger without one) the day it was queued for;
# the same rule as airsage.naming.run_ds in the operators.
RUN_DS = "{{ (dag_run.logical_date or dag_run.run_after) | ds }}"


class DagConfigError(ValueError):
    """A DAG factory argument is wrong; the message is one line naming it and the problem."""


@dataclass(frozen=True)
class StageContext:
    """What a stage step is built with: where the date's data goes, and the storage arguments."""

    backend: str
    root_uri: str  # s3://{bucket}/{prefix} (templated)
    run_ds: str  # the run's date (template)
    store_args: dict[str, Any]  # backend, aws_conn_id, local_root for ArtifactStore-based operators


@dataclass(frozen=True)
class CsvPartition:
    """The default stage step: copy a labelled CSV to the date's partition (and its batch rows without the label).

    :param default_source: the CSV when the ``source`` DAG param is empty (a path or ``s3://`` URI).
    :param input_parameter: the pipeline parameter that receives the staged CSV's URI.
    :param label_column: the label column; with ``batch_parameter`` the batch rows leave it out.
    :param batch_parameter: the pipeline parameter that receives the batch rows' URI, or None for none.
    :param input_file / batch_file: the object names inside ``input/ds=<ds>/`` and ``batch/ds=<ds>/``.
    """

    default_source: str
    input_parameter: str = "InputData"
    label_column: str | None = None
    batch_parameter: str | None = None
    input_file: str = "input.csv"
    batch_file: str = "batch.csv"

    def __post_init__(self) -> None:
        if self.batch_parameter and not self.label_column:
            raise DagConfigError("CsvPartition: batch_parameter needs label_column (the column batch rows leave out)")
        for what in ("input_file", "batch_file"):
            name = getattr(self, what)
            if not name or "/" in name or name in (".", ".."):
                raise DagConfigError(f"CsvPartition {what} {name!r}: expected a file name without '/'")

    def params(self) -> dict[str, Any]:
        """The DAG params this stage step adds to the trigger form."""
        from airflow.sdk import Param

        return {"source": Param(None, type=["null", "string"], title="Source CSV",
                                description=f"A labelled CSV: a local path or s3:// URI. Empty: {self.default_source}.")}

    def operator(self, ctx: StageContext) -> BaseOperator:
        """The ``stage_input`` task."""
        from airsage.operators.stage_input import StageInputOperator

        default = str(self.default_source).replace("'", "\\'")
        batch = self.batch_parameter is not None
        return StageInputOperator(
            task_id="stage_input",
            doc_md="Copies the source CSV into the date's partition"
                   + (" and writes its rows without the label column for the batch transform" if batch else "")
                   + "; no-op when unchanged.",
            source=f"{{{{ params.source or '{default}' }}}}",
            input_uri=f"{ctx.root_uri}/input/ds={ctx.run_ds}/{self.input_file}",
            input_parameter=self.input_parameter,
            batch_uri=f"{ctx.root_uri}/batch/ds={ctx.run_ds}/{self.batch_file}" if batch else None,
            batch_parameter=self.batch_parameter,
            label_column=self.label_column,
            **ctx.store_args,
        )

    def pipeline_parameters(self) -> tuple[str, ...]:
        """The pipeline parameters this step fills."""
        return tuple(p for p in (self.input_parameter, self.batch_parameter) if p)


@dataclass(frozen=True)
class PipelineSpec:
    """A team's pipeline as the DAG factory deploys, runs and judges it.

    :param name: a short name (DAG docs and tags; the default S3 prefix).
    :param source: what ``upsert_pipeline`` deploys: a definition JSON file (a path ending in ``.json``;
        relative paths are relative to ``base_dir``), or ``"package.module:function"`` returning an SDK v3
        ``Pipeline``, a definition (dict or JSON text) or an ``airsage.pipeline_source.PipelineSource``;
        called with the config overrides (bucket, prefix, role_arn, region) in the task, never at parse time.
    :param gate: the quality gate (``airsage.quality_gate.QualityGate``).
    :param stage: the stage step: a :class:`CsvPartition`, or any object with ``operator(StageContext)`` returning
        the ``stage_input`` task (whose XCom follows the stage contract of ``airsage.operators.stage_input``)
        and ``params()`` returning the DAG params it adds.
    :param pipeline_name: the SageMaker pipeline name (needed with a definition file; a builder names its own).
    :param predictions_file: a CSV (``actual``, ``predicted``) beside the gate's PropertyFile for the report's plots.
    :param example_report: an evaluation report the gate's step writes (a test fixture): the gate's JSON path is
        checked against it at parse time.
    :param base_dir: where relative paths point (default: the current directory; DAG files pass their folder).
    """

    name: str
    source: str | Callable[..., Any]
    gate: QualityGate
    stage: Any
    pipeline_name: str | None = None
    predictions_file: str | None = None
    example_report: str | None = None
    default_prefix: str | None = None
    description: str = ""
    base_dir: str | None = None
    extra_params: dict[str, Any] = field(default_factory=dict)

    def resolved(self, path: str | Path) -> Path:
        """``path`` relative to ``base_dir``."""
        path = Path(path)
        return path if path.is_absolute() else Path(self.base_dir or os.getcwd()) / path

    @property
    def definition_file(self) -> Path | None:
        """The definition JSON file when ``source`` is one."""
        if isinstance(self.source, str | Path) and str(self.source).endswith(".json"):
            return self.resolved(self.source)
        return None

    def check(self) -> None:
        """Everything that can be checked without building the pipeline; DagConfigError (one line) otherwise."""
        if not isinstance(self.gate, QualityGate):
            raise DagConfigError(f"pipeline {self.name!r}: gate must be an airsage.quality_gate.QualityGate")
        if not (hasattr(self.stage, "operator") and hasattr(self.stage, "params")):
            raise DagConfigError(f"pipeline {self.name!r}: stage must have operator(ctx) and params() "
                                 "(see airsage.dag_factory.CsvPartition)")
        definition_file = self.definition_file
        if definition_file is not None:
            if not self.pipeline_name:
                raise DagConfigError(f"pipeline {self.name!r}: a definition file needs pipeline_name")
            definition = _read_json(definition_file, "definition file")
            if not isinstance(definition, dict) or not isinstance(definition.get("Steps"), list):
                raise DagConfigError(f"definition file {definition_file}: not a pipeline definition (no Steps list)")
            problems = self.gate.definition_problems(definition)
            if problems:
                raise DagConfigError(f"pipeline {self.name!r} ({definition_file}): {problems[0]}"
                                     + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
        elif callable(self.source) or (isinstance(self.source, str) and ":" in self.source):
            pass  # built in the task; checked there before anything is deployed
        else:
            raise DagConfigError(f"pipeline {self.name!r}: source {self.source!r} is neither a definition .json file "
                                 "nor 'package.module:function'")
        if self.example_report is not None:
            path = self.resolved(self.example_report)
            problem = self.gate.report_problem(_read_json(path, "example_report"), str(path))
            if problem:
                raise DagConfigError(f"pipeline {self.name!r}: {problem}")
        if self.gate.pipeline_parameter and self.gate.pipeline_parameter in _stage_parameters(self.stage):
            raise DagConfigError(f"pipeline {self.name!r}: the gate's pipeline_parameter "
                                 f"{self.gate.pipeline_parameter!r} is also filled by the stage step")


def _stage_parameters(stage: Any) -> tuple[str, ...]:
    filled = getattr(stage, "pipeline_parameters", None)
    return tuple(filled()) if callable(filled) else ()


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DagConfigError(f"{what} {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as err:
        raise DagConfigError(f"{what} {path} cannot be read: {err}") from None
    except json.JSONDecodeError as err:
        raise DagConfigError(f"{what} {path} is not valid JSON: {err.msg} at line {err.lineno} "
                             f"column {err.colno}") from None


def poll_interval_from_environment(raw: str | None = None) -> float:
    """Seconds between wait_for_execution's DescribePipelineExecution polls, from AIRSAGE_POLL_INTERVAL.

    Read at parse time (env, not a Variable). A minute suits SageMaker; the emulated service
    (tests, ``make demo BACKEND=sagemaker``) finishes an execution in seconds.
    """
    raw = os.environ.get("AIRSAGE_POLL_INTERVAL") if raw is None else raw
    try:
        value = float(raw or 60)
    except ValueError:
        value = -1.0
    if not 0 < value <= 3600:
        raise DagConfigError(f"environment variable AIRSAGE_POLL_INTERVAL={raw!r}: expected seconds in (0, 3600]")
    return value


DAG_DOC = """
### {name} pipeline ({backend})

{description}

`stage_input` → `upsert_pipeline` → {run} → `read_metrics` → `gate` → `publish_report` → `approve_model` |
`alert_on_call`

* **Quality gate**: `{metric}` from the `{property_file}` PropertyFile of step `{step}` (`{json_path}`) must be
  `{comparison}` the `{threshold_param}` param (default {threshold}), else `alert_on_call` notifies on-call and
  fails the run.
* **Idempotent per date and inputs.** A run for a logical date whose inputs — the staged data's sha256, the
  pipeline definition's sha256 and the pipeline parameter values — equal those of a Succeeded execution
  re-attaches to that execution and registers no new model version; a changed input starts a new execution.
  The task log says which happened and why ("Re-attaching to … : same inputs (…)" / "Starting a new
  execution …: inputs changed since …").
* **Clearing a failed run resumes it** (definition unchanged; succeeded steps are not run again); one that
  failed only at the pipeline's quality gate is re-attached.
* **Pinned versions**: param `pipeline_version` = `latest` (default), `first` (the pipeline version this date
  first ran with: a backfill re-runs a date as it first ran) or a version number.
* **Selective re-runs**: param `rerun_steps` (step names) re-runs only those steps on the outputs of
  `rerun_reference` (an execution ARN; empty: this date's newest execution); the other steps do not run.
* **Stopping**: marking the start/wait task (or `run_local`) failed, or clearing it while it runs, stops the
  execution (it ends Stopped); a deferral or a triggerer restart does not.
* **Schedule** `{schedule}`, catchup off: earlier dates come from a backfill. DAGs start paused.
* **Approval**: `approve_model` asks (Required Actions) whether the registered model version is approved and
  writes the answer to the model registry; a decision made in the registry while it waits ends it. Backfill
  runs skip it (the version stays PendingManualApproval) unless the `approve_backfills` param is on.
* Every DAG run writes `reports/ds=YYYY-MM-DD/run=<run id>/` (report.html, metrics.json, or ALERT.json);
  `reports/ds=YYYY-MM-DD/latest.json` points at the newest.
* **Dry run**: the `dry_run` param stages the data, logs what the deploy would change (the definition diff)
  and what the run would re-run (the cache-impact plan), then ends: nothing is updated or started, the tasks
  from the run on are skipped, and `publish_report` writes the dry run's page (`latest.json` is not moved).
  Every report and on-call alert also says what changed since the last good run.
* Variables (optional): `airsage_on_call`, `airsage_approval`, `airsage_aws_conn_id`, `airsage_bucket`, `airsage_prefix`,
  `airsage_role_arn`, `airsage_local_root`.
"""


def build_pipeline_dag(dag_id: str, spec: PipelineSpec, *, backend: str, schedule: str | None = "@daily",
                       start_date: datetime = datetime(2026, 11, 1), default_bucket: str = "airsage-artifacts",
                       default_local_root: str | None = None, poll_interval: float | None = None,
                       max_active_runs: int = 3, tags: tuple[str, ...] = (), owner: str = "ml-platform",
                       retries: int = 2) -> DAG:
    """The DAG that stages, deploys, runs and judges ``spec`` on ``backend`` (``"sagemaker"`` or ``"local"``).

    Raises DagConfigError (one line) for a configuration that cannot work; see the module doc.
    """
    from airflow.sdk import DAG, Param, chain

    from airsage import assets
    from airsage.notifications.on_call import OnCallNotifier
    from airsage.operators.alert import OnCallAlertOperator
    from airsage.operators.approve_model import ModelApprovalOperator
    from airsage.operators.gate import MetricGateOperator
    from airsage.operators.publish_report import PublishReportOperator
    from airsage.operators.read_metrics import ReadPropertyFileOperator
    from airsage.operators.run_local import RunLocalPipelineOperator
    from airsage.operators.start_execution import StartPipelineExecutionOperator
    from airsage.operators.upsert_pipeline import UpsertPipelineOperator
    from airsage.sensors.pipeline_execution import PipelineExecutionSensor

    if backend not in BACKENDS:
        raise DagConfigError(f"DAG {dag_id!r}: backend must be 'sagemaker' or 'local', got {backend!r}")
    try:
        spec.check()
    except GateConfigError as err:
        raise DagConfigError(f"DAG {dag_id!r}: {err}") from None
    except DagConfigError as err:
        raise DagConfigError(f"DAG {dag_id!r}: {err}") from None
    gate = spec.gate
    local = backend == "local"
    prefix_default = (spec.default_prefix or spec.name).replace("'", "\\'")
    bucket_default = default_bucket.replace("'", "\\'")
    bucket = f"{{{{ params.bucket or var.value.get('airsage_bucket', '{bucket_default}') }}}}"
    prefix = f"{{{{ params.prefix or var.value.get('airsage_prefix', '{prefix_default}') }}}}"
    root_literal = (default_local_root or os.environ.get("AIRSAGE_ROOT")
                    or str(Path.home() / "airsage-objects")).replace("'", "\\'")
    local_root = f"{{{{ var.value.get('airsage_local_root', '{root_literal}') }}}}"
    root_uri = f"s3://{bucket}/{prefix}"
    threshold = f"{{{{ params.{gate.threshold_param} }}}}"
    store_args = {"backend": backend, "aws_conn_id": AWS_CONN_ID, "local_root": local_root if local else None}
    gate_args = {"comparison": gate.comparison}

    from airsage.property_files import is_error_metric

    # an error metric is never negative, so neither is a threshold on one (the form refuses -1)
    bounds = {"minimum": 0} if is_error_metric(gate.metric, gate.json_path) else {}
    params = {
        gate.threshold_param: Param(gate.threshold, type="number", title=f"{gate.metric} threshold", **bounds,
                                    description=f"Publish the report when {gate.metric} is {gate.comparison} this"
                                                + (f" (passed to the pipeline as {gate.pipeline_parameter})."
                                                   if gate.pipeline_parameter else ".")),
        **spec.stage.params(),
        # Optional params are nullable: the Airflow 3 form marks a param required unless its type admits null.
        "bucket": Param(None, type=["null", "string"], title="Bucket",
                        description=f"Empty: Variable airsage_bucket, else {default_bucket}."),
        "prefix": Param(None, type=["null", "string"], title="Prefix",
                        description=f"Empty: Variable airsage_prefix, else {spec.default_prefix or spec.name}."),
        "pipeline_version": Param("latest", type=["null", "string"], pattern=r"^(latest|first|[1-9][0-9]*)$",
                                  title="Pipeline version",
                                  description="latest: the definition deployed now; first: the version this date "
                                              "first ran with (a backfill re-runs history as it ran); or a number."),
        "rerun_steps": Param(None, type=["null", "array"], items={"type": "string"}, title="Re-run only these steps",
                             description="A selective execution: only these steps run; the steps they depend on take "
                                         "the outputs of rerun_reference. Empty: the whole pipeline."),
        "rerun_reference": Param(None, type=["null", "string"], title="Reference execution",
                                 description="With rerun_steps: an execution ARN, or empty/last for this date's "
                                             "newest execution."),
        # the boolean type is what the trigger form draws as a switch; false is a normal run
        "dry_run": Param(False, type="boolean", title="Dry run",
                         description="Stage the data, diff the definition against the deployed one and plan which "
                                     "steps would re-run, then end: nothing is updated or started. The diff and the "
                                     "plan are in upsert_pipeline's log and XComs and in the report."),
        "approve_backfills": Param(False, type="boolean", title="Ask for approval in backfill runs",
                                   description="Off: a backfill run's model version stays PendingManualApproval "
                                               "and approve_model is skipped (no request per date)."),
        **spec.extra_params,
    }
    source = str(spec.definition_file) if spec.definition_file is not None else spec.source

    with DAG(
        dag_id=dag_id,
        description=f"{spec.name}: stage, deploy, run, gate and report ({backend})",
        doc_md=DAG_DOC.format(name=spec.name, backend=backend, description=spec.description,
                              run="`run_local`" if local else "`start_execution` → `wait_for_execution`",
                              metric=gate.metric, property_file=gate.property_file, step=gate.step,
                              json_path=gate.json_path, comparison=gate.comparison,
                              threshold_param=gate.threshold_param, threshold=gate.threshold,
                              schedule=schedule),
        schedule=schedule,
        start_date=start_date,
        catchup=False,  # no catch-up storm on unpause: history comes from backfills
        max_active_runs=max_active_runs,
        is_paused_upon_creation=True,
        params=params,
        tags=["airsage", "sagemaker-pipelines", spec.name, backend, *tags],
        default_args={
            "owner": owner,
            "retries": retries,
            "retry_delay": timedelta(minutes=1),
            "retry_exponential_backoff": 2.0,
            "max_retry_delay": timedelta(minutes=30),
            # on-call for infrastructure failures: the Variable airsage_on_call, read when it fires
            "on_failure_callback": OnCallNotifier(aws_conn_id=AWS_CONN_ID, gate=gate.as_arguments()),
        },
    ) as dag:
        stage = spec.stage.operator(StageContext(backend=backend, root_uri=root_uri, run_ds=RUN_DS,
                                                 store_args=store_args))
        # Airflow Assets other DAGs can be scheduled on (airsage.assets; the approved-model one is the approval's)
        stage.outlets = [*stage.outlets, assets.input_partition(dag_id)]
        parameters = {gate.pipeline_parameter: threshold} if gate.pipeline_parameter else {}
        upsert = UpsertPipelineOperator(
            task_id="upsert_pipeline",
            doc_md="Builds the definition, checks the quality gate against it, stages the code and creates/updates "
                   "the pipeline only when the definition's sha256 changed.",
            source=source,
            pipeline_name=spec.pipeline_name,
            gate=gate.as_arguments(),
            config_overrides={"bucket": bucket, "prefix": prefix,
                              "role_arn": "{{ var.value.get('airsage_role_arn', '') }}"},
            inputs=stage.output, parameters=parameters, dry_run="{{ params.dry_run }}",
            **store_args,
        )
        # which version and which steps run (airsage.execution_policy), from the DAG params
        run_choice = {"pipeline_version": "{{ params.pipeline_version }}",
                      "rerun_steps": "{{ params.rerun_steps | tojson }}",
                      "rerun_reference": "{{ params.rerun_reference or '' }}"}
        if local:
            run = RunLocalPipelineOperator(
                task_id="run_local",
                doc_md="Runs this date's execution with the docker-free local runner, or re-attaches to the one "
                       "with the same inputs; a concurrent try waits for it and adopts it. Extra link: its page.",
                pipeline=upsert.output, inputs=stage.output, parameters=parameters, local_root=local_root,
                quality_gate_steps=gate.fail_steps, outlets=[assets.model_package_alias(dag_id)], **run_choice,
            )
            chain(stage, upsert, run)
            execution = run.output
        else:
            start = StartPipelineExecutionOperator(
                task_id="start_execution",
                doc_md="Starts this date's execution, or re-attaches to / resumes the one with the same inputs.",
                pipeline=upsert.output, inputs=stage.output, parameters=parameters,
                quality_gate_steps=gate.fail_steps, aws_conn_id=AWS_CONN_ID, **run_choice,
            )
            wait = PipelineExecutionSensor(
                task_id="wait_for_execution",
                doc_md="Waits (deferred) for the execution; Failed/Stopped fail with the reason and steps.",
                execution=start.output, quality_gate_steps=gate.fail_steps,
                poke_interval=poll_interval or poll_interval_from_environment(), aws_conn_id=AWS_CONN_ID,
                outlets=[assets.model_package_alias(dag_id)],
            )
            chain(stage, upsert, start, wait)
            execution = wait.output
        metrics = ReadPropertyFileOperator(
            task_id="read_metrics",
            doc_md=f"Reads `{gate.json_path}` from the `{gate.step}` step's `{gate.property_file}` PropertyFile.",
            execution=execution, step_name=gate.step, property_file=gate.property_file,
            json_path=gate.json_path, metric=gate.metric, outlets=[assets.metrics(dag_id)], **store_args,
        )
        gate_task = MetricGateOperator(
            task_id="gate",
            doc_md=f"`{gate.metric} {gate.comparison} {gate.threshold_param}` → publish_report, else alert_on_call.",
            value=metrics.output["value"], threshold=threshold, metric=gate.metric,
            pass_task_id="publish_report",  # noqa: S106 - a task id, not a password
            fail_task_id="alert_on_call", **gate_args,
        )
        outcome_args = {"metrics": metrics.output, "threshold": threshold,
                        "report_prefix": f"{root_uri}/reports/ds={RUN_DS}", **gate_args, **store_args}
        report = PublishReportOperator(
            task_id="publish_report",
            doc_md="Writes report.html and metrics.json under `reports/ds=<ds>/run=<run id>/` and points "
                   "`latest.json` at them.",
            title=f"{spec.name} model report", predictions_file=spec.predictions_file, execution=execution,
            outlets=[assets.report(dag_id)], dry_run="{{ params.dry_run }}",
            # a dry run skips everything from the run task on: the report still runs and shows the plan
            trigger_rule="none_failed", **outcome_args,
        )
        alert = OnCallAlertOperator(
            task_id="alert_on_call",
            doc_md="Writes `ALERT.json`, notifies on-call (Variable `airsage_on_call`), then fails the run.",
            **outcome_args,
        )
        approve = ModelApprovalOperator(
            task_id="approve_model",
            doc_md="Asks for approval of the registered model version (Required Actions; who may answer: Variable "
                   "`airsage_approval`) and writes Approved/Rejected to the model registry; a decision made in "
                   "the registry meanwhile ends it. Backfill runs skip it.",
            execution=execution, metrics=metrics.output, report=report.output,
            threshold=threshold, metric=gate.metric, approve_backfills="{{ params.approve_backfills }}",
            outlets=[assets.approved_model_alias(dag_id)],
            # what it decides on; declared, the asset exists from the DAG's first parse: two runs' first events
            # through the execution task's alias otherwise both create it, and one task fails on the duplicate
            inlets=[assets.model_package(dag_id)], **gate_args, **store_args,
        )
        chain(execution.operator, metrics, gate_task, [report, alert])
        report >> approve
    return dag
