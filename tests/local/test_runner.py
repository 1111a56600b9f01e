"""The local runner on small definitions whose scripts use only the standard library (start in ~50 ms)."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from local_runner_builders import BUCKET, XGBOOST_IMAGE, definition, processing_step, stage_script

from sm_pipeline.errors import DefinitionError, InvalidInput
from sm_pipeline.local import LocalExecutionStore, run_pipeline
from sm_pipeline.local.records import ExecutionRecords, executions_dir

REPO_ROOT = Path(__file__).resolve().parents[2]

# Hard-codes /opt/ml paths like AWS's example scripts; reports what this host saw.
COUNT_SCRIPT = """
    import json, os, sys
    base = "/opt/ml/processing"
    host = json.load(open("/opt/ml/config/resourceconfig.json"))["current_host"]
    names = sorted(os.listdir(f"{base}/input/data"))
    rows = sum(len(open(f"{base}/input/data/{n}").read().splitlines()) for n in names)
    os.makedirs(f"{base}/output", exist_ok=True)
    with open(f"{base}/output/seen-{host}.txt", "w") as fh:
        fh.write("\\n".join(names + sorted(os.listdir(f"{base}/input/shared"))) if os.path.isdir(f"{base}/input/shared") else "\\n".join(names))
    with open(f"{base}/report/report.json", "w") as fh:
        json.dump({"rows": rows, "argv": sys.argv[1:]}, fh)
    print("counted", rows)
"""
FAIL_SCRIPT = """
    import sys
    open("/opt/ml/processing/output/partial.csv", "w").write("half")
    print("noise on stdout")
    print("reading train.csv", file=sys.stderr)
    print("error: train.csv column 'rings': not a number", file=sys.stderr)
    sys.exit(3)
"""
# First attempt exits 75 (temporary failure), the second succeeds.
FLAKY_SCRIPT = """
    import sys, pathlib
    marker = pathlib.Path(sys.argv[1])
    if not marker.exists():
        marker.write_text("1")
        sys.exit(75)
    open("/opt/ml/processing/output/ok.txt", "w").write("ok")
"""
SLEEP_SCRIPT = """
    import sys, time
    open("/opt/ml/processing/output/partial.txt", "w").write("partial")
    print("sleeping", flush=True)
    time.sleep(float(sys.argv[1]))
"""
TIMING_SCRIPT = """
    import sys, time
    start = time.time(); time.sleep(float(sys.argv[1]))
    open("/opt/ml/processing/output/t.json", "w").write(f'[{start}, {time.time()}]')
