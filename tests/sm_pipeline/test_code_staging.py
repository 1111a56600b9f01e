"""Content-addressed code staging: digests, URIs, order, and a missing script."""

from __future__ import annotations

import hashlib

import pytest

from sm_pipeline.abalone.code_staging import SCRIPTS, code_objects
from sm_pipeline.abalone.config import load_config
from sm_pipeline.errors import ConfigError


@pytest.fixture
def code_dir(tmp_path):
    (tmp_path / "preprocess.py").write_bytes(b"print('preprocess')\n")
    (tmp_path / "evaluate.py").write_bytes(b"print('evaluate')\n")
    return tmp_path


def test_uris_are_content_addressed(code_dir):
    config = load_config(env={}, overrides={"code_dir": str(code_dir), "prefix": "team/abalone"})
    objects = code_objects(config)
    assert [o.script for o in objects] == list(SCRIPTS) == ["preprocess.py", "evaluate.py"]
    for obj in objects:
        digest = hashlib.sha256((code_dir / obj.script).read_bytes()).hexdigest()
        assert obj.sha256 == digest
        assert obj.s3_uri == f"s3://airsage-artifacts/team/abalone/code/{digest[:16]}/{obj.script}"
        assert obj.local_path == code_dir / obj.script


def test_same_bytes_same_uri_changed_bytes_new_uri(code_dir):
    config = load_config(env={}, overrides={"code_dir": str(code_dir)})
    before = code_objects(config)
    assert code_objects(config) == before
    (code_dir / "evaluate.py").write_bytes(b"print('evaluate v2')\n")
    after = code_objects(config)
    assert after[0] == before[0]
    assert after[1].s3_uri != before[1].s3_uri


def test_missing_script_names_the_path(tmp_path):
    config = load_config(env={}, overrides={"code_dir": str(tmp_path)})
    with pytest.raises(ConfigError, match=r"'code_dir': container script .*preprocess\.py' not found"):
        code_objects(config)
