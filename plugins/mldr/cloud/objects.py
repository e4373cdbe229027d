"""An object store in one region: versioned buckets of keys (S3, Azure Blob, Cloud Storage).

What the checks, actions and runbooks ask of it, in cloud-neutral terms: the current objects of
a bucket (listed fast, page by page, for verification and resync), the versions of a key, one
object's metadata and bytes, small JSON documents (reports, audit records), a conditional copy
from the same bucket in another region, and the bucket's settings that disaster recovery depends
on: its write fence, replication, default encryption, versioning and lifecycle.

Failures are `mldr.errors`: `NotFound` (no such bucket, key, version or setting),
`AccessDenied` (a fenced bucket refuses writes this way too), `PreconditionFailed` (a
conditional copy or read found the object changed), `RegionUnreachable` (no answer).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from mldr.cloud.calls import Timeouts

#: The write fence's name where the store shows its access rules (an S3 bucket policy's Sid).
WRITE_FENCE = "MldrWriteFence"
#: The replica guard's name there: the bucket refuses what replication delivers into it.
REPLICA_GUARD = "MldrReplicaGuard"


def parse_time(value: str) -> float:
    """Epoch seconds of an ISO 8601 UTC time as object stores write it."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True, slots=True)
class ListedObject:
    """One current object as a listing reports it."""

    key: str
    size: int
    etag: str  # without the quotes
    #: as the store writes it (ISO 8601, UTC, fixed width): sorts in time order without being
    #: parsed, which matters at ~3 us a key when only the few differing keys need an age
    modified: str
    checksum_algorithm: str | None = None

    @property
    def last_modified(self) -> float:
        """Epoch seconds."""
        return parse_time(self.modified)


@dataclass(frozen=True)
class Page:
    """One page of a listing: objects in key order, and the "directories" when asked for."""

    objects: list[ListedObject]
    common_prefixes: list[str]
    truncated: bool
    next_token: str | None


@dataclass(frozen=True)
class ObjectVersion:
    """One version of a key, or a delete marker (`deleted`)."""

    key: str
    version_id: str
    modified: float  # epoch seconds
    etag: str  # without the quotes; "" for a delete marker
    size: int
    latest: bool
    deleted: bool = False


class ReplicationState(StrEnum):
    """Where a version stands in the bucket's replication (the store reports it per version)."""

    PENDING = "PENDING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    REPLICA = "REPLICA"
    UNKNOWN = "UNKNOWN"


class Versioning(StrEnum):
    """A bucket's versioning: only ENABLED keeps the history a point-in-time restore needs."""

    ENABLED = "Enabled"
    SUSPENDED = "Suspended"
    OFF = "off"


@dataclass(frozen=True)
class ObjectHead:
    """One object's metadata, without its bytes."""

    key: str
    size: int
    etag: str  # without the quotes
    version_id: str | None = None
    modified: float | None = None
    content_type: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    replication: ReplicationState = ReplicationState.UNKNOWN
    #: the stored SHA-256 (base64) when the object was written with one (asked for with checksum)
    sha256: str | None = None
    #: FULL_OBJECT or COMPOSITE (a checksum of the parts' checksums), when the store says
    checksum_type: str | None = None
    #: the stored CRC64NVME (base64), when written with one: always of the whole object, multipart too
    crc64nvme: str | None = None
    #: encrypted with a managed key (its ETag is then no digest of its bytes)
    kms: bool = False


@dataclass(frozen=True)
class StoredObject:
    """One object's bytes and metadata, as read."""

    head: ObjectHead
    body: bytes


class Lister(Protocol):
    """Fast listings of one bucket's current objects, in key order, page by page.

    `max_in_flight` (given when the lister is made) caps the requests out at once whatever
    number of streams read through it.
    """

    @property
    def bucket(self) -> str: ...

    @property
    def region(self) -> str: ...

    @property
    def endpoint(self) -> str:
        """Where the requests go: local endpoints are listed with less concurrency."""
        ...

    @property
    def requests(self) -> int:
        """How many requests this lister has sent (for reports and benchmarks)."""
        ...

    def page(
        self,
        *,
        prefix: str,
        token: str | None = None,
        start_after: str | None = None,
        delimiter: str | None = None,
    ) -> Page: ...

    def pages(self, *, prefix: str) -> Iterator[Page]: ...

    def objects(self, *, prefix: str) -> Iterator[ListedObject]: ...

    def probe(self, timeouts: Timeouts) -> None:
        """Ask for the bucket once with `timeouts`: `NotFound`, `RegionUnreachable`... if not there."""
        ...


