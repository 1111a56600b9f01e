"""``make stack`` / ``make stack-down``: docker-compose.yaml's production topology as local processes.

``python -m launchers.stack up [--dir DIR] [--workers 2]`` starts, on 127.0.0.1, what
``docker compose up`` starts in containers: the emulated AWS service, the api-server, the
scheduler, the dag-processor, the triggerer and N Celery workers (CeleryExecutor; PostgreSQL
as metadata DB and result backend; Redis as broker) and returns once all are healthy,
printing the URL, the login and the log folder. ``python -m launchers.stack down [--dir DIR]``
stops every process the stack started and drops its database.

One source of truth: the environment of every component is x-airflow-common's
``environment`` in docker-compose.yaml, interpolated as Compose does (``${VAR:-default}``
from the shell, then ``.env``), and translated by the one host mapping below:

* ``HOST_MAPPING``: the keys whose values name compose services (``postgres``, ``redis``,
  ``airflow-apiserver``, ``aws-emulator``) or a shared secret; each has its translation.
* ``container_paths()``: /opt/airflow paths -> local ones, from the compose volumes (bind
  mounts -> the repository, named volumes and the image's AIRFLOW_HOME -> the stack folder).
* ``LOCAL_ONLY``: what the stack adds because every component shares one machine (ports,
  the Redis key prefix, one loopback address per worker, ...), each with its reason.

Every other key is passed through unchanged; tests/stack/test_stack_env.py fails when the
two drift. The component list and commands come from the compose services too.

Each stack is isolated from every other on the machine (the tests', another checkout's): a
fresh PostgreSQL database ``airsage_stack_<id>``, a Redis key prefix ``airsage-stack-<id>:``
for every broker key and channel, free ports, its own folder. The state file
``<dir>/state.json`` names all of it, so ``down`` stops every process (the launchers' one
supervisor, :mod:`launchers.supervisor`: by session, and by the ``AIRSAGE_STACK_ID`` marker each
one inherits) and drops the database.

PostgreSQL and Redis are those of ``AIRSAGE_STACK_POSTGRES`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``) and ``AIRSAGE_STACK_REDIS`` (default
``redis://127.0.0.1:6379``); when one is not reachable, ``up`` says which in one line and
exits 2.

The workers' ``[core] hostname_callable`` is ``airsage.celery_worker.worker_hostname`` (in
``plugins/``, which every component imports anyway): nothing imports a launcher.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shlex
import signal
import sys
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from launchers import LOOPBACK, REPO, LauncherError
from launchers.airflow_api import AirflowApi, components_healthy
from launchers.airflow_env import migrate
from launchers.emulated_aws import emulator_answers
from launchers.supervisor import (
    TERM_GROUP,
    TERM_LEADER,
    Component,
    Supervisor,
    describe,
    free_port,
    log_tail,
    process_groups,
    processes_in_groups,
)

COMPOSE_FILE = REPO / "docker-compose.yaml"
DEFAULT_DIR = REPO / "build" / "stack"
#: the image's AIRFLOW_HOME: everything under it that is not a bind mount lives in the stack folder
CONTAINER_HOME = "/opt/airflow"
EMULATOR_SERVICE = "aws-emulator"
#: compose service -> local component name; workers are ``worker1`` .. ``workerN``
AIRFLOW_SERVICES = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
}
WORKER_SERVICE = "airflow-worker"
#: per-service environment entries that only make sense inside a container
CONTAINER_ONLY = {
    "DUMB_INIT_SETSID": "signal propagation of the image's dumb-init; no init wrapper here",
    "CONNECTION_CHECK_MAX_COUNT": "the image entrypoint's DB wait loop; the launcher waits itself",
}
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379"
#: what a child keeps of the caller's environment (a container starts from a clean one too)
BASE_ENV_KEYS = ("HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "SHELL")
STACK_ID_VAR = "AIRSAGE_STACK_ID"
COMPONENT_VAR = "AIRSAGE_STACK_COMPONENT"
#: in compose every worker container has a hostname of its own, which task instances record; here each
#: worker gets a loopback address of its own, read by the callable from this variable
HOSTNAME_CALLABLE = "airsage.celery_worker.worker_hostname"
WORKER_HOSTNAME_VAR = "AIRSAGE_STACK_WORKER_HOSTNAME"  # airsage.celery_worker.HOSTNAME_VAR


def say(message: str) -> None:
    """One progress line on stdout."""
    print(f"airsage stack: {message}", flush=True)


# --------------------------------------------------------------------------------------------
# docker-compose.yaml: read and interpolate
# --------------------------------------------------------------------------------------------

_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's variable interpolation: ``$$``, ``$VAR``, ``${VAR}``, ``${VAR:-d}``, ``${VAR-d}``, ``${VAR:?e}``."""

    def substitute(match: re.Match) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["named"]
        op, arg = match["op"], match["arg"] or ""
        present = name in env
        value = env.get(name, "")
        if op in (":-", ":?") and not value or op in ("-", "?") and not present:
            if op.endswith("?"):
                raise LauncherError(f"{COMPOSE_FILE.name}: required variable {name} is missing: {arg}", 2)
            return interpolate(arg, env)
        return value

    return _INTERPOLATION.sub(substitute, value)


