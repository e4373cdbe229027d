"""Cross-region CopyObject in the sandbox: what S3 does inside itself, between two moto servers.

S3 copies from a bucket in another region in one request to the receiving region: the bytes
never pass through the client, and S3's own fabric reads the source, not its public API. moto
only knows its own buckets, so the sandbox plays that fabric:

- the source region's server answers `GET /_mldr/object?bucket=B&key=K[&versionId=V]` with the
  object's bytes, ETag, version id and metadata, read straight from its moto store
  (`serve_object`) - no SigV4, no request parsing by moto's web layer;
- the receiving region's server fetches it (`fetch`) and writes it into its own moto store
  (`write_copy`) as S3 writes a copy: a new version, the bucket's default encryption and
  object-lock retention, the source's metadata unless the request replaces it, the source's
  additional checksum (SHA-256, CRC32...).

The receiving server's middleware (`mldr.sandbox.motoserver`) does the rest of what any write
gets there: the write fence, the change feed, the replication status.

Reading and writing moto's store directly (instead of a signed GET and a PUT through moto's
Flask app, as the first version did) took the copy from about two public requests' worth of
server work to about one; every other request still goes through moto unchanged.
"""

from __future__ import annotations

import http.client
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

ACCOUNT_ID = "123456789012"
#: a store error's code -> its HTTP status (the codes a copy can meet; others are 400)
_STATUS = {"NoSuchBucket": 404, "NoSuchKey": 404, "NoSuchVersion": 404}
#: the source's additional checksum, `ALGORITHM:value`: S3 keeps it on a copy
_CHECKSUM_HEADER = "x-mldr-checksum"


@dataclass(frozen=True)
class CopySource:
    bucket: str
    key: str
    version_id: str | None


def parse_copy_source(header: str) -> CopySource | None:
    """`x-amz-copy-source`: `[/]bucket/key[?versionId=V]`, the key url-encoded."""
    path, _, query = header.partition("?")
    bucket, _, key = unquote(path).lstrip("/").partition("/")
    if not bucket or not key:
        return None
    version = parse_qs(query).get("versionId", [None])[0]
    return CopySource(bucket, key, version)


