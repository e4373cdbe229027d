"""A moto server for one sandbox "region", plus the two S3 behaviours moto lacks.

moto stores S3 replication rules and bucket policies but acts on neither. This process wraps
moto's WSGI app with a thin middleware that adds:

- a **change feed**: every successful S3 object write or delete is appended to an in-memory
  journal, read by the replicator at `GET /_mldr/changes?since=N` (S3 event notifications,
  in effect), so replication costs one small request per change, not a bucket listing;
- **bucket-policy enforcement for writes**: a request to put or delete an object is refused
  with 403 AccessDenied when the bucket policy denies it (moto's own policy evaluator
  decides). This is how a failover's write fence refuses writes in the sandbox. The
  replicator's requests carry `x-mldr-replication: true` and are exempt, as S3 replication
  uses `s3:ReplicateObject`, which a fence on `s3:PutObject` does not deny; they are refused
  when the policy denies `s3:ReplicateObject` / `s3:ReplicateDelete` (a failover's replica guard).
- **replication status at write time**: S3 marks a version PENDING the moment it acknowledges the
  write. Here, before a write to a bucket with replication rules is acknowledged, the replicator
  is told to read the feed now (`POST /observe`), so a write the client saw succeed is always in
  the replication backlog, even if this region stops the next instant. Best effort: with the
  replicator down the write still succeeds and the feed carries the change later.
- **SSE-KMS ETags as in AWS**: the ETag of an object S3 encrypts with a KMS key is not the MD5
  of its bytes; moto's is, and code that trusted it would pass here and fail in AWS
  (`_opaque_kms_etags`).
- **a copy takes the destination bucket's default encryption**: S3 encrypts a CopyObject that
  names no encryption as the destination bucket's default says (SSE-KMS with its key); moto did so
  only for a copy to another key, and made a copy of a version onto its own key - how a restore
  brings a version back - AES256 (`_copies_take_the_bucket_default_encryption`).
- **a checksum sent without naming its algorithm is kept**: S3 stores the `x-amz-checksum-sha256`
  (or CRC32, CRC32C, SHA-1, CRC64NVME) a writer sends; moto only when the SDK also names the
  algorithm (`x-amz-sdk-checksum-algorithm`), so verification would find no stored checksum for
  what mldr's own writers (`ChecksumSHA256=` alone) wrote (`_name_the_checksum_algorithm`);
  likewise a CopyObject's `x-amz-checksum-algorithm`, without which moto refuses a copy into a
  bucket with an Object Lock default retention (S3 does not: a copy has no body to checksum).
- **cross-region CopyObject**: S3 copies an object from a bucket in another region when asked
  (`x-amz-copy-source`); moto only knows its own buckets. A copy whose source bucket is not
  here is read from the peer region's server (`--peer`, its `/_mldr/object`) and written into
  this region's store as S3 writes a copy (`mldr.sandbox.crossregion`) - through the write
  fence, the change feed and the replication status like any other write - and answered with
  S3's `CopyObjectResult`.

- **IAM enforced** (with `--principals FILE`): every request is authorised against its caller's
  identity policies from the first one on, as AWS does (`mldr.sandbox.iam`); what each principal
  was allowed is at `GET /_mldr/authorized`.

Run as `python -m mldr.sandbox.motoserver --port P --name us-east-1`; binds 127.0.0.1 only.
A region outage in the sandbox is this process receiving SIGSTOP.
"""

from __future__ import annotations

import argparse
import fnmatch
import html
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from email.utils import formatdate
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, unquote
from xml.etree import ElementTree

from werkzeug.serving import make_server

from mldr.sandbox import crossregion, iam
from mldr.sandbox.crossregion import CopySource, parse_copy_source
from mldr.sandbox.listen import HOST, add_listen_arguments, port_of, server_socket

log = logging.getLogger("mldr.sandbox.motoserver")

REPLICATION_HEADER = "HTTP_X_MLDR_REPLICATION"
JOURNAL_LIMIT = 2_000_000
#: How long a write waits for the replicator to take it into its backlog (then the feed does).
OBSERVE_TIMEOUT = 1.0


@dataclass(frozen=True)
class Change:
    seq: int
    at: float
    bucket: str
    key: str | None  # None: a bucket-level change (rules, batch delete): rescan the bucket
    method: str
    version_id: str | None = None  # from x-amz-version-id: the version this write created
    delete_marker: bool = False
    size: int | None = None


