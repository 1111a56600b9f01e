"""PipelineConfig / load_config: precedence, round trip, and one test per validation rule."""

from __future__ import annotations

import json

import pytest

from sm_pipeline.abalone.config import PipelineConfig, env_var_name, load_config
from sm_pipeline.errors import ConfigError, InvalidInput


def test_defaults_need_no_file_and_no_env():
    config = load_config(env={})
    assert config == PipelineConfig()
    assert config.bucket == "airsage-artifacts" and config.prefix == "abalone"
    assert config.tags == {"cost-center": "ml-abalone"} and config.telemetry is False


def test_precedence_file_then_env_then_overrides(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"bucket": "from-file", "prefix": "file/prefix", "mse_threshold": 5}))
    env = {"AIRSAGE_BUCKET": "from-env", "AIRSAGE_UNRELATED_SETTING": "ignored"}
    config = load_config(path, env=env, overrides={"mse_threshold": 4.5})
    assert (config.bucket, config.prefix, config.mse_threshold) == ("from-env", "file/prefix", 4.5)


def test_env_values_are_parsed_to_field_types():
    env = {
        "AIRSAGE_TELEMETRY": "on",
        "AIRSAGE_SUBNETS": "subnet-1234abcd, subnet-0123456789abcdef0",
        "AIRSAGE_SECURITY_GROUP_IDS": "sg-1234abcd",
        "AIRSAGE_TAGS": "cost-center=ml,team=platform",
        "AIRSAGE_RETRY_MAX_ATTEMPTS": "5",
        "AIRSAGE_KMS_KEY_ID": "",
    }
    config = load_config(env=env)
    assert config.telemetry is True
    assert config.subnets == ("subnet-1234abcd", "subnet-0123456789abcdef0")
    assert config.tags == {"cost-center": "ml", "team": "platform"}
    assert config.retry_max_attempts == 5 and config.kms_key_id is None
    assert env_var_name("role_arn") == "AIRSAGE_ROLE_ARN"


def test_env_telemetry_off_overrides_file(tmp_path):
    path = tmp_path / "c.json"
    path.write_text('{"telemetry": true}')
    assert load_config(path, env={"AIRSAGE_TELEMETRY": "off"}).telemetry is False


def test_bad_env_boolean_names_variable_and_field():
    with pytest.raises(ConfigError, match=r"AIRSAGE_TELEMETRY='maybe'.*'telemetry'"):
        load_config(env={"AIRSAGE_TELEMETRY": "maybe"})


def test_to_dict_round_trips_through_a_file(tmp_path):
    config = load_config("config/example.json", env={})
    path = tmp_path / "again.json"
    path.write_text(json.dumps(config.to_dict()))
    assert load_config(path, env={}) == config


def test_example_config_is_valid():
    config = load_config("config/example.json", env={})
    assert config.subnets and config.kms_key_id and config.enable_network_isolation


def test_config_error_is_invalid_input():
    assert issubclass(ConfigError, InvalidInput)


def test_unknown_field_suggests_closest(tmp_path):
    path = tmp_path / "c.json"
    path.write_text('{"bukcet": "x"}')
    with pytest.raises(ConfigError, match=r"unknown config field 'bukcet'.*did you mean 'bucket'"):
        load_config(path, env={})


def test_unknown_override_is_an_error():
    with pytest.raises(ConfigError, match=r"unknown config field 'role' in overrides; did you mean 'role_arn'"):
        load_config(env={}, overrides={"role": "x"})


def test_missing_file():
    with pytest.raises(ConfigError, match=r"nope.json'?: not found"):
        load_config("nope.json", env={})


def test_bad_json_reports_line_and_column(tmp_path):
    path = tmp_path / "c.json"
    path.write_text('{\n  "bucket": "x",\n  "prefix": oops\n}')
    with pytest.raises(ConfigError, match=r"invalid JSON at line 3 column 13"):
        load_config(path, env={})


