"""Typed, validated configuration of the abalone pipeline definition.

Precedence, lowest first: built-in defaults, a JSON file, ``AIRSAGE_*`` environment variables,
explicit overrides (the Airflow operators pass DAG params here). Every problem raises
:class:`~sm_pipeline.errors.ConfigError` naming the field and what is wrong with it.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sm_pipeline.errors import ConfigError
from sm_pipeline.json_limits import JsonLimitError
from sm_pipeline.json_limits import loads as json_loads

ENV_PREFIX = "AIRSAGE_"
REPO_CODE_DIR = Path(__file__).resolve().parents[2] / "processing_code"


@dataclass(frozen=True)
class PipelineConfig:
    """Everything the definition builder needs; defaults build a usable definition offline."""

    role_arn: str = "arn:aws:iam::000000000000:role/AirsageSageMakerExecution"
    region: str = "us-east-1"
    bucket: str = "airsage-artifacts"
    prefix: str = "abalone"
    pipeline_name: str = "airsage-abalone"
    model_package_group: str = "airsage-abalone"
    processing_instance_type: str = "ml.m5.xlarge"
    training_instance_type: str = "ml.m5.xlarge"
    transform_instance_type: str = "ml.m5.xlarge"
    transform_instance_count: int = 1
    sklearn_version: str = "1.2-1"
    xgboost_version: str = "1.7-1"
    mse_threshold: float = 6.0
    # None: the parameter defaults point at the canonical S3 layout (see docs/CONTRACTS.md).
    input_data_uri: str | None = None
    batch_data_uri: str | None = None
    subnets: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    enable_network_isolation: bool = False
    kms_key_id: str | None = None
    tags: Mapping[str, str] = field(default_factory=lambda: {"cost-center": "ml-abalone"})
    cost_tag_key: str = "cost-center"
    experiment_enabled: bool = True
    # None: the experiment is named after the pipeline (Execution.PipelineName) at run time.
    experiment_name: str | None = None
    telemetry: bool = False
    cache_enabled: bool = True
    cache_expire_after: str = "P30D"
    retry_max_attempts: int = 3
    retry_interval_seconds: int = 10
    retry_backoff_rate: float = 2.0
    # None: the repository's processing_code/ directory.
    code_dir: str | None = None

    def __post_init__(self) -> None:
        # Types first, so a wrong one gets a type message naming the field before the coercion
        # below could hide it (tuple("subnet-…") would split a string into characters).
        for name in FIELDS:
            _check_type(name, getattr(self, name))
        # Lists and dicts from JSON become tuples and a plain dict, so equal configs compare equal
        # and the definition never depends on the caller's container types.
        object.__setattr__(self, "subnets", tuple(self.subnets))
        object.__setattr__(self, "security_group_ids", tuple(self.security_group_ids))
        object.__setattr__(self, "tags", dict(self.tags))
        _validate(self)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict that :func:`load_config` would read back to an equal config."""
        out = dataclasses.asdict(self)
        out["subnets"] = list(self.subnets)
        out["security_group_ids"] = list(self.security_group_ids)
        out["tags"] = dict(self.tags)
        return out

    @property
    def s3_root(self) -> str:
        """``s3://{bucket}/{prefix}``, the root of every object this pipeline reads or writes."""
        return f"s3://{self.bucket}/{self.prefix}"

    @property
    def resolved_code_dir(self) -> Path:
        """The directory holding the container scripts."""
        return Path(self.code_dir) if self.code_dir else REPO_CODE_DIR

    @property
    def default_input_data_uri(self) -> str:
        """Default of the InputData parameter."""
        return self.input_data_uri or f"{self.s3_root}/input/abalone.csv"

    @property
    def default_batch_data_uri(self) -> str:
        """Default of the BatchData parameter."""
        return self.batch_data_uri or f"{self.s3_root}/batch/batch.csv"


FIELDS: dict[str, dataclasses.Field] = {f.name: f for f in dataclasses.fields(PipelineConfig)}

