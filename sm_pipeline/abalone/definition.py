"""The abalone pipeline, built with the SageMaker Python SDK v3, offline and deterministically.

Step names, parameter names, the S3 layout and script arguments follow docs/CONTRACTS.md.

Offline: the SDK is handed a PipelineSession whose default bucket is the configured one and
whose defaults config is empty, the scripts as content-addressed S3 URIs
(:mod:`sm_pipeline.abalone.code_staging`), an explicit output location for every job, explicit role
ARNs (with ``SAGEMAKER_VALIDATE_ROLE=false`` so no IAM call) and telemetry kept off the network
(:mod:`sm_pipeline.telemetry`). Building makes no AWS call and resolves no credentials: boto3
clients are created but never used, inside :func:`sm_pipeline.offline_aws.offline_aws`, which
keeps botocore's credential chain away from ``~/.aws`` and the instance-metadata service for the
duration of the build and restores the process's environment afterwards.

Deterministic: job and model names (timestamps, uuids) are trimmed by the SDK from pipeline
definitions; everything else comes from the config and the scripts' hashes, and the JSON is
serialised canonically.

Every ``sagemaker`` import lives inside a function: importing the SDK takes seconds and Airflow
imports this package lazily.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sm_pipeline.abalone.code_staging import code_objects
from sm_pipeline.abalone.config import PipelineConfig

if TYPE_CHECKING:  # pragma: no cover
    from sagemaker.mlops.workflow.pipeline import Pipeline

PREPROCESS_STEP = "PreprocessAbalone"
TRAIN_STEP = "TrainAbalone"
EVALUATE_STEP = "EvaluateAbalone"
CONDITION_STEP = "CheckMseAbalone"
REGISTER_STEP = "RegisterAbaloneModel"
CREATE_MODEL_STEP = "CreateAbaloneModel"
TRANSFORM_STEP = "TransformAbalone"
FAIL_STEP = "AbaloneMseFail"

PROPERTY_FILE = "EvaluationReport"
EVALUATION_OUTPUT = "evaluation"
EVALUATION_FILE = "evaluation.json"
MSE_JSON_PATH = "regression_metrics.mse.value"

PARAMETER_NAMES = (
    "ProcessingInstanceCount",
    "ProcessingInstanceType",
    "TrainingInstanceType",
    "ModelApprovalStatus",
    "InputData",
    "BatchData",
    "MseThreshold",
)

XGBOOST_HYPERPARAMETERS = {
    "objective": "reg:squarederror",
    "num_round": 50,
    "max_depth": 5,
    "eta": 0.2,
    "gamma": 4,
    "min_child_weight": 6,
    "subsample": 0.7,
}

PREPROCESS_OUTPUTS = ("train", "validation", "test", "batch")
CONTAINER = "/opt/ml/processing"


def pipeline_tags(config: PipelineConfig) -> list[dict[str, str]]:
    """The pipeline's tags in the API's ``[{"Key", "Value"}]`` shape, sorted by key (for upsert)."""
    return [{"Key": k, "Value": v} for k, v in sorted(config.tags.items())]


_EMPTY_SDK_CONFIG = Path(__file__).with_name("sdk_defaults.yaml")
_SDK_CONFIG_OVERRIDES = (
    "SAGEMAKER_ADMIN_CONFIG_OVERRIDE", "SAGEMAKER_USER_CONFIG_OVERRIDE",            # sagemaker.core.config
    "SAGEMAKER_CORE_ADMIN_CONFIG_OVERRIDE", "SAGEMAKER_CORE_USER_CONFIG_OVERRIDE",  # resource defaults
)


def _sdk_variables(config: PipelineConfig) -> dict[str, str]:
    """Environment variables the SDK reads while it is imported and builds (set only for the build)."""
    variables = {
        # ModelTrainer/ModelBuilder call IAM to validate the role unless told not to; the role
        # ARN is already validated by the config. A caller's explicit choice wins.
        "SAGEMAKER_VALIDATE_ROLE": os.environ.get("SAGEMAKER_VALIDATE_ROLE", "false"),
        # Importing sagemaker.mlops builds boto3 clients at module level and fails without a
        # region; the AWS config file that might hold one is hidden during the build.
        "AWS_DEFAULT_REGION": config.region,
        "AWS_REGION": config.region,
    }
    # The SDK merges admin/user config files (/etc/xdg/sagemaker, ~/.config/sagemaker) into
    # what it builds; pinning every lookup to an empty packaged file keeps the definition a
    # function of airsage's config alone (deterministic across machines).
    variables.update({variable: str(_EMPTY_SDK_CONFIG) for variable in _SDK_CONFIG_OVERRIDES})
    return variables


def _offline_session(config: PipelineConfig, telemetry_opt_out_by_config: bool):
    """A PipelineSession that never needs the network to answer what the builders ask it."""
    import boto3
    from sagemaker.core.workflow.pipeline_context import PipelineSession

    # A minimal config is passed because an empty one makes the SDK read the user's and the
    # admin's SDK defaults files (which may live in S3 and would make the JSON depend on the
    # machine). It is validated once here; afterwards the session's config is emptied so each
    # of the SDK's config lookups returns at once instead of re-validating the schema.
    minimal = {"SchemaVersion": "1.0"}
    session = PipelineSession(
        # Credential-less: created inside offline_aws(), so its clients can never sign a request.
        boto_session=boto3.Session(region_name=config.region),
        default_bucket=config.bucket,
        sagemaker_config=minimal,
    )
    if telemetry_opt_out_by_config:
        # The slow documented opt-out, only when the cheap one is unavailable (see telemetry.py).
        session.sagemaker_config = {
            "SchemaVersion": "1.0",
            "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
        }
    else:
        session.sagemaker_config = {}
    return session


def _execution_uri(config: PipelineConfig, step: str, *parts: str):
    """``s3://{bucket}/{prefix}/executions/{PIPELINE_EXECUTION_ID}/{step}/{parts...}``."""
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join

    return Join(
        on="/",
        values=[f"{config.s3_root}/executions", ExecutionVariables.PIPELINE_EXECUTION_ID, step, *parts],
    )