class CopyFailed(Exception):
    """S3 would answer the copy with this error."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message = status, code, message


def store() -> Any:
    """moto's S3 store for the sandbox's account, in this process."""
    from moto.s3.models import s3_backends

    return s3_backends[ACCOUNT_ID]["aws"]


def _as_copy_failed(exc: Exception) -> CopyFailed:
    code = str(getattr(exc, "code", "InternalError"))
    return CopyFailed(_STATUS.get(code, 400), code, str(getattr(exc, "message", exc)))


# -- the source region's side ---------------------------------------------------------------


def serve_object(query_string: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """The answer to `GET /_mldr/object`: the object (or the error S3 would give a copy)."""
    from moto.core.exceptions import ServiceException

    query = parse_qs(query_string)
    bucket, key = query.get("bucket", [""])[0], query.get("key", [""])[0]
    version_id = query.get("versionId", [None])[0]
    try:
        found = store().get_object(bucket, key, version_id=version_id)
    except ServiceException as exc:  # NoSuchBucket
        failed = _as_copy_failed(exc)
        return failed.status, [("x-mldr-error", failed.code)], failed.message.encode()
    if found is None:  # no such key, or its latest version is a delete marker
        code = "NoSuchVersion" if version_id else "NoSuchKey"
        return 404, [("x-mldr-error", code)], f"{bucket}/{key} not found".encode()
    headers = [(name, str(value)) for name, value in found.metadata.items()]
    headers.append(("ETag", found.etag))
    if found.checksum_algorithm and found.checksum_value:
        headers.append((_CHECKSUM_HEADER, f"{found.checksum_algorithm}:{found.checksum_value}"))
    if found.version_id and found.version_id != "null":
        headers.append(("x-amz-version-id", str(found.version_id)))
    return 200, headers, found.value


# -- the receiving region's side ------------------------------------------------------------


@dataclass(frozen=True)
class Fetched:
    body: bytes
    etag: str  # quoted, as S3 writes it
    version_id: str | None
    metadata: dict[str, str]  # x-amz-meta-* and the settable content headers
    checksum: tuple[str, str] | None = None  # (algorithm, value) of the source's additional checksum


def _get(peer: str, path: str, *, timeout_seconds: float) -> tuple[int, dict[str, str], bytes]:
    """One GET to a peer's server: status, headers (as sent), body.

    Plain `http.client`, one connection per fetch (the peer closes each connection anyway): half
    the CPU of a pooled urllib3 request, and this runs inside the receiving region's server,
    once per copy, under its interpreter lock.
    """
    where = urlsplit(peer)
    connection = http.client.HTTPConnection(where.hostname or "127.0.0.1", where.port, timeout=1.0)
    try:
        connection.connect()
        assert connection.sock is not None
        connection.sock.settimeout(timeout_seconds)  # connected: now the peer may take its time
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def fetch(peers: list[str], source: CopySource, *, timeout_seconds: float = 10.0) -> Fetched:
    """The source object from whichever peer region holds its bucket (`CopyFailed` if none does)."""
    from moto.s3.utils import metadata_from_headers

    params = {"bucket": source.bucket, "key": source.key}
    if source.version_id:
        params["versionId"] = source.version_id
    path = "/_mldr/object?" + urlencode(params, quote_via=quote)
    for peer in peers:
        try:
            status, headers, body = _get(peer, path, timeout_seconds=timeout_seconds)
        except OSError as exc:  # the peer region is down: S3 would fail the copy too
            raise CopyFailed(503, "ServiceUnavailable", f"{peer}: {exc}") from exc
        code = headers.get("x-mldr-error")
        if status == 200:
            algorithm, _, value = headers.get(_CHECKSUM_HEADER, "").partition(":")
            return Fetched(
                body=body,
                etag=headers.get("ETag", ""),
                version_id=headers.get("x-amz-version-id"),
                metadata=dict(metadata_from_headers(headers)),
                checksum=(algorithm, value) if value else None,
            )
        if code != "NoSuchBucket":  # the bucket is there; the key or version is not
            raise CopyFailed(status, code or "InternalError", body.decode(errors="replace"))
    raise CopyFailed(404, "NoSuchBucket", f"{source.bucket}: no such bucket in any region")


def write_copy(bucket_name: str, key: str, fetched: Fetched, headers: Any) -> Any:
    """Write the fetched object as S3 writes a copy; `headers` are the CopyObject request's.

    Returns moto's new key. What S3 takes from the request: storage class, encryption, object
    lock and, with `x-amz-metadata-directive: REPLACE`, the metadata; the rest as the bucket's
    defaults say (default encryption, default retention, the bucket's ACL).
    """
    from moto.core.exceptions import ServiceException
    from moto.s3.utils import metadata_from_headers

    s3 = store()
    try:
        bucket = s3.get_bucket(bucket_name)
        lock_mode = headers.get("x-amz-object-lock-mode")
        lock_until = headers.get("x-amz-object-lock-retain-until-date")
        legal_hold = headers.get("x-amz-object-lock-legal-hold")
        if not (lock_mode or lock_until or legal_hold == "ON") and (
            bucket.object_lock_enabled and bucket.has_default_lock
        ):
            lock_until, lock_mode = bucket.default_retention(), bucket.default_lock_mode
        bucket_key = headers.get("x-amz-server-side-encryption-bucket-key-enabled")
        written = s3.put_object(
            bucket_name,
            key,
            fetched.body,
            storage=headers.get("x-amz-storage-class", "STANDARD"),
            encryption=headers.get("x-amz-server-side-encryption"),
            kms_key_id=headers.get("x-amz-server-side-encryption-aws-kms-key-id"),
            bucket_key_enabled=bucket_key.lower() if bucket_key is not None else None,
            lock_mode=lock_mode,
            lock_legal_status=legal_hold,
            lock_until=lock_until,
            checksum_value=fetched.checksum[1] if fetched.checksum else None,
        )
    except ServiceException as exc:
        raise _as_copy_failed(exc) from exc
    if fetched.checksum:
        written.checksum_algorithm = fetched.checksum[0]
    replace = headers.get("x-amz-metadata-directive", "COPY").upper() == "REPLACE"
    written.set_metadata(metadata_from_headers(dict(headers.items())) if replace else fetched.metadata)
    written.set_acl(bucket.acl)
    return written