class ChangeJournal:
    """Append-only, bounded, thread-safe list of S3 mutations, addressed by sequence number.

    Sequence numbers are consecutive, so a reader's position is an index: reading the feed
    costs what it returns, not the journal's length (the replicator reads it ten times a
    second).
    """

    def __init__(self, limit: int = JOURNAL_LIMIT) -> None:
        self.boot_id = uuid.uuid4().hex
        self._limit = limit
        self._events: list[Change] = []  # the newest `limit` to `limit * 5/4` changes
        self._seq = 0
        self._lock = threading.Lock()

    def append(
        self,
        *,
        bucket: str,
        key: str | None,
        method: str,
        version_id: str | None = None,
        delete_marker: bool = False,
        size: int | None = None,
    ) -> int:
        """Append a change; returns its sequence number."""
        with self._lock:
            self._seq += 1
            self._events.append(
                Change(self._seq, time.time(), bucket, key, method, version_id, delete_marker, size)
            )
            if len(self._events) > self._limit + self._limit // 4:
                del self._events[: len(self._events) - self._limit]  # amortised: once per limit/4
            return self._seq

    def since(self, seq: int, limit: int = 10_000) -> dict[str, Any]:
        with self._lock:
            oldest = self._events[0].seq if self._events else self._seq + 1
            truncated = seq + 1 < oldest and seq < self._seq
            start = max(0, seq + 1 - oldest)
            events = [asdict(e) for e in self._events[start : start + limit]]
            return {"boot_id": self.boot_id, "head": self._seq, "truncated": truncated, "events": events}


def _is_s3(environ: dict[str, Any]) -> bool:
    auth = environ.get("HTTP_AUTHORIZATION", "")
    return "/s3/aws4_request" in auth


def _split_path(path: str) -> tuple[str | None, str | None]:
    parts = path.lstrip("/").split("/", 1)
    bucket = unquote(parts[0]) if parts and parts[0] else None
    key = unquote(parts[1]) if len(parts) > 1 and parts[1] else None
    return bucket, key


def _object_action(method: str, query: dict[str, list[str]]) -> str | None:
    """The IAM action a path-style object request needs, or None if it is not a write."""
    if method == "PUT":
        if "tagging" in query or "acl" in query or "retention" in query or "legal-hold" in query:
            return None
        return "s3:PutObject"
    if method == "DELETE" and "uploadId" not in query and "tagging" not in query:
        return "s3:DeleteObject"
    if method == "POST" and "uploadId" in query:
        return "s3:PutObject"
    return None


def _buckets() -> dict[str, Any]:
    """moto's S3 buckets of the sandbox account (one dict, looked up once)."""
    global _BUCKETS
    if _BUCKETS is None:
        _BUCKETS = crossregion.store().buckets
    return _BUCKETS


_BUCKETS: dict[str, Any] | None = None


def _applies(statement: dict[str, Any], user_agent: str) -> bool:
    """Does the statement's condition hold for this request? moto ignores the condition operators
    it does not know (and denies on a failed one), so the one a failback's write fence uses -
    `StringNotLike`/`StringLike` on `aws:UserAgent` - is evaluated here, as S3 does; a statement
    with any other condition applies."""
    for operator, values in (statement.get("Condition") or {}).items():
        for context_key, patterns in values.items():
            if operator not in ("StringLike", "StringNotLike") or context_key.lower() != "aws:useragent":
                continue
            wanted = [patterns] if isinstance(patterns, str) else list(patterns)
            matched = any(fnmatch.fnmatchcase(user_agent, p) for p in wanted)
            if matched != (operator == "StringLike"):
                return False
    return True


def _denied(bucket_name: str, key: str, action: str, user_agent: str = "") -> bool:
    from moto.iam.access_control import IAMPolicy, PermissionResult

    bucket = _buckets().get(bucket_name)
    if bucket is None or bucket.policy is None:
        return False
    policy = json.loads(bucket.policy)
    statements = policy.get("Statement", [])
    statements = [statements] if isinstance(statements, dict) else statements
    policy["Statement"] = [s for s in statements if _applies(s, user_agent)]
    if not policy["Statement"]:
        return False
    result = IAMPolicy(json.dumps(policy)).is_action_permitted(action, f"arn:aws:s3:::{bucket_name}/{key}")
    return bool(result == PermissionResult.DENIED)


