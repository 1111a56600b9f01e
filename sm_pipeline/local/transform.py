"""Transform steps: batch predictions of a locally created XGBoost model, written as SageMaker writes them.

Each input object ``<prefix>/<name>`` becomes ``<S3OutputPath>/<name>.out``, one prediction per line.
"""

from __future__ import annotations

import json
import sys

from sm_pipeline.local import builtin_xgboost
from sm_pipeline.local.images import is_xgboost_image
from sm_pipeline.local.jobs import (
    JobContext,
    StepFailed,
    StepOutcome,
    job_environment,
    materialize,
    publish_outputs,
)
from sm_pipeline.local.models import describe_model, model_containers


def run_transform(arguments: dict, ctx: JobContext) -> StepOutcome:
    """Run a resolved CreateTransformJob request locally."""
    model = describe_model(ctx.internal_root, arguments.get("ModelName", ""))
    container = model_containers(model)[0]
    image = container.get("Image", "")
    if not is_xgboost_image(image):
        raise StepFailed(f"model {model['ModelName']!r} uses image {image!r}; local transform supports XGBoost models only")
    transform_input = arguments.get("TransformInput") or {}
    content_type = transform_input.get("ContentType", "text/csv")
    if content_type != "text/csv":
        raise StepFailed(f"TransformInput ContentType {content_type!r} is not supported locally (text/csv only)")
    if transform_input.get("SplitType", "Line") not in ("Line", "None", None):
        raise StepFailed(f"SplitType {transform_input.get('SplitType')!r} is not supported locally (Line)")
    processing = arguments.get("DataProcessing") or {}
    if processing.get("JoinSource", "None") != "None" or processing.get("InputFilter", "$") != "$" \
            or processing.get("OutputFilter", "$") != "$":
        raise StepFailed("DataProcessing filters and JoinSource are not supported locally")
    source = (transform_input.get("DataSource") or {}).get("S3DataSource") or {}
    output_path = (arguments.get("TransformOutput") or {}).get("S3OutputPath")
    if not source.get("S3Uri") or not output_path:
        raise StepFailed("TransformInput.DataSource.S3DataSource.S3Uri and TransformOutput.S3OutputPath are required")

    model_tar = ctx.store.path_for(container["ModelDataUrl"])
    if not model_tar.is_file():
        raise StepFailed(f"model data {container['ModelDataUrl']} does not exist in the object root")
    input_dir = ctx.work_dir / "input"
    output_dir = ctx.work_dir / "output"
    files = materialize(ctx.store, source["S3Uri"], input_dir, data_type=source.get("S3DataType", "S3Prefix"),
                        what="transform input")
    config = {
        "model_tar": str(model_tar),
        "items": [{"input": str(f), "output": str(output_dir / f"{f.relative_to(input_dir).as_posix()}.out")} for f in files],
    }
    config_file = ctx.work_dir / "transform.json"
    config_file.write_text(json.dumps(config))
    env = job_environment(ctx.work_dir, container.get("Environment"), ctx.work_dir / "bin")
    ctx.run_job([sys.executable, builtin_xgboost.__file__, "predict", "--config", str(config_file)],
                cwd=ctx.work_dir, env=env, what="batch transform")
    published = publish_outputs(ctx.store, [(output_dir, output_path.rstrip("/"))])
    arn = ctx.made_arn()
    properties = {**arguments, "TransformJobName": ctx.job_name, "TransformJobArn": arn,
                  "TransformJobStatus": "Completed", "ModelName": model["ModelName"]}
    return StepOutcome(properties, ctx.step_metadata(Arn=arn), published)
