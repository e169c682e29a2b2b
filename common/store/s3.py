"""The S3 object store: parts, manifests and reports. Every listing is paginated."""
from __future__ import annotations

from typing import Any, BinaryIO, Iterable, Iterator

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from common.config.connections import S3Config


_DOWNLOAD = TransferConfig(max_concurrency=4, multipart_chunksize=8 * 1024 * 1024)
"""At most 4 ranged GETs of 8 MB in flight per download: memory stays near 32 MB."""


def make_client(cfg: S3Config) -> Any:
    """A boto3 S3 client; keys from the config, else boto3's usual chain (role, env, profile)."""
    return boto3.client(
        "s3", region_name=cfg.region, endpoint_url=cfg.endpoint_url,
        aws_access_key_id=cfg.access_key_id, aws_secret_access_key=cfg.secret_access_key,
        config=Config(retries={"max_attempts": 5, "mode": "standard"},
                      connect_timeout=10, read_timeout=120))


class Store:
    """One bucket, seen through a boto3 client."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def put(self, key: str, body: bytes | BinaryIO, metadata: dict[str, str] | None = None,
            content_type: str = "application/octet-stream") -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body,
                               Metadata=metadata or {}, ContentType=content_type)

    def get(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def download(self, key: str, into: BinaryIO) -> None:
        """Stream an object into a file (ranged requests: never the whole object in memory)."""
        self.client.download_fileobj(self.bucket, key, into, Config=_DOWNLOAD)

    def get_with_metadata(self, key: str) -> tuple[bytes, dict[str, str]]:
        """An object's body and its user metadata, in one request."""
        resp = self.client.get_object(Bucket=self.bucket, Key=key)
        return resp["Body"].read(), resp.get("Metadata", {})

    def metadata(self, key: str) -> dict[str, str]:
        return self.client.head_object(Bucket=self.bucket, Key=key)["Metadata"]

    def list(self, prefix: str) -> Iterator[tuple[str, int]]:
        """(key, size) of every object under prefix, across all pages."""
        for key, size, _ in self.list_detailed(prefix):
            yield key, size

    def list_detailed(self, prefix: str) -> Iterator[tuple[str, int, Any]]:
        """(key, size, last modified) of every object under prefix, across all pages."""
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        for page in pages:
            for obj in page.get("Contents", []):
                yield obj["Key"], obj["Size"], obj["LastModified"]

    def delete(self, keys: Iterable[str]) -> int:
        """Delete keys, 1,000 per request (S3's limit); returns how many were asked."""
        batch: list[str] = []
        count = 0
        for key in keys:
            batch.append(key)
            if len(batch) == 1000:
                count += self._delete_batch(batch)
                batch = []
        if batch:
            count += self._delete_batch(batch)
        return count

    def _delete_batch(self, keys: list[str]) -> int:
        resp = self.client.delete_objects(
            Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in keys], "Quiet": True})
        errors = resp.get("Errors", [])
        if errors:
            first = errors[0]
            raise RuntimeError(f"S3 delete of {first['Key']} failed: {first.get('Message')}")
        return len(keys)

    def region(self) -> str:
        """The bucket's region (GetBucketLocation: no constraint is us-east-1, the legacy EU
        is eu-west-1)."""
        where = self.client.get_bucket_location(Bucket=self.bucket).get("LocationConstraint")
        return {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(where, where)

    def ensure_bucket(self, region: str) -> None:
        """Create the bucket if it does not exist (demo and tests; production buckets exist)."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except self.client.exceptions.ClientError:
            kwargs: dict[str, Any] = {"Bucket": self.bucket}
            if region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
            self.client.create_bucket(**kwargs)
