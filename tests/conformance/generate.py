"""Regenerate the conformance definitions with the pinned SageMaker SDK v3 (offline, deterministic).

    .venv/bin/python tests/conformance/generate.py          # rewrites tests/conformance/definitions/*.json
    .venv/bin/python tests/conformance/generate.py --check  # exit 1 if a committed file differs

Every definition is what ``Pipeline.definition()`` returns for pipelines built here with the SDK's
own step classes (ProcessingStep, LambdaStep, CallbackStep, ConditionStep with In/Not/Or, FailStep,
ForEachStep, EndpointConfigStep, LineageStep, ..., CacheConfig, DependsOn, StepDependency), so the runner
is tested on the SDK's JSON, not on JSON written by hand; ``evaluation.json`` is the SDK's own evaluation
pipeline template rendered by the SDK's own renderer (what ``sagemaker.train.evaluate`` deploys).
The one edit after the SDK: ``parallelism.json`` gets a top-level ``ParallelismConfiguration``
(the SDK passes it to CreatePipeline, not into the definition; hand-edited definitions carry it).
``tests/conformance/test_generated.py`` runs ``--check``, so the committed files stay what the pinned
SDK writes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # the repository root, for sm_pipeline

from sm_pipeline.abalone.config import PipelineConfig  # noqa: E402
from sm_pipeline.abalone.definition import _offline_session, _quiet_sdk, _sdk_variables, definition_dict  # noqa: E402
from sm_pipeline.storage_io import write_text_atomic  # noqa: E402

OUT = HERE / "definitions"
BUCKET = "s3://airsage-conformance"
CODE_URI = f"{BUCKET}/code/conformance_step.py"
ROWS_URI = f"{BUCKET}/data/rows/"
LAMBDA_ARN = "arn:aws:lambda:us-east-1:000000000000:function:classify-rows"
SCORE_ARN = "arn:aws:lambda:us-east-1:000000000000:function:score-item"
# The ForEach's items: JSON objects whose fields the body steps read through CurrentItem.
FOR_EACH_ITEMS = [{"name": "alpha", "rows": "3"}, {"name": "beta", "rows": "7"}, {"name": "gamma", "rows": "5"}]
FOR_EACH_JOB_ITEMS = [{"name": "north", "hosts": 2}, {"name": "south", "hosts": 1}, {"name": "east", "hosts": 2}]
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

    def output(step: str, name: str, out_at=None) -> ProcessingOutput:
        return ProcessingOutput(output_name=name, s3_output=ProcessingS3Output(
            s3_uri=(out_at or out_uri)(step, name), local_path=f"{C}/{name}", s3_upload_mode="EndOfJob"))

    def step_input(name: str, source, distribution: str = "FullyReplicated") -> ProcessingInput:
        return ProcessingInput(input_name=name, s3_input=ProcessingS3Input(
            s3_uri=source, local_path=f"{C}/{name}", s3_data_type="S3Prefix", s3_input_mode="File",
            s3_data_distribution_type=distribution))

    def processing(name: str, mode: str, *, inputs=(), outputs=("out",), extra=(), instance_count=1, out_at=None,
                   **step_kwargs) -> ProcessingStep:
        processor = ScriptProcessor(role=config.role_arn, image_uri=image, command=["python3"],
                                    instance_count=instance_count, instance_type="ml.m5.large",
                                    base_job_name=f"conformance-{mode}", sagemaker_session=session)
        return ProcessingStep(name=name, step_args=processor.run(
            code=CODE_URI, inputs=list(inputs), outputs=[output(name, o, out_at) for o in outputs],
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

    built["for_each"] = _for_each(session, processing, out_uri, pipeline)
    built["for_each_jobs"] = _for_each_jobs(processing, out_uri, pipeline)
    built["references"] = _references(session, config, processing, out_uri)
    built["step_types"] = _step_types(session, config, processing, pipeline)
    built["run_conditions"] = _run_conditions(processing, pipeline)
    return built


def _for_each(session, processing, out_uri, pipeline) -> str:
    """ForEach over a parameter's JSON list (a Processing and a Lambda body step, a MaxBy Selector) and over a
    literal list, read downstream through Selected, IterationOutputs and the child counts."""
    from sagemaker.core.lambda_helper import Lambda
    from sagemaker.core.workflow.conditions import ConditionEquals
    from sagemaker.core.workflow.functions import Join
    from sagemaker.core.workflow.parameters import ParameterString
    from sagemaker.mlops.workflow.condition_step import ConditionStep
    from sagemaker.mlops.workflow.fail_step import FailStep
    from sagemaker.mlops.workflow.for_each_step import (
        CurrentItem,
        ForEachSelector,
        ForEachStep,
        IterationOutput,
    )
    from sagemaker.mlops.workflow.lambda_step import LambdaOutput, LambdaOutputTypeEnum, LambdaStep

    items = ParameterString(name="Items", default_value=json.dumps(FOR_EACH_ITEMS))
    fail_on = ParameterString(name="FailOn", default_value="none")
    item = CurrentItem()
    # Each child writes under its own item's name: children of one body step must not share an output.
    count = processing("CountItem", "item", extra=["--name", item.name, "--rows", item.rows, "--fail-on", fail_on],
                       out_at=lambda step, name: out_uri(step, Join(on="/", values=[item.name, name])))
    score = LambdaStep(name="ScoreItem", lambda_func=Lambda(function_arn=SCORE_ARN, session=session),
                       inputs={"name": item.name, "rows": item["rows"],
                               "marker": count.properties.ProcessingOutputConfig.Outputs["out"].S3Output.S3Uri},
                       outputs=[LambdaOutput(output_name="score", output_type=LambdaOutputTypeEnum.Float),
                                LambdaOutput(output_name="label", output_type=LambdaOutputTypeEnum.String)])
    each = ForEachStep(name="ScoreEach", iterable_items=items, max_concurrency=2, for_each_body=[count, score],
                       selector=ForEachSelector("MaxBy", IterationOutput(score).OutputParameters["score"]))
    echo = LambdaStep(name="EchoTag", lambda_func=Lambda(function_arn=SCORE_ARN, session=session),
                      inputs={"name": item, "rows": "1", "marker": "none"},
                      outputs=[LambdaOutput(output_name="score", output_type=LambdaOutputTypeEnum.Float),
                               LambdaOutput(output_name="label", output_type=LambdaOutputTypeEnum.String)])
    tags = ForEachStep(name="EachTag", iterable_items=["red", "green", "blue"], max_concurrency=1,
                       for_each_body=[echo], selector=ForEachSelector("MinBy", IterationOutput(echo).OutputParameters[
                           "score"]))
    best = processing("UseBest", "touch", extra=[
        "--tag", Join(on="|", values=[
            each.properties.Selected.OutputParameters["label"],
            each.properties.IterationOutputs[0].CountItem.ProcessingOutputConfig.Outputs["out"].S3Output.S3Uri,
            each.properties.SucceededStepCount, each.properties.TotalStepCount, each.properties.InputItemCount,
            tags.properties.Selected.OutputParameters["label"]])])
    done = ConditionStep(name="AllSucceeded", conditions=[ConditionEquals(left=each.properties.Status, right="Succeeded")],
                         if_steps=[best], else_steps=[FailStep(name="NotAll", error_message="a ForEach child failed")])
    return pipeline("conformance-for-each", [each, tags, done], [items, fail_on])


def _for_each_jobs(processing, out_uri, pipeline) -> str:
    """ForEach over a literal list of JSON-object strings with a Processing body alone (what the emulated
    service runs: no Lambda), its InstanceCount from the item, a MinBy Selector on that InstanceCount."""
    from sagemaker.core.workflow.functions import Join
    from sagemaker.mlops.workflow.for_each_step import (
        CurrentItem,
        ForEachSelector,
        ForEachStep,
        IterationOutput,
    )

    item = CurrentItem()
    hosts = processing("ItemOnHosts", "item", extra=["--name", item.name], instance_count=item.hosts,
                       out_at=lambda step, name: out_uri(step, Join(on="/", values=[item.name, name])))
    each = ForEachStep(name="EachOnHosts", iterable_items=[json.dumps(i) for i in FOR_EACH_JOB_ITEMS],
                       max_concurrency=2, for_each_body=[hosts],
                       selector=ForEachSelector("MinBy", IterationOutput(hosts).ProcessingResources.ClusterConfig
                                                .InstanceCount))
    after = processing("AfterEach", "touch", extra=["--tag", Join(on="|", values=[
        each.properties.Selected.ProcessingOutputConfig.Outputs["out"].S3Output.S3Uri,
        each.properties.SucceededStepCount])])
    return pipeline("conformance-for-each-jobs", [each, after])


def _references(session, config, processing, out_uri) -> str:
    """Every Get namespace the SDK writes outside a ForEach: Parameters, Execution (each variable), Steps and
    PipelineExperimentConfig (ExperimentName, TrialName), resolved into one step's container arguments."""
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join
    from sagemaker.core.workflow.parameters import ParameterString
    from sagemaker.mlops.workflow.pipeline import Pipeline
    from sagemaker.mlops.workflow.pipeline_experiment_config import (
        PipelineExperimentConfig,
        PipelineExperimentConfigProperties,
    )

    tag = ParameterString(name="Tag", default_value="conformance")
    first = processing("FirstStep", "touch", extra=["--tag", tag])
    variables = [ExecutionVariables.PIPELINE_NAME, ExecutionVariables.PIPELINE_ARN,
                 ExecutionVariables.PIPELINE_EXECUTION_ID, ExecutionVariables.PIPELINE_EXECUTION_ARN,
                 ExecutionVariables.START_DATETIME, ExecutionVariables.CURRENT_DATETIME]
    echo = processing("EchoReferences", "touch", extra=[
        "--tag", Join(on="|", values=[
            tag, *variables, first.properties.ProcessingJobName,
            PipelineExperimentConfigProperties.EXPERIMENT_NAME, PipelineExperimentConfigProperties.TRIAL_NAME])])
    experiment = PipelineExperimentConfig(Join(on="-", values=["experiment", ExecutionVariables.PIPELINE_NAME]),
                                          Join(on="-", values=["trial", ExecutionVariables.PIPELINE_EXECUTION_ID]))
    return Pipeline(name="conformance-references", parameters=[tag], steps=[first, echo], sagemaker_session=session,
                    pipeline_experiment_config=experiment).definition()


