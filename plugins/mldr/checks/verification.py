"""Backup verification: is everything the standby region needs there, identical and restorable?

Read-only. For each dataset, the source bucket (the active region's) is compared with its replica:

- **Key set, size and content**, in one streaming LIST pass per side (`mldr.checks.listing`):
  content is compared by the listings' ETags where an ETag is a content hash (single-part, not
  SSE-KMS), and by the object's stored SHA-256 checksum (one HEAD per key and side, in parallel)
  where it is not (multipart, SSE-KMS); objects with no stored checksum are downloaded and hashed.
  The report says which basis each key was compared on.
- **Classes**: `missing` (in the source, not in the replica), `extra` (only in the replica),
  `mismatched` (both, different content - a same-size edit included), `pending` (replication
  not finished and younger than the dataset's RPO, or the given threshold: not an error yet),
  `failed` (replication reported FAILED). Pending and failed come from per-version replication
  status (`mldr.checks.replication_status`), looked up only for keys that differ.
- **Restore test**: a sample of replicas (the newest always included) is downloaded, hashed
  and compared with the source's record.
- **Point in time**: the replica bucket keeps versioning and noncurrent versions as long as the
  dataset's retention policy says; with `min_versions` > 1, keys whose replica history is shorter
  than required are reported.
- **ML recovery points** (model-artifacts datasets): for every model version's manifest, its
  whole dependency set - artifact, training snapshot, feature snapshot - exists in the standby
  region and matches the recorded SHA-256: "could we serve and retrain this exact model there?"

Keys under the reserved prefix `_mldr/` (canaries) are ignored. Memory grows with the
differences, not with the bucket.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import logging
import random
import re
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from mldr.checks.listing import (
    BucketLister,
    ListedObject,
    Partitioning,
    discover_partitions,
    merge,
    partition_concurrency,
    prefetched_objects,
)
from mldr.checks.replication_status import ReplicationState, StatusSource
from mldr.cloud.aws.clients import PROBE_TIMEOUTS, ClientFactory, Timeouts, aws_call, error_code
from mldr.errors import AwsError, ConfigurationError, MldrError
from mldr.topology import Dataset, DatasetKind, Topology

log = logging.getLogger(__name__)

RESERVED_PREFIX = "_mldr/"
#: Above this many differing keys, one backlog read replaces per-key status lookups.
STATUS_LOOKUP_LIMIT = 500
#: Keys per class kept in compact summaries (XCom, alerts); the stored report has them all.
SUMMARY_KEYS = 100
#: Keys compared on a non-ETag basis listed by name in the report (beyond: counted only).
BASIS_KEYS_LIMIT = 10_000
CHUNK = 1024 * 1024
LIST_READ_TIMEOUT = 60.0
_MD5_ETAG = re.compile(r"^[0-9a-f]{32}$")


class Finding(StrEnum):
    MISSING = "missing"
    EXTRA = "extra"
    MISMATCHED = "mismatched"
    PENDING = "pending"
    FAILED = "failed"


class Basis(StrEnum):
    """What a key's content was compared on."""

    ETAG = "etag"  # the listings' ETags, both MD5 of the content
    SHA256 = "sha256"  # the stored additional checksums (HEAD)
    DOWNLOAD = "download"  # no usable stored checksum: both sides downloaded and hashed
    SIZE = "size"  # sizes differ: content cannot be equal
    NOT_COMPARED = "not_compared"  # sampled mode: key set and size only


class Difference(StrEnum):
    ONLY_SOURCE = "only_source"
    ONLY_TARGET = "only_target"
    CONTENT = "content"


class Mode(StrEnum):
    FULL = "full"  # every key's content compared
    SAMPLED = "sampled"  # key set and sizes for all; checksum requests only for a sample


#: partitions open per request in flight on each side (see `listing_pass`)
RUN_AHEAD = 2


@dataclass(frozen=True)
class VerifyOptions:
    sample: int = 10
    mode: Mode = Mode.FULL
    #: pending older than this is not "pending" but missing/mismatched; None: the dataset's RPO
    pending_threshold_seconds: float | None = None
    #: list requests in flight per side; None: by where the endpoints are
    #: (see `listing.partition_concurrency`)
    workers: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.sample, bool) or not isinstance(self.sample, int) or self.sample < 0:
            raise ConfigurationError(f"sample size must be an integer >= 0, got {self.sample!r}")
        if self.pending_threshold_seconds is not None and self.pending_threshold_seconds <= 0:
            raise ConfigurationError(
                f"pending threshold must be a number of seconds > 0, got {self.pending_threshold_seconds!r}"
            )
        if self.workers is not None and self.workers < 1:
            raise ConfigurationError(f"workers must be at least 1, got {self.workers}")
        object.__setattr__(self, "mode", Mode(self.mode))

    def threshold(self, dataset: Dataset) -> float:
        return float(self.pending_threshold_seconds or dataset.rpo_seconds)


@dataclass(frozen=True)
class KeyFinding:
    key: str
    finding: Finding
    detail: str
    basis: Basis | None = None
    age_seconds: float | None = None
    size: int | None = None
    over_seconds: float | None = None  # how far past the threshold a stale pending key is

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "class": self.finding.value,
            "detail": self.detail,
            "basis": self.basis.value if self.basis else None,
            "age_seconds": None if self.age_seconds is None else round(self.age_seconds, 1),
            "size": self.size,
            "over_seconds": None if self.over_seconds is None else round(self.over_seconds, 1),
        }


# --- pure comparison logic (unit-tested in tests/unit/test_verification_logic.py) ------------------