def dotenv(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of a Compose ``.env`` file (comments, blank lines and quotes allowed)."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if not sep or not key.strip():
            raise LauncherError(f"{path}:{number}: expected KEY=VALUE, got {line!r}", 2)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def load_compose(path: Path = COMPOSE_FILE) -> dict:
    """docker-compose.yaml parsed, anchors and merge keys resolved (as Compose resolves them)."""
    import yaml

    try:
        return yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise LauncherError(f"{path}: cannot read the compose file: {err}".splitlines()[0], 2) from None


def _as_env_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def environment_mapping(raw) -> dict[str, str]:
    """A compose ``environment`` (mapping or ``KEY=VALUE`` list) as a dict of raw strings."""
    if isinstance(raw, list):
        return dict(item.partition("=")[::2] for item in raw)
    return {key: _as_env_value(value) for key, value in (raw or {}).items()}


def compose_environment(compose: dict, interpolation_env: Mapping[str, str]) -> dict[str, str]:
    """x-airflow-common's environment, interpolated: what every Airflow container gets."""
    raw = environment_mapping(compose["x-airflow-common"]["environment"])
    return {key: interpolate(value, interpolation_env) for key, value in raw.items()}


def interpolation_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """What Compose interpolates from: ``.env`` beside the compose file, the shell's values winning."""
    return {**dotenv(COMPOSE_FILE.with_name(".env")), **(os.environ if environ is None else environ)}


# --------------------------------------------------------------------------------------------
# The host mapping: compose names and paths -> this machine
# --------------------------------------------------------------------------------------------


@dataclass
class Site:
    """Where one stack's pieces live on this machine (everything the translation needs)."""

    dir: Path
    stack_id: str
    postgres: str = DEFAULT_POSTGRES
    redis: str = DEFAULT_REDIS
    api_port: int = 8080
    health_port: int = 8974
    aws_endpoint: str = ""
    jwt_secret: str = ""
    concurrency: int = 2

    @property
    def database(self) -> str:
        """The stack's own PostgreSQL database."""
        return f"airsage_stack_{self.stack_id}"

    @property
    def redis_prefix(self) -> str:
        """Prefix of every Redis key and channel of the stack's broker."""
        return f"airsage-stack-{self.stack_id}:"

    @property
    def api_url(self) -> str:
        """The api-server's (and the UI's) base URL, without a trailing slash."""
        return f"http://{LOOPBACK}:{self.api_port}"


def _database_url(compose_value: str, site: Site) -> str:
    """The compose URL with the local server, user and password, and the stack's database.

    The scheme and driver stay the compose file's (``postgresql+psycopg2``, ``db+postgresql``).
    """
    from sqlalchemy.engine import URL, make_url

    prefix = "db+" if compose_value.startswith("db+") else ""
    url = make_url(compose_value.removeprefix(prefix))
    server = make_url(site.postgres)
    local = URL.create(url.drivername, username=server.username, password=server.password, host=server.host,
                       port=server.port, database=site.database, query=url.query)
    return prefix + local.render_as_string(hide_password=False)


def _broker_url(compose_value: str, site: Site) -> str:
    """The compose Redis URL on the local Redis server, same database number."""
    compose = urllib.parse.urlsplit(compose_value)
    server = urllib.parse.urlsplit(site.redis)
    return urllib.parse.urlunsplit((compose.scheme, server.netloc, compose.path, compose.query, ""))


def _execution_api_url(compose_value: str, site: Site) -> str:
    """The compose execution API URL on the local api-server's address."""
    path = urllib.parse.urlsplit(compose_value).path
    return f"{site.api_url}{path}"


def _aws_connection(compose_value: str, site: Site) -> str:
    """The AWS connection: its endpoint_url moves to the local emulator when it names the compose one.

    A connection to real AWS (``AIRSAGE_AWS_CONN`` without an endpoint) is left as it is.
    """
    head, sep, query = compose_value.partition("?")
    pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
    if not any(k == "endpoint_url" and urllib.parse.urlsplit(v).hostname == EMULATOR_SERVICE for k, v in pairs):
        return compose_value
    pairs = [(k, site.aws_endpoint if k == "endpoint_url" else v) for k, v in pairs]
    return head + sep + urllib.parse.urlencode(pairs)


def _jwt_secret(compose_value: str, site: Site) -> str:
    """The shared JWT secret: compose's default is public, so a stack draws its own unless one is set."""
    return site.jwt_secret or compose_value


#: key -> (why it differs here, translation of the compose value)
HOST_MAPPING: dict[str, tuple[str, Callable[[str, Site], str]]] = {
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": (
        "service `postgres` -> the local PostgreSQL, database airsage_stack_<id>", _database_url),
    "AIRFLOW__CELERY__RESULT_BACKEND": (
        "service `postgres` -> the local PostgreSQL, database airsage_stack_<id>", _database_url),
    "AIRFLOW__CELERY__BROKER_URL": ("service `redis` -> the local Redis (keys prefixed per stack)", _broker_url),
    "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": (
        "service `airflow-apiserver:8080` -> 127.0.0.1:<free port>", _execution_api_url),
    "AIRFLOW_CONN_AWS_DEFAULT": ("service `aws-emulator:5000` -> the local emulator's URL", _aws_connection),
    "AIRFLOW__API_AUTH__JWT_SECRET": (
        "a random secret per stack unless AIRFLOW_JWT_SECRET is set (compose's default is public)", _jwt_secret),
}


