"""What a point-in-time restore would change: the plan, read from the bucket's version history.

For every key under a prefix, the version current at time T (the newest written at or before
T) against the version current now:
- **revert**: they differ - T's version is copied back as a new current version;
- **delete**: the key did not exist at T (no version yet, or a delete marker) but does now -
  it gets a delete marker;
- **leave**: the same state (the same version, or a key absent both then and now).
Nothing is deleted for good: every change is a new version, so a restore is undone by restoring
to the moment before it. With `into_prefix`, T's state is written beside the live data (under
another prefix) instead of over it. This module only reads; `mldr.actions.restore` applies a plan.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import groupby
from typing import Literal

from mldr.cloud import Cloud
from mldr.cloud.objects import ObjectStore, ObjectVersion, Versioning, streamed_sha256
from mldr.errors import ConfigurationError, MldrError
from mldr.topology import Topology

Action = Literal["revert", "delete"]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_restore_time(text: str, *, now: float | None = None) -> float:
    """Epoch seconds of an RFC 3339 time (`2026-12-03T10:15:00Z`) or a relative one (`-2h`, `-30m`,
    `-90s`, `-1d`). A time in the future, or one naming no zone, is refused."""
    now = time.time() if now is None else now
    value = text.strip()
    if value.startswith("-") and value[-1:] in _UNITS:
        try:
            amount = float(value[1:-1])
        except ValueError:
            amount = -1.0
        if not amount > 0 or amount == float("inf"):
            raise ConfigurationError(f"--to {text!r}: a relative time is a positive amount, e.g. -2h or -30m")
        return now - amount * _UNITS[value[-1]]
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigurationError(
            f"--to {text!r} is not a time: give RFC 3339 (2026-12-03T10:15:00Z) or a relative time (-2h)"
        ) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ConfigurationError(f"--to {text!r} names no time zone: add Z (UTC) or an offset like +01:00")
    at = parsed.timestamp()
    if at > now + 1.0:
        raise ConfigurationError(f"--to {text!r} is in the future: a restore goes back in time")
    return at


def iso(epoch: float) -> str:
    """RFC 3339 in UTC, to the millisecond (what `--to` takes back)."""
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=epoch)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, kw_only=True)
class KeyChange:
    """One key the restore changes."""

    action: Action
    key: str  # the key whose history is read
    target_key: str  # the key written (`key` unless restoring into another prefix)
    version_id: str | None  # revert: the version current at T (copied back)
    etag: str  # revert: its ETag (the copy is conditional on it)
    bytes: int  # revert: its size
    loses_version: str | None  # the version current now, that stops being current
    loses_modified: float | None  # when that version was written


@dataclass(frozen=True, kw_only=True)
class RestorePlan:
    dataset: str
    region: str
    bucket: str
    at: float
    prefix: str
    into_prefix: str | None
    keys_read: int
    left: int
    changes: tuple[KeyChange, ...]

    @property
    def reverts(self) -> tuple[KeyChange, ...]:
        return tuple(c for c in self.changes if c.action == "revert")

    @property
    def deletes(self) -> tuple[KeyChange, ...]:
        return tuple(c for c in self.changes if c.action == "delete")

    @property
    def bytes_to_copy(self) -> int:
        return sum(c.bytes for c in self.reverts)

    def summary(self) -> str:
        where = f"{self.bucket}/{self.prefix}" if self.prefix else self.bucket
        into = f" into {self.into_prefix!r}" if self.into_prefix is not None else ""
        newest = max((c.loses_modified for c in self.changes if c.loses_modified), default=None)
        lost = f"; the newest change it undoes was written {iso(newest)}" if newest else ""
        return (
            f"restore {self.dataset} in {self.region} ({where}) to {iso(self.at)}{into}: "
            f"{len(self.reverts)} key(s) to revert ({self.bytes_to_copy} bytes), {len(self.deletes)} to "
            f"delete (a delete marker each), {self.left} unchanged of {self.keys_read}{lost}"
        )


def _state_at(versions: list[ObjectVersion], at: float) -> ObjectVersion | None:
    """The version current at `at` (newest first in `versions`); None if the key did not exist."""
    for version in versions:
        if version.modified <= at:
            return None if version.deleted else version
    return None


def _current(versions: list[ObjectVersion]) -> ObjectVersion | None:
    latest = next((v for v in versions if v.latest), versions[0] if versions else None)
    return None if latest is None or latest.deleted else latest


def _same_bytes(store: ObjectStore, bucket: str, a: ObjectVersion, b: ObjectVersion, *, kms: bool) -> bool:
    """The same version, or versions with equal bytes: by their MD5 ETags (single-part, not KMS:
    32 hex digits), else by their stored SHA-256 (under SSE-KMS an ETag looks like an MD5 and is
    not one), else by the SHA-256 of their bytes, read (only versions that differ get here)."""
    if a.version_id == b.version_id:
        return True
    if a.size != b.size:
        return False
    if not kms and len(a.etag) == 32 and "-" not in a.etag and len(b.etag) == 32 and "-" not in b.etag:
        return a.etag == b.etag
    first = store.head(bucket, a.key, version_id=a.version_id, checksum=True).sha256
    second = store.head(bucket, b.key, version_id=b.version_id, checksum=True).sha256
    if first is not None and second is not None:
        return first == second
    # no stored checksum: read the bytes
    return streamed_sha256(store, bucket, a.key, version_id=a.version_id) == streamed_sha256(
        store, bucket, b.key, version_id=b.version_id
    )


def _histories(versions: Iterable[ObjectVersion]) -> Iterator[tuple[str, list[ObjectVersion]]]:
    """Each key's versions, newest first.

    Stores keep a version's time to the second, and S3's API lists versions and delete markers
    apart (each newest first), so a version and a delete marker of the same second cannot be put
    in order from the listing: the delete marker is taken as the later one (a file written and
    removed within a second - a temporary - is the common case). The current version is first
    whatever the clock says; the store's own order is kept otherwise (the sort is stable).
    """
    for key, group in groupby(versions, key=lambda v: v.key):
        yield key, sorted(group, key=lambda v: (v.latest, v.modified, v.deleted), reverse=True)


def check_prefixes(prefix: str, into_prefix: str | None) -> None:
    if into_prefix is None:
        return
    if not into_prefix:
        raise ConfigurationError(
            "--into-prefix must not be empty: that is the live data; omit it to restore in place"
        )
    if into_prefix.startswith(prefix) or prefix.startswith(into_prefix):
        raise ConfigurationError(
            f"--into-prefix {into_prefix!r} overlaps --prefix {prefix!r}: the restore would write into "
            "what it reads; choose a prefix beside it (e.g. restored/2026-12-03/)"
        )


def plan_restore(
    cloud: Cloud,
    topology: Topology,
    *,
    dataset: str,
    region: str,
    at: float,
    prefix: str = "",
    into_prefix: str | None = None,
) -> RestorePlan:
    """Read the dataset's version history in `region` and decide, per key, what the restore does."""
    topology.require_region(region)
    check_prefixes(prefix, into_prefix)
    data = topology.dataset(dataset)
    window = data.retention.noncurrent_days
    if time.time() - at > window * 86400:
        raise ConfigurationError(
            f"{iso(at)} is older than {dataset}'s restore window ({window} days: retention.noncurrent_days "
            "in the topology): versions from before it may have expired, so the plan could not be trusted"
        )
    bucket = data.buckets[region]
    store = cloud.objects(region)
    if store.versioning(bucket) is not Versioning.ENABLED:
        raise MldrError(f"{bucket} is not versioned: it keeps no history to restore from")
    kms = store.default_kms_key(bucket)  # fails closed: AccessDenied names the permission
    changes: list[KeyChange] = []
    keys_read = left = 0
    existing: dict[str, ObjectVersion] = {}
    if into_prefix is not None:
        existing = {
            k: c for k, h in _histories(store.versions(bucket, prefix=into_prefix)) if (c := _current(h))
        }
    for key, history in _histories(store.versions(bucket, prefix=prefix)):
        keys_read += 1
        then = _state_at(history, at)
        if into_prefix is not None:
            target = into_prefix + key[len(prefix) :]
            now = existing.pop(target, None)
        else:
            target, now = key, _current(history)
        unchanged = (
            now is None
            if then is None
            else now is not None and _same_bytes(store, bucket, then, now, kms=kms)
        )
        if unchanged:
            left += 1
            continue
        changes.append(
            KeyChange(
                action="revert" if then is not None else "delete",
                key=key,
                target_key=target,
                version_id=then.version_id if then else None,
                etag=then.etag if then else "",
                bytes=then.size if then else 0,
                loses_version=now.version_id if now else None,
                loses_modified=now.modified if now else None,
            )
        )
    for target, now in sorted(existing.items()):  # under into_prefix, absent from T's state
        changes.append(
            KeyChange(
                action="delete",
                key=target,
                target_key=target,
                version_id=None,
                etag="",
                bytes=0,
                loses_version=now.version_id,
                loses_modified=now.modified,
            )
        )
    return RestorePlan(
        dataset=dataset,
        region=region,
        bucket=bucket,
        at=at,
        prefix=prefix,
        into_prefix=into_prefix,
        keys_read=keys_read,
        left=left,
        changes=tuple(changes),
    )