def is_content_etag(etag: str) -> bool:
    """An ETag that is the MD5 of the bytes: single-part upload (multipart ETags end in -N)."""
    return bool(_MD5_ETAG.match(etag.strip('"').lower()))


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

    @classmethod
    def from_head(cls, head: Mapping[str, Any]) -> StoredChecksum:
        value = head.get("ChecksumSHA256")
        etag = str(head.get("ETag", "")).strip('"')
        kind = head.get("ChecksumType")
        # S3 keeps SHA-256 of a multipart upload only as a checksum of the part checksums; some
        # S3 implementations omit the type and the "-N" suffix, the multipart ETag still tells.
        composite = kind == "COMPOSITE" or bool(value and "-" in value) or (kind is None and "-" in etag)
        return cls(
            sha256=value or None,
            composite=composite,
            kms=str(head.get("ServerSideEncryption", "")).startswith("aws:kms"),
            etag=etag,
            size=int(head.get("ContentLength", 0)),
        )

    @property
    def digest(self) -> str | None:
        return self.sha256.split("-", 1)[0] if self.sha256 else None


def checksum_verdict(a: StoredChecksum, b: StoredChecksum) -> bool | None:
    """Equal / different by stored SHA-256; None when the checksums cannot settle it."""
    if a.digest is None or b.digest is None:
        return None
    if a.digest == b.digest:
        return True
    # A composite (per-part) checksum and a whole-object one differ for the same bytes.
    return False if a.composite == b.composite else None


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


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RestoreResult:
    sampled: list[str]
    verified: list[str]
    failures: list[dict[str, str]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "sampled": len(self.sampled),
            "verified": len(self.verified),
            "keys": self.sampled,
            "failures": self.failures,
        }


@dataclass(frozen=True)
class RetentionResult:
    noncurrent_days: int
    min_versions: int
    problems: list[str]
    short_history: list[dict[str, Any]]
    history_checked: bool

    @property
    def ok(self) -> bool:
        return not self.problems and not self.short_history

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "policy": {"noncurrent_days": self.noncurrent_days, "min_versions": self.min_versions},
            "history_checked": self.history_checked,
            "problems": self.problems,
            "short_history": self.short_history,
        }


class RefState(StrEnum):
    OK = "ok"
    PENDING = "pending"
    MISSING = "missing"
    MISMATCHED = "mismatched"
    ERROR = "error"


@dataclass(frozen=True)
class RefCheck:
    role: str  # manifest | artifact | training_snapshot | feature_snapshot
    dataset: str
    key: str
    state: RefState
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "dataset": self.dataset,
            "key": self.key,
            "state": self.state.value,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class RecoveryPointCheck:
    """Could we serve and retrain this exact model version in the standby region?"""

    model: str
    version: str
    objects: list[RefCheck]

    @property
    def state(self) -> str:
        states = {o.state for o in self.objects}
        if states <= {RefState.OK}:
            return "restorable"
        if states <= {RefState.OK, RefState.PENDING}:
            return "pending"
        return "broken"

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "state": self.state,
            "restorable": self.state == "restorable",
            "objects": [o.to_dict() for o in self.objects],
        }


@dataclass(frozen=True)
class DatasetVerification:
    name: str
    kind: str
    source_region: str
    target_region: str
    source_bucket: str
    target_bucket: str
    prefix: str
    mode: Mode
    threshold_seconds: float
    objects_checked: int = 0
    bytes_checked: int = 0
    findings: list[KeyFinding] = field(default_factory=list)
    basis_counts: dict[str, int] = field(default_factory=dict)
    basis_keys: dict[str, list[str]] = field(default_factory=dict)
    changed_during_check: int = 0
    partitions: int = 0
    list_requests: int = 0
    restore: RestoreResult | None = None
    retention: RetentionResult | None = None
    recovery_points: list[RecoveryPointCheck] | None = None
    error: str | None = None
    seconds: float = 0.0

    def keys(self, finding: Finding) -> list[str]:
        return [f.key for f in self.findings if f.finding is finding]

    @property
    def ok(self) -> bool:
        breaking = {Finding.MISSING, Finding.EXTRA, Finding.MISMATCHED, Finding.FAILED}
        return (
            self.error is None
            and not any(f.finding in breaking for f in self.findings)
            and (self.restore is None or not self.restore.failures)
            and (self.retention is None or self.retention.ok)
            and all(rp.state != "broken" for rp in self.recovery_points or [])
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "kind": self.kind,
            "source_region": self.source_region,
            "target_region": self.target_region,
            "source_bucket": self.source_bucket,
            "target_bucket": self.target_bucket,
            "prefix": self.prefix,
            "mode": self.mode.value,
            "threshold_seconds": self.threshold_seconds,
            "objects_checked": self.objects_checked,
            "bytes_checked": self.bytes_checked,
            **{f.value: self.keys(f) for f in Finding},
            "findings": [f.to_dict() for f in self.findings],
            "basis": dict(self.basis_counts),
            # every key not listed here was compared on its ETag (or its size, when sizes differ)
            "basis_keys": {k: v for k, v in self.basis_keys.items() if v},
            "changed_during_check": self.changed_during_check,
            "partitions": self.partitions,
            "list_requests": self.list_requests,
            "restore": self.restore.to_dict() if self.restore else None,
            "retention": self.retention.to_dict() if self.retention else None,
            "recovery_points": None
            if self.recovery_points is None
            else [rp.to_dict() for rp in self.recovery_points],
            "error": self.error,
            "seconds": round(self.seconds, 3),
        }

    def summary(self) -> dict[str, Any]:
        """A compact form for XCom and alerts: counts, and the first keys of each class."""
        doc = self.to_dict()
        out = {
            k: doc[k]
            for k in (
                "name",
                "ok",
                "objects_checked",
                "source_region",
                "target_region",
                "threshold_seconds",
                "error",
            )
        }
        for f in Finding:
            keys = doc[f.value]
            out[f.value] = keys[:SUMMARY_KEYS]
            out[f"{f.value}_count"] = len(keys)
        out["restore_failures"] = (doc["restore"] or {}).get("failures", [])[:SUMMARY_KEYS]
        out["retention_problems"] = (doc["retention"] or {}).get("problems", [])
        out["short_history_count"] = len((doc["retention"] or {}).get("short_history", []))
        out["broken_recovery_points"] = [
            f"{rp['model']}/{rp['version']}" for rp in doc["recovery_points"] or [] if rp["state"] == "broken"
        ]
        return out


