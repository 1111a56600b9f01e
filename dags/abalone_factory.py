"""One factory, two backends: the abalone DAG on SageMaker or on the local runner.

Wiring only. The task shape is the same for both backends (Dagster-style resource swap):
only start + wait (SageMaker) becomes run_local (local). Everything heavy (boto3, the
SageMaker SDK, matplotlib, sm_pipeline) is imported inside the tasks, so parsing this is
not much slower than parsing a one-task DAG (see bench/dag_parse.py).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import DAG, Param, chain

from airsage.notifications.on_call import OnCallNotifier
from airsage.operators.alert import OnCallAlertOperator
from airsage.operators.gate import MetricGateOperator
from airsage.operators.publish_report import PublishReportOperator
from airsage.operators.read_metrics import ReadPropertyFileOperator
from airsage.operators.run_local import RunLocalPipelineOperator
from airsage.operators.stage_input import StageInputOperator
from airsage.operators.start_execution import StartPipelineExecutionOperator
from airsage.operators.upsert_pipeline import UpsertPipelineOperator
from airsage.sensors.pipeline_execution import PipelineExecutionSensor

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = str(REPO_ROOT / "data" / "abalone.csv")
# env var read, not a Variable: parse time must not touch the metadata DB
DEFAULT_LOCAL_ROOT = os.environ.get("AIRSAGE_ROOT", str(REPO_ROOT / ".airsage"))
QUALITY_GATE_STEPS = ("AbaloneMseFail",)


def _poll_interval(raw: str | None) -> float:
    """Seconds between wait_for_execution's DescribePipelineExecution polls, from AIRSAGE_POLL_INTERVAL.

    Read at parse time (env, not a Variable). A minute suits SageMaker; the emulated service
    (tests, ``make demo BACKEND=sagemaker``) finishes an execution in seconds.
    """
    try:
        value = float(raw or 60)
    except ValueError:
        value = -1.0
    if not 0 < value <= 3600:
        raise ValueError(f"environment variable AIRSAGE_POLL_INTERVAL={raw!r}: expected seconds in (0, 3600]")
    return value


POLL_INTERVAL = _poll_interval(os.environ.get("AIRSAGE_POLL_INTERVAL"))

# Templates, rendered per task run: DAG params win, then Airflow Variables, then defaults.
AWS_CONN_ID = "{{ var.value.get('airsage_aws_conn_id', 'aws_default') }}"
BUCKET = "{{ params.bucket or var.value.get('airsage_bucket', 'airsage-artifacts') }}"
PREFIX = "{{ params.prefix or var.value.get('airsage_prefix', 'abalone') }}"
ROOT_URI = f"s3://{BUCKET}/{PREFIX}"
_ROOT_LITERAL = DEFAULT_LOCAL_ROOT.replace("'", "\\'")
LOCAL_ROOT = f"{{{{ var.value.get('airsage_local_root', '{_ROOT_LITERAL}') }}}}"
# The run's date: its logical date, else (an API/CLI trigger without one) the day it was queued for;
# the same rule as airsage.naming.run_ds in the operators.
RUN_DS = "{{ (dag_run.logical_date or dag_run.run_after) | ds }}"
REPORT_PREFIX = f"{ROOT_URI}/reports/ds={RUN_DS}"
# one threshold for the pipeline's own condition, the DAG's gate and what the outcome records
MSE_THRESHOLD = "{{ params.mse_threshold }}"

DAG_DOC = """
### abalone pipeline ({backend})

Trains and evaluates the abalone rings regressor once per logical date, then publishes a
report, or — when the model's MSE is above the threshold — notifies on-call and fails the run.

`stage_input` → `upsert_pipeline` → {run} → `read_metrics` → `gate` →
`publish_report` | `alert_on_call`

