"""Failback: return the service to the topology's primary region after a failover.

failback_preflight -> approval -> failback_fence -> resync -> freeze -> scale ->
failback_switch -> failback_protect -> failback_verify -> failback_record.
Failback is a planned failover back, preceded by a resync: writes are fenced on the active
region, its replication to the primary drains, then only what changed while it was active
(and what the primary had that never made it across) is copied, each copy checksummed.
Steps that differ from failover's carry the `failback_` prefix, so a step name (a DAG task
id) names one function; `approval` and `scale` are the ones both runbooks share.

Exactly one region takes writes at every moment: the primary stays write-fenced until
`failback_switch` - fenced with a pass for this operation's fencing token, so its own resync
copies in and nothing else writes there - and its fence is lifted only once the active region
is fenced and drained (`freeze`), just before traffic moves. A key changed on both sides is a
conflict: the primary's version is kept in its ops bucket and listed in the record, the audit
and the summary (`mldr.actions.resync`). `mldr abort` ends a failback stopped at any step.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

from mldr.actions import compute, fencing, replication, traffic, write_fence
from mldr.actions import resync as resync_action
from mldr.actions.resync import Conflict
from mldr.checks.active_region import fenced_buckets
from mldr.checks.health import region_health, s3_reachable
from mldr.checks.replication_status import status_source
from mldr.cloud.control import Operation, now_iso
from mldr.errors import AlreadyDone, FailoverPreconditionFailed, LeaseHeld, MldrError
from mldr.runbooks.common import GoldenPredictions, NoPrediction, golden_predictions
from mldr.runbooks.engine import Context, Runbook, result_from_fields, step
from mldr.runbooks.shared_steps import (
    RecordResult,
    VerifyResult,
    approval,
    golden_set_unchanged,
    revalidate_preflight,
    scale,
)

log = logging.getLogger(__name__)

#: A replication backlog that has not shrunk for this long is stalled: stop waiting, resync.
DRAIN_STALL_SECONDS = 10.0


def _active(ctx: Context) -> str:
    return ctx.result(failback_preflight).active


def _target(ctx: Context) -> str:
    return ctx.topology.primary_region


@dataclass(frozen=True, kw_only=True)
class FailbackPreflightResult:
    active: str
    target: str
    token_before: int
    changed_since_epoch: float
    baseline: GoldenPredictions | NoPrediction
    plan: tuple[str, ...]


@step("check the primary is healthy and the active region reachable", holds_lease=False)
def failback_preflight(ctx: Context) -> FailbackPreflightResult:
    topology, target = ctx.topology, _target(ctx)
    lease = ctx.control.read_lease()
    if lease.operation is not None and lease.operation.id != ctx.record.id:
        raise LeaseHeld(f"the DR lease is held by {fencing.describe_holder(lease.operation)}")
    if lease.active_region == target and lease.operation is None:
        raise AlreadyDone(_lift_stale_fences(ctx, lease.fenced_regions))
    active = lease.active_region
    problems = []
    health = region_health(ctx.cloud, topology, target)
    if not health.healthy:
        problems.append(f"primary {health.summary()}")
    active_ok, why = s3_reachable(ctx.cloud, topology, active)
    if not active_ok:
        problems.append(f"the active region {active} must be reachable to resync from it: {why}")
    if problems:
        raise FailoverPreconditionFailed("failback preflight failed: " + "; ".join(problems))
    since_item = ctx.control.get_record("last-failover")
    since = float(since_item["started_epoch"]) if since_item else 0.0
    baseline: GoldenPredictions | NoPrediction
    try:
        baseline = golden_predictions(ctx, timeout=3.0)
    except MldrError as exc:
        baseline = NoPrediction(error=str(exc))
    return FailbackPreflightResult(
        active=active,
        target=target,
        token_before=lease.fencing_token,
        changed_since_epoch=since,
        baseline=baseline,
        plan=RUNBOOK.plan(),
    )


def _lift_stale_fences(ctx: Context, listed: tuple[str, ...]) -> str:
    """The primary is active and no operation runs: nothing to fail back. A fence left on either
    region's buckets (or listed in the lease) is stale - it only refuses writes - so it is lifted,
    under the lease (a token of its own), and said; a dry run only says what it would lift."""
    target = _target(ctx)
    stale = {
        r: fenced_buckets(ctx.cloud, r, [d.buckets[r] for d in ctx.topology.datasets])
        for r in ctx.topology.region_names
    }
    stale = {r: b for r, b in stale.items() if b}
    nothing = f"{target} (the primary) is already active; nothing to fail back"
    if not stale and not listed:
        return nothing
    where = "; ".join(f"{r}: {', '.join(b)}" for r, b in stale.items()) or "none on the buckets"
    what = f"stale write fences ({where}; the lease listed {', '.join(listed) or 'none'})"
    if ctx.params.dry_run:
        return f"{nothing}; would lift {what}"
    p = ctx.params
    op = Operation(
        id=ctx.record.id,
        kind="failback",
        source=target,
        target=target,
        mode="planned",
        started_by=p.requested_by,
        reason=p.reason,
        started_at=ctx.record.created_at,
        step="failback_preflight",
    )
    fencing.take(ctx.control, op)
    for region, buckets in stale.items():
        store = ctx.cloud.objects(region)
        for bucket in buckets:
            write_fence.lift(store, bucket)
    fencing.update(ctx.control, ctx.record.id, fenced_regions=())
    fencing.release(ctx.control, ctx.record.id)
    ctx.audit.record(ctx.record.id, "stale-fences-lifted", fences=stale, listed=list(listed))
    return f"{nothing}; lifted {what}"


@dataclass(frozen=True, kw_only=True)
class FailbackFenceResult:
    fencing_token: int
    #: the primary's buckets, fenced with this operation's pass (its resync's writes only)
    fenced: tuple[str, ...]


@step(
    "take the DR lease (token + 1); keep the primary write-fenced, passable by this resync only",
    holds_lease=False,
)
def failback_fence(ctx: Context) -> FailbackFenceResult:
    """Take the lease; the primary stays fenced - a fence with a pass for this operation's token,
    so the resync copies into it and nothing else writes there. The active region keeps serving
    until `freeze`, so the long part of the resync costs no write downtime."""
    active, target = _active(ctx), _target(ctx)
    revalidate_preflight(
        ctx, source=active, target=target, token_before=ctx.result(failback_preflight).token_before
    )
    p = ctx.params
    op = Operation(
        id=ctx.record.id,
        kind="failback",
        source=active,
        target=target,
        mode="planned",
        started_by=p.requested_by,
        reason=p.reason,
        started_at=ctx.record.created_at,
        step="failback_fence",
    )
    lease = fencing.take(ctx.control, op)
    store = ctx.cloud.objects(target)
    # After an unplanned failover the primary may carry no fence at all: it gets one here.
    buckets = [d.buckets[target] for d in ctx.topology.datasets]
    for bucket in buckets:
        write_fence.fence(store, bucket, pass_token=lease.fencing_token)
    lease = fencing.update(ctx.control, ctx.record.id, fenced_regions=tuple({*lease.fenced_regions, target}))
    return FailbackFenceResult(fencing_token=lease.fencing_token, fenced=tuple(buckets))


def _drain(ctx: Context, region: str, *, written_before: float) -> int:
    """Wait until replication from `region` has delivered every version written before then.

    Waiting is an optimisation: the resync that follows copies whatever is left, checksummed.
    So the wait ends when replication stops making progress (paused, failing) for
    DRAIN_STALL_SECONDS, not only at the params' `drain_timeout_seconds`.
    """
    statuses = status_source(ctx.topology, ctx.cloud)
    now = time.monotonic()
    deadline = now + ctx.params.drain_timeout_seconds
    stall_limit = DRAIN_STALL_SECONDS
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


@dataclass(frozen=True, kw_only=True)
class ResyncResult:
    datasets: tuple[dict[str, Any], ...]  # each dataset's resync report, as `ResyncReport.public()`
    copied: int
    #: keys changed on both sides: the active region's version won, the primary's is kept
    conflicts: tuple[Conflict, ...] = ()


def _resync(ctx: Context, *, only_to: str | None) -> ResyncResult:
    since = ctx.result(failback_preflight).changed_since_epoch
    reports = resync_action.resync(
        ctx.cloud,
        ctx.topology,
        active_region=_active(ctx),
        since=since,
        only_to=only_to,
        fence_pass=ctx.result(failback_fence).fencing_token,
    )
    conflicts = tuple(c for r in reports for c in r.conflicts)
    for conflict in conflicts:
        ctx.say(f"  CONFLICT (changed on both sides) {conflict.describe()}")
    failures = [f for r in reports for f in r.failures]
    if failures:
        raise MldrError(f"resync: {len(failures)} transfer(s) failed, first: {failures[0]}")
    copied = sum(sum(r.copied_to.values()) for r in reports)
    ctx.say(f"  resync: {copied} object(s) copied, {sum(r.keys_compared for r in reports)} keys compared")
    return ResyncResult(datasets=tuple(r.public() for r in reports), copied=copied, conflicts=conflicts)


def conflicts(ctx: Context) -> tuple[Conflict, ...]:
    """Every conflict the resync and the freeze found (each kept once, listed once)."""
    found = [*(r.conflicts if (r := ctx.result_if_done(resync)) else ())]
    found += [*(f.conflicts if (f := ctx.result_if_done(freeze)) else ())]
    return tuple({c.kept_at: c for c in found}.values())


@step("copy only what differs, both ways, checksummed, while the active region serves")
def resync(ctx: Context) -> ResyncResult:
    """Both ways, while the active region still serves: what it wrote goes to the primary,
    what the primary had that never made it across goes to the active region."""
    _drain(ctx, _active(ctx), written_before=time.time())
    return _resync(ctx, only_to=None)


@dataclass(frozen=True, kw_only=True)
class FreezeResult:
    datasets: tuple[dict[str, Any], ...]
    copied: int
    fenced_buckets: tuple[str, ...]
    fenced_at: float
    undrained_before_copy: int
    conflicts: tuple[Conflict, ...] = ()


@step("fence the active region's writes, drain replication, copy the last changes")
def freeze(ctx: Context) -> FreezeResult:
    """Fence the active region's writes, let replication deliver the last ones, then copy any
    stragglers to the primary: from here on, the primary has every byte (RPO 0)."""
    active = _active(ctx)
    store = ctx.cloud.objects(active)
    fenced = []
    token = ctx.result(failback_fence).fencing_token
    for dataset in ctx.topology.datasets:
        write_fence.fence(store, dataset.buckets[active], pass_token=token)
        fenced.append(dataset.buckets[active])
    # On the store's clock, like the versions the drain compares with it (not the host's).
    fenced_at = write_fence.mark_fenced(
        store, ctx.topology.region(active).ops_bucket, operation_id=ctx.record.id, fenced=fenced
    )
    # both regions refuse writes now (the primary since failback_fence): the switch opens one
    fencing.update(ctx.control, ctx.record.id, fenced_regions=(active, _target(ctx)))
    left = _drain(ctx, active, written_before=fenced_at + 1.0)
    result = _resync(ctx, only_to=_target(ctx))
    return FreezeResult(
        datasets=result.datasets,
        copied=result.copied,
        fenced_buckets=tuple(fenced),
        fenced_at=fenced_at,
        undrained_before_copy=left,
        conflicts=result.conflicts,
    )


@dataclass(frozen=True, kw_only=True)
class FailbackSwitchResult:
    changed: bool
    answer: str
    seconds: float
    active_region: str
    switched_at: float
    lifted: tuple[str, ...] = ()  # the primary's buckets whose fence this step lifted


@step("lift the primary's write fence, make it PRIMARY in Route 53, confirm the DNS answer")
def failback_switch(ctx: Context) -> FailbackSwitchResult:
    """The active region is fenced and drained (`freeze`): the primary's fence is lifted just
    before traffic moves to it, so one region takes writes before, during and after."""
    active, target = _active(ctx), _target(ctx)
    # Replication back on before traffic moves: a write accepted by the primary after the
    # switch must reach the secondary (the secondary's fence does not block replication).
    replication.set_direction(ctx.cloud, ctx.topology, source=target, target=active)
    store = ctx.cloud.objects(target)
    lifted = [d.buckets[target] for d in ctx.topology.datasets if write_fence.lift(store, d.buckets[target])]
    fencing.update(ctx.control, ctx.record.id, fenced_regions=(active,))
    result = traffic.switch(ctx.cloud, ctx.topology, target)
    fencing.update(ctx.control, ctx.record.id, active_region=target)
    return result_from_fields(
        FailbackSwitchResult,
        {**result, "active_region": target, "switched_at": time.time(), "lifted": tuple(lifted)},
    )


@dataclass(frozen=True, kw_only=True)
class FailbackProtectResult:
    direction: str
    changed: tuple[str, ...]
    pending: tuple[str, ...]
    lifted: tuple[str, ...]
    standby_scaled: bool


@step("restore replication primary -> secondary, lift fences, standby capacity")
def failback_protect(ctx: Context) -> FailbackProtectResult:
    active, target = _active(ctx), _target(ctx)
    result = replication.set_direction(ctx.cloud, ctx.topology, source=target, target=active)
    if result["pending"]:
        raise MldrError("could not restore the replication direction: " + "; ".join(result["pending"]))
    store = ctx.cloud.objects(active)
    result["lifted"] = [
        d.buckets[active] for d in ctx.topology.datasets if write_fence.lift(store, d.buckets[active])
    ]
    fencing.update(ctx.control, ctx.record.id, fenced_regions=())
    result["standby_scaled"] = compute.scale_to_standby(ctx.cloud, ctx.topology, active)
    return result_from_fields(FailbackProtectResult, result)


@step("predict the golden set through the DNS name: primary serves, same answers")
def failback_verify(ctx: Context) -> VerifyResult:
    return golden_set_unchanged(ctx, target=_target(ctx), baseline=ctx.result(failback_preflight).baseline)


@step("audit, notify, release the lease")
def failback_record(ctx: Context) -> RecordResult:
    from mldr.runbooks.notify import notify

    found = conflicts(ctx)
    summary = (
        f"failback {ctx.record.id}: {_active(ctx)} -> {_target(ctx)}\n"
        f"by {ctx.params.requested_by}: {ctx.params.reason}\n"
        f"fencing token {ctx.result(failback_fence).fencing_token}"
    )
    if found:
        # Kept, not decided: a human compares both versions and restores the one to keep.
        summary += f"\n{len(found)} CONFLICT(S), changed on both sides - decide which to keep:"
        summary += "".join(f"\n  {c.describe()}" for c in found)
        ctx.audit.record(ctx.record.id, "conflicts", conflicts=[asdict(c) for c in found])
    notify(
        ctx.cloud,
        ctx.topology,
        subject=f"mldr failback to {_target(ctx)} completed",
        message=summary,
    )
    lease = fencing.release(ctx.control, ctx.record.id)
    return RecordResult(summary=summary, fencing_token=lease.fencing_token, completed_at=now_iso())


RUNBOOK = Runbook(
    kind="failback",
    steps=(
        failback_preflight,
        approval,
        failback_fence,
        resync,
        freeze,
        scale,
        failback_switch,
        failback_protect,
        failback_verify,
        failback_record,
    ),
)
STEPS = RUNBOOK.steps
