"""The object reads a verification makes beyond the listings: a bucket's default encryption, an
object's stored checksum (HEAD), and its bytes hashed (GET) when no stored checksum settles it."""

from __future__ import annotations

import hashlib
from typing import Any

from mldr.checks.verification.compare import StoredChecksum
from mldr.cloud.aws.clients import aws_call, error_code
from mldr.errors import AwsError

CHUNK = 1024 * 1024


def bucket_default_kms(s3: Any, bucket: str, region: str) -> bool:
    """Whether the bucket encrypts new objects with SSE-KMS by default (their ETags are then
    not the MD5 of their bytes). Unreadable encryption settings count as not KMS."""
    try:
        with aws_call(f"s3://{bucket}", region=region):
            config = s3.get_bucket_encryption(Bucket=bucket)
    except AwsError as exc:
        if error_code(exc) not in {"ServerSideEncryptionConfigurationNotFoundError", "AccessDenied"}:
            raise
        return False
    rules = config.get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
    return any(
        str(rule.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm", "")).startswith("aws:kms")
        for rule in rules
    )


def hash_body(body: Any) -> tuple[str, str, int]:
    """(sha256 hex, md5 hex, size) of a streaming body, read in chunks (no whole copy in memory)."""
    sha, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    for chunk in body.iter_chunks(CHUNK):
        sha.update(chunk)
        md5.update(chunk)
        size += len(chunk)
    return sha.hexdigest(), md5.hexdigest(), size


class ObjectReads:
    """HEAD and hashed GET of one object, on the run's clients (one per region)."""

    s3: dict[str, Any]

    def _head(self, region: str, bucket: str, key: str) -> StoredChecksum:
        with aws_call(f"s3://{bucket}/{key}", region=region):
            return StoredChecksum.from_head(
                self.s3[region].head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
            )

    def _download_hash(self, region: str, bucket: str, key: str) -> tuple[str, str, int]:
        with aws_call(f"s3://{bucket}/{key}", region=region):
            body = self.s3[region].get_object(Bucket=bucket, Key=key)["Body"]
            return hash_body(body)
