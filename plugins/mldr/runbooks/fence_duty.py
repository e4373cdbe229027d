"""Complete the fence duties an unplanned failover left: fence the old primary and stop its
outgoing replication as soon as it answers, with the completion in the audit log.

Called explicitly by `mldr lag`, the `dr_replication_lag` DAG's first task and a resumed
failover's `record` step (the read-only lag check itself never changes anything).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

from mldr.actions import fence_duty, fencing
from mldr.checks.fence_duty import FenceDuty, open_fence_duties
from mldr.cloud import Cloud
from mldr.errors import FencingConflict, LeaseHeld
from mldr.runbooks.audit import AuditLog
from mldr.topology import Topology

log = logging.getLogger(__name__)

EVENT = "fence-duty-done"


@dataclass(frozen=True, kw_only=True)
class DutyOutcome:
    region: str
    operation_id: str
    done: bool
    message: str

    def public(self) -> dict[str, object]:
        return asdict(self)

    def line(self) -> str:
        state = "DONE" if self.done else "PENDING"
        return f"fence duty {self.region} (from {self.operation_id}): {state}: {self.message}"


def _close(
    cloud: Cloud, topology: Topology, duty: FenceDuty, *, by: str, outcome: str, **fields: object
) -> DutyOutcome:
    control = cloud.control()
    fence_duty.close(control, duty, by=by, outcome=outcome)
    AuditLog(cloud, topology, control).record(
        duty.operation_id, EVENT, region=duty.region, by=by, outcome=outcome, **fields
    )
    return DutyOutcome(region=duty.region, operation_id=duty.operation_id, done=True, message=outcome)


def complete_one(
    cloud: Cloud, topology: Topology, duty: FenceDuty, *, by: str, holder_id: str | None = None
) -> DutyOutcome:
    """Try the duty now. `holder_id`: the operation holding the lease when the caller is that
    operation (it lists the fenced region itself); otherwise the lease must be free."""
    control = cloud.control()
    lease = control.read_lease()

    def pending(message: str) -> DutyOutcome:
        return DutyOutcome(region=duty.region, operation_id=duty.operation_id, done=False, message=message)

    if duty.region == lease.active_region:
        return _close(cloud, topology, duty, by=by, outcome=f"not needed: {duty.region} is active again")
    if lease.operation is not None and lease.operation.id != holder_id:
        # An operation in flight owns the fences (a failback lifts this one): not ours to touch.
        return pending(f"left for later: the DR lease is held by {fencing.describe_holder(lease.operation)}")
    result = fence_duty.fence_and_stop(cloud, topology, region=duty.region, active=lease.active_region)
    if not result.done:
        return pending("; ".join(result.pending))
    if holder_id is None:
        try:
            fencing.add_fenced_region(control, duty.region)
        except (FencingConflict, LeaseHeld) as exc:
            return pending(f"fenced, but the DR lease changed meanwhile ({exc}); the next run lists it")
    outcome = f"fenced {', '.join(result.fenced)}; outgoing replication stopped" + (
        f" ({'; '.join(result.changed)})" if result.changed else " (its rule was already disabled)"
    )
    return _close(
        cloud,
        topology,
        duty,
        by=by,
        outcome=outcome,
        fenced=list(result.fenced),
        changed=list(result.changed),
    )


def complete_fence_duties(topology: Topology, cloud: Cloud, *, by: str) -> list[DutyOutcome]:
    """Every open duty tried once; what is still pending says why."""
    outcomes = [complete_one(cloud, topology, duty, by=by) for duty in open_fence_duties(cloud.control())]
    for outcome in outcomes:
        (log.info if outcome.done else log.warning)("%s", outcome.line())
    return outcomes