def _step_types(session, config, processing, pipeline) -> str:
    """A step of each SDK 3.x step type that no other definition here has and the SDK builds offline:
    valid for SageMaker, not runnable locally (each gets its 'cannot run locally' line)."""
    from sagemaker.core.lineage.action import Action
    from sagemaker.core.lineage.artifact import Artifact
    from sagemaker.mlops.workflow.cleanup_step import CleanupStep, S3CleanupSource
    from sagemaker.mlops.workflow.emr_serverless_step import EMRServerlessJobConfig, EMRServerlessStep
    from sagemaker.mlops.workflow.emr_step import EMRStep, EMRStepConfig
    from sagemaker.mlops.workflow.endpoint_step import EndpointConfigStep, EndpointStep
    from sagemaker.mlops.workflow.inference_component_step import InferenceComponentStep
    from sagemaker.mlops.workflow.lineage_step import LineageAssociation, LineageEntityReference, LineageStep

    variant = {"VariantName": "AllTraffic", "ModelName": "conformance-model", "InitialInstanceCount": 1,
               "InstanceType": "ml.m5.large"}
    config_step = EndpointConfigStep(name="MakeEndpointConfig", step_args=session.create_endpoint_config(
        name="conformance-config", production_variants=[variant]))
    endpoint = EndpointStep(name="MakeEndpoint", step_args=session.create_endpoint(
        endpoint_name="conformance-endpoint", config_name=config_step.properties.EndpointConfigName))
    component = InferenceComponentStep(name="MakeComponent", step_args=session.create_inference_component(
        inference_component_name="conformance-component", endpoint_name=endpoint.properties.EndpointName,
        variant_name="AllTraffic", specification={"ModelName": "conformance-model", "ComputeResourceRequirements": {
            "MinMemoryRequiredInMb": 1024}}, runtime_config={"CopyCount": 1}))
    lineage = LineageStep(
        name="RecordLineage",
        actions=[Action.create(action_name="conformance-run", source_uri=f"{BUCKET}/run", source_type="S3ETag",
                               action_type="ModelTraining", sagemaker_session=session)],
        artifacts=[Artifact.create(artifact_name="conformance-model", source_uri=f"{BUCKET}/model.tar.gz",
                                   artifact_type="Model", sagemaker_session=session)],
        associations=[LineageAssociation(source=LineageEntityReference(name="conformance-run", type="Action"),
                                         destination=LineageEntityReference(name="conformance-model", type="Artifact"),
                                         association_type="Produced")])
    emr = EMRStep(name="RunEmr", display_name="EMR job", description="a Hadoop jar step on a running cluster",
                  cluster_id="j-CONFORMANCE", step_config=EMRStepConfig(jar=f"{BUCKET}/jobs/job.jar", args=["--x"]))
    serverless = EMRServerlessStep(
        name="RunEmrServerless", display_name="EMR Serverless job", description="a Spark job on an application",
        job_config=EMRServerlessJobConfig(job_driver={"sparkSubmit": {"entryPoint": f"{BUCKET}/jobs/job.py"}},
                                          execution_role_arn=config.role_arn), application_id="conformance-app")
    source = processing("WriteScratch", "touch")
    cleanup = CleanupStep(name="CleanScratch", s3_sources=[S3CleanupSource(source, s3_uris=[
        source.properties.ProcessingOutputConfig.Outputs["out"].S3Output.S3Uri])])
    return pipeline("conformance-step-types", [config_step, endpoint, component, lineage, emr, serverless, source,
                                               cleanup])


