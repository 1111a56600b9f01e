"""OpenLineage for airsage's tasks, the pipeline executions they run and the executions' steps.

Used only through the Airflow OpenLineage provider (``pip install "airsage[lineage]"``, configured the
standard way: ``[openlineage] transport``, ``namespace``): the provider's listener calls the operators'
``get_openlineage_facets_on_complete/failure``, which return their own inputs and outputs and, for the
tasks that run or wait for an execution, emit through the provider's adapter (its transport, its
namespace):

- the **pipeline execution** as a run of the job ``<pipeline name>`` whose parent is the Airflow task run
  that started it (or re-attached to it): START at its creation, then COMPLETE / FAIL / ABORT as it ended
  (Succeeded / Failed / Stopped), with its S3 parameters as inputs and the registered model package as output;
- **each step** as a run of ``<pipeline name>.<step>`` whose parent is the execution (root: the DAG run),
  with its S3 inputs and outputs as datasets (the provider's naming: namespace ``s3://<bucket>``, name =
  key) and a RegisterModel step's model package version as a dataset named by its ARN (namespace
  ``arn:aws:sagemaker:<region>:<account>``).

Run ids are UUIDs derived from the execution ARN, its creation time and the step name (as the provider
derives task run ids), so a retried task, a resumed execution and a re-attach all speak of the same runs.
Nothing here is imported unless the provider calls in: teams without OpenLineage pay nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from functools import cache
from typing import Any

INTEGRATION = "SAGEMAKER"
# ListPipelineExecutionSteps' / DescribePipelineExecution's end states -> OpenLineage's
END_STATES = {"Succeeded": "COMPLETE", "Failed": "FAIL", "Stopped": "ABORT"}
METRICS_FACET = "evaluationMetrics"


@cache
def metrics_facet_class():
    """``EvaluationMetricsDatasetFacet``: the numbers of an evaluation report (a PropertyFile), by JSON path.

    Defined on first use: this module is imported where the provider may be absent (``task_run``).
    """
    import attr
    from openlineage.client.generated.base import DatasetFacet

    @attr.define
    class EvaluationMetricsDatasetFacet(DatasetFacet):
        metrics: dict[str, float] = attr.field(factory=dict)

        @staticmethod
        def _get_schema() -> str:
            # the facet's JSON schema ships with the package (airsage/EvaluationMetricsDatasetFacet.json); it
            # has no public URL, so it is named, not located
            return "urn:airsage:facet:EvaluationMetricsDatasetFacet:1-0-0"

    return EvaluationMetricsDatasetFacet


# -- datasets -----------------------------------------------------------------------------------------------
def s3_dataset(uri: str, facets: Mapping[str, Any] | None = None):
    """An S3 object or prefix as the provider names it: namespace ``s3://<bucket>``, name = the key."""
    from openlineage.client.event_v2 import Dataset

    from sm_pipeline.storage import parse_s3_uri

    bucket, key = parse_s3_uri(uri)
    return Dataset(namespace=f"s3://{bucket}", name=key.rstrip("/") or "/", facets=dict(facets or {}))


def model_package_dataset(arn: str):
    """A model package version, named by its ARN (namespace ``arn:aws:sagemaker:<region>:<account>``)."""
    from openlineage.client.event_v2 import Dataset

    partition, service, region, account = arn.split(":")[1:5]
    return Dataset(namespace=f"arn:{partition}:{service}:{region}:{account}", name=arn)


def evaluation_dataset(uri: str, report: Any):
    """The evaluation PropertyFile with its numbers in an ``evaluationMetrics`` facet."""
    from airsage.property_files import metric_rows

    numbers = {path: float(value) for path, value, _ in metric_rows(report)}
    return s3_dataset(uri, {METRICS_FACET: metrics_facet_class()(metrics=numbers)})


def source_dataset(source: str):
    """A stage task's source: an S3 object, or a local file (namespace ``file``, name = its absolute path)."""
    from pathlib import Path

    from openlineage.client.event_v2 import Dataset

    if source.startswith("s3://"):
        return s3_dataset(source)
    return Dataset(namespace="file", name=str(Path(source).resolve()))


def s3_datasets(uris: Iterable[Any]) -> list:
    """Datasets of the ``s3://`` URIs among ``uris`` (in order, each once)."""
    seen, out = set(), []
    for uri in uris:
        if isinstance(uri, str) and uri.startswith("s3://") and uri not in seen:
            seen.add(uri)
            try:
                out.append(s3_dataset(uri))
            except ValueError:
                continue
    return out


