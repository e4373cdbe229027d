"""Resync before failback: make the two regions hold the same current objects again.

While region A was active, B (the old primary) missed what A wrote, and A may have missed what
B wrote before it went down (the data at risk of an unplanned failover). For every key:

- changed in A since the failover started (a new version or a delete marker): A wins, copy
  A -> B (or delete in B);
- otherwise B's current state wins where it differs: copy B -> A (data B had that never made
  it across) — nothing written anywhere is lost; the version it replaces stays a noncurrent
  version.

How it stays cheap (a failback waits on it):

- **The current state from plain listings.** Both buckets are listed with ListObjectsV2 (signed
  and parsed lean, as verification lists them), not ListObjectVersions, which costs S3 (and
  moto far more) a multiple per key. A key current on one side only needs the other side's
  history - was it deleted there, and when? - so only those keys are looked up, one small
  ListObjectVersions each, in parallel.
- **One request per copy, no bytes through mldr.** A copy is S3's own cross-region
  `CopyObject`, sent to the receiving region, conditional on the source's listed ETag
  (`x-amz-copy-source-if-match`), and verified by the copy's ETag: for a single-part object
  without SSE-KMS it is the MD5 of the bytes S3 wrote, so it must equal the listed one.
  Objects whose ETag is not an MD5 (multipart, SSE-KMS) or larger than CopyObject takes
  (5 GB) are downloaded and uploaded with a SHA-256 that S3 checks (`copy_verified`).
- **Never equal or different by ETag alone where ETags are no content hashes.** Under SSE-KMS
  (every dataset bucket) a source and its replica have different ETags for the same bytes: a key
  whose listings differ only so is compared on the stored SHA-256 of both sides first
  (`same_content`) and left alone when they match. The report counts what each copy was
  verified on and what was recognised as unchanged (`basis`).

- **Copies start while the listings are read.** Both listings are merged as they arrive, a
  key's copy is queued the moment it is decided, and the listing waits only when 128 copies are
  queued: for big buckets the listing and the copies overlap instead of adding up.

Only keys whose current state differs are copied, in parallel, with progress in the logs. A
key written again while the resync runs (its source no longer matches the listing) is not a
failure: it is counted as changed, and the next pass (failback's freeze, after the fence)
copies it.

**Conflicts are kept, never overwritten silently.** A key the active region changed since the
failover whose current version in the standby never replicated (its replication status is
PENDING or FAILED, or it has none and was written after the failover) was changed on both
sides. The active region's version wins - it is the one the service read and wrote while it
served - but before it is copied over, the standby's version is copied to the standby region's
ops bucket under `conflicts/<dataset>/<key>/<version id>`, and the conflict is listed with both
versions in the report. The ops bucket, not a noncurrent version in the dataset's bucket: the
dataset's lifecycle expires noncurrent versions, and nothing there can exempt one version;
the ops bucket's current objects do not expire and no pipeline reads them.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from mldr.checks.listing import ListedObject, merge, prefetched_objects
from mldr.checks.replication_status import StatusSource, status_source
from mldr.checks.verification.compare import StoredChecksum, checksum_verdict, is_content_etag
from mldr.cloud import Cloud
from mldr.cloud.calls import TRANSFER_TIMEOUTS
from mldr.cloud.objects import ObjectStore, ReplicationState
from mldr.errors import AwsError, MldrError, NotFound, PreconditionFailed, SourceChanged
from mldr.progress import Progress
from mldr.topology import Dataset, Topology

log = logging.getLogger(__name__)

WORKERS = 32
#: S3's limit for one CopyObject; larger objects take the download-upload path
COPY_OBJECT_LIMIT = 5 * 1024**3


@dataclass(frozen=True)
class Current:
    """The latest version of a key in one bucket (its id is known when it was looked up)."""

    key: str
    version_id: str | None
    last_modified: float
    etag: str
    size: int
    deleted: bool


@dataclass
class Transfer:
    key: str
    source_region: str
    target_region: str
    action: str  # copy | delete
    source: Current | None = None  # what is copied, as listed
    #: the target's current object this transfer replaces, when the active region wins over one
    replaces: Current | None = None


#: Where the losing version of a conflict is kept, in the standby region's ops bucket.
CONFLICTS_PREFIX = "conflicts"

#: Replication states that say a standby version reached the active region (or came from it).
_CROSSED = {ReplicationState.REPLICA, ReplicationState.COMPLETED}


@dataclass(frozen=True)
class Conflict:
    """A key changed on both sides since the failover; the active region's version won, the
    standby's is kept at `kept_at`."""

    key: str
    active_region: str
    active_version: str | None
    active_etag: str
    active_modified: float
    standby_region: str
    standby_version: str | None
    standby_etag: str
    standby_modified: float
    kept_at: str

    def describe(self) -> str:
        return (
            f"{self.key}: {self.active_region} version {self.active_version} (etag {self.active_etag}) "
            f"is current in both regions; {self.standby_region} version {self.standby_version} "
            f"(etag {self.standby_etag}) kept at {self.kept_at}"
        )


