"""One verification run: the streaming compare pass over both buckets, then the follow-ups
(replication state of the differing keys, the restore test, the recovery points), per dataset
and side by side over datasets."""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mldr.checks.listing import (
    ListedObject,
    Partitioning,
    discover_partitions,
    merge,
    partition_concurrency,
    prefetched_objects,
)
from mldr.checks.replication_status import ReplicationState, StatusSource
from mldr.checks.verification.compare import (
    MD5_ETAG,
    Sampler,
    classify,
    is_content_etag,
    listing_verdict,
    stored_verdict,
)
from mldr.checks.verification.model import (
    RESERVED_PREFIX,
    Basis,
    DatasetVerification,
    Difference,
    Finding,
    KeyFinding,
    Mode,
    VerificationReport,
    VerifyOptions,
)
from mldr.checks.verification.recovery_points import RecoveryPointChecks
from mldr.cloud import Cloud
from mldr.cloud.calls import PROBE_TIMEOUTS, Timeouts
from mldr.cloud.objects import Lister
from mldr.errors import MldrError, NotFound
from mldr.progress import Progress
from mldr.topology import Dataset, DatasetKind, Topology

log = logging.getLogger(__name__)

#: Above this many differing keys, one backlog read replaces per-key status lookups.
STATUS_LOOKUP_LIMIT = 500
#: Keys compared on a non-ETag basis listed by name in the report (beyond: counted only).
BASIS_KEYS_LIMIT = 10_000
LIST_READ_TIMEOUT = 60.0

#: partitions open per request in flight on each side (see `listing_pass`)
RUN_AHEAD = 2

#: frozen, so one instance serves as every call's default
DEFAULT_OPTIONS = VerifyOptions()


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class _Diff:
    kind: Difference
    key: str
    source: ListedObject | None
    target: ListedObject | None
    basis: Basis | None
    detail: str


