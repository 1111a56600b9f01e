"""The local runner under kills and filesystem faults: SIGKILL of the runner, a full disk, a read-only root.

Full and read-only disks are real: a tiny tmpfs mounted in a private mount namespace
(``unshare -r -m``); where the machine cannot do that, those tests are skipped and the in-process
ones (OSError(ENOSPC) injected at the write boundary) still run.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from local_runner_builders import BUCKET, definition, processing_step, stage_script

from sm_pipeline.errors import StorageError
from sm_pipeline.local import run_pipeline
from sm_pipeline.local.records import ExecutionRecords, executions_dir
from sm_pipeline.storage_io import HOST_TAG, write_text_atomic

REPO_ROOT = Path(__file__).resolve().parents[2]

# The job starts a Python grandchild, reports both pids, then sleeps: a runner killed now must take both along.
SLEEP_WITH_CHILD = """
    import subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    print(f"pids {__import__('os').getpid()} {child.pid}", flush=True)
    time.sleep(120)
"""
QUICK = """
    open("/opt/ml/processing/output/ok.txt", "w").write("ok")
"""
FILL_DISK = """
    with open("/opt/ml/processing/output/big.bin", "wb") as fh:
        for _ in range(64):
            fh.write(b"x" * (1 << 20))
"""


def _cli(args, **kwargs):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen([sys.executable, "-m", "sm_pipeline", "run-local", *args], cwd=REPO_ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait_for_log(root: Path, step: str, needle: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for directory in executions_dir(root).glob("*/*"):
            log = ExecutionRecords.in_dir(directory).logs_dir / f"{step}.log"
            text = log.read_text() if log.is_file() else ""
            if needle in text:
                return text
        time.sleep(0.1)
    raise AssertionError(f"step {step} never logged {needle!r}")


def test_sigkill_of_the_runner_kills_its_jobs_and_the_next_start_removes_the_sandbox(store, tmp_path):
    code = stage_script(store, f"{BUCKET}/code/sleep.py", SLEEP_WITH_CHILD)
    sleepy = tmp_path / "sleepy.json"
    sleepy.write_text(json.dumps(definition([processing_step("Sleepy", code)])))
    runner = _cli(["--definition", str(sleepy), "--root", str(store.root)])
    try:
        log = _wait_for_log(store.root, "Sleepy", "pids ")
        job, grandchild = (int(pid) for pid in log.split("pids ", 1)[1].split()[:2])
        sandboxes = list((store.root / ".airsage" / "work").iterdir())
        assert len(sandboxes) == 1
        runner.send_signal(signal.SIGKILL)
        runner.communicate(timeout=30)
        time.sleep(2)
        assert not _alive(job), "the job process outlived its runner by 2 s"
        assert not _alive(grandchild), "the job's child process outlived the runner by 2 s"
        assert sandboxes[0].is_dir()  # nobody was left to remove it
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.communicate()

    quick = tmp_path / "quick.json"
    code = stage_script(store, f"{BUCKET}/code/quick.py", QUICK)
    quick.write_text(json.dumps(definition([processing_step("Quick", code, outputs=[
        ("output", "/opt/ml/processing/output", f"{BUCKET}/out/quick")])])))
    nxt = _cli(["--definition", str(quick), "--root", str(store.root)])
    out, err = nxt.communicate(timeout=120)
    assert nxt.returncode == 0, err
    assert not sandboxes[0].exists(), "the dead run's sandbox survived the next start"


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_next_start_removes_staging_files_of_dead_writers_only(store, tmp_path):
    dead, alive = f"{HOST_TAG}-{_dead_pid()}", f"{HOST_TAG}-{os.getpid()}"
    out_dir = store.root / "test-bucket" / "out"
    out_dir.mkdir(parents=True)
    dead_dir = out_dir / f".airsage-tmp-prep.{dead}.0123abcd"
    (dead_dir / "sub").mkdir(parents=True)
    (dead_dir / "sub" / "part.csv").write_text("x")
    dead_file = out_dir / f".data.csv.{dead}.k3j4.tmp"
    dead_file.write_text("half")
    live_file = out_dir / f".data.csv.{alive}.k3j5.tmp"
    live_file.write_text("in progress")
    code = stage_script(store, f"{BUCKET}/code/quick.py", QUICK)
    result = run_pipeline(definition([processing_step("Quick", code, outputs=[
        ("output", "/opt/ml/processing/output", f"{BUCKET}/out/quick")])]), root=store.root)
    assert result.status == "Succeeded"
    assert not dead_dir.exists() and not dead_file.exists()
    assert live_file.exists()


def test_atomic_write_removes_a_dead_writers_temp_file_of_the_same_file(tmp_path):
    target = tmp_path / "describe.json"
    leftover = tmp_path / f".describe.json.{HOST_TAG}-{_dead_pid()}.abcd.tmp"
    leftover.write_text("{")
    write_text_atomic(target, "{}")
    assert target.read_text() == "{}" and not leftover.exists()


def test_a_record_write_failing_with_enospc_spends_the_reserve_and_the_record_is_final(store, monkeypatch):
    """The disk fills up while the run writes its records: the reserve makes room, the record is never left Executing."""
    from sm_pipeline.local import records

    code = stage_script(store, f"{BUCKET}/code/noop.py", "print('ok')\n")
    original = records.write_text_atomic
    failed = []

    def full_once(path, text):
        if path.name == "steps.json" and '"Succeeded"' in text and not failed:
            failed.append(path)
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return original(path, text)

    monkeypatch.setattr(records, "write_text_atomic", full_once)
    result = run_pipeline(definition([processing_step("Quick", code)]), root=store.root)
    assert failed, "the injected fault never fired"
    assert result.status == "Succeeded"  # the reserve made room: the retry of the write succeeded
    describe = json.loads(ExecutionRecords.in_dir(result.records_dir).describe_file.read_text())
    assert describe["PipelineExecutionStatus"] == "Succeeded"


def test_a_failing_publish_on_a_full_disk_is_a_one_line_step_failure(store, monkeypatch):
    from sm_pipeline.local import jobs

    code = stage_script(store, f"{BUCKET}/code/quick.py", QUICK)

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(store.root / "test-bucket" / "out"))

    monkeypatch.setattr(jobs, "temp_path_beside", no_space)
    result = run_pipeline(definition([processing_step("Quick", code, outputs=[
        ("output", "/opt/ml/processing/output", f"{BUCKET}/out/quick")])]), root=store.root)
    assert result.status == "Failed"
    assert result.failure_reason == (f"Step failure: Quick: Step.SERVICE_FAULT: No space left on device "
                                     f"({store.root / 'test-bucket' / 'out'})")
    assert json.loads(ExecutionRecords.in_dir(result.records_dir).describe_file.read_text())["PipelineExecutionStatus"] == "Failed"
    assert store.list(f"{BUCKET}/out/quick") == []


def test_training_model_write_on_a_full_disk_says_no_space_left(tmp_path, monkeypatch, capsys):
    from sm_pipeline.local import builtin_xgboost

    train = tmp_path / "train"
    train.mkdir()
    (train / "train.csv").write_text("".join(f"{i % 7},{i},{i * 2}\n" for i in range(50)))
    config = tmp_path / "job.json"
    model_dir = tmp_path / "model"
    config.write_text(json.dumps({"channels": {"train": str(train)}, "hyperparameters": {"num_round": "2"},
                                  "model_dir": str(model_dir), "metrics_file": str(tmp_path / "m.json")}))

    def no_space(self, data):
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    monkeypatch.setattr(Path, "write_bytes", no_space)
    with pytest.raises(SystemExit) as exit_info:
        builtin_xgboost.main(["train", "--config", str(config)])
    message = str(exit_info.value.code)
    assert message.endswith(": No space left on device") and str(model_dir) in message
    assert "\n" not in message


def test_root_that_is_a_file_is_refused_before_anything_is_written(tmp_path):
    root = tmp_path / "root"
    root.write_text("not a directory")
    with pytest.raises(StorageError, match=r"^object root .*/root: not a directory \(it is a file\)$"):
        run_pipeline(definition([processing_step("Quick", f"{BUCKET}/code/quick.py")]), root=root)
    assert root.read_text() == "not a directory"


# --------------------------------------------------------------------------- real tmpfs in a mount namespace
def _namespaces_work() -> bool:
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-r", "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt && echo ok"],
                           capture_output=True, text=True, timeout=30, check=False)
    return probe.stdout.strip() == "ok"


needs_tmpfs = pytest.mark.skipif(not _namespaces_work(), reason="cannot mount a tmpfs in a user+mount namespace here")


def _run_in_tmpfs(mount: Path, size: str, args: list[str], setup: str = "", read_only: bool = False):
    """``run-local ARGS`` with a fresh tmpfs of ``size`` at ``mount`` (seen by that process only)."""
    remount = f' && mount -o remount,ro "{mount}"' if read_only else ""
    script = f'mount -t tmpfs -o size={size} tmpfs "{mount}"{setup}{remount} && exec "$@"'
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(["unshare", "-r", "-m", "sh", "-c", script, "sh", sys.executable, "-m", "sm_pipeline",
                           "run-local", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


@needs_tmpfs
def test_full_disk_at_start_is_exit_2_naming_the_root(tmp_path, store):
    code = stage_script(store, f"{BUCKET}/code/quick.py", QUICK)
    d = tmp_path / "def.json"
    d.write_text(json.dumps(definition([processing_step("Quick", code)])))
    mount = tmp_path / "full"
    mount.mkdir()
    # 256 KiB: the object root fits, the run's 1 MiB record reserve does not.
    proc = _run_in_tmpfs(mount, "256k", ["--definition", str(d), "--root", str(mount)])
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == f"error: object root {mount}: No space left on device"
    assert proc.stdout == ""


@needs_tmpfs
def test_read_only_root_is_exit_2_naming_the_root(tmp_path):
    d = tmp_path / "def.json"
    d.write_text(json.dumps(definition([processing_step("Quick", f"{BUCKET}/code/quick.py")])))
    mount = tmp_path / "ro"
    mount.mkdir()
    proc = _run_in_tmpfs(mount, "1m", ["--definition", str(d), "--root", str(mount)], read_only=True)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == (f"error: object root {mount}: Read-only file system "
                                   f"({mount}/.airsage-probe.{HOST_TAG}-{proc.stderr.split(HOST_TAG + '-')[1].split('.')[0]}.tmp)")


@needs_tmpfs
def test_disk_filling_up_inside_a_step_fails_the_step_with_no_space_left_and_records_failed(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    code_dir = tmp_path / "code"
    code_dir.mkdir()
    (code_dir / "fill.py").write_text(FILL_DISK.replace("\n    ", "\n").strip() + "\n")
    step = processing_step("Fill", f"{BUCKET}/code/fill.py",
                           outputs=[("output", "/opt/ml/processing/output", f"{BUCKET}/out/fill")])
    d = tmp_path / "def.json"
    d.write_text(json.dumps(definition([step])))
    proc = _run_in_tmpfs(mount, "8m", ["--definition", str(d), "--root", str(mount), "--code-dir", str(code_dir)])
    assert proc.returncode == 1, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["status"] == "Failed"
    assert summary["failure_reason"].startswith("Step failure: Fill: AlgorithmError: processing script exited with code 1: ")
    assert summary["failure_reason"].endswith("No space left on device")
    assert "\n" not in summary["failure_reason"]
    assert "[Fill] failed in" in proc.stderr and proc.stderr.strip().endswith("No space left on device")