def _stored_replication(bucket_name: str) -> Any:
    bucket = _buckets().get(bucket_name)
    return getattr(bucket, "replication", None) if bucket is not None else None


def _local_bucket(bucket_name: str) -> bool:
    return bucket_name in _buckets()


def _status_line(status: int) -> str:
    return f"{status} {HTTPStatus(status).phrase}"


def _xml_error(start_response: Callable[..., Any], status: str, code: str, message: str) -> Iterable[bytes]:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    ).encode()
    start_response(status, [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
    return [body]


def _access_denied(start_response: Callable[..., Any], bucket: str, key: str) -> Iterable[bytes]:
    message = f"Access Denied: the bucket policy of {bucket} denies writes to {key} (mldr write fence?)"
    return _xml_error(start_response, "403 Forbidden", "AccessDenied", message)


_request = threading.local()

#: the checksum headers a write may carry (WSGI names), and the algorithm each one is
_CHECKSUM_HEADERS = {
    f"HTTP_X_AMZ_CHECKSUM_{name}": name for name in ("SHA256", "CRC64NVME", "CRC32C", "CRC32", "SHA1")
}


def _name_the_checksum_algorithm(environ: dict[str, Any]) -> None:
    """A write with `x-amz-checksum-<algorithm>` but no `x-amz-sdk-checksum-algorithm`: name it,
    so moto stores the checksum as S3 does. A CopyObject names the copy's algorithm with
    `x-amz-checksum-algorithm`: named too, as moto otherwise refuses a copy into a bucket with an
    Object Lock default retention for want of a Content-MD5, which a CopyObject (no body) never
    carries and S3 does not ask of it."""
    if "HTTP_X_AMZ_SDK_CHECKSUM_ALGORITHM" in environ:
        return
    if "HTTP_X_AMZ_COPY_SOURCE" in environ and environ.get("HTTP_X_AMZ_CHECKSUM_ALGORITHM"):
        environ["HTTP_X_AMZ_SDK_CHECKSUM_ALGORITHM"] = environ["HTTP_X_AMZ_CHECKSUM_ALGORITHM"]
        return
    for header, algorithm in _CHECKSUM_HEADERS.items():
        if environ.get(header):
            environ["HTTP_X_AMZ_SDK_CHECKSUM_ALGORITHM"] = algorithm
            return


def _user_agent(environ: dict[str, Any]) -> str:
    return str(environ.get("HTTP_USER_AGENT", ""))


def _exempt_replication_from_bucket_policy() -> None:
    """moto itself refuses object writes a bucket policy denies; let replication through.

    Real S3 replicates with `s3:ReplicateObject`, which a write fence on `s3:PutObject` does
    not deny. moto evaluates the policy for the request's thread, so a thread-local flag set by
    the middleware for a replicator request makes moto's check neutral for that request only.
    """
    from moto.iam.access_control import PermissionResult
    from moto.s3.models import FakeBucket

    original = FakeBucket.get_permission

    def get_permission(self: Any, action: str, resource: str) -> Any:
        if getattr(_request, "replicating", False):
            return PermissionResult.NEUTRAL
        return original(self, action, resource)

    FakeBucket.get_permission = get_permission  # type: ignore[method-assign]


def _opaque_kms_etags() -> None:
    """An SSE-KMS object's ETag, as S3 gives it: 32 hex digits that are not the MD5 of its bytes.

    Derived from the content MD5, the key and the version, so it is stable for one version (a
    conditional copy still matches it) and differs between a source and its replica - as in AWS,
    where comparing them by ETag would call every replica mismatched, or worse, never notice a
    difference. Multipart ETags ("...-N") are no content MD5 already and stay as they are.
    """
    import hashlib

    from moto.s3.models import FakeKey

    content_etag = FakeKey.etag

    def etag(self: Any) -> str:
        value: str = content_etag.fget(self)  # type: ignore[attr-defined]
        if self.encryption != "aws:kms" or "-" in value:
            return value
        seed = f"sse-kms:{self.kms_key_id}:{self.version_id}:{value}".encode()
        return f'"{hashlib.md5(seed, usedforsecurity=False).hexdigest()}"'

    FakeKey.etag = property(etag)  # type: ignore[method-assign,assignment]


def _copies_take_the_bucket_default_encryption() -> None:
    """A CopyObject without `x-amz-server-side-encryption`: the destination bucket's default, as S3.

    moto's copy onto the object's own key (a restore of an older version) falls back to AES256
    when the source was SSE-KMS, before its `put_object` would apply the bucket's default.
    """
    from moto.s3.models import S3Backend

    original = S3Backend.copy_object

    def copy_object(
        self: Any, src_key: Any, dest_bucket_name: str, dest_key_name: str, **kwargs: Any
    ) -> None:
        default = self.get_bucket(dest_bucket_name).encryption
        if not kwargs.get("encryption") and default:
            rule = default["Rule"]["ApplyServerSideEncryptionByDefault"]
            kwargs["encryption"] = rule["SSEAlgorithm"]
            kwargs["kms_key_id"] = kwargs.get("kms_key_id") or rule.get("KMSMasterKeyID")
        original(self, src_key, dest_bucket_name, dest_key_name, **kwargs)

    S3Backend.copy_object = copy_object  # type: ignore[method-assign,assignment]


def _paged_version_listing() -> None:
    """ListObjectVersions at a cost per page, as in S3, not per version in the bucket.

    moto deep-copies every version of the bucket (reading and re-buffering each one's bytes)
    for every page, so that it can mark IsLatest on copies: quadratic in the bucket's history
    (a 10,000-key restore's listings took minutes; a version listing is what both `mldr
    restore` and `rclone --s3-version-at` read). The same answer from a light view of only
    the versions the page can hold: names under the prefix, at or after the page's marker
    (each name's versions stay together, so IsLatest is decided as before). The loop below is
    moto 5.2's own, unchanged.
    """
    from moto.core.utils import unix_time_millis
    from moto.s3.models import FakeKey, S3Backend

    class Listed:
        """A stored version as one page lists it: IsLatest its own, the rest read through (not
        a copy of the FakeKey, whose finaliser would close the bytes the two share)."""

        __slots__ = ("is_latest", "stored")

        def __init__(self, stored: Any) -> None:
            self.stored = stored
            self.is_latest = False

        def __getattr__(self, name: str) -> Any:
            return getattr(self.stored, name)

    def list_object_versions(
        self: Any,
        bucket_name: str,
        delimiter: str | None = None,
        key_marker: str | None = None,
        max_keys: int | None = 1000,
        prefix: str = "",
        version_id_marker: str | None = None,
    ) -> tuple[list[Any], list[str], list[Any], str | None, str | None]:
        bucket = self.get_bucket(bucket_name)
        common_prefixes: set[str] = set()
        requested_versions: list[Any] = []
        delete_markers: list[Any] = []
        next_key_marker: str | None = None
        next_version_id_marker: str | None = None
        all_versions = [
            Listed(version)
            for name, versions in bucket.keys.iterlists()
            if name.startswith(prefix) and (key_marker is None or name >= key_marker)
            for version in versions
        ]
        all_versions.sort(key=lambda r: (r.name, -unix_time_millis(r.last_modified)))
        last_name = None
        skip_versions = True
        last_item_added: Any = None
        for version in all_versions:
            name = version.name
            version.is_latest = name != last_name
            if version.is_latest:
                last_name = name
            if skip_versions:
                if key_marker is None:
                    skip_versions = False
                elif not version_id_marker:
                    skip_versions = version.name < key_marker
                    continue
                elif version.name == key_marker and version.version_id == version_id_marker:
                    skip_versions = False
                    continue
                else:
                    continue
            is_common_prefix = False
            if delimiter and delimiter in name[len(prefix) :]:
                end_of_delimiter = len(prefix) + name[len(prefix) :].index(delimiter) + len(delimiter)
                prefix_including_delimiter = name[0:end_of_delimiter]
                if prefix_including_delimiter == key_marker:
                    continue
                common_prefixes.add(prefix_including_delimiter)
                name = prefix_including_delimiter
                is_common_prefix = True
            elif last_item_added:
                name = last_item_added.name
            if (
                max_keys is not None
                and len(requested_versions) + len(delete_markers) + len(common_prefixes) >= max_keys
            ):
                next_key_marker = name
                if is_common_prefix:
                    next_version_id_marker = None
                elif last_item_added is not None:
                    next_version_id_marker = last_item_added.version_id
                else:
                    next_version_id_marker = None
                break
            if not is_common_prefix:
                last_item_added = version
                if not isinstance(version.stored, FakeKey):
                    delete_markers.append(version)
                else:
                    requested_versions.append(version)
        return (
            requested_versions,
            sorted(common_prefixes),
            delete_markers,
            next_key_marker,
            next_version_id_marker,
        )

    S3Backend.list_object_versions = list_object_versions  # type: ignore[method-assign]


class SandboxS3Middleware:
    """Adds the change feed and write-fence enforcement in front of moto's dispatcher."""

    def __init__(
        self,
        app: Callable[..., Any],
        journal: ChangeJournal,
        name: str,
        replicator_url: str | None = None,
        peers: list[str] | None = None,
    ) -> None:
        self.app = app
        self.peers = [p.rstrip("/") for p in peers or []]
        self.journal = journal
        self.name = name
        self.replicator_url = replicator_url

    def _register_pending(self, bucket: str, seq: int) -> None:
        """Have the replicator take this write into its backlog before the client hears "done"."""
        if not self.replicator_url or not _stored_replication(bucket):
            return
        from mldr import http

        try:
            http.post(
                f"{self.replicator_url}/observe",
                params={"region": self.name, "seq": seq},
                timeout=OBSERVE_TIMEOUT,
            )
        except Exception as exc:  # best effort: the feed still carries the change
            log.debug("replicator not told about a write to %s: %s", bucket, exc)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_mldr/"):
            return self._own(path, environ, start_response)
        method = environ.get("REQUEST_METHOD", "GET")
        if method not in ("PUT", "POST", "DELETE") or not _is_s3(environ):
            return self.app(environ, start_response)  # type: ignore[no-any-return]

        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        bucket, key = _split_path(path)
        if bucket is None:
            return self.app(environ, start_response)  # type: ignore[no-any-return]
        if (
            method == "PUT"
            and key
            and self.peers
            and "HTTP_X_AMZ_COPY_SOURCE" in environ
            and "partNumber" not in query
        ):
            source = parse_copy_source(environ["HTTP_X_AMZ_COPY_SOURCE"])
            if source is not None and not _local_bucket(source.bucket):
                return self._copy_from_peer(environ, start_response, source)
        action = _object_action(method, query) if key else None
        if key and method in ("PUT", "POST"):
            _name_the_checksum_algorithm(environ)
        replicating = environ.get(REPLICATION_HEADER, "").lower() == "true"
        if key and action and not replicating and _denied(bucket, key, action, _user_agent(environ)):
            log.info("refused %s %s/%s: denied by bucket policy", action, bucket, key)
            return _access_denied(start_response, bucket, key)
        replicated_as = "s3:ReplicateDelete" if method == "DELETE" else "s3:ReplicateObject"
        if key and action and replicating and _denied(bucket, key, replicated_as):
            # A replica guard (S3 evaluates s3:Replicate* for a replication role's writes).
            log.info("refused replication of %s/%s: denied by bucket policy", bucket, key)
            return _access_denied(start_response, bucket, key)

        status: list[str] = []
        response_headers: dict[str, str] = {}
        # The policy was evaluated above, conditions included; moto's own check (which cannot
        # read a condition) is made neutral for an object write that passed it.
        _request.replicating = replicating or bool(key and action)

        def recording_start_response(s: str, headers: list[Any], exc_info: Any = None) -> Any:
            status.append(s)
            response_headers.update((k.lower(), v) for k, v in headers)
            return start_response(s, headers, exc_info) if exc_info else start_response(s, headers)

        try:
            result = self.app(environ, recording_start_response)
        finally:
            _request.replicating = False
        ok = bool(status) and status[0][:1] == "2"
        if ok:
            if key and action:
                size = environ.get("HTTP_X_AMZ_DECODED_CONTENT_LENGTH") or environ.get("CONTENT_LENGTH")
                copying = "HTTP_X_AMZ_COPY_SOURCE" in environ
                self._record_write(
                    bucket,
                    key,
                    method,
                    version_id=response_headers.get("x-amz-version-id"),
                    delete_marker=response_headers.get("x-amz-delete-marker", "").lower() == "true",
                    size=int(size) if size and method == "PUT" and not copying else None,
                    replicating=replicating,
                )
            elif key is None and method == "POST" and "delete" in query:
                # DeleteObjects: S3 replicates each delete marker it makes, as it does a DELETE's.
                body = b"".join(result)
                for deleted, version_id in _delete_markers_made(body):
                    self._record_write(
                        bucket,
                        deleted,
                        "DELETE",
                        version_id=version_id,
                        delete_marker=True,
                        replicating=replicating,
                    )
                return [body]
            elif key is None and method in ("PUT", "POST", "DELETE"):
                # Bucket-level writes: rules, policy, versioning.
                self.journal.append(bucket=bucket, key=None, method=method)
        return result  # type: ignore[no-any-return]

    def _record_write(
        self,
        bucket: str,
        key: str,
        method: str,
        *,
        version_id: str | None,
        delete_marker: bool = False,
        size: int | None = None,
        replicating: bool = False,
    ) -> None:
        """A successful object write: into the change feed, and into the replication backlog."""
        seq = self.journal.append(
            bucket=bucket,
            key=key,
            method=method,
            version_id=version_id,
            delete_marker=delete_marker,
            size=size,
        )
        if not replicating:
            self._register_pending(bucket, seq)

    def _copy_from_peer(
        self, environ: dict[str, Any], start_response: Callable[..., Any], source: CopySource
    ) -> Iterable[bytes]:
        """S3's cross-region CopyObject (`mldr.sandbox.crossregion`), through this region's
        write fence, change feed and replication status like any other write."""
        from moto.core.request import EnvironHeaders

        bucket, key = _split_path(environ.get("PATH_INFO", ""))
        assert bucket is not None and key is not None
        # moto never sees this request: the caller's policies are checked here, as S3 checks them
        # (read the source, write the destination)
        read = "s3:GetObjectVersion" if source.version_id else "s3:GetObject"
        for action, arn in ((read, f"{source.bucket}/{source.key}"), ("s3:PutObject", f"{bucket}/{key}")):
            refused = iam.refusal(EnvironHeaders(environ), action, f"arn:aws:s3:::{arn}")
            if refused:
                return _xml_error(start_response, "403 Forbidden", "AccessDenied", html.escape(refused))
        try:
            fetched = crossregion.fetch(self.peers, source)
        except crossregion.CopyFailed as exc:
            log.info("cross-region copy from s3://%s/%s failed: %s", source.bucket, source.key, exc)
            return _xml_error(start_response, _status_line(exc.status), exc.code, exc.message)
        wanted = environ.get("HTTP_X_AMZ_COPY_SOURCE_IF_MATCH")
        if wanted and wanted.strip('"') != fetched.etag.strip('"'):
            return _xml_error(
                start_response,
                "412 Precondition Failed",
                "PreconditionFailed",
                "At least one of the pre-conditions you specified did not hold",
            )
        if _denied(bucket, key, "s3:PutObject", _user_agent(environ)):
            log.info("refused a copy into %s/%s: denied by bucket policy", bucket, key)
            return _access_denied(start_response, bucket, key)
        try:
            written = crossregion.write_copy(bucket, key, fetched, EnvironHeaders(environ))
        except crossregion.CopyFailed as exc:
            return _xml_error(start_response, _status_line(exc.status), exc.code, exc.message)
        version_id = str(written.version_id) if written.version_id != "null" else None
        self._record_write(bucket, key, "PUT", version_id=version_id)
        result = (
            '<?xml version="1.0" encoding="UTF-8"?><CopyObjectResult>'
            f"<LastModified>{written.last_modified_ISO8601}</LastModified>"
            f"<ETag>{html.escape(written.etag)}</ETag></CopyObjectResult>"
        ).encode()
        reply = [("Content-Type", "application/xml"), ("Content-Length", str(len(result)))]
        reply.append(("Date", formatdate(usegmt=True)))
        reply += [(k, v) for k, v in written.response_dict.items() if k.lower().startswith("x-amz-")]
        if fetched.version_id:
            reply.append(("x-amz-copy-source-version-id", fetched.version_id))
        start_response("200 OK", reply)
        return [result]

    def _own(self, path: str, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if path == "/_mldr/changes":
            query = parse_qs(environ.get("QUERY_STRING", ""))
            since = int(query.get("since", ["0"])[0])
            limit = int(query.get("limit", ["10000"])[0])
            payload: dict[str, Any] = self.journal.since(since, limit)
        elif path == "/_mldr/replication":
            # moto's GetBucketReplication answers DeleteMarkerReplication "Disabled" and an
            # empty prefix whatever was put; the replicator reads the stored rules here instead.
            query = parse_qs(environ.get("QUERY_STRING", ""))
            payload = {"replication": _stored_replication(query.get("bucket", [""])[0])}
        elif path == "/_mldr/object":
            status, headers, body = crossregion.serve_object(environ.get("QUERY_STRING", ""))
            start_response(_status_line(status), [*headers, ("Content-Length", str(len(body)))])
            return [body]
        elif path == "/_mldr/authorized":
            payload = iam.authorized()
        elif path == "/_mldr/ping":
            payload = {
                "name": self.name,
                "boot_id": self.journal.boot_id,
                "head": self.journal.since(10**18)["head"],
            }
        else:
            start_response("404 Not Found", [("Content-Type", "application/json")])
            return [b'{"error": "unknown sandbox endpoint"}']
        body = json.dumps(payload).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


def _fast_backend_lookup() -> None:
    """moto looks up an account's backends on every request (several times) by checking
    membership in a list of every service's backends with a Python-level `__eq__`, under a
    global lock: a quarter of the server's CPU for a small request here. Once an account's
    backends exist and are registered, the lookup is a dict access."""
    from moto.core.base_backend import BackendDict

    original = BackendDict._create_account_specific_backend

    def create_once(self: Any, account_id: str) -> None:
        if dict.__contains__(self, account_id) and getattr(self, "_mldr_registered", False):
            return
        original(self, account_id)
        self._mldr_registered = True

    BackendDict._create_account_specific_backend = create_once  # type: ignore[method-assign]


def _dispatcher() -> Any:
    """moto's request dispatcher, with each host's backend looked up once.

    moto looks the backend up on every request, under a lock all requests share, by listing its
    own package directory and matching some 200 URL patterns: 1.7 ms per request on this
    machine, more than moto takes to answer a small GET. The answer depends on the host
    alone (`s3.us-east-1.amazonaws.com`, inferred from the request), so it is cached.
    """
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    class CachingDispatcher(DomainDispatcherApplication):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(create_backend_app)
            self._backend_by_host: dict[str | None, Any] = {}

        def get_backend_for_host(self, host: str | None) -> Any:
            # called under the dispatcher's own lock
            if host not in self._backend_by_host:
                self._backend_by_host[host] = super().get_backend_for_host(host)
            return self._backend_by_host[host]

    return CachingDispatcher()


def _delete_markers_made(body: bytes) -> list[tuple[str, str]]:
    """(key, delete marker version id) of each delete marker a DeleteObjects answer reports made
    (deleting a named version makes none, and S3 does not replicate that)."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError:
        return []
    made = []
    for deleted in root:
        if not deleted.tag.endswith("Deleted"):
            continue
        fields = {child.tag.rsplit("}", 1)[-1]: (child.text or "") for child in deleted}
        if fields.get("DeleteMarker", "").lower() == "true" and fields.get("DeleteMarkerVersionId"):
            made.append((fields["Key"], fields["DeleteMarkerVersionId"]))
    return made


def build_app(
    name: str, replicator_url: str | None = None, peers: list[str] | None = None
) -> SandboxS3Middleware:
    _exempt_replication_from_bucket_policy()
    _opaque_kms_etags()
    _copies_take_the_bucket_default_encryption()
    _fast_backend_lookup()
    _paged_version_listing()
    return SandboxS3Middleware(_dispatcher(), ChangeJournal(), name, replicator_url, peers)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_listen_arguments(parser)
    parser.add_argument("--name", required=True, help="region name (or 'global'), for logs")
    parser.add_argument("--replicator-url", help="told of each replicated write before it is acknowledged")
    parser.add_argument(
        "--peer", action="append", default=[], help="another region's server, for cross-region copies"
    )
    parser.add_argument(
        "--principals", help="JSON file of the sandbox's IAM principals: install them and enforce IAM"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # One access-log line per S3 request cost ~5% of the server's CPU and buried the sandbox's
    # own messages; errors are still logged.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    app = build_app(args.name, args.replicator_url, args.peer)
    if args.principals:
        with open(args.principals) as file:
            iam.install(iam.principals_from_json(json.load(file)))
        iam.enforce(audit_only=os.environ.get(iam.AUDIT_ENV) == "1")
    sock = server_socket(args)
    server = make_server(
        HOST,
        port_of(sock),
        app,
        threaded=True,
        request_handler=MotoRequestHandler,
        fd=sock.fileno(),
    )
    log.info("moto server for %s listening on %s:%d", args.name, HOST, port_of(sock))
    server.serve_forever()


if __name__ == "__main__":
    main()
