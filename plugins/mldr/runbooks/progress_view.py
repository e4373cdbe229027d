"""How an operation reads to a person: awaiting approval (who, since when), stalled (its run
died: how to resume it), and how long it took.

Pure functions over an `OperationRecord` and the topology, for `mldr status`, `mldr history` and
the dashboard: one place decides what "awaiting approval" and "took" mean.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from mldr.runbooks.engine import OperationRecord, OperationStatus, StepStatus
from mldr.runbooks.heartbeat import DEFAULT_EVERY, MISSED_BEATS
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


def resume_command(record: OperationRecord) -> str:
    """The CLI call that resumes `record` with the params it was started with (a resume with
    other params is refused); it takes over from a DAG run as well as from a dead CLI."""
    p = record.params
    tail = ["--reason", p.reason, *(["--yes"] if not p.require_approval else []), "--resume", record.id]
    if record.kind == "failover":
        head = [
            "failover",
            "--to",
            p.target_region,
            "--mode",
            p.mode.value,
            *(["--force"] if p.force else []),
        ]
    elif record.kind == "failback":
        head = ["failback"]
    else:  # a restore or rollback: its what and when are long to retype; they must match exactly
        return f"the `mldr restore` command it was started with, plus --resume {record.id}"
    return "mldr " + shlex.join([*head, *tail])


@dataclass(frozen=True)
class Stalled:
    """A running operation whose run has not been heard from: it died (killed, its DAG run failed
    or was marked failed) and nothing runs it now."""

    operation: str
    since: str  # when its run was last heard from
    run: str | None  # which run (host/pid/nonce) that was, if it heartbeat at all
    resume: str  # the command that resumes it
    abort: str  # the command that ends it instead

    def describe(self) -> str:
        run = f" ({self.run})" if self.run else ""
        return (
            f"stalled: its run{run} was last heard from at {self.since} and nothing runs it now; "
            f"resume with `{self.resume}`, or end it with `{self.abort}`"
        )


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def stalled(record: OperationRecord, topology: Topology, *, now: float | None = None) -> Stalled | None:
    """A `running` operation not heard from for `MISSED_BEATS` heartbeats (its record's last save
    counts as one: a record from before heartbeats, or a run that died before its first beat).
    One awaiting approval in a DAG run waits without a heartbeat (the task is deferred): it is
    stalled only once its response window has passed as well."""
    if record.status is not OperationStatus.RUNNING:
        return None
    heard = record.heard
    last = max(heard.at if heard else 0.0, _at(record.updated_at) or 0.0)
    grace = MISSED_BEATS * (heard.every if heard else DEFAULT_EVERY)
    deadline = last + grace
    waiting = awaiting_approval(record, topology)
    if waiting is not None:
        deadline = max(
            deadline, (_at(waiting.since) or 0.0) + topology.approval.response_window_seconds + grace
        )
    if (time.time() if now is None else now) <= deadline:
        return None
    return Stalled(
        operation=record.id,
        since=_iso(last),
        run=heard.run if heard else None,
        resume=resume_command(record),
        abort=f"mldr abort --operation {record.id} --reason 'WHY (10+ characters)'",
    )


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
