"""S3 as the runbooks' object store (`mldr.cloud.objects.ObjectStore`).

Most calls go through the region's botocore client; the hot paths - listing pages
(`s3_listing.BucketLister`) and resync's cross-region copies (`copy_in`) - are signed and sent
lean (`s3_signed`), which is an implementation detail of this module. Every call runs inside
`aws_call`, so what S3 raises leaves here as `mldr.errors` naming the bucket or object.

The write fence is a bucket-policy statement (Sid `MldrWriteFence`) denying object writes and
deletes; every other statement is kept, and replication is unaffected (S3 replicates with
`s3:ReplicateObject`, which the fence does not deny).
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from mldr.cloud.aws.clients import ClientFactory
from mldr.cloud.aws.errors import aws_call, error_code
from mldr.cloud.aws.s3_listing import BucketLister
from mldr.cloud.aws.s3_signed import SignedS3, encode, error_from
from mldr.cloud.calls import Timeouts
from mldr.cloud.objects import (
    WRITE_FENCE,
    ListedObject,
    ObjectHead,
    ObjectVersion,
    ReplicationState,
    StoredObject,
    Versioning,
)
from mldr.errors import AccessDenied, MldrError, NotFound

FENCE_SID = WRITE_FENCE
FENCED_ACTIONS = ["s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"]
_ETAG = re.compile(rb"<ETag>([^<]*)</ETag>")


def fence_statement(bucket: str) -> dict[str, Any]:
    return {
        "Sid": FENCE_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": FENCED_ACTIONS,
        "Resource": f"arn:aws:s3:::{bucket}/*",
    }


def _unquote(etag: str) -> str:
    return etag.strip('"')


class S3ObjectStore:
    """One region's S3. Cheap to make: clients are cached by the factory."""

    def __init__(self, factory: ClientFactory, region: str, *, timeouts: Timeouts | None = None) -> None:
        self.factory = factory
        self._region = region
        self._timeouts = timeouts
        self._signed_s3: SignedS3 | None = None

    @property
    def region(self) -> str:
        return self._region

    @property
    def timeouts(self) -> Timeouts:
        return self._timeouts or self.factory.timeouts

    @property
    def endpoint(self) -> str:
        return str(self.client.meta.endpoint_url)

    @property
    def client(self) -> Any:
        return self.factory.client("s3", self._region, timeouts=self._timeouts)

    def _call(self, bucket: str, key: str | None = None) -> Any:
        where = f"s3://{bucket}/{key}" if key is not None else f"s3://{bucket}"
        return aws_call(where, region=self._region)

    # --- current state, versions, objects -------------------------------------------------------

    def lister(
        self, bucket: str, *, timeouts: Timeouts | None = None, max_in_flight: int | None = None
    ) -> BucketLister:
        return BucketLister(
            self.client,
            bucket=bucket,
            region=self._region,
            timeouts=timeouts or self.timeouts,
            max_in_flight=max_in_flight,
        )

    def probe(self, bucket: str) -> None:
        with aws_call(f"bucket {bucket}", region=self._region):
            self.client.head_bucket(Bucket=bucket)

    def list_objects(
        self, bucket: str, *, prefix: str = "", start_after: str | None = None
    ) -> Iterator[ListedObject]:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        if start_after:
            kwargs["StartAfter"] = start_after
        with self._call(bucket, prefix):
            for page in self.client.get_paginator("list_objects_v2").paginate(**kwargs):
                for obj in page.get("Contents", []):
                    yield ListedObject(
                        key=obj["Key"],
                        size=int(obj.get("Size", 0)),
                        etag=_unquote(obj.get("ETag", "")),
                        modified=obj["LastModified"].isoformat(),
                        checksum_algorithm=(obj.get("ChecksumAlgorithm") or [None])[0],
                    )

    def versions(self, bucket: str, *, prefix: str = "") -> Iterator[ObjectVersion]:
        with self._call(bucket, prefix):
            for page in self.client.get_paginator("list_object_versions").paginate(
                Bucket=bucket, Prefix=prefix
            ):
                yield from _versions_of(page)

    def latest_version(self, bucket: str, key: str) -> ObjectVersion | None:
        with self._call(bucket, key):
            page = self.client.list_object_versions(Bucket=bucket, Prefix=key, MaxKeys=16)
        # the exact key sorts before every longer key with it as a prefix, its newest first
        for version in _versions_of(page):
            if version.key == key and version.latest:
                return version
        return None

    def head(
        self, bucket: str, key: str, *, version_id: str | None = None, checksum: bool = False
    ) -> ObjectHead:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version_id:
            kwargs["VersionId"] = version_id
        if checksum:
            kwargs["ChecksumMode"] = "ENABLED"
        with self._call(bucket, key):
            answer = self.client.head_object(**kwargs)
        return head_from_answer(key, answer)

    def get(
        self,
        bucket: str,
        key: str,
        *,
        version_id: str | None = None,
        if_match: str | None = None,
        checksum: bool = False,
    ) -> StoredObject:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version_id:
            kwargs["VersionId"] = version_id
        if if_match:
            kwargs["IfMatch"] = f'"{if_match}"'
        if checksum:
            kwargs["ChecksumMode"] = "ENABLED"
        with self._call(bucket, key):
            answer = self.client.get_object(**kwargs)
            body = answer["Body"].read()
        return StoredObject(head_from_answer(key, answer), body)

    def stream(self, bucket: str, key: str, *, chunk_size: int = 1024 * 1024) -> Iterator[bytes]:
        with self._call(bucket, key):
            body = self.client.get_object(Bucket=bucket, Key=key)["Body"]
            yield from body.iter_chunks(chunk_size)

    def put(
        self,
        bucket: str,
        key: str,
        body: bytes,
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
        sha256: str | None = None,
    ) -> str | None:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key, "Body": body}
        if content_type:
            kwargs["ContentType"] = content_type
        if metadata is not None:
            kwargs["Metadata"] = dict(metadata)
        if sha256:
            kwargs["ChecksumSHA256"] = sha256
        with self._call(bucket, key):
            answer = self.client.put_object(**kwargs)
        version = answer.get("VersionId")
        return str(version) if version else None

    def get_json(self, bucket: str, key: str) -> Any:
        return json.loads(self.get(bucket, key).body)

    def put_json(self, bucket: str, key: str, document: Any, *, indent: int | None = None) -> None:
        body = json.dumps(document, indent=indent, default=str).encode()
        self.put(bucket, key, body, content_type="application/json")

    def delete(self, bucket: str, key: str) -> None:
        with self._call(bucket, key):
            self.client.delete_object(Bucket=bucket, Key=key)

    def delete_versions(self, bucket: str, versions: Iterable[tuple[str, str]]) -> None:
        doomed = [{"Key": key, "VersionId": version} for key, version in versions]
        with self._call(bucket):
            for start in range(0, len(doomed), 1000):  # S3's limit per DeleteObjects
                self.client.delete_objects(
                    Bucket=bucket, Delete={"Objects": doomed[start : start + 1000], "Quiet": True}
                )

    def copy_in(
        self, *, source_bucket: str, bucket: str, key: str, etag: str, version_id: str | None = None
    ) -> None:
        """CopyObject from another region, signed and sent lean (resync's hot loop): S3 copies
        only if the source still has `etag` (else `PreconditionFailed`), and the copy's ETag
        (the MD5 of the bytes written) must be that ETag."""
        signed = self._signed()
        copy_source = f"/{encode(source_bucket)}/{encode(key, safe='-_.~/')}"
        if version_id:
            copy_source += f"?versionId={encode(version_id)}"
        headers = {"x-amz-copy-source": copy_source, "x-amz-copy-source-if-match": f'"{etag}"'}
        resource = f"s3://{bucket}/{key}"
        response = signed.send("PUT", signed.url(bucket, key), resource=resource, headers=headers)
        body = bytes(response.data)
        # S3 may answer a copy 200 and still fail it: the error is then in the body
        if response.status != 200 or b"<Error>" in body:
            with aws_call(resource, region=self._region):
                raise error_from(response, "CopyObject")
        match = _ETAG.search(body)
        copied = html.unescape(match.group(1).decode()).strip('"') if match else ""
        if copied != etag:
            raise MldrError(f"{resource}: the copy's ETag {copied!r} is not the source's {etag!r}")

    def _signed(self) -> SignedS3:
        # made once per store: a resync holds one store per region for all its copies
        if self._signed_s3 is None:
            self._signed_s3 = SignedS3(self.client, region=self._region, timeouts=self.timeouts)
        return self._signed_s3

    # --- bucket settings ------------------------------------------------------------------------

    def _policy(self, bucket: str) -> dict[str, Any]:
        try:
            with aws_call(f"bucket policy of {bucket}", region=self._region):
                raw = self.client.get_bucket_policy(Bucket=bucket)["Policy"]
        except NotFound as exc:
            if error_code(exc) == "NoSuchBucketPolicy":
                return {"Version": "2012-10-17", "Statement": []}
            raise
        policy: dict[str, Any] = json.loads(raw)
        if isinstance(policy.get("Statement"), dict):
            policy["Statement"] = [policy["Statement"]]
        return policy

    def is_fenced(self, bucket: str) -> bool:
        return any(s.get("Sid") == FENCE_SID for s in self._policy(bucket).get("Statement", []))

    def fence(self, bucket: str) -> bool:
        policy = self._policy(bucket)
        statements = [s for s in policy.get("Statement", []) if s.get("Sid") != FENCE_SID]
        already = len(statements) != len(policy.get("Statement", []))
        policy["Statement"] = [*statements, fence_statement(bucket)]
        with aws_call(f"bucket policy of {bucket}", region=self._region):
            self.client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
        return not already

    def lift_fence(self, bucket: str) -> bool:
        policy = self._policy(bucket)
        statements = [s for s in policy.get("Statement", []) if s.get("Sid") != FENCE_SID]
        if len(statements) == len(policy.get("Statement", [])):
            return False
        with aws_call(f"bucket policy of {bucket}", region=self._region):
            if statements:
                policy["Statement"] = statements
                self.client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
            else:
                self.client.delete_bucket_policy(Bucket=bucket)
        return True

    def replication(self, bucket: str) -> Mapping[str, Any] | None:
        try:
            with aws_call(f"replication of {bucket}", region=self._region):
                config: dict[str, Any] = self.client.get_bucket_replication(Bucket=bucket)[
                    "ReplicationConfiguration"
                ]
                return config
        except NotFound as exc:
            if error_code(exc) == "ReplicationConfigurationNotFoundError":
                return None
            raise

    def set_replication(self, bucket: str, configuration: Mapping[str, Any]) -> None:
        with aws_call(f"replication of {bucket}", region=self._region):
            self.client.put_bucket_replication(Bucket=bucket, ReplicationConfiguration=dict(configuration))

    def remove_replication(self, bucket: str) -> None:
        with aws_call(f"replication of {bucket}", region=self._region):
            self.client.delete_bucket_replication(Bucket=bucket)

    def default_kms_key(self, bucket: str) -> bool:
        """Fails closed: encryption settings that may not be read raise `AccessDenied` (taken as
        "not KMS", every ETag would pass for a content hash, and SSE-KMS objects would be
        compared - and resync copies verified - on ETags that are none)."""
        try:
            with self._call(bucket):
                config = self.client.get_bucket_encryption(Bucket=bucket)
        except AccessDenied as exc:
            raise AccessDenied(
                f"s3:GetEncryptionConfiguration denied ({exc}); without it mldr cannot tell whether "
                "the bucket's ETags are content hashes. Grant s3:GetEncryptionConfiguration on the "
                "bucket to the role mldr runs as",
                resource=f"s3://{bucket}",
                region=self._region,
            ) from exc
        except NotFound as exc:
            if error_code(exc) != "ServerSideEncryptionConfigurationNotFoundError":
                raise
            return False
        rules = config.get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
        return any(
            str(rule.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm", "")).startswith(
                "aws:kms"
            )
            for rule in rules
        )

    def versioning(self, bucket: str) -> Versioning:
        with self._call(bucket):
            status = self.client.get_bucket_versioning(Bucket=bucket).get("Status")
        return Versioning(status) if status else Versioning.OFF

    def lifecycle_rules(self, bucket: str) -> list[Mapping[str, Any]]:
        try:
            with self._call(bucket):
                rules: list[Mapping[str, Any]] = self.client.get_bucket_lifecycle_configuration(
                    Bucket=bucket
                ).get("Rules", [])
                return rules
        except NotFound as exc:
            if error_code(exc) == "NoSuchLifecycleConfiguration":
                return []
            raise


