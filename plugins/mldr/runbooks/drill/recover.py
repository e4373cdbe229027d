"""Undoing an interrupted drill (`recover`), and the runbook operations a drill and its
recovery start (failover and failback, no approval step)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from mldr.checks.health import endpoint_healthy
from mldr.cloud import Cloud
from mldr.errors import DrillInProgress, LeaseHeld, MldrError
from mldr.runbooks.drill.faults import FaultInjector, fault_injector
from mldr.runbooks.drill.load import (
    canary_prefix,
    delete_canaries,
)
from mldr.runbooks.drill.params import canary_dataset
from mldr.runbooks.drill.state import DrillStateStore, Phase
from mldr.runbooks.engine import OperationRecord, OperationStatus, OperationStore
from mldr.runbooks.operations import execute, open_operation
from mldr.runbooks.params import Mode, OperationParams
from mldr.topology import Topology

log = logging.getLogger(__name__)

HEAL_TIMEOUT = 30.0


def operation_params(kind: str, target: str, mode: Mode, reason: str, by: str) -> OperationParams:
    return OperationParams(
        kind=kind, target_region=target, mode=mode, reason=reason, requested_by=by, require_approval=False
    )


def run_operation(
    topology: Topology,
    cloud: Cloud,
    params: OperationParams,
    say: Callable[[str], None],
    on_open: Callable[[str], None] = lambda _id: None,
    *,
    resume: str | None = None,
) -> OperationRecord:
    """Run an operation to its end; `resume` names an unfinished one of the drill's to continue."""
    ctx = open_operation(topology, cloud, params, operation_id=resume, resume=resume is not None, say=say)
    on_open(ctx.record.id)
    record = execute(ctx)
    if record.status not in (OperationStatus.COMPLETED, OperationStatus.NOOP):
        raise MldrError(f"{params.kind} {record.id} ended {record.status.value}: {record.message}")
    return record


# --- recovery ---------------------------------------------------------------------------------


def recover(
    topology: Topology,
    cloud: Cloud,
    *,
    faults: FaultInjector | None = None,
    say: Callable[[str], None] = log.info,
) -> list[str]:
    """Undo what an interrupted drill left behind; returns what was done (empty: nothing to do).

    Heals the region it stopped, resumes replication it paused, finishes the failover or
    failback it had started (the runbooks resume from their records), fails back to the
    primary, and removes its canaries. Idempotent; refuses while the drill's process lives.
    """
    control = cloud.control()
    drills = DrillStateStore(control)
    state = drills.load()
    if state is None or state.phase.finished:
        return []
    if state.running_elsewhere():
        raise DrillInProgress(
            f"drill {state.drill_id} is running (pid {state.pid} on {state.host}, phase {state.phase}); "
            "wait for it, or stop that process and run `mldr drill --recover`"
        )
    say(
        f"recovering interrupted drill {state.drill_id} ({state.scenario}, stopped in phase "
        f"{state.phase}, pid {state.pid})"
    )
    done: list[str] = []
    if state.fault_region or state.replication_paused:
        faults = faults or fault_injector(topology)
        if state.fault_region:
            faults.heal(state.fault_region)
            done.append(f"healed {state.fault_region}")
        if state.replication_paused:
            faults.resume_replication()
            done.append("resumed replication")
        state.fault_region, state.replication_paused = None, False
        drills.save(state)
    ours = set(state.operations.values())
    lease = control.read_lease()
    op = lease.operation
    if op is not None:
        if op.id not in ours:
            raise LeaseHeld(
                f"the DR lease is held by {op.kind} {op.id} ({op.reason!r}), not by drill {state.drill_id}; "
                "resolve it first (`mldr status`), then run `mldr drill --recover` again"
            )
        if op.kind == "failback":
            wait_healthy(topology, op.target)  # its remaining steps need the primary answering
        say(f"finishing the drill's interrupted {op.kind} {op.id} ({op.source} -> {op.target})")
        run_operation(
            topology,
            cloud,
            operation_params(op.kind, op.target, Mode(op.mode), op.reason, op.started_by),
            say,
            resume=op.id,
        )
        done.append(f"finished interrupted {op.kind} {op.id} to {op.target}")
    operations = OperationStore(control)
    for op_id in ours:
        record = operations.load(op_id)
        if record is not None and record.status is OperationStatus.RUNNING:
            # Killed before it took the lease: nothing was changed; say so in its record.
            record.status = OperationStatus.FAILED
            record.message = (
                f"abandoned: drill {state.drill_id} was interrupted before this operation changed anything"
            )
            operations.save(record)
            done.append(f"marked {op_id} abandoned (it had changed nothing)")
    lease = control.read_lease()
    primary = topology.primary_region
    if lease.active_region != primary or lease.fenced_regions:
        wait_healthy(topology, primary)
        reason = f"DR drill {state.drill_id}: recovery after interruption"
        record = run_operation(
            topology,
            cloud,
            operation_params("failback", primary, Mode.PLANNED, reason, "drill-recovery"),
            say,
        )
        done.append(f"failed back to {primary} ({record.id})")
    removed = cleanup_canaries(topology, cloud, state.drill_id)
    if removed:
        done.append(f"removed {removed} canary object(s)")
    state.phase = Phase.RECOVERED
    state.message = "; ".join(done) or "nothing to undo"
    drills.save(state)
    say(f"drill {state.drill_id} recovered: {state.message}")
    return done


def wait_healthy(topology: Topology, region: str, timeout: float = HEAL_TIMEOUT) -> float:
    started = time.monotonic()
    why = ""
    while time.monotonic() - started < timeout:
        ok, why = endpoint_healthy(topology, region, timeout=1.0)
        if ok:
            return time.monotonic() - started
        time.sleep(0.2)
    raise MldrError(f"{region} not healthy {timeout:.0f}s after healing: {why}")


def cleanup_canaries(topology: Topology, cloud: Cloud, drill_id: str) -> int:
    dataset = canary_dataset(topology)
    prefix = canary_prefix(dataset.prefix, drill_id)
    removed = 0
    for region in topology.region_names:
        try:
            removed += delete_canaries(cloud, region=region, bucket=dataset.buckets[region], prefix=prefix)
        except MldrError as exc:
            log.warning("canaries of %s not removed from %s: %s", drill_id, region, exc)
    return removed
