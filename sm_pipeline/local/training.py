"""Training steps: the built-in XGBoost algorithm emulated, or a training script run in script mode.

Like SageMaker, the model directory is packed into ``<S3OutputPath>/<TrainingJobName>/output/model.tar.gz``
and that URI is recorded as ``ModelArtifacts.S3ModelArtifacts``. Training always runs as one host
(``InstanceCount`` above 1 is recorded but not emulated).
"""

from __future__ import annotations

import json
import os
import sys
import tarfile
from pathlib import Path

from sm_pipeline.local import builtin_xgboost
from sm_pipeline.local.images import is_xgboost_image, xgboost_writes_pickle
from sm_pipeline.local.jobs import (
    CONTAINER_PREFIX,
    JobContext,
    StepFailed,
    StepOutcome,
    container_path,
    entrypoint_argv,
    job_environment,
    publish_outputs,
)


def run_training(arguments: dict, ctx: JobContext) -> StepOutcome:
    """Run a resolved CreateTrainingJob request locally."""
    algorithm = arguments.get("AlgorithmSpecification") or {}
    image = algorithm.get("TrainingImage") or ""
    hyperparameters = {str(k): str(v) for k, v in (arguments.get("HyperParameters") or {}).items()}
    root = ctx.work_dir / "algo-1"
    channels = _materialize_channels(arguments, ctx, root)
    ctx.name_sandbox(root)
    model_dir = container_path(root, "/opt/ml/model")
    output_data_dir = container_path(root, "/opt/ml/output/data")
    for directory in (model_dir, output_data_dir):
        directory.mkdir(parents=True, exist_ok=True)
    _write_input_config(arguments, root, channels, hyperparameters)

    if "sagemaker_program" in hyperparameters or algorithm.get("ContainerEntrypoint"):
        argv, env = _script_mode(arguments, ctx, root, channels, hyperparameters)
        what = "training script"
    elif is_xgboost_image(image):
        argv, env = _builtin_xgboost(arguments, ctx, root, channels, hyperparameters, image)
        what = "built-in XGBoost training"
    else:
        raise StepFailed(f"training image {image!r} has no local equivalent (built-in XGBoost or script mode only)")
    ctx.run_job(argv, cwd=root, env=env, what=what)

    output_path = (arguments.get("OutputDataConfig") or {}).get("S3OutputPath")
    if not output_path:
        raise StepFailed("OutputDataConfig.S3OutputPath is missing")
    job_prefix = f"{output_path.rstrip('/')}/{ctx.job_name}"
    publish_dir = ctx.work_dir / "publish"
    (publish_dir / "output").mkdir(parents=True, exist_ok=True)
    _pack(model_dir, publish_dir / "output" / "model.tar.gz")
    if any(output_data_dir.iterdir()):
        _pack(output_data_dir, publish_dir / "output" / "output.tar.gz")
    published = publish_outputs(ctx.store, [(publish_dir, job_prefix)])
    metrics_file = root / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.exists() else []
    arn = ctx.made_arn()
    properties = {
        **arguments,
        "TrainingJobName": ctx.job_name,
        "TrainingJobArn": arn,
        "TrainingJobStatus": "Completed",
        "SecondaryStatus": "Completed",
        "ModelArtifacts": {"S3ModelArtifacts": f"{job_prefix}/output/model.tar.gz"},
        "FinalMetricDataList": metrics,
    }
    return StepOutcome(properties, ctx.step_metadata(Arn=arn), published)


def _materialize_channels(arguments: dict, ctx: JobContext, root: Path) -> dict[str, Path]:
    channels: dict[str, Path] = {}
    for channel in arguments.get("InputDataConfig") or []:
        name = channel.get("ChannelName")
        source = (channel.get("DataSource") or {}).get("S3DataSource")
        if not name or not source:
            raise StepFailed(f"channel {name!r}: only S3DataSource channels are supported locally")
        local_dir = container_path(root, f"/opt/ml/input/data/{name}")
        ctx.materialize(source["S3Uri"], local_dir, root, data_type=source.get("S3DataType", "S3Prefix"),
                        what=f"channel {name!r}")
        channels[name] = local_dir
    return channels


def _write_input_config(arguments: dict, root: Path, channels: dict[str, Path], hyperparameters: dict) -> None:
    config_dir = container_path(root, "/opt/ml/input/config")
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    (config_dir / "resourceconfig.json").write_text(json.dumps(
        {"current_host": "algo-1", "hosts": ["algo-1"], "network_interface_name": "lo"}))
    (config_dir / "inputdataconfig.json").write_text(json.dumps({
        channel.get("ChannelName"): {key: channel[key] for key in ("ContentType", "TrainingInputMode",
                                                                   "S3DistributionType", "RecordWrapperType")
                                     if key in channel} | {"TrainingInputMode": "File"}
        for channel in arguments.get("InputDataConfig") or []
    }))