class ObjectStore(Protocol):
    """An object store in one region: versioned buckets of keys (S3, Azure Blob, Cloud Storage)."""

    @property
    def region(self) -> str: ...

    @property
    def timeouts(self) -> Timeouts:
        """The limits this store's calls run with."""
        ...

    @property
    def endpoint(self) -> str:
        """Where its requests go: servers on this machine are listed with less concurrency."""
        ...

    # --- current state, versions, objects ---------------------------------------------------

    def lister(
        self, bucket: str, *, timeouts: Timeouts | None = None, max_in_flight: int | None = None
    ) -> Lister:
        """The fast listing of `bucket` (verification, resync); `timeouts`: the store's when None."""
        ...

    def probe(self, bucket: str) -> None:
        """Does the bucket answer? Raises `NotFound`, `AccessDenied`, `RegionUnreachable`..."""
        ...

    def list_objects(
        self, bucket: str, *, prefix: str = "", start_after: str | None = None
    ) -> Iterator[ListedObject]:
        """The current objects under `prefix`, in key order (small listings: reports, canaries)."""
        ...

    def versions(self, bucket: str, *, prefix: str = "") -> Iterator[ObjectVersion]:
        """Every version and delete marker under `prefix`, in key order, each key's newest first."""
        ...

    def latest_version(self, bucket: str, key: str) -> ObjectVersion | None:
        """The newest version or delete marker of exactly `key` (None: it has no history here)."""
        ...

    def head(
        self, bucket: str, key: str, *, version_id: str | None = None, checksum: bool = False
    ) -> ObjectHead: ...

    def get(
        self,
        bucket: str,
        key: str,
        *,
        version_id: str | None = None,
        if_match: str | None = None,
        checksum: bool = False,
    ) -> StoredObject:
        """The object's bytes; `if_match` (an ETag) reads only that state (`PreconditionFailed`)."""
        ...

    def stream(
        self, bucket: str, key: str, *, chunk_size: int = 1024 * 1024, version_id: str | None = None
    ) -> Iterator[bytes]:
        """The object's bytes in chunks, never all in memory at once (hashing big objects)."""
        ...

    def copy_version(self, bucket: str, key: str, version_id: str, *, to_key: str) -> ObjectHead:
        """Copy one version of `key` to `to_key` in the same bucket, server-side, as a new current
        version with a stored SHA-256 (a point-in-time restore). Returns the new version's head,
        `sha256` included."""
        ...

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
        """Write an object; with `sha256` (base64) the store refuses bytes that do not match it.
        Returns the new version's id when the bucket is versioned."""
        ...

    def get_json(self, bucket: str, key: str) -> Any: ...

    def put_json(self, bucket: str, key: str, document: Any, *, indent: int | None = None) -> None:
        """Write `document` as JSON (values JSON does not know, such as datetimes, as strings)."""
        ...

    def delete(self, bucket: str, key: str) -> None:
        """Delete the current object (a versioned bucket keeps its history under a delete marker)."""
        ...

    def delete_keys(self, bucket: str, keys: Iterable[str]) -> None:
        """Delete the current objects of these keys (delete markers; the history stays, for the
        bucket's lifecycle to expire). Raises naming the keys S3 did not delete."""
        ...

    def copy_in(
        self, *, source_bucket: str, bucket: str, key: str, etag: str, version_id: str | None = None
    ) -> None:
        """Copy `key` from `source_bucket` (the same dataset's bucket in another region) into
        `bucket` here, server-side, only if the source still has `etag` (else
        `PreconditionFailed`), verified by the copy's ETag."""
        ...

    # --- bucket settings --------------------------------------------------------------------

    def is_fenced(self, bucket: str) -> bool:
        """Does the write fence (object writes and deletes denied) stand on `bucket`?"""
        ...

    def fence(self, bucket: str, *, pass_token: int | None = None) -> bool:
        """Deny object writes and deletes, keeping the bucket's other access rules and its
        replication. With `pass_token` (a DR operation's fencing token) the writes of a store
        made `with_fence_pass(pass_token)` still go through - the operation's own resync - and
        nobody else's. Returns False when exactly this fence was already there."""
        ...

    def with_fence_pass(self, token: int) -> ObjectStore:
        """This store, its object writes and deletes passing a fence put with `pass_token=token`."""
        ...

    def lift_fence(self, bucket: str) -> bool:
        """Remove the write fence; returns False when there was none."""
        ...

    def refuse_replicas(self, bucket: str) -> bool:
        """Refuse what replication delivers into `bucket` (S3: deny `s3:Replicate*`; the
        replication then FAILS at its source). Clients' own writes are unaffected. Returns
        False when the guard was already there."""
        ...

    def accept_replicas(self, bucket: str) -> bool:
        """Remove the replica guard; returns False when there was none."""
        ...

    def replication(self, bucket: str) -> Mapping[str, Any] | None:
        """The bucket's replication configuration, in the store's own document form (None: none)."""
        ...

    def set_replication(self, bucket: str, configuration: Mapping[str, Any]) -> None: ...

    def remove_replication(self, bucket: str) -> None: ...

    def default_kms_key(self, bucket: str) -> bool:
        """Does the bucket encrypt new objects with a managed key by default? (Its objects' ETags
        are then not digests of their bytes.) `AccessDenied` when it may not be read: fails closed."""
        ...

    def versioning(self, bucket: str) -> Versioning: ...

    def object_lock_days(self, bucket: str) -> int | None:
        """The bucket's Object Lock default retention in days (a year as 365); None: no Object
        Lock, or no default retention (a version is then locked only if written with one)."""
        ...

    def lifecycle_rules(self, bucket: str) -> list[Mapping[str, Any]]:
        """The bucket's lifecycle rules in the store's document form ([]: none)."""
        ...


def streamed_sha256(store: ObjectStore, bucket: str, key: str, *, version_id: str | None = None) -> bytes:
    """The SHA-256 of an object's bytes (one version's, with `version_id`), read in chunks: for
    versions stored without a checksum, and big ones that must not sit in memory whole.
    The raw digest: `.hex()` compares with a recorded hex digest, base64 with a stored checksum."""
    digest = hashlib.sha256()
    for chunk in store.stream(bucket, key, version_id=version_id):
        digest.update(chunk)
    return digest.digest()