# Expected kinds, checked before the value checks so a wrong type gets a type message.
_STR, _OPT_STR, _BOOL, _INT, _FLOAT, _STR_LIST, _STR_MAP = (
    "a string", "a string or null", "a boolean", "an integer", "a number", "a list of strings",
    "an object of string keys and values",
)
_KINDS = {
    "transform_instance_count": _INT,
    "mse_threshold": _FLOAT,
    "input_data_uri": _OPT_STR,
    "batch_data_uri": _OPT_STR,
    "subnets": _STR_LIST,
    "security_group_ids": _STR_LIST,
    "enable_network_isolation": _BOOL,
    "kms_key_id": _OPT_STR,
    "tags": _STR_MAP,
    "experiment_enabled": _BOOL,
    "experiment_name": _OPT_STR,
    "telemetry": _BOOL,
    "cache_enabled": _BOOL,
    "retry_max_attempts": _INT,
    "retry_interval_seconds": _INT,
    "retry_backoff_rate": _FLOAT,
    "code_dir": _OPT_STR,
}


def _kind(name: str) -> str:
    return _KINDS.get(name, _STR)


def _check_type(name: str, value: Any) -> None:
    kind = _kind(name)
    ok = {
        _STR: lambda v: isinstance(v, str),
        _OPT_STR: lambda v: v is None or isinstance(v, str),
        _BOOL: lambda v: isinstance(v, bool),
        # bool is an int subclass; True as an instance count is a mistake, not a 1.
        _INT: lambda v: isinstance(v, int) and not isinstance(v, bool),
        _FLOAT: lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        _STR_LIST: lambda v: isinstance(v, list | tuple) and all(isinstance(i, str) for i in v),
        _STR_MAP: lambda v: isinstance(v, Mapping)
        and all(isinstance(k, str) and isinstance(i, str) for k, i in v.items()),
    }[kind](value)
    if not ok:
        raise ConfigError(f"config field {name!r}: expected {kind}, got {type(value).__name__} {value!r}")


_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_PREFIX_CHARS = re.compile(r"^[A-Za-z0-9!_.*'()/-]+$")
_PIPELINE_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}$")
_GROUP_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_INSTANCE_TYPE = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
_FRAMEWORK_VERSION = re.compile(r"^\d+\.\d+-\d+$")
_SUBNET = re.compile(r"^subnet-([0-9a-f]{8}|[0-9a-f]{17})$")
_SECURITY_GROUP = re.compile(r"^sg-([0-9a-f]{8}|[0-9a-f]{17})$")
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_KMS_KEY = re.compile(
    rf"^({_UUID}|mrk-[0-9a-f]{{32}}|alias/[A-Za-z0-9/_-]{{1,250}}"
    rf"|arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{{12}}:(key/({_UUID}|mrk-[0-9a-f]{{32}})|alias/[A-Za-z0-9/_-]{{1,250}}))$"
)
# AWS tags: letters, digits, separators (spaces, not line breaks) and _ . : / = + - @
_TAG_CHARS = re.compile(r"^[\w .:/=+\-@]*$", re.UNICODE)
_EXPERIMENT_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,119}$")


def _check_expire_after(value: Any) -> None:
    """The same duration forms a definition's CacheConfig accepts (one parser: sm_pipeline.cache_config)."""
    from sm_pipeline.cache_config import DURATION_EXAMPLES, parse_expire_after
    from sm_pipeline.errors import DefinitionError

    try:
        parse_expire_after(value)
    except DefinitionError:
        raise _fail("cache_expire_after", value, f"expected a caching duration ({DURATION_EXAMPLES})") from None


def _fail(name: str, value: Any, problem: str) -> ConfigError:
    return ConfigError(f"config field {name!r}: {problem} (got {value!r})")