@dataclass
class DatasetResync:
    dataset: str
    keys_compared: int = 0
    copied_to: dict[str, int] = field(default_factory=dict)
    deleted_in: dict[str, int] = field(default_factory=dict)
    bytes_copied: int = 0
    #: keys looked up in the other region's history (current on one side only)
    keys_looked_up: int = 0
    #: copied by CopyObject (verified by ETag) / by download and upload (verified by SHA-256)
    server_side_copies: int = 0
    #: keys whose ETags differ but whose stored SHA-256 are equal: the same bytes, not copied
    #: (under SSE-KMS no ETag is a content hash, so the listings alone cannot tell)
    same_by_checksum: int = 0
    #: keys written again during the resync: left for the next pass
    changed_during: list[str] = field(default_factory=list)
    #: keys changed on both sides: the standby's version kept in its ops bucket
    conflicts: list[Conflict] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def public(self) -> dict[str, Any]:
        report: dict[str, Any] = {
            "dataset": self.dataset,
            "keys_compared": self.keys_compared,
            "keys_looked_up": self.keys_looked_up,
            "copied_to": self.copied_to,
            "deleted_in": self.deleted_in,
            "bytes_copied": self.bytes_copied,
            "server_side_copies": self.server_side_copies,
            # what the copies were verified on, and what equal content was recognised by
            "basis": {
                "copies_verified_on_etag": self.server_side_copies,
                "copies_verified_on_sha256": sum(self.copied_to.values()) - self.server_side_copies,
                "unchanged_by_sha256": self.same_by_checksum,
            },
            "changed_during": self.changed_during,
            "conflicts": [asdict(c) for c in self.conflicts],
            "failures": self.failures,
            "seconds": round(self.seconds, 3),
        }
        return _bounded(report)


#: Keys named per list in a stored report (changed during the resync, failed, ...); all counted
KEYS_LISTED = 50


def _bounded(report: dict[str, Any]) -> dict[str, Any]:
    """A report is stored in the operation record, one DynamoDB item of 400 KB at most: each list
    in it names at most KEYS_LISTED entries, and `<list>_count` counts them all."""
    out = dict(report)
    for name, value in report.items():
        if isinstance(value, list):
            out[name], out[f"{name}_count"] = value[:KEYS_LISTED], len(value)
    return out


def latest_version(store: ObjectStore, bucket: str, key: str) -> Current | None:
    """The newest version or delete marker of exactly `key` (None: it has no history here)."""
    v = store.latest_version(bucket, key)
    if v is None:
        return None
    return Current(key, v.version_id, v.modified, v.etag, v.size, v.deleted)


def _same(a: Current | None, b: Current | None) -> bool:
    if a is None or a.deleted:
        return b is None or b.deleted
    if b is None or b.deleted:
        return False
    return a.size == b.size and a.etag == b.etag


@dataclass(frozen=True)
class Sides:
    """Who wins for a key: the region active since `since` (the failover's start), and the other."""

    active_region: str
    standby_region: str
    since: float

    def decide(self, key: str, a: Current | None, s: Current | None) -> Transfer | None:
        """What makes `key` equal in both regions, from its latest state in each (None: no history)."""
        if _same(a, s):
            return None
        if a is not None and a.last_modified >= self.since:
            replaces = s if s is not None and not s.deleted else None
            if a.deleted:
                return Transfer(key, self.active_region, self.standby_region, "delete", replaces=replaces)
            return Transfer(key, self.active_region, self.standby_region, "copy", a, replaces=replaces)
        if s is not None and not s.deleted:
            return Transfer(key, self.standby_region, self.active_region, "copy", s)
        if s is not None and s.deleted and a is not None and not a.deleted:
            return Transfer(key, self.standby_region, self.active_region, "delete")
        return None

    def first_look(self, key: str, a: Current | None, s: Current | None) -> Transfer | str | None:
        """What the current objects alone say about `key`: a transfer, nothing to do (None), or
        the region whose history must be looked up first (a key current on one side only and not
        written in the active region since the failover: was it deleted on the other side?)."""
        if a is not None and s is None and a.last_modified < self.since:
            return self.standby_region  # did the standby delete it?
        if a is None and s is not None:
            return self.active_region  # deleted in the active region since the failover?
        return self.decide(key, a, s)

    def after_lookup(
        self, key: str, region: str, other: Current | None, a: Current | None, s: Current | None
    ) -> Transfer | None:
        """The decision for a key once `region`'s history of it (`other`) is known."""
        a = other if region == self.active_region else a
        s = other if region == self.standby_region else s
        return self.decide(key, a, s)