def _retry_policies(config: PipelineConfig, job: bool) -> list:
    """Service faults and throttling for every step; capacity/limit/internal errors for jobs."""
    from sagemaker.mlops.workflow.retry import (
        SageMakerJobExceptionTypeEnum,
        SageMakerJobStepRetryPolicy,
        StepExceptionTypeEnum,
        StepRetryPolicy,
    )

    common = {
        "backoff_rate": config.retry_backoff_rate,
        "interval_seconds": config.retry_interval_seconds,
        "max_attempts": config.retry_max_attempts,
    }
    policies = [
        StepRetryPolicy(
            exception_types=[StepExceptionTypeEnum.SERVICE_FAULT, StepExceptionTypeEnum.THROTTLING], **common
        )
    ]
    if job:
        policies.append(
            SageMakerJobStepRetryPolicy(
                exception_types=[
                    SageMakerJobExceptionTypeEnum.CAPACITY_ERROR,
                    SageMakerJobExceptionTypeEnum.RESOURCE_LIMIT,
                    SageMakerJobExceptionTypeEnum.INTERNAL_ERROR,
                ],
                **common,
            )
        )
    return policies


def _processing_input(name: str, source, local_path: str):
    from sagemaker.core.shapes import ProcessingInput, ProcessingS3Input

    return ProcessingInput(
        input_name=name,
        s3_input=ProcessingS3Input(
            s3_uri=source,
            local_path=local_path,
            s3_data_type="S3Prefix",
            s3_input_mode="File",
            s3_data_distribution_type="FullyReplicated",
        ),
    )


def _processing_output(config: PipelineConfig, step: str, name: str, local_path: str):
    from sagemaker.core.shapes import ProcessingOutput, ProcessingS3Output

    return ProcessingOutput(
        output_name=name,
        s3_output=ProcessingS3Output(
            s3_uri=_execution_uri(config, step, name), local_path=local_path, s3_upload_mode="EndOfJob"
        ),
    )


