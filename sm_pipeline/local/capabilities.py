"""What the local runner can run: the definitions valid for SageMaker that have no local equivalent.

``validate`` prints these problems as ``cannot run locally: ...`` lines (exit 0, or 2 with ``--local``);
``run-local`` and ``run_pipeline`` refuse the definition with the same lines, before anything is written.
The step types come from :mod:`sm_pipeline.step_kinds` (a kind with a local runner); images, entrypoints
and Lambda functions from the runner's own modules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sm_pipeline.errors import DefinitionInvalid, shown
from sm_pipeline.expressions import PLACEHOLDER_VARIABLES, ExpressionContext, ExpressionError, resolve
from sm_pipeline.local.control_steps import lambda_callable
from sm_pipeline.local.images import has_local_equivalent, is_xgboost_image
from sm_pipeline.local.jobs import is_runnable_entrypoint
from sm_pipeline.local.models import model_containers
from sm_pipeline.step_graph import flatten_steps, object_or_empty
from sm_pipeline.step_kinds import LOCAL_STEP_TYPES


def local_problems(definition: dict, parameters: Mapping[str, Any] | None = None,
                   lambdas: Mapping[str, Callable] | None = None) -> list[str]:
    """Why a valid definition cannot run locally: step types, images, entrypoints, Lambda functions."""
    ctx = ExpressionContext(parameters=dict(parameters or {}), execution_variables=PLACEHOLDER_VARIABLES)
    lambdas = lambdas or {}
    problems: list[str] = []

    def literal(value: Any) -> Any:
        try:
            return resolve(value, ctx)
        except ExpressionError:
            return None  # depends on other steps (or a parameter without value): checked when the step runs

    for entry in flatten_steps(definition):
        name, kind, step = entry.name, entry.type, entry.step
        arguments = object_or_empty(step.get("Arguments"))
        if kind not in LOCAL_STEP_TYPES:
            problems.append(f"step {name!r}: step type {kind!r} is not runnable locally")
            continue
        problems.extend(f"step {name!r}: {problem}" for problem in _run_condition_problems(step))
        if kind == "Processing":
            app = object_or_empty(arguments.get("AppSpecification"))
            image = literal(app.get("ImageUri"))
            if "ImageUri" not in app:
                problems.append(f"step {name!r}: a processing job with no image (AppSpecification.ImageUri) has no "
                                "local equivalent")
            elif isinstance(image, str) and not has_local_equivalent(image):
                problems.append(f"step {name!r}: image {image!r} has no local equivalent")
            entrypoint = literal(app.get("ContainerEntrypoint"))
            if not is_runnable_entrypoint(entrypoint):
                problems.append(f"step {name!r}: ContainerEntrypoint {shown(entrypoint)} has no local equivalent "
                                "(expected python/python3 or a shell)")
        elif kind == "Training":
            algorithm = object_or_empty(arguments.get("AlgorithmSpecification"))
            image = literal(algorithm.get("TrainingImage"))
            hyperparameters = object_or_empty(arguments.get("HyperParameters"))
            if algorithm.get("AlgorithmName"):
                problems.append(f"step {name!r}: marketplace algorithm {shown(algorithm['AlgorithmName'])} has no local equivalent")
            elif "TrainingImage" not in algorithm:
                # SDK 3.x's serverless jobs (evaluation, fine-tuning: ServerlessJobConfig) name a base model,
                # not an image; nothing local stands in for them.
                serverless = object_or_empty(arguments.get("ServerlessJobConfig"))
                what = (f"a serverless {serverless.get('JobType') or ''} job (ServerlessJobConfig)".replace("  ", " ")
                        if serverless else "a training job")
                problems.append(f"step {name!r}: {what} with no algorithm image (AlgorithmSpecification.TrainingImage) "
                                "has no local equivalent")
            elif isinstance(image, str) and not has_local_equivalent(image):
                problems.append(f"step {name!r}: image {image!r} has no local equivalent")
            elif isinstance(image, str) and not is_xgboost_image(image) and "sagemaker_program" not in hyperparameters \
                    and not algorithm.get("ContainerEntrypoint"):
                problems.append(f"step {name!r}: image {image!r} needs a training script (sagemaker_program) to run locally")
        elif kind == "Model":
            for container in model_containers(arguments):
                image = literal(object_or_empty(container).get("Image"))
                if isinstance(image, str) and not has_local_equivalent(image):
                    problems.append(f"step {name!r}: model image {image!r} has no local equivalent")
        elif kind == "Lambda" and lambda_callable(step, lambdas) is None:
            problems.append(f"step {name!r}: Lambda function {step.get('FunctionArn')!r} is not runnable locally "
                            "(register a Python callable with sm_pipeline.local.register_lambda)")
    return problems


def _run_condition_problems(step: dict) -> list[str]:
    """DependsOn entries with a Trigger other than Completed: the SDK 3.x's run conditions, which SageMaker runs
    (ending the execution CompletedWithFailures) and the local runner does not (the SDK's own local mode neither)."""
    depends_on = step.get("DependsOn")
    return [f"DependsOn step {shown(item.get('Step'))} with Trigger {shown(item.get('Trigger'))} (a run condition) "
            "has no local equivalent: the local runner starts a step only once its dependencies succeeded"
            for item in depends_on if isinstance(item, dict) and item.get("Trigger") != "Completed"] \
        if isinstance(depends_on, list) else []


def require_runnable(definition: dict, parameters: Mapping[str, Any] | None, lambdas: Mapping[str, Callable] | None,
                     where: str = "definition") -> None:
    """DefinitionInvalid(local=True) with every problem of :func:`local_problems`, if there is any."""
    problems = local_problems(definition, parameters, lambdas)
    if problems:
        raise DefinitionInvalid(problems, local=True, where=where)
