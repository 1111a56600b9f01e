"""S3 at the service's endpoint is the local runner's object root: the same objects, both ways."""

from __future__ import annotations

import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError
from service_support import unique


@pytest.fixture
def bucket(s3_client, sagemaker_service):
    name = unique("objects")
    s3_client.create_bucket(Bucket=name)
    return name, sagemaker_service.root / name


def keys(s3_client, bucket: str, prefix: str = "") -> list[str]:
    return [o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]


def test_objects_put_by_clients_are_files_and_files_are_objects(s3_client, bucket):
    name, directory = bucket
    assert directory.is_dir()  # CreateBucket made the bucket's directory
    s3_client.put_object(Bucket=name, Key="input/ds=2026-11-03/abalone.csv", Body=b"rings\n9\n", ContentType="text/csv")
    assert (directory / "input" / "ds=2026-11-03" / "abalone.csv").read_bytes() == b"rings\n9\n"
    head = s3_client.head_object(Bucket=name, Key="input/ds=2026-11-03/abalone.csv")
    assert head["ContentType"] == "text/csv" and head["ContentLength"] == 8

    # what the runner does: plain files under the root, renamed into place
    (directory / "executions" / "abc" / "Evaluate").mkdir(parents=True)
    (directory / "executions" / "abc" / "Evaluate" / "evaluation.json").write_text('{"mse": 4.2}')
    assert keys(s3_client, name, "executions/") == ["executions/abc/Evaluate/evaluation.json"]
    body = s3_client.get_object(Bucket=name, Key="executions/abc/Evaluate/evaluation.json")["Body"].read()
    assert body == b'{"mse": 4.2}'
    (directory / "executions" / "abc" / "Evaluate" / "evaluation.json").write_text('{"mse": 1.5}')
    assert s3_client.get_object(Bucket=name, Key="executions/abc/Evaluate/evaluation.json")["Body"].read() == b'{"mse": 1.5}'

    s3_client.copy_object(Bucket=name, Key="copies/evaluation.json",
                   CopySource={"Bucket": name, "Key": "executions/abc/Evaluate/evaluation.json"})
    assert (directory / "copies" / "evaluation.json").read_bytes() == b'{"mse": 1.5}'
    s3_client.delete_object(Bucket=name, Key="copies/evaluation.json")
    assert not (directory / "copies").exists()
    s3_client.delete_objects(Bucket=name, Delete={"Objects": [{"Key": "executions/abc/Evaluate/evaluation.json"}]})
    assert not (directory / "executions" / "abc" / "Evaluate" / "evaluation.json").exists()
    (directory / "input" / "ds=2026-11-03" / "abalone.csv").unlink()  # removed by the runner: gone for clients
    assert keys(s3_client, name) == []


def test_multipart_uploads_and_downloads_go_through_the_root(s3_client, bucket, tmp_path):
    name, directory = bucket
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * (12 * 1024 * 1024 // 256))  # 12 MiB: three 5 MiB parts
    config = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    s3_client.upload_file(str(big), name, "data/big.bin", Config=config)
    assert (directory / "data" / "big.bin").read_bytes() == big.read_bytes()
    back = tmp_path / "back.bin"
    s3_client.download_file(name, "data/big.bin", str(back), Config=config)
    assert back.read_bytes() == big.read_bytes()


def test_keys_a_file_tree_cannot_hold_are_refused_loudly(s3_client, bucket):
    name, directory = bucket
    s3_client.put_object(Bucket=name, Key="model", Body=b"an object")
    for key in ("model/inside", "folder/", "a/../b"):
        with pytest.raises(ClientError) as caught:
            s3_client.put_object(Bucket=name, Key=key, Body=b"x")
        assert caught.value.response["Error"]["Code"] == "InvalidArgument"
        assert "object root" in caught.value.response["Error"]["Message"]
    s3_client.put_object(Bucket=name, Key="prefix/object", Body=b"x")
    with pytest.raises(ClientError, match="both an object and a 'directory'"):
        s3_client.put_object(Bucket=name, Key="prefix", Body=b"x")
    assert sorted(keys(s3_client, name)) == ["model", "prefix/object"]
    assert sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()) ==\
        ["model", "prefix/object"]


def test_buckets_are_directories_of_the_root(s3_client, sagemaker_service):
    name = unique("dirbucket")
    (sagemaker_service.root / name).mkdir()
    assert name in [b["Name"] for b in s3_client.list_buckets()["Buckets"]]
    other = unique("apibucket")
    s3_client.create_bucket(Bucket=other)
    assert (sagemaker_service.root / other).is_dir()
    s3_client.delete_bucket(Bucket=other)
    assert not (sagemaker_service.root / other).exists()