def _versions_of(page: Mapping[str, Any]) -> list[ObjectVersion]:
    """One ListObjectVersions page, versions and delete markers merged: by key, newest first
    (S3 lists the two apart; pages follow each other in key order)."""
    out = [
        ObjectVersion(
            key=v["Key"],
            version_id=v["VersionId"],
            modified=v["LastModified"].timestamp(),
            etag=_unquote(v.get("ETag", "")),
            size=int(v.get("Size", 0)),
            latest=bool(v.get("IsLatest")),
        )
        for v in page.get("Versions", [])
    ]
    out += [
        ObjectVersion(
            key=m["Key"],
            version_id=m["VersionId"],
            modified=m["LastModified"].timestamp(),
            etag="",
            size=0,
            latest=bool(m.get("IsLatest")),
            deleted=True,
        )
        for m in page.get("DeleteMarkers", [])
    ]
    out.sort(key=lambda v: (v.key, -v.modified))
    return out


def head_from_answer(key: str, answer: Mapping[str, Any]) -> ObjectHead:
    """An `ObjectHead` from a HeadObject or GetObject answer."""
    modified = answer.get("LastModified")
    replication = answer.get("ReplicationStatus")
    return ObjectHead(
        key=key,
        size=int(answer.get("ContentLength", 0)),
        etag=_unquote(answer.get("ETag", "")),
        version_id=answer.get("VersionId"),
        modified=modified.timestamp() if modified is not None else None,
        content_type=answer.get("ContentType"),
        metadata=dict(answer.get("Metadata", {})),
        replication=ReplicationState(replication) if replication else ReplicationState.UNKNOWN,
        sha256=answer.get("ChecksumSHA256"),
        checksum_type=answer.get("ChecksumType"),
        crc64nvme=answer.get("ChecksumCRC64NVME"),
        kms=str(answer.get("ServerSideEncryption", "")).startswith("aws:kms"),
    )
