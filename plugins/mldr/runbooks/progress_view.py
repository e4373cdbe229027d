"""How an operation reads to a person: awaiting approval (who, since when), and how long it took.

Pure functions over an `OperationRecord` and the topology, for `mldr status`, `mldr history` and
the dashboard: one place decides what "awaiting approval" and "took" mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mldr.runbooks.engine import OperationRecord, OperationStatus, StepStatus
from mldr.topology import Topology

_APPROVAL = "approval"


@dataclass(frozen=True)
class AwaitingApproval:
    since: str  # when preflight ended: the approver has been able to answer since then
    approvers: str  # who may answer
    where: str  # where to answer

    def describe(self) -> str:
        return f"awaiting approval since {self.since} by {self.approvers}: {self.where}"


def awaiting_approval(record: OperationRecord, topology: Topology) -> AwaitingApproval | None:
    """A running operation whose preflight is done and whose approval is not: it waits for a person."""
    if record.status is not OperationStatus.RUNNING or not record.params.require_approval:
        return None
    steps = record.steps
    preflight = next(iter(steps.values()), None)
    if preflight is None or preflight.status is not StepStatus.DONE or preflight.ended_at is None:
        return None
    if _APPROVAL in steps and steps[_APPROVAL].status is StepStatus.DONE:
        return None
    approvers = topology.approval.approvers
    who = ", ".join(approvers) if approvers else "any Airflow user who may run the DAG"
    where = (
        f"Airflow UI > Required Actions (DAG dr_{record.kind}, task await_approval), "
        "or PATCH .../taskInstances/await_approval/-1/hitlDetails"
    )
    return AwaitingApproval(since=preflight.ended_at, approvers=who, where=where)


def _at(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@dataclass(frozen=True)
class Took:
    wall_seconds: float | None  # first step's start to the last step's end (None: no step ran)
    awaiting_approval_seconds: float  # of which waiting for a person (preflight end -> approval)

    def describe(self) -> str:
        if self.wall_seconds is None:
            return "-"
        text = f"{self.wall_seconds:.1f}s"
        if self.awaiting_approval_seconds:
            text += f" (+{self.awaiting_approval_seconds:.1f}s awaiting approval)"
        return text


def took(record: OperationRecord) -> Took:
    """The operation's wall time with the time awaiting approval apart - not the sum of step times
    (which leaves out every pause between steps: a 15 s failover once read 0.8 s)."""
    steps = list(record.steps.values())
    starts = [t for s in steps if (t := _at(s.started_at)) is not None]
    ends = [t for s in steps if (t := _at(s.ended_at)) is not None]
    if not starts or not ends:  # a record without step times (older, or hand-made): their sum
        seconds = record.step_seconds()
        return Took(round(sum(seconds.values()), 1) if seconds else None, 0.0)
    waiting = 0.0
    approval = record.steps.get(_APPROVAL)
    if steps and approval is not None:
        preflight_end, approval_start = _at(steps[0].ended_at), _at(approval.started_at)
        if preflight_end is not None and approval_start is not None:
            waiting = max(0.0, approval_start - preflight_end)
    wall = max(0.0, max(ends) - min(starts) - waiting)
    return Took(round(wall, 1), round(waiting, 1))
