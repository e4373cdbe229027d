"""Resync before failback: make the two regions hold the same current objects again.

While region A was active, B (the old primary) missed what A wrote, and A may have missed what
B wrote before it went down (the data at risk of an unplanned failover). For every key:

- changed in A since the failover started (a new version or a delete marker): A wins, copy
  A -> B (or delete in B);
- otherwise B's current state wins where it differs: copy B -> A (data B had that never made
  it across) — nothing written anywhere is lost; the version it replaces stays a noncurrent
  version.

Only keys whose current state differs are copied, in parallel, with progress in the logs;
each copy is verified by SHA-256 (S3 checks the bytes against the checksum we send).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mldr.aws import TRANSFER_TIMEOUTS, ClientFactory, aws_call
from mldr.errors import AwsError, MldrError
from mldr.topology import Dataset, Topology

log = logging.getLogger(__name__)

WORKERS = 32


@dataclass(frozen=True)
class Current:
    """The latest version of a key in one bucket."""

    key: str
    version_id: str
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


@dataclass
class DatasetResync:
    dataset: str
    keys_compared: int = 0
    copied_to: dict[str, int] = field(default_factory=dict)
    deleted_in: dict[str, int] = field(default_factory=dict)
    bytes_copied: int = 0
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def public(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "keys_compared": self.keys_compared,
            "copied_to": self.copied_to,
            "deleted_in": self.deleted_in,
            "bytes_copied": self.bytes_copied,
            "failures": self.failures,
            "seconds": round(self.seconds, 3),
        }


def _epoch(value: datetime) -> float:
    return value.timestamp()


def list_current(s3: Any, bucket: str, region: str, prefix: str = "") -> dict[str, Current]:
    """Latest version (or delete marker) of every key, in one paginated listing."""
    out: dict[str, Current] = {}
    with aws_call(f"bucket {bucket}", region=region):
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
            for v in page.get("Versions", []):
                if v.get("IsLatest"):
                    out[v["Key"]] = Current(
                        v["Key"],
                        v["VersionId"],
                        _epoch(v["LastModified"]),
                        v.get("ETag", ""),
                        int(v["Size"]),
                        False,
                    )
            for m in page.get("DeleteMarkers", []):
                if m.get("IsLatest"):
                    out[m["Key"]] = Current(m["Key"], m["VersionId"], _epoch(m["LastModified"]), "", 0, True)
    return out


def _same(a: Current | None, b: Current | None) -> bool:
    if a is None or a.deleted:
        return b is None or b.deleted
    if b is None or b.deleted:
        return False
    return a.size == b.size and a.etag == b.etag


def plan(
    active: dict[str, Current],
    standby: dict[str, Current],
    *,
    active_region: str,
    standby_region: str,
    since: float,
) -> Iterator[Transfer]:
    """The transfers that make both sides equal (see the module docstring for who wins)."""
    for key in sorted(active.keys() | standby.keys()):
        a, s = active.get(key), standby.get(key)
        if _same(a, s):
            continue
        if a is not None and a.last_modified >= since:
            if a.deleted:
                yield Transfer(key, active_region, standby_region, "delete")
            else:
                yield Transfer(key, active_region, standby_region, "copy")
        elif s is not None and not s.deleted:
            yield Transfer(key, standby_region, active_region, "copy")
        elif s is not None and s.deleted and a is not None and not a.deleted:
            yield Transfer(key, standby_region, active_region, "delete")


def copy_verified(
    src: Any, dst: Any, *, src_bucket: str, dst_bucket: str, key: str, version_id: str | None
) -> int:
    """Copy one object across regions; S3 rejects the put if the bytes don't match SHA-256."""
    kwargs: dict[str, Any] = {"Bucket": src_bucket, "Key": key, "ChecksumMode": "ENABLED"}
    if version_id:
        kwargs["VersionId"] = version_id
    obj = src.get_object(**kwargs)
    body = obj["Body"].read()
    digest = base64.b64encode(hashlib.sha256(body).digest()).decode()
    if obj.get("ChecksumSHA256") and "-" not in obj["ChecksumSHA256"] and obj["ChecksumSHA256"] != digest:
        raise MldrError(f"s3://{src_bucket}/{key}: downloaded bytes do not match the stored SHA-256")
    put: dict[str, Any] = {
        "Bucket": dst_bucket,
        "Key": key,
        "Body": body,
        "Metadata": obj.get("Metadata", {}),
        "ChecksumSHA256": digest,
    }
    if obj.get("ContentType"):
        put["ContentType"] = obj["ContentType"]
    dst.put_object(**put)
    return len(body)