def _check_bucket(value: str) -> None:
    if not _BUCKET.fullmatch(value):
        raise _fail("bucket", value, "S3 bucket names are 3-63 characters of a-z, 0-9, '.' and '-', "
                    "starting and ending with a letter or digit")
    if ".." in value or ".-" in value or "-." in value:
        raise _fail("bucket", value, "S3 bucket names must not contain '..', '.-' or '-.'")
    if _IPV4.fullmatch(value):
        raise _fail("bucket", value, "S3 bucket names must not look like an IP address")
    if value.startswith(("xn--", "sthree-")) or value.endswith(("-s3alias", "--ol-s3")):
        raise _fail("bucket", value, "S3 reserves this bucket name prefix/suffix")


def _check_prefix(value: str) -> None:
    if not value:
        raise _fail("prefix", value, "must not be empty")
    if value.startswith("/") or value.endswith("/"):
        raise _fail("prefix", value, "must not start or end with '/'")
    parts = value.split("/")
    if "" in parts:
        raise _fail("prefix", value, "must not contain '//'")
    if any(p in (".", "..") for p in parts):
        raise _fail("prefix", value, "must not contain '.' or '..' path segments")
    if not _PREFIX_CHARS.fullmatch(value) or len(value) > 512:
        raise _fail("prefix", value, "only A-Z a-z 0-9 ! _ . * ' ( ) - / allowed, at most 512 characters")


def _check_s3_uri(name: str, value: str | None) -> None:
    if value is None:
        return
    m = re.fullmatch(r"^s3://([^/]+)/(.+)$", value)
    if not m or re.search(r"[\x00-\x1f\x7f]", value):
        raise _fail(name, value, "must be an S3 URI s3://bucket/key")


def _check_tags(cfg: PipelineConfig) -> None:
    if len(cfg.tags) > 50:
        raise _fail("tags", len(cfg.tags), "at most 50 tags")
    for key, value in cfg.tags.items():
        if not 1 <= len(key) <= 128:
            raise _fail("tags", key, "tag keys are 1-128 characters")
        if len(value) > 256:
            raise _fail("tags", f"{key}={value[:20]}...", "tag values are at most 256 characters")
        if key.lower().startswith("aws:"):
            raise _fail("tags", key, "tag keys must not start with the reserved 'aws:'")
        if not _TAG_CHARS.fullmatch(key) or not _TAG_CHARS.fullmatch(value):
            raise _fail("tags", f"{key}={value}", "tags allow letters, digits, spaces and _ . : / = + - @")
    if not cfg.cost_tag_key:
        raise _fail("cost_tag_key", cfg.cost_tag_key, "must not be empty")
    if cfg.cost_tag_key not in cfg.tags or not cfg.tags[cfg.cost_tag_key]:
        raise _fail("tags", cfg.tags, f"must hold a non-empty cost tag {cfg.cost_tag_key!r} (see cost_tag_key)")


