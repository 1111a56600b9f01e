"""Processing steps: the container entrypoint runs as a subprocess of this Python, one per instance.

Each host gets a sandbox whose ``opt/ml`` stands in for the container's ``/opt/ml``: inputs are linked
into it, ``/opt/ml/config/resourceconfig.json`` names the host, and the outputs of all hosts are
published to their S3 URIs once every host succeeded.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

from sm_pipeline.local.jobs import (
    JobContext,
    StepFailed,
    StepOutcome,
    container_path,
    entrypoint_argv,
    job_environment,
    move_files_into,
    publish_outputs,
    remap_argument,
)


def run_processing(arguments: dict, ctx: JobContext) -> StepOutcome:
    """Run a resolved CreateProcessingJob request locally."""
    cluster = (arguments.get("ProcessingResources") or {}).get("ClusterConfig") or {}
    count = int(cluster.get("InstanceCount", 1))
    if count < 1:
        raise StepFailed(f"InstanceCount must be at least 1, not {count}")
    app = arguments.get("AppSpecification") or {}
    entrypoint = app.get("ContainerEntrypoint")
    if not entrypoint:
        raise StepFailed("AppSpecification has no ContainerEntrypoint; the image's default entrypoint has no local equivalent")
    hosts = [f"algo-{i + 1}" for i in range(count)]
    host_roots = {host: ctx.work_dir / host for host in hosts}
    outputs = ((arguments.get("ProcessingOutputConfig") or {}).get("Outputs")) or []
    for index, host in enumerate(hosts):
        _prepare_host(arguments, ctx, host_roots[host], hosts, index, outputs)

    threads = max(1, (os.cpu_count() or 1) // count) if count > 1 else None
    failures: dict[str, StepFailed] = {}

    def run_host(host: str) -> None:
        root = host_roots[host]
        argv = entrypoint_argv(entrypoint, root) + [remap_argument(a, root) for a in app.get("ContainerArguments") or []]
        env = job_environment(root, arguments.get("Environment"), ctx.work_dir / "bin", threads)
        what, log_name = ("processing script", None) if count == 1 else (f"processing script ({host})", f"{ctx.name}.{host}")
        try:
            ctx.run_job(argv, cwd=root, env=env, what=what, log_name=log_name)
        except StepFailed as failure:
            failures[host] = failure

    if count == 1:
        run_host(hosts[0])
    else:
        errors: list[BaseException] = []

        def guarded(host: str) -> None:
            try:
                run_host(host)
            except BaseException as exc:  # re-raised in the step's thread below
                errors.append(exc)

        workers = [threading.Thread(target=guarded, args=(host,), name=f"{ctx.name}-{host}") for host in hosts]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        if errors:
            raise errors[0]
    if failures:
        raise next(iter(failures.values()))

    staged = []
    for output in outputs:
        s3 = output.get("S3Output")
        if not s3:
            continue
        for host in hosts:
            staged.append((container_path(host_roots[host], s3["LocalPath"]), s3["S3Uri"]))
    published = publish_outputs(ctx.store, _merge_hosts(staged))
    arn = ctx.made_arn()
    properties = {**arguments, "ProcessingJobName": ctx.job_name, "ProcessingJobArn": arn,
                  "ProcessingJobStatus": "Completed", "ExitMessage": ""}
    return StepOutcome(properties, ctx.step_metadata(Arn=arn), published)


def _prepare_host(arguments: dict, ctx: JobContext, root: Path, hosts: list[str], index: int, outputs: list) -> None:
    for item in arguments.get("ProcessingInputs") or []:
        name = item.get("InputName", "input")
        s3 = item.get("S3Input")
        if not s3:
            raise StepFailed(f"input {name!r}: only S3Input is supported locally (not DatasetDefinition)")
        distribution = s3.get("S3DataDistributionType", "FullyReplicated")
        shard = (index, len(hosts)) if distribution == "ShardedByS3Key" else None
        local_dir = container_path(root, s3["LocalPath"])
        ctx.materialize(s3["S3Uri"], local_dir, root, data_type=s3.get("S3DataType", "S3Prefix"),
                        shard=shard, what=f"input {name!r}")
    for output in outputs:
        if output.get("S3Output"):
            container_path(root, output["S3Output"]["LocalPath"]).mkdir(parents=True, exist_ok=True)
    ctx.name_sandbox(root)
    config_dir = container_path(root, "/opt/ml/config")
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "resourceconfig.json").write_text(json.dumps({
        "current_host": hosts[index], "hosts": hosts,
        "current_group_name": "homogeneousCluster", "current_instance_type": "local",
        "instance_groups": [{"instance_group_name": "homogeneousCluster", "instance_type": "local", "hosts": hosts}],
        "network_interface_name": "lo",
    }))
    (config_dir / "processingjobconfig.json").write_text(json.dumps({"ProcessingJobName": ctx.job_name, **arguments}, default=str))


def _merge_hosts(staged: list[tuple[Path, str]]) -> list[tuple[Path, str]]:
    """Several hosts writing one output: fold the later hosts' files into the first host's directory."""
    first: dict[str, Path] = {}
    merged: list[tuple[Path, str]] = []
    for local_dir, uri in staged:
        if uri not in first:
            first[uri] = local_dir
            merged.append((local_dir, uri))
            continue
        move_files_into(local_dir, first[uri])
    return merged
