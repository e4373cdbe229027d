"""Start, resume or plan a failover/failback: the one entry point for the CLI and the DAGs."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from mldr.actions import fencing
from mldr.cloud import Cloud
from mldr.errors import AlreadyDone, ConfigurationError, LeaseHeld
from mldr.runbooks import failback, failover, heartbeat, restore, rollback
from mldr.runbooks.common import new_operation_id
from mldr.runbooks.drill.lock import refuse_during_drill
from mldr.runbooks.engine import (
    Context,
    OperationRecord,
    OperationStatus,
    OperationStore,
    R,
    Runbook,
    StepStatus,
    Summarised,
    claim,
    run_step,
    step_name,
)
from mldr.runbooks.params import OperationParams
from mldr.runbooks.shared_steps import approval
from mldr.topology import Topology

log = logging.getLogger(__name__)

#: The runbook an operation record's `kind` names: read where a record is opened, not per step.
RUNBOOKS: dict[str, Runbook] = {
    r.kind: r for r in (failover.RUNBOOK, failback.RUNBOOK, restore.RUNBOOK, rollback.RUNBOOK)
}


#: What must match for a run to continue an operation: the same change, decided the same way
#: (its kind is checked first, by `open_operation`).
_SAME_OPERATION = ("target_region", "mode", "force", "restore", "rollback")


def _refuse_joining(cloud: Cloud, params: OperationParams) -> None:
    """A new run never joins an operation in flight: a dry run would execute it, and a call with
    other params would run it with the params (and the approval) of the one that started it."""
    op = cloud.control().read_lease().operation
    if op is None:
        return
    what = "a dry run changes nothing, so it does not plan against" if params.dry_run else "refused:"
    raise LeaseHeld(
        f"{what} the DR lease is held by {fencing.describe_holder(op)}. To continue that operation "
        f"run its own command with --resume {op.id}; to see it, `mldr status`"
    )


def _check_resumable(record: OperationRecord, params: OperationParams) -> None:
    """Resuming takes the operation as it was started: a dry run, or other params, is refused."""
    if params.dry_run and not record.params.dry_run:
        raise ConfigurationError(
            f"a dry run changes nothing, so it cannot resume operation {record.id}: "
            "drop --dry-run to resume it"
        )
    if record.status in (OperationStatus.ABORTED, OperationStatus.REJECTED):
        raise ConfigurationError(
            f"operation {record.id} was {record.status.value} ({record.message}); it cannot be "
            "resumed: start a new operation instead"
        )
    if record.status in (OperationStatus.COMPLETED, OperationStatus.NOOP, OperationStatus.PLANNED):
        return  # nothing left to run: `execute` says so
    differs = [
        f"{name} {getattr(params, name)!s} (it was started with {getattr(record.params, name)!s})"
        for name in _SAME_OPERATION
        if getattr(params, name) != getattr(record.params, name)
    ]
    if differs:
        raise ConfigurationError(
            f"operation {record.id} was started by {record.params.requested_by} with other params; "
            f"this call gives {'; '.join(differs)}. Resume it with its own params, or abort it first"
        )


def open_operation(
    topology: Topology,
    cloud: Cloud,
    params: OperationParams,
    *,
    operation_id: str | None = None,
    resume: bool = False,
    drill_id: str | None = None,
    say: Callable[[str], None] = lambda _m: None,
) -> Context:
    """Create the operation's record, or load the one `operation_id` names; nothing else changes.

    Continuing an unfinished operation is explicit: a DAG run passes its own operation id (a
    retried task continues its run), the CLI `--resume ID` (`resume=True`: the record must
    exist). A call that names no operation while another holds the DR lease is refused, naming
    the holder - it never runs that operation with its params and its approval. A new operation
    is refused while a DR drill runs, naming it, unless it is that drill's own (`drill_id`). A
    resumed operation is claimed by this run (`engine.claim`).
    """
    topology.require_region(params.target_region)
    if params.kind == failback.RUNBOOK.kind and params.target_region != topology.primary_region:
        # Steps both runbooks share (scale) act on target_region: for a failback, the primary.
        raise ConfigurationError(
            f"failback returns to the primary region {topology.primary_region}, not {params.target_region}"
        )
    operations = OperationStore(cloud.control())
    record = operations.load(operation_id) if operation_id else None
    if record is not None:
        if record.kind != params.kind:
            raise ConfigurationError(f"operation {record.id} is a {record.kind}, not a {params.kind}")
        _check_resumable(record, params)
        say(f"resuming operation {record.id}")
    elif resume:
        raise ConfigurationError(f"no operation {operation_id!r} to resume: `mldr history` lists them")
    else:
        what = f"{'a dry run of ' if params.dry_run else ''}a {params.kind} to {params.target_region}"
        refuse_during_drill(cloud.control(), what=what, drill_id=drill_id)
        _refuse_joining(cloud, params)
        record = OperationRecord(
            id=operation_id or new_operation_id(params.kind), kind=params.kind, params=params
        )
    ctx = Context.create(topology, cloud, record, RUNBOOKS[record.kind], say)
    if record.version:
        claim(ctx)  # a resume: an older run of this operation still going is refused from now on
    return ctx


def finish(ctx: Context, status: OperationStatus, message: str = "") -> OperationRecord:
    ctx.record.status = status
    ctx.record.message = message or ctx.record.message
    ctx.operations.save(ctx.record)
    return ctx.record


def _summary(ctx: Context) -> str:
    """The last step's summary: the message of a completed operation."""
    result = ctx.result_if_done(ctx.runbook.last)
    return result.summary if isinstance(result, Summarised) else ""