def step_uris(record: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(input URIs, output URIs) of a job step from its Describe*Job-shaped record (resolved request)."""
    inputs = [i.get("S3Input", {}).get("S3Uri") for i in record.get("ProcessingInputs") or []]
    inputs += [(c.get("DataSource") or {}).get("S3DataSource", {}).get("S3Uri") for c in record.get("InputDataConfig") or []]
    inputs.append(((record.get("TransformInput") or {}).get("DataSource") or {}).get("S3DataSource", {}).get("S3Uri"))
    outputs = [o.get("S3Output", {}).get("S3Uri") for o in (record.get("ProcessingOutputConfig") or {}).get("Outputs") or []]
    outputs.append((record.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
                   or (record.get("OutputDataConfig") or {}).get("S3OutputPath"))
    outputs.append((record.get("TransformOutput") or {}).get("S3OutputPath"))
    return [u for u in inputs if u], [u for u in outputs if u]


# -- run ids --------------------------------------------------------------------------------------------------
def _instant(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def execution_run_id(arn: str, created: Any) -> str:
    """The execution's run id: the same for every task, try, resume and re-attach that meets it."""
    from openlineage.client.uuid import generate_static_uuid

    return str(generate_static_uuid(instant=_instant(created), data=f"sagemaker-pipeline-execution:{arn}".encode()))


def step_run_id(arn: str, created: Any, step: str) -> str:
    """One step's run id within its execution (stable across retries of the step and resumes)."""
    from openlineage.client.uuid import generate_static_uuid

    return str(generate_static_uuid(instant=_instant(created), data=f"sagemaker-pipeline-step:{arn}#{step}".encode()))


def task_run(task_instance) -> dict[str, str] | None:
    """The Airflow task run as OpenLineage knows it (namespace, job name, run id; root: the DAG run), or None
    when the provider is not installed or disabled."""
    try:
        from airflow.providers.openlineage import conf
        from airflow.providers.openlineage.plugins import macros
    except ImportError:
        return None
    if conf.is_disabled():
        return None
    return {"namespace": macros.lineage_job_namespace(), "name": macros.lineage_job_name(task_instance),
            "run_id": macros.lineage_run_id(task_instance),
            "root_namespace": macros.lineage_root_job_namespace(task_instance),
            "root_name": macros.lineage_root_job_name(task_instance),
            "root_run_id": macros.lineage_root_run_id(task_instance)}


# -- events ---------------------------------------------------------------------------------------------------
def _parent(parent: Mapping[str, str]):
    from openlineage.client.generated import parent_run

    root = None
    if parent.get("root_run_id"):
        root = parent_run.Root(run=parent_run.RootRun(runId=parent["root_run_id"]),
                               job=parent_run.RootJob(namespace=parent["root_namespace"], name=parent["root_name"]))
    return parent_run.ParentRunFacet(run=parent_run.Run(runId=parent["run_id"]),
                                     job=parent_run.Job(namespace=parent["namespace"], name=parent["name"]), root=root)


def _event(state: str, when: Any, *, namespace: str, job: str, run_id: str, job_type: str, parent: Mapping[str, str],
           inputs=(), outputs=(), run_facets: Mapping[str, Any] | None = None):
    from openlineage.client.event_v2 import Job, Run, RunEvent, RunState
    from openlineage.client.generated import job_type_job

    return RunEvent(
        eventType=RunState[state], eventTime=_instant(when).isoformat(),
        run=Run(runId=run_id, facets={"parent": _parent(parent), **(run_facets or {})}),
        job=Job(namespace=namespace, name=job,
                facets={"jobType": job_type_job.JobTypeJobFacet(processingType="BATCH", integration=INTEGRATION,
                                                                 jobType=job_type)}),
        inputs=list(inputs), outputs=list(outputs))


def execution_events(*, describe: Mapping[str, Any], steps: list[dict], records: Mapping[str, Mapping[str, Any]],
                     parameters: Mapping[str, Any], model_package_arn: str | None, parent: Mapping[str, str],
                     namespace: str) -> list:
    """The execution's and its steps' events, oldest first (see the module doc).

    ``records``: ``{step: Describe*Job-shaped record}`` (the local runner's step properties, or the jobs'
    Describe* answers on SageMaker) for the steps' S3 datasets.
    """
    from openlineage.client.generated import error_message_run, external_query_run

    arn, created = describe["PipelineExecutionArn"], describe["CreationTime"]
    pipeline = str(describe.get("PipelineName") or arn.split(":pipeline/", 1)[1].split("/", 1)[0])
    run_id = execution_run_id(arn, created)
    root = {"root_namespace": parent.get("root_namespace") or parent["namespace"],
            "root_name": parent.get("root_name") or parent["name"],
            "root_run_id": parent.get("root_run_id") or parent["run_id"]}
    as_parent = {"namespace": namespace, "name": pipeline, "run_id": run_id, **root}
    facets = {"externalQuery": external_query_run.ExternalQueryRunFacet(externalQueryId=arn, source="sagemaker")}
    events = [_event("START", created, namespace=namespace, job=pipeline, run_id=run_id, job_type="PIPELINE_EXECUTION",
                     parent=parent, inputs=s3_datasets(parameters.values()), run_facets=facets)]
    for step in sorted(steps, key=lambda s: str(s.get("StartTime") or "")):
        name, status = str(step.get("StepName")), step.get("StepStatus")
        if not step.get("StartTime") or status == "NotExecuted":
            continue
        record = records.get(name) or {}
        ins, outs = step_uris(record)
        outputs = s3_datasets(outs)
        package = ((step.get("Metadata") or {}).get("RegisterModel") or {}).get("Arn")
        if package:
            outputs.append(model_package_dataset(package))
        common = {"namespace": namespace, "job": f"{pipeline}.{name}", "run_id": step_run_id(arn, created, name),
                  "job_type": "PIPELINE_STEP", "parent": as_parent, "inputs": s3_datasets(ins), "outputs": outputs}
        events.append(_event("START", step["StartTime"], **common))
        if status in END_STATES and step.get("EndTime"):
            failure = {"errorMessage": error_message_run.ErrorMessageRunFacet(
                message=str(step.get("FailureReason") or status), programmingLanguage="SageMaker Pipelines")}
            events.append(_event(END_STATES[status], step["EndTime"], **common,
                                 run_facets=failure if status != "Succeeded" else None))
    status = describe.get("PipelineExecutionStatus")
    if status in END_STATES:
        end = describe.get("EndTime") or describe.get("LastModifiedTime") or created
        if status != "Succeeded":
            facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=str(describe.get("FailureReason") or status), programmingLanguage="SageMaker Pipelines")
        events.append(_event(END_STATES[status], end, namespace=namespace, job=pipeline, run_id=run_id,
                             job_type="PIPELINE_EXECUTION", parent=parent, inputs=s3_datasets(parameters.values()),
                             outputs=[model_package_dataset(model_package_arn)] if model_package_arn else [],
                             run_facets=facets))
    return events


