"""airsage.testing: test your Airflow DAGs against an emulated SageMaker service, offline, no AWS account.

A pytest plugin, registered by the installed distribution (``pip install airsage[testing]``): its
fixtures are available in every test without an import. The emulated service is airsage's own
(``python -m sm_pipeline serve``): SageMaker Pipelines' API and S3 on one loopback endpoint, whose
executions really run (the local runner executes every step), so a DAG test sees real statuses,
failure reasons, failing steps and model package versions.

Fixtures
--------
``sagemaker_service`` (session)
    The service on a free loopback port over a temporary object root: ``.url``, ``.root``, ``.log``.
``aws_endpoint``
    ``AWS_ENDPOINT_URL`` set to the service for the test, fake credentials, a region, no shared config
    and no instance-metadata lookups: nothing can reach AWS. Returns the URL.
``aws_connection``
    The Airflow connection ``aws_default`` on the service (``AIRFLOW_CONN_AWS_DEFAULT``). Returns the URL.
``s3_bucket``
    A fresh bucket on the service, also the Variable ``airsage_bucket``; returns its name.
``pipeline_role``
    The Variable ``airsage_role_arn`` (an execution role ARN the service accepts); returns it.
``local_object_root``
    A fresh object root for the local backend, the Variable ``airsage_local_root``; returns its path.
``sagemaker_client`` / ``s3_client``
    boto3 clients on the service.
``airflow_metadata_db`` (session)
    ``airflow db migrate`` once for the session's Airflow home (set ``AIRFLOW_HOME`` to a temporary
    folder before Airflow is imported, e.g. in your ``conftest.py``, to keep tests off your own).
``run_dag``
    ``run_dag(dag, "2026-11-01", conf={...})`` runs a whole DAG run in the test's process with
    ``dag.test()`` and returns a :class:`DagRunResult`: ``state``, ``task_states``, ``xcom(task_id,
    key)``, ``execution`` (the pipeline execution the run used) and ``execution_steps()``. The DAG's
    param defaults are restored afterwards (``dag.test()`` writes a run's conf into the DAG's Params).
    No one can answer a human-in-the-loop request in ``dag.test()``: the run's ``approve_model`` skips itself
    (as under ``airflow dags test``), the model version stays PendingManualApproval.

Helpers
-------
:func:`check_pipeline_dag` builds a factory DAG's pipeline definition and checks its quality gate
against it: what ``upsert_pipeline`` checks before deploying, in a DAG test instead of a failed run.
:func:`wait_for_execution` and :func:`wait_for_step` poll a boto3 SageMaker client until an execution
(or one of its steps) reaches a status.

Settings (ini options): ``airsage_service_log_dir`` — where the service's log goes, relative to the
rootdir (default: a temporary folder; the path is in every failure message).
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

FAKE_ACCESS_KEY = "AKIAAIRSAGETESTING00"
FAKE_SECRET_KEY = "airsage-testing-not-a-secret"  # noqa: S105 - a fake credential for the emulated service
REGION = "us-east-1"
ROLE_ARN = "arn:aws:iam::000000000000:role/AirsageTestingExecution"
SERVICE_START_SECONDS = 300
EXECUTION_TASKS = ("wait_for_execution", "start_execution", "run_local")


def pytest_addoption(parser) -> None:
    """The kit's ini options."""
    parser.addini("airsage_service_log_dir", "where the emulated SageMaker service writes its log "
                                             "(default: a temporary folder)", default="")


# -- the emulated service ----------------------------------------------------------------------
@dataclass
class EmulatedSageMaker:
    """A running ``python -m sm_pipeline serve`` process."""

    url: str
    root: Path
    log: Path
    process: subprocess.Popen = field(repr=False)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 120) -> int:
        """Stop the service (its executions end Stopped) and return its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        finally:
            if self.process.stdout:
                self.process.stdout.close()


def start_service(root: Path | str, log_dir: Path | str | None = None, name: str = "sagemaker",
                  extra_args: tuple[str, ...] = (), env: dict[str, str] | None = None) -> EmulatedSageMaker:
    """Start the emulated SageMaker service on a free loopback port over ``root``; returns once it listens.

    Raises RuntimeError naming the log when the service does not come up.
    """
    log_dir = Path(log_dir or tempfile.mkdtemp(prefix="airsage-service-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{name}-{uuid.uuid4().hex[:8]}.log"
    with open(log, "w") as err:
        process = subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
            [sys.executable, "-m", "sm_pipeline", "serve", "--port", "0", "--root", str(root), *extra_args],
            stdout=subprocess.PIPE, stderr=err, env={**os.environ, **(env or {})}, text=True)
    ready, _, _ = select.select([process.stdout], [], [], SERVICE_START_SECONDS)
    line = process.stdout.readline().strip() if ready else ""
    if not line.startswith("http://"):
        process.kill()
        process.wait()
        process.stdout.close()
        raise RuntimeError(f"the emulated SageMaker service did not start (it printed {line!r}); log: {log}\n"
                           f"{log.read_text()[-3000:]}")
    return EmulatedSageMaker(line, Path(root), log, process)


def share_botocore_models() -> None:
    """Parse each botocore service model once per process (idempotent).

    Every Airflow AWS hook builds a fresh boto3 session, and every fresh botocore loader parses the
    SageMaker model (megabytes of JSON) again: about a second per operator call. The parsed models
    are immutable data, so sharing them changes nothing but the time.
    """
    import functools

    from botocore.loaders import Loader

    if getattr(Loader.load_service_model, "_airsage_shared", False):
        return
    original = Loader.load_service_model
    cache: dict = {}

    @functools.wraps(original)
    def load_service_model(self, service_name, type_name, api_version=None):
        key = (service_name, type_name, api_version)
        if key not in cache:
            cache[key] = original(self, service_name, type_name, api_version)
        return cache[key]

    load_service_model._airsage_shared = True
    Loader.load_service_model = load_service_model


def offline_aws_environment(endpoint: str) -> dict[str, str]:
    """The environment that sends every AWS client to ``endpoint`` and can reach nothing else."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AIRSAGE_TELEMETRY": "off",
    }


