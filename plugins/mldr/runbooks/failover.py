"""Failover: move the ML service and its data to the other region.

preflight -> approval -> fence -> drain -> scale -> switch -> protect -> verify -> record,
as DESIGN.md describes. Planned mode fences writes on the source and drains replication
(RPO 0); unplanned mode (the source is impaired) skips the drain and records exactly which
versions were not replicated.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Literal

from mldr.actions import compute, fence_duty, fencing, replication, traffic, write_fence
from mldr.checks.active_region import fenced_buckets
from mldr.checks.fence_duty import pending_fence_duties
from mldr.checks.health import region_health, s3_reachable
from mldr.checks.replication_status import BacklogItem, status_source
from mldr.cloud.control import Operation, now_iso
from mldr.cloud.objects import ReplicationState, streamed_sha256
from mldr.errors import (
    AlreadyDone,
    FailoverPreconditionFailed,
    LeaseHeld,
    MldrError,
    NotFound,
    RegionUnreachable,
)
from mldr.runbooks.at_risk import DataAtRisk, RiskUnknown, data_at_risk, describe_risk
from mldr.runbooks.common import GoldenPredictions, NoPrediction, golden_predictions
from mldr.runbooks.engine import Context, Runbook, result_from_fields, step
from mldr.runbooks.params import Mode
from mldr.runbooks.shared_steps import (
    RecordResult,
    VerifyResult,
    approval,
    golden_set_unchanged,
    revalidate_preflight,
    scale,
)

log = logging.getLogger(__name__)


def _source(ctx: Context) -> str:
    return ctx.result(preflight).source


def _target(ctx: Context) -> str:
    return ctx.params.target_region


@dataclass(frozen=True, kw_only=True)
class PreflightResult:
    source: str
    target: str
    mode: Mode
    token_before: int
    target_health: str
    source_reachable: bool
    data_at_risk: DataAtRisk | RiskUnknown
    baseline: GoldenPredictions | NoPrediction
    forced: bool
    problems: tuple[str, ...]
    plan: tuple[str, ...]


def _refuse_a_fenced_target(ctx: Context, target: str, fenced_regions: tuple[str, ...]) -> None:
    """A failover fences its source: failing over to a fenced region leaves both refusing writes.

    The fence is read from the buckets as well as the lease, which can disagree after a crash. Not
    overridable by force: the way back to a fenced region (the old primary) is the failback, which
    resyncs it and lifts its fence."""
    buckets = [dataset.buckets[target] for dataset in ctx.topology.datasets]
    try:
        fenced = fenced_buckets(ctx.cloud, target, buckets)
    except RegionUnreachable:
        fenced = []  # the health check below reports a target that does not answer
    if target in fenced_regions or fenced:
        where = ", ".join(fenced) if fenced else "the DR lease lists it as fenced"
        raise FailoverPreconditionFailed(
            f"{target} is write-fenced ({where}): a failover to it would leave both regions refusing "
            f"writes. To return to {target}, run `mldr failback` (it resyncs and lifts the fence)."
        )


@step("check the target, the source and the replication backlog", holds_lease=False)
def preflight(ctx: Context) -> PreflightResult:
    topology, target = ctx.topology, _target(ctx)
    topology.require_region(target)
    mode = ctx.params.mode
    lease = ctx.control.read_lease()
    if lease.operation is not None and lease.operation.id != ctx.record.id:
        raise LeaseHeld(f"the DR lease is held by {fencing.describe_holder(lease.operation)}")
    if lease.active_region == target and lease.operation is None:
        raise AlreadyDone(
            f"{target} is already the active region (fencing token {lease.fencing_token}); nothing to do"
        )
    source = lease.active_region
    _refuse_a_fenced_target(ctx, target, lease.fenced_regions)
    problems: list[str] = []
    health = region_health(ctx.cloud, topology, target)
    if not health.healthy:
        problems.append(f"target {health.summary()}")
    # Planned mode must know the source answers now; unplanned mode says it does not, so a
    # region found silent moments ago (by the audit log, say) is not waited for again.
    source_ok, why = s3_reachable(ctx.cloud, topology, source, recheck=mode is Mode.PLANNED)
    if mode is Mode.PLANNED and not source_ok:
        raise FailoverPreconditionFailed(
            f"planned failover needs the source {source} reachable to fence and drain it, but: {why}. "
            "If the region is down, fail over in unplanned mode (--mode unplanned)."
        )
    risk = data_at_risk(ctx, source, label="preflight")
    baseline: GoldenPredictions | NoPrediction
    if source_ok:
        try:
            baseline = golden_predictions(ctx, timeout=3.0)
        except MldrError as exc:
            baseline = NoPrediction(error=f"no prediction through the DNS name before the switch: {exc}")
    else:  # the DNS name may still lead to the silent source: no baseline to wait for
        baseline = NoPrediction(error=f"no baseline: the source does not answer ({why})")
    forced = False
    if problems:
        if not ctx.params.force:
            raise FailoverPreconditionFailed(
                "preflight failed: " + "; ".join(problems) + ". Fix it, or pass force to override (recorded)."
            )
        forced = True
        ctx.say("  preflight problems OVERRIDDEN by force: " + "; ".join(problems))
    ctx.say(f"  {source} -> {target} ({mode.value}); {describe_risk(risk)}")
    return PreflightResult(
        source=source,
        target=target,
        mode=mode,
        token_before=lease.fencing_token,
        target_health=health.summary(),
        source_reachable=source_ok,
        data_at_risk=risk,
        baseline=baseline,
        forced=forced,
        problems=tuple(problems),
        plan=RUNBOOK.plan(),
    )


@dataclass(frozen=True, kw_only=True)
class FenceResult:
    fencing_token: int
    fenced_buckets: tuple[str, ...]
    fenced_at: float


@step("take the DR lease (token + 1); planned: deny writes on the source buckets", holds_lease=False)
def fence(ctx: Context) -> FenceResult:
    source, target = _source(ctx), _target(ctx)
    pre = ctx.result(preflight)
    revalidate_preflight(
        ctx, source=source, target=target, token_before=pre.token_before, target_problem_approved=pre.forced
    )
    p = ctx.params
    op = Operation(
        id=ctx.record.id,
        kind="failover",
        source=source,
        target=target,
        mode=p.mode.value,
        started_by=p.requested_by,
        reason=p.reason,
        started_at=ctx.record.created_at,
        step="fence",
        force=p.force,
    )
    lease = fencing.take(ctx.control, op)
    fenced: list[str] = []
    if p.mode is Mode.PLANNED:
        store = ctx.cloud.objects(source)
        for dataset in ctx.topology.datasets:
            write_fence.fence(store, dataset.buckets[source])
            fenced.append(dataset.buckets[source])
        lease = fencing.update(
            ctx.control, ctx.record.id, fenced_regions=tuple({*lease.fenced_regions, source})
        )
        # The drain compares this with the versions' LastModified: both on the store's clock.
        fenced_at = write_fence.mark_fenced(
            store, ctx.topology.region(source).ops_bucket, operation_id=ctx.record.id, fenced=fenced
        )
    else:
        fenced_at = time.time()  # unplanned: nothing fenced, no drain reads it
    return FenceResult(fencing_token=lease.fencing_token, fenced_buckets=tuple(fenced), fenced_at=fenced_at)


@dataclass(frozen=True, kw_only=True)
class Drained:
    drained: Literal[True] = True
    waited_for: int
    seconds: float


@dataclass(frozen=True, kw_only=True)
class NotDrained:
    """Unplanned: no drain; what was not replicated is measured instead."""

    drained: Literal[False] = False
    data_at_risk: DataAtRisk | RiskUnknown


def _carried_across(
    ctx: Context, item: BacklogItem, target_bucket: str, settled: dict[tuple[str, str, str], bool]
) -> bool:
    """A FAILED version that is no longer the key's current one (history), or whose bytes the
    target already holds as the key's current state: carried
    across by a failback's resync (the replica guard refuses what a healed old primary replicates,
    and S3 keeps those versions FAILED for good). Compared on stored SHA-256 - an ETag says
    nothing under SSE-KMS; without checksums on both sides, by the SHA-256 of the bytes."""
    if item.state is not ReplicationState.FAILED:
        return False
    marker = (item.bucket, item.key, item.version_id)
    if marker not in settled:
        source, target = ctx.cloud.objects(_source(ctx)), ctx.cloud.objects(_target(ctx))
        try:
            latest = source.latest_version(item.bucket, item.key)
            if latest is None or latest.version_id != item.version_id:
                settled[marker] = True  # history: a newer version or marker is what must replicate
                return True
            if item.is_delete_marker:
                target.head(target_bucket, item.key)
                settled[marker] = False  # the target still has the key the marker deleted
            else:
                mine = source.head(item.bucket, item.key, version_id=item.version_id, checksum=True)
                theirs = target.head(target_bucket, item.key, checksum=True)
                if mine.sha256 is not None and theirs.sha256 is not None:
                    settled[marker] = mine.sha256 == theirs.sha256
                else:  # no stored checksum on a side: the bytes decide (few versions get here)
                    settled[marker] = streamed_sha256(
                        source, item.bucket, item.key, version_id=item.version_id
                    ) == streamed_sha256(target, target_bucket, item.key)
        except NotFound:
            settled[marker] = item.is_delete_marker
        except MldrError:
            return False  # not read now: not settled, asked again on the next pass
    return settled[marker]


@step("planned: wait for replication to catch up; unplanned: measure data at risk")
def drain(ctx: Context) -> Drained | NotDrained:
    source = _source(ctx)
    if ctx.params.mode is Mode.UNPLANNED:
        risk = data_at_risk(ctx, source, label="drain")
        ctx.say(f"  unplanned: no drain. {describe_risk(risk)}")
        return NotDrained(data_at_risk=risk)
    fenced_at = ctx.result(fence).fenced_at
    timeout = ctx.params.drain_timeout_seconds
    statuses = status_source(ctx.topology, ctx.cloud)
    started = time.monotonic()
    first: int | None = None
    settled: dict[tuple[str, str, str], bool] = {}  # FAILED versions looked up in the target
    while True:
        waiting = [
            item
            for dataset in ctx.topology.datasets
            for item in statuses.backlog(region=source, bucket=dataset.buckets[source])
            if item.created_at <= fenced_at + 1.0
            and not _carried_across(ctx, item, dataset.buckets[_target(ctx)], settled)
        ]
        first = len(waiting) if first is None else first
        if not waiting:
            break
        failed = [i for i in waiting if i.state.value == "FAILED"]
        if failed:
            keys = ", ".join(f"{i.bucket}/{i.key}" for i in failed[:5])
            raise MldrError(
                f"drain: {len(failed)} version(s) FAILED to replicate ({keys}); repair replication or fail "
                "over unplanned, accepting the loss (recorded)"
            )
        elapsed = time.monotonic() - started
        if elapsed > timeout:
            raise MldrError(f"drain: {len(waiting)} version(s) still not replicated after {timeout:.0f}s")
        log.info("drain: %d of %d version(s) still replicating (%.0fs)", len(waiting), first, elapsed)
        time.sleep(0.25)
    return Drained(waited_for=first, seconds=round(time.monotonic() - started, 3))


@dataclass(frozen=True, kw_only=True)
class SwitchResult:
    changed: bool
    answer: str
    seconds: float
    active_region: str
    switched_at: float


@step("make the target PRIMARY in Route 53 and confirm the DNS answer")
def switch(ctx: Context) -> SwitchResult:
    target = _target(ctx)
    result = traffic.switch(ctx.cloud, ctx.topology, target)
    lease = fencing.update(ctx.control, ctx.record.id, active_region=target)
    return result_from_fields(
        SwitchResult, {**result, "active_region": lease.active_region, "switched_at": time.time()}
    )


@dataclass(frozen=True, kw_only=True)
class ProtectResult:
    direction: str
    changed: tuple[str, ...]
    pending: tuple[str, ...]
    source_scaled_to_standby: bool | str  # a str says why it is still pending
    #: the target's buckets now refusing replicas (from the old primary, once it is back)
    refusing_replicas: tuple[str, ...] = ()
    #: the source's buckets write-fenced here (planned mode: already by `fence`)
    source_fenced: tuple[str, ...] = ()
    #: the fence duty left for the next check that reaches the source, when it did not answer
    fence_duty: str | None = None


@step("replicate target -> source from now on; fence the source, or leave that duty recorded")
def protect(ctx: Context) -> ProtectResult:
    source, target = _source(ctx), _target(ctx)
    # First, at this end, which answers: nothing the old primary holds or takes until it is
    # fenced may replicate in and become the current version over what clients write here.
    refusing = replication.refuse_replicas(ctx.cloud, ctx.topology, target)
    # Then the old primary: fenced first, then its outgoing rule disabled (and ours enabled).
    fenced = fence_duty.fence_and_stop(ctx.cloud, ctx.topology, region=source, active=target)
    if fenced.fenced:
        lease = ctx.control.read_lease()
        fencing.update(ctx.control, ctx.record.id, fenced_regions=tuple({*lease.fenced_regions, source}))
    duty = None
    if not fenced.done:
        recorded = fence_duty.record(
            ctx.control, region=source, operation_id=ctx.record.id, pending=list(fenced.pending)
        )
        duty = recorded.describe()
        ctx.say(f"  DUTY LEFT: {duty}")
    try:
        with ctx.cloud.silent.guard(source):
            scaled: bool | str = compute.scale_to_standby(ctx.cloud, ctx.topology, source)
    except RegionUnreachable as exc:
        scaled = f"pending: {exc}"
    return ProtectResult(
        direction=f"{target} -> {source}",
        changed=fenced.changed,
        pending=fenced.pending,
        source_scaled_to_standby=scaled,
        refusing_replicas=tuple(refusing),
        source_fenced=fenced.fenced,
        fence_duty=duty,
    )


@step("predict the golden set through the DNS name: target serves, same answers")
def verify(ctx: Context) -> VerifyResult:
    return golden_set_unchanged(ctx, target=_target(ctx), baseline=ctx.result(preflight).baseline)


@step("audit, notify, release the lease")
def record(ctx: Context) -> RecordResult:
    from mldr.runbooks.notify import notify

    if ctx.result(protect).fence_duty is not None:
        # A resumed failover that reaches the old primary now does what protect could not.
        _complete_own_duty(ctx)
    summary = summarize(ctx)
    notify(ctx.cloud, ctx.topology, subject=f"mldr failover to {_target(ctx)} completed", message=summary)
    ctx.control.put_record(
        "last-failover",
        {
            "operation_id": ctx.record.id,
            "started_epoch": ctx.record.created_epoch,
            "target": _target(ctx),
            "source": _source(ctx),
        },
    )
    lease = fencing.release(ctx.control, ctx.record.id)
    return RecordResult(summary=summary, fencing_token=lease.fencing_token, completed_at=now_iso())


def _complete_own_duty(ctx: Context) -> None:
    from mldr.runbooks.fence_duty import complete_one

    source = _source(ctx)
    for duty in pending_fence_duties(ctx.control, ctx.control.read_lease()):
        if duty.region == source and duty.operation_id == ctx.record.id:
            outcome = complete_one(
                ctx.cloud, ctx.topology, duty, by=ctx.params.requested_by, holder_id=ctx.record.id
            )
            if outcome.done:
                lease = ctx.control.read_lease()
                fencing.update(
                    ctx.control, ctx.record.id, fenced_regions=tuple({*lease.fenced_regions, source})
                )
            ctx.say(f"  {outcome.line()}")


def summarize(ctx: Context) -> str:
    pre = ctx.result(preflight)
    drained = ctx.result(drain)
    risk = drained.data_at_risk if isinstance(drained, NotDrained) else pre.data_at_risk
    lines = [
        f"failover {ctx.record.id}: {pre.source} -> {_target(ctx)} ({ctx.params.mode.value})",
        f"by {ctx.params.requested_by}: {ctx.params.reason}",
        f"fencing token {ctx.result(fence).fencing_token}",
        describe_risk(risk) if ctx.params.mode is Mode.UNPLANNED else "planned: drained, RPO 0",
    ]
    if pre.forced:
        lines.append("PREFLIGHT OVERRIDDEN BY FORCE: " + "; ".join(pre.problems))
    for duty in pending_fence_duties(ctx.control, ctx.control.read_lease()):
        if duty.operation_id == ctx.record.id:
            lines.append(f"DUTY LEFT: {duty.describe()}")
    return "\n".join(lines)


RUNBOOK = Runbook(
    kind="failover",
    steps=(preflight, approval, fence, drain, scale, switch, protect, verify, record),
)
STEPS = RUNBOOK.steps