@contextmanager
def _alive(ctx: Context) -> Iterator[None]:
    """This run heartbeats while it runs the operation (so a reader can tell when it died); once
    the operation has ended, its heartbeat goes."""
    try:
        with heartbeat.beating(ctx.control, ctx.record.id, ctx.run.id):
            yield
    finally:
        if ctx.record.status is not OperationStatus.RUNNING:
            heartbeat.forget(ctx.control, ctx.record.id)


def run_one(ctx: Context, step: Callable[[Context], R]) -> R:
    """Run a single step (a DAG task), marking the operation finished after the last one."""
    if step not in ctx.runbook.steps:
        names = ", ".join(step_name(s) for s in ctx.runbook.steps)
        raise ConfigurationError(f"{ctx.record.kind} has no step {step_name(step)!r}: {names}")
    with _alive(ctx):
        try:
            result = run_step(ctx, step)
        except AlreadyDone as exc:
            finish(ctx, OperationStatus.NOOP, str(exc))
            raise
        if step is ctx.runbook.last:
            finish(ctx, OperationStatus.COMPLETED, _summary(ctx))
        return result


def execute(ctx: Context, *, approve: Callable[[Context], bool] | None = None) -> OperationRecord:
    """Run every step not yet done. A dry run stops after preflight; a finished one is a no-op."""
    record = ctx.record
    if record.status in (OperationStatus.COMPLETED, OperationStatus.NOOP):
        ctx.say(f"operation {record.id} already {record.status.value}: nothing to do")
        return record
    with _alive(ctx):
        return _execute(ctx, approve)


def _execute(ctx: Context, approve: Callable[[Context], bool] | None) -> OperationRecord:
    record, runbook = ctx.record, ctx.runbook
    try:
        for step in runbook.steps:
            needs_approval = step is approval and step_name(approval) not in record.steps
            if needs_approval and approve is not None and not approve(ctx):
                return finish(ctx, OperationStatus.FAILED, "not approved; nothing was changed")
            run_step(ctx, step)
            if record.params.dry_run and step is runbook.preflight:
                return finish(ctx, OperationStatus.PLANNED, "dry run: preflight only, nothing was changed")
    except AlreadyDone as exc:
        ctx.say(str(exc))
        return finish(ctx, OperationStatus.NOOP, str(exc))
    except Exception as exc:
        unchanging = {step_name(runbook.preflight), step_name(approval)}
        changed = any(s.status is StepStatus.DONE for n, s in record.steps.items() if n not in unchanging)
        finish(
            ctx,
            OperationStatus.FAILED,
            f"stopped at an error ({exc}); run the same command again to resume"
            if changed
            else f"refused, nothing was changed: {exc}",
        )
        raise
    return finish(ctx, OperationStatus.COMPLETED, _summary(ctx))
