"""Undoing an interrupted drill (`recover`), and the runbook operations a drill and its
recovery start (failover and failback, no approval step)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from mldr.checks.health import endpoint_healthy
from mldr.cloud import Cloud
from mldr.errors import DrillFailed, DrillInProgress, MldrError
from mldr.runbooks.drill import lock as drill_lock
from mldr.runbooks.drill.faults import FaultInjector, fault_injector
from mldr.runbooks.drill.load import (
    canary_prefix,
    delete_canaries,
)
from mldr.runbooks.drill.params import canary_dataset
from mldr.runbooks.drill.state import DrillState, DrillStateStore, Phase
from mldr.runbooks.engine import OperationRecord, OperationStatus, OperationStore
from mldr.runbooks.operations import RUNBOOKS, execute, open_operation
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
    drill_id: str,
    resume: str | None = None,
    must_change: bool = False,
) -> OperationRecord:
    """Run one of drill `drill_id`'s operations to its end; `resume` names an unfinished one to
    continue. `must_change`: one that changed nothing (a no-op: something else had already moved
    the DR state) fails the drill - a drill whose failover did not run measured nothing."""
    ctx = open_operation(
        topology, cloud, params, operation_id=resume, resume=resume is not None, drill_id=drill_id, say=say
    )
    on_open(ctx.record.id)
    record = execute(ctx)
    if must_change and record.status is OperationStatus.NOOP:
        raise DrillFailed(
            f"drill {drill_id} FAILED: its {params.kind} {record.id} did not run ({record.message}). "
            "Something else changed the DR state during the drill (`mldr history`); the drill "
            "measured nothing and leaves that state as it found it"
        )
    if record.status not in (OperationStatus.COMPLETED, OperationStatus.NOOP):
        raise MldrError(f"{params.kind} {record.id} ended {record.status.value}: {record.message}")
    return record


def _own_tokens(operations: OperationStore, state: DrillState) -> list[int]:
    """The fencing tokens the drill's own completed operations left the lease with."""
    tokens = []
    for op_id in state.operations.values():
        record = operations.load(op_id)
        if record is None or record.status is not OperationStatus.COMPLETED:
            continue
        result = record.result_if_done(RUNBOOKS[record.kind].last)
        token = getattr(result, "fencing_token", None)
        if isinstance(token, int):
            tokens.append(token)
    return tokens


# --- recovery ---------------------------------------------------------------------------------


def recover(
    topology: Topology,
    cloud: Cloud,
    *,
    faults: FaultInjector | None = None,
    say: Callable[[str], None] = log.info,
    lock: drill_lock.HeldLock | None = None,
) -> list[str]:
    """Undo what an interrupted drill left behind; returns what was done (empty: nothing to do).

    Heals the region it stopped, resumes replication it paused, finishes the failover or
    failback it had started (the runbooks resume from their records), fails back to the
    primary - only if the drill's own operation moved it there - and removes its canaries.
    Idempotent. Acts only under the drill lock: `lock` when the caller (a drill) holds it, else
    taken here, taking over a stale one; refused, naming it, while another drill's is live.
    """
    control = cloud.control()
    drills = DrillStateStore(control)
    if lock is None:
        running = drill_lock.running_drill(control)
        if running is not None:
            raise DrillInProgress(
                f"a DR drill is running: {running.describe()}; nothing to recover while it runs. "
                + running.how_to_stop()
            )
    state = drills.load()
    if state is None or state.phase.finished:
        return []
    if lock is not None:
        return _recover(topology, cloud, state, lock, faults=faults, say=say)
    held = drill_lock.acquire(control, drill_id=state.drill_id, purpose="recovery", say=say)
    try:
        # read again under the lock: the drill may have finished between the reads
        state = drills.load()
        if state is None or state.phase.finished:
            return []
        return _recover(topology, cloud, state, held, faults=faults, say=say)
    finally:
        held.release()


def _recover(
    topology: Topology,
    cloud: Cloud,
    state: DrillState,
    lock: drill_lock.HeldLock,
    *,
    faults: FaultInjector | None,
    say: Callable[[str], None],
) -> list[str]:
    lock.check()
    control = cloud.control()
    drills = DrillStateStore(control)
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
    if op is not None and op.id not in ours:
        # Someone else's operation (begun before the drill took its lock): not the drill's to
        # finish or undo. The drill's own leftovers (fault, stall, canaries) are still undone.
        say(f"leaving the DR lease to {op.kind} {op.id} ({op.reason!r}): not an operation of this drill")
        done.append(f"left {op.kind} {op.id} alone: not the drill's")
    elif op is not None:
        if op.kind == "failback":
            wait_healthy(topology, op.target)  # its remaining steps need the primary answering
        say(f"finishing the drill's interrupted {op.kind} {op.id} ({op.source} -> {op.target})")
        interrupted = OperationStore(control).load(op.id)
        run_operation(
            topology,
            cloud,
            # resumed with the params it was started with (a restore's dataset and time too)
            interrupted.params
            if interrupted is not None
            else operation_params(op.kind, op.target, Mode(op.mode), op.reason, op.started_by),
            say,
            drill_id=lock.drill_id,
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
    own = _own_tokens(operations, state)
    if (lease.active_region != primary or lease.fenced_regions) and not (
        own and lease.fencing_token <= max(own)
    ):
        # Another operation moved the DR state (an operator's, not the drill's): failing it back
        # would undo a real failover. Leave it, and say so.
        say(
            f"not failing back: the DR lease says {lease.active_region} active (fenced: "
            f"{', '.join(lease.fenced_regions) or 'none'}, fencing token {lease.fencing_token}), "
            f"which no operation of drill {state.drill_id} left; see `mldr status` and `mldr history`"
        )
        done.append(f"left {lease.active_region} active: another operation, not the drill, put it there")
    elif lease.active_region != primary or lease.fenced_regions:
        lock.check()
        wait_healthy(topology, primary)
        reason = f"DR drill {state.drill_id}: recovery after interruption"
        record = run_operation(
            topology,
            cloud,
            operation_params("failback", primary, Mode.PLANNED, reason, "drill-recovery"),
            say,
            drill_id=lock.drill_id,
        )
        done.append(f"failed back to {primary} ({record.id})")
    from mldr.runbooks.drill.corruption import undo_damage  # imports this module

    done += undo_damage(topology, cloud, state, say=say)
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
