"""Apply a point-in-time restore plan: revert keys by copying old versions back, delete the rest.

Every change is a new version (a copy of the version current at the chosen time, or a delete
marker), so nothing is lost and the restore replicates onward like any write. Each copy is made
with a stored SHA-256 and checked against the version it copies: by the MD5 ETags of both when
the bucket is not SSE-KMS and the version is single-part (no extra request), else by SHA-256 -
the version's stored one, or that of its bytes, read once. A key whose copy does not match is
reported as a failure, never counted as restored.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from mldr.checks.point_in_time import KeyChange, RestorePlan
from mldr.cloud import Cloud
from mldr.cloud.calls import TRANSFER_TIMEOUTS
from mldr.cloud.objects import ObjectStore, streamed_sha256
from mldr.errors import MldrError
from mldr.progress import Progress

log = logging.getLogger(__name__)

#: Copies in flight at once: a restore is many small server-side copies, each a round trip.
WORKERS = 16
#: S3 copies up to 5 GiB in one CopyObject; larger versions need a multipart copy.
MAX_SINGLE_COPY = 5 * 1024**3


@dataclass
class RestoreReport:
    reverted: int = 0
    deleted: int = 0
    bytes: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return (self.reverted + self.deleted) / self.seconds if self.seconds else 0.0

    def summary(self) -> str:
        failed = f", {len(self.failures)} FAILED (first: {self.failures[0]})" if self.failures else ""
        return (
            f"{self.reverted} key(s) reverted ({self.bytes} bytes), {self.deleted} deleted, in "
            f"{self.seconds:.1f}s ({self.rate:.0f} keys/s){failed}"
        )


def _expected_sha256(store: ObjectStore, bucket: str, change: KeyChange) -> str:
    """The SHA-256 (base64) of the version being copied back: stored, or computed from its bytes."""
    assert change.version_id is not None
    head = store.head(bucket, change.key, version_id=change.version_id, checksum=True)
    if head.sha256 and head.checksum_type in (None, "FULL_OBJECT"):
        return head.sha256
    return base64.b64encode(streamed_sha256(store, bucket, change.key, version_id=change.version_id)).decode()


def _is_md5(etag: str) -> bool:
    """A single-part upload's ETag without SSE-KMS: the MD5 of the bytes (32 hex digits)."""
    return len(etag) == 32 and all(c in "0123456789abcdef" for c in etag)


def _revert(store: ObjectStore, bucket: str, change: KeyChange, *, kms: bool) -> None:
    assert change.version_id is not None
    if change.bytes > MAX_SINGLE_COPY:
        raise MldrError(
            f"{change.key}: {change.bytes} bytes is more than one CopyObject takes (5 GiB); restore it "
            "with a multipart copy (aws s3api upload-part-copy) - not done by mldr yet"
        )
    if not kms and _is_md5(change.etag):
        # Not SSE-KMS, single part: the version's ETag is the MD5 of its bytes, and so is the
        # copy's (S3 computes it from what it wrote): equal ETags are equal bytes, no extra request.
        copied = store.copy_version(bucket, change.key, change.version_id, to_key=change.target_key)
        if copied.etag != change.etag:
            raise MldrError(
                f"{change.target_key}: the copy's MD5 {copied.etag} is not that of version "
                f"{change.version_id} ({change.etag})"
            )
        return
    # SSE-KMS (its ETags look like MD5s and are not) or multipart: SHA-256 decides
    expected = _expected_sha256(store, bucket, change)
    copied = store.copy_version(bucket, change.key, change.version_id, to_key=change.target_key)
    if copied.sha256 != expected:
        raise MldrError(
            f"{change.target_key}: the copy's SHA-256 {copied.sha256} is not that of version "
            f"{change.version_id} ({expected})"
        )


def apply_restore(cloud: Cloud, plan: RestorePlan, *, workers: int = WORKERS) -> RestoreReport:
    """Make every change of the plan, in parallel; progress in the log (n of N, rate, ETA)."""
    store = cloud.objects(plan.region, timeouts=TRANSFER_TIMEOUTS)
    # Under SSE-KMS an ETag is no digest of the bytes (yet looks like one): decided per bucket,
    # failing closed when the setting cannot be read.
    kms = store.default_kms_key(plan.bucket)
    report = RestoreReport()
    progress = Progress(f"restore {plan.dataset} in {plan.region}", unit="keys", total=len(plan.changes))
    started = time.monotonic()
    lock = threading.Lock()

    def one(change: KeyChange) -> None:
        try:
            if change.action == "revert":
                _revert(store, plan.bucket, change, kms=kms)
            else:
                store.delete(plan.bucket, change.target_key)
        except MldrError as exc:
            with lock:
                report.failures.append(f"{change.target_key}: {exc}")
        else:
            with lock:
                if change.action == "revert":
                    report.reverted += 1
                    report.bytes += change.bytes
                else:
                    report.deleted += 1
        finally:
            progress.tick()

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="restore") as pool:
        list(pool.map(one, plan.changes))
    report.seconds = round(time.monotonic() - started, 3)
    log.info("restore %s: %s", plan.dataset, report.summary())
    return report
