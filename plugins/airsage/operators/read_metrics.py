"""ReadPropertyFileOperator: one value out of a step's PropertyFile (evaluation.json → mse)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from airsage.operators._aws import AWS_TEMPLATE_FIELDS, AwsPipelineMixin


class ReadPropertyFileOperator(AwsPipelineMixin, BaseOperator):
    """Locate, read and validate a PropertyFile of a finished execution; push value and report.

    Location, SageMaker: the step's processing job output (ListPipelineExecutionSteps →
    DescribeProcessingJob); where the steps cannot be listed, the execution's own definition
    (DescribePipelineDefinitionForExecution) with the output S3Uri resolved by
    ``sm_pipeline.expressions``. Local: the stored definition, resolved the same way.
    Missing file, bad JSON, missing path and non-numeric/NaN values fail the task (no retry:
    they do not fix themselves) with a message naming the URI and the path.

    Returns ``{"value", "metric", "json_path", "report", "report_uri", "report_location",
    "execution_arn", "console_url", "model_package_arn", "quality_gate_failed", "failed_steps",
    "execution_page"}``.

    :param execution: the execution result dict (wait_for_execution / run_local XCom).
    :param pipeline: upsert_pipeline's XCom dict (local backend: where the definition is).
    """

    template_fields: Sequence[str] = (
        "execution", "pipeline", "step_name", "property_file", "json_path", "backend", "local_root",
        *AWS_TEMPLATE_FIELDS,
    )
    ui_color = "#f3e8fd"

    def __init__(self, *, execution: dict | Any, backend: str, step_name: str = "EvaluateAbalone",
                 property_file: str = "EvaluationReport", json_path: str = "regression_metrics.mse.value",
                 metric: str = "mse", pipeline: dict | Any = None, aws_conn_id: str | None = "aws_default",
                 region_name: str | None = None, local_root: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.execution = execution
        self.backend = backend
        self.step_name = step_name
        self.property_file = property_file
        self.json_path = json_path
        self.metric = metric
        self.pipeline = pipeline
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

    def _locate(self, store) -> str:
        from airsage.property_files import join_uri, property_file_location, resolve_uri

        arn = self.execution["execution_arn"]
        if self.backend == "sagemaker":
            definition = self.hook.definition_for_execution(arn)
        else:
            definition = json.loads(store.read_bytes(self.pipeline["definition_uri"]))
        output_name, expression, file_path = property_file_location(definition, self.step_name, self.property_file)
        if self.backend == "sagemaker":
            steps = self.hook.execution_steps(arn)
            base = self.hook.processing_output_uri(steps, self.step_name, output_name)
            if base is not None:
                return join_uri(base, file_path)
            self.log.info("Step outputs not listable here; resolving %s's output from the definition", self.step_name)
        else:
            from sm_pipeline.local import LocalExecutionStore

            steps = LocalExecutionStore(self.local_root).steps(self.execution["pipeline_name"],
                                                               self.execution["execution_id"])
        # a cached step's outputs live under the execution that ran it, not under this one
        record = next((s for s in steps or [] if s.get("StepName") == self.step_name), {})
        source_arn = (record.get("CacheHitResult") or {}).get("SourcePipelineExecutionArn") or arn
        if source_arn != arn:
            self.log.info("%s was a cache hit of %s", self.step_name, source_arn)
        base = resolve_uri(
            expression, execution_id=source_arn.rsplit("/", 1)[-1], execution_arn=source_arn,
            pipeline_name=self.execution["pipeline_name"], parameters=self.execution.get("parameters") or {},
            definition=definition,
        )
        return join_uri(base, file_path)