def aws_connection_uri(endpoint: str) -> str:
    """``AIRFLOW_CONN_AWS_DEFAULT``'s value for an AWS connection on ``endpoint`` (fake credentials)."""
    return json.dumps({"conn_type": "aws", "login": FAKE_ACCESS_KEY, "password": FAKE_SECRET_KEY,
                       "extra": {"endpoint_url": endpoint, "region_name": REGION}})


@pytest.fixture(scope="session")
def sagemaker_service(tmp_path_factory, pytestconfig):
    """The emulated SageMaker service (and S3) for the session."""
    share_botocore_models()
    configured = pytestconfig.getini("airsage_service_log_dir")
    log_dir = pytestconfig.rootpath / configured if configured else tmp_path_factory.mktemp("airsage-service-log")
    served = start_service(tmp_path_factory.mktemp("airsage-service-root"), log_dir)
    yield served
    code = served.stop()
    if code != 0:
        pytest.fail(f"the emulated SageMaker service did not exit cleanly ({code}); log: {served.log}")


@pytest.fixture
def aws_endpoint(sagemaker_service, monkeypatch) -> str:
    """Every AWS client created in the test goes to the emulated service; nothing can reach AWS."""
    for variable in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                     "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(variable, raising=False)
    for variable, value in offline_aws_environment(sagemaker_service.url).items():
        monkeypatch.setenv(variable, value)
    return sagemaker_service.url


@pytest.fixture
def aws_connection(aws_endpoint, monkeypatch) -> str:
    """The Airflow connection ``aws_default`` on the emulated service."""
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", aws_connection_uri(aws_endpoint))
    return aws_endpoint


@pytest.fixture
def s3_bucket(aws_connection, monkeypatch) -> str:
    """A fresh bucket on the emulated service, and the Variable ``airsage_bucket`` naming it."""
    import boto3

    name = f"airsage-test-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=aws_connection, region_name=REGION).create_bucket(Bucket=name)
    monkeypatch.setenv("AIRFLOW_VAR_AIRSAGE_BUCKET", name)
    return name


@pytest.fixture
def pipeline_role(monkeypatch) -> str:
    """The Variable ``airsage_role_arn``: the execution role the emulated service runs pipelines with."""
    monkeypatch.setenv("AIRFLOW_VAR_AIRSAGE_ROLE_ARN", ROLE_ARN)
    return ROLE_ARN


@pytest.fixture
def local_object_root(tmp_path, monkeypatch) -> Path:
    """A fresh object root for the local backend, and the Variable ``airsage_local_root`` naming it."""
    root = tmp_path / "objects"
    monkeypatch.setenv("AIRFLOW_VAR_AIRSAGE_LOCAL_ROOT", str(root))
    return root


@pytest.fixture
def sagemaker_client(aws_endpoint):
    """A boto3 SageMaker client on the emulated service, made as users make one (``AWS_ENDPOINT_URL`` does it)."""
    import boto3

    return boto3.client("sagemaker", region_name=REGION)


@pytest.fixture
def s3_client(aws_endpoint):
    """A boto3 S3 client on the emulated service, made as users make one (``AWS_ENDPOINT_URL`` does it)."""
    import boto3

    return boto3.client("s3", region_name=REGION)


TERMINAL = ("Succeeded", "Failed", "Stopped")


