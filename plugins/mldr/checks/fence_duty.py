"""Read-only: the fence duties a failover left behind (`mldr status`, the dashboard).

An unplanned failover cannot fence a region that does not answer, nor disable its outgoing
replication rule. It records the duty in the control store instead ("fence region X and stop its
outgoing replication"); the next `mldr lag`, `dr_replication_lag` run or resumed operation that
reaches X completes it (`mldr.runbooks.fence_duty`). Until then, `mldr status` shows it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from mldr.cloud.control import ControlStore, Lease, RecordValue

#: A duty's record key in the control store: one per region.
DUTY_PREFIX = "fence-duty#"

PENDING = "pending"
DONE = "done"


def duty_key(region: str) -> str:
    return f"{DUTY_PREFIX}{region}"


@dataclass(frozen=True, kw_only=True)
class FenceDuty:
    region: str
    operation_id: str
    recorded_at: str
    status: str
    #: what could not be done when it was recorded (the failover's words)
    pending: tuple[str, ...]
    completed_at: str | None = None
    completed_by: str | None = None
    outcome: str | None = None

    @classmethod
    def from_record(cls, record: dict[str, RecordValue]) -> FenceDuty:
        return cls(
            region=str(record["region"]),
            operation_id=str(record["operation_id"]),
            recorded_at=str(record["recorded_at"]),
            status=str(record["status"]),
            pending=tuple(json.loads(str(record.get("pending", "[]")))),
            completed_at=str(record["completed_at"]) if "completed_at" in record else None,
            completed_by=str(record["completed_by"]) if "completed_by" in record else None,
            outcome=str(record["outcome"]) if "outcome" in record else None,
        )

    def public(self) -> dict[str, object]:
        return {
            "region": self.region,
            "duty": f"fence {self.region} and stop its outgoing replication",
            "operation_id": self.operation_id,
            "recorded_at": self.recorded_at,
            "status": self.status,
            "pending": list(self.pending),
            "completed_at": self.completed_at,
            "completed_by": self.completed_by,
            "outcome": self.outcome,
        }

    def describe(self) -> str:
        return (
            f"fence {self.region} and stop its outgoing replication (left by {self.operation_id} at "
            f"{self.recorded_at}: {self.region} did not answer); done by the next `mldr lag` or "
            "dr_replication_lag run once it answers"
        )


def open_fence_duties(control: ControlStore) -> list[FenceDuty]:
    """Every duty recorded and not closed, oldest first."""
    duties = [FenceDuty.from_record(r) for r in control.records(DUTY_PREFIX)]
    return sorted((d for d in duties if d.status == PENDING), key=lambda d: d.recorded_at)


def pending_fence_duties(control: ControlStore, lease: Lease) -> list[FenceDuty]:
    """The duties still to do, oldest first. A region that is active again (a failback went
    through: it fenced and unfenced that region itself) has no duty left."""
    return [d for d in open_fence_duties(control) if d.region != lease.active_region]