class _DatasetCheck(RecoveryPointChecks):
    """One dataset's verification run: the compare pass, then the follow-up requests."""

    def __init__(
        self,
        cloud: Cloud,
        topology: Topology,
        dataset: Dataset,
        *,
        source_region: str,
        target_region: str,
        status: StatusSource,
        options: VerifyOptions,
        pool: ThreadPoolExecutor,
    ) -> None:
        self.cloud, self.topology, self.dataset = cloud, topology, dataset
        self.source_region, self.target_region = source_region, target_region
        self.source_bucket = dataset.buckets[source_region]
        self.target_bucket = dataset.buckets[target_region]
        self.status, self.options, self.pool = status, options, pool
        self.threshold = options.threshold(dataset)
        self.reserved = dataset.prefix + RESERVED_PREFIX
        self.stores = {r: cloud.objects(r) for r in (source_region, target_region)}
        # A page of 1,000 keys can take seconds on a busy endpoint, and a timed-out page is
        # listed again from scratch (twice the server's work); the preflight has already shown
        # both regions answer, so the listing may wait longer than a probe would.
        limits = self.stores[source_region].timeouts
        list_timeouts = Timeouts(
            connect=limits.connect, read=max(limits.read, LIST_READ_TIMEOUT), max_attempts=limits.max_attempts
        )
        endpoints = [self.stores[r].endpoint for r in (source_region, target_region)]
        self.in_flight = options.workers or partition_concurrency(endpoints)
        self.listers = [
            self.stores[r].lister(dataset.buckets[r], timeouts=list_timeouts, max_in_flight=self.in_flight)
            for r in (source_region, target_region)
        ]
        self.lock = threading.Lock()
        self.started = time.time()
        self.objects = 0
        self.bytes = 0
        self.changed = 0
        self.basis_counts: dict[str, int] = {b.value: 0 for b in Basis}
        self.basis_keys: dict[str, list[str]] = {
            b.value: [] for b in (Basis.SHA256, Basis.CRC64NVME, Basis.DOWNLOAD)
        }
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

    def _content_check(self, a: ListedObject, b: ListedObject) -> None:
        """HEAD both sides for the stored checksum; download both when there is none."""
        try:
            src = self._head(self.source_region, self.source_bucket, a.key)
            dst = self._head(self.target_region, self.target_bucket, b.key)
            if is_content_etag(a.etag) and is_content_etag(b.etag) and not (src.kms or dst.kms):
                # Both ETags are MD5s of the bytes after all (objects not under SSE-KMS in a bucket
                # whose default is KMS, or ETags that differed in the listing): they decide.
                self._count(Basis.ETAG, a.key)
                if a.etag.strip('"').lower() == b.etag.strip('"').lower():
                    self._offer(b)
                    return
                self._difference(
                    Difference.CONTENT,
                    a,
                    b,
                    Basis.ETAG,
                    f"content differs (ETag {a.etag} vs {b.etag}, same size {a.size})",
                )
                return
            stored = stored_verdict(src, dst)
            if stored is None:
                # No comparable stored checksum (uploaded without one): hash the bytes themselves.
                basis = Basis.DOWNLOAD
                left = self._download_hash(self.source_region, self.source_bucket, a.key)[0]
                right = self._download_hash(self.target_region, self.target_bucket, b.key)[0]
                verdict = left == right
                detail = f"content differs (sha256 of the bytes {left[:12]}... vs {right[:12]}...)"
            elif stored[0] is Basis.CRC64NVME:
                basis, verdict = stored
                detail = f"content differs (stored CRC64NVME {src.crc64nvme} vs {dst.crc64nvme})"
            else:
                basis, verdict = stored
                detail = f"content differs (stored SHA-256 {src.sha256} vs {dst.sha256})"
            self._count(basis, a.key)
            if verdict:
                self._offer(b)
            else:
                self._difference(Difference.CONTENT, a, b, basis, detail)
        except NotFound:
            # deleted between the listing and the HEAD: the next run will see where it stands
            with self.lock:
                self.changed += 1
        except MldrError as exc:
            self._difference(Difference.CONTENT, a, b, None, f"content could not be compared: {exc}")

    def _bucket_kms(self) -> bool:
        """Default encryption SSE-KMS on either bucket: no ETag there is a content hash."""
        # beside the probe, so as quick to give up on a region that does not answer
        return any(
            self.cloud.objects(region, timeouts=PROBE_TIMEOUTS).default_kms_key(bucket)
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
        md5 = MD5_ETAG.match
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
        progress = Progress(
            f"verify {self.dataset.name}",
            unit="partitions",
            items="keys",
            total=len(parts.prefixes),
            every=5.0,
            logger=log,
        )
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

    def preflight(self) -> None:
        """Both buckets answer, quickly: a dead region fails in seconds, not after every retry."""

        def probe(lister: Lister) -> None:
            # a region found silent here is not asked again by this run's report and metrics
            with self.cloud.silent.watch(lister.region):
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
    cloud: Cloud,
    topology: Topology,
    dataset: Dataset,
    *,
    source_region: str,
    status: StatusSource,
    options: VerifyOptions = DEFAULT_OPTIONS,
) -> DatasetVerification:
    target_region = topology.other_region(source_region)
    with ThreadPoolExecutor(max_workers=16, thread_name_prefix=f"verify-{dataset.name}") as pool:
        check = _DatasetCheck(
            cloud,
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
    cloud: Cloud,
    topology: Topology,
    *,
    datasets: list[str] | None = None,
    options: VerifyOptions = DEFAULT_OPTIONS,
    source_region: str | None = None,
    status: StatusSource | None = None,
) -> VerificationReport:
    """Verify the named datasets (all when None), side by side. Raises only for bad input."""
    from mldr.checks.direction import replication_direction
    from mldr.checks.replication_status import status_source

    selected = topology.datasets_named(datasets)  # unknown names fail here, before any request
    started = _now_iso()
    source, _ = replication_direction(cloud, topology, source_region=source_region)
    status = status or status_source(topology, cloud)
    with ThreadPoolExecutor(max_workers=len(selected), thread_name_prefix="verify") as pool:
        results = list(
            pool.map(
                lambda d: verify_dataset(
                    cloud, topology, d, source_region=source, status=status, options=options
                ),
                selected,
            )
        )
    return VerificationReport(topology.name, started, _now_iso(), results)
