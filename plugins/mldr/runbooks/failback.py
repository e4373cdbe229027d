"""Failback: return the service to the topology's primary region after a failover.

preflight -> approval -> fence -> resync -> scale -> switch -> protect -> verify -> record.
Failback is a planned failover back, preceded by a resync: writes are fenced on the active
region, its replication to the primary drains, then only what changed while it was active
(and what the primary had that never made it across) is copied, each copy checksummed.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from mldr.actions import compute, fencing, replication, resync, traffic, write_fence
from mldr.checks.health import region_health, s3_reachable
from mldr.checks.replication_status import status_source
from mldr.cloud.control import Operation, now_iso
from mldr.errors import FailoverPreconditionFailed, LeaseHeld, MldrError
from mldr.runbooks import failover
from mldr.runbooks.common import AlreadyDone, golden_predictions
from mldr.runbooks.engine import Context, Step

log = logging.getLogger(__name__)

#: A replication backlog that has not shrunk for this long is stalled: stop waiting, resync.
DRAIN_STALL_SECONDS = 10.0


def _active(ctx: Context) -> str:
    return str(ctx.record.result("preflight")["active"])


def _target(ctx: Context) -> str:
    return ctx.topology.primary_region


def preflight(ctx: Context) -> dict[str, Any]:
    topology, target = ctx.topology, _target(ctx)
    lease = ctx.control.read_lease()
    if lease.operation is not None and lease.operation.id != ctx.record.id:
        raise LeaseHeld(f"the DR lease is held by {fencing.describe_holder(lease.operation)}")
    if lease.active_region == target and lease.operation is None and not lease.fenced_regions:
        raise AlreadyDone(f"{target} (the primary) is already active; nothing to fail back")
    active = lease.active_region
    problems = []
    health = region_health(ctx.cloud, topology, target)
    if not health.healthy:
        problems.append(f"primary {health.summary()}")
    active_ok, why = s3_reachable(ctx.factory, topology, active)
    if not active_ok:
        problems.append(f"the active region {active} must be reachable to resync from it: {why}")
    if problems:
        raise FailoverPreconditionFailed("failback preflight failed: " + "; ".join(problems))
    since_item = ctx.control.get_record("last-failover")
    since = float(since_item["started_epoch"]) if since_item else 0.0
    try:
        baseline = golden_predictions(ctx, timeout=3.0)
    except MldrError as exc:
        baseline = {"error": str(exc)}
    return {
        "active": active,
        "target": target,
        "token_before": lease.fencing_token,
        "changed_since_epoch": since,
        "baseline": baseline,
        "plan": [f"{s.name}: {s.description}" for s in STEPS],
    }


def fence(ctx: Context) -> dict[str, Any]:
    """Take the lease and open the primary for the resync's writes. The active region keeps
    serving until `freeze`, so the long part of the resync costs no write downtime."""
    active, target = _active(ctx), _target(ctx)
    p = ctx.params
    op = Operation(
        id=ctx.record.id,
        kind="failback",
        source=active,
        target=target,
        mode="planned",
        started_by=p["requested_by"],
        reason=p["reason"],
        started_at=ctx.record.created_at,
        step="fence",
    )
    lease = fencing.take(ctx.control, op)
    s3 = ctx.factory.client("s3", target)
    lifted = [
        d.buckets[target] for d in ctx.topology.datasets if write_fence.lift(s3, d.buckets[target], target)
    ]
    lease = fencing.update(
        ctx.control, ctx.record.id, fenced_regions=tuple(r for r in lease.fenced_regions if r != target)
    )
    return {"fencing_token": lease.fencing_token, "lifted": lifted}


def _drain(ctx: Context, region: str, *, written_before: float) -> int:
    """Wait until replication from `region` has delivered every version written before then.

    Waiting is an optimisation: the resync that follows copies whatever is left, checksummed.
    So the wait ends when replication stops making progress (paused, failing) for
    `drain_stall_seconds`, not only at `drain_timeout_seconds`.
    """
    statuses = status_source(ctx.topology, ctx.factory)
    now = time.monotonic()
    deadline = now + float(ctx.params.get("drain_timeout_seconds", 300.0))
    stall_limit = float(ctx.params.get("drain_stall_seconds", DRAIN_STALL_SECONDS))
    fewest, progress_at = -1, now
    while True:
        waiting = [
            i
            for d in ctx.topology.datasets
            for i in statuses.backlog(region=region, bucket=d.buckets[region])
            if i.created_at <= written_before and i.state.value == "PENDING"
        ]
        now = time.monotonic()
        if fewest < 0 or len(waiting) < fewest:
            fewest, progress_at = len(waiting), now
        if not waiting:
            return 0
        if now > deadline or now - progress_at > stall_limit:
            ctx.say(
                f"  replication from {region} made no progress for {now - progress_at:.0f}s with "
                f"{len(waiting)} version(s) pending; the resync copies them"
            )
            return len(waiting)
        log.info("failback: %d version(s) still replicating from %s", len(waiting), region)
        time.sleep(0.25)


def _resync(ctx: Context, *, only_to: str | None) -> dict[str, Any]:
    since = float(ctx.record.result("preflight")["changed_since_epoch"])
    reports = resync.resync(
        ctx.factory, ctx.topology, active_region=_active(ctx), since=since, only_to=only_to
    )
    failures = [f for r in reports for f in r.failures]
    if failures:
        raise MldrError(f"resync: {len(failures)} transfer(s) failed, first: {failures[0]}")
    copied = sum(sum(r.copied_to.values()) for r in reports)
    ctx.say(f"  resync: {copied} object(s) copied, {sum(r.keys_compared for r in reports)} keys compared")
    return {"datasets": [r.public() for r in reports], "copied": copied}


def resync_step(ctx: Context) -> dict[str, Any]:
    """Both ways, while the active region still serves: what it wrote goes to the primary,
    what the primary had that never made it across goes to the active region."""
    _drain(ctx, _active(ctx), written_before=time.time())
    return _resync(ctx, only_to=None)


def freeze(ctx: Context) -> dict[str, Any]:
    """Fence the active region's writes, let replication deliver the last ones, then copy any
    stragglers to the primary: from here on, the primary has every byte (RPO 0)."""
    active = _active(ctx)
    s3 = ctx.factory.client("s3", active)
    fenced = []
    for dataset in ctx.topology.datasets:
        write_fence.fence(s3, dataset.buckets[active], active)
        fenced.append(dataset.buckets[active])
    fenced_at = time.time()
    fencing.update(ctx.control, ctx.record.id, fenced_regions=(active,))
    left = _drain(ctx, active, written_before=fenced_at + 1.0)
    result = _resync(ctx, only_to=_target(ctx))
    return {**result, "fenced_buckets": fenced, "fenced_at": fenced_at, "undrained_before_copy": left}


def scale(ctx: Context) -> dict[str, Any]:
    return compute.scale_to_active(ctx.cloud, ctx.topology, _target(ctx))


def switch(ctx: Context) -> dict[str, Any]:
    target = _target(ctx)
    # Replication back on before traffic moves: a write accepted by the primary after the
    # switch must reach the secondary (the secondary's fence does not block replication).
    replication.set_direction(ctx.factory, ctx.topology, source=target, target=_active(ctx))
    result = traffic.switch(ctx.cloud, ctx.topology, target)
    fencing.update(ctx.control, ctx.record.id, active_region=target)
    return {**result, "active_region": target, "switched_at": time.time()}


def protect(ctx: Context) -> dict[str, Any]:
    active, target = _active(ctx), _target(ctx)
    result = replication.set_direction(ctx.factory, ctx.topology, source=target, target=active)
    if result["pending"]:
        raise MldrError("could not restore the replication direction: " + "; ".join(result["pending"]))
    s3 = ctx.factory.client("s3", active)
    result["lifted"] = [
        d.buckets[active] for d in ctx.topology.datasets if write_fence.lift(s3, d.buckets[active], active)
    ]
    fencing.update(ctx.control, ctx.record.id, fenced_regions=())
    result["standby_scaled"] = compute.scale_to_standby(ctx.cloud, ctx.topology, active)
    return result


def verify(ctx: Context) -> dict[str, Any]:
    return failover.verify(ctx)


def record(ctx: Context) -> dict[str, Any]:
    from mldr.runbooks.notify import notify

    summary = (
        f"failback {ctx.record.id}: {_active(ctx)} -> {_target(ctx)}\n"
        f"by {ctx.params['requested_by']}: {ctx.params['reason']}\n"
        f"fencing token {ctx.record.result('fence').get('fencing_token')}"
    )
    notify(ctx.cloud, ctx.topology, subject=f"mldr failback to {_target(ctx)} completed", message=summary)
    lease = fencing.release(ctx.control, ctx.record.id)
    return {"summary": summary, "fencing_token": lease.fencing_token, "completed_at": now_iso()}


STEPS: list[Step] = [
    Step(
        "preflight",
        "check the primary is healthy and the active region reachable",
        preflight,
        holds_lease=False,
    ),
    Step("approval", "record who approved", failover.approval, holds_lease=False),
    Step("fence", "take the DR lease (token + 1); lift the primary's write fence", fence, holds_lease=False),
    Step(
        "resync",
        "copy only what differs, both ways, checksummed, while the active region serves",
        resync_step,
    ),
    Step("freeze", "fence the active region's writes, drain replication, copy the last changes", freeze),
    Step("scale", "scale the primary's compute to active capacity and wait until healthy", scale),
    Step("switch", "make the primary PRIMARY in Route 53 and confirm the DNS answer", switch),
    Step("protect", "restore replication primary -> secondary, lift fences, standby capacity", protect),
    Step("verify", "predict the golden set through the DNS name: primary serves, same answers", verify),
    Step("record", "audit, notify, release the lease", record),
]
