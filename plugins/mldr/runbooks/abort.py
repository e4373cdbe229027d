"""`mldr abort`: end the operation holding the DR lease, wherever it stopped.

The way out of a failover or failback that cannot go on (a crashed run, a step that keeps
failing, a decision to stay where we are): afterwards exactly one region takes writes and
receives traffic, the lease is free and the operation's record says `aborted`.

Which region serves is the lease's active region: the operation moved it only once the DNS
answered its target (`switch`, `failback_switch`), so it is where traffic is, or is about to be
sent back by this abort. The fences are then put as the finished state of either runbook leaves
them, whatever step the operation reached - so every fence it added on the serving region is
lifted, and every fence it lifted on the other region is put back:

- serving region: no write fence, replication from it to the other region;
- the other region: fenced if it is the primary (failed over, waiting for a failback that
  resyncs it), unfenced if it is the secondary (the normal state: it takes replication).

A region that does not answer is reported as pending (the next failback completes it). An
operation still running elsewhere finds the lease gone at its next step and stops there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass

from mldr.actions import fencing, replication, traffic, write_fence
from mldr.cloud import Cloud
from mldr.cloud.control import now_iso
from mldr.errors import ConfigurationError, MldrError
from mldr.runbooks.audit import AuditLog
from mldr.runbooks.engine import OperationRecord, OperationStatus, OperationStore
from mldr.topology import Topology

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class AbortResult:
    operation_id: str
    kind: str
    stopped_at: str  # the step the operation had reached
    serving: str  # the one region that takes writes and receives traffic
    traffic_changed: bool
    lifted: tuple[str, ...]  # buckets whose write fence was lifted
    fenced: tuple[str, ...]  # buckets fenced (again)
    pending: tuple[str, ...]  # what could not be done now, and why
    fencing_token: int
    aborted_by: str
    reason: str
    aborted_at: str

    def public(self) -> dict[str, object]:
        return asdict(self)

    def summary(self) -> str:
        lines = [
            f"aborted {self.kind} {self.operation_id} (it had reached step {self.stopped_at})",
            f"{self.serving} serves and takes writes; fencing token {self.fencing_token}; DR lease free",
        ]
        if self.lifted:
            lines.append("write fence lifted: " + ", ".join(self.lifted))
        if self.fenced:
            lines.append("write fence put back: " + ", ".join(self.fenced))
        lines += [f"PENDING: {p}" for p in self.pending]
        return "\n".join(lines)


def _holder(cloud: Cloud, operation_id: str | None) -> tuple[str, str, str]:
    """The operation to abort (id, kind, step): the lease's holder, which `operation_id` must name."""
    op = cloud.control().read_lease().operation
    if op is None:
        what = f"operation {operation_id} is not running" if operation_id else "no operation is running"
        raise ConfigurationError(
            f"{what}: no operation holds the DR lease, nothing to abort. `mldr status` shows the "
            "control state, `mldr history` past operations"
        )
    if operation_id is not None and op.id != operation_id:
        raise ConfigurationError(
            f"operation {operation_id} is not running: the DR lease is held by "
            f"{fencing.describe_holder(op)}. Pass --operation {op.id} to abort that one"
        )
    return op.id, op.kind, op.step


def _set_fences(
    cloud: Cloud, topology: Topology, *, region: str, fenced: bool
) -> tuple[list[str], list[str], list[str]]:
    """Put (or lift) the write fence on every dataset bucket of `region`: the buckets lifted,
    the buckets fenced, and what could not be done."""
    lifted: list[str] = []
    put: list[str] = []
    pending: list[str] = []
    store = cloud.objects(region)
    for dataset in topology.datasets:
        bucket = dataset.buckets[region]
        try:
            if fenced and write_fence.fence(store, bucket):
                put.append(bucket)
            elif not fenced and write_fence.lift(store, bucket):
                lifted.append(bucket)
        except MldrError as exc:
            pending.append(f"{'fence' if fenced else 'lift the fence on'} {bucket} ({region}): {exc}")
    return lifted, put, pending


def abort(
    topology: Topology,
    cloud: Cloud,
    *,
    operation_id: str | None,
    reason: str,
    requested_by: str,
    say: Callable[[str], None] = lambda _m: None,
) -> AbortResult:
    """End the operation holding the lease (it must be `operation_id` when given); see the module
    docstring for the state it leaves. Safe to run again if it stops half-way."""
    op_id, kind, stopped_at = _holder(cloud, operation_id)
    control = cloud.control()
    # The abort is a run of its own that takes the operation over, as a resume does: the run
    # that was executing it (a hung CLI, a zombie task) is refused at its next move from here on.
    run = fencing.Run()
    operations = OperationStore(control, run)
    record = operations.load(op_id)
    if record is not None:
        operations.save(record)  # gives this run its rank: it outranks every earlier run
    with fencing.acting_as(run):
        fencing.take_over(control, op_id)
        return _abort(topology, cloud, op_id, kind, stopped_at, operations, record, reason, requested_by, say)


def _abort(
    topology: Topology,
    cloud: Cloud,
    op_id: str,
    kind: str,
    stopped_at: str,
    operations: OperationStore,
    record: OperationRecord | None,
    reason: str,
    requested_by: str,
    say: Callable[[str], None],
) -> AbortResult:
    control = cloud.control()
    serving = control.read_lease().active_region
    other = topology.other_region(serving)
    say(f"aborting {kind} {op_id} (at step {stopped_at}): {serving} keeps serving")
    # The other region first: if traffic still reaches it (a switch cut short), it refuses
    # writes before the serving region takes them - two regions fenced for a moment, never two open.
    keep_other_fenced = other == topology.primary_region
    lifted, fenced, pending = _set_fences(cloud, topology, region=other, fenced=keep_other_fenced)
    more_lifted, _, missed = _set_fences(cloud, topology, region=serving, fenced=False)
    lifted, pending = lifted + more_lifted, pending + missed
    fencing.update(control, op_id, fenced_regions=(other,) if keep_other_fenced else ())
    try:
        changed = bool(traffic.switch(cloud, topology, serving)["changed"])
    except MldrError as exc:
        changed = False
        pending.append(f"send traffic to {serving}: {exc}")
    direction = replication.set_direction(cloud, topology, source=serving, target=other)
    pending += [f"replication: {p}" for p in direction["pending"]]
    if record is not None and kind == "failover" and serving == record.params.target_region:
        # the failover moved the service: a later failback resyncs what changed since it started
        control.put_record(
            "last-failover",
            {
                "operation_id": record.id,
                "started_epoch": record.created_epoch,
                "target": serving,
                "source": other,
            },
        )
    lease = fencing.release(control, op_id)
    result = AbortResult(
        operation_id=op_id,
        kind=kind,
        stopped_at=stopped_at,
        serving=serving,
        traffic_changed=changed,
        lifted=tuple(lifted),
        fenced=tuple(fenced),
        pending=tuple(pending),
        fencing_token=lease.fencing_token,
        aborted_by=requested_by,
        reason=reason,
        aborted_at=now_iso(),
    )
    if record is not None:
        record.status = OperationStatus.ABORTED
        record.message = f"aborted by {requested_by}: {reason}. " + result.summary().replace("\n", "; ")
        operations.save(record)
    fields = {k: v for k, v in result.public().items() if k != "operation_id"}
    AuditLog(cloud, topology, control).record(op_id, "aborted", **fields)
    log.warning("operation %s aborted by %s: %s", op_id, requested_by, reason)
    return result
