"""S3 as the runbooks' object store (`mldr.cloud.objects.ObjectStore`).

Most calls go through the region's botocore client; the hot paths - listing pages
(`s3_listing.BucketLister`) and resync's cross-region copies (`copy_in`) - are signed and sent
lean (`s3_signed`), which is an implementation detail of this module. Every call runs inside
`aws_call`, so what S3 raises leaves here as `mldr.errors` naming the bucket or object.

The write fence is a bucket-policy statement (Sid `MldrWriteFence`) denying object writes and
deletes; every other statement is kept, and replication is unaffected (S3 replicates with
`s3:ReplicateObject`, which the fence does not deny). A fence put by a DR operation (a
failback) lets that operation's own resync through: the statement does not apply to requests
whose User-Agent carries the operation's pass, `mldr-fence-pass/<fencing token>/`
(`aws:UserAgent`, which S3 evaluates for every object write and delete). The pass guards
against the service's own writers, not against an attacker: anyone allowed to send that header
could as well rewrite the policy. A new operation (a higher token) fences with a new pass, so a
stale operation's copies are refused like any other write. The replica guard (Sid `MldrReplicaGuard`)
is the other way round: it denies only the `s3:Replicate*` actions, so a bucket keeps taking its
clients' writes and refuses what another region's replication rule delivers.
"""

from __future__ import annotations

import contextlib
import html
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any

from mldr.cloud.aws.clients import ClientFactory
from mldr.cloud.aws.errors import aws_call, error_code
from mldr.cloud.aws.s3_listing import BucketLister
from mldr.cloud.aws.s3_signed import SignedS3, encode, error_from
from mldr.cloud.calls import Timeouts
from mldr.cloud.objects import (
    REPLICA_GUARD,
    WRITE_FENCE,
    ListedObject,
    ObjectHead,
    ObjectVersion,
    ReplicationState,
    StoredObject,
    Versioning,
)
from mldr.errors import AccessDenied, AwsError, MldrError, NotFound

FENCE_SID = WRITE_FENCE
FENCED_ACTIONS = ["s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"]
_ETAG = re.compile(rb"<ETag>([^<]*)</ETag>")
_SHA256 = re.compile(rb"<ChecksumSHA256>([^<]*)</ChecksumSHA256>")


def fence_pass(token: int) -> str:
    """What a request's User-Agent carries to pass the fence put with fencing token `token`
    (the trailing slash keeps token 1's pass from matching token 12's)."""
    return f"mldr-fence-pass/{token}/"


def fence_statement(bucket: str, pass_token: int | None = None) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Sid": FENCE_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": FENCED_ACTIONS,
        "Resource": f"arn:aws:s3:::{bucket}/*",
    }
    if pass_token is not None:
        statement["Condition"] = {"StringNotLike": {"aws:UserAgent": f"*{fence_pass(pass_token)}*"}}
    return statement


#: The pass the current thread's object writes carry (set by a store made `with_fence_pass`).
_PASS: ContextVar[str | None] = ContextVar("mldr_fence_pass", default=None)


def _add_fence_pass(request: Any, **_: Any) -> None:
    """botocore hook (before-sign): append the thread's fence pass to the User-Agent."""
    value = _PASS.get()
    if value:
        request.headers["User-Agent"] = f"{request.headers.get('User-Agent', '')} {value}".strip()


REPLICATED_ACTIONS = ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"]


def replica_guard_statement(bucket: str) -> dict[str, Any]:
    return {
        "Sid": REPLICA_GUARD,
        "Effect": "Deny",
        "Principal": "*",
        "Action": REPLICATED_ACTIONS,
        "Resource": f"arn:aws:s3:::{bucket}/*",
    }


def _unquote(etag: str) -> str:
    return etag.strip('"')


