"""Regenerate the conformance definitions with the pinned SageMaker SDK v3 (offline, deterministic).

    .venv/bin/python tests/conformance/generate.py          # rewrites tests/conformance/definitions/*.json
    .venv/bin/python tests/conformance/generate.py --check  # exit 1 if a committed file differs

Every definition is what ``Pipeline.definition()`` returns for pipelines built here with the SDK's
own step classes (ProcessingStep, LambdaStep, CallbackStep, ConditionStep with In/Not/Or, FailStep,
CacheConfig, DependsOn), so the runner is tested on the SDK's JSON, not on JSON written by hand.
The one edit after the SDK: ``parallelism.json`` gets a top-level ``ParallelismConfiguration``
(the SDK passes it to CreatePipeline, not into the definition; hand-edited definitions carry it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # the repository root, for sm_pipeline

from sm_pipeline.config import PipelineConfig  # noqa: E402
from sm_pipeline.definition import _offline_session, _quiet_sdk, _sdk_variables, definition_dict  # noqa: E402

OUT = HERE / "definitions"
BUCKET = "s3://airsage-conformance"
CODE_URI = f"{BUCKET}/code/conformance_step.py"
ROWS_URI = f"{BUCKET}/data/rows/"
LAMBDA_ARN = "arn:aws:lambda:us-east-1:000000000000:function:classify-rows"
QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/000000000000/approve-model"
# Every ExpireAfter form AWS's caching guide documents, and ISO 8601's own.
EXPIRE_AFTER_FORMS = ("30d", "5y", "T16m", "30dT5h", "4w", "2m", "P30D", "PT12H")
C = "/opt/ml/processing"


def _build_all(config: PipelineConfig) -> dict[str, str]:
    from sagemaker.core import image_uris
    from sagemaker.core.lambda_helper import Lambda
    from sagemaker.core.processing import ScriptProcessor
    from sagemaker.core.shapes import ProcessingInput, ProcessingOutput, ProcessingS3Input, ProcessingS3Output
    from sagemaker.core.workflow.conditions import (
        ConditionEquals,
        ConditionGreaterThanOrEqualTo,
        ConditionIn,
        ConditionNot,
        ConditionOr,
    )
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join, JsonGet
    from sagemaker.core.workflow.parameters import ParameterInteger
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow.callback_step import CallbackOutput, CallbackOutputTypeEnum, CallbackStep
    from sagemaker.mlops.workflow.condition_step import ConditionStep
    from sagemaker.mlops.workflow.fail_step import FailStep
    from sagemaker.mlops.workflow.lambda_step import LambdaOutput, LambdaOutputTypeEnum, LambdaStep
    from sagemaker.mlops.workflow.pipeline import Pipeline
    from sagemaker.mlops.workflow.steps import CacheConfig, ProcessingStep

    session = _offline_session(config, telemetry_opt_out_by_config=False)
    image = image_uris.retrieve(framework="sklearn", region=config.region, version=config.sklearn_version,
                                py_version="py3", instance_type="ml.m5.large")

    def out_uri(step: str, name: str):
        return Join(on="/", values=[f"{BUCKET}/executions", ExecutionVariables.PIPELINE_EXECUTION_ID, step, name])

    def output(step: str, name: str) -> ProcessingOutput:
        return ProcessingOutput(output_name=name, s3_output=ProcessingS3Output(
            s3_uri=out_uri(step, name), local_path=f"{C}/{name}", s3_upload_mode="EndOfJob"))

    def step_input(name: str, source, distribution: str = "FullyReplicated") -> ProcessingInput:
        return ProcessingInput(input_name=name, s3_input=ProcessingS3Input(
            s3_uri=source, local_path=f"{C}/{name}", s3_data_type="S3Prefix", s3_input_mode="File",
            s3_data_distribution_type=distribution))

    def processing(name: str, mode: str, *, inputs=(), outputs=("out",), extra=(), instance_count=1,
                   **step_kwargs) -> ProcessingStep:
        processor = ScriptProcessor(role=config.role_arn, image_uri=image, command=["python3"],
                                    instance_count=instance_count, instance_type="ml.m5.large",
                                    base_job_name=f"conformance-{mode}", sagemaker_session=session)
        return ProcessingStep(name=name, step_args=processor.run(
            code=CODE_URI, inputs=list(inputs), outputs=[output(name, o) for o in outputs],
            arguments=[mode, *extra]), **step_kwargs)

    def pipeline(name: str, steps: list, parameters=()) -> str:
        return Pipeline(name=name, parameters=list(parameters), steps=steps, sagemaker_session=session).definition()

    built: dict[str, str] = {}

    # --- control flow: sharded processing, Lambda outputs in In/Not/Or conditions, DependsOn, Fail
    big_at = ParameterInteger(name="BigAt", default_value=10)
    min_rows = ParameterInteger(name="MinRows", default_value=5)
    shard = processing("ShardCount", "shard", instance_count=2,
                       inputs=[step_input("rows", ROWS_URI, "ShardedByS3Key")], outputs=("counts",))
    report = PropertyFile(name="RowReport", output_name="report", path="report.json")
    total = processing("SumCounts", "sum", outputs=("report",), property_files=[report],
                       inputs=[step_input("counts", shard.properties.ProcessingOutputConfig.Outputs["counts"].S3Output.S3Uri)])
    rows = JsonGet(step_name=total.name, property_file=report, json_path="rows")
    label, score = (LambdaOutput(output_name="label", output_type=LambdaOutputTypeEnum.String),
                    LambdaOutput(output_name="score", output_type=LambdaOutputTypeEnum.Float))
    classify = LambdaStep(name="ClassifyRows", lambda_func=Lambda(function_arn=LAMBDA_ARN, session=session),
                          inputs={"rows": rows, "big_at": big_at}, outputs=[label, score])
    # DependsOn without any data reference: it only has to wait for SumCounts.
    audit = processing("AuditAfterSum", "touch", depends_on=[total.name])
    publish = processing("PublishBig", "touch", depends_on=[classify.name])
    too_small = FailStep(name="TooSmall", error_message=Join(on=" ", values=[
        "label", classify.properties.Outputs["label"], "for", rows, "rows (big at", big_at, ")"]))
    gate = ConditionStep(name="GateOnLabel", conditions=[
        ConditionIn(value=classify.properties.Outputs["label"], in_values=["big", "huge"]),
        ConditionNot(expression=ConditionEquals(left=classify.properties.Outputs["score"], right=0.0)),
        ConditionOr(conditions=[ConditionGreaterThanOrEqualTo(left=rows, right=min_rows),
                                ConditionEquals(left=classify.properties.Outputs["label"], right="huge")]),
    ], if_steps=[publish], else_steps=[too_small])
    built["control_flow"] = pipeline("conformance-control-flow", [shard, total, classify, audit, gate],
                                     [big_at, min_rows])

    # --- CacheConfig in every accepted ExpireAfter form
    built["cache_forms"] = pipeline("conformance-cache", [
        processing(f"Cached{index}", "touch", extra=["--tag", form],
                   cache_config=CacheConfig(enable_caching=True, expire_after=form))
        for index, form in enumerate(EXPIRE_AFTER_FORMS)])

    # --- ParallelismConfiguration: four independent steps that each take a moment
    built["parallelism"] = pipeline("conformance-parallelism", [
        processing(f"Sleepy{index}", "sleep", extra=["--seconds", "1.0"]) for index in range(4)])

    # --- Callback: valid for SageMaker, not runnable locally (validate and run-local say the same)
    approve = CallbackStep(name="AwaitApproval", sqs_queue_url=QUEUE_URL, inputs={"model": "m"},
                           outputs=[CallbackOutput(output_name="approved", output_type=CallbackOutputTypeEnum.Boolean)])
    check = ConditionStep(name="IfApproved", conditions=[
        ConditionEquals(left=approve.properties.Outputs["approved"], right=True)],
        if_steps=[processing("AfterApproval", "touch")], else_steps=[])
    built["callback"] = pipeline("conformance-callback", [approve, check])
    return built


def definitions() -> dict[str, dict]:
    """``{file stem: definition}`` for every conformance definition, built offline with the SDK v3."""
    from sm_pipeline.offline_aws import offline_aws

    config = PipelineConfig()
    with offline_aws(_sdk_variables(config)), _quiet_sdk():
        built = {name: json.loads(text) for name, text in _build_all(config).items()}
    built["parallelism"]["ParallelismConfiguration"] = {"MaxParallelExecutionSteps": 1}
    # The project's own abalone pipeline: Processing, Training, Condition, ModelStep (RegisterModel
    # and Model), Transform, Fail, CacheConfig, PropertyFile — the default config.
    built["abalone"] = definition_dict(config)
    return built


def main(argv: list[str] | None = None) -> int:
    """Write (or with --check compare) tests/conformance/definitions/*.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed files instead of writing")
    args = parser.parse_args(argv)
    OUT.mkdir(exist_ok=True)
    stale = []
    for name, definition in sorted(definitions().items()):
        text = json.dumps(definition, sort_keys=True, indent=2) + "\n"
        path = OUT / f"{name}.json"
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(path.name)
        else:
            path.write_text(text)
            print(f"wrote {path.relative_to(HERE.parents[1])}")
    if stale:
        print(f"stale: {', '.join(stale)} (run tests/conformance/generate.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
