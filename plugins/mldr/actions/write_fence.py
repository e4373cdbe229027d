"""The write fence: the old primary's protected buckets deny object writes, so nothing lands
where it would not be replicated (planned mode).

A failback keeps the primary fenced until it switches traffic back, and fences it with a pass
for its own fencing token: its resync copies into the fenced primary, nothing else writes there
(`mldr.cloud.objects.ObjectStore.fence`).

The store keeps the bucket's other access rules and its replication; putting the fence twice or
lifting it twice changes nothing (`mldr.cloud.objects.ObjectStore.fence`).
"""

from __future__ import annotations

import logging

from mldr.cloud.objects import ObjectStore

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