def plan(
    active: dict[str, Current],
    standby: dict[str, Current],
    *,
    active_region: str,
    standby_region: str,
    since: float,
    history: Callable[[str, str], Current | None],
    pool: ThreadPoolExecutor | None = None,
) -> tuple[list[Transfer], int]:
    """The transfers that make both sides equal (see the module docstring for who wins), and
    how many keys needed `history(region, key)`: the other side's latest version or delete
    marker, asked for only where the current objects alone cannot decide."""
    sides = Sides(active_region, standby_region, since)
    transfers: list[Transfer] = []
    lookups: list[tuple[str, str]] = []  # (key, region to look in)
    for key in sorted(active.keys() | standby.keys()):
        seen = sides.first_look(key, active.get(key), standby.get(key))
        if isinstance(seen, str):
            lookups.append((key, seen))
        elif seen is not None:
            transfers.append(seen)
    found = list((pool.map if pool else map)(lambda kr: history(kr[1], kr[0]), lookups))
    for (key, region), other in zip(lookups, found, strict=True):
        t = sides.after_lookup(key, region, other, active.get(key), standby.get(key))
        if t is not None:
            transfers.append(t)
    transfers.sort(key=lambda t: t.key)
    return transfers, len(lookups)


def same_content(
    src: ObjectStore, dst: ObjectStore, *, src_bucket: str, dst_bucket: str, source: Current
) -> bool:
    """Does the target already hold the source's bytes, by their stored SHA-256 (one HEAD a side)?

    Asked where ETags are no content hashes (SSE-KMS, multipart): a source and its replica then
    have different ETags for the same bytes. Without comparable stored checksums it says no, and
    the key is copied: a needless copy costs a request, a missed one loses data.
    """
    try:
        there = StoredChecksum.from_head(dst.head(dst_bucket, source.key, checksum=True))
    except NotFound:
        return False
    if there.size != source.size:
        return False
    try:
        here = StoredChecksum.from_head(
            src.head(src_bucket, source.key, version_id=source.version_id, checksum=True)
        )
    except NotFound:
        return False
    return checksum_verdict(here, there) is True


def copy_across(dst: ObjectStore, *, src_bucket: str, dst_bucket: str, source: Current) -> int:
    """A server-side copy from the other region, verified: the store copies only if the source
    still has the listed ETag, and checks the copy's ETag against it."""
    try:
        dst.copy_in(
            source_bucket=src_bucket,
            bucket=dst_bucket,
            key=source.key,
            etag=source.etag,
            version_id=source.version_id,
        )
    except PreconditionFailed as exc:
        raise SourceChanged(f"{source.key}: changed in s3://{src_bucket} since it was listed") from exc
    return source.size


def copy_verified(
    src: ObjectStore, dst: ObjectStore, *, src_bucket: str, dst_bucket: str, key: str, source: Current
) -> int:
    """Download and upload one object; the store rejects the upload if the bytes don't match SHA-256.

    The download is of the listed state: the listed version when its id is known, else the
    current version if its ETag is still the listed one (`SourceChanged` otherwise).
    """
    try:
        obj = src.get(
            src_bucket,
            key,
            version_id=source.version_id,
            if_match=None if source.version_id else (source.etag or None),
            checksum=True,
        )
    except PreconditionFailed as exc:
        raise SourceChanged(f"{key}: changed in s3://{src_bucket} since it was listed") from exc
    body = obj.body
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    stored = obj.head.sha256
    if stored and "-" not in stored and stored != digest:
        raise MldrError(f"s3://{src_bucket}/{key}: downloaded bytes do not match the stored SHA-256")
    dst.put(
        dst_bucket,
        key,
        body,
        content_type=obj.head.content_type,
        metadata=obj.head.metadata,
        sha256=digest,
    )
    return len(body)


