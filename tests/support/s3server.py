"""A real S3-compatible server on loopback for tests: moto's standalone server
(``moto[server]``, ``ThreadedMotoServer``) in its own thread, one per test session. Each test
takes a fresh bucket of its own (:meth:`S3Server.bucket`)."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

ACCESS_KEY = "fedisora-test-access"
SECRET_KEY = "fedisora-test-secret-key"
REGION = "us-east-1"


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class S3Server:
    def __init__(self, server: Any, endpoint: str) -> None:
        self._server = server
        self.endpoint = endpoint

    def client(self) -> Any:
        """A boto3 client of this server (to look at buckets behind fedisora's back)."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def bucket(self) -> str:
        """A new empty bucket."""
        name = f"media-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return name

    def make_public(self, bucket: str) -> None:
        """Anyone may read *bucket*'s objects without signing (as a CDN-fronted bucket)."""
        statement = {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{bucket}/*",
        }
        policy = {"Version": "2012-10-17", "Statement": [statement]}
        self.client().put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))

    def objects(self, bucket: str) -> dict[str, bytes]:
        """Every object in *bucket*, key -> bytes."""
        client = self.client()
        found: dict[str, bytes] = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                key = item["Key"]
                found[key] = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        return found

    def env(self, bucket: str, **extra: str) -> dict[str, str]:
        """``FEDISORA_*`` settings of an instance keeping its media in *bucket*."""
        return {
            "FEDISORA_MEDIA_BACKEND": "s3",
            "FEDISORA_S3_ENDPOINT": self.endpoint,
            "FEDISORA_S3_BUCKET": bucket,
            "FEDISORA_S3_REGION": REGION,
            "FEDISORA_S3_ACCESS_KEY": ACCESS_KEY,
            "FEDISORA_S3_SECRET_KEY": SECRET_KEY,
            **extra,
        }


@contextmanager
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server on 127.0.0.1 (a free port) while the block runs. moto missing is an
    error, never a skip: ``pip install 'moto[server]'`` (the test extra has it)."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        assert host == "127.0.0.1", host
        yield S3Server(server, f"http://127.0.0.1:{port}")
    finally:
        server.stop()
