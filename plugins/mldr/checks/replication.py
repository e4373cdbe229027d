"""Replication lag: how far behind is the standby region right now?

Two read-mostly probes per dataset (the only write is the canary, under the reserved prefix
`_mldr/canary/` that verification, resync and drills ignore):

- **Canary**: a small timestamped object is written into the source bucket and the replica is
  polled (HEAD) until it answers 200. Lag = from the PUT being acknowledged to the replica
  being readable, with the poll interval as resolution. The wait is bounded; a canary that did
  not arrive proves only that the lag is at least the time waited. Canaries older than an
  hour are removed from both buckets, every version, so they do not pile up.
- **Backlog**: the source versions whose replica is pending or failed (per-version replication
  status, `mldr.checks.replication_status`), with the age of the oldest: the current RPO
  exposure in seconds, objects and bytes.

A breach - the oldest pending object older than the threshold (default: the dataset's RPO),
any FAILED object, or a canary slower than the threshold - makes the dataset not ok, with a
message that says which keys and how far over.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from mldr.checks.replication_status import BacklogItem, ReplicationState, StatusSource
from mldr.checks.verification.model import RESERVED_PREFIX
from mldr.cloud import Cloud
from mldr.cloud.calls import PROBE_TIMEOUTS
from mldr.errors import AccessDenied, ConfigurationError, MldrError, NotFound
from mldr.topology import Dataset, Topology

log = logging.getLogger(__name__)

CANARY_PREFIX = f"{RESERVED_PREFIX}canary/"
CANARY_KEEP_SECONDS = 3600.0
CANARY_CLEANUP_LIMIT = 500  # per bucket and run: cleanup must never dominate a 5-minute check
DEFAULT_CANARY_TIMEOUT = 30.0
OLDEST_LISTED = 10


@dataclass(frozen=True)
class LagOptions:
    #: breach threshold in seconds; None: each dataset's RPO
    threshold_seconds: float | None = None
    #: how long to wait for the canary; None: the threshold (capped at 30 s)
    canary_timeout_seconds: float | None = None
    poll_seconds: float = 0.1
    canary: bool = True

    def __post_init__(self) -> None:
        for name in ("threshold_seconds", "canary_timeout_seconds"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or value <= 0):
                raise ConfigurationError(f"{name.replace('_', ' ')} must be > 0, got {value!r}")
        if not 0 < self.poll_seconds <= 5:
            raise ConfigurationError(f"poll seconds must be in (0, 5], got {self.poll_seconds!r}")

    def threshold(self, dataset: Dataset) -> float:
        return float(self.threshold_seconds or dataset.rpo_seconds)

    def canary_timeout(self, dataset: Dataset) -> float:
        if self.canary_timeout_seconds is not None:
            return float(self.canary_timeout_seconds)
        return min(self.threshold(dataset), DEFAULT_CANARY_TIMEOUT)


@dataclass(frozen=True)
class CanaryResult:
    key: str
    lag_seconds: float | None  # None: not readable in the replica within the wait
    waited_seconds: float
    error: str | None = None
    cleaned: int = 0

    @property
    def timed_out(self) -> bool:
        return self.lag_seconds is None and self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "lag_seconds": None if self.lag_seconds is None else round(self.lag_seconds, 3),
            "waited_seconds": round(self.waited_seconds, 3),
            "timed_out": self.timed_out,
            "error": self.error,
            "old_canaries_removed": self.cleaned,
        }


@dataclass(frozen=True)
class DatasetLag:
    name: str
    source_region: str
    target_region: str
    source_bucket: str
    target_bucket: str
    rpo_seconds: int
    threshold_seconds: float
    canary: CanaryResult | None = None
    pending_objects: int = 0
    pending_bytes: int = 0
    failed_objects: int = 0
    failed_bytes: int = 0
    oldest_pending_age_seconds: float | None = None
    oldest_failed_age_seconds: float | None = None
    oldest: list[dict[str, Any]] = field(default_factory=list)
    failed_keys: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def lag_seconds(self) -> float | None:
        return self.canary.lag_seconds if self.canary else None

    @property
    def exposure_seconds(self) -> float:
        """The RPO exposure now: the oldest unreplicated write, or the canary's lag (lower bound)."""
        candidates = [self.oldest_pending_age_seconds, self.oldest_failed_age_seconds]
        if self.canary is not None:
            candidates.append(
                self.canary.lag_seconds
                if self.canary.lag_seconds is not None
                else self.canary.waited_seconds
                if self.canary.timed_out
                else None
            )
        return max((c for c in candidates if c is not None), default=0.0)

    def problems(self) -> list[str]:
        if self.error:
            return [f"{self.name}: lag could not be measured: {self.error}"]
        out = []
        limit = self.threshold_seconds
        rpo = f"threshold {limit:.0f}s, RPO {self.rpo_seconds}s"
        age = self.oldest_pending_age_seconds
        if age is not None and age > limit:
            keys = ", ".join(o["key"] for o in self.oldest if o["state"] == "PENDING")
            out.append(
                f"{self.name}: {self.pending_objects} object(s) ({self.pending_bytes} bytes) not replicated "
                f"to {self.target_region}; the oldest has waited {age:.0f}s, {age - limit:.0f}s over the "
                f"{rpo}: {keys}"
            )
        if self.failed_objects:
            shown = ", ".join(self.failed_keys[:OLDEST_LISTED])
            more = (
                f" and {self.failed_objects - OLDEST_LISTED} more"
                if self.failed_objects > OLDEST_LISTED
                else ""
            )
            out.append(
                f"{self.name}: {self.failed_objects} object(s) FAILED replication to {self.target_region} "
                f"and will not be retried by S3: {shown}{more}"
            )
        canary = self.canary
        if canary is not None and canary.error:
            out.append(f"{self.name}: canary failed: {canary.error}")
        elif canary is not None and canary.lag_seconds is not None and canary.lag_seconds > limit:
            out.append(
                f"{self.name}: the canary took {canary.lag_seconds:.1f}s to reach {self.target_region}, "
                f"{canary.lag_seconds - limit:.1f}s over the {rpo}"
            )
        elif canary is not None and canary.timed_out and canary.waited_seconds >= limit:
            out.append(
                f"{self.name}: the canary did not reach {self.target_region} within "
                f"{canary.waited_seconds:.0f}s ({rpo}); replication is stalled or slower than the RPO"
            )
        return out

    @property
    def ok(self) -> bool:
        return not self.problems()

    def to_dict(self) -> dict[str, Any]:
        limit = self.threshold_seconds
        return {
            "name": self.name,
            "ok": self.ok,
            "lag_seconds": None if self.lag_seconds is None else round(self.lag_seconds, 3),
            "pending_objects": self.pending_objects,
            "pending_bytes": self.pending_bytes,
            "oldest_pending_age_seconds": None
            if self.oldest_pending_age_seconds is None
            else round(self.oldest_pending_age_seconds, 1),
            "failed_objects": self.failed_objects,
            "failed_bytes": self.failed_bytes,
            "oldest_failed_age_seconds": None
            if self.oldest_failed_age_seconds is None
            else round(self.oldest_failed_age_seconds, 1),
            "rpo_exposure_seconds": round(self.exposure_seconds, 1),
            "threshold_seconds": limit,
            "rpo_seconds": self.rpo_seconds,
            "over_by_seconds": round(max(0.0, self.exposure_seconds - limit), 1),
            "source_region": self.source_region,
            "target_region": self.target_region,
            "source_bucket": self.source_bucket,
            "target_bucket": self.target_bucket,
            "canary": self.canary.to_dict() if self.canary else None,
            "oldest": self.oldest,
            "failed_keys": self.failed_keys,
            "problems": self.problems(),
            "error": self.error,
        }


