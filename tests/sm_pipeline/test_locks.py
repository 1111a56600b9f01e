"""The one lock helper: exclusive, released by the kernel when its owner dies, a note that outlives it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from sm_pipeline.locks import FileLock, Owner, owner_is_alive


def test_a_lock_is_exclusive_even_within_one_process(tmp_path):
    first, second = FileLock(tmp_path / "x.lock"), FileLock(tmp_path / "x.lock")
    assert first.try_acquire(purpose="test") and first.held
    assert not second.try_acquire() and not second.held
    assert second.owner()["Pid"] == os.getpid()
    assert second.note()["purpose"] == "test"
    first.release()
    assert second.try_acquire()
    second.release()


def test_the_note_keeps_earlier_fields_and_names_the_latest_owner(tmp_path):
    lock = FileLock(tmp_path / "deep" / "x.lock")
    assert lock.try_acquire(inputs={"a": 1})
    lock.release()
    again = FileLock(tmp_path / "deep" / "x.lock")
    assert again.try_acquire()
    assert again.note()["inputs"] == {"a": 1} and again.owner()["Host"] == Owner.current().host
    again.release()


def test_a_killed_owner_s_lock_is_free_at_once_and_its_record_reads_dead(tmp_path):
    path = tmp_path / "held.lock"
    code = ("import sys, time; from sm_pipeline.locks import FileLock; "
            f"assert FileLock({str(path)!r}).try_acquire(); print('held', flush=True); time.sleep(60)")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        lock = FileLock(path)
        assert not lock.try_acquire()
        record = lock.owner()
        assert record["Pid"] == child.pid and owner_is_alive(record)
        child.send_signal(signal.SIGKILL)
        child.wait(30)
        assert not owner_is_alive(record)
        assert lock.try_acquire()
        lock.release()
    finally:
        child.kill()
        child.stdout.close()


def test_acquire_waits_and_reports_whom_it_waits_for(tmp_path):
    holder = FileLock(tmp_path / "w.lock")
    holder.try_acquire()
    seen = []

    def release_soon(owner, waited):
        seen.append(owner["Pid"])
        holder.release()

    waiter = FileLock(tmp_path / "w.lock")
    started = time.monotonic()
    assert waiter.acquire(poll_interval=0.01, on_wait=release_soon) is True
    assert seen == [os.getpid()] and time.monotonic() - started < 30
    waiter.release()


def test_owner_records_of_other_hosts_or_without_a_pid_count_as_alive():
    assert owner_is_alive({"Pid": 1, "Host": "another-machine"})
    assert owner_is_alive({"Host": Owner.current().host})
    assert owner_is_alive(None)
    assert owner_is_alive(Owner.current().record())