def _builtin_xgboost(arguments: dict, ctx: JobContext, root: Path, channels: dict[str, Path],
                     hyperparameters: dict, image: str) -> tuple[list[str], dict]:
    content_types = {c.get("ChannelName"): c.get("ContentType", "text/csv") for c in arguments.get("InputDataConfig") or []}
    config = {
        "channels": {name: str(path) for name, path in channels.items()},
        "content_type": content_types.get("train") or "text/csv",
        "hyperparameters": hyperparameters,
        "model_dir": str(container_path(root, "/opt/ml/model")),
        "metrics_file": str(root / "metrics.json"),
        "pickle_model": xgboost_writes_pickle(image),
    }
    config_file = root / "algorithm.json"
    config_file.write_text(json.dumps(config))
    argv = [sys.executable, builtin_xgboost.__file__, "train", "--config", str(config_file)]
    return argv, job_environment(root, arguments.get("Environment"), ctx.work_dir / "bin")


def _decode_hyperparameter(value: str) -> str:
    # SDK script-mode estimators JSON-encode every hyperparameter ('"train.py"', '5').
    try:
        decoded = json.loads(value)
    except (json.JSONDecodeError, TypeError):
        return value
    return decoded if isinstance(decoded, str) else json.dumps(decoded)


def _script_mode(arguments: dict, ctx: JobContext, root: Path, channels: dict[str, Path],
                 hyperparameters: dict) -> tuple[list[str], dict]:
    algorithm = arguments.get("AlgorithmSpecification") or {}
    decoded = {key: _decode_hyperparameter(value) for key, value in hyperparameters.items()}
    user_hps = {k: v for k, v in decoded.items() if not k.startswith("sagemaker_")}
    user_args = [item for key, value in user_hps.items() for item in (f"--{key}", value)]
    code_dir = container_path(root, "/opt/ml/code")
    code_dir.mkdir(parents=True, exist_ok=True)
    submit = decoded.get("sagemaker_submit_directory")
    if submit:
        archive = ctx.store.path_for(submit)
        if not archive.is_file():
            raise StepFailed(f"sagemaker_submit_directory {submit} does not exist in the object root")
        with tarfile.open(archive) as tar:
            tar.extractall(code_dir, filter="data")
    model_dir = container_path(root, "/opt/ml/model")
    env_vars = {
        "SM_MODEL_DIR": str(model_dir),
        "SM_CHANNELS": json.dumps(sorted(channels)),
        "SM_HPS": json.dumps(user_hps),
        "SM_OUTPUT_DATA_DIR": str(container_path(root, "/opt/ml/output/data")),
        "SM_OUTPUT_DIR": str(container_path(root, "/opt/ml/output")),
        "SM_INPUT_DIR": str(container_path(root, "/opt/ml/input")),
        "SM_INPUT_CONFIG_DIR": str(container_path(root, "/opt/ml/input/config")),
        "SM_MODULE_DIR": submit or "",
        "SM_CURRENT_HOST": "algo-1",
        "SM_HOSTS": json.dumps(["algo-1"]),
        "SM_NUM_CPUS": str(os.cpu_count() or 1),
        "SM_NUM_GPUS": "0",
        "SM_USER_ARGS": json.dumps(user_args),
        "SM_LOG_LEVEL": "20",
        "SM_NETWORK_INTERFACE_NAME": "lo",
    }
    for name, path in channels.items():
        env_vars[f"SM_CHANNEL_{name.upper()}"] = str(path)
    for key, value in user_hps.items():
        env_vars[f"SM_HP_{key.upper()}"] = value
    env_vars["SM_TRAINING_ENV"] = json.dumps({"hyperparameters": user_hps, "channel_input_dirs": {k: str(v) for k, v in channels.items()},
                                              "model_dir": str(model_dir), "current_host": "algo-1", "hosts": ["algo-1"]})
    env = job_environment(root, {**(arguments.get("Environment") or {}), **env_vars}, ctx.work_dir / "bin")
    entrypoint = algorithm.get("ContainerEntrypoint")
    if entrypoint:
        argv = entrypoint_argv([_remap_inline(a, root) for a in entrypoint], root)
        argv += [_remap_inline(a, root) for a in algorithm.get("ContainerArguments") or []]
        return argv, env
    program = decoded["sagemaker_program"]
    script = code_dir / program
    if not script.is_file():
        raise StepFailed(f"sagemaker_program {program!r} not found in the submitted source directory")
    env["SM_USER_ENTRY_POINT"] = program
    env["SM_MODULE_NAME"] = Path(program).stem
    return [sys.executable, str(script), *user_args], env


def _remap_inline(argument, root: Path) -> str:
    # `bash -c "cmd /opt/ml/..."` carries container paths inside one string.
    return str(argument).replace(CONTAINER_PREFIX + "/", f"{root}{CONTAINER_PREFIX}/")


def _pack(directory: Path, archive: Path) -> None:
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(directory.rglob("*")):
            tar.add(path, arcname=path.relative_to(directory).as_posix(), recursive=False)