@dataclass(frozen=True)
class LagReport:
    topology: str
    measured_at: str
    datasets: list[DatasetLag]

    @property
    def ok(self) -> bool:
        return all(d.ok for d in self.datasets)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "replication-lag",
            "topology": self.topology,
            "ok": self.ok,
            "measured_at": self.measured_at,
            "datasets": [d.to_dict() for d in self.datasets],
        }


# --- canary -----------------------------------------------------------------------------------


def canary_key(dataset: Dataset, *, now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S.%fZ")
    return f"{dataset.prefix}{CANARY_PREFIX}{stamp}-{uuid.uuid4().hex[:8]}.json"


def measure_canary(
    cloud: Cloud,
    dataset: Dataset,
    *,
    source_region: str,
    target_region: str,
    timeout: float,
    poll: float = 0.1,
) -> CanaryResult:
    """Write a canary into the source bucket; time until the replica is readable."""
    source_bucket, target_bucket = dataset.buckets[source_region], dataset.buckets[target_region]
    key = canary_key(dataset)
    body = json.dumps({"written_at": datetime.now(UTC).isoformat(), "purpose": "mldr replication-lag canary"})
    writer = cloud.objects(source_region)
    reader = cloud.objects(target_region, timeouts=PROBE_TIMEOUTS)
    try:
        with cloud.silent.guard(source_region):
            writer.put(source_bucket, key, body.encode(), content_type="application/json")
    except MldrError as exc:
        hint = " (is the bucket write-fenced by a failover?)" if isinstance(exc, AccessDenied) else ""
        return CanaryResult(key, None, 0.0, error=f"could not write the canary: {exc}{hint}")
    written = time.monotonic()
    while True:
        started = time.monotonic()
        try:
            # a target found silent is not asked again by this run's report and metrics
            with cloud.silent.watch(target_region):
                reader.head(target_bucket, key)
            return CanaryResult(key, time.monotonic() - written, time.monotonic() - written)
        except NotFound:
            pass  # not there yet
        except MldrError as exc:  # RegionUnreachable included
            return CanaryResult(key, None, time.monotonic() - written, error=str(exc))
        waited = time.monotonic() - written
        if waited >= timeout:
            return CanaryResult(key, None, waited)
        time.sleep(max(0.0, min(poll - (time.monotonic() - started), timeout - waited)))


def clean_canaries(
    cloud: Cloud, dataset: Dataset, *, regions: list[str], older_than: float = CANARY_KEEP_SECONDS
) -> int:
    """Delete the canaries older than `older_than` seconds, in each bucket; returns how many.

    A delete marker, never a version for good: the DR operator role may not destroy history (its
    explicit Deny on `s3:DeleteObjectVersion`), so the versions stay for the dataset bucket's
    lifecycle rule for `_mldr/`, which expires them after a day (infra/README.md). Each side is
    cleaned on its own: a region may be down, or its replication paused.
    """
    cutoff = time.time() - older_than
    removed = 0
    for region in regions:
        bucket = dataset.buckets[region]
        store = cloud.objects(region)
        doomed: list[str] = []
        for listed in store.list_objects(bucket, prefix=f"{dataset.prefix}{CANARY_PREFIX}"):
            if datetime.fromisoformat(listed.modified.replace("Z", "+00:00")).timestamp() < cutoff:
                doomed.append(listed.key)
                if len(doomed) >= CANARY_CLEANUP_LIMIT:
                    break
        store.delete_keys(bucket, doomed)
        removed += len(doomed)
    if removed:
        log.info("lag %s: deleted %d old canary(ies)", dataset.name, removed)
    return removed


# --- backlog ----------------------------------------------------------------------------------


def summarize_backlog(
    items: list[BacklogItem], dataset: Dataset, *, now: float | None = None
) -> dict[str, Any]:
    """Counts, bytes and ages of a dataset's open backlog (canaries and other reserved keys excluded)."""
    now = time.time() if now is None else now
    reserved = dataset.prefix + RESERVED_PREFIX
    relevant = [i for i in items if i.key.startswith(dataset.prefix) and not i.key.startswith(reserved)]
    pending = [i for i in relevant if i.state is ReplicationState.PENDING]
    failed = [i for i in relevant if i.state is ReplicationState.FAILED]

    def age(item: BacklogItem) -> float:
        return max(0.0, now - item.created_at)

    oldest = sorted(pending + failed, key=lambda i: i.created_at)[:OLDEST_LISTED]
    return {
        "pending_objects": len(pending),
        "pending_bytes": sum(i.size for i in pending),
        "failed_objects": len(failed),
        "failed_bytes": sum(i.size for i in failed),
        "oldest_pending_age_seconds": max((age(i) for i in pending), default=None),
        "oldest_failed_age_seconds": max((age(i) for i in failed), default=None),
        "oldest": [
            {
                "key": i.key,
                "state": i.state.value,
                "age_seconds": round(age(i), 1),
                "size": i.size,
                "delete_marker": i.is_delete_marker,
                "error": i.error,
            }
            for i in oldest
        ],
        "failed_keys": sorted(i.key for i in failed),
    }


def _still_at_risk(cloud: Cloud, region: str, items: list[BacklogItem]) -> list[BacklogItem]:
    """Drop FAILED versions that no longer exist in the source: deleted data is not at risk.

    S3 keeps the replication status on the version itself, so a deleted version has none; a
    status channel that remembers it (the sandbox's) must not page anyone about it.
    """
    failed = [i for i in items if i.state is ReplicationState.FAILED and not i.is_delete_marker]
    if not failed:
        return items
    store = cloud.objects(region, timeouts=PROBE_TIMEOUTS)
    vanished: set[tuple[str, str]] = set()
    for item in failed[:CANARY_CLEANUP_LIMIT]:
        try:
            store.head(item.bucket, item.key, version_id=item.version_id)
        except NotFound:
            vanished.add((item.key, item.version_id))
        except MldrError:
            pass  # unknown: still at risk
    return [i for i in items if (i.key, i.version_id) not in vanished]


def measure_dataset(
    cloud: Cloud,
    topology: Topology,
    dataset: Dataset,
    *,
    source_region: str,
    status: StatusSource,
    options: LagOptions = LagOptions(),
) -> DatasetLag:
    target_region = topology.other_region(source_region)
    base: dict[str, Any] = {
        "name": dataset.name,
        "source_region": source_region,
        "target_region": target_region,
        "source_bucket": dataset.buckets[source_region],
        "target_bucket": dataset.buckets[target_region],
        "rpo_seconds": dataset.rpo_seconds,
        "threshold_seconds": options.threshold(dataset),
    }

    def backlog() -> tuple[float, list[BacklogItem]]:
        items = status.backlog(region=source_region, bucket=dataset.buckets[source_region])
        return time.time(), items  # ages are as of this read, not of the end of the canary's wait

    try:
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix=f"lag-{dataset.name}") as pool:
            backlog_job = pool.submit(backlog)
            canary = None
            if options.canary:
                canary = measure_canary(
                    cloud,
                    dataset,
                    source_region=source_region,
                    target_region=target_region,
                    timeout=options.canary_timeout(dataset),
                    poll=options.poll_seconds,
                )
            read_at, items = backlog_job.result()
            items = _still_at_risk(cloud, source_region, items)
    except (MldrError, httpx.HTTPError) as exc:
        log.error("lag %s: %s", dataset.name, exc)
        return DatasetLag(**base, error=str(exc))
    if canary is not None and canary.error is None:
        try:
            cleaned = clean_canaries(cloud, dataset, regions=[source_region, target_region])
        except MldrError as exc:
            log.warning("lag %s: old canaries not cleaned up: %s", dataset.name, exc)
            cleaned = 0
        canary = CanaryResult(canary.key, canary.lag_seconds, canary.waited_seconds, canary.error, cleaned)
    result = DatasetLag(**base, canary=canary, **summarize_backlog(items, dataset, now=read_at))
    lag = "n/a" if result.lag_seconds is None else f"{result.lag_seconds:.2f}s"
    log.info(
        "lag %s: canary %s, %d pending (%d bytes), %d failed, oldest %s -> %s",
        dataset.name,
        lag,
        result.pending_objects,
        result.pending_bytes,
        result.failed_objects,
        "none" if result.oldest_pending_age_seconds is None else f"{result.oldest_pending_age_seconds:.0f}s",
        "OK" if result.ok else "BREACH",
    )
    return result


