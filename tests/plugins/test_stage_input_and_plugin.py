"""stage_input on the local object root, the plugin registration, the failure callback."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airsage.operators.stage_input import StageInputOperator

CSV = b"sex,length,rings\nM,0.45,15\nF,0.53,9\n"


def stage(root, source, ds="2026-11-01", uri_ds=None):
    uri_ds = uri_ds or ds
    return StageInputOperator(
        task_id="stage_input", source=str(source), backend="local", local_root=str(root),
        input_uri=f"s3://bkt/p/input/ds={uri_ds}/abalone.csv", batch_uri=f"s3://bkt/p/batch/ds={uri_ds}/batch.csv",
        label_column="rings",
    )


def test_stage_input_writes_the_partition_then_is_a_no_op(tmp_path, make_context):
    source = tmp_path / "abalone.csv"
    source.write_bytes(CSV)
    root = tmp_path / "objects"
    ctx = make_context()
    first = stage(root, source).execute(ctx)
    assert first["changed"] is True and first["rows"] == 2
    assert first["parameters"] == {"InputData": "s3://bkt/p/input/ds=2026-11-01/abalone.csv",
                                   "BatchData": "s3://bkt/p/batch/ds=2026-11-01/batch.csv"}
    assert set(first["hashes"]) == {"input data", "batch data"}
    assert ctx["ti"].xcoms["input_uri"] == "s3://bkt/p/input/ds=2026-11-01/abalone.csv"
    assert (root / "bkt/p/input/ds=2026-11-01/abalone.csv").read_bytes() == CSV
    assert (root / "bkt/p/batch/ds=2026-11-01/batch.csv").read_text() == "sex,length\nM,0.45\nF,0.53\n"
    mtime = (root / "bkt/p/input/ds=2026-11-01/abalone.csv").stat().st_mtime_ns
    assert stage(root, source).execute(make_context())["changed"] is False
    assert (root / "bkt/p/input/ds=2026-11-01/abalone.csv").stat().st_mtime_ns == mtime
    # another date is another partition; the first one is untouched
    stage(root, source, ds="2026-11-02").execute(make_context(ds="2026-11-02"))
    assert (root / "bkt/p/input/ds=2026-11-01/abalone.csv").stat().st_mtime_ns == mtime


@pytest.mark.parametrize(("content", "message"), [
    (None, "does not exist or is not a file"),
    (b"", "empty file"),
    (b"sex,length\nM,0.4\n", "has no 'rings' column"),
    (b"sex,length,rings\n", "header only, no data rows"),
])
def test_stage_input_fails_clearly_on_bad_sources(tmp_path, make_context, content, message):
    source = tmp_path / "abalone.csv"
    if content is not None:
        source.write_bytes(content)
    with pytest.raises(AirflowFailException, match=message) as failed:
        stage(tmp_path / "objects", source).execute(make_context())
    assert "source data for ds=2026-11-01" in str(failed.value) and str(source) in str(failed.value)
    assert not (tmp_path / "objects").exists() or not any((tmp_path / "objects").rglob("*.csv"))


def test_stage_input_refuses_to_write_another_dates_partition(tmp_path, make_context):
    source = tmp_path / "abalone.csv"
    source.write_bytes(CSV)
    with pytest.raises(AirflowFailException, match="not in this run's partition ds=2026-11-01/"):
        stage(tmp_path / "objects", source, uri_ds="2026-10-31").execute(make_context())


def test_plugin_registers_the_links_and_pages_and_only_its_own_file_is_loaded_by_airflow(repo_root):
    from airflow._shared.module_loading.file_discovery import find_path_from_directory

    from airsage.execution_pages import LazyApp
    from airsage.links.local_execution import LocalExecutionLink
    from airsage.links.pipeline_execution import SageMakerPipelineExecutionLink, execution_console_url
    from airsage.plugin import AirsagePlugin

    assert [type(link) for link in AirsagePlugin.operator_extra_links] == [SageMakerPipelineExecutionLink,
                                                                          LocalExecutionLink]
    (app,) = AirsagePlugin.fastapi_apps
    assert app["url_prefix"] == "/airsage" and isinstance(app["app"], LazyApp)
    found = list(find_path_from_directory(str(repo_root / "plugins"), ".airflowignore", "glob"))
    assert [p.replace(str(repo_root), "") for p in found if p.endswith(".py")] == ["/plugins/airsage/airsage_plugin.py"]
    assert execution_console_url("eu-west-1", "p", "abc") == (
        "https://console.aws.amazon.com/sagemaker/home?region=eu-west-1#/pipelines/p/executions/abc")
