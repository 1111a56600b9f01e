"""ReadPropertyFileOperator: one value out of a step's PropertyFile (the quality gate's metric)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from airsage.naming import run_ds
from airsage.operators._aws import AWS_TEMPLATE_FIELDS, AwsPipelineMixin


class ReadPropertyFileOperator(AwsPipelineMixin, BaseOperator):
    """Locate, read and validate a PropertyFile of a finished execution; push value and report.

    Location, SageMaker: the step's processing job output (ListPipelineExecutionSteps →
    DescribeProcessingJob); where the steps cannot be listed, the execution's own definition
    (DescribePipelineDefinitionForExecution) with the output S3Uri resolved by
    ``sm_pipeline.expressions``. Local: the definition the execution ran (its record), resolved the same way.
    A step the execution reused (a cache hit, a selective re-run's upstream step) is read where it ran; a
    step that did not run at all (left out of a selective re-run) fails the task saying so.
    Missing file, bad JSON, missing path and non-numeric/NaN values fail the task (no retry:
    they do not fix themselves) with a message naming the URI and the path.

    Returns ``{"value", "metric", "json_path", "report", "report_uri", "report_location",
    "execution_arn", "console_url", "model_package_arn", "quality_gate_failed", "failed_steps",
    "execution_page"}``.

    :param execution: the execution result dict (wait_for_execution / run_local XCom).
    :param step_name: the step whose PropertyFile holds the metric (the quality gate's ``step``).
    :param property_file: the PropertyFile's name; ``json_path``: where the metric is in it.
    :param metric: the metric's name, for logs and the XCom.
    """

    template_fields: Sequence[str] = (
        "execution", "step_name", "property_file", "json_path", "backend", "local_root",
        *AWS_TEMPLATE_FIELDS,
    )
    ui_color = "#f3e8fd"

    def __init__(self, *, execution: dict | Any, backend: str, step_name: str, property_file: str, json_path: str,
                 metric: str, aws_conn_id: str | None = "aws_default",
                 region_name: str | None = None, local_root: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.execution = execution
        self.backend = backend
        self.step_name = step_name
        self.property_file = property_file
        self.json_path = json_path
        self.metric = metric
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.local_root = local_root

    def execute(self, context) -> dict[str, Any]:
        from airsage.hooks.artifact_store import ArtifactNotFound, ArtifactStore
        from airsage.property_files import (
            PropertyFileError,
            json_path_value,
            numeric_value,
            parse_report,
        )

        store = ArtifactStore(self.backend, self.aws_conn_id, self.local_root)
        try:
            uri = self._locate(store)
            report = parse_report(store.read_bytes(uri), uri)
            value = numeric_value(json_path_value(report, self.json_path, uri), self.json_path, uri)
        except ArtifactNotFound as err:
            raise AirflowFailException(
                f"PropertyFile {self.property_file} of step {self.step_name} is missing: {err}"
            ) from None
        except PropertyFileError as err:
            raise AirflowFailException(f"PropertyFile {self.property_file}: {err}") from None

        from airsage.numbers import readable

        self.log.info("%s = %s (from %s)", self.metric, readable(value), store.location(uri))
        context["ti"].xcom_push(key="value", value=value)
        from airsage.assets import emit

        self._lineage = {"report_uri": uri, "report": report}
        emit(context, self.outlets, "metrics", {"ds": run_ds(context), "metric": self.metric, "value": value,
                                                "report_uri": uri, "execution_arn": self.execution.get("execution_arn")})
        return {
            "value": value,
            "metric": self.metric,
            "json_path": self.json_path,
            "report": report,
            "report_uri": uri,
            "report_location": store.location(uri),
            "execution_arn": self.execution.get("execution_arn"),
            "console_url": self.execution.get("console_url"),
            "model_package_arn": self.execution.get("model_package_arn"),
            "quality_gate_failed": bool(self.execution.get("quality_gate_failed")),
            "failed_steps": self.execution.get("failed_steps") or [],
            "execution_page": self.execution.get("execution_page"),
        }

    def get_openlineage_facets_on_complete(self, task_instance):
        """OpenLineage (the provider calls it): the evaluation PropertyFile in, with its numbers as a facet."""
        from airsage.lineage import evaluation_dataset, operator_lineage

        info = getattr(self, "_lineage", None)
        if not info:
            return operator_lineage()
        return operator_lineage(inputs=[evaluation_dataset(info["report_uri"], info["report"])])

    def _locate(self, store) -> str:
        from airsage.property_files import join_uri, property_file_location, resolve_uri

        arn = self.execution["execution_arn"]
        if self.backend == "sagemaker":
            definition = self.hook.definition_for_execution(arn)
        else:
            from sm_pipeline.local import LocalExecutionStore

            # the definition this execution ran (a pinned pipeline_version may not be the one deployed now)
            definition = LocalExecutionStore(self.local_root).definition(self.execution["pipeline_name"],
                                                                         self.execution["execution_id"])
        output_name, expression, file_path = property_file_location(definition, self.step_name, self.property_file)
        if self.backend == "sagemaker":
            steps = self.hook.execution_steps(arn)
            base = self.hook.processing_output_uri(steps, self.step_name, output_name)
            if base is not None:
                return join_uri(base, file_path)
            self.log.info("Step outputs not listable here; resolving %s's output from the definition", self.step_name)
        else:
            steps = LocalExecutionStore(self.local_root).steps(self.execution["pipeline_name"],
                                                               self.execution["execution_id"])
        record = next((s for s in steps or [] if s.get("StepName") == self.step_name), None)
        if steps and (record is None or record.get("StepStatus") == "NotExecuted"):
            raise AirflowFailException(
                f"step {self.step_name} did not run in {arn}, so there is no {self.metric} to gate on: a selective "
                f"re-run (rerun_steps) runs only its steps and those before them; select {self.step_name} too")
        # a cached or reused step's outputs live under the execution that ran it, not under this one
        record = record or {}
        source_arn = ((record.get("CacheHitResult") or {}).get("SourcePipelineExecutionArn")
                      or (record.get("SelectiveExecutionResult") or {}).get("SourcePipelineExecutionArn") or arn)
        if source_arn != arn:
            self.log.info("%s's outputs are those of %s (cache hit or selective re-run)", self.step_name, source_arn)
        base = resolve_uri(
            expression, execution_id=source_arn.rsplit("/", 1)[-1], execution_arn=source_arn,
            pipeline_name=self.execution["pipeline_name"], parameters=self.execution.get("parameters") or {},
            definition=definition,
        )
        return join_uri(base, file_path)
