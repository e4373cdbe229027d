"""Point-in-time restore: bring a dataset (or a prefix of it) back to its state at a time.

restore_preflight -> approval -> in_place_lease -> restore_apply -> restore_verify -> restore_record.
It runs in the active region and replicates onward like any write. It is an operation under the
DR lease, so it is refused while a failover runs (and a failover while it runs), audited step by
step, and resumable: a rerun plans again from the bucket's history, so keys already restored
are left alone. The plan is made twice - for the approver, then again under the lease, against
the state the restore actually changes - and only counts and the first keys are kept in the
operation record (the record stays small whatever the dataset's size).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from mldr.actions import fencing
from mldr.actions.restore import apply_restore
from mldr.checks.point_in_time import RestorePlan, iso, plan_restore
from mldr.cloud.control import now_iso
from mldr.errors import ConfigurationError, MldrError
from mldr.runbooks.engine import Context, Runbook, step
from mldr.runbooks.params import RestoreTarget
from mldr.runbooks.shared_steps import RecordResult, approval, in_place_lease, refuse_if_leased

#: Changes listed in the record and the approval (all of them are counted).
LISTED = 20


def _target(ctx: Context) -> RestoreTarget:
    target = ctx.params.restore
    if target is None:
        raise ConfigurationError(f"operation {ctx.record.id} is a restore without a dataset and time")
    return target


def _plan(ctx: Context, region: str) -> RestorePlan:
    target = _target(ctx)
    return plan_restore(
        ctx.cloud,
        ctx.topology,
        dataset=target.dataset,
        region=region,
        at=target.at,
        prefix=target.prefix,
        into_prefix=target.into_prefix,
    )


@dataclass(frozen=True, kw_only=True)
class PlannedChange:
    action: str
    key: str
    version_id: str | None
    bytes: int
    loses_version: str | None
    loses_modified: str | None


@dataclass(frozen=True, kw_only=True)
class RestorePlanResult:
    region: str
    bucket: str
    at: str
    keys_read: int
    to_revert: int
    to_delete: int
    unchanged: int
    bytes: int
    first: tuple[PlannedChange, ...]
    summary: str
    token_before: int


def _planned(plan: RestorePlan, token: int) -> RestorePlanResult:
    return RestorePlanResult(
        region=plan.region,
        bucket=plan.bucket,
        at=iso(plan.at),
        keys_read=plan.keys_read,
        to_revert=len(plan.reverts),
        to_delete=len(plan.deletes),
        unchanged=plan.left,
        bytes=plan.bytes_to_copy,
        first=tuple(
            PlannedChange(
                action=c.action,
                key=c.target_key,
                version_id=c.version_id,
                bytes=c.bytes,
                loses_version=c.loses_version,
                loses_modified=iso(c.loses_modified) if c.loses_modified else None,
            )
            for c in plan.changes[:LISTED]
        ),
        summary=plan.summary(),
        token_before=token,
    )


@step("plan the restore in the active region: keys to revert, to delete, to leave", holds_lease=False)
def restore_preflight(ctx: Context) -> RestorePlanResult:
    lease = refuse_if_leased(ctx)
    if ctx.params.target_region != lease.active_region:
        raise ConfigurationError(
            f"a restore runs in the active region ({lease.active_region}), not {ctx.params.target_region}"
        )
    plan = _plan(ctx, lease.active_region)
    ctx.say(f"  {plan.summary()}")
    for change in plan.changes[:LISTED]:
        ctx.say(f"    {change.action}: {change.target_key}")
    if len(plan.changes) > LISTED:
        ctx.say(f"    ... and {len(plan.changes) - LISTED} more")
    return _planned(plan, lease.fencing_token)


@dataclass(frozen=True, kw_only=True)
class RestoreApplyResult:
    reverted: int
    deleted: int
    bytes: int
    seconds: float
    keys_per_second: float


@step("copy each key's version at the time back as a new version, checksummed; delete markers for the rest")
def restore_apply(ctx: Context) -> RestoreApplyResult:
    plan = _plan(ctx, ctx.result(restore_preflight).region)  # reads only: made while that second runs out
    time.sleep(max(0.0, _started(ctx) + 0.001 - time.time()))  # nothing written in the undo point's second
    ctx.say(f"  {plan.summary()}")
    report = apply_restore(ctx.cloud, plan)
    if report.failures:
        raise MldrError(f"restore: {report.summary()}; run the same command again to resume")
    ctx.say(f"  {report.summary()}")
    return RestoreApplyResult(
        reverted=report.reverted,
        deleted=report.deleted,
        bytes=report.bytes,
        seconds=report.seconds,
        keys_per_second=round(report.rate, 1),
    )


@dataclass(frozen=True, kw_only=True)
class RestoreVerifyResult:
    keys_read: int
    differing: int


@step("plan again: nothing may differ from the state at the time")
def restore_verify(ctx: Context) -> RestoreVerifyResult:
    plan = _plan(ctx, ctx.result(restore_preflight).region)
    if plan.changes:
        first = ", ".join(f"{c.action} {c.target_key}" for c in plan.changes[:5])
        raise MldrError(
            f"restore verify: {len(plan.changes)} key(s) still differ from {iso(plan.at)}: {first}"
        )
    return RestoreVerifyResult(keys_read=plan.keys_read, differing=0)


@step("audit, notify, release the lease")
def restore_record(ctx: Context) -> RecordResult:
    from mldr.runbooks.notify import notify

    target, planned, applied = _target(ctx), ctx.result(restore_preflight), ctx.result(restore_apply)
    summary = (
        f"restore {ctx.record.id}: {target.dataset} in {planned.region} to {planned.at}"
        + (f" (prefix {target.prefix!r})" if target.prefix else "")
        + (f" into {target.into_prefix!r}" if target.into_prefix is not None else "")
        + f"\nby {ctx.params.requested_by}: {ctx.params.reason}\n"
        f"{applied.reverted} reverted, {applied.deleted} deleted, {applied.bytes} bytes "
        f"in {applied.seconds}s; "
        f"undo: mldr restore --dataset {target.dataset} --to {iso(_started(ctx))}"
        + (f" --prefix {target.prefix}" if target.prefix else "")
    )
    notify(ctx.cloud, ctx.topology, subject=f"mldr restore of {target.dataset} completed", message=summary)
    lease = fencing.release(ctx.control, ctx.record.id)
    return RecordResult(summary=summary, fencing_token=lease.fencing_token, completed_at=now_iso())


def _started(ctx: Context) -> float:
    """The undo point: the end of the second the restore started in. Stores keep a version's
    time to the second (S3) or the millisecond, and the restore writes nothing before the next
    second begins (`restore_apply` waits for it), so restoring to this moment undoes it."""
    return math.floor(ctx.record.created_epoch) + 0.999


RUNBOOK = Runbook(
    kind="restore",
    steps=(restore_preflight, approval, in_place_lease, restore_apply, restore_verify, restore_record),
)
STEPS = RUNBOOK.steps