def _build(config: PipelineConfig, telemetry_opt_out_by_config: bool) -> Pipeline:
    from sagemaker.core import image_uris
    from sagemaker.core.model_metrics import MetricsSource, ModelMetrics
    from sagemaker.core.network import NetworkConfig
    from sagemaker.core.processing import ScriptProcessor
    from sagemaker.core.shapes import Channel, DataSource, OutputDataConfig, S3DataSource, Tag
    from sagemaker.core.training.configs import Compute, Networking
    from sagemaker.core.transformer import Transformer
    from sagemaker.core.workflow.conditions import ConditionLessThanOrEqualTo
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join, JsonGet
    from sagemaker.core.workflow.parameters import ParameterFloat, ParameterInteger, ParameterString
    from sagemaker.core.workflow.properties import PropertyFile
    from sagemaker.mlops.workflow.condition_step import ConditionStep
    from sagemaker.mlops.workflow.fail_step import FailStep
    from sagemaker.mlops.workflow.model_step import ModelStep
    from sagemaker.mlops.workflow.pipeline import Pipeline
    from sagemaker.mlops.workflow.pipeline_experiment_config import PipelineExperimentConfig
    from sagemaker.mlops.workflow.steps import CacheConfig, ProcessingStep, TrainingStep, TransformStep
    from sagemaker.serve.model_builder import ModelBuilder
    from sagemaker.train import ModelTrainer

    session = _offline_session(config, telemetry_opt_out_by_config)
    code = {obj.script: obj.s3_uri for obj in code_objects(config)}
    tag_dicts = pipeline_tags(config)
    cache = CacheConfig(enable_caching=config.cache_enabled, expire_after=config.cache_expire_after)
    kms = config.kms_key_id

    processing_instance_count = ParameterInteger(name="ProcessingInstanceCount", default_value=1)
    processing_instance_type = ParameterString(
        name="ProcessingInstanceType", default_value=config.processing_instance_type
    )
    training_instance_type = ParameterString(name="TrainingInstanceType", default_value=config.training_instance_type)
    model_approval_status = ParameterString(name="ModelApprovalStatus", default_value="PendingManualApproval")
    input_data = ParameterString(name="InputData", default_value=config.default_input_data_uri)
    batch_data = ParameterString(name="BatchData", default_value=config.default_batch_data_uri)
    mse_threshold = ParameterFloat(name="MseThreshold", default_value=config.mse_threshold)

    # image_uris.retrieve reads the SDK's bundled JSON tables; no registry lookup.
    sklearn_image = image_uris.retrieve(
        framework="sklearn", region=config.region, version=config.sklearn_version, py_version="py3",
        instance_type=config.processing_instance_type,
    )
    xgboost_image = image_uris.retrieve(framework="xgboost", region=config.region, version=config.xgboost_version)

    # Processing jobs take a NetworkConfig, ModelTrainer and ModelBuilder a Networking: the same
    # three settings, or None when neither a VPC nor isolation is configured.
    network_settings = None
    if config.subnets or config.enable_network_isolation:
        network_settings = {
            "enable_network_isolation": config.enable_network_isolation,
            "subnets": list(config.subnets) or None,
            "security_group_ids": list(config.security_group_ids) or None,
        }
    network_config = NetworkConfig(**network_settings) if network_settings else None
    networking = Networking(**network_settings) if network_settings else None

    def processing_step(
        name: str, image: str, base_job_name: str, script: str, *,
        inputs: list, outputs: tuple[str, ...], arguments: list[str], property_files: list | None = None,
    ) -> ProcessingStep:
        """A cached, retried step running ``script`` with python3; output ``o`` is written from ``{CONTAINER}/o``."""
        processor = ScriptProcessor(
            role=config.role_arn,
            image_uri=image,
            command=["python3"],
            instance_count=processing_instance_count,
            instance_type=processing_instance_type,
            volume_kms_key=kms,
            output_kms_key=kms,
            base_job_name=base_job_name,
            sagemaker_session=session,
            tags=tag_dicts,
            network_config=network_config,
        )
        return ProcessingStep(
            name=name,
            step_args=processor.run(
                code=code[script],
                inputs=inputs,
                outputs=[_processing_output(config, name, o, f"{CONTAINER}/{o}") for o in outputs],
                arguments=arguments,
            ),
            property_files=property_files,
            cache_config=cache,
            retry_policies=_retry_policies(config, job=True),
        )

    # --- preprocess -------------------------------------------------------------------------
    preprocess = processing_step(
        PREPROCESS_STEP, sklearn_image, "airsage-abalone-preprocess", "preprocess.py",
        inputs=[
            _processing_input("input", input_data, f"{CONTAINER}/input"),
            _processing_input("batch-input", batch_data, f"{CONTAINER}/batch-input"),
        ],
        outputs=PREPROCESS_OUTPUTS,
        arguments=[
            "--input-dir", f"{CONTAINER}/input",
            "--batch-input-dir", f"{CONTAINER}/batch-input",
            "--train-dir", f"{CONTAINER}/train",
            "--validation-dir", f"{CONTAINER}/validation",
            "--test-dir", f"{CONTAINER}/test",
            "--batch-dir", f"{CONTAINER}/batch",
            "--resource-config", "/opt/ml/config/resourceconfig.json",
            "--seed", "42",
        ],
    )

    def preprocess_output(name: str):
        return preprocess.properties.ProcessingOutputConfig.Outputs[name].S3Output.S3Uri

    # --- train ------------------------------------------------------------------------------
    def csv_channel(name: str) -> Channel:
        return Channel(
            channel_name=name,
            content_type="text/csv",
            data_source=DataSource(
                s3_data_source=S3DataSource(
                    s3_data_type="S3Prefix",
                    s3_uri=preprocess_output(name),
                    s3_data_distribution_type="FullyReplicated",
                )
            ),
        )

    trainer = ModelTrainer(
        training_image=xgboost_image,
        role=config.role_arn,
        sagemaker_session=session,
        base_job_name="airsage-abalone-train",
        compute=Compute(
            instance_type=training_instance_type, instance_count=1, volume_size_in_gb=30, volume_kms_key_id=kms
        ),
        networking=networking,
        output_data_config=OutputDataConfig(s3_output_path=_execution_uri(config, TRAIN_STEP, "model"), kms_key_id=kms),
        hyperparameters=dict(XGBOOST_HYPERPARAMETERS),
        tags=[Tag(key=t["Key"], value=t["Value"]) for t in tag_dicts],
    )
    train = TrainingStep(
        name=TRAIN_STEP,
        step_args=trainer.train(input_data_config=[csv_channel("train"), csv_channel("validation")]),
        cache_config=cache,
        retry_policies=_retry_policies(config, job=True),
    )
    model_data = train.properties.ModelArtifacts.S3ModelArtifacts

    # --- evaluate ---------------------------------------------------------------------------
    evaluation_report = PropertyFile(name=PROPERTY_FILE, output_name=EVALUATION_OUTPUT, path=EVALUATION_FILE)
    evaluate = processing_step(
        EVALUATE_STEP, xgboost_image, "airsage-abalone-evaluate", "evaluate.py",
        inputs=[
            _processing_input("model", model_data, f"{CONTAINER}/model"),
            _processing_input("test", preprocess_output("test"), f"{CONTAINER}/test"),
        ],
        outputs=(EVALUATION_OUTPUT,),
        arguments=[
            "--model-dir", f"{CONTAINER}/model",
            "--test-dir", f"{CONTAINER}/test",
            "--output-dir", f"{CONTAINER}/evaluation",
        ],
        property_files=[evaluation_report],
    )

    # --- register, create model, transform (the if-branch) ----------------------------------
    def model_builder(**kwargs) -> ModelBuilder:
        # dependencies=None: the deprecated default {"auto": True} sends ModelBuilder down its
        # code-upload path, which asks the session for a default bucket (an S3 call) even
        # though there is no inference code to upload. The image serves the model as is.
        return ModelBuilder(
            image_uri=xgboost_image,
            s3_model_data_url=model_data,
            role_arn=config.role_arn,
            sagemaker_session=session,
            instance_type=config.transform_instance_type,
            dependencies=None,
            **kwargs,
        )

    register_args = model_builder().register(
        model_package_group_name=config.model_package_group,
        approval_status=model_approval_status,
        content_types=["text/csv"],
        response_types=["text/csv"],
        inference_instances=[config.transform_instance_type],
        transform_instances=[config.transform_instance_type],
        model_metrics=ModelMetrics(
            model_statistics=MetricsSource(
                s3_uri=_execution_uri(config, EVALUATE_STEP, EVALUATION_OUTPUT, EVALUATION_FILE),
                content_type="application/json",
            )
        ),
    )
    register = ModelStep(name=REGISTER_STEP, step_args=register_args, retry_policies=_retry_policies(config, job=False))
    # ModelBuilder.register() has no tags argument, but CreateModelPackage accepts Tags and the
    # step's arguments are that request; add them to the request the SDK captured.
    register.step_args.create_model_package_request["Tags"] = [dict(t) for t in tag_dicts]

    create_builder = model_builder(network=networking) if networking else model_builder()
    create_model = ModelStep(
        name=CREATE_MODEL_STEP,
        step_args=create_builder.build(tags=[dict(t) for t in tag_dicts]),
        retry_policies=_retry_policies(config, job=False),
    )

    transformer = Transformer(
        model_name=create_model.properties.ModelName,
        instance_count=config.transform_instance_count,
        instance_type=config.transform_instance_type,
        strategy="MultiRecord",
        assemble_with="Line",
        accept="text/csv",
        output_path=_execution_uri(config, TRANSFORM_STEP, "output"),
        output_kms_key=kms,
        volume_kms_key=kms,
        tags=tag_dicts,
        base_transform_job_name="airsage-abalone-transform",
        sagemaker_session=session,
    )
    transform = TransformStep(
        name=TRANSFORM_STEP,
        step_args=transformer.transform(
            data=preprocess_output("batch"), data_type="S3Prefix", content_type="text/csv", split_type="Line"
        ),
        cache_config=cache,
        retry_policies=_retry_policies(config, job=True),
    )

    # --- the gate ---------------------------------------------------------------------------
    mse = JsonGet(step_name=evaluate.name, property_file=evaluation_report, json_path=MSE_JSON_PATH)
    fail = FailStep(
        name=FAIL_STEP,
        error_message=Join(on=" ", values=["Evaluation MSE", mse, "is above the MseThreshold", mse_threshold]),
    )
    check = ConditionStep(
        name=CONDITION_STEP,
        conditions=[ConditionLessThanOrEqualTo(left=mse, right=mse_threshold)],
        if_steps=[register, create_model, transform],
        else_steps=[fail],
    )

    experiment = None
    if config.experiment_enabled:
        experiment = PipelineExperimentConfig(
            experiment_name=config.experiment_name or ExecutionVariables.PIPELINE_NAME,
            trial_name=ExecutionVariables.PIPELINE_EXECUTION_ID,
        )
    return Pipeline(
        name=config.pipeline_name,
        parameters=[
            processing_instance_count,
            processing_instance_type,
            training_instance_type,
            model_approval_status,
            input_data,
            batch_data,
            mse_threshold,
        ],
        steps=[preprocess, train, evaluate, check],
        pipeline_experiment_config=experiment,
        sagemaker_session=session,
    )


