"""UpsertPipelineOperator: deploy the pipeline definition (and its code) only when it changed."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.bases.skipmixin import SkipMixin
from airflow.sdk.exceptions import AirflowFailException

from airsage.operators._aws import AWS_TEMPLATE_FIELDS, AwsPipelineMixin


class UpsertPipelineOperator(AwsPipelineMixin, BaseOperator, SkipMixin):
    """Stage the code objects, then create/update the pipeline; no write when nothing changed.

    Before anything is written it logs what the deploy changes and what the run would re-run
    (``airsage.what_changed.preview``): the definition diff against the deployed one and the cache-impact
    plan against the pipeline's last Succeeded execution, also its XComs ``diff``
    (``{"summary": [lines], "changed", "detail"}``) and ``plan``. With the DAG param ``dry_run`` true it stops
    there: nothing uploaded, stored or updated, and its downstream tasks are skipped (the run task logs
    nothing; this task's log says "Dry run"); ``publish_report`` still runs and shows the dry run.

    ``sagemaker``: code goes to S3 (content-addressed keys, so an existing key is skipped)
    and the pipeline is upserted by definition hash (see SageMakerPipelineHook.upsert_pipeline).
    ``local``: code goes to the object root and the definition is stored there
    content-addressed at ``s3://{bucket}/{prefix}/pipelines/{name}/definition-{sha16}.json``,
    which is what ``run_local`` executes.

    The built definition is checked before anything is staged or deployed: the quality ``gate``
    (``QualityGate.as_arguments()``) must fit it (its step and PropertyFile exist, its Fail steps are
    Fail steps, its pipeline parameter is declared); a misfit fails the task at once, one line, no retry.

    :param source: a definition ``.json`` file, or ``"module:function"`` building the pipeline for
        ``config_overrides`` (see ``airsage.pipeline_source``); with the local backend a builder that
        takes ``cache_dir=`` gets a directory in the object root for its build cache.
    :param pipeline_name: the pipeline's name when the source does not name it (a definition file).
    :param gate: the DAG's quality gate, as ``QualityGate.as_arguments()``.
    :param config_overrides: config fields (bucket, prefix, role_arn, ...), templated.
    :param inputs: the stage task's XCom (templated): with ``parameters``, the run's parameter values the plan uses.
    :param parameters: the run's own pipeline parameter values (templated), as the start task gets them.
    :param dry_run: diff and plan only (templated, e.g. ``"{{ params.dry_run }}"``): true/"True"/"true".
    """

    template_fields: Sequence[str] = ("config_overrides", "backend", "local_root", "source", "inputs", "parameters",
                                      "dry_run", *AWS_TEMPLATE_FIELDS)
    template_fields_renderers = {"config_overrides": "json"}
    ui_color = "#fdf1e8"

    def __init__(self, *, backend: str, source: str, config_overrides: dict[str, Any] | None = None,
                 pipeline_name: str | None = None, gate: dict[str, Any] | None = None,
                 aws_conn_id: str | None = "aws_default", region_name: str | None = None,
                 local_root: str | None = None, inputs: dict | Any = None, parameters: dict[str, Any] | None = None,
                 dry_run: bool | str = False, **kwargs):
        super().__init__(**kwargs)
        self.backend = backend
        self.config_overrides = config_overrides or {}
        self.source = source
        self.pipeline_name = pipeline_name
        self.gate = gate
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.local_root = local_root
        self.inputs = inputs
        self.parameters = parameters or {}
        self.dry_run = dry_run

    def execute(self, context) -> dict[str, Any]:
        from airsage.hooks.artifact_store import ArtifactStore
        from airsage.pipeline_source import SourceError, build_source, definition_sha256
        from sm_pipeline.errors import InvalidInput

        overrides = dict(self.config_overrides)
        builder_kwargs = {}
        if self.backend == "sagemaker":
            if not overrides.get("region"):
                # image URIs in the definition are per region: build for the region we deploy to
                overrides["region"] = self.resolved_region
        else:
            from sm_pipeline.storage import INTERNAL_DIR

            # the object root outlives the task: an unchanged build is not paid for again
            builder_kwargs["cache_dir"] = str(Path(self.local_root) / INTERNAL_DIR / "definition-builds")
        try:
            src = build_source(self.source, overrides, pipeline_name=self.pipeline_name, **builder_kwargs)
        except (InvalidInput, SourceError) as err:
            # a bad config or source does not get better on retry
            raise AirflowFailException(f"pipeline configuration: {err}") from None
        self._check_gate(json.loads(src.definition))
        if self.backend == "sagemaker" and not src.role_arn:
            raise AirflowFailException("pipeline configuration: no execution role: set the Variable airsage_role_arn "
                                       "(the IAM role SageMaker runs the pipeline's steps with)")
        store = ArtifactStore(self.backend, self.aws_conn_id, self.local_root)
        dry_run = str(self.dry_run).strip().lower() in ("true", "1", "yes")
        self._preview(context, src, store, dry_run)
        if dry_run:
            return self._end_dry_run(context, src)
        uploaded = 0
        for obj in src.code_objects:
            if not store.exists(obj.s3_uri):
                store.put_bytes(obj.s3_uri, Path(obj.path).read_bytes(), "text/x-python")
                uploaded += 1
        self.log.info("Code objects: %d uploaded, %d already present", uploaded, len(src.code_objects) - uploaded)

        common = {"backend": self.backend, "bucket": src.bucket, "prefix": src.prefix, "code_uploaded": uploaded}
        if self.backend == "sagemaker":
            result = self.hook.upsert_pipeline(
                src.pipeline_name, src.definition, src.role_arn, src.description, src.tags
            )
            return {**result, **common, "definition_uri": None}

        digest = definition_sha256(src.definition)
        uri = f"s3://{src.bucket}/{src.prefix}/pipelines/{src.pipeline_name}/definition-{digest[:16]}.json"
        written = store.put_if_changed(uri, src.definition.encode("utf-8"), "application/json")
        from sm_pipeline.pipeline_versions import PipelineVersions, local_versions_dir

        # a version per definition change, as SageMaker keeps (PipelineVersionId); what pipeline_version pins,
        # and what the next upsert's diff compares against (the newest version is the deployed definition)
        with PipelineVersions(local_versions_dir(self.local_root, src.pipeline_name)).locked() as versions:
            version, new_version = versions.add_if_changed(src.definition, DefinitionUri=uri)
        self.log.info("Local pipeline %s definition %s: %s (version %d%s)", src.pipeline_name, digest[:16],
                      "stored" if written else "unchanged", version, ", new" if new_version else "")
        return {
            **common,
            "pipeline_name": src.pipeline_name,
            "pipeline_arn": None,
            "definition_sha256": digest,
            "definition_uri": uri,
            "pipeline_version_id": version,
            "action": "created" if written else "unchanged",
        }

    def _preview(self, context, src, store, dry_run: bool) -> None:
        """Log the diff against the deployed definition and the plan, and push both as XComs (before any write)."""
        from airsage.execution_inputs import run_parameters
        from airsage.what_changed import ExecutionFacts, code_reader, deployed_definition, preview

        facts = ExecutionFacts(self.backend, aws_conn_id=self.aws_conn_id, local_root=self.local_root,
                               hook=self.hook if self.backend == "sagemaker" else None)
        try:
            old = deployed_definition(self.backend, src.pipeline_name, facts=facts)
            diff, plan = preview(json.loads(src.definition), old, facts=facts, pipeline_name=src.pipeline_name,
                                 parameters=run_parameters(self.parameters, self.inputs),
                                 read_code=code_reader(store, src.code_objects))
        except Exception as err:  # noqa: BLE001 - a preview that fails must not stop a deploy; a dry run fails
            if dry_run:
                raise AirflowFailException(f"dry run: cannot diff or plan: {type(err).__name__}: {err}") from None
            self.log.warning("What this deploy changes is not known: %s: %s", type(err).__name__, err)
            line = [f"not known: {type(err).__name__}: {err}"]
            diff, plan = {"summary": line, "changed": None, "detail": None}, {"error": str(err), "summary": line}
        self.log.info("What this deploy changes (pipeline %s):\n%s", src.pipeline_name, "\n".join(diff["summary"]))
        self.log.info("What the run would re-run:\n%s", "\n".join(plan["summary"]))
        context["ti"].xcom_push(key="diff", value=diff)
        context["ti"].xcom_push(key="plan", value=plan)

    def _end_dry_run(self, context, src) -> dict[str, Any]:
        """Skip the run task (and so everything after it but the report): nothing was uploaded or updated."""
        # a task that is to run after a dry run says so with a trigger rule that lets skipped upstreams through
        runs = [task for task in self.get_direct_relatives(upstream=False) if task.trigger_rule == "all_success"]
        self.log.info("Dry run: pipeline %s was not updated and no execution starts; skipping %s",
                      src.pipeline_name, ", ".join(sorted(t.task_id for t in runs)) or "nothing")
        self.skip(context["ti"], runs)
        return {"dry_run": True, "pipeline_name": src.pipeline_name}

    def _check_gate(self, definition: dict) -> None:
        """Fail (one line, no retry) before anything is deployed when the DAG's quality gate does not fit."""
        if not self.gate:
            return
        from airsage.quality_gate import QualityGate

        problems = QualityGate(**self.gate).definition_problems(definition)
        if problems:
            raise AirflowFailException(f"pipeline configuration: {problems[0]}"
                                       + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))