* **Idempotent per date and inputs.** A run for a logical date whose inputs — the staged
  input data's sha256, the batch data's sha256, the pipeline definition's sha256 and the
  pipeline parameter values — equal those of a Succeeded execution re-attaches to that
  execution and registers no new model version; a changed input starts a new execution.
  The execution's display name is `<dag id>-<ds>-<fingerprint of those inputs>`; the task log
  says which happened and why ("Re-attaching to … : same inputs (…)" / "Starting a new
  execution …: inputs changed since …").
* **Clearing a failed run resumes it.** A Failed or Stopped execution with the same inputs is
  resumed in place when its definition is unchanged (SageMaker: RetryPipelineExecution; local:
  the runner's resume), re-running only the steps that did not succeed — log line "Resuming
  execution … (definition unchanged; N steps succeeded)"; otherwise "Starting a new execution:
  definition changed since …". One that failed only at the pipeline's quality gate is re-attached.
* **Stopping**: marking the start/wait task (or `run_local`) failed, or clearing it while it runs,
  stops the execution (it ends Stopped); a deferral or a triggerer restart does not.
* **Schedule**: `@daily`, catchup off — unpausing runs only the latest interval, never a
  month of catch-up; earlier dates come from a backfill (README, Backfills). DAGs start paused.
* Every logical date has its own input partition (`input/ds=YYYY-MM-DD/`); every DAG run its
  own report folder `reports/ds=YYYY-MM-DD/run=<run id>/` (report.html, metrics.json and
  plots, or ALERT.json), and `reports/ds=YYYY-MM-DD/latest.json` points at the newest.
* **A failed quality gate fails the run**: `alert_on_call` notifies on-call, then fails with
  `quality gate: mse X > threshold Y`. Any other failed task notifies through the failure
  callback. Targets: the Variable `airsage_on_call`
  (`{{"webhook_url": "…", "sns_topic_arn": "…", "aws_conn_id": "…"}}`, all optional).
* Params (trigger form): `mse_threshold` (passed to the pipeline as MseThreshold), `source`
  (CSV path or s3:// URI), `bucket`, `prefix`.
* Variables (optional): `airsage_on_call`, `airsage_aws_conn_id`, `airsage_bucket`,
  `airsage_prefix`, `airsage_role_arn`, `airsage_local_root`.
* On failure the task log has one `ON-CALL …` line (DAG, run, try, execution ARN, link,
  failing steps) where the failure happened, outside the collapsed groups.
"""


def _params() -> dict[str, Param]:
    return {
        "mse_threshold": Param(6.0, type="number", minimum=0, title="MSE threshold",
                               description="Publish the report when the test MSE is at most this "
                                           "(passed to the pipeline as MseThreshold)."),
        # Optional params are nullable: the Airflow 3 form marks a param required unless its type
        # admits null, and keeps Trigger/Run Backfill disabled until every required field is filled.
        "source": Param(None, type=["null", "string"], title="Source CSV",
                        description="Labelled abalone CSV: a local path or s3:// URI. "
                                    "Empty: the repository's data/abalone.csv."),
        "bucket": Param(None, type=["null", "string"], title="Bucket",
                        description="Empty: Variable airsage_bucket, else airsage-artifacts."),
        "prefix": Param(None, type=["null", "string"], title="Prefix",
                        description="Empty: Variable airsage_prefix, else abalone."),
    }


def build_abalone_dag(dag_id: str, backend: str, start_date: datetime = datetime(2026, 11, 1)) -> DAG:
    """The abalone DAG for ``backend`` ``"sagemaker"`` or ``"local"``."""
    if backend not in ("sagemaker", "local"):
        raise ValueError(f"backend must be 'sagemaker' or 'local', got {backend!r}")
    local = backend == "local"
    store_args = {"backend": backend, "aws_conn_id": AWS_CONN_ID, "local_root": LOCAL_ROOT if local else None}
    aws_args = {"aws_conn_id": AWS_CONN_ID}

    with DAG(
        dag_id=dag_id,
        description=f"abalone model: train, evaluate, gate and report ({backend})",
        doc_md=DAG_DOC.format(backend=backend, run="`run_local`" if local else
                              "`start_execution` → `wait_for_execution`"),
        schedule="@daily",
        start_date=start_date,
        # No catch-up storm on unpause: history comes from backfills (README, Backfills).
        catchup=False,
        max_active_runs=3,
        is_paused_upon_creation=True,
        params=_params(),
        tags=["airsage", "sagemaker-pipelines", "abalone", backend],
        default_args={
            "owner": "ml-platform",
            "retries": 2,
            "retry_delay": timedelta(minutes=1),
            "retry_exponential_backoff": 2.0,
            "max_retry_delay": timedelta(minutes=30),
            # on-call for infrastructure failures: the Variable airsage_on_call, read when it fires
            "on_failure_callback": OnCallNotifier(aws_conn_id=AWS_CONN_ID),
        },
    ) as dag:
        stage = StageInputOperator(
            task_id="stage_input",
            doc_md="Copies the source CSV to `input/ds={{ ds }}/abalone.csv` and writes the rows "
                   "without `rings` to `batch/ds={{ ds }}/batch.csv`; no-op when unchanged.",
            source=f"{{{{ params.source or '{DEFAULT_SOURCE}' }}}}",
            input_uri=f"{ROOT_URI}/input/ds={RUN_DS}/abalone.csv",
            batch_uri=f"{ROOT_URI}/batch/ds={RUN_DS}/batch.csv",
            **store_args,
        )
        upsert = UpsertPipelineOperator(
            task_id="upsert_pipeline",
            doc_md="Stages the container scripts and creates/updates the pipeline only when the "
                   "definition's sha256 changed.",
            config_overrides={
                "bucket": BUCKET,
                "prefix": PREFIX,
                "role_arn": "{{ var.value.get('airsage_role_arn', '') }}",
            },
            **store_args,
        )
        parameters = {
            "InputData": stage.output["input_uri"],
            "BatchData": stage.output["batch_uri"],
            "MseThreshold": MSE_THRESHOLD,
        }
        if local:
            run = RunLocalPipelineOperator(
                task_id="run_local",
                doc_md="Runs this date's execution with the docker-free local runner, or re-attaches to "
                       "the succeeded one with the same inputs; a concurrent try waits for it and adopts it. "
                       "Extra link: the execution's page.",
                pipeline=upsert.output,
                inputs=stage.output,
                parameters=parameters,
                local_root=LOCAL_ROOT,
                quality_gate_steps=QUALITY_GATE_STEPS,
            )
            chain(stage, upsert, run)
            execution = run.output
        else:
            start = StartPipelineExecutionOperator(
                task_id="start_execution",
                doc_md="Starts this date's execution, or re-attaches to the one with the same inputs "
                       "(Executing or Succeeded).",
                pipeline=upsert.output,
                inputs=stage.output,
                parameters=parameters,
                quality_gate_steps=QUALITY_GATE_STEPS,
                **aws_args,
            )
            wait = PipelineExecutionSensor(
                task_id="wait_for_execution",
                doc_md="Waits (deferred) for the execution; Failed/Stopped fail with the reason and steps.",
                execution=start.output,
                quality_gate_steps=QUALITY_GATE_STEPS,
                poke_interval=POLL_INTERVAL,
                **aws_args,
            )
            chain(stage, upsert, start, wait)
            execution = wait.output
        metrics = ReadPropertyFileOperator(
            task_id="read_metrics",
            doc_md="Reads `regression_metrics.mse.value` from the EvaluateAbalone step's "
                   "`evaluation.json` PropertyFile.",
            execution=execution,
            pipeline=upsert.output,
            **store_args,
        )
        gate = MetricGateOperator(
            task_id="gate",
            doc_md="`mse <= mse_threshold` → publish_report, else alert_on_call.",
            value=metrics.output["value"],
            threshold=MSE_THRESHOLD,
            pass_task_id="publish_report",  # noqa: S106 - a task id, not a password
            fail_task_id="alert_on_call",
        )
        outcome_args = {"metrics": metrics.output, "threshold": MSE_THRESHOLD, "report_prefix": REPORT_PREFIX,
                        **store_args}
        report = PublishReportOperator(
            task_id="publish_report",
            doc_md="Writes report.html, metrics.json and the plots under "
                   "`reports/ds={{ ds }}/run=<run id>/` and points `latest.json` at them.",
            **outcome_args,
        )
        alert = OnCallAlertOperator(
            task_id="alert_on_call",
            doc_md="Writes `reports/ds={{ ds }}/run=<run id>/ALERT.json`, notifies on-call (Variable "
                   "`airsage_on_call`), then fails: `quality gate: mse X > threshold Y`.",
            **outcome_args,
        )
        chain(execution.operator, metrics, gate, [report, alert])
    return dag
