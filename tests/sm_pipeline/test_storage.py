"""ObjectStore: URI ↔ path mapping, key validation, S3 prefix listing, atomic writes."""

from __future__ import annotations

import pytest

from sm_pipeline.errors import StorageError
from sm_pipeline.storage import ObjectStore, parse_s3_uri


@pytest.fixture
def store(tmp_path):
    return ObjectStore(tmp_path / "root")


def test_s3_uri_maps_under_root(store):
    assert store.path_for("s3://my-bucket/a/b.csv") == store.root / "my-bucket" / "a" / "b.csv"
    assert store.path_for("s3://my-bucket") == store.root / "my-bucket"
    assert store.uri_for(store.root / "my-bucket" / "a" / "b.csv") == "s3://my-bucket/a/b.csv"


def test_file_uri_is_a_local_path(store, tmp_path):
    assert store.path_for(f"file://{tmp_path}/x.csv") == tmp_path / "x.csv"
    assert store.path_for("file://localhost/tmp/a%20b") .as_posix() == "/tmp/a b"


@pytest.mark.parametrize(("uri", "problem"), [
    ("s3://bucket/../x", "'..'"),
    ("s3://bucket/a/../../etc", "'..'"),
    ("s3://bucket//etc/passwd", "absolute"),
    ("s3://bucket/a\x00b", "NUL"),
    ("s3:///key", "empty bucket"),
    ("s3://Upper/key", "invalid bucket"),
    ("s3://ab/key", "invalid bucket"),
    ("s3://-bad/key", "invalid bucket"),
    ("s3://192.168.1.1/key", "invalid bucket"),
    ("http://bucket/key", "not an s3"),
    ("s3://bucket/./key", "'.'"),
])
def test_invalid_uris_name_the_uri_and_problem(store, uri, problem):
    with pytest.raises(StorageError) as excinfo:
        store.path_for(uri)
    assert problem in str(excinfo.value)
    assert repr(uri)[1:8] in str(excinfo.value)


@pytest.mark.parametrize("uri", ["file://remote-host/x", "file://relative", "file:///a/../b"])
def test_invalid_file_uris(store, uri):
    with pytest.raises(StorageError):
        store.path_for(uri)


def test_non_string_uri_is_refused():
    with pytest.raises(StorageError, match="must be a string"):
        parse_s3_uri(42)


def test_put_read_exists_list(store, tmp_path):
    store.put_bytes("s3://bucket/data/part-1.csv", b"1\n")
    source = tmp_path / "src.csv"
    source.write_bytes(b"2\n")
    store.put_file("s3://bucket/data/part-2.csv", source)
    store.put_bytes("s3://bucket/data/sub/x.csv", b"3\n")
    store.put_bytes("s3://bucket/database/y.csv", b"4\n")
    assert store.read_bytes("s3://bucket/data/part-2.csv") == b"2\n"
    assert store.exists("s3://bucket/data") and not store.exists("s3://bucket/nothing")
    # S3 prefixes are strings: "data" also matches "database/..."; "data/" does not.
    assert store.list("s3://bucket/data") == [
        "s3://bucket/data/part-1.csv", "s3://bucket/data/part-2.csv", "s3://bucket/data/sub/x.csv",
        "s3://bucket/database/y.csv"]
    assert store.list("s3://bucket/data/") == [
        "s3://bucket/data/part-1.csv", "s3://bucket/data/part-2.csv", "s3://bucket/data/sub/x.csv"]
    assert store.list("s3://bucket/data/part") == ["s3://bucket/data/part-1.csv", "s3://bucket/data/part-2.csv"]
    assert store.list("s3://bucket/data/part-1.csv") == ["s3://bucket/data/part-1.csv"]


def test_read_missing_object_names_it(store):
    with pytest.raises(StorageError, match="s3://bucket/missing"):
        store.read_bytes("s3://bucket/missing")


def test_writes_leave_no_temp_files(store, tmp_path):
    store.put_bytes("s3://bucket/k", b"a")
    store.put_bytes("s3://bucket/k", b"b")
    assert [p.name for p in (store.root / "bucket").iterdir()] == ["k"]
    assert store.read_bytes("s3://bucket/k") == b"b"


def test_put_file_does_not_share_later_writes_through_the_source(store, tmp_path):
    source = tmp_path / "src"
    source.write_bytes(b"v1")
    store.put_file("s3://bucket/k", source)
    store.put_bytes("s3://bucket/k", b"v2")  # atomic replace: a new inode, the source is untouched
    assert source.read_bytes() == b"v1"


def test_delete_prefix(store):
    store.put_bytes("s3://bucket/p/a", b"1")
    store.delete_prefix("s3://bucket/p")
    assert store.list("s3://bucket/p") == []