def _run_conditions(processing, pipeline) -> str:
    """The SDK 3.x's StepDependency with a trigger: a step that runs when another fails, one when it ends at all."""
    from sagemaker.mlops.workflow.step_dependency import StepDependency, TriggerCondition

    train = processing("MayFail", "touch")
    on_failure = processing("NotifyOnFailure", "touch", depends_on=[StepDependency(train, TriggerCondition.FAILED)])
    always = processing("AlwaysAfter", "touch", depends_on=[StepDependency(train, TriggerCondition.ANY)])
    return pipeline("conformance-run-conditions", [train, on_failure, always])


def _evaluation() -> dict:
    """The SDK 3.x's deterministic-evaluation pipeline (sagemaker.train.evaluate), rendered by the SDK itself:
    a Lineage step and serverless Training steps (ServerlessJobConfig, no algorithm image)."""
    from sagemaker.train.evaluate.base_evaluator import BaseEvaluator
    from sagemaker.train.evaluate.pipeline_templates import DETERMINISTIC_TEMPLATE

    account = "arn:aws:sagemaker:us-east-1:000000000000"
    context = {
        "mlflow_resource_arn": f"{account}:mlflow-tracking-server/conformance",
        "pipeline_name": "conformance-evaluation", "evaluate_base_model": True,
        "role_arn": "arn:aws:iam::000000000000:role/AirsageSageMakerExecution",
        "base_model_arn": "arn:aws:sagemaker:us-east-1:aws:hub-content/SageMakerPublicHub/Model/conformance-base/1.0.0",
        "source_model_package_arn": f"{account}:model-package/conformance-models/1",
        "model_package_group_arn": f"{account}:model-package-group/conformance-models",
        "task": "mmlu", "strategy": "zs_cot", "evaluation_metric": "accuracy",
        "s3_output_path": f"{BUCKET}/evaluation", "dataset_uri": f"{BUCKET}/evaluation/dataset.jsonl",
        "dataset_artifact_arn": f"{account}:artifact/conformance-dataset",
        "action_arn_prefix": f"{account}:action",
    }
    return json.loads(BaseEvaluator._render_pipeline_definition(DETERMINISTIC_TEMPLATE, context))


def definitions() -> dict[str, dict]:
    """``{file stem: definition}`` for every conformance definition, built offline with the SDK v3."""
    from sm_pipeline.offline_aws import offline_aws

    config = PipelineConfig()
    with offline_aws(_sdk_variables(config)), _quiet_sdk():
        built = {name: json.loads(text) for name, text in _build_all(config).items()}
        built["evaluation"] = _evaluation()
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
            write_text_atomic(path, text)
            print(f"wrote {path.relative_to(HERE.parents[1])}")
    if stale:
        print(f"stale: {', '.join(stale)} (run tests/conformance/generate.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