"""


def stage_data(store, files=("a.csv", "b.csv", "c.csv", "d.csv")):
    for index, name in enumerate(files):
        store.put_bytes(f"{BUCKET}/data/{name}", ("x\n" * (index + 1)).encode())


def count_step(store, name="Count", instance_count=1, output=f"{BUCKET}/out/count", **extra):
    code = stage_script(store, f"{BUCKET}/code/count.py", COUNT_SCRIPT)
    return processing_step(
        name, code, instance_count=instance_count,
        inputs=[("data", f"{BUCKET}/data", "/opt/ml/processing/input/data", "ShardedByS3Key")],
        outputs=[("output", "/opt/ml/processing/output", output),
                 ("report", "/opt/ml/processing/report", f"{output}-report")],
        arguments=["--input", "/opt/ml/processing/input/data"],
        PropertyFiles=[{"PropertyFileName": "Report", "OutputName": "report", "FilePath": "report.json"}],
        **extra)


def condition_on_rows(threshold_param="MinRows"):
    return {
        "Name": "Enough", "Type": "Condition",
        "Arguments": {
            "Conditions": [{"Type": "GreaterThanOrEqualTo",
                            "LeftValue": {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Count.PropertyFiles.Report"},
                                                          "Path": "rows"}},
                            "RightValue": {"Get": f"Parameters.{threshold_param}"}}],
            "IfSteps": [{"Name": "Notify", "Type": "Lambda", "FunctionArn": "arn:aws:lambda:us-east-1:000000000000:function:notify",
                         "OutputParameters": [{"OutputName": "message", "OutputType": "String"}],
                         "Arguments": {"rows": {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Count.PropertyFiles.Report"},
                                                                "Path": "rows"}}}}],
            "ElseSteps": [{"Name": "TooFew", "Type": "Fail", "Arguments": {"ErrorMessage": {"Std:Join": {
                "On": " ", "Values": ["fewer rows than", {"Get": f"Parameters.{threshold_param}"}]}}}}],
        },
    }


def chain(store):
    stage_data(store)
    return definition([count_step(store), condition_on_rows()],
                      parameters=[{"Name": "MinRows", "Type": "Integer", "DefaultValue": 5}])


def notify(inputs):
    return {"message": f"{inputs['rows']} rows"}


def test_chain_condition_if_branch(store):
    events = []
    result = run_pipeline(chain(store), root=store.root, on_event=events.append, lambdas={"notify": notify})
    assert result.status == "Succeeded", result.failure_reason
    assert result.property_files == {"Count": {"Report": {"rows": 10, "argv": ["--input", str(
        store.root / ".airsage/work" / result.execution_id / "Count/attempt-1/algo-1/opt/ml/processing/input/data")]}}}
    summary = result.summary()
    assert summary["steps"] == {"Count": "Succeeded", "Enough": "Succeeded", "TooFew": "NotExecuted", "Notify": "Succeeded"}
    assert store.list(f"{BUCKET}/out/count/") == [f"{BUCKET}/out/count/seen-algo-1.txt"]
    assert result.step("Enough")["Metadata"] == {"Condition": {"Outcome": "True"}}
    assert result.step("Notify")["Metadata"]["Lambda"]["OutputParameters"] == [{"Name": "message", "Value": "10 rows"}]
    assert result.step("Count")["Metadata"]["ProcessingJob"]["Arn"].startswith(
        "arn:aws:sagemaker:us-east-1:000000000000:processing-job/pipelines-")
    assert {"StartTime", "EndTime", "StepStatus"} <= set(result.step("Count"))
    assert [e["event"] for e in events if e.get("step") == "Count"] == ["step_started", "step_succeeded"]
    # Records on disk, shaped like the API responses.
    describe = LocalExecutionStore(store.root).find("abalone-local")[0]
    assert describe["PipelineExecutionStatus"] == "Succeeded"
    assert describe["PipelineExecutionArn"] == result.execution_arn == result.describe()["PipelineExecutionArn"]
    steps = LocalExecutionStore(store.root).steps("abalone-local", result.execution_id)
    assert {s["StepName"] for s in steps} == {"Count", "Enough", "TooFew", "Notify"}
    assert (ExecutionRecords.in_dir(result.records_dir).logs_dir / "Count.log").read_text().strip() == "counted 10"
    assert not (store.root / ".airsage" / "work" / result.execution_id).exists()


def test_chain_condition_else_branch_fails_with_message(store):
    result = run_pipeline(chain(store), {"MinRows": "100"}, root=store.root, lambdas={"notify": notify})
    assert result.status == "Failed"
    assert result.failure_reason == "fewer rows than 100"
    assert result.step("TooFew")["Metadata"] == {"Fail": {"ErrorMessage": "fewer rows than 100"}}
    assert result.summary()["steps"]["Notify"] == "NotExecuted"


def test_failing_script_reason_has_stderr_tail_and_nothing_published(store):
    code = stage_script(store, f"{BUCKET}/code/fail.py", FAIL_SCRIPT)
    failing = processing_step("Prep", code, outputs=[("output", "/opt/ml/processing/output", f"{BUCKET}/out/prep")])
    after = processing_step("After", code, inputs=[("in", {"Get": "Steps.Prep.ProcessingOutputConfig.Outputs['output'].S3Output.S3Uri"},
                                                    "/opt/ml/processing/input/x")])
    result = run_pipeline(definition([failing, after]), root=store.root)
    assert result.status == "Failed"
    reason = result.step("Prep")["FailureReason"]
    assert "AlgorithmError" in reason and "exited with code 3" in reason
    assert "column 'rings': not a number" in reason and "noise on stdout" not in reason
    assert result.failure_reason.startswith("Step failure: Prep: AlgorithmError")
    assert store.list(f"{BUCKET}/out/prep") == []
    assert "After" not in result.summary()["steps"]


def test_cache_hit_reuses_outputs_and_misses_on_change(store):
    stage_data(store)
    output = {"Std:Join": {"On": "/", "Values": [BUCKET, "runs", {"Get": "Execution.PipelineExecutionId"}, "count"]}}

    def build(cache_after="P1D", label="v1"):
        step = count_step(store, output=output, CacheConfig={"Enabled": True, "ExpireAfter": cache_after})
        step["Arguments"]["ProcessingOutputConfig"]["Outputs"][1]["S3Output"]["S3Uri"] = {
            "Std:Join": {"On": "/", "Values": [BUCKET, "runs", {"Get": "Execution.PipelineExecutionId"}, "report"]}}
        step["Arguments"]["AppSpecification"]["ContainerArguments"].append(label)
        return definition([step])

    cold = run_pipeline(build(), root=store.root)
    warm = run_pipeline(build(), root=store.root)
    assert cold.status == warm.status == "Succeeded"
    assert "CacheHitResult" not in cold.step("Count")
    assert warm.step("Count")["CacheHitResult"] == {"SourcePipelineExecutionArn": cold.execution_arn}
    assert warm.property_files == cold.property_files
    assert not store.list(f"{BUCKET}/runs/{warm.execution_id}")  # nothing re-run, nothing re-published
    changed_args = run_pipeline(build(label="v2"), root=store.root)
    assert "CacheHitResult" not in changed_args.step("Count")
    rebuilt = build(label="v2")
    stage_script(store, f"{BUCKET}/code/count.py", COUNT_SCRIPT + "\n# changed\n")
    changed_code = run_pipeline(rebuilt, root=store.root)
    assert "CacheHitResult" not in changed_code.step("Count")
    expired = run_pipeline(build(cache_after="PT0.001S", label="v2"), root=store.root)
    assert "CacheHitResult" not in expired.step("Count")
    uncached = run_pipeline(build(label="v2"), root=store.root, use_cache=False)
    assert "CacheHitResult" not in uncached.step("Count")


def test_retry_policy_retries_temporary_failures(store, tmp_path):
    code = stage_script(store, f"{BUCKET}/code/flaky.py", FLAKY_SCRIPT)
    step = processing_step("Flaky", code, arguments=[str(tmp_path / "marker")],
                           outputs=[("output", "/opt/ml/processing/output", f"{BUCKET}/out/flaky")],
                           RetryPolicies=[{"ExceptionType": ["SageMaker.JOB_INTERNAL_ERROR"], "IntervalSeconds": 5,
                                           "BackoffRate": 2.0, "MaxAttempts": 2}])
    events = []
    started = time.monotonic()
    result = run_pipeline(definition([step]), root=store.root, retry_interval_scale=0.01, on_event=events.append)
    assert result.status == "Succeeded", result.failure_reason
    assert result.step("Flaky")["AttemptCount"] == 2
    assert [e["attempt"] for e in events if e["event"] == "step_retrying"] == [1]
    assert time.monotonic() - started < 30
    assert store.list(f"{BUCKET}/out/flaky") == [f"{BUCKET}/out/flaky/ok.txt"]


def test_algorithm_errors_are_not_retried(store):
    code = stage_script(store, f"{BUCKET}/code/fail.py", FAIL_SCRIPT)
    step = processing_step("Prep", code, RetryPolicies=[{"ExceptionType": ["SageMaker.JOB_INTERNAL_ERROR"],
                                                         "IntervalSeconds": 1, "MaxAttempts": 3}])
    result = run_pipeline(definition([step]), root=store.root, retry_interval_scale=0.01)
    assert result.status == "Failed" and result.step("Prep")["AttemptCount"] == 1


def test_instance_count_two_shards_by_key_and_replicates_the_rest(store):
    stage_data(store)
    store.put_bytes(f"{BUCKET}/shared/lookup.csv", b"k\n")
    step = count_step(store, instance_count=2)
    step["Arguments"]["ProcessingInputs"].insert(0, {"InputName": "shared", "S3Input": {
        "S3Uri": f"{BUCKET}/shared", "LocalPath": "/opt/ml/processing/input/shared", "S3DataType": "S3Prefix",
        "S3InputMode": "File", "S3DataDistributionType": "FullyReplicated"}})
    result = run_pipeline(definition([step]), root=store.root)
    assert result.status == "Succeeded", result.failure_reason
    seen = {host: store.read_bytes(f"{BUCKET}/out/count/seen-{host}.txt").decode().split("\n") for host in ("algo-1", "algo-2")}
    assert seen == {"algo-1": ["a.csv", "c.csv", "lookup.csv"], "algo-2": ["b.csv", "d.csv", "lookup.csv"]}


def test_independent_steps_run_in_parallel(store):
    code = stage_script(store, f"{BUCKET}/code/timing.py", TIMING_SCRIPT)
    steps = [processing_step(name, code, arguments=["1.5"], outputs=[("output", "/opt/ml/processing/output", f"{BUCKET}/t/{name}")])
             for name in ("One", "Two")]
    result = run_pipeline(definition(steps), root=store.root, max_parallel=2)
    assert result.status == "Succeeded"
    (s1, e1), (s2, e2) = (json.loads(store.read_bytes(f"{BUCKET}/t/{n}/t.json")) for n in ("One", "Two"))
    assert s2 < e1 and s1 < e2  # the sleeps overlapped


def test_depends_on_orders_steps(store):
    code = stage_script(store, f"{BUCKET}/code/timing.py", TIMING_SCRIPT)
    first = processing_step("First", code, arguments=["0.2"], outputs=[("output", "/opt/ml/processing/output", f"{BUCKET}/t/First")])
    second = processing_step("Second", code, arguments=["0"], outputs=[("output", "/opt/ml/processing/output", f"{BUCKET}/t/Second")],
                             DependsOn=["First"])
    result = run_pipeline(definition([second, first]), root=store.root, max_parallel=2)
    (_, end1), (start2, _) = (json.loads(store.read_bytes(f"{BUCKET}/t/{n}/t.json")) for n in ("First", "Second"))
    assert result.status == "Succeeded" and end1 <= start2


SCRIPT_MODE_TRAIN = """
    import json, os, sys
    hps = json.loads(os.environ["SM_HPS"])
    rows = open(os.path.join(os.environ["SM_CHANNEL_TRAIN"], "a.csv")).read()
    config = json.load(open("/opt/ml/input/config/hyperparameters.json"))
    with open(os.path.join(os.environ["SM_MODEL_DIR"], "model.json"), "w") as fh:
        json.dump({"argv": sys.argv[1:], "hps": hps, "rows": rows, "raw": config, "host": os.environ["SM_CURRENT_HOST"]}, fh)
