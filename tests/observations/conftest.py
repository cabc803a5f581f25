"""Fixtures for frame tests: a throwaway frame storage and scratch directory per test."""
from __future__ import annotations

import pytest


@pytest.fixture
def frame_store(settings, tmp_path):
    """Frames on the local disk under a temporary directory; the pipeline not started on upload."""
    root = tmp_path / "frames"
    settings.STORAGES = {**settings.STORAGES, "frames": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(root)}}}
    settings.DATAS_SCRATCH_DIR = tmp_path / "scratch"
    settings.DATAS_PIPELINE_ON_UPLOAD = False
    return root


def stored_files(root) -> list:
    """Every file under a storage root (what an upload left behind)."""
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@pytest.fixture(scope="session")
def moto_s3():
    """moto's standalone S3 server on a free 127.0.0.1 port, for real HTTP; stopped afterwards."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto's S3 server did not start") from None
                time.sleep(0.2)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def s3_frame_store(settings, tmp_path, moto_s3):
    """Frames in a fresh bucket of the moto server; returns a boto3 client and the bucket name."""
    import uuid

    import boto3

    bucket = f"datas-test-{uuid.uuid4().hex[:12]}"
    credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}
    client = boto3.client("s3", endpoint_url=moto_s3, **credentials)
    client.create_bucket(Bucket=bucket)
    settings.STORAGES = {**settings.STORAGES, "frames": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {
        "bucket_name": bucket, "endpoint_url": moto_s3, "region_name": "us-east-1", "access_key": "testing",
        "secret_key": "testing", "addressing_style": "path", "signature_version": "s3v4", "file_overwrite": True,
        "default_acl": None, "querystring_expire": 600}}}
    settings.DATAS_SCRATCH_DIR = tmp_path / "scratch"
    settings.DATAS_PIPELINE_ON_UPLOAD = False
    return client, bucket
