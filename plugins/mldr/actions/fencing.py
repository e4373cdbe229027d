"""The DR lease: who may change the topology, and which region is active.

Taking the lease is a compare-and-set on the fencing token, which goes up by one for every
operation, so two concurrent failovers cannot both win, and anything holding an older token
(a stale task, a crashed CLI) is refused when it tries to act.
"""

from __future__ import annotations

import dataclasses
import logging

from mldr.cloud.control import ControlStore, Lease, Operation, now_iso
from mldr.errors import FencingConflict, LeaseHeld

log = logging.getLogger(__name__)


def describe_holder(op: Operation) -> str:
    return (
        f"operation {op.id} ({op.kind} {op.source} -> {op.target}, step {op.step}) "
        f"started by {op.started_by} at {op.started_at}: {op.reason!r}"
    )


def take(store: ControlStore, operation: Operation) -> Lease:
    """Hold the lease for `operation` with the next fencing token; resuming the same op is a no-op."""
    lease = store.read_lease()
    if lease.operation is not None:
        if lease.operation.id == operation.id:
            return lease  # a resumed run: the lease is already ours
        raise LeaseHeld(f"the DR lease is held by {describe_holder(lease.operation)}")
    new = Lease(
        active_region=lease.active_region,
        fencing_token=lease.fencing_token + 1,
        operation=operation,
        updated_at=now_iso(),
        fenced_regions=lease.fenced_regions,
    )
    try:
        store.compare_and_set(expected_token=lease.fencing_token, lease=new)
    except FencingConflict:
        holder = store.read_lease().operation
        raise LeaseHeld(
            "another operation took the DR lease first" + (f": {describe_holder(holder)}" if holder else "")
        ) from None
    log.info("lease taken by %s with fencing token %d", operation.id, new.fencing_token)
    return new


def _owned(store: ControlStore, operation_id: str) -> Lease:
    lease = store.read_lease()
    if lease.operation is None or lease.operation.id != operation_id:
        holder = describe_holder(lease.operation) if lease.operation else "nobody"
        raise FencingConflict(f"operation {operation_id} no longer holds the DR lease (held by {holder})")
    return lease


def update(
    store: ControlStore,
    operation_id: str,
    *,
    step: str | None = None,
    active_region: str | None = None,
    fenced_regions: tuple[str, ...] | None = None,
) -> Lease:
    """Change the lease while holding it (same token: only the holder can do this)."""
    lease = _owned(store, operation_id)
    assert lease.operation is not None
    new = dataclasses.replace(
        lease,
        operation=dataclasses.replace(lease.operation, step=step) if step else lease.operation,
        active_region=active_region or lease.active_region,
        fenced_regions=lease.fenced_regions if fenced_regions is None else fenced_regions,
        updated_at=now_iso(),
    )
    return store.compare_and_set(expected_token=lease.fencing_token, lease=new)


def release(store: ControlStore, operation_id: str) -> Lease:
    """Let go of the lease (operation finished or aborted); idempotent."""
    lease = store.read_lease()
    if lease.operation is None or lease.operation.id != operation_id:
        return lease
    new = dataclasses.replace(lease, operation=None, updated_at=now_iso())
    return store.compare_and_set(expected_token=lease.fencing_token, lease=new)


def add_fenced_region(store: ControlStore, region: str) -> Lease:
    """List `region` as fenced, by a caller that holds no operation (a fence duty done by a check).

    Only while no operation holds the lease: an operation in flight owns the fences (a failback
    lifts them). Compare-and-set on the token, so a failover or failback starting meanwhile wins
    and this raises `FencingConflict` / `LeaseHeld`; the caller leaves its duty for the next run."""
    lease = store.read_lease()
    if lease.operation is not None:
        raise LeaseHeld(f"the DR lease is held by {describe_holder(lease.operation)}")
    if region in lease.fenced_regions:
        return lease
    new = dataclasses.replace(lease, fenced_regions=(*lease.fenced_regions, region), updated_at=now_iso())
    return store.compare_and_set(expected_token=lease.fencing_token, lease=new)
