"""The SageMaker actions the emulated service answers, one method per action.

Requests arrive parsed and validated against botocore's model (``protocol``); answers are cut to the
action's output shape there too. Pipelines, tags and tokens are ``state``'s; executions are the local
runner's (``executions``); the model registry is the local runner's ``LocalModelRegistry``.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

from sm_pipeline.arns import parse_model_package_arn, pipeline_arn
from sm_pipeline.errors import InvalidInput
from sm_pipeline.local.jobs import execution_id_of_job
from sm_pipeline.local.records import ExecutionIndex, ExecutionRecords, LocalExecutionStore
from sm_pipeline.local.registry import LocalModelRegistry
from sm_pipeline.local.selective import check_selection
from sm_pipeline.parameters import cast_parameters
from sm_pipeline.service.executions import Executions, parse_execution_arn
from sm_pipeline.service.protocol import (
    ApiError,
    not_emulated,
    not_found,
    parse_request,
    shape_output,
    validate_input,
    validation_error,
)
from sm_pipeline.service.state import (
    PipelineStore,
    TagStore,
    TokenStore,
    expire_tokens,
    in_time_window,
    paginate,
    paginate_sorted,
    time_key,
)
from sm_pipeline.step_graph import flatten_steps
from sm_pipeline.step_kinds import STEP_KINDS, StepKind
from sm_pipeline.storage import ObjectStore
from sm_pipeline.timestamps import utc_now
from sm_pipeline.validate import validate_definition

log = logging.getLogger("sm_pipeline.service")

STOP_REASON = "Stopped by a StopPipelineExecution request"
TOKEN_LIFETIME_SECONDS = 7 * 24 * 3600  # how long a ClientRequestToken keeps its first answer
_JOB_STATUS = {"Succeeded": "Completed", "Failed": "Failed", "Stopped": "Stopped", "Stopping": "Stopping",
               "Executing": "InProgress", "Starting": "InProgress"}
# Describe<Job> for the job of every step kind the local runner runs (DescribeProcessingJob, ...).
JOB_ACTIONS: dict[str, StepKind] = {f"Describe{kind.job}": kind for kind in STEP_KINDS if kind.job and kind.local}

# The actions answered here, and the method answering each.
ACTIONS = {
    "CreatePipeline": "create_pipeline",
    "UpdatePipeline": "update_pipeline",
    "DescribePipeline": "describe_pipeline",
    "DeletePipeline": "delete_pipeline",
    "ListPipelines": "list_pipelines",
    "ListPipelineVersions": "list_pipeline_versions",
    "StartPipelineExecution": "start_pipeline_execution",
    "DescribePipelineExecution": "describe_pipeline_execution",
    "ListPipelineExecutions": "list_pipeline_executions",
    "ListPipelineExecutionSteps": "list_pipeline_execution_steps",
    "StopPipelineExecution": "stop_pipeline_execution",
    "RetryPipelineExecution": "retry_pipeline_execution",
    "DescribePipelineDefinitionForExecution": "describe_pipeline_definition_for_execution",
    "ListPipelineParametersForExecution": "list_pipeline_parameters_for_execution",
    "AddTags": "add_tags",
    "ListTags": "list_tags",
    "DeleteTags": "delete_tags",
    **{action: "describe_job" for action in JOB_ACTIONS},
    "ListModelPackages": "list_model_packages",
    "DescribeModelPackage": "describe_model_package",
    "ListModelPackageGroups": "list_model_package_groups",
    "DescribeModelPackageGroup": "describe_model_package_group",
    "UpdateModelPackage": "update_model_package",
}


class SageMakerApi:
    """The emulated SageMaker API over one object root."""

    def __init__(self, root: Path, region: str):
        self.root = Path(root)
        self.region = region
        self.pipelines = PipelineStore(self.root)
        self.tags = TagStore(self.root)
        self.tokens = TokenStore(self.root)
        self.executions = Executions(self.root, region)
        self.registry = LocalModelRegistry(self.root, region)
        self.objects = ObjectStore(self.root)
        # Writes (and token look-ups) are serialized: two requests with one token see one answer.
        self.lock = threading.RLock()

    def recover(self) -> list[str]:
        """End the executions a previous service left running (returns their ARNs); forget old tokens."""
        expire_tokens(self.root, TOKEN_LIFETIME_SECONDS)
        return self.executions.recover(self.pipelines.names())

    def handle(self, target: str | None, body: bytes, caller: dict | None = None) -> tuple[int, dict]:
        """Answer one request: ``(HTTP status, JSON body)``; ``caller`` is the request's ``UserContext``
        (``iam.caller_context``), recorded as ``LastModifiedBy`` by the actions that record one."""
        action = "?"
        try:
            action, params = parse_request(target, body)
            method = ACTIONS.get(action)
            if method is None:
                raise not_emulated(f"SageMaker.{action}")
            validate_input(action, params)
            if action in JOB_ACTIONS:
                return 200, shape_output(action, self.describe_job(JOB_ACTIONS[action], params))
            if action == "UpdateModelPackage":
                return 200, shape_output(action, self.update_model_package(params, caller=caller))
            return 200, shape_output(action, getattr(self, method)(params) or {})
        except ApiError as error:
            return error.status, error.body()
        except InvalidInput as error:
            return 400, ApiError("ValidationException", str(error)).body()
        except Exception as error:  # a bug here must still give the client an AWS-shaped answer
            log.exception("SageMaker.%s failed", action)
            return 500, ApiError("InternalFailure", f"internal error in the emulated service: {error}", 500).body()

    # ---- pipelines ---------------------------------------------------------------------------
    def create_pipeline(self, p: dict) -> dict:
        with self.lock:
            return self.tokens.answer("CreatePipeline", p.get("ClientRequestToken"), p, lambda: self._create(p))

    def _create(self, p: dict) -> dict:
        name = p["PipelineName"]
        if self.pipelines.find(name) is not None:
            raise validation_error(f"Pipeline names must be unique within an AWS account and region. "
                                   f"Pipeline with name ({name}) already exists.")
        definition = self._definition_text(p, required=True)
        now = utc_now()
        pipeline = {
            "PipelineName": name, "PipelineArn": pipeline_arn(name, self.region),
            "PipelineDisplayName": p.get("PipelineDisplayName") or name,
            "PipelineDescription": p.get("PipelineDescription"), "RoleArn": p["RoleArn"],
            "PipelineStatus": "Active", "CreationTime": now, "LastModifiedTime": now,
            "CreatedBy": {}, "LastModifiedBy": {}, "ParallelismConfiguration": p.get("ParallelismConfiguration"),
        }
        self.pipelines.add_version(pipeline, definition)
        self.pipelines.save(pipeline)
        if p.get("Tags"):
            self.tags.add(pipeline["PipelineArn"], p["Tags"])
        log.info("created pipeline %s", name)
        return {"PipelineArn": pipeline["PipelineArn"]}

    def update_pipeline(self, p: dict) -> dict:
        with self.lock:
            pipeline = self.pipelines.get(p["PipelineName"])
            definition = self._definition_text(p, required=False)
            if definition is not None:
                self.pipelines.add_version(pipeline, definition)
            for field in ("PipelineDisplayName", "PipelineDescription", "RoleArn", "ParallelismConfiguration"):
                if p.get(field) is not None:
                    pipeline[field] = p[field]
            pipeline["LastModifiedTime"] = utc_now()
            self.pipelines.save(pipeline)
            log.info("updated pipeline %s (version %s)", pipeline["PipelineName"], pipeline["PipelineVersionId"])
            return {"PipelineArn": pipeline["PipelineArn"], "PipelineVersionId": pipeline["PipelineVersionId"]}

    def _definition_text(self, p: dict, required: bool) -> str | None:
        text, location = p.get("PipelineDefinition"), p.get("PipelineDefinitionS3Location")
        if text is not None and location is not None:
            raise validation_error("Specify either PipelineDefinition or PipelineDefinitionS3Location, not both.")
        if location is not None:
            uri = f"s3://{location['Bucket']}/{location['ObjectKey']}"
            try:
                text = self.objects.read_bytes(uri).decode("utf-8")
            except (InvalidInput, UnicodeDecodeError) as exc:
                raise validation_error(f"Could not read the pipeline definition from {uri}: {exc}") from None
        if text is None:
            if required:
                raise validation_error("One of PipelineDefinition or PipelineDefinitionS3Location is required.")
            return None
        try:
            definition = json.loads(text)
        except json.JSONDecodeError as exc:
            raise validation_error(f"Invalid pipeline definition: not valid JSON ({exc.msg} at line {exc.lineno} "
                                   f"column {exc.colno}).") from None
        problems = validate_definition(definition)
        if problems:
            raise validation_error("Invalid pipeline definition: " + "; ".join(problems))
        return text

    def describe_pipeline(self, p: dict) -> dict:
        pipeline = self.pipelines.get(p["PipelineName"])
        definition = self.pipelines.definition(pipeline, p.get("PipelineVersionId"))
        return {**pipeline, "PipelineDefinition": definition}

    def delete_pipeline(self, p: dict) -> dict:
        with self.lock:
            return self.tokens.answer("DeletePipeline", p.get("ClientRequestToken"), p, lambda: self._delete(p))

    def _delete(self, p: dict) -> dict:
        pipeline = self.pipelines.get(p["PipelineName"])
        name = pipeline["PipelineName"]
        self.executions.shutdown(f"the pipeline {name} was deleted",
                                 only_prefix=pipeline_arn(name, self.region) + "/execution/")
        self.pipelines.remove(pipeline)
        self.tags.forget(pipeline["PipelineArn"])
        log.info("deleted pipeline %s", name)
        return {"PipelineArn": pipeline["PipelineArn"]}

    def list_pipelines(self, p: dict) -> dict:
        prefix = (p.get("PipelineNamePrefix") or "").lower()
        found = [pipeline for pipeline in (self.pipelines.find(n) for n in self.pipelines.names())
                 if pipeline and pipeline["PipelineName"].lower().startswith(prefix)
                 and in_time_window(pipeline["CreationTime"], p.get("CreatedAfter"), p.get("CreatedBefore"))]
        summaries = [{**pipeline, "LastExecutionTime": pipeline.get("LastRunTime")} for pipeline in found]
        if p.get("SortBy") == "Name":
            def key(s):
                return (s["PipelineName"].lower(),)
        else:
            def key(s):
                return (time_key(s["CreationTime"]), s["PipelineName"])
        page, token = paginate(summaries, key, p.get("SortOrder", "Descending") == "Descending",
                               p.get("MaxResults"), p.get("NextToken"))
        return {"PipelineSummaries": page, "NextToken": token}

    def list_pipeline_versions(self, p: dict) -> dict:
        pipeline = self.pipelines.get(p["PipelineName"])
        summaries = [{
            "PipelineArn": pipeline["PipelineArn"], "PipelineVersionId": v["PipelineVersionId"],
            "CreationTime": v.get("CreationTime"), "PipelineVersionDisplayName": v.get("PipelineVersionDisplayName"),
            "PipelineVersionDescription": v.get("PipelineVersionDescription"),
            "LastExecutionPipelineExecutionArn": v.get("LastExecutionPipelineExecutionArn"),
        } for v in self.pipelines.versions(pipeline).all()
            if in_time_window(v.get("CreationTime"), p.get("CreatedAfter"), p.get("CreatedBefore"))]
        page, token = paginate(summaries, lambda v: (v["PipelineVersionId"],),
                               p.get("SortOrder", "Descending") == "Descending", p.get("MaxResults"), p.get("NextToken"))
        return {"PipelineVersionSummaries": page, "NextToken": token}

    # ---- executions --------------------------------------------------------------------------
    def start_pipeline_execution(self, p: dict) -> dict:
        with self.lock:
            return self.tokens.answer("StartPipelineExecution", p.get("ClientRequestToken"), p, lambda: self._start(p))

    def _start(self, p: dict) -> dict:
        pipeline = self.pipelines.get(p["PipelineName"])
        version = p.get("PipelineVersionId") or pipeline["PipelineVersionId"]
        definition = json.loads(self.pipelines.definition(pipeline, version))
        selective = p.get("SelectiveExecutionConfig")
        if selective is not None:
            # SageMaker's rules, before the execution exists: a violation is a ValidationException (one line)
            check_selection(selective, flatten_steps(definition), self.root, pipeline["PipelineName"])
        given = p.get("PipelineParameters") or []
        names = [item["Name"] for item in given]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise validation_error(f"Pipeline parameter(s) {', '.join(duplicated)} given more than once.")
        parameters = {item["Name"]: item["Value"] for item in given}
        try:
            cast_parameters(definition.get("Parameters") or [], parameters)
        except InvalidInput as exc:
            raise validation_error(f"Invalid pipeline parameters: {exc}") from None
        parallelism = p.get("ParallelismConfiguration") or pipeline.get("ParallelismConfiguration") or {}
        describe_fields = {"PipelineVersionId": version, "StartedWithParameters": given}
        if selective is not None:
            describe_fields["SelectiveExecutionConfig"] = selective
        if p.get("PipelineExecutionDescription") is not None:
            describe_fields["PipelineExecutionDescription"] = p["PipelineExecutionDescription"]
        arn = self.executions.start(pipeline["PipelineName"], definition, parameters,
                                    p.get("PipelineExecutionDisplayName"),
                                    _max_parallel(parallelism),
                                    describe_fields, selective)
        pipeline["LastRunTime"] = utc_now()
        self.pipelines.save(pipeline)
        self.pipelines.versions(pipeline).note_execution(int(version), arn)
        return {"PipelineExecutionArn": arn}

    def _execution(self, arn: str) -> tuple[str, str]:
        """``(pipeline name, execution id)`` of an existing execution; ResourceNotFound otherwise."""
        lowered, execution_id = parse_execution_arn(arn)
        pipeline = self.pipelines.find(lowered)
        if pipeline is None:
            raise not_found(f"Pipeline execution '{arn}' does not exist.")
        self.executions.describe(pipeline["PipelineName"], execution_id)  # ResourceNotFound if unknown
        return pipeline["PipelineName"], execution_id

    def describe_pipeline_execution(self, p: dict) -> dict:
        return self.executions.describe(*self._execution(p["PipelineExecutionArn"]))

    def list_pipeline_executions(self, p: dict) -> dict:
        pipeline = self.pipelines.get(p["PipelineName"])
        name = pipeline["PipelineName"]
        # The index (creation time, id) orders and filters; only the page's records are read.
        entries = ExecutionIndex(self.root, name).entries()
        if p.get("CreatedAfter") is not None or p.get("CreatedBefore") is not None:
            entries = [e for e in entries if in_time_window(e.created, p.get("CreatedAfter"), p.get("CreatedBefore"))]
        prefix = pipeline_arn(name, self.region) + "/execution/"
        if p.get("SortBy") == "PipelineExecutionArn":
            entries = sorted(entries, key=lambda e: e.execution_id)

            def key(e):
                return (prefix + e.execution_id,)
        else:
            def key(e):
                return (time_key(e.created), prefix + e.execution_id)
        page, token = paginate_sorted(entries, key, p.get("SortOrder", "Descending") == "Descending",
                                      p.get("MaxResults"), p.get("NextToken"))
        summaries = []
        for entry in page:
            try:
                d = self.executions.describe(name, entry.execution_id)
            except ApiError:
                continue  # its records went away (a copy deleted by hand)
            summaries.append({
                "PipelineExecutionArn": d["PipelineExecutionArn"], "StartTime": d.get("CreationTime"),
                "PipelineExecutionStatus": d.get("PipelineExecutionStatus"),
                "PipelineExecutionDescription": d.get("PipelineExecutionDescription"),
                "PipelineExecutionDisplayName": d.get("PipelineExecutionDisplayName"),
                "PipelineExecutionFailureReason": d.get("FailureReason"),
            })
        return {"PipelineExecutionSummaries": summaries, "NextToken": token}

    def list_pipeline_execution_steps(self, p: dict) -> dict:
        if not p.get("PipelineExecutionArn"):
            raise validation_error("1 validation error detected: Value null at 'pipelineExecutionArn' failed to "
                                   "satisfy constraint: Member must not be null")
        name, execution_id = self._execution(p["PipelineExecutionArn"])
        steps = self.executions.steps(name, execution_id)
        try:
            described = {s.get("Name"): s for s in json.loads(self.executions.definition_text(name, execution_id))
                         .get("Steps", [])}
        except (OSError, json.JSONDecodeError):
            described = {}
        entries = [{**s, "StepDisplayName": (described.get(s["StepName"]) or {}).get("DisplayName"),
                    "StepDescription": (described.get(s["StepName"]) or {}).get("Description")} for s in steps]

        def key(s):
            return (time_key(s.get("StartTime")), s["StepName"])

        page, token = paginate(entries, key, p.get("SortOrder", "Descending") == "Descending",
                               p.get("MaxResults"), p.get("NextToken"))
        return {"PipelineExecutionSteps": page, "NextToken": token}

    def stop_pipeline_execution(self, p: dict) -> dict:
        with self.lock:
            return self.tokens.answer("StopPipelineExecution", p.get("ClientRequestToken"), p, lambda: {
                "PipelineExecutionArn": self.executions.stop(*self._execution(p["PipelineExecutionArn"]), STOP_REASON)})

    def retry_pipeline_execution(self, p: dict) -> dict:
        def retry() -> dict:
            name, execution_id = self._execution(p["PipelineExecutionArn"])
            parallelism = (p.get("ParallelismConfiguration") or {}).get("MaxParallelExecutionSteps")
            return {"PipelineExecutionArn": self.executions.retry(name, execution_id, parallelism)}

        with self.lock:
            return self.tokens.answer("RetryPipelineExecution", p.get("ClientRequestToken"), p, retry)

    def describe_pipeline_definition_for_execution(self, p: dict) -> dict:
        name, execution_id = self._execution(p["PipelineExecutionArn"])
        describe = self.executions.describe(name, execution_id)
        text = None
        version = describe.get("PipelineVersionId")
        pipeline = self.pipelines.find(name)
        if version and pipeline is not None:
            try:
                text = self.pipelines.definition(pipeline, version)  # exactly what the client sent
            except ApiError:
                text = None
        if text is None:
            text = self.executions.definition_text(name, execution_id)
        return {"PipelineDefinition": text, "CreationTime": describe.get("CreationTime")}

    def list_pipeline_parameters_for_execution(self, p: dict) -> dict:
        name, execution_id = self._execution(p["PipelineExecutionArn"])
        describe = self.executions.describe(name, execution_id)
        # What the execution was started with; a run started by the local runner itself lists all values.
        given = describe.get("StartedWithParameters")
        parameters = [dict(x) for x in (given if given is not None else describe.get("PipelineParameters") or [])]
        for index, item in enumerate(parameters):
            item["_index"] = index
        page, token = paginate(parameters, lambda x: (x["_index"],), False, p.get("MaxResults"), p.get("NextToken"),
                               default_max=50)
        return {"PipelineParameters": page, "NextToken": token}

    # ---- tags --------------------------------------------------------------------------------
    def _check_taggable(self, arn: str) -> None:
        if ":pipeline/" in arn:
            if "/execution/" in arn:
                self._execution(arn)
            elif self.pipelines.find(arn) is None:
                raise validation_error(f"Resource {arn} does not exist.")
        elif ":model-package/" in arn:
            self._model_package(arn)

    def add_tags(self, p: dict) -> dict:
        with self.lock:
            self._check_taggable(p["ResourceArn"])
            return {"Tags": self.tags.add(p["ResourceArn"], p["Tags"])}

    def list_tags(self, p: dict) -> dict:
        arn = p["ResourceArn"]
        self._check_taggable(arn)
        tags = self.tags.list(arn)
        if ":model-package/" in arn:  # tags a RegisterModel step gave the version
            own = {t["Key"] for t in tags}
            tags = [t for t in self._model_package(arn).get("Tags") or [] if t.get("Key") not in own] + tags
        for index, tag in enumerate(tags):
            tag["_index"] = index
        page, token = paginate(tags, lambda t: (t["_index"],), False, p.get("MaxResults"), p.get("NextToken"),
                               default_max=50)
        return {"Tags": page, "NextToken": token}

    def delete_tags(self, p: dict) -> dict:
        with self.lock:
            self._check_taggable(p["ResourceArn"])
            self.tags.delete(p["ResourceArn"], p["TagKeys"])
            return {}

    # ---- jobs run by steps -------------------------------------------------------------------
    def describe_job(self, kind: StepKind, p: dict) -> dict:
        """Describe<Job> (DescribeProcessingJob, ...): a job a step ran, from its execution's records."""
        job = kind.job
        name = p[f"{job}Name"]
        execution_id = execution_id_of_job(name)
        store = LocalExecutionStore(self.root)
        for records in ExecutionRecords.with_execution_id(self.root, execution_id) if execution_id else []:
            pipeline_name = records.pipeline_name
            try:
                steps = {s["StepName"]: s for s in store.steps(pipeline_name, execution_id)}
            except (OSError, json.JSONDecodeError, KeyError):
                continue
            for step_name, saved in store.step_properties(pipeline_name, execution_id).items():
                if saved["Properties"].get(f"{job}Name") == name:
                    return _job_description(job, saved["Properties"], steps.get(step_name) or {})
            for step in steps.values():
                made = (step.get("Metadata") or {}).get(job) or {}
                if str(made.get("Arn", "")).endswith(f"/{name}"):  # a job that failed or was stopped
                    return _job_description(job, {f"{job}Name": name, f"{job}Arn": made["Arn"]}, step)
        raise not_found(f"Requested resource not found: {job.removesuffix('Job')} job '{name}' does not exist.")

    # ---- model registry ----------------------------------------------------------------------
    def _model_package(self, name_or_arn: str) -> dict:
        arn = name_or_arn
        try:
            parse_model_package_arn(arn)
        except ValueError:  # a versioned package's name: <group>/<version>
            group, _, version = name_or_arn.rpartition("/")
            if not group or not version.isdigit():
                raise validation_error(f"ModelPackage {name_or_arn} does not exist.") from None
            arn = self.registry.package_arn(group, int(version))
        try:
            return self.registry.describe_model_package(arn)
        except InvalidInput:
            raise validation_error(f"ModelPackage {name_or_arn} does not exist.") from None

    def describe_model_package(self, p: dict) -> dict:
        return self._model_package(p["ModelPackageName"])

    def list_model_packages(self, p: dict) -> dict:
        group = p.get("ModelPackageGroupName")
        if group:
            group = group.rsplit("/", 1)[-1] if group.startswith("arn:") else group
            names = [g for g in self.registry.list_groups() if g.lower() == group.lower()]
        else:
            names = self.registry.list_groups()
        packages = [] if p.get("ModelPackageType") == "Unversioned" else [
            package for name in names for package in self.registry.list_model_packages(name)]
        contains = (p.get("NameContains") or "").lower()
        packages = [package for package in packages
                    if contains in package["ModelPackageName"].lower()
                    and p.get("ModelApprovalStatus") in (None, package.get("ModelApprovalStatus"))
                    and in_time_window(package.get("CreationTime"), p.get("CreationTimeAfter"),
                                       p.get("CreationTimeBefore"))]
        if p.get("SortBy") == "Name":
            def key(x):
                return (x["ModelPackageName"].lower(), x["ModelPackageVersion"])
        else:
            def key(x):
                return (time_key(x.get("CreationTime")), x["ModelPackageArn"])
        page, token = paginate(packages, key, p.get("SortOrder", "Descending") == "Descending",
                               p.get("MaxResults"), p.get("NextToken"))
        return {"ModelPackageSummaryList": page, "NextToken": token}

    def describe_model_package_group(self, p: dict) -> dict:
        name = p["ModelPackageGroupName"]
        name = name.rsplit("/", 1)[-1] if name.startswith("arn:") else name
        group = self.registry.describe_group(name)
        if group is None:
            raise validation_error(f"ModelPackageGroup {p['ModelPackageGroupName']} does not exist.")
        return {"CreatedBy": {}, **group}

    def list_model_package_groups(self, p: dict) -> dict:
        contains = (p.get("NameContains") or "").lower()
        groups = [g for g in (self.registry.describe_group(n) for n in self.registry.list_groups())
                  if g and contains in g["ModelPackageGroupName"].lower()
                  and in_time_window(g.get("CreationTime"), p.get("CreationTimeAfter"), p.get("CreationTimeBefore"))]
        if p.get("SortBy") == "Name":
            def key(g):
                return (g["ModelPackageGroupName"].lower(),)
        else:
            def key(g):
                return (time_key(g.get("CreationTime")), g["ModelPackageGroupName"])
        page, token = paginate(groups, key, p.get("SortOrder", "Descending") == "Descending",
                               p.get("MaxResults"), p.get("NextToken"))
        return {"ModelPackageGroupSummaryList": page, "NextToken": token}

    def update_model_package(self, p: dict, caller: dict | None = None) -> dict:
        # LastModifiedBy is the caller, as SageMaker records it; the registry writes the state-change event
        with self.lock:
            package = self._model_package(p["ModelPackageArn"])
            changes = {k: v for k, v in p.items() if k not in ("ModelPackageArn", "ClientToken")}
            changes["LastModifiedBy"] = caller or {}
            updated = self.registry.update_model_package(package["ModelPackageArn"], changes)
            log.info("updated model package %s (%s)", updated["ModelPackageArn"], ", ".join(sorted(changes)))
            return {"ModelPackageArn": updated["ModelPackageArn"]}


