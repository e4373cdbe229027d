"""The write fence: the old primary's protected buckets deny object writes, so nothing lands
where it would not be replicated (planned mode).

The store keeps the bucket's other access rules and its replication; putting the fence twice or
lifting it twice changes nothing (`mldr.cloud.objects.ObjectStore.fence`).
"""

from __future__ import annotations

import logging

from mldr.cloud.objects import ObjectStore

log = logging.getLogger(__name__)


def fence(store: ObjectStore, bucket: str) -> bool:
    """Deny writes to `bucket`; returns False if it was already fenced."""
    changed = store.fence(bucket)
    if changed:
        log.info("write fence on %s (%s): object writes now denied", bucket, store.region)
    return changed


def lift(store: ObjectStore, bucket: str) -> bool:
    """Remove the fence, keeping every other access rule; returns False if there was none."""
    changed = store.lift_fence(bucket)
    if changed:
        log.info("write fence lifted from %s (%s)", bucket, store.region)
    return changed
