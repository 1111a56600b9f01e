"""Drive the emulated service with the SageMaker SDK v3's own ``Pipeline`` object, as an SDK user does.

Run as a subprocess by ``test_sdk_pipeline.py`` with nothing but ``AWS_ENDPOINT_URL`` (and fake credentials)
in its environment: ``python sdk_pipeline_driver.py BUCKET PIPELINE CODE_FILE``. It uploads the conformance
script, builds a one-step pipeline with the SDK's ProcessingStep, then ``upsert(role_arn=...)`` (twice: create,
then update), ``start`` + ``wait`` + ``list_steps``, and ``start`` + ``stop`` of a long run. Every request the
SDK's clients send is recorded (service and URL); the last stdout line is a JSON report.
"""

from __future__ import annotations

import json
import sys
import time

ROLE = "arn:aws:iam::000000000000:role/SdkDriven"


def main(bucket: str, name: str, code_file: str) -> int:
    import boto3

    sent: list[dict] = []

    def record(request, **kwargs):
        body = request.body.decode("utf-8", "replace") if isinstance(request.body, bytes) else str(request.body or "")
        sent.append({"url": request.url, "action": body if body.startswith("Action=") else ""})

    boto_session = boto3.Session()
    boto_session.events.register("before-send", record)
    s3 = boto_session.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.upload_file(code_file, bucket, "code/conformance_step.py")

    from sagemaker.core import image_uris
    from sagemaker.core.processing import ScriptProcessor
    from sagemaker.core.shapes import ProcessingOutput, ProcessingS3Output
    from sagemaker.core.workflow.parameters import ParameterString
    from sagemaker.core.workflow.pipeline_context import PipelineSession
    from sagemaker.mlops.workflow.pipeline import Pipeline
    from sagemaker.mlops.workflow.steps import ProcessingStep

    session = PipelineSession(boto_session=boto_session, default_bucket=bucket)
    image = image_uris.retrieve(framework="sklearn", region=boto_session.region_name, version="1.2-1",
                                py_version="py3", instance_type="ml.m5.large")
    seconds = ParameterString(name="Seconds", default_value="0")
    processor = ScriptProcessor(role=ROLE, image_uri=image, command=["python3"], instance_count=1,
                                instance_type="ml.m5.large", sagemaker_session=session)
    step = ProcessingStep(name="Sleep", step_args=processor.run(
        code=f"s3://{bucket}/code/conformance_step.py", arguments=["sleep", "--seconds", seconds],
        outputs=[ProcessingOutput(output_name="out", s3_output=ProcessingS3Output(
            s3_uri=f"s3://{bucket}/out", local_path="/opt/ml/processing/out", s3_upload_mode="EndOfJob"))]))
    pipeline = Pipeline(name=name, parameters=[seconds], steps=[step], sagemaker_session=session)

    report: dict = {"created": pipeline.upsert(role_arn=ROLE)["PipelineArn"]}
    report["updated"] = pipeline.upsert(role_arn=ROLE, description="upserted again")["PipelineArn"]
    first = pipeline.start()
    first.wait(delay=1, max_attempts=300)
    report["first"] = first.describe()["PipelineExecutionStatus"]
    report["steps"] = [{"StepName": s["StepName"], "StepStatus": s["StepStatus"]} for s in first.list_steps()]
    second = pipeline.start(parameters={"Seconds": "120"})
    while second.describe()["PipelineExecutionStatus"] == "Executing" and not second.list_steps():
        time.sleep(0.2)
    second.stop()
    # The SDK's own wait() knows only Succeeded and Failed; a stopped execution is polled for.
    deadline = time.monotonic() + 120
    while second.describe()["PipelineExecutionStatus"] not in ("Stopped", "Failed", "Succeeded"):
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    report["second"] = second.describe()["PipelineExecutionStatus"]
    report["sent"] = sent
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
