"""Settings from the environment: file storage on disk by default, S3 when a bucket is named."""
import boto3
import pytest
from django.core.files.base import ContentFile
from django.utils.module_loading import import_string
from moto import mock_aws

from network.settings import storages_from_env


def test_default_storage_is_the_local_disk():
    assert storages_from_env({})["default"]["BACKEND"].endswith("FileSystemStorage")


def test_s3_storage_round_trip(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    config = storages_from_env({"AWS_STORAGE_BUCKET_NAME": "datas-frames", "AWS_S3_REGION_NAME": "us-east-1",
                                "AWS_LOCATION": "frames"})["default"]
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="datas-frames")
        storage = import_string(config["BACKEND"])(**config["OPTIONS"])
        name = storage.save("2026/obs.fits", ContentFile(b"SIMPLE  =                    T"))
        assert storage.open(name).read().startswith(b"SIMPLE")
        keys = [o["Key"] for o in boto3.client("s3", region_name="us-east-1").list_objects_v2(
            Bucket="datas-frames")["Contents"]]
        assert keys == ["frames/2026/obs.fits"]


@pytest.mark.parametrize("bucket", ["", None])
def test_empty_bucket_means_disk(bucket):
    env = {} if bucket is None else {"AWS_STORAGE_BUCKET_NAME": bucket}
    assert "S3" not in storages_from_env(env)["default"]["BACKEND"]