def keep_if_conflict(
    store: ObjectStore,
    active: ObjectStore,
    *,
    dataset: str,
    active_bucket: str,
    bucket: str,
    ops_bucket: str,
    t: Transfer,
    since: float,
    statuses: StatusSource,
) -> Conflict | None:
    """Before the active region's version of `t.key` replaces the standby's: if the standby's
    current version never crossed (see the module docstring), copy it to the ops bucket,
    checksummed, and return the conflict; None when it is no conflict."""
    head = store.head(bucket, t.key)
    state = statuses.status(region=store.region, bucket=bucket, key=t.key, version_id=head.version_id)
    if state in _CROSSED:
        return None
    written_after = head.modified is not None and head.modified >= since
    if state is ReplicationState.UNKNOWN and not written_after:
        return None  # older than the failover and never under replication: not a change
    kept_at = f"{CONFLICTS_PREFIX}/{dataset}/{t.key}/{head.version_id}"
    obj = store.get(bucket, t.key, version_id=head.version_id)
    digest = base64.b64encode(hashlib.sha256(obj.body).digest()).decode()
    metadata = {**obj.head.metadata, "mldr-conflict-of": f"s3://{bucket}/{t.key}"}
    store.put(
        ops_bucket, kept_at, obj.body, content_type=obj.head.content_type, metadata=metadata, sha256=digest
    )
    winner = latest_version(active, active_bucket, t.key)
    log.warning("resync: %s changed on both sides; %s's version kept at %s", t.key, store.region, kept_at)
    return Conflict(
        key=t.key,
        active_region=t.source_region,
        active_version=winner.version_id if winner else None,
        active_etag=(winner.etag or "(delete marker)") if winner else "",
        active_modified=winner.last_modified if winner else 0.0,
        standby_region=store.region,
        standby_version=head.version_id,
        standby_etag=head.etag,
        standby_modified=head.modified or 0.0,
        kept_at=f"s3://{ops_bucket}/{kept_at}",
    )


def _current(listed: ListedObject | None) -> Current | None:
    if listed is None:
        return None
    return Current(listed.key, None, listed.last_modified, listed.etag, listed.size, False)