def container_paths(compose: dict, site: Site) -> dict[str, Path]:
    """Container path -> local path, from x-airflow-common's volumes.

    Bind mounts map to their source in the repository, named volumes to ``<dir>/<target
    relative to /opt/airflow>``; /opt/airflow itself (the image's AIRFLOW_HOME) is the stack
    folder and /opt/airflow/project (where the image's PYTHONPATH points; the compose file
    mounts the repository's packages into it) is the repository.
    """
    paths: dict[str, Path] = {CONTAINER_HOME: site.dir, f"{CONTAINER_HOME}/project": REPO}
    for volume in compose["x-airflow-common"]["volumes"]:
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            paths[target] = (REPO / source).resolve()
        else:
            paths[target] = site.dir / Path(target).relative_to(CONTAINER_HOME)
    return paths


def translate_paths(value: str, paths: Mapping[str, Path]) -> str:
    """A container path, or a ``:``-separated list of them, as local paths (anything else unchanged)."""
    if not value.startswith(CONTAINER_HOME + "/") and value != CONTAINER_HOME:
        return value
    local = []
    for part in value.split(":"):
        base = max((p for p in paths if part == p or part.startswith(p + "/")), key=len, default=None)
        if base is None:
            raise LauncherError(f"{COMPOSE_FILE.name}: no local path for container path {part!r}", 2)
        local.append(str(paths[base]) + part[len(base):])
    return os.pathsep.join(local)


def translate(key: str, value: str, site: Site, paths: Mapping[str, Path]) -> str:
    """The local value of one compose environment entry."""
    if key in HOST_MAPPING:
        return HOST_MAPPING[key][1](value, site)
    return translate_paths(value, paths)


#: keys the stack sets that the compose file does not, each with its reason
LOCAL_ONLY: dict[str, tuple[str, Callable[[Site], str]]] = {
    "AIRFLOW_HOME": ("the image's AIRFLOW_HOME (/opt/airflow) is the stack folder", lambda s: str(s.dir)),
    "AIRFLOW__API__HOST": ("compose publishes 8080 of the api-server container; here: loopback only",
                           lambda s: LOOPBACK),
    "AIRFLOW__API__PORT": ("a free port instead of 8080, so stacks never collide", lambda s: str(s.api_port)),
    "AIRFLOW__API__BASE_URL": ("links the UI builds point at that address", lambda s: s.api_url + "/"),
    "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST": (
        "the scheduler's health server (compose: port 8974 in its own container)", lambda s: LOOPBACK),
    "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": (
        "a free port instead of 8974", lambda s: str(s.health_port)),
    "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX": (
        "compose has a Redis per stack; here stacks share one server, so every key and channel "
        "of this stack's broker carries its prefix", lambda s: s.redis_prefix),
    "AIRFLOW__CELERY__WORKER_CONCURRENCY": (
        "every worker shares this machine (Airflow's default is 16 task processes per worker)",
        lambda s: str(s.concurrency)),
    "AWS_EC2_METADATA_DISABLED": (
        "not an EC2 instance: boto3 must never probe 169.254.169.254", lambda s: "true"),
    STACK_ID_VAR: ("marks every process of the stack, so `down` finds all of them", lambda s: s.stack_id),
}


