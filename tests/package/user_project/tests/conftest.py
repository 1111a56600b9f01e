"""The churn project's DAG tests: Airflow on a scratch home, the DAG and pipeline folders importable.

airsage's pytest kit (``airsage.testing``) comes with the installed package: its fixtures need no import.
"""

import os
import sys
import tempfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
HOME = Path(tempfile.mkdtemp(prefix="churn-airflow-"))
# before anything imports Airflow: a scratch Airflow home and database, this project's DAGs
os.environ.update({
    "AIRFLOW_HOME": str(HOME),
    "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT / "dags"),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{HOME / 'airflow.db'}",
    "AIRSAGE_POLL_INTERVAL": "0.5",
})
for folder in ("dags", "pipelines"):
    sys.path.insert(0, str(PROJECT / folder))