def wait_for_execution(client, arn: str, statuses: tuple[str, ...] = TERMINAL, timeout: float = 600) -> dict:
    """Poll DescribePipelineExecution until its status is one of ``statuses``; the last Describe answer."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        describe = client.describe_pipeline_execution(PipelineExecutionArn=arn)
        if describe["PipelineExecutionStatus"] in statuses:
            return describe
        if time.monotonic() > deadline:
            raise AssertionError(f"{arn} is still {describe['PipelineExecutionStatus']} after {timeout} s")
        time.sleep(0.2)


def wait_for_step(client, arn: str, step: str, status: str, timeout: float = 300) -> dict:
    """Poll ListPipelineExecutionSteps until ``step`` of execution ``arn`` has ``status``; its entry."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        steps = {s["StepName"]: s for s in
                 client.list_pipeline_execution_steps(PipelineExecutionArn=arn)["PipelineExecutionSteps"]}
        if steps.get(step, {}).get("StepStatus") == status:
            return steps[step]
        if time.monotonic() > deadline:
            raise AssertionError(f"step {step} of {arn} never became {status}: {steps}")
        time.sleep(0.1)


# -- Airflow ----------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def airflow_metadata_db() -> str:
    """``airflow db migrate`` once for the session's Airflow home; returns the database URL."""
    done = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=os.environ.copy(),  # noqa: S603
                          capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed ({done.returncode}): {done.stderr[-3000:]}")
    from airflow.configuration import conf

    return conf.get("database", "sql_alchemy_conn")


@dataclass
class DagRunResult:
    """One DAG run a test ran: its state, its tasks' states and XComs, and the pipeline execution it used."""

    dag_run: Any

    @property
    def state(self) -> str:
        """The DAG run's state (``success``, ``failed``)."""
        return str(self.dag_run.state)

    @property
    def task_states(self) -> dict[str, str]:
        """``{task_id: state}`` of every task instance of the run."""
        return {ti.task_id: str(ti.state) for ti in self.dag_run.get_task_instances()}

    def xcom(self, task_id: str, key: str = "return_value") -> Any:
        """The XCom ``key`` of ``task_id`` in this run."""
        for ti in self.dag_run.get_task_instances():
            if ti.task_id == task_id:
                return ti.xcom_pull(task_ids=task_id, key=key)
        raise KeyError(f"no task {task_id!r} in this DAG run (tasks: {sorted(self.task_states)})")

    @property
    def execution(self) -> dict | None:
        """The pipeline execution the run started or re-attached to (the execution task's XCom), if any."""
        for task_id in EXECUTION_TASKS:
            if task_id in self.task_states:
                value = self.xcom(task_id)
                if isinstance(value, dict) and value.get("execution_arn"):
                    return value
        return None

    def execution_steps(self) -> list[dict]:
        """The execution's steps as ListPipelineExecutionSteps gives them (local records or the service)."""
        execution = self.execution
        if execution is None:
            raise LookupError("this DAG run has no pipeline execution")
        if execution.get("backend") == "local":
            from sm_pipeline.local import LocalExecutionStore

            return LocalExecutionStore(execution["object_root"]).steps(execution["pipeline_name"],
                                                                      execution["execution_id"])
        import boto3

        client = boto3.client("sagemaker", region_name=execution.get("region") or REGION)
        steps, token = [], None
        while True:
            page = client.list_pipeline_execution_steps(PipelineExecutionArn=execution["execution_arn"],
                                                        **({"NextToken": token} if token else {}))
            steps += page["PipelineExecutionSteps"]
            token = page.get("NextToken")
            if not token:
                return steps


def _param_values(dag) -> list[tuple[Any, Any]]:
    return [(param, param.value) for params in (dag.params, *(task.params for task in dag.tasks))
            for param in (params.get_param(key) for key in params)]


@pytest.fixture
def run_dag(airflow_metadata_db):
    """``run_dag(dag, logical_date, conf=None) -> DagRunResult``: one whole DAG run in this process."""

    def run(dag, logical_date: str | datetime, conf: dict | None = None, run_id: str | None = None) -> DagRunResult:
        when = datetime.fromisoformat(logical_date) if isinstance(logical_date, str) else logical_date
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        saved = _param_values(dag)
        try:
            dag_run = dag.test(logical_date=when, run_conf=conf or None,
                               **({"run_id": run_id} if run_id else {}))
        finally:
            for param, value in saved:  # dag.test() resolves a run's conf onto the DAG's own Params
                param.value = value
        return DagRunResult(dag_run)

    return run


def check_pipeline_dag(dag) -> list[str]:
    """Build the pipeline of a factory DAG and check its quality gate against it; the problems (empty: fits).

    What ``upsert_pipeline`` checks right after the build, before deploying, in a test instead of a
    failed run. Builds with the task's own source and default config (imports the SageMaker SDK for a
    builder that uses it).
    """
    from airsage.pipeline_source import build_source
    from airsage.quality_gate import QualityGate

    upsert = dag.get_task("upsert_pipeline")
    overrides = {k: v for k, v in (upsert.config_overrides or {}).items() if "{{" not in str(v)}
    source = build_source(upsert.source, overrides, pipeline_name=upsert.pipeline_name)
    if not upsert.gate:
        return []
    return QualityGate(**upsert.gate).definition_problems(json.loads(source.definition))