@dataclass(frozen=True)
class VerificationReport:
    topology: str
    started_at: str
    finished_at: str
    datasets: list[DatasetVerification]

    @property
    def ok(self) -> bool:
        return all(d.ok for d in self.datasets)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "verification",
            "topology": self.topology,
            "ok": self.ok,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "datasets": [d.to_dict() for d in self.datasets],
        }


# --- the check --------------------------------------------------------------------------------


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _b64_of_hex(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode("ascii")


def _hash_body(body: Any) -> tuple[str, str, int]:
    """(sha256 hex, md5 hex, size) of a streaming body, read in chunks (no whole copy in memory)."""
    sha, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    for chunk in body.iter_chunks(CHUNK):
        sha.update(chunk)
        md5.update(chunk)
        size += len(chunk)
    return sha.hexdigest(), md5.hexdigest(), size


@dataclass(frozen=True)
class _Diff:
    kind: Difference
    key: str
    source: ListedObject | None
    target: ListedObject | None
    basis: Basis | None
    detail: str


class _Progress:
    def __init__(self, what: str, total: int) -> None:
        self.what, self.total, self.done, self.keys = what, total, 0, 0
        self.started = self.last = time.monotonic()
        self.lock = threading.Lock()

    def tick(self, keys: int) -> None:
        with self.lock:
            self.done += 1
            self.keys += keys
            now = time.monotonic()
            if now - self.last >= 5.0 or self.done == self.total:
                self.last = now
                rate = self.keys / max(now - self.started, 1e-6)
                log.info(
                    "%s: partition %d of %d done, %d keys compared (%.0f keys/s)",
                    self.what,
                    self.done,
                    self.total,
                    self.keys,
                    rate,
                )


class _DatasetCheck:
    """One dataset's verification run: the compare pass, then the follow-up requests."""

    def __init__(
        self,
        factory: ClientFactory,
        topology: Topology,
        dataset: Dataset,
        *,
        source_region: str,
        target_region: str,
        status: StatusSource,
        options: VerifyOptions,
        pool: ThreadPoolExecutor,
    ) -> None:
        self.factory, self.topology, self.dataset = factory, topology, dataset
        self.source_region, self.target_region = source_region, target_region
        self.source_bucket = dataset.buckets[source_region]
        self.target_bucket = dataset.buckets[target_region]
        self.status, self.options, self.pool = status, options, pool
        self.threshold = options.threshold(dataset)
        self.reserved = dataset.prefix + RESERVED_PREFIX
        self.s3 = {r: factory.client("s3", r) for r in (source_region, target_region)}
        # A page of 1,000 keys can take seconds on a busy endpoint, and a timed-out page is
        # listed again from scratch (twice the server's work); the preflight has already shown
        # both regions answer, so the listing may wait longer than a probe would.
        limits = factory.timeouts
        list_timeouts = Timeouts(
            connect=limits.connect, read=max(limits.read, LIST_READ_TIMEOUT), max_attempts=limits.max_attempts
        )
        endpoints = [str(self.s3[r].meta.endpoint_url) for r in (source_region, target_region)]
        self.in_flight = options.workers or partition_concurrency(endpoints)
        self.listers = [
            BucketLister(
                self.s3[r],
                bucket=dataset.buckets[r],
                region=r,
                timeouts=list_timeouts,
                max_in_flight=self.in_flight,
            )
            for r in (source_region, target_region)
        ]
        self.lock = threading.Lock()
        self.started = time.time()
        self.objects = 0
        self.bytes = 0
        self.changed = 0
        self.basis_counts: dict[str, int] = {b.value: 0 for b in Basis}
        self.basis_keys: dict[str, list[str]] = {Basis.SHA256.value: [], Basis.DOWNLOAD.value: []}
        self.diffs: list[_Diff] = []
        self.sampler = Sampler(options.sample)
        self.content_futures: list[Future[None]] = []
        self.inflight = threading.BoundedSemaphore(256)  # bounds queued HEADs: memory stays flat
        self.kms = False
        self.unsampled_checksums = 0
        self._checksum_seen = 0
        self._rng = random.Random()

    # -- the listing pass --

    def _count(self, basis: Basis, key: str) -> None:
        with self.lock:
            self.basis_counts[basis.value] += 1
            keys = self.basis_keys.get(basis.value)
            if keys is not None and len(keys) < BASIS_KEYS_LIMIT:
                keys.append(key)

    def _offer(self, obj: ListedObject) -> None:
        with self.lock:
            self.sampler.offer(obj.key, obj.modified)

    def _difference(
        self,
        diff: Difference,
        a: ListedObject | None,
        b: ListedObject | None,
        basis: Basis | None,
        detail: str,
    ) -> None:
        present = [o for o in (a, b) if o is not None]
        newest = max(o.last_modified for o in present)
        with self.lock:
            if newest > self.started:
                # written while we listed: the two listings saw it at different moments
                self.changed += 1
                return
            self.diffs.append(_Diff(diff, present[0].key, a, b, basis, detail))

    def _want_checksum(self) -> bool:
        """In sampled mode, checksum requests are spent on a sample of the keys that need one:
        the first `sample` of them, then each with probability sample/seen (about
        sample x (1 + ln(N/sample)) requests in all, spread over the whole key space)."""
        if self.options.mode is Mode.FULL:
            return True
        with self.lock:
            self._checksum_seen += 1
            budget = max(self.options.sample, 1)
            return self._checksum_seen <= budget or self._rng.random() < budget / self._checksum_seen

    def on_pair(self, a: ListedObject | None, b: ListedObject | None) -> None:
        """Account for one key of the merge-join (at least one side is present)."""
        if a is None:
            self._difference(Difference.ONLY_TARGET, None, b, None, "only in the replica")
            return
        if b is None:
            self._difference(Difference.ONLY_SOURCE, a, None, None, "not in the replica")
            return
        basis, equal = listing_verdict(a, b, kms=self.kms)
        if equal is True:
            self._count(basis, a.key)
            self._offer(b)
        elif equal is False:
            self._count(basis, a.key)
            self._difference(Difference.CONTENT, a, b, basis, f"sizes differ ({a.size} vs {b.size} bytes)")
        elif basis is Basis.ETAG or self._want_checksum():
            self.inflight.acquire()
            future = self.pool.submit(self._content_check, a, b)
            future.add_done_callback(lambda _f: self.inflight.release())
            with self.lock:
                self.content_futures.append(future)
        else:
            self._count(Basis.NOT_COMPARED, a.key)
            with self.lock:
                self.unsampled_checksums += 1
            self._offer(b)

    def _head(self, region: str, bucket: str, key: str) -> StoredChecksum:
        with aws_call(f"s3://{bucket}/{key}", region=region):
            return StoredChecksum.from_head(
                self.s3[region].head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
            )

    def _download_hash(self, region: str, bucket: str, key: str) -> tuple[str, str, int]:
        with aws_call(f"s3://{bucket}/{key}", region=region):
            body = self.s3[region].get_object(Bucket=bucket, Key=key)["Body"]
            return _hash_body(body)

    def _content_check(self, a: ListedObject, b: ListedObject) -> None:
        """HEAD both sides for the stored checksum; download both when there is none."""
        try:
            src = self._head(self.source_region, self.source_bucket, a.key)
            dst = self._head(self.target_region, self.target_bucket, b.key)
            if is_content_etag(a.etag) and is_content_etag(b.etag) and not (src.kms or dst.kms):
                # Both ETags are MD5s of the bytes after all, and they differ: final.
                self._count(Basis.ETAG, a.key)
                self._difference(
                    Difference.CONTENT,
                    a,
                    b,
                    Basis.ETAG,
                    f"content differs (ETag {a.etag} vs {b.etag}, same size {a.size})",
                )
                return
            verdict = checksum_verdict(src, dst)
            basis = Basis.SHA256
            if verdict is None:
                # No comparable stored checksum (uploaded without one): hash the bytes themselves.
                basis = Basis.DOWNLOAD
                left = self._download_hash(self.source_region, self.source_bucket, a.key)[0]
                right = self._download_hash(self.target_region, self.target_bucket, b.key)[0]
                verdict = left == right
                detail = f"content differs (sha256 of the bytes {left[:12]}... vs {right[:12]}...)"
            else:
                detail = f"content differs (stored SHA-256 {src.sha256} vs {dst.sha256})"
            self._count(basis, a.key)
            if verdict:
                self._offer(b)
            else:
                self._difference(Difference.CONTENT, a, b, basis, detail)
        except MldrError as exc:
            if error_code(exc) in {"404", "NoSuchKey", "NotFound"}:
                # deleted between the listing and the HEAD: the next run will see where it stands
                with self.lock:
                    self.changed += 1
                return
            self._difference(Difference.CONTENT, a, b, None, f"content could not be compared: {exc}")

    def _bucket_kms(self) -> bool:
        """Default encryption SSE-KMS on either bucket: no ETag there is a content hash."""
        # beside the probe, so as quick to give up on a region that does not answer
        return any(
            bucket_default_kms(self.factory.client("s3", region, timeouts=PROBE_TIMEOUTS), bucket, region)
            for region, bucket in (
                (self.source_region, self.source_bucket),
                (self.target_region, self.target_bucket),
            )
        )

    def _compare_stream(self, source: Iterator[ListedObject], target: Iterator[ListedObject]) -> int:
        """Merge-join one partition. The common case - same size, same MD5 ETag - is settled
        inline with local counters (no lock, no call): it is nearly every key of a healthy bucket."""
        count, size, equal = 0, 0, 0
        reserved = self.reserved
        sampler = Sampler(self.options.sample)
        etag_final = not self.kms
        md5 = _MD5_ETAG.match
        for a, b in merge(source, target):
            present = a if a is not None else b
            if present is None or present.key.startswith(reserved):
                continue
            count += 1
            size += present.size
            if (
                etag_final
                and a is not None
                and b is not None
                and a.size == b.size
                and a.etag == b.etag
                and md5(a.etag)
            ):
                equal += 1
                sampler.offer(b.key, b.modified)
                continue
            self.on_pair(a, b)
        with self.lock:
            self.objects += count
            self.bytes += size
            self.basis_counts[Basis.ETAG.value] += equal
            self.sampler.merge(sampler)
        return count

    def listing_pass(self) -> Partitioning:
        src, dst = self.listers
        parts = discover_partitions(src, dst, prefix=self.dataset.prefix, exclude=(self.reserved,))
        self._compare_stream(iter(parts.loose[0]), iter(parts.loose[1]))
        progress = _Progress(f"verify {self.dataset.name}", len(parts.prefixes))
        log.info(
            "verify %s: s3://%s vs s3://%s, %d partition(s) under %r",
            self.dataset.name,
            self.source_bucket,
            self.target_bucket,
            len(parts.prefixes),
            parts.level,
        )

        def run(prefix: str) -> None:
            progress.tick(
                self._compare_stream(prefetched_objects(src, prefix), prefetched_objects(dst, prefix))
            )

        # Each side has `in_flight` requests out at most (its lister's cap); twice as many
        # partitions are open, so the side whose server is ahead lists the next partitions
        # instead of idling until the other side's page of this one arrives (measured at 10k
        # keys a side on the sandbox: the two servers' pages differ by up to 0.2 s each).
        workers = max(1, min(RUN_AHEAD * self.in_flight, len(parts.prefixes)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="verify-partition") as partitions:
            for future in [partitions.submit(run, p) for p in parts.prefixes]:
                future.result()
        for future in list(self.content_futures):
            future.result()
        self.list_requests = src.requests + dst.requests
        return parts

    # -- the follow-ups --

    def _states(self, keys: list[str]) -> dict[str, ReplicationState]:
        """Replication state of the source's current version of each key (UNKNOWN if none)."""
        if not keys:
            return {}
        region, bucket = self.source_region, self.source_bucket
        if len(keys) > STATUS_LOOKUP_LIMIT:
            try:
                items = self.status.backlog(region=region, bucket=bucket)
            except MldrError as exc:
                log.warning("replication backlog of %s not readable (%s); states unknown", bucket, exc)
                return {}
            latest: dict[str, tuple[float, ReplicationState]] = {}
            for item in items:
                if item.key not in latest or item.created_at > latest[item.key][0]:
                    latest[item.key] = (item.created_at, item.state)
            return {k: v[1] for k, v in latest.items()}

        def one(key: str) -> ReplicationState:
            try:
                return self.status.status(region=region, bucket=bucket, key=key)
            except MldrError as exc:
                log.debug("replication status of s3://%s/%s unknown: %s", bucket, key, exc)
                return ReplicationState.UNKNOWN

        return dict(zip(keys, self.pool.map(one, keys), strict=True))

    def findings(self) -> list[KeyFinding]:
        states = self._states(sorted({d.key for d in self.diffs}))
        now = time.time()
        out = []
        for d in sorted(self.diffs, key=lambda d: d.key):
            diff, key, a, basis, detail = d.kind, d.key, d.source, d.basis, d.detail
            present = a if a is not None else d.target
            state = states.get(key, ReplicationState.UNKNOWN)
            age = None if a is None else max(0.0, now - a.last_modified)
            finding = classify(diff, state, age, self.threshold)
            over = None
            if state is ReplicationState.PENDING and finding is not Finding.PENDING and age is not None:
                over = age - self.threshold
                detail += (
                    f"; replication pending for {age:.0f}s, {over:.0f}s over the "
                    f"{self.threshold:.0f}s threshold (RPO {self.dataset.rpo_seconds}s)"
                )
            elif finding is Finding.PENDING:
                since = f" for {age:.0f}s" if age is not None else ""
                detail += f"; replication pending{since} (threshold {self.threshold:.0f}s)"
            elif finding is Finding.FAILED:
                detail += "; replication FAILED for this version - re-replicate it (S3 Batch Replication)"
            elif state is ReplicationState.COMPLETED and diff is not Difference.ONLY_TARGET:
                detail += "; replication reported COMPLETED, so the replica was changed or deleted afterwards"
            elif state is ReplicationState.UNKNOWN and diff is Difference.ONLY_SOURCE:
                detail += (
                    "; no replication record (written before the replication rule, or outside its filter)"
                )
            out.append(KeyFinding(key, finding, detail, basis, age, present.size if present else None, over))
        return out

    def restore_test(self) -> RestoreResult:
        keys = self.sampler.keys()
        if not keys:
            return RestoreResult([], [], [])

        def one(key: str) -> str | None:
            try:
                sha_hex, md5_hex, _ = self._download_hash(self.target_region, self.target_bucket, key)
                record = self._head(self.source_region, self.source_bucket, key)
                if record.sha256 and not record.composite:
                    expected, actual, what = record.sha256, _b64_of_hex(sha_hex), "stored SHA-256"
                elif is_content_etag(record.etag) and not record.kms:
                    expected, actual, what = record.etag, md5_hex, "ETag (MD5)"
                else:
                    expected = self._download_hash(self.source_region, self.source_bucket, key)[0]
                    actual, what = sha_hex, "SHA-256 of its bytes"
                if expected != actual:
                    return f"restored bytes do not match the primary's {what}: {actual} vs {expected}"
            except MldrError as exc:
                return f"could not be restored: {exc}"
            return None

        errors = list(self.pool.map(one, keys))
        failures = [{"key": k, "error": e} for k, e in zip(keys, errors, strict=True) if e]
        verified = [k for k, e in zip(keys, errors, strict=True) if not e]
        for failure in failures:
            log.error(
                "restore test %s: s3://%s/%s %s",
                self.dataset.name,
                self.target_bucket,
                failure["key"],
                failure["error"],
            )
        return RestoreResult(keys, verified, failures)

    def _version_groups(self, region: str, bucket: str) -> Iterator[tuple[str, list[VersionEntry]]]:
        """(key, versions newest first) for every key under the prefix, streaming."""
        s3 = self.s3[region]
        pending_key: str | None = None
        pending: list[VersionEntry] = []
        with aws_call(f"s3://{bucket}", region=region):
            for page in s3.get_paginator("list_object_versions").paginate(
                Bucket=bucket, Prefix=self.dataset.prefix
            ):
                entries = [(v["Key"], v["LastModified"].timestamp(), False) for v in page.get("Versions", [])]
                entries += [
                    (m["Key"], m["LastModified"].timestamp(), True) for m in page.get("DeleteMarkers", [])
                ]
                entries.sort(key=lambda e: (e[0], -e[1]))
                for key, modified, marker in entries:
                    if key.startswith(self.reserved):
                        continue
                    if key != pending_key:
                        if pending_key is not None:
                            yield pending_key, pending
                        pending_key, pending = key, []
                    pending.append(VersionEntry(modified, marker))
        if pending_key is not None:
            yield pending_key, pending

    def retention_check(self) -> RetentionResult:
        policy = self.dataset.retention
        problems: list[str] = []
        for region, bucket in (
            (self.source_region, self.source_bucket),
            (self.target_region, self.target_bucket),
        ):
            s3 = self.s3[region]
            with aws_call(f"s3://{bucket}", region=region):
                versioning = s3.get_bucket_versioning(Bucket=bucket).get("Status")
            if versioning != "Enabled":
                problems.append(
                    f"s3://{bucket}: versioning is {versioning or 'off'}; no point-in-time restore"
                )
            try:
                with aws_call(f"s3://{bucket}", region=region):
                    rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
            except AwsError as exc:
                if error_code(exc) != "NoSuchLifecycleConfiguration":
                    raise
                rules = []
            problems += lifecycle_problems(rules, self.dataset, bucket)
        short: list[dict[str, Any]] = []
        checked = policy.min_versions > 1
        if checked:
            now = time.time()
            groups = [
                self._version_groups(self.source_region, self.source_bucket),
                self._version_groups(self.target_region, self.target_bucket),
            ]
            src, dst = (iter(g) for g in groups)
            a, b = next(src, None), next(dst, None)
            while a is not None:
                while b is not None and b[0] < a[0]:
                    b = next(dst, None)
                need = required_versions(
                    a[1], min_versions=policy.min_versions, noncurrent_days=policy.noncurrent_days, now=now
                )
                have = sum(1 for e in b[1] if not e.delete_marker) if b is not None and b[0] == a[0] else 0
                if have < need and have > 0:
                    # no replica at all is reported by the compare pass (missing), not here
                    short.append({"key": a[0], "required": need, "replica_versions": have})
                a = next(src, None)
        return RetentionResult(policy.noncurrent_days, policy.min_versions, problems, short, checked)

    def recovery_points(self) -> list[RecoveryPointCheck]:
        from mldr.ml.registry import RegistryError, list_manifests, manifest_key

        try:
            manifests = list_manifests(
                self.s3[self.source_region], bucket=self.source_bucket, region=self.source_region
            )
        except RegistryError as exc:
            return [
                RecoveryPointCheck(
                    "(registry)",
                    "(unreadable)",
                    [RefCheck("manifest", self.dataset.name, "manifests/", RefState.ERROR, str(exc))],
                )
            ]

        def check(m: Any) -> RecoveryPointCheck:
            objects = [self._manifest_object(manifest_key(m.model_name, m.version))]
            roles = [
                ("artifact", m.artifact),
                ("training_snapshot", m.training_snapshot),
                ("feature_snapshot", m.feature_snapshot),
            ]
            objects += [self._ref(role, ref) for role, ref in roles if ref is not None]
            return RecoveryPointCheck(m.model_name, m.version, objects)

        return list(self.pool.map(check, manifests))

    def _absent(self, role: str, dataset: Dataset, key: str) -> RefCheck:
        bucket = dataset.buckets[self.source_region]
        try:
            state = self.status.status(region=self.source_region, bucket=bucket, key=key)
        except MldrError:
            state = ReplicationState.UNKNOWN
        if state is ReplicationState.PENDING:
            return RefCheck(role, dataset.name, key, RefState.PENDING, "replication pending")
        return RefCheck(
            role,
            dataset.name,
            key,
            RefState.MISSING,
            f"not in s3://{dataset.buckets[self.target_region]} (replication {state.value})",
        )

    def _manifest_object(self, key: str) -> RefCheck:
        """The manifest itself: compared with the source's copy (it records no hash of itself)."""
        try:
            dst = self._head(self.target_region, self.target_bucket, key)
        except MldrError as exc:
            if error_code(exc) in {"404", "NoSuchKey", "NotFound"}:
                return self._absent("manifest", self.dataset, key)
            return RefCheck("manifest", self.dataset.name, key, RefState.ERROR, str(exc))
        try:
            src = self._head(self.source_region, self.source_bucket, key)
        except MldrError as exc:
            return RefCheck("manifest", self.dataset.name, key, RefState.ERROR, str(exc))
        same = checksum_verdict(src, dst)
        if same is None:
            same = src.etag == dst.etag and is_content_etag(src.etag)
        if not same:
            return RefCheck(
                "manifest", self.dataset.name, key, RefState.MISMATCHED, "differs from the primary's"
            )
        return RefCheck("manifest", self.dataset.name, key, RefState.OK)

    def _ref(self, role: str, ref: Any) -> RefCheck:
        try:
            dataset = self.topology.dataset(ref.dataset)
        except ConfigurationError as exc:
            return RefCheck(role, ref.dataset, ref.key, RefState.ERROR, str(exc))
        region, bucket = self.target_region, dataset.buckets[self.target_region]
        try:
            head = self._head(region, bucket, ref.key)
        except MldrError as exc:
            if error_code(exc) in {"404", "NoSuchKey", "NotFound"}:
                return self._absent(role, dataset, ref.key)
            return RefCheck(role, dataset.name, ref.key, RefState.ERROR, str(exc))
        if head.size != ref.size:
            return RefCheck(
                role,
                dataset.name,
                ref.key,
                RefState.MISMATCHED,
                f"{head.size} bytes, the manifest records {ref.size}",
            )
        expected = _b64_of_hex(ref.sha256)
        if head.sha256 and not head.composite:
            if head.sha256 != expected:
                return RefCheck(
                    role,
                    dataset.name,
                    ref.key,
                    RefState.MISMATCHED,
                    f"stored SHA-256 {head.sha256}, the manifest records {expected}",
                )
            return RefCheck(role, dataset.name, ref.key, RefState.OK)
        try:
            actual = self._download_hash(region, bucket, ref.key)[0]
        except MldrError as exc:
            return RefCheck(role, dataset.name, ref.key, RefState.ERROR, f"could not be read: {exc}")
        if actual != ref.sha256:
            return RefCheck(
                role,
                dataset.name,
                ref.key,
                RefState.MISMATCHED,
                f"sha256 of the bytes {actual}, the manifest records {ref.sha256}",
            )
        return RefCheck(role, dataset.name, ref.key, RefState.OK)

    def preflight(self) -> None:
        """Both buckets answer, quickly: a dead region fails in seconds, not after every retry."""

        def probe(lister: BucketLister) -> None:
            # a region found silent here is not asked again by this run's report and metrics
            with self.factory.silent.watch(lister.region):
                lister.probe(PROBE_TIMEOUTS)

        futures = [self.pool.submit(probe, lister) for lister in self.listers]
        for future in futures:
            future.result()

    def run(self) -> DatasetVerification:
        started = time.monotonic()
        base: dict[str, Any] = dict(
            name=self.dataset.name,
            kind=self.dataset.kind.value,
            source_region=self.source_region,
            target_region=self.target_region,
            source_bucket=self.source_bucket,
            target_bucket=self.target_bucket,
            prefix=self.dataset.prefix,
            mode=self.options.mode,
            threshold_seconds=self.threshold,
        )
        try:
            kms = self.pool.submit(self._bucket_kms)
            self.preflight()
            self.kms = kms.result()
            # The follow-ups that do not need the listing's result run beside it: the bucket
            # settings and history behind point-in-time restore, and the model recovery points.
            retention_future = self.pool.submit(self.retention_check)
            points_future = (
                self.pool.submit(self.recovery_points)
                if self.dataset.kind is DatasetKind.MODEL_ARTIFACTS
                else None
            )
            parts = self.listing_pass()
            findings = self.findings()
            restore = self.restore_test()
            retention = retention_future.result()
            points = points_future.result() if points_future is not None else None
        except MldrError as exc:
            log.error("verify %s: %s", self.dataset.name, exc)
            return DatasetVerification(**base, error=str(exc), seconds=time.monotonic() - started)
        if self.unsampled_checksums:
            log.info(
                "verify %s: sampled mode: %d keys without an MD5 ETag compared by size only",
                self.dataset.name,
                self.unsampled_checksums,
            )
        result = DatasetVerification(
            **base,
            objects_checked=self.objects,
            bytes_checked=self.bytes,
            findings=findings,
            basis_counts={k: v for k, v in self.basis_counts.items() if v},
            basis_keys=self.basis_keys,
            changed_during_check=self.changed,
            partitions=len(parts.prefixes) + (1 if parts.loose[0] or parts.loose[1] else 0),
            list_requests=self.list_requests,
            restore=restore,
            retention=retention,
            recovery_points=points,
            seconds=time.monotonic() - started,
        )
        log.info(
            "verify %s: %s in %.1fs: %d objects, %s",
            self.dataset.name,
            "OK" if result.ok else "FAILED",
            result.seconds,
            result.objects_checked,
            ", ".join(f"{len(result.keys(f))} {f.value}" for f in Finding),
        )
        return result


def verify_dataset(
    factory: ClientFactory,
    topology: Topology,
    dataset: Dataset,
    *,
    source_region: str,
    status: StatusSource,
    options: VerifyOptions = VerifyOptions(),
) -> DatasetVerification:
    target_region = topology.other_region(source_region)
    with ThreadPoolExecutor(max_workers=16, thread_name_prefix=f"verify-{dataset.name}") as pool:
        check = _DatasetCheck(
            factory,
            topology,
            dataset,
            source_region=source_region,
            target_region=target_region,
            status=status,
            options=options,
            pool=pool,
        )
        return check.run()


def verify(
    factory: ClientFactory,
    topology: Topology,
    *,
    datasets: list[str] | None = None,
    options: VerifyOptions = VerifyOptions(),
    source_region: str | None = None,
    status: StatusSource | None = None,
) -> VerificationReport:
    """Verify the named datasets (all when None), side by side. Raises only for bad input."""
    from mldr.checks.direction import replication_direction
    from mldr.checks.replication_status import status_source

    selected = topology.datasets_named(datasets)  # unknown names fail here, before any request
    started = _now_iso()
    source, _ = replication_direction(factory, topology, source_region=source_region)
    status = status or status_source(topology, factory)
    with ThreadPoolExecutor(max_workers=len(selected), thread_name_prefix="verify") as pool:
        results = list(
            pool.map(
                lambda d: verify_dataset(
                    factory, topology, d, source_region=source, status=status, options=options
                ),
                selected,
            )
        )
    return VerificationReport(topology.name, started, _now_iso(), results)


def verification_metrics(result: DatasetVerification) -> dict[Any, float]:
    """The CloudWatch value of one dataset's verification (none when it could not run)."""
    from mldr.checks.metrics import Metric

    if result.error:
        return {}
    wrong = sum(
        len(result.keys(f)) for f in (Finding.MISSING, Finding.EXTRA, Finding.MISMATCHED, Finding.FAILED)
    )
    return {Metric.VERIFICATION_MISMATCHES: wrong}


# --- what a person reads ----------------------------------------------------------------------


def _listing(keys: list[str], limit: int = 10) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def breach_lines(dataset: Mapping[str, Any]) -> list[str]:
    """One line per problem of a dataset (from `DatasetVerification.to_dict()` or `.summary()`)."""
    name = dataset["name"]
    if dataset.get("error"):
        return [f"{name}: verification could not run: {dataset['error']}"]
    lines = []
    stale = {f["key"]: f for f in dataset.get("findings", []) if f.get("over_seconds")}
    for finding in (Finding.MISSING, Finding.MISMATCHED, Finding.EXTRA, Finding.FAILED):
        keys = dataset.get(finding.value) or []
        count = dataset.get(f"{finding.value}_count", len(keys))
        if not count:
            continue
        line = f"{name}: {count} {finding.value}: {_listing(keys)}"
        overs = [stale[k]["over_seconds"] for k in keys if k in stale]
        if overs:
            line += (
                f" (replication pending up to {max(overs):.0f}s over the "
                f"{dataset['threshold_seconds']:.0f}s threshold)"
            )
        lines.append(line)
    restore = dataset.get("restore_failures")
    if restore is None:
        restore = (dataset.get("restore") or {}).get("failures", [])
    if restore:
        lines.append(
            f"{name}: restore test failed for {len(restore)} object(s): "
            + "; ".join(f"{f['key']}: {f['error']}" for f in restore[:5])
        )
    retention = dataset.get("retention_problems")
    if retention is None:
        retention = (dataset.get("retention") or {}).get("problems", [])
    lines += [f"{name}: {p}" for p in retention]
    short = dataset.get("short_history_count")
    if short is None:
        short = len((dataset.get("retention") or {}).get("short_history", []))
    if short:
        lines.append(
            f"{name}: {short} key(s) keep fewer versions in the replica than the retention policy needs"
        )
    broken = dataset.get("broken_recovery_points")
    if broken is None:
        broken = [
            f"{rp['model']}/{rp['version']}"
            for rp in dataset.get("recovery_points") or []
            if rp["state"] == "broken"
        ]
    if broken:
        lines.append(
            f"{name}: {len(broken)} model version(s) cannot be served and retrained in "
            f"{dataset['target_region']}: {_listing(broken)}"
        )
    return lines


def render_html(document: Mapping[str, Any]) -> str:
    from mldr import reports as r

    parts = [
        r.table(
            [
                "dataset",
                "verdict",
                "objects",
                "missing",
                "extra",
                "mismatched",
                "pending",
                "failed",
                "source -> replica",
            ],
            [
                [
                    r.esc(d["name"]),
                    r.verdict(d["ok"]),
                    d["objects_checked"],
                    len(d["missing"]),
                    len(d["extra"]),
                    len(d["mismatched"]),
                    len(d["pending"]),
                    len(d["failed"]),
                    r.esc(f"s3://{d['source_bucket']} -> s3://{d['target_bucket']}"),
                ]
                for d in document["datasets"]
            ],
            raw=True,
        )
    ]
    for d in document["datasets"]:
        parts.append(f"<h2>{r.esc(d['name'])} {r.verdict(d['ok'])}</h2>")
        if d.get("error"):
            parts.append(f"<p class='bad'>{r.esc(d['error'])}</p>")
            continue
        problems = breach_lines(d)
        if problems:
            parts.append("<ul>" + "".join(f"<li>{r.esc(p)}</li>" for p in problems) + "</ul>")
        parts.append(
            f"<p>{d['objects_checked']} objects, {d['bytes_checked']} bytes, mode {r.esc(d['mode'])}, "
            f"pending threshold {d['threshold_seconds']:.0f}s, compared on: "
            f"{r.esc(', '.join(f'{k} {v}' for k, v in d['basis'].items()) or 'nothing')}</p>"
        )
        if d["findings"]:
            parts.append(
                r.table(
                    ["key", "class", "basis", "age (s)", "detail"],
                    [
                        [f["key"], f["class"], f["basis"], f["age_seconds"], f["detail"]]
                        for f in d["findings"]
                    ],
                )
            )
        restore = d.get("restore") or {}
        if restore.get("sampled"):
            parts.append(
                f"<p>Restore test: {restore['verified']} of {restore['sampled']} sampled objects "
                "downloaded from the replica and matched the primary's record.</p>"
            )
        for rp in d.get("recovery_points") or []:
            parts.append(
                f"<p>Model {r.esc(rp['model'])} {r.esc(rp['version'])}: <b>{r.esc(rp['state'])}</b></p>"
            )
            parts.append(
                r.table(
                    ["object", "dataset", "key", "state", "detail"],
                    [[o["role"], o["dataset"], o["key"], o["state"], o["detail"]] for o in rp["objects"]],
                )
            )
    title = f"Backup verification {'OK' if document['ok'] else 'FAILED'} - {document['topology']}"
    return r.page(title, "".join(parts))
