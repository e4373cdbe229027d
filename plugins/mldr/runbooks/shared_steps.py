"""The steps more than one runbook runs, and the result types they share.

A step that does the same thing in failover and failback, or in restore and rollback, is one
function here, so its name (the DAG task id, the record's key) means one piece of code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from mldr.actions import compute, fencing
from mldr.checks.health import region_health
from mldr.cloud.control import Lease, Operation
from mldr.errors import (
    ApprovalRequired,
    ConfigurationError,
    FailoverPreconditionFailed,
    LeaseHeld,
    MldrError,
)
from mldr.runbooks.common import GoldenPredictions, NoPrediction, golden_predictions
from mldr.runbooks.engine import Context, result_from_fields, step
from mldr.topology import Topology


@dataclass(frozen=True, kw_only=True)
class ApprovalResult:
    approved_by: str | None  # who said yes (the HITL responder, the CLI caller); None: nobody was asked
    required: bool


def refuse_unapproved(topology: Topology, *, human_asked: bool, dry_run: bool) -> None:
    """A topology can require approval whatever the trigger params say: refuse a run that will ask
    nobody (DAG `require_approval=false`, CLI `--yes`) before anything is read or changed.
    Checked where a person starts a run (the CLI, the DAG tasks); a drill starts its own
    operations and is exempt - starting the drill is the decision. A dry run changes nothing."""
    if topology.approval.required and not human_asked and not dry_run:
        raise ConfigurationError(
            f"topology {topology.name} requires approval of every failover, failback and restore "
            "(approval.required: true): trigger the DAG with require_approval true and approve its "
            "await_approval task, or run the CLI without --yes and type 'yes' at its prompt. "
            "Nothing was changed"
        )


@step("record who approved", holds_lease=False)
def approval(ctx: Context) -> ApprovalResult:
    """Records the approver: who responded (`ctx.approver`), never who asked - a resumed run
    approved by someone else records that someone else."""
    required = ctx.params.require_approval
    if required and ctx.approver is None:
        raise ApprovalRequired(
            f"{ctx.record.kind} {ctx.record.id} asked for approval and nobody gave it: approve it in "
            "the DAG's await_approval task, or at the CLI's prompt. Nothing was changed"
        )
    return ApprovalResult(approved_by=ctx.approver, required=required)


def revalidate_preflight(
    ctx: Context, *, source: str, target: str, token_before: int, target_problem_approved: bool = False
) -> None:
    """Before a fence acts on an approval: is the world still the one the approver saw?

    Between preflight and fence an approval can wait for hours. If the DR lease moved on (another
    operation took it: its token is no longer the preflight's), the active region is no longer
    the source, or the target stopped being healthy, the approval was for a plan that no longer
    holds: refuse, change nothing, and say to start again (a new preflight, a new approval).
    Not overridable by that approval; `target_problem_approved` (a forced preflight that saw
    the target unhealthy and was approved as such) only excuses the target's health.
    A resumed run that already holds the lease took it after this check passed: nothing to redo.
    """
    lease = ctx.control.read_lease()
    if lease.operation is not None and lease.operation.id == ctx.record.id:
        return
    changed = []
    if lease.operation is not None:
        changed.append(f"the DR lease is now held by {fencing.describe_holder(lease.operation)}")
    if lease.fencing_token != token_before:
        changed.append(
            f"the fencing token moved from {token_before} to {lease.fencing_token} (another operation ran)"
        )
    if lease.active_region != source:
        changed.append(f"the active region is now {lease.active_region}, not {source}")
    if not changed and not target_problem_approved:
        health = region_health(ctx.cloud, ctx.topology, target)
        if not health.healthy:
            changed.append(f"the target is no longer healthy: {health.summary()}")
    if changed:
        # Another operation holding the lease is the race two callers lose: LeaseHeld, as before.
        refused = LeaseHeld if lease.operation is not None else FailoverPreconditionFailed
        raise refused(
            f"{ctx.record.kind} {ctx.record.id}: the approval was given for the state preflight saw, "
            f"which changed since: {'; '.join(changed)}. Nothing was changed; start a new "
            f"{ctx.record.kind} (its preflight and approval see the state as it is now)"
        )


def refuse_if_leased(ctx: Context) -> Lease:
    """A change in place (restore, rollback) plans only while no other operation holds the DR
    lease: a failover in progress moves the active region under it. Returns the lease read."""
    lease = ctx.control.read_lease()
    if lease.operation is not None and lease.operation.id != ctx.record.id:
        raise LeaseHeld(f"the DR lease is held by {fencing.describe_holder(lease.operation)}")
    return lease


class InPlacePlan(Protocol):
    """What a restore's or rollback's preflight found: the region the change is made in."""

    @property
    def region(self) -> str: ...


@dataclass(frozen=True, kw_only=True)
class InPlaceLeaseResult:
    fencing_token: int


@step("take the DR lease (token + 1): no failover while the change is made", holds_lease=False)
def in_place_lease(ctx: Context) -> InPlaceLeaseResult:
    """The lease of a change made in the active region (restore, rollback): the mode and kind are
    the runbook's, source and target the region its preflight planned in."""
    planned: InPlacePlan = ctx.result(ctx.runbook.preflight)
    region, p = planned.region, ctx.params
    lease = fencing.take(
        ctx.control,
        Operation(
            id=ctx.record.id,
            kind=ctx.record.kind,
            source=region,
            target=region,
            mode=ctx.record.kind,
            started_by=p.requested_by,
            reason=p.reason,
            started_at=ctx.record.created_at,
            step="in_place_lease",
        ),
    )
    if lease.active_region != region:
        raise MldrError(f"the active region changed to {lease.active_region} since the plan; plan again")
    return InPlaceLeaseResult(fencing_token=lease.fencing_token)


@dataclass(frozen=True, kw_only=True)
class ScaleResult:
    capacity: int
    changed: bool
    seconds: float


@step("scale the target's compute to active capacity and wait until healthy")
def scale(ctx: Context) -> ScaleResult:
    result = compute.scale_to_active(ctx.cloud, ctx.topology, ctx.params.target_region)
    return result_from_fields(ScaleResult, result)


@dataclass(frozen=True, kw_only=True)
class VerifyResult:
    served_by: str | None
    model_version: str | None
    parity: bool | None  # None: no baseline was taken before the switch


def golden_set_unchanged(
    ctx: Context, *, target: str, baseline: GoldenPredictions | NoPrediction
) -> VerifyResult:
    """Predict the golden set through the DNS name: the target serves, with the answers of before."""
    after = golden_predictions(ctx)
    problems = []
    if after.region != target:
        problems.append(f"predictions come from {after.region}, not {target}")
    parity = None
    if isinstance(baseline, GoldenPredictions) and baseline.predictions is not None:
        parity = baseline.predictions == after.predictions and baseline.model_version == after.model_version
        if not parity:
            problems.append(
                f"golden set differs: before {baseline.model_version} {baseline.predictions}, "
                f"after {after.model_version} {after.predictions}"
            )
    if problems:
        raise MldrError("verify: " + "; ".join(problems))
    return VerifyResult(served_by=after.region, model_version=after.model_version, parity=parity)


@dataclass(frozen=True, kw_only=True)
class RecordResult:
    summary: str
    fencing_token: int
    completed_at: str
