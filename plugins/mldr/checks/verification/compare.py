"""The pure comparison logic of a verification: content verdicts from listings and stored
checksums, the class of a differing key, retention rules against the policy, the versions a key
must keep, and the restore-test sampler. No I/O (unit-tested in tests/unit/test_verification_logic.py).
"""

from __future__ import annotations

import base64
import heapq
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mldr.checks.listing import ListedObject
from mldr.checks.replication_status import ReplicationState
from mldr.checks.verification.model import RESERVED_PREFIX, Basis, Difference, Finding
from mldr.cloud.objects import ObjectHead
from mldr.topology import Dataset

MD5_ETAG = re.compile(r"^[0-9a-f]{32}$")


def is_content_etag(etag: str) -> bool:
    """An ETag that is the MD5 of the bytes: single-part upload (multipart ETags end in -N)."""
    return bool(MD5_ETAG.match(etag.strip('"').lower()))


def listing_verdict(a: ListedObject, b: ListedObject, *, kms: bool) -> tuple[Basis, bool | None]:
    """Compare two listed objects: (basis, equal), equal None when a checksum must decide.

    Different ETags that are both MD5s are not final either: an object uploaded with SSE-KMS
    into a bucket whose default is not KMS has an ETag that is no content hash, and the listing
    cannot tell. The caller confirms them with HEAD (which names the encryption).
    """
    if a.size != b.size:
        return Basis.SIZE, False
    if kms or not (is_content_etag(a.etag) and is_content_etag(b.etag)):
        return Basis.SHA256, None
    if a.etag.strip('"').lower() == b.etag.strip('"').lower():
        return Basis.ETAG, True
    return Basis.ETAG, None


@dataclass(frozen=True)
class StoredChecksum:
    """What a HEAD with ChecksumMode=ENABLED says about an object's content."""

    sha256: str | None  # base64, possibly with a "-N" part-count suffix (composite)
    composite: bool
    kms: bool
    etag: str
    size: int
    crc64nvme: str | None = None  # base64, always of the whole object

    @classmethod
    def from_head(cls, head: ObjectHead) -> StoredChecksum:
        value = head.sha256
        etag = head.etag
        kind = head.checksum_type
        # S3 keeps SHA-256 of a multipart upload only as a checksum of the part checksums; some
        # S3 implementations omit the type and the "-N" suffix, the multipart ETag still tells.
        composite = kind == "COMPOSITE" or bool(value and "-" in value) or (kind is None and "-" in etag)
        return cls(
            sha256=value or None,
            composite=composite,
            kms=head.kms,
            etag=etag,
            size=head.size,
            crc64nvme=head.crc64nvme or None,
        )

    @property
    def digest(self) -> str | None:
        return self.sha256.split("-", 1)[0] if self.sha256 else None


def stored_verdict(a: StoredChecksum, b: StoredChecksum) -> tuple[Basis, bool] | None:
    """Equal / different by stored checksum, and which one decided; None when none can.

    SHA-256 first; else CRC64NVME, which S3 keeps of the whole object even for a multipart upload,
    so it settles what a composite SHA-256 against a whole-object one cannot.
    """
    if a.digest is not None and b.digest is not None:
        if a.digest == b.digest:
            return Basis.SHA256, True
        # A composite (per-part) checksum and a whole-object one differ for the same bytes.
        if a.composite == b.composite:
            return Basis.SHA256, False
    if a.crc64nvme is not None and b.crc64nvme is not None:
        return Basis.CRC64NVME, a.crc64nvme == b.crc64nvme
    return None


def checksum_verdict(a: StoredChecksum, b: StoredChecksum) -> bool | None:
    """Equal / different by stored checksum (`stored_verdict`); None when none can settle it."""
    verdict = stored_verdict(a, b)
    return None if verdict is None else verdict[1]


def classify(diff: Difference, state: ReplicationState, age: float | None, threshold: float) -> Finding:
    """The class of a differing key, given its replication state and age.

    FAILED is always `failed`; PENDING within the threshold is `pending` (an age we cannot know -
    a delete marker waiting to replicate - counts as within); anything else is what the buckets
    show: missing, extra or mismatched.
    """
    if state is ReplicationState.FAILED:
        return Finding.FAILED
    if state is ReplicationState.PENDING and (age is None or age <= threshold):
        return Finding.PENDING
    return {
        Difference.ONLY_SOURCE: Finding.MISSING,
        Difference.ONLY_TARGET: Finding.EXTRA,
        Difference.CONTENT: Finding.MISMATCHED,
    }[diff]