"""


def test_script_mode_training_records_model_artifacts(store):
    stage_data(store, ["a.csv"])
    source = io.BytesIO()
    with tarfile.open(fileobj=source, mode="w:gz") as tar:
        data = __import__("textwrap").dedent(SCRIPT_MODE_TRAIN).encode()
        info = tarfile.TarInfo("train.py")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    store.put_bytes(f"{BUCKET}/code/sourcedir.tar.gz", source.getvalue())
    step = {"Name": "Train", "Type": "Training", "Arguments": {
        "RoleArn": "arn:aws:iam::000000000000:role/Test",
        "AlgorithmSpecification": {"TrainingImage": XGBOOST_IMAGE, "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": f"{BUCKET}/models"},
        "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 5},
        "HyperParameters": {"sagemaker_program": '"train.py"', "sagemaker_submit_directory": f'"{BUCKET}/code/sourcedir.tar.gz"',
                            "max_depth": "5"},
        "InputDataConfig": [{"ChannelName": "train", "ContentType": "text/csv", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": f"{BUCKET}/data", "S3DataDistributionType": "FullyReplicated"}}}],
        "StoppingCondition": {"MaxRuntimeInSeconds": 60}}}
    result = run_pipeline(definition([step]), root=store.root)
    assert result.status == "Succeeded", result.failure_reason
    job = result.step("Train")["Metadata"]["TrainingJob"]["Arn"].rsplit("/", 1)[1]
    artifact = f"{BUCKET}/models/{job}/output/model.tar.gz"
    assert store.list(f"{BUCKET}/models/") == [artifact]
    with tarfile.open(store.path_for(artifact)) as tar:
        model = json.load(tar.extractfile("model.json"))
    assert model["argv"] == ["--max_depth", "5"] and model["hps"] == {"max_depth": "5"}
    assert model["rows"] == "x\n" and model["host"] == "algo-1"


@pytest.mark.parametrize(("step", "message"), [
    ({"Name": "Cb", "Type": "Callback", "Arguments": {}}, "step 'Cb': step type 'Callback' is not runnable locally"),
    ({"Name": "L", "Type": "Lambda", "FunctionArn": "arn:aws:lambda:us-east-1:000000000000:function:nope", "Arguments": {}},
     "Lambda function 'arn:aws:lambda:us-east-1:000000000000:function:nope' is not runnable locally"),
    ({"Name": "M", "Type": "Model", "Arguments": {"PrimaryContainer": {"Image": "123.dkr.ecr.us-east-1.amazonaws.com/custom:1"}}},
     "step 'M': model image '123.dkr.ecr.us-east-1.amazonaws.com/custom:1' has no local equivalent"),
    ({"Name": "T", "Type": "Training", "Arguments": {"AlgorithmSpecification": {"TrainingImage": "1.dkr.ecr.x/pytorch:2"},
                                                     "RoleArn": "arn:aws:iam::000000000000:role/Test",
                                                     "OutputDataConfig": {"S3OutputPath": "s3://test-bucket/models"}}},
     "step 'T': image '1.dkr.ecr.x/pytorch:2' has no local equivalent"),
    ({"Name": "T", "Type": "Training", "Arguments": {"RoleArn": "arn:aws:iam::000000000000:role/Test",
                                                     "OutputDataConfig": {"S3OutputPath": "s3://test-bucket/models"}}},
     "step 'T': a training job with no algorithm image (AlgorithmSpecification.TrainingImage) has no local equivalent"),
    ({"Name": "P", "Type": "Processing", "Arguments": {"AppSpecification": {"ImageUri": "1.dkr.ecr.x/r-lang:1",
                                                                             "ContainerEntrypoint": ["Rscript", "x.R"]},
                                                       "RoleArn": "arn:aws:iam::000000000000:role/Test",
                                                       "ProcessingResources": {"ClusterConfig": {
                                                           "InstanceCount": 1, "InstanceType": "ml.m5.large",
                                                           "VolumeSizeInGB": 30}}}},
     "step 'P': image '1.dkr.ecr.x/r-lang:1' has no local equivalent; step 'P': ContainerEntrypoint ['Rscript', 'x.R']"),
    ({"Name": "P", "Type": "Processing", "CacheConfig": {"Enabled": True, "ExpireAfter": "30 days"},
      "Arguments": {"AppSpecification": {"ImageUri": XGBOOST_IMAGE, "ContainerEntrypoint": ["python3", "x.py"]}}},
     "step 'P': CacheConfig.ExpireAfter '30 days' is not a duration"),
])
def test_unrunnable_steps_fail_before_any_step_runs(store, step, message):
    ok = processing_step("Ok", f"{BUCKET}/code/none.py")
    with pytest.raises(DefinitionError) as excinfo:
        run_pipeline(definition([ok, step]), root=store.root)
    assert message in str(excinfo.value)
    assert not executions_dir(store.root).exists()


@pytest.mark.parametrize(("params", "message"), [
    ({"MinRows": "many"}, "parameter MinRows (Integer): expected an integer, got 'many'"),
    ({"MinRows": 2.5}, "expected an integer"),
    ({"Nope": "1"}, "unknown parameter(s) Nope (declared: Flag, MinRows, Need, Ratio)"),
    ({"MinRows": "1"}, "parameter Need (String) is required"),
    ({"Need": "x", "Ratio": "abc"}, "parameter Ratio (Float): expected a number"),
    ({"Need": "x", "Flag": "maybe"}, "parameter Flag (Boolean): expected true or false"),
    ({"Need": 3}, "parameter Need (String): expected a string"),
])
def test_parameter_errors_before_any_step_runs(store, params, message):
    parameters = [{"Name": "MinRows", "Type": "Integer", "DefaultValue": 5}, {"Name": "Need", "Type": "String"},
                  {"Name": "Ratio", "Type": "Float", "DefaultValue": 0.5}, {"Name": "Flag", "Type": "Boolean", "DefaultValue": False}]
    d = definition([processing_step("Ok", f"{BUCKET}/code/none.py")], parameters=parameters)
    with pytest.raises(InvalidInput) as excinfo:
        run_pipeline(d, params, root=store.root)
    assert message in str(excinfo.value)
    assert not executions_dir(store.root).exists()


def test_invalid_definition_is_refused(store):
    with pytest.raises(DefinitionError, match="invalid pipeline definition: .*unknown step 'Ghost'"):
        step = processing_step("A", f"{BUCKET}/code/a.py", inputs=[("in", {"Get": "Steps.Ghost.X"}, "/opt/ml/processing/in")])
        run_pipeline(definition([step]), root=store.root)


def test_missing_input_fails_the_step_clearly(store):
    code = stage_script(store, f"{BUCKET}/code/count.py", COUNT_SCRIPT)
    step = processing_step("P", code, inputs=[("data", f"{BUCKET}/nothing-here", "/opt/ml/processing/input/data")])
    result = run_pipeline(definition([step]), root=store.root)
    assert result.status == "Failed"
    assert f"input 'data': no objects under {BUCKET}/nothing-here" in result.failure_reason


def test_dead_executing_run_is_reported_stopped(store):
    result = run_pipeline(chain(store), root=store.root, lambdas={"notify": notify})
    describe_path = ExecutionRecords.in_dir(result.records_dir).describe_file
    describe = json.loads(describe_path.read_text())
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    describe.update(PipelineExecutionStatus="Executing")
    describe["LocalRunner"]["Pid"] = dead.pid
    describe_path.write_text(json.dumps(describe))
    found = LocalExecutionStore(store.root).find("abalone-local", display_name=result.execution_id)
    assert found[0]["PipelineExecutionStatus"] == "Stopped"
    assert "no longer running" in found[0]["FailureReason"]
    assert LocalExecutionStore(store.root).find("abalone-local", display_name="other") == []


def _cli(args, **kwargs):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen([sys.executable, "-m", "sm_pipeline", "run-local", *args], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def test_cli_success_failure_and_invalid_input(store, tmp_path):
    d = tmp_path / "def.json"
    d.write_text(json.dumps(chain(store)))
    ok = _cli(["--definition", str(d), "--root", str(store.root), "--param", "MinRows=1", "--pipeline-name", "cli-test"])
    out, err = ok.communicate(timeout=120)
    # The Lambda step has no callable in a fresh process: one clear error, exit 2.
    assert ok.returncode == 2 and "Lambda function" in err and "not runnable locally" in err
    no_lambda = chain(store)
    no_lambda["Steps"][1]["Arguments"]["IfSteps"] = []
    d.write_text(json.dumps(no_lambda))
    ok = _cli(["--definition", str(d), "--root", str(store.root), "--param", "MinRows=1"])
    out, err = ok.communicate(timeout=120)
    assert ok.returncode == 0, err
    summary = json.loads(out)
    assert summary["status"] == "Succeeded" and summary["steps"] == {"Count": "Succeeded", "Enough": "Succeeded",
                                                                     "TooFew": "NotExecuted"}
    assert summary["property_files"]["Count"]["Report"]["rows"] == 10
    assert "[Count] started (Processing)" in err and "[Count] succeeded in" in err
    failed = _cli(["--definition", str(d), "--root", str(store.root), "--param", "MinRows=99"])
    out, err = failed.communicate(timeout=120)
    assert failed.returncode == 1 and json.loads(out)["failure_reason"] == "fewer rows than 99"
    bad = _cli(["--definition", str(d), "--root", str(store.root), "--param", "MinRows=lots"])
    out, err = bad.communicate(timeout=120)
    assert bad.returncode == 2 and err.strip().startswith("error: parameter MinRows (Integer)") and out == ""


def test_ctrl_c_stops_children_marks_stopped_and_publishes_nothing(store, tmp_path):
    code = stage_script(store, f"{BUCKET}/code/sleep.py", SLEEP_SCRIPT)
    step = processing_step("Sleepy", code, arguments=["60"], outputs=[("output", "/opt/ml/processing/output", f"{BUCKET}/out/sleepy")])
    d = tmp_path / "def.json"
    d.write_text(json.dumps(definition([step])))
    runner = _cli(["--definition", str(d), "--root", str(store.root)])
    deadline = time.monotonic() + 60
    records = None
    while time.monotonic() < deadline:
        started = [r for r in map(ExecutionRecords.in_dir, executions_dir(store.root).glob("*/*"))
                   if (r.logs_dir / "Sleepy.log").is_file() and "sleeping" in (r.logs_dir / "Sleepy.log").read_text()]
        if started:
            records = started[0]
            break
        time.sleep(0.1)
    assert records is not None, "the step never started"
    runner.send_signal(signal.SIGINT)
    out, err = runner.communicate(timeout=60)
    assert runner.returncode == 1, err
    summary = json.loads(out)
    assert summary["status"] == "Stopped" and summary["steps"] == {"Sleepy": "Stopped"}
    assert store.list(f"{BUCKET}/out/sleepy") == []
    describe = json.loads(records.describe_file.read_text())
    assert describe["PipelineExecutionStatus"] == "Stopped"
    assert not list((store.root / ".airsage").glob("work/*/Sleepy"))