class _Progress:
    def __init__(self, what: str, total: int) -> None:
        self.what, self.total, self.done = what, total, 0
        self.started = self.last = time.monotonic()
        self.lock = threading.Lock()

    def tick(self) -> None:
        with self.lock:
            self.done += 1
            now = time.monotonic()
            if now - self.last >= 2.0 or self.done == self.total:
                self.last = now
                rate = self.done / max(now - self.started, 1e-6)
                eta = (self.total - self.done) / rate if rate else 0.0
                log.info(
                    "%s: %d of %d (%.0f objects/s, ETA %.0fs)", self.what, self.done, self.total, rate, eta
                )


def resync_dataset(
    factory: ClientFactory,
    dataset: Dataset,
    *,
    active_region: str,
    standby_region: str,
    since: float,
    only_to: str | None = None,
) -> DatasetResync:
    started = time.monotonic()
    report = DatasetResync(dataset=dataset.name)
    buckets = dataset.buckets
    clients = {
        r: factory.client("s3", r, timeouts=TRANSFER_TIMEOUTS) for r in (active_region, standby_region)
    }
    with ThreadPoolExecutor(max_workers=2) as pool:
        fa = pool.submit(
            list_current, clients[active_region], buckets[active_region], active_region, dataset.prefix
        )
        fs = pool.submit(
            list_current, clients[standby_region], buckets[standby_region], standby_region, dataset.prefix
        )
        active, standby = fa.result(), fs.result()
    report.keys_compared = len(active.keys() | standby.keys())
    transfers = list(
        plan(active, standby, active_region=active_region, standby_region=standby_region, since=since)
    )
    if only_to is not None:
        # e.g. after the active region is fenced: it cannot take writes, so nothing may go there
        blocked = [t for t in transfers if t.target_region != only_to]
        report.failures += [
            f"{t.key}: needs a {t.action} into {t.target_region}, which is fenced" for t in blocked
        ]
        transfers = [t for t in transfers if t.target_region == only_to]
    log.info(
        "resync %s: %d keys compared, %d to transfer (active %s, standby %s)",
        dataset.name,
        report.keys_compared,
        len(transfers),
        active_region,
        standby_region,
    )
    progress = _Progress(f"resync {dataset.name}", len(transfers))
    lock = threading.Lock()
    current = {active_region: active, standby_region: standby}

    def run(t: Transfer) -> None:
        src, dst = clients[t.source_region], clients[t.target_region]
        with aws_call(f"s3://{buckets[t.target_region]}/{t.key}", region=t.target_region):
            if t.action == "delete":
                dst.delete_object(Bucket=buckets[t.target_region], Key=t.key)
                with lock:
                    report.deleted_in[t.target_region] = report.deleted_in.get(t.target_region, 0) + 1
            else:
                size = copy_verified(
                    src,
                    dst,
                    src_bucket=buckets[t.source_region],
                    dst_bucket=buckets[t.target_region],
                    key=t.key,
                    version_id=current[t.source_region][t.key].version_id,
                )
                with lock:
                    report.copied_to[t.target_region] = report.copied_to.get(t.target_region, 0) + 1
                    report.bytes_copied += size
        progress.tick()

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        futures = {pool.submit(run, t): t for t in transfers}
        for future in as_completed(futures):
            try:
                future.result()
            except (AwsError, MldrError) as exc:
                report.failures.append(f"{futures[future].key}: {exc}")
    report.seconds = time.monotonic() - started
    if report.failures:
        log.error(
            "resync %s: %d transfer(s) failed, first: %s",
            dataset.name,
            len(report.failures),
            report.failures[0],
        )
    return report


def resync(
    factory: ClientFactory,
    topology: Topology,
    *,
    active_region: str,
    since: float,
    datasets: list[str] | None = None,
    only_to: str | None = None,
) -> list[DatasetResync]:
    standby_region = topology.other_region(active_region)
    return [
        resync_dataset(
            factory,
            d,
            active_region=active_region,
            standby_region=standby_region,
            since=since,
            only_to=only_to,
        )
        for d in topology.datasets_named(datasets)
    ]
