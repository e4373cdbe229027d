"""The write fence: the old primary's protected buckets deny object writes, so nothing lands
where it would not be replicated (planned mode).

A failback keeps the primary fenced until it switches traffic back, and fences it with a pass
for its own fencing token: its resync copies into the fenced primary, nothing else writes there
(`mldr.cloud.objects.ObjectStore.fence`).

The store keeps the bucket's other access rules and its replication; putting the fence twice or
lifting it twice changes nothing (`mldr.cloud.objects.ObjectStore.fence`).

The time a fence took effect is read from the store, not from the host: a marker object written
after the fence, in the same region, carries the store's own `LastModified`, on the clock that
stamped every version a drain compares with it (`mark_fenced`).
"""

from __future__ import annotations

import logging

from mldr.cloud.objects import ObjectStore
from mldr.errors import MldrError

log = logging.getLogger(__name__)


def fence(store: ObjectStore, bucket: str, *, pass_token: int | None = None) -> bool:
    """Deny writes to `bucket` (but those of the operation holding `pass_token`); returns False
    if exactly this fence was already there."""
    changed = store.fence(bucket, pass_token=pass_token)
    if changed:
        passing = f" but operation token {pass_token}'s resync" if pass_token is not None else ""
        log.info("write fence on %s (%s): object writes now denied%s", bucket, store.region, passing)
    return changed


def lift(store: ObjectStore, bucket: str) -> bool:
    """Remove the fence, keeping every other access rule; returns False if there was none."""
    changed = store.lift_fence(bucket)
    if changed:
        log.info("write fence lifted from %s (%s)", bucket, store.region)
    return changed


#: Where the fence markers live in the fenced region's ops bucket (never fenced itself).
MARKER_PREFIX = "mldr/fence-markers/"


def mark_fenced(store: ObjectStore, ops_bucket: str, *, operation_id: str, fenced: list[str]) -> float:
    """The fence time on the store's clock: write a marker after the fence and read its
    `LastModified` back (epoch seconds).

    Every version a drain waits for was stamped by this region's store; the host running the
    runbook may be skewed by seconds or minutes, and a fence time from its clock would let a
    drain skip (slow clock) versions written before the fence. Stores keep `LastModified` to the
    second: the marker's time may be up to a second early, which a drain allows for."""
    key = f"{MARKER_PREFIX}{operation_id}.json"
    store.put_json(ops_bucket, key, {"operation_id": operation_id, "fenced_buckets": fenced})
    modified = store.head(ops_bucket, key).modified
    if modified is None:
        raise MldrError(
            f"the fence marker s3://{ops_bucket}/{key} ({store.region}) has no LastModified: the fence "
            "time cannot be read from the store; rerun the step"
        )
    log.info("fence marker s3://%s/%s (%s): fence time %.3f", ops_bucket, key, store.region, modified)
    return modified
