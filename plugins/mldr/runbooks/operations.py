"""Start, resume or plan a failover/failback: the one entry point for the CLI and the DAGs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from mldr.cloud import Cloud
from mldr.errors import ConfigurationError
from mldr.runbooks import failback, failover
from mldr.runbooks.common import AlreadyDone, OperationParams, new_operation_id
from mldr.runbooks.engine import (
    Context,
    OperationRecord,
    OperationStatus,
    OperationStore,
    Step,
    StepStatus,
    run_step,
)
from mldr.topology import Topology

log = logging.getLogger(__name__)

RUNBOOKS: dict[str, list[Step]] = {"failover": failover.STEPS, "failback": failback.STEPS}


def steps_of(kind: str) -> list[Step]:
    if kind not in RUNBOOKS:
        raise ConfigurationError(f"unknown runbook {kind!r}: {', '.join(RUNBOOKS)}")
    return RUNBOOKS[kind]


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
    operations = OperationStore(cloud.control())
    if operation_id is None:
        operation_id = _resumable_id(cloud, params)
        if operation_id:
            say(f"resuming unfinished operation {operation_id}")
    record = operations.load(operation_id) if operation_id else None
    if record is None:
        record = OperationRecord(
            id=operation_id or new_operation_id(params.kind), kind=params.kind, params=params.to_dict()
        )
    return Context.create(topology, cloud, record, say)


def finish(ctx: Context, status: OperationStatus, message: str = "") -> OperationRecord:
    ctx.record.status = status
    ctx.record.message = message or ctx.record.message
    ctx.operations.save(ctx.record)
    return ctx.record


def run_one(ctx: Context, step_name: str) -> dict[str, Any]:
    """Run a single named step (a DAG task), marking the operation finished after `record`."""
    steps = {s.name: s for s in steps_of(ctx.record.kind)}
    if step_name not in steps:
        raise ConfigurationError(f"{ctx.record.kind} has no step {step_name!r}: {', '.join(steps)}")
    try:
        result = run_step(ctx, steps[step_name])
    except AlreadyDone as exc:
        finish(ctx, OperationStatus.NOOP, str(exc))
        raise
    if step_name == "record":
        finish(ctx, OperationStatus.COMPLETED, result.get("summary", ""))
    return result


def execute(ctx: Context, *, approve: Callable[[Context], bool] | None = None) -> OperationRecord:
    """Run every step not yet done. A dry run stops after preflight; a finished one is a no-op."""
    record = ctx.record
    if record.status in (OperationStatus.COMPLETED, OperationStatus.NOOP):
        ctx.say(f"operation {record.id} already {record.status.value}: nothing to do")
        return record
    dry_run = bool(record.params.get("dry_run"))
    try:
        for step in steps_of(record.kind):
            needs_approval = step.name == "approval" and "approval" not in record.steps
            if needs_approval and approve is not None and not approve(ctx):
                return finish(ctx, OperationStatus.FAILED, "not approved; nothing was changed")
            run_step(ctx, step)
            if dry_run and step.name == "preflight":
                return finish(ctx, OperationStatus.PLANNED, "dry run: preflight only, nothing was changed")
    except AlreadyDone as exc:
        ctx.say(str(exc))
        return finish(ctx, OperationStatus.NOOP, str(exc))
    except Exception as exc:
        changed = any(
            s.status is StepStatus.DONE for n, s in record.steps.items() if n not in ("preflight", "approval")
        )
        finish(
            ctx,
            OperationStatus.FAILED,
            f"stopped at an error ({exc}); run the same command again to resume"
            if changed
            else f"refused, nothing was changed: {exc}",
        )
        raise
    return finish(ctx, OperationStatus.COMPLETED, record.result("record").get("summary", ""))
