"""Pipeline versions: one per definition change, numbered from 1; the one reading of latest / first / a number."""

from __future__ import annotations

import pytest

from sm_pipeline.pipeline_versions import PipelineVersions, local_versions_dir, resolve_version


def test_a_version_per_change_numbered_from_one(tmp_path):
    versions = PipelineVersions(local_versions_dir(tmp_path, "pipe"))
    assert versions.ids() == [] and versions.latest_id() is None
    assert versions.add_if_changed('{"a": 1}', DefinitionUri="s3://b/one.json") == (1, True)
    assert versions.add_if_changed('{"a": 1}') == (1, False)  # unchanged text: no new version
    assert versions.add_if_changed('{"a": 2}') == (2, True)
    assert versions.add("anything") == 3  # the service's UpdatePipeline: always the next one
    assert versions.get(1)["PipelineDefinition"] == '{"a": 1}' and versions.get(1)["DefinitionUri"] == "s3://b/one.json"
    versions.note_execution(2, "arn:execution")
    assert versions.get(2)["LastExecutionPipelineExecutionArn"] == "arn:execution"
    assert [v["PipelineVersionId"] for v in versions.all()] == [1, 2, 3]
    assert versions.get(9) is None
    assert local_versions_dir(tmp_path, "pipe") == tmp_path / ".airsage" / "pipelines" / "pipe" / "versions"


@pytest.mark.parametrize(("wanted", "first", "expected"), [
    ("latest", 1, 3), (None, 1, 3), ("", 1, 3), ("first", 1, 1), ("first", None, 3), ("2", None, 2), (2, None, 2),
    ("FIRST", 2, 2),
])
def test_latest_first_or_a_number(wanted, first, expected):
    assert resolve_version(wanted, latest=3, first_ran=first, exists=lambda n: n <= 3, where="here") == expected


@pytest.mark.parametrize(("wanted", "latest", "message"), [
    ("7", 3, "here: pipeline version 7 does not exist (the latest is 3)"),
    ("0", 3, "here: pipeline_version must be 'latest', 'first' or a version number, not '0'"),
    ("v2", 3, "here: pipeline_version must be 'latest', 'first' or a version number, not 'v2'"),
    ("latest", None, "here: the pipeline has no version yet"),
])
def test_a_version_that_names_nothing_is_one_line(wanted, latest, message):
    with pytest.raises(ValueError) as raised:
        resolve_version(wanted, latest=latest, first_ran=None, exists=lambda n: n <= 3, where="here")
    assert str(raised.value) == message