def _validate(cfg: PipelineConfig) -> None:
    """Value checks; types were checked by ``PipelineConfig.__post_init__``."""
    if not _ROLE_ARN.fullmatch(cfg.role_arn):
        raise _fail("role_arn", cfg.role_arn, "expected an IAM role ARN arn:aws:iam::<12-digit account>:role/<name>")
    if not _REGION.fullmatch(cfg.region):
        raise _fail("region", cfg.region, "expected an AWS region such as us-east-1")
    known = known_regions()
    if known and cfg.region not in known:
        close = difflib.get_close_matches(cfg.region, sorted(known), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise _fail("region", cfg.region, f"not an AWS region botocore knows (offline list of its partitions){hint}")
    _check_images(cfg)
    _check_bucket(cfg.bucket)
    _check_prefix(cfg.prefix)
    if not _PIPELINE_NAME.fullmatch(cfg.pipeline_name):
        raise _fail("pipeline_name", cfg.pipeline_name, "1-256 letters, digits and single hyphens")
    if not _GROUP_NAME.fullmatch(cfg.model_package_group):
        raise _fail("model_package_group", cfg.model_package_group, "1-63 letters, digits and single hyphens")
    for name in ("processing_instance_type", "training_instance_type", "transform_instance_type"):
        if not _INSTANCE_TYPE.fullmatch(getattr(cfg, name)):
            raise _fail(name, getattr(cfg, name), "SageMaker instance types look like ml.m5.xlarge")
    if not 1 <= cfg.transform_instance_count <= 100:
        raise _fail("transform_instance_count", cfg.transform_instance_count, "must be 1-100")
    for name in ("sklearn_version", "xgboost_version"):
        if not _FRAMEWORK_VERSION.fullmatch(getattr(cfg, name)):
            raise _fail(name, getattr(cfg, name), "framework image versions look like 1.2-1")
    if not math.isfinite(cfg.mse_threshold) or cfg.mse_threshold <= 0:
        raise _fail("mse_threshold", cfg.mse_threshold, "must be a positive finite number")
    _check_s3_uri("input_data_uri", cfg.input_data_uri)
    _check_s3_uri("batch_data_uri", cfg.batch_data_uri)
    for subnet in cfg.subnets:
        if not _SUBNET.fullmatch(subnet):
            raise _fail("subnets", subnet, "subnet ids look like subnet-0123456789abcdef0")
    for sg in cfg.security_group_ids:
        if not _SECURITY_GROUP.fullmatch(sg):
            raise _fail("security_group_ids", sg, "security group ids look like sg-0123456789abcdef0")
    if bool(cfg.subnets) != bool(cfg.security_group_ids):
        raise _fail("subnets", list(cfg.subnets), "a VPC config needs both subnets and security_group_ids")
    if len(cfg.subnets) > 16 or len(cfg.security_group_ids) > 5:
        raise _fail("subnets", list(cfg.subnets), "at most 16 subnets and 5 security groups")
    if cfg.kms_key_id is not None and not _KMS_KEY.fullmatch(cfg.kms_key_id):
        raise _fail("kms_key_id", cfg.kms_key_id, "expected a KMS key id, key ARN, alias/<name> or alias ARN")
    _check_tags(cfg)
    if cfg.experiment_name is not None and not _EXPERIMENT_NAME.fullmatch(cfg.experiment_name):
        raise _fail("experiment_name", cfg.experiment_name, "1-120 letters, digits and single hyphens")
    _check_expire_after(cfg.cache_expire_after)
    if not 1 <= cfg.retry_max_attempts <= 20:
        raise _fail("retry_max_attempts", cfg.retry_max_attempts, "must be 1-20")
    if not 1 <= cfg.retry_interval_seconds <= 3600:
        raise _fail("retry_interval_seconds", cfg.retry_interval_seconds, "must be 1-3600")
    if not 1.0 <= cfg.retry_backoff_rate <= 10.0:
        raise _fail("retry_backoff_rate", cfg.retry_backoff_rate, "must be 1.0-10.0")


@functools.lru_cache(maxsize=1)
def known_regions() -> frozenset[str]:
    """Every region of every AWS partition in the installed botocore's endpoint data (read offline, no network)."""
    try:
        import botocore.loaders

        endpoints = botocore.loaders.create_loader().load_data("endpoints")
    except Exception:  # noqa: BLE001 - without botocore's data the format check above is all we can do
        return frozenset()
    return frozenset(region for partition in endpoints.get("partitions", []) for region in partition.get("regions", {}))


@functools.lru_cache(maxsize=4)
def image_registries(framework: str) -> dict[str, frozenset[str]]:
    """``{version: regions}`` of the SDK's bundled training-image table for ``framework`` (read as JSON, offline).

    Empty when the SDK's table cannot be found (then only the format checks apply).
    """
    import importlib.util

    try:
        spec = importlib.util.find_spec("sagemaker")
        locations = list(spec.submodule_search_locations or []) if spec else []
    except (ImportError, ValueError):
        return {}
    for location in locations:
        table = Path(location) / "core" / "image_uri_config" / f"{framework}.json"
        try:
            versions = json.loads(table.read_text(encoding="utf-8"))["training"]["versions"]
            return {version: frozenset(entry.get("registries") or {}) for version, entry in versions.items()
                    if isinstance(entry, dict)}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
    return {}


def _check_images(cfg: PipelineConfig) -> None:
    """The SDK has a training image for each framework version in the region: else it fails with a traceback."""
    for name, framework in (("sklearn_version", "sklearn"), ("xgboost_version", "xgboost")):
        registries = image_registries(framework)
        version = getattr(cfg, name)
        if not registries:
            continue
        if version not in registries:
            raise _fail(name, version, f"the SageMaker SDK has no {framework} image of this version "
                                       f"(known: {', '.join(sorted(registries))})")
        if cfg.region not in registries[version]:
            raise _fail("region", cfg.region, f"the SageMaker SDK has no {framework} {version} image in this region")


def _unknown_field(name: str, source: str) -> ConfigError:
    close = difflib.get_close_matches(name, FIELDS, n=1) if isinstance(name, str) and len(name) < 200 else []
    hint = f"; did you mean {close[0]!r}?" if close else f"; known fields: {', '.join(sorted(FIELDS))}"
    return ConfigError(f"unknown config field {name!r} in {source}{hint}")


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {str(path)!r}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except FileNotFoundError:
        raise ConfigError(f"config file {str(path)!r}: not found") from None
    except OSError as exc:
        raise ConfigError(f"config file {str(path)!r}: cannot read ({exc.strerror})") from None
    try:
        data = json_loads(text)
    except JsonLimitError as exc:
        raise ConfigError(f"config file {str(path)!r}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {str(path)!r}: expected a JSON object, got {type(data).__name__}")
    return data


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _parse_env(name: str, var: str, raw: str) -> Any:
    """Environment values are strings; turn one into the field's kind."""
    kind = _kind(name)
    try:
        if kind == _BOOL:
            low = raw.strip().lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise ValueError("expected on/off, true/false, 1/0")
        if kind == _INT:
            return int(raw)
        if kind == _FLOAT:
            return float(raw)
        if kind == _STR_LIST:
            return [item.strip() for item in raw.split(",") if item.strip()]
        if kind == _STR_MAP:
            if raw.lstrip().startswith("{"):
                return json_loads(raw)
            pairs = [item for item in raw.split(",") if item.strip()]
            if not all("=" in p for p in pairs):
                raise ValueError("expected a JSON object or key=value,key=value")
            return {k.strip(): v.strip() for k, v in (p.split("=", 1) for p in pairs)}
        if kind == _OPT_STR and raw == "":
            return None
        return raw
    except ValueError as exc:  # JsonLimitError is one
        raise ConfigError(f"environment variable {var}={raw!r} (config field {name!r}): {exc}") from None


def env_var_name(field_name: str) -> str:
    """The environment variable that overrides ``field_name``, e.g. AIRSAGE_BUCKET."""
    return ENV_PREFIX + field_name.upper()


def load_config(
    path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> PipelineConfig:
    """Build a validated config from defaults, then ``path`` (JSON), then AIRSAGE_* env, then ``overrides``.

    Unknown AIRSAGE_* variables are ignored (other parts of airsage use the prefix too); unknown
    keys in the file or in ``overrides`` are errors, with the closest field name suggested.
    """
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    if path is not None:
        source = f"config file {str(path)!r}"
        for key, value in _read_file(Path(path)).items():
            if key not in FIELDS:
                raise _unknown_field(key, source)
            values[key] = value
    for name in FIELDS:
        var = env_var_name(name)
        if var in env:
            values[name] = _parse_env(name, var, env[var])
    for key, value in (overrides or {}).items():
        if key not in FIELDS:
            raise _unknown_field(key, "overrides")
        values[key] = value
    return PipelineConfig(**values)
