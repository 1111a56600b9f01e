"""One airsage distribution, wherever the repository is on sys.path.

make ui's components, make demo's and the tests run with the repository root and plugins/ on sys.path.
A build's ``airsage.egg-info`` left there is a second airsage distribution to importlib.metadata: Airflow
then loads airsage's ``airflow.plugins`` entry point twice and the UI's home page shows "1 Plugin Import
Error" ("Plugin 'airsage' already registered"). ``make setup`` removes it; ``make wheel`` builds elsewhere.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COUNT = ("from importlib.metadata import distributions, entry_points; "
         "print(sum(d.metadata['Name'] == 'airsage' for d in distributions()), "
         "[e.value for e in entry_points(group='airflow.plugins') if e.name == 'airsage'])")


def test_the_repository_on_sys_path_holds_no_second_airsage():
    assert not list(REPO.glob("*.egg-info")), "a build's metadata in the repository root (make setup removes it)"
    out = subprocess.run([sys.executable, "-c", COUNT], cwd=REPO, capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": f"{REPO}:{REPO / 'plugins'}", "PATH": "/usr/bin:/bin"}).stdout
    assert out.split(" ", 1) == ["1", "['airsage.plugin:AirsagePlugin']\n"], out
