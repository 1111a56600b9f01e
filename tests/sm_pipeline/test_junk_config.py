"""Generated junk thrown at the config loader (overrides, environment, file): a ConfigError of one line
or a valid config — never another exception.

Deterministic (``derandomize=True``) and bounded: the example counts are the ``max_examples`` below.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sm_pipeline.abalone.config import FIELDS, PipelineConfig, env_var_name, load_config
from sm_pipeline.errors import ConfigError

JUNK = settings(max_examples=300, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

NAMES = st.one_of(st.sampled_from(sorted(FIELDS)), st.text(max_size=8))
VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(min_value=-(10**20), max_value=10**20),
              st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
              st.sampled_from(["us-east-1", "xx-nowhere-1", "us-east-1\n", "ml.m5.xlarge", "s3://b-1/k", "P30D",
                               "arn:aws:iam::000000000000:role/R", "1.2-1", "9.9-9", "subnet-0123456789abcdef0"])),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=8)


def _clean(outcome) -> None:
    if isinstance(outcome, ConfigError):
        assert str(outcome) and "\n" not in str(outcome)
    else:
        assert isinstance(outcome, PipelineConfig)


def _load(**kwargs):
    try:
        return load_config(**kwargs)
    except ConfigError as exc:
        return exc


@JUNK
@given(overrides=st.dictionaries(NAMES, VALUES, max_size=4))
def test_overrides(overrides):
    _clean(_load(overrides=overrides, env={}))


@JUNK
@given(env=st.dictionaries(st.sampled_from(sorted(FIELDS)).map(env_var_name),
                           st.text(alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"),
                                   max_size=12), max_size=4))
def test_environment(env):
    _clean(_load(env=env))


@JUNK
@given(content=st.one_of(st.binary(max_size=64), VALUES.map(lambda v: __import__("json").dumps(v).encode()),
                         st.dictionaries(NAMES, VALUES, max_size=4).map(lambda d: __import__("json").dumps(d).encode())))
def test_config_file(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("cfg") / "config.json"
    path.write_bytes(content)
    _clean(_load(path=path, env={}))