def emit(events: Iterable[Any]) -> None:
    """Send events through the provider's adapter (its configured transport)."""
    from airflow.providers.openlineage.plugins.listener import get_openlineage_listener

    adapter = get_openlineage_listener().adapter
    for event in events:
        adapter.emit(event)


def operator_lineage(inputs=(), outputs=()):
    """What ``get_openlineage_facets_on_*`` returns: the task's own inputs and outputs."""
    from airflow.providers.openlineage.extractors import OperatorLineage

    return OperatorLineage(inputs=list(inputs), outputs=list(outputs))


def execution_lineage(operator, task_instance, parent: Mapping[str, str] | None = None):
    """``get_openlineage_facets_on_*`` of a task that ran or waited for an execution: emits the execution's and
    its steps' events (parent: ``parent``, the run of the task that started it and emitted its START, else this
    task run) and returns the task's own inputs and outputs.

    Reads what the task kept while it settled the execution (``_lineage_raw``: describe, steps, step records;
    ``_lineage_result``: the execution XCom): nothing is asked of SageMaker again.
    """
    from airflow.providers.openlineage import conf

    raw, result = getattr(operator, "_lineage_raw", None), getattr(operator, "_lineage_result", None)
    if not raw or not result:
        return operator_lineage()
    started_elsewhere = bool(parent)
    parent = parent or task_run(task_instance)
    arn = result.get("model_package_arn")
    if parent:
        events = execution_events(describe=raw["describe"], steps=raw["steps"], records=raw.get("records") or {},
                                  parameters=result.get("parameters") or {}, model_package_arn=arn, parent=parent,
                                  namespace=conf.namespace())
        emit(events[1:] if started_elsewhere else events)  # the starting task emitted the execution's START
    return operator_lineage(inputs=s3_datasets((result.get("parameters") or {}).values()),
                            outputs=[model_package_dataset(arn)] if arn else [])