def worker_environment(index: int) -> dict[str, str]:
    """What worker ``index`` (1-based) adds: its own hostname for the task instances it runs."""
    return {
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": HOSTNAME_CALLABLE,
        WORKER_HOSTNAME_VAR: worker_address(index),
    }


def worker_address(index: int) -> str:
    """Worker ``index``'s loopback address (its task instances' hostname): 127.0.0.2, 127.0.0.3, ..."""
    return f"127.0.0.{index + 1}"


def base_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The few variables a process keeps from the caller, with this interpreter's bin/ first on PATH."""
    environ = os.environ if environ is None else environ
    env = {key: environ[key] for key in BASE_ENV_KEYS if key in environ}
    env["PATH"] = os.pathsep.join(filter(None, [str(Path(sys.executable).parent), environ.get("PATH")]))
    return env


def stack_environment(compose: dict, site: Site, interpolation_env: Mapping[str, str] | None = None,
                      base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every Airflow component of the stack gets (workers add :func:`worker_environment`)."""
    paths = container_paths(compose, site)
    env = dict(base_environment() if base is None else base)
    for key, value in compose_environment(compose, interpolation_environment(interpolation_env)).items():
        env[key] = translate(key, value, site, paths)
    for key, (_, local_value) in LOCAL_ONLY.items():
        env[key] = local_value(site)
    return env


# --------------------------------------------------------------------------------------------
# Components: commands from the compose services
# --------------------------------------------------------------------------------------------


def _airflow_command(service: dict) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else list(command)


def airflow_components(compose: dict, site: Site, workers: int) -> list[Component]:
    """api-server, scheduler, dag-processor, triggerer and ``workers`` Celery workers, from the compose services.

    Local flags: the log servers are skipped (``--skip-serve-logs``): they bind every interface
    on fixed ports, and here every component writes to the one log folder the api-server
    reads; each worker is ``celery@<id>-worker<k>``.

    A stop sends SIGTERM where the image's dumb-init sends it: to the component's process group,
    or for a Celery worker (compose sets DUMB_INIT_SETSID=0) to the worker alone, whose warm
    shutdown then stops its pool.
    """
    airflow = [sys.executable, "-m", "airflow"]
    services = compose["services"]
    components = []
    for service, name in AIRFLOW_SERVICES.items():
        command = _airflow_command(services[service])
        if command[0] in ("scheduler", "triggerer"):
            command.append("--skip-serve-logs")
        components.append(Component(name, airflow + command, term=TERM_GROUP))
    worker_command = _airflow_command(services[WORKER_SERVICE])
    for index in range(1, workers + 1):
        name = f"worker{index}"
        argv = airflow + worker_command + ["--celery-hostname", celery_hostname(site, index), "--skip-serve-logs"]
        components.append(Component(name, argv, worker_environment(index), term=TERM_LEADER))
    return components


def celery_hostname(site: Site, index: int) -> str:
    """Worker ``index``'s Celery node name (compose: ``celery@<container hostname>``)."""
    return f"celery@{site.stack_id}-worker{index}"


def emulator_component(compose: dict, site: Site, port: int) -> Component:
    """The aws-emulator service's command (``python -m sm_pipeline serve``) on 127.0.0.1:``port``."""
    service = compose["services"][EMULATOR_SERVICE]
    compose_port = str(urllib.parse.urlsplit(_compose_emulator_endpoint(compose)).port)
    paths = {**container_paths(compose, site), f"{CONTAINER_HOME}/emulated-aws": site.dir / "emulated-aws"}
    local_words = {"python": sys.executable, "0.0.0.0": LOOPBACK, compose_port: str(port)}  # noqa: S104
    argv = [translate_paths(local_words.get(word, word), paths) for word in _airflow_command(service)]
    env = {key: translate_paths(value, paths)
           for key, value in environment_mapping(service.get("environment")).items()}
    return Component("aws-emulator", argv, env, term=TERM_GROUP)


def _compose_emulator_endpoint(compose: dict) -> str:
    raw = environment_mapping(compose["x-airflow-common"]["environment"])["AIRFLOW_CONN_AWS_DEFAULT"]
    # the default of ${AIRSAGE_AWS_CONN:-...}: the compose network's emulator
    conn = interpolate(raw, {})
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(conn).query))["endpoint_url"]