def test_file_must_hold_an_object(tmp_path):
    path = tmp_path / "c.json"
    path.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="expected a JSON object, got list"):
        load_config(path, env={})


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("mse_threshold", "6", r"'mse_threshold': expected a number, got str"),
        ("telemetry", 1, r"'telemetry': expected a boolean, got int"),
        ("retry_max_attempts", 2.5, r"'retry_max_attempts': expected an integer"),
        ("subnets", "subnet-1234abcd", r"'subnets': expected a list of strings"),
        ("tags", {"cost-center": 1}, r"'tags': expected an object of string keys and values"),
        ("bucket", None, r"'bucket': expected a string, got NoneType"),
    ],
)
def test_wrong_type(field, value, message):
    with pytest.raises(ConfigError, match=message):
        load_config(env={}, overrides={field: value})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"role_arn": "arn:aws:iam::123:role/x"}, r"'role_arn': expected an IAM role ARN"),
        ({"role_arn": "arn:aws:iam::123456789012:user/x"}, r"'role_arn'"),
        ({"region": "US-EAST-1"}, r"'region': expected an AWS region"),
        ({"bucket": "ab"}, r"'bucket': S3 bucket names are 3-63"),
        ({"bucket": "My_Bucket"}, r"'bucket'"),
        ({"bucket": "a..b"}, r"'bucket': .*'\.\.'"),
        ({"bucket": "192.168.1.10"}, r"'bucket': .*IP address"),
        ({"bucket": "xn--bucket"}, r"'bucket': S3 reserves"),
        ({"prefix": "/abalone"}, r"'prefix': must not start or end with '/'"),
        ({"prefix": "abalone/"}, r"'prefix': must not start or end with '/'"),
        ({"prefix": "a/../b"}, r"'prefix': must not contain '\.' or '\.\.'"),
        ({"prefix": "a//b"}, r"'prefix': must not contain '//'"),
        ({"prefix": ""}, r"'prefix': must not be empty"),
        ({"pipeline_name": "bad_name"}, r"'pipeline_name'"),
        ({"model_package_group": "g" * 64}, r"'model_package_group'"),
        ({"processing_instance_type": "m5.xlarge"}, r"'processing_instance_type': .*ml\.m5\.xlarge"),
        ({"training_instance_type": "ml.m5"}, r"'training_instance_type'"),
        ({"transform_instance_type": "ml.M5.large"}, r"'transform_instance_type'"),
        ({"transform_instance_count": 0}, r"'transform_instance_count': must be 1-100"),
        ({"xgboost_version": "1.7"}, r"'xgboost_version': .*1\.2-1"),
        ({"mse_threshold": 0}, r"'mse_threshold': must be a positive finite number"),
        ({"mse_threshold": float("nan")}, r"'mse_threshold'"),
        ({"input_data_uri": "/local/file.csv"}, r"'input_data_uri': must be an S3 URI"),
        ({"subnets": ["subnet-xyz"], "security_group_ids": ["sg-1234abcd"]}, r"'subnets': subnet ids look like"),
        ({"subnets": ["subnet-1234abcd"], "security_group_ids": ["group-1"]}, r"'security_group_ids'"),
        ({"subnets": ["subnet-1234abcd"]}, r"needs both subnets and security_group_ids"),
        ({"kms_key_id": "not-a-key"}, r"'kms_key_id': expected a KMS key id"),
        ({"kms_key_id": "arn:aws:kms:us-east-1:123:key/x"}, r"'kms_key_id'"),
        ({"tags": {}}, r"'tags': must hold a non-empty cost tag 'cost-center'"),
        ({"tags": {"cost-center": ""}}, r"non-empty cost tag"),
        ({"tags": {"cost-center": "x", "k" * 129: "v"}}, r"'tags': tag keys are 1-128"),
        ({"tags": {"cost-center": "v" * 257}}, r"'tags': tag values are at most 256"),
        ({"tags": {"cost-center": "x", "aws:owner": "me"}}, r"reserved 'aws:'"),
        ({"tags": {"cost-center": "x", "bad": "semi;colon"}}, r"'tags': tags allow"),
        ({"tags": {"team": "x"}, "cost_tag_key": "owner"}, r"cost tag 'owner'"),
        ({"experiment_name": "has space"}, r"'experiment_name'"),
        ({"cache_expire_after": "30 days"}, r"'cache_expire_after': expected a caching duration"),
        ({"retry_max_attempts": 0}, r"'retry_max_attempts': must be 1-20"),
        ({"retry_interval_seconds": 0}, r"'retry_interval_seconds'"),
        ({"retry_backoff_rate": 0.5}, r"'retry_backoff_rate'"),
    ],
)
def test_invalid_values_name_field_and_problem(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(env={}, overrides=overrides)


@pytest.mark.parametrize(
    "overrides",
    [
        {"kms_key_id": "1234abcd-12ab-34cd-56ef-1234567890ab"},
        {"kms_key_id": "alias/airsage"},
        {"kms_key_id": "arn:aws:kms:us-east-1:123456789012:alias/airsage"},
        {"role_arn": "arn:aws-us-gov:iam::123456789012:role/service-role/Sm"},
        {"region": "us-gov-west-1"},
        {"cache_expire_after": "PT12H"},
        {"bucket": "my.bucket-1"},
    ],
)
def test_valid_edge_values_accepted(overrides):
    load_config(env={}, overrides=overrides)


def test_direct_construction_is_validated_too():
    with pytest.raises(ConfigError, match="'bucket'"):
        PipelineConfig(bucket="UPPER")


def test_direct_construction_checks_types_before_coercing():
    # A string would otherwise become a tuple of characters, a list of pairs a dict.
    with pytest.raises(ConfigError, match=r"'subnets': expected a list of strings, got str"):
        PipelineConfig(subnets="subnet-1234abcd", security_group_ids=["sg-1234abcd"])
    with pytest.raises(ConfigError, match=r"'tags': expected an object of string keys and values, got list"):
        PipelineConfig(tags=[("cost-center", "ml-abalone")])