@contextlib.contextmanager
def _quiet_sdk():
    """Silence the SDK's expected chatter while building (errors still show).

    It logs, at INFO/WARNING, exactly the choices made here (role validation skipped, job and
    model names trimmed from the definition) and warns that a PipelineSession starts no jobs.
    """
    # Some SDK modules set their own logger levels at import, so the parent's level is not
    # enough: import what the build uses first, then quiet every sagemaker.* logger.
    import sagemaker.mlops.workflow.pipeline  # noqa: F401
    import sagemaker.serve.model_builder  # noqa: F401
    import sagemaker.train  # noqa: F401

    loggers = [logging.getLogger("sagemaker")] + [
        logger
        for name, logger in logging.root.manager.loggerDict.items()
        if name.startswith("sagemaker.") and isinstance(logger, logging.Logger)
    ]
    levels = [(logger, logger.level) for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    # Modules imported lazily during the build create loggers with levels of their own
    # ("Model has been created: 'model-…'"); only a global threshold reaches those.
    disabled_before = logging.root.manager.disable
    logging.disable(max(disabled_before, logging.WARNING))
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Running within a PipelineSession")
            yield
    finally:
        logging.disable(disabled_before)
        for logger, level in levels:
            logger.setLevel(level)


@contextlib.contextmanager
def _no_throwaway_local_sessions():
    """Keep the SDK's step constructors from building three Local Mode sessions they only read names from.

    ``ProcessingStep`` and ``TransformStep`` check who called them against
    ``LocalSagemakerClient().create_processing_job.__name__`` (and ``create_transform_job``); each
    ``LocalSagemakerClient()`` builds a ``LocalSession``, which reloads botocore's models and validates
    the SDK config schema: about 1.6 s of a 2.4 s build, for two method names. During the build the
    steps module sees a stand-in whose attributes are the real class's (same names, so the same JSON).
    """
    from sagemaker.mlops.workflow import steps

    real = steps.LocalSagemakerClient

    class MethodNamesOnly:
        def __getattr__(self, name: str):
            return getattr(real, name)

    steps.LocalSagemakerClient = MethodNamesOnly
    try:
        yield
    finally:
        steps.LocalSagemakerClient = real


def definition_dict(config: PipelineConfig) -> dict[str, Any]:
    """The pipeline definition as a dict (built offline)."""
    from sm_pipeline.offline_aws import offline_aws
    from sm_pipeline.telemetry import sdk_telemetry

    # offline_aws: the SDK's import-time and per-step boto3 clients would otherwise run the
    # credential chain down to the instance-metadata service (see sm_pipeline/offline_aws.py);
    # the SDK is first imported inside it (_quiet_sdk), and everything is put back after.
    # The step arguments are computed lazily by definition(), which re-runs the builders'
    # decorated calls (run/train/register/build); telemetry must be off across both phases.
    with offline_aws(_sdk_variables(config)), _quiet_sdk(), sdk_telemetry(config.telemetry) as swapped, \
            _no_throwaway_local_sessions():
        pipeline = _build(config, telemetry_opt_out_by_config=not swapped)
        return json.loads(pipeline.definition())


def definition_json(config: PipelineConfig) -> str:
    """Canonical definition JSON: sorted keys, indent 2, trailing newline; byte-stable per config."""
    return json.dumps(definition_dict(config), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