# --------------------------------------------------------------------------------------------
# PostgreSQL and Redis
# --------------------------------------------------------------------------------------------


def _describe_server(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.hostname}:{parts.port}"


def postgres_problem(url: str) -> str | None:
    """Why PostgreSQL at ``url`` does not answer, or None when it does."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as err:
        lines = str(err).strip().splitlines()
        return f"PostgreSQL at {_describe_server(url)} ({lines[-1] if lines else type(err).__name__})"
    return None


def redis_problem(url: str) -> str | None:
    """Why Redis at ``url`` does not answer, or None when it does."""
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5).ping()
    except redis.RedisError as err:
        return f"Redis at {_describe_server(url)} ({err})"
    return None


def check_services(postgres: str, redis_url: str) -> None:
    """Raise LauncherError (exit 2) naming whichever of PostgreSQL and Redis does not answer."""
    problems = [p for p in (postgres_problem(postgres), redis_problem(redis_url)) if p]
    if problems:
        raise LauncherError(" and ".join(problems) + " not reachable: start "
                         + ("them" if len(problems) > 1 else "it")
                         + " or point AIRSAGE_STACK_POSTGRES / AIRSAGE_STACK_REDIS elsewhere", 2)


def _validate_identifier(name: str) -> str:
    if not re.fullmatch(r"[a-z0-9_]+", name):
        raise LauncherError(f"invalid database name {name!r}", 2)
    return name


def create_database(server: str, name: str) -> None:
    """CREATE DATABASE ``name`` on ``server``."""
    import psycopg

    with psycopg.connect(server, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{_validate_identifier(name)}"')


def database_exists(server: str, name: str) -> bool:
    """Whether database ``name`` exists on ``server``."""
    import psycopg

    with psycopg.connect(server, autocommit=True, connect_timeout=5) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def drop_database(server: str, name: str) -> bool:
    """DROP DATABASE ``name`` (closing its leftover connections); False when it did not exist."""
    import psycopg

    if not database_exists(server, name):
        return False
    with psycopg.connect(server, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{_validate_identifier(name)}" WITH (FORCE)')
    return True


def delete_redis_keys(url: str, prefix: str) -> int:
    """Delete every key starting with ``prefix`` (the stack's broker state); returns how many."""
    import redis

    deleted = 0
    for database in range(16):  # Redis's default number of databases; the broker URL picks one
        client = redis.Redis.from_url(url, db=database, socket_connect_timeout=5, socket_timeout=10)
        try:
            keys = list(client.scan_iter(match=f"{prefix}*", count=500))
            if keys:
                deleted += client.delete(*keys)
        except redis.ResponseError:  # fewer databases configured
            break
        finally:
            client.close()
    return deleted


# --------------------------------------------------------------------------------------------
# The stack
# --------------------------------------------------------------------------------------------


class Stack:
    """One stack: its folder, state file, processes, database and broker keys."""

    STATE = "state.json"
    ENV = "stack-env.json"

    def __init__(self, site: Site, components: dict[str, Component] | None = None,
                 emulator_started: bool = False, compose_file: Path = COMPOSE_FILE):
        self.site = site
        # every process of the stack inherits AIRSAGE_STACK_ID: `down`, in another process, finds
        # the local runner's jobs by it (they start sessions of their own)
        self.supervisor = Supervisor((components or {}).values(), marker=(STACK_ID_VAR, site.stack_id),
                                     component_var=COMPONENT_VAR)
        self.emulator_started = emulator_started
        self.compose_file = compose_file

    @property
    def components(self) -> dict[str, Component]:
        """The stack's components by name (the state file's record of them)."""
        return self.supervisor.components

    # ---- files ------------------------------------------------------------------------------
    @property
    def dir(self) -> Path:
        """The stack folder (AIRFLOW_HOME)."""
        return self.site.dir

    @property
    def log_dir(self) -> Path:
        """Where every component's output and Airflow's task logs go."""
        return self.dir / "logs"

    @property
    def root(self) -> Path:
        """The local backend's object root (compose volume airsage-root)."""
        return self.dir / "airsage-root"

    def save(self) -> None:
        """Write the state file (atomically)."""
        state = {
            # the secret stays in the owner-only env file, not here
            "site": {**asdict(self.site), "dir": str(self.site.dir), "jwt_secret": ""},
            "database": self.site.database, "redis_prefix": self.site.redis_prefix,
            "api_url": self.site.api_url, "emulator_started": self.emulator_started,
            "compose_file": str(self.compose_file),
            "components": {name: asdict(c) for name, c in self.components.items()},
        }
        _write_private(self.dir / self.STATE, json.dumps(state, indent=2))

    @classmethod
    def load(cls, directory: Path) -> Stack:
        """The stack whose state file is in ``directory``."""
        path = Path(directory) / cls.STATE
        try:
            state = json.loads(path.read_text())
        except FileNotFoundError:
            raise LauncherError(f"no stack state at {path}", 2) from None
        except ValueError as err:
            raise LauncherError(f"{path}: not a stack state file ({err})", 2) from None
        site = Site(**{**state["site"], "dir": Path(state["site"]["dir"])})
        components = {name: Component(**c) for name, c in state["components"].items()}
        return cls(site, components, state.get("emulator_started", False), Path(state["compose_file"]))

    def environment(self) -> dict[str, str]:
        """The environment the stack's Airflow components were started with."""
        return json.loads((self.dir / self.ENV).read_text())

    # ---- lifecycle ---------------------------------------------------------------------------
    def password(self) -> str | None:
        """The generated password of user ``airflow`` (None until the api-server wrote it)."""
        try:
            return json.loads((self.dir / "simple_auth_manager_passwords.json").read_text()).get("airflow")
        except (OSError, ValueError):
            return None

    def api(self) -> AirflowApi:
        """A REST API client logged in as ``airflow``."""
        password = self.password()
        if password is None:
            raise LauncherError(f"no generated password yet in {self.dir}")
        return AirflowApi(self.site.api_url, "airflow", password)

    def processes(self, component: str | None = None) -> list:
        """Live processes of the stack (or of one component), each with ``.component``."""
        return self.supervisor.processes(None if component is None else [component])

    def start(self, name: str) -> Component:
        """(Re)start component ``name`` with the stack's environment."""
        component = self.components[name]
        env = self.environment() if name != "aws-emulator" else {
            **base_environment(), "AWS_EC2_METADATA_DISABLED": "true"}
        self.supervisor.start(component, env, self.log_dir / f"{name}.log")
        self.save()
        return component

    def stop(self, name: str, grace: float = 30.0) -> int:
        """Stop component ``name`` as ``docker compose stop`` does; how many of its processes were running.

        SIGTERM goes where the image's dumb-init sends it (see :func:`airflow_components`);
        whatever is left after ``grace`` s is SIGKILLed.
        """
        return self.supervisor.stop([name], grace=grace).running

    def kill(self, name: str, sig: int = signal.SIGKILL) -> int:
        """Send ``sig`` to every process of component ``name`` at once (a worker dying with its node)."""
        return self.supervisor.send(sig, [name])

    def restart(self, name: str, grace: float = 30.0) -> Component:
        """Stop component ``name`` (SIGTERM, as an orchestrator would) and start it again."""
        self.stop(name, grace)
        return self.start(name)

    def celery_app(self):
        """A Celery app on the stack's broker (for inspect/ping, as compose's health check does)."""
        from celery import Celery

        env = self.environment()
        return Celery(broker=env["AIRFLOW__CELERY__BROKER_URL"],
                      broker_transport_options={"global_keyprefix": self.site.redis_prefix})

    def worker_queues(self, timeout: float = 5.0) -> dict[str, list[str]]:
        """``{celery node name: [queue names]}`` of the workers that answer (celery inspect active_queues)."""
        app = self.celery_app()
        try:
            answer = app.control.inspect(timeout=timeout).active_queues() or {}
        finally:
            app.close()
        return {node: sorted(q["name"] for q in queues) for node, queues in answer.items()}

    def workers(self) -> dict[str, dict[str, str]]:
        """``{component: {"celery": node name, "hostname": task-instance hostname}}``."""
        return {name: {"celery": celery_hostname(self.site, int(name.removeprefix("worker"))),
                       "hostname": worker_address(int(name.removeprefix("worker")))}
                for name in self.components if name.startswith("worker")}


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, readable by the owner only (it may hold secrets)."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(tmp, path)


def _wait(what: str, ready: Callable[[], bool], stack: Stack, timeout: float, interval: float = 2.0) -> None:
    """Poll ``ready`` until true; fail early, with the log tail, when a component died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        dead = stack.supervisor.exited()
        if dead is not None:
            raise LauncherError(f"{dead.name} exited while waiting for {what}; last lines of {dead.log}:\n"
                                + "\n".join(log_tail(dead.log)))
        time.sleep(interval)
    raise LauncherError(f"timed out after {timeout:.0f} s waiting for {what} (logs: {stack.log_dir})")


def ensure_bucket(env: Mapping[str, str]) -> None:
    """Create the DAGs' bucket on a loopback (emulated) AWS endpoint, as compose's airflow-init does."""
    conn = urllib.parse.urlsplit(env["AIRFLOW_CONN_AWS_DEFAULT"])
    extra = dict(urllib.parse.parse_qsl(conn.query))
    endpoint = extra.get("endpoint_url", "")
    if urllib.parse.urlsplit(endpoint).hostname not in (LOOPBACK, "localhost"):
        return  # real AWS: buckets are created by their owners
    import boto3

    client = boto3.client(
        "s3", endpoint_url=endpoint, region_name=extra.get("region_name", "us-east-1"),
        aws_access_key_id=urllib.parse.unquote(conn.username or "testing"),
        aws_secret_access_key=urllib.parse.unquote(conn.password or "testing"),
    )
    bucket = env["AIRFLOW_VAR_AIRSAGE_BUCKET"]
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        client.create_bucket(Bucket=bucket)


def up(directory: Path, workers: int = 2, concurrency: int = 2, aws_endpoint: str | None = None,
       extra_env: Mapping[str, str] | None = None, timeout: float = 420.0,
       compose_file: Path = COMPOSE_FILE) -> Stack:
    """Start a stack in ``directory``; return it once every component is healthy and the DAGs are parsed."""
    directory = Path(directory).resolve()
    postgres = os.environ.get("AIRSAGE_STACK_POSTGRES", DEFAULT_POSTGRES)
    redis_url = os.environ.get("AIRSAGE_STACK_REDIS", DEFAULT_REDIS)
    check_services(postgres, redis_url)
    if (directory / Stack.STATE).exists():
        stack = Stack.load(directory)
        if stack.processes():  # running already: starting it again is a no-op
            say(f"already running from {directory}: {stack.site.api_url}/  (login: airflow / {stack.password()})")
            say(f"logs: {stack.log_dir}; stop it with: make stack-down")
            return stack
        say(f"cleaning up the stopped stack left in {directory}")
        down(directory)
    if workers < 1 or concurrency < 1:
        raise LauncherError("--workers and --concurrency must be at least 1", 2)
    compose = load_compose(compose_file)
    stack_id = datetime.now(UTC).strftime("%m%d%H%M") + secrets.token_hex(3)
    site = Site(dir=directory, stack_id=stack_id, postgres=postgres, redis=redis_url,
                api_port=free_port(), health_port=free_port(), concurrency=concurrency,
                jwt_secret=os.environ.get("AIRFLOW_JWT_SECRET") or secrets.token_urlsafe(32))
    directory.mkdir(parents=True, exist_ok=True)
    stack = Stack(site, compose_file=compose_file)
    (directory / "simple_auth_manager_passwords.json").unlink(missing_ok=True)  # a fresh login per stack
    (directory / "logs").mkdir(exist_ok=True)
    (directory / "airsage-root").mkdir(exist_ok=True)
    create_database(postgres, site.database)
    stack.save()  # from here on, `down` can clean up whatever follows
    try:
        _start(stack, compose, workers, aws_endpoint, extra_env or {}, timeout)
    except BaseException:
        say("start failed; stopping what was started")
        down(directory, quiet=True)
        raise
    return stack


def _start(stack: Stack, compose: dict, workers: int, aws_endpoint: str | None,
           extra_env: Mapping[str, str], timeout: float) -> None:
    site = stack.site
    if aws_endpoint:
        site.aws_endpoint = aws_endpoint.rstrip("/")
    else:
        port = free_port()
        site.aws_endpoint = f"http://{LOOPBACK}:{port}"
        emulator = emulator_component(compose, site, port)
        stack.components[emulator.name] = emulator
        stack.emulator_started = True
        stack.start(emulator.name)
    env = {**stack_environment(compose, site), **extra_env}
    _write_private(stack.dir / Stack.ENV, json.dumps(env, indent=2, sort_keys=True))
    say(f"stack {site.stack_id} in {stack.dir}")
    say(f"logs: {stack.log_dir}")
    if stack.emulator_started:
        _wait("the emulated AWS", lambda: emulator_answers(site.aws_endpoint), stack, 120, 0.5)
    say(f"emulated AWS: {site.aws_endpoint}")
    ensure_bucket(env)
    say(f"migrating database {site.database} ...")
    migrate(env, stack.log_dir / "db-migrate.log", timeout=timeout)
    for component in airflow_components(compose, site, workers):
        stack.components[component.name] = component
        stack.start(component.name)
    say("starting " + ", ".join(c for c in stack.components if c != "aws-emulator") + " ...")
    deadline = time.monotonic() + timeout

    _wait("the api-server, scheduler, triggerer and dag-processor to report healthy",
          lambda: components_healthy(site.api_url), stack, deadline - time.monotonic())
    expected = {w["celery"] for w in stack.workers().values()}
    queue = env.get("AIRFLOW__OPERATORS__DEFAULT_QUEUE", "default")

    def workers_ready() -> bool:
        answering = stack.worker_queues()
        return all(queue in answering.get(node, []) for node in expected)

    _wait(f"{len(expected)} Celery worker(s) to consume queue {queue!r}", workers_ready, stack,
          deadline - time.monotonic())
    api = stack.api()

    parsed: dict = {}

    def dags_parsed() -> bool:
        parsed["dags"] = api.parsed_dags()
        return parsed["dags"] is not None

    _wait("the dag-processor to parse the DAGs", dags_parsed, stack, deadline - time.monotonic())
    dags, errors = parsed["dags"]
    say(f"DAGs: {', '.join(dags) or 'none'} (paused at creation, as in compose)")
    for error in errors:
        say(f"import error in {error.get('filename')}: {str(error.get('stack_trace')).strip().splitlines()[-1]}")
    say(f"workers: {', '.join(sorted(expected))} on queue {queue!r}")
    say(f"ready: {site.api_url}/  (login: airflow / {stack.password()})")
    say(f"stop it with: make stack-down   (state: {stack.dir / Stack.STATE})")


def down(directory: Path, quiet: bool = False) -> dict:
    """Stop every process of the stack in ``directory``, drop its database and broker keys."""
    directory = Path(directory).resolve()
    if not (directory / Stack.STATE).exists():
        if not quiet:
            say(f"nothing to stop (no stack state in {directory})")
        return {"stopped": 0, "database_dropped": False}
    stack = Stack.load(directory)
    site = stack.site
    # the groups alive now (components' and task processes'): none may keep a member
    groups = process_groups(stack.processes())
    report = stack.supervisor.stop(grace=15.0, kill_wait=5.0)
    left = report.left + [describe(p) for p in processes_in_groups(groups)]
    if left:
        raise LauncherError(f"{len(left)} process(es) of stack {site.stack_id} survived SIGKILL: " + ", ".join(left))
    dropped = drop_database(site.postgres, site.database)
    keys = delete_redis_keys(site.redis, site.redis_prefix)
    if database_exists(site.postgres, site.database):
        raise LauncherError(f"database {site.database} still exists after DROP DATABASE")
    (directory / Stack.STATE).unlink()
    (directory / Stack.ENV).unlink(missing_ok=True)
    if not quiet:
        say(f"stopped stack {site.stack_id}: {report.running} process(es), no process left; "
            f"database {site.database} {'dropped' if dropped else 'was already gone'}; "
            f"{keys} Redis key(s) removed; logs kept in {stack.log_dir}")
    return {"stopped": report.running, "database_dropped": dropped, "redis_keys": keys}


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(prog="python -m launchers.stack", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="start the stack and wait until it is healthy")
    p_up.add_argument("--dir", type=Path, default=DEFAULT_DIR, help=f"stack folder (default {DEFAULT_DIR})")
    p_up.add_argument("--workers", type=int, default=2, help="Celery workers (default 2)")
    p_up.add_argument("--concurrency", type=int, default=2, help="task processes per worker (default 2)")
    p_up.add_argument("--aws-endpoint", help="use this emulated/real AWS endpoint instead of starting "
                                            "the compose file's aws-emulator")
    p_up.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                      help="extra Airflow setting for every component (e.g. a scheduler timeout)")
    p_up.add_argument("--timeout", type=float, default=420.0, help="seconds to wait for health (default 420)")
    p_down = sub.add_parser("down", help="stop every process of the stack and drop its database")
    p_down.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            extra = {}
            for item in args.env:
                key, sep, value = item.partition("=")
                if not sep or not key:
                    raise LauncherError(f"--env expects KEY=VALUE, got {item!r}", 2)
                extra[key] = value
            up(args.dir, workers=args.workers, concurrency=args.concurrency, aws_endpoint=args.aws_endpoint,
               extra_env=extra, timeout=args.timeout)
        else:
            down(args.dir)
    except LauncherError as err:
        print(f"airsage stack: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