class S3ObjectStore:
    """One region's S3. Cheap to make: clients are cached by the factory."""

    def __init__(
        self,
        factory: ClientFactory,
        region: str,
        *,
        timeouts: Timeouts | None = None,
        fence_pass: str | None = None,
    ) -> None:
        self.factory = factory
        self._region = region
        self._timeouts = timeouts
        self._signed_s3: SignedS3 | None = None
        self._pass = fence_pass

    def with_fence_pass(self, token: int) -> S3ObjectStore:
        return S3ObjectStore(
            self.factory, self._region, timeouts=self._timeouts, fence_pass=fence_pass(token)
        )

    def _writing(self) -> Any:
        """Where object writes and deletes run: with this store's fence pass, if it has one."""
        return _PassScope(self) if self._pass else contextlib.nullcontext()

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
        # signed and parsed lean, as listings are: a restore plans from a dataset's whole
        # history, where botocore's parser took ~0.3 s of CPU a 1,000-version page
        yield from self.lister(bucket).versions(prefix=prefix)

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

    def stream(
        self, bucket: str, key: str, *, chunk_size: int = 1024 * 1024, version_id: str | None = None
    ) -> Iterator[bytes]:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version_id:
            kwargs["VersionId"] = version_id
        with self._call(bucket, key):
            body = self.client.get_object(**kwargs)["Body"]
            yield from body.iter_chunks(chunk_size)

    def copy_version(self, bucket: str, key: str, version_id: str, *, to_key: str) -> ObjectHead:
        """CopyObject of one version within the bucket, stored with a SHA-256: signed and sent
        lean (a restore's hot loop, where botocore's ~2 ms of CPU a call was the bottleneck)."""
        source = f"/{encode(bucket)}/{encode(key, safe='-_.~/')}?versionId={encode(version_id)}"
        response, body = self._copy_lean(
            bucket, to_key, {"x-amz-copy-source": source, "x-amz-checksum-algorithm": "SHA256"}
        )
        etag, sha256 = _ETAG.search(body), _SHA256.search(body)
        return ObjectHead(
            key=to_key,
            size=-1,  # a copy's answer does not say; the source version's size is the plan's
            etag=html.unescape(etag.group(1).decode()).strip('"') if etag else "",
            version_id=response.headers.get("x-amz-version-id"),
            sha256=sha256.group(1).decode() if sha256 else None,
            kms=response.headers.get("x-amz-server-side-encryption") == "aws:kms",
        )

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
        with self._call(bucket, key), self._writing():
            answer = self.client.put_object(**kwargs)
        version = answer.get("VersionId")
        return str(version) if version else None

    def get_json(self, bucket: str, key: str) -> Any:
        return json.loads(self.get(bucket, key).body)

    def put_json(self, bucket: str, key: str, document: Any, *, indent: int | None = None) -> None:
        body = json.dumps(document, indent=indent, default=str).encode()
        self.put(bucket, key, body, content_type="application/json")

    def delete(self, bucket: str, key: str) -> None:
        with self._call(bucket, key), self._writing():
            self.client.delete_object(Bucket=bucket, Key=key)

    def delete_keys(self, bucket: str, keys: Iterable[str]) -> None:
        doomed = [{"Key": key} for key in keys]
        failed: list[str] = []
        with self._call(bucket), self._writing():
            for start in range(0, len(doomed), 1000):  # S3's limit per DeleteObjects
                answer = self.client.delete_objects(
                    Bucket=bucket, Delete={"Objects": doomed[start : start + 1000], "Quiet": True}
                )
                # DeleteObjects answers 200 and reports each key it refused (AccessDenied, ...)
                failed += [f"{e.get('Key')} ({e.get('Code')})" for e in answer.get("Errors", [])]
        if failed:
            raise AwsError(
                f"S3 did not delete {len(failed)} key(s): {', '.join(failed[:5])}",
                resource=f"bucket {bucket}",
                region=self._region,
            )

    def copy_in(
        self, *, source_bucket: str, bucket: str, key: str, etag: str, version_id: str | None = None
    ) -> None:
        """CopyObject from another region, signed and sent lean (resync's hot loop): S3 copies
        only if the source still has `etag` (else `PreconditionFailed`), and the copy's ETag
        (the MD5 of the bytes written) must be that ETag."""
        copy_source = f"/{encode(source_bucket)}/{encode(key, safe='-_.~/')}"
        if version_id:
            copy_source += f"?versionId={encode(version_id)}"
        headers = {"x-amz-copy-source": copy_source, "x-amz-copy-source-if-match": f'"{etag}"'}
        _, body = self._copy_lean(bucket, key, headers)
        resource = f"s3://{bucket}/{key}"
        match = _ETAG.search(body)
        copied = html.unescape(match.group(1).decode()).strip('"') if match else ""
        if copied != etag:
            raise MldrError(f"{resource}: the copy's ETag {copied!r} is not the source's {etag!r}")

    def _copy_lean(self, bucket: str, key: str, headers: dict[str, str]) -> tuple[Any, bytes]:
        """A signed CopyObject into `bucket`/`key` (the copy source and conditions in `headers`),
        through the fence's pass when this store holds one; its response and body. A copy S3
        answered 200 but failed (the error in the body) raises like any other refusal."""
        signed = self._signed()
        if self._pass:
            headers = {**headers, "User-Agent": f"mldr {self._pass}"}
        resource = f"s3://{bucket}/{key}"
        response = signed.send("PUT", signed.url(bucket, key), resource=resource, headers=headers)
        body = bytes(response.data)
        if response.status != 200 or b"<Error>" in body:
            with aws_call(resource, region=self._region):
                raise error_from(response, "CopyObject")
        return response, body

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

    def fence(self, bucket: str, *, pass_token: int | None = None) -> bool:
        policy = self._policy(bucket)
        wanted = fence_statement(bucket, pass_token)
        statements = [s for s in policy.get("Statement", []) if s.get("Sid") != FENCE_SID]
        standing = [s for s in policy.get("Statement", []) if s.get("Sid") == FENCE_SID]
        policy["Statement"] = [*statements, wanted]
        with aws_call(f"bucket policy of {bucket}", region=self._region):
            self.client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
        return standing != [wanted]

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

    def _set_statement(self, bucket: str, sid: str, statement: dict[str, Any] | None) -> bool:
        """Put (or, with None, remove) the policy statement `sid`, keeping every other one;
        returns whether the policy changed."""
        policy = self._policy(bucket)
        present = policy.get("Statement", [])
        others = [s for s in present if s.get("Sid") != sid]
        if statement is None and len(others) == len(present):
            return False
        if statement is not None and len(others) != len(present):
            return False
        with aws_call(f"bucket policy of {bucket}", region=self._region):
            if statement is None and not others:
                self.client.delete_bucket_policy(Bucket=bucket)
            else:
                policy["Statement"] = others if statement is None else [*others, statement]
                self.client.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
        return True

    def refuse_replicas(self, bucket: str) -> bool:
        return self._set_statement(bucket, REPLICA_GUARD, replica_guard_statement(bucket))

    def accept_replicas(self, bucket: str) -> bool:
        return self._set_statement(bucket, REPLICA_GUARD, None)

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

    def object_lock_days(self, bucket: str) -> int | None:
        # The bucket's default, not each version's retention: it is what every new version gets,
        # and one read per bucket (GetObjectRetention per version is not in every S3, moto's included).
        try:
            with self._call(bucket):
                config = self.client.get_object_lock_configuration(Bucket=bucket)
        except NotFound as exc:
            if error_code(exc) != "ObjectLockConfigurationNotFoundError":
                raise
            return None
        lock = config.get("ObjectLockConfiguration", {})
        default = (lock.get("Rule") or {}).get("DefaultRetention") or {}
        if lock.get("ObjectLockEnabled") != "Enabled" or not default:
            return None
        return int(default.get("Days") or 0) or int(default.get("Years") or 0) * 365 or None

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


class _PassScope:
    """Object writes in this scope carry the store's fence pass (botocore's before-sign hook)."""

    def __init__(self, store: S3ObjectStore) -> None:
        self.store = store
        self._reset: Any = None

    def __enter__(self) -> None:
        # registered once per client (botocore keeps one handler per unique_id)
        self.store.client.meta.events.register("before-sign.s3", _add_fence_pass, unique_id="mldr-fence-pass")
        self._reset = _PASS.set(self.store._pass)

    def __exit__(self, *_: object) -> None:
        _PASS.reset(self._reset)
