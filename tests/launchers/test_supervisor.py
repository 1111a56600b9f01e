"""The launchers' one process supervisor on small real processes: find everything a component started, stop it all.

The components here are tiny Python scripts that start children the way Airflow's components do (a
process group of their own, a session of their own, an orphan), so each test exercises one way a
process can try to outlive its launcher. Nothing waits on a clock: every wait has a generous bound.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from launchers.supervisor import (
    TERM_ALL,
    TERM_LEADER,
    Component,
    Supervisor,
    free_port,
    log_tail,
    port_problem,
    since_last_start,
)

REPO = Path(__file__).resolve().parents[2]

# A component that starts a child in a session of its own (as the local runner starts its jobs) and
# sleeps; the child records a SIGTERM it gets in argv[2], and its pid in argv[1] once it is ready to.
WITH_SESSION_CHILD = r"""
import subprocess, sys, time
subprocess.Popen([sys.executable, "-c", '''
import os, pathlib, signal, sys, time
def term(*_):
    pathlib.Path(sys.argv[2]).write_text("TERM")
    sys.exit(0)
signal.signal(signal.SIGTERM, term)
pathlib.Path(sys.argv[1]).write_text(str(os.getpid()))
time.sleep(600)
''', *sys.argv[1:3]], start_new_session=True)
time.sleep(600)
"""

# A component that ignores SIGTERM (a process still cleaning up when the grace period ends).
IGNORES_TERM = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(600)"


def wait_for(condition, what: str, timeout: float = 60.0):
    """Poll ``condition`` until truthy (its value), or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def gone(proc: psutil.Process) -> bool:
    """Not running any more (an orphan may stay a zombie until whoever adopted it reaps it)."""
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def started_child(pid_file: Path) -> psutil.Process:
    return psutil.Process(int(wait_for(lambda: pid_file.exists() and pid_file.read_text(), "the child's pid")))


def test_a_session_child_is_found_by_the_marker_even_from_another_supervisor_and_stopped(tmp_path):
    """What ``make stack-down`` does: a new process, the recorded sessions and the marker, nothing else."""
    starter = Supervisor(marker=("AIRSAGE_TEST_MARKER", "m1"), component_var="AIRSAGE_TEST_COMPONENT")
    component = starter.start(Component("svc", [sys.executable, "-c", WITH_SESSION_CHILD, str(tmp_path / "pid"),
                                                str(tmp_path / "term")]), dict(os.environ), tmp_path / "svc.log")
    child = started_child(tmp_path / "pid")
    assert os.getsid(child.pid) == child.pid != component.pid  # it left the component's session

    record = json.loads(json.dumps(component.__dict__))  # as the state file keeps it
    other = Supervisor([Component(**record)], marker=("AIRSAGE_TEST_MARKER", "m1"),
                       component_var="AIRSAGE_TEST_COMPONENT")
    found = {p.pid: p.component for p in other.processes()}
    assert found == {component.pid: "svc", child.pid: "svc"}

    report = other.stop(grace=30)
    assert report.running == 2 and report.left == []
    assert (tmp_path / "term").read_text() == "TERM"  # TERM_ALL: the child got its own SIGTERM
    assert gone(child)
    starter.reap()
    assert starter.returncode("svc") == -signal.SIGTERM


def test_what_ignores_sigterm_is_killed_after_the_grace_period_and_reported(tmp_path):
    supervisor = Supervisor()
    supervisor.start(Component("stubborn", [sys.executable, "-c", IGNORES_TERM]), dict(os.environ), tmp_path / "s.log")
    wait_for(lambda: since_last_start(tmp_path / "s.log") == ["up"], "the component to ignore SIGTERM")
    report = supervisor.stop(grace=0.5, kill_wait=30)
    assert report.running == 1 and report.left == []
    assert len(report.killed) == 1 and report.killed[0].endswith(f"(pid {supervisor.components['stubborn'].pid})")
    assert supervisor.returncode("stubborn") == -signal.SIGKILL
    assert supervisor.processes() == []