def resync_dataset(
    cloud: Cloud,
    dataset: Dataset,
    *,
    active_region: str,
    standby_region: str,
    since: float,
    only_to: str | None = None,
    ops_bucket: str | None = None,
    fence_pass: int | None = None,
) -> DatasetResync:
    """Make one dataset's buckets equal again. The two listings are merged as they are read and
    a key's copy starts as soon as the key is decided, so the copies run while the listings of
    big buckets are still being read; keys that need the other side's history are looked up
    after the listings end.

    `ops_bucket` (the standby region's) keeps the losing versions of conflicts; `fence_pass`
    (the failback's fencing token) lets the copies into the standby's fenced buckets."""
    started = time.monotonic()
    report = DatasetResync(dataset=dataset.name)
    buckets = dataset.buckets
    regions = (active_region, standby_region)
    sides = Sides(active_region, standby_region, since)
    stores = {r: cloud.objects(r, timeouts=TRANSFER_TIMEOUTS) for r in regions}
    if fence_pass is not None:
        stores = {r: store.with_fence_pass(fence_pass) for r, store in stores.items()}
    listers = {r: stores[r].lister(buckets[r]) for r in regions}
    progress = Progress(f"resync {dataset.name}", until_total="listings still being read", logger=log)
    lock = threading.Lock()
    # queued transfers at most: the listing waits for the copies, memory stays flat
    queued = threading.BoundedSemaphore(4 * WORKERS)
    transfers = 0

    def run(t: Transfer, server_side: bool) -> None:
        src, dst = stores[t.source_region], stores[t.target_region]
        src_bucket, dst_bucket = buckets[t.source_region], buckets[t.target_region]
        try:
            same = (
                t.action == "copy"
                and t.source is not None
                and not (server_side and is_content_etag(t.source.etag))
                and same_content(src, dst, src_bucket=src_bucket, dst_bucket=dst_bucket, source=t.source)
            )
            # e.g. after the active region is fenced: it cannot take writes, so nothing may go there
            blocked = not same and only_to is not None and t.target_region != only_to
            # Conflicts are found in the first pass, while both sides' writes are what clients did.
            # The last pass (`only_to`, after the freeze) sees the primary's versions this resync
            # wrote itself - the primary is fenced from the failback's start, nobody else writes.
            if (
                not same
                and not blocked
                and only_to is None
                and t.replaces is not None
                and t.target_region == standby_region
            ):
                conflict = keep_if_conflict(
                    dst,
                    src,
                    dataset=dataset.name,
                    active_bucket=src_bucket,
                    bucket=dst_bucket,
                    ops_bucket=ops_bucket or cloud.topology.region(standby_region).ops_bucket,
                    t=t,
                    since=since,
                    statuses=status_source(cloud.topology, cloud),
                )
                if conflict is not None:
                    with lock:
                        report.conflicts.append(conflict)
            if same:
                with lock:
                    report.same_by_checksum += 1
            elif blocked:
                with lock:
                    report.failures.append(
                        f"{t.key}: needs a {t.action} into {t.target_region}, which is fenced"
                    )
            elif t.action == "delete":
                dst.delete(dst_bucket, t.key)
                with lock:
                    report.deleted_in[t.target_region] = report.deleted_in.get(t.target_region, 0) + 1
            else:
                assert t.source is not None
                across = server_side and is_content_etag(t.source.etag) and t.source.size <= COPY_OBJECT_LIMIT
                if across:
                    size = copy_across(dst, src_bucket=src_bucket, dst_bucket=dst_bucket, source=t.source)
                else:
                    size = copy_verified(
                        src, dst, src_bucket=src_bucket, dst_bucket=dst_bucket, key=t.key, source=t.source
                    )
                with lock:
                    report.copied_to[t.target_region] = report.copied_to.get(t.target_region, 0) + 1
                    report.bytes_copied += size
                    report.server_side_copies += int(across)
        except SourceChanged:
            with lock:
                report.changed_during.append(t.key)
        except (AwsError, MldrError) as exc:
            with lock:
                report.failures.append(f"{t.key}: {exc}")
        finally:
            queued.release()
            progress.tick()

    with ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix=f"resync-{dataset.name}") as pool:
        kms = [pool.submit(stores[r].default_kms_key, buckets[r]) for r in regions]
        listed = merge(
            prefetched_objects(listers[active_region], dataset.prefix),
            prefetched_objects(listers[standby_region], dataset.prefix),
        )
        # with SSE-KMS on either side, no ETag is an MD5: copies are checked by SHA-256 instead
        server_side = not any(k.result() for k in kms)

        def submit(t: Transfer) -> None:
            # A transfer into a fenced region (`only_to`) is a failure - unless the stored checksums
            # show the target holds the bytes already, which `run` asks first.
            nonlocal transfers
            transfers += 1
            queued.acquire()
            pool.submit(run, t, server_side)

        lookups: list[tuple[str, str, Current | None, Current | None]] = []
        for a_listed, s_listed in listed:
            a, s = _current(a_listed), _current(s_listed)
            either = a or s
            assert either is not None  # merge yields at least one side
            key = either.key
            report.keys_compared += 1
            seen = sides.first_look(key, a, s)
            if isinstance(seen, str):
                lookups.append((key, seen, a, s))
            elif seen is not None:
                submit(seen)
        report.keys_looked_up = len(lookups)
        histories = pool.map(lambda lk: latest_version(stores[lk[1]], buckets[lk[1]], lk[0]), lookups)
        for (key, region, a, s), other in zip(lookups, histories, strict=True):
            t = sides.after_lookup(key, region, other, a, s)
            if t is not None:
                submit(t)
        progress.planned(transfers)
        log.info(
            "resync %s: %d keys compared (%d looked up in the other region's history), %d to transfer "
            "(active %s, standby %s)",
            dataset.name,
            report.keys_compared,
            report.keys_looked_up,
            transfers,
            active_region,
            standby_region,
        )
    report.changed_during.sort()
    report.conflicts.sort(key=lambda c: c.key)
    report.failures.sort()
    report.seconds = time.monotonic() - started
    if report.changed_during:
        log.warning(
            "resync %s: %d key(s) written again during the resync, left for the next pass (first: %s)",
            dataset.name,
            len(report.changed_during),
            report.changed_during[0],
        )
    if report.failures:
        log.error(
            "resync %s: %d transfer(s) failed, first: %s",
            dataset.name,
            len(report.failures),
            report.failures[0],
        )
    return report


def resync(
    cloud: Cloud,
    topology: Topology,
    *,
    active_region: str,
    since: float,
    datasets: list[str] | None = None,
    only_to: str | None = None,
    fence_pass: int | None = None,
) -> list[DatasetResync]:
    standby_region = topology.other_region(active_region)
    return [
        resync_dataset(
            cloud,
            d,
            active_region=active_region,
            standby_region=standby_region,
            since=since,
            only_to=only_to,
            ops_bucket=topology.region(standby_region).ops_bucket,
            fence_pass=fence_pass,
        )
        for d in topology.datasets_named(datasets)
    ]