def lifecycle_problems(rules: list[Mapping[str, Any]], dataset: Dataset, bucket: str) -> list[str]:
    """Lifecycle rules that would expire noncurrent versions sooner than the retention policy."""
    policy = dataset.retention
    problems = []
    for rule in rules:
        if rule.get("Status") != "Enabled":
            continue
        filt = rule.get("Filter") or {}
        prefix = filt.get("Prefix", (filt.get("And") or {}).get("Prefix", rule.get("Prefix", ""))) or ""
        if not (dataset.prefix.startswith(prefix) or prefix.startswith(dataset.prefix)):
            continue
        if prefix.startswith(RESERVED_PREFIX):
            # mldr's own scratch objects (canaries, drill data), which verification ignores:
            # infra/ expires their history after a day on purpose
            continue
        name = rule.get("ID", "(unnamed)")
        expiry = rule.get("NoncurrentVersionExpiration") or {}
        days = expiry.get("NoncurrentDays")
        if days is not None and int(days) < policy.noncurrent_days:
            problems.append(
                f"s3://{bucket}: lifecycle rule {name!r} expires noncurrent versions after {days} days; "
                f"the policy keeps them {policy.noncurrent_days} days"
            )
        newer = expiry.get("NewerNoncurrentVersions")
        if newer is not None and int(newer) + 1 < policy.min_versions:
            problems.append(
                f"s3://{bucket}: lifecycle rule {name!r} keeps {newer} noncurrent versions; the policy "
                f"needs {policy.min_versions} versions per key"
            )
    return problems


def object_lock_problems(lock_days: int | None, dataset: Dataset, bucket: str) -> list[str]:
    """A dataset the topology puts under Object Lock whose bucket has no default retention, or a
    shorter one: its new versions (a bad run's victims' history) could be deleted."""
    required = dataset.retention.object_lock_days
    if required is None:
        return []
    if lock_days is None:
        return [
            f"s3://{bucket}: no Object Lock default retention; the topology requires {required} days "
            "(Object Lock is set when a bucket is created: recreate it with Object Lock, or add the "
            "default retention with put-object-lock-configuration)"
        ]
    if lock_days < required:
        return [
            f"s3://{bucket}: Object Lock default retention is {lock_days} days; the topology requires "
            f"{required}"
        ]
    return []


@dataclass(frozen=True)
class VersionEntry:
    last_modified: float
    delete_marker: bool


def required_versions(
    entries: list[VersionEntry], *, min_versions: int, noncurrent_days: int, now: float
) -> int:
    """How many versions of a key the replica must hold: the policy's minimum, capped by the
    versions the source still has within the retention window (entries newest first)."""
    count = 0
    newer: VersionEntry | None = None
    for entry in entries:
        if not entry.delete_marker:
            noncurrent_since = newer.last_modified if newer is not None else None
            if noncurrent_since is None or now - noncurrent_since <= noncurrent_days * 86400:
                count += 1
        newer = entry
    return min(min_versions, count)


class Sampler:
    """The restore-test sample: the newest keys always, the rest uniformly at random.

    Not thread-safe on purpose: each partition keeps its own and `merge` combines them at the
    end (a lock per key would cost more than the sampling). The random part is a bottom-k
    sample (the keys with the k smallest random priorities), which merges exactly.
    """

    def __init__(self, size: int, *, seed: int | None = None) -> None:
        self.size = size
        self.newest_size = (size + 1) // 2 if size else 0
        self._newest: list[tuple[Any, str]] = []  # min-heap of (modification time, key)
        self._random: list[tuple[float, str]] = []  # max-heap (negated priorities) of size `size`
        self._rng = random.Random(seed)

    def offer(self, key: str, modified: str | float) -> None:
        """Offer a key; `modified` orders keys in time (an S3 timestamp string or epoch seconds)."""
        if not self.size:
            return
        newest = self._newest
        if len(newest) < self.newest_size:
            heapq.heappush(newest, (modified, key))
        elif modified > newest[0][0]:
            heapq.heapreplace(newest, (modified, key))
        priority = self._rng.random()
        pool = self._random
        if len(pool) < self.size:
            heapq.heappush(pool, (-priority, key))
        elif -priority > pool[0][0]:
            heapq.heapreplace(pool, (-priority, key))

    def merge(self, other: Sampler) -> None:
        for modified, key in other._newest:
            self._newest.append((modified, key))
        self._newest = heapq.nlargest(self.newest_size, self._newest)
        heapq.heapify(self._newest)
        self._random = heapq.nlargest(self.size, [*self._random, *other._random])
        heapq.heapify(self._random)

    def keys(self) -> list[str]:
        newest = [k for _, k in sorted(self._newest, reverse=True)]
        chosen = set(newest)
        rest = [k for _, k in sorted(self._random, reverse=True) if k not in chosen]
        return newest + rest[: self.size - len(newest)]


def b64_of_hex(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode("ascii")