def test_a_leader_policy_sends_the_first_sigterm_to_the_leader_alone(tmp_path):
    """A Celery worker's warm shutdown stops its pool itself; the others are only killed if they stay."""
    supervisor = Supervisor(marker=("AIRSAGE_TEST_MARKER", "m2"), component_var="AIRSAGE_TEST_COMPONENT")
    supervisor.start(Component("worker", [sys.executable, "-c", WITH_SESSION_CHILD, str(tmp_path / "pid"),
                                          str(tmp_path / "term")], term=TERM_LEADER), dict(os.environ),
                     tmp_path / "w.log")
    child = started_child(tmp_path / "pid")
    report = supervisor.stop(grace=1, kill_wait=30)
    assert report.left == [] and gone(child)
    assert not (tmp_path / "term").exists()  # no SIGTERM reached it: SIGKILL after the grace period
    assert any(killed.endswith(f"(pid {child.pid})") for killed in report.killed), report.killed


ORPHAN_SCRIPT = r"""
import json, os, subprocess, sys, time
sys.path.insert(0, sys.argv[1])
from launchers.supervisor import Component, Supervisor
work = sys.argv[2]
supervisor = Supervisor()  # no marker: only the session and the subreaper's tree can find the orphan
became = supervisor.become_subreaper()
# the component starts a grandchild in a session of its own, then exits: the grandchild is orphaned
code = ("import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'], "
        "start_new_session=True); print(p.pid, flush=True)")
supervisor.start(Component("short", [sys.executable, "-c", code]), dict(os.environ), work + "/short.log")
deadline = time.monotonic() + 60
while supervisor.leader_alive("short") and time.monotonic() < deadline:
    time.sleep(0.05)
orphan = int(open(work + "/short.log").read().split()[-1])
adopted = os.getppid() != orphan and __import__("psutil").Process(orphan).ppid() == os.getpid()
found = [p.pid for p in supervisor.processes()]
report = supervisor.stop(grace=30)
print(json.dumps({"became": became, "adopted": adopted, "found": orphan in found, "left": report.left,
                  "exited": supervisor.exited() is not None}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_CHILD_SUBREAPER is Linux's")
def test_a_subreaper_keeps_an_orphan_in_its_tree_and_stops_it(tmp_path):
    """What ``make ui`` and ``make demo`` rely on (in a process of its own: a subreaper stays one)."""
    done = subprocess.run([sys.executable, "-c", ORPHAN_SCRIPT, str(REPO), str(tmp_path)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.splitlines()[-1]) == {
        "became": True, "adopted": True, "found": True, "left": [], "exited": True}


def test_the_log_tail_starts_at_the_last_start_and_leads_with_the_first_error(tmp_path):
    supervisor = Supervisor()
    log = tmp_path / "c.log"
    for code in ("print('first start'); raise ValueError('from the first start')",
                 "import sys\nprint('second start')\ntry:\n    raise KeyError('cause')\n"
                 "except KeyError as e:\n    raise RuntimeError('wrapper') from e"):
        supervisor.start(Component("c", [sys.executable, "-c", code]), dict(os.environ), log)
        assert supervisor.wait("c", timeout=60) == 1
    tail = log_tail(log, lines=2)
    assert tail[0] == "first error: KeyError: 'cause'"
    assert tail[-1] == "RuntimeError: wrapper"
    assert "first start" not in "\n".join(log_tail(log, lines=100))
    assert log_tail(tmp_path / "missing.log") == ["(no log)"]


def test_ports(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert port_problem(busy.getsockname()[1])  # the reason, e.g. "Address already in use"
    assert port_problem(free_port()) is None


def test_an_unknown_stop_policy_is_refused_with_one_line():
    with pytest.raises(ValueError, match=r"component x: term must be one of \('all', 'group', 'leader'\), got 'some'"):
        Component("x", ["true"], term="some")
    assert Component("y", ["true"]).term == TERM_ALL
