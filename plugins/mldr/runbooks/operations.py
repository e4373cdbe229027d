"""Start, resume or plan a failover/failback: the one entry point for the CLI and the DAGs."""

from __future__ import annotations

import logging
from collections.abc import Callable

from mldr.cloud import Cloud
from mldr.errors import AlreadyDone, ConfigurationError
from mldr.runbooks import failback, failover
from mldr.runbooks.common import new_operation_id
from mldr.runbooks.engine import (
    Context,
    OperationRecord,
    OperationStatus,
    OperationStore,
    R,
    Runbook,
    StepStatus,
    Summarised,
    run_step,
    step_name,
)
from mldr.runbooks.params import OperationParams
from mldr.runbooks.shared_steps import approval
from mldr.topology import Topology

log = logging.getLogger(__name__)

#: The runbook an operation record's `kind` names: read where a record is opened, not per step.
RUNBOOKS: dict[str, Runbook] = {r.kind: r for r in (failover.RUNBOOK, failback.RUNBOOK)}


def _resumable_id(cloud: Cloud, params: OperationParams) -> str | None:
    """The id of an unfinished operation of the same kind and target, to resume it."""
    lease = cloud.control().read_lease()
    op = lease.operation
    if op is not None and op.kind == params.kind and op.target == params.target_region:
        return op.id
    return None


def open_operation(
    topology: Topology,
    cloud: Cloud,
    params: OperationParams,
    *,
    operation_id: str | None = None,
    say: Callable[[str], None] = lambda _m: None,
) -> Context:
    """Load the operation (resuming it) or create its record; nothing else is changed."""
    topology.require_region(params.target_region)
    if params.kind == failback.RUNBOOK.kind and params.target_region != topology.primary_region:
        # Steps both runbooks share (scale) act on target_region: for a failback, the primary.
        raise ConfigurationError(
            f"failback returns to the primary region {topology.primary_region}, not {params.target_region}"
        )
    operations = OperationStore(cloud.control())
    if operation_id is None:
        operation_id = _resumable_id(cloud, params)
        if operation_id:
            say(f"resuming unfinished operation {operation_id}")
    record = operations.load(operation_id) if operation_id else None
    if record is None:
        record = OperationRecord(
            id=operation_id or new_operation_id(params.kind), kind=params.kind, params=params
        )
    return Context.create(topology, cloud, record, RUNBOOKS[record.kind], say)


def finish(ctx: Context, status: OperationStatus, message: str = "") -> OperationRecord:
    ctx.record.status = status
    ctx.record.message = message or ctx.record.message
    ctx.operations.save(ctx.record)
    return ctx.record


def _summary(ctx: Context) -> str:
    """The last step's summary: the message of a completed operation."""
    result = ctx.result_if_done(ctx.runbook.last)
    return result.summary if isinstance(result, Summarised) else ""


def run_one(ctx: Context, step: Callable[[Context], R]) -> R:
    """Run a single step (a DAG task), marking the operation finished after the last one."""
    if step not in ctx.runbook.steps:
        names = ", ".join(step_name(s) for s in ctx.runbook.steps)
        raise ConfigurationError(f"{ctx.record.kind} has no step {step_name(step)!r}: {names}")
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
    record, runbook = ctx.record, ctx.runbook
    if record.status in (OperationStatus.COMPLETED, OperationStatus.NOOP):
        ctx.say(f"operation {record.id} already {record.status.value}: nothing to do")
        return record
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