def _job_description(job: str, properties: dict, step: dict) -> dict:
    """A Describe<Job> answer (``job``: ``ProcessingJob``, ...) from a step's properties and its list entry."""
    status = _JOB_STATUS.get(step.get("StepStatus", "Succeeded"), "Completed")
    described: dict[str, Any] = {**properties, f"{job}Status": status}
    start, end = step.get("StartTime"), step.get("EndTime")
    described.setdefault("CreationTime", start)
    described.setdefault("LastModifiedTime", end or start)
    noun = job.removesuffix("Job")  # ProcessingStartTime, TrainingEndTime, ...: the API's own spelling
    described.setdefault(f"{noun}StartTime", start)
    if end:
        described.setdefault(f"{noun}EndTime", end)
    if step.get("FailureReason") and status in ("Failed", "Stopped"):
        described["FailureReason"] = step["FailureReason"]
    if job == "TrainingJob":
        described.setdefault("SecondaryStatus", status if status != "InProgress" else "Training")
        described["AlgorithmSpecification"] = {"TrainingInputMode": "File", **(described.get("AlgorithmSpecification") or {})}
        # Members botocore's model marks required, which a request may leave to SageMaker's defaults: the
        # artifact's URI (where it is, or would have been), the 1-day default run time.
        output_path = str((described.get("OutputDataConfig") or {}).get("S3OutputPath") or "").rstrip("/")
        described.setdefault("ModelArtifacts", {"S3ModelArtifacts": f"{output_path}/{properties[f'{job}Name']}/output/"
                                                                    "model.tar.gz"})
        described.setdefault("StoppingCondition", {"MaxRuntimeInSeconds": 86400})
    return described


def _max_parallel(parallelism: dict) -> int | None:
    """A ParallelismConfiguration's MaxParallelExecutionSteps; None leaves it to the definition (else 2)."""
    value = parallelism.get("MaxParallelExecutionSteps") if isinstance(parallelism, dict) else None
    return int(value) if value else None