def measure_lag(
    cloud: Cloud,
    topology: Topology,
    *,
    datasets: list[str] | None = None,
    options: LagOptions = LagOptions(),
    source_region: str | None = None,
    status: StatusSource | None = None,
) -> LagReport:
    """Measure every named dataset (all when None), side by side. Raises only for bad input."""
    from mldr.checks.direction import replication_direction
    from mldr.checks.health import s3_reachable
    from mldr.checks.replication_status import status_source

    selected = topology.datasets_named(datasets)
    measured_at = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    source, _ = replication_direction(cloud, topology, source_region=source_region)
    status = status or status_source(topology, cloud)
    # A source that does not answer is found here in seconds (and marked silent), not by each
    # dataset's canary write waiting out its retries; its report copy and metrics are skipped.
    reachable, why = s3_reachable(cloud, topology, source)
    if not reachable:
        log.error("lag: the source region %s does not answer: %s", source, why)
    with ThreadPoolExecutor(max_workers=len(selected), thread_name_prefix="lag") as pool:
        results = list(
            pool.map(
                lambda d: measure_dataset(
                    cloud, topology, d, source_region=source, status=status, options=options
                ),
                selected,
            )
        )
    return LagReport(topology.name, measured_at, results)


def lag_metrics(result: DatasetLag) -> dict[Any, float]:
    """The CloudWatch values of one dataset's measurement (none when it could not be measured)."""
    from mldr.checks.metrics import Metric

    if result.error:
        return {}
    values: dict[Any, float] = {
        Metric.PENDING_OBJECTS: result.pending_objects,
        Metric.PENDING_BYTES: result.pending_bytes,
        Metric.FAILED_OBJECTS: result.failed_objects,
    }
    if result.canary is not None and result.canary.error is None:
        # a canary that did not arrive proves a lag of at least the time waited: alarms still fire
        values[Metric.REPLICATION_LAG_SECONDS] = (
            result.canary.lag_seconds
            if result.canary.lag_seconds is not None
            else result.canary.waited_seconds
        )
    return values


def render_html(document: dict[str, Any]) -> str:
    """The stored report's HTML page (templates/replication_lag.html)."""
    from mldr.html import generated_at, render

    title = f"Replication lag {'OK' if document['ok'] else 'BREACH'} - {document['topology']}"
    return render("replication_lag.html", title=title, generated=generated_at(), document=document)
