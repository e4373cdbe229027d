"""How an operation reads to a person (issue 16 item 6): awaiting approval shows who and since
when; "took" is the wall time with the wait for approval apart, not the sum of step times."""

from __future__ import annotations

import json
from pathlib import Path

from mldr.runbooks.engine import OperationRecord, OperationStatus, StepRecord, StepStatus
from mldr.runbooks.params import Mode, OperationParams
from mldr.runbooks.progress_view import awaiting_approval, took
from mldr.topology import Topology, parse_topology

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "topology.json"


def _topology(**approval: object) -> Topology:
    document = json.loads(FIXTURE.read_text())
    document["approval"] = {"required": False, **approval}
    return parse_topology(document)


def _record(*steps: tuple[str, str, str | None], approval: bool = True) -> OperationRecord:
    params = OperationParams(
        kind="failover",
        target_region="us-west-2",
        mode=Mode.PLANNED,
        reason="a unit test of the record view",
        requested_by="alice",
        require_approval=approval,
    )
    record = OperationRecord(id="failover-x", kind="failover", params=params)
    for name, started, ended in steps:
        status = StepStatus.DONE if ended else StepStatus.RUNNING
        record.steps[name] = StepRecord(
            name=name, status=status, started_at=started, ended_at=ended, seconds=0.1
        )
    return record


PREFLIGHT = ("preflight", "2026-12-03T10:00:00+00:00", "2026-12-03T10:00:02+00:00")


def test_an_operation_waiting_for_its_approver_says_who_and_since_when() -> None:
    waiting = awaiting_approval(_record(PREFLIGHT), _topology(approvers=["alice", "bob"]))
    assert waiting is not None
    assert waiting.describe().startswith("awaiting approval since 2026-12-03T10:00:02+00:00 by alice, bob")
    assert "Required Actions" in waiting.describe() and "dr_failover" in waiting.describe()
    anyone = awaiting_approval(_record(PREFLIGHT), _topology())
    assert anyone is not None and "any Airflow user who may run the DAG" in anyone.approvers
    # Not waiting: no approval asked, approved already, or the operation ended.
    assert awaiting_approval(_record(PREFLIGHT, approval=False), _topology()) is None
    approved = _record(PREFLIGHT, ("approval", "2026-12-03T10:05:00+00:00", "2026-12-03T10:05:00+00:00"))
    assert awaiting_approval(approved, _topology()) is None
    rejected = _record(PREFLIGHT)
    rejected.status = OperationStatus.REJECTED
    assert awaiting_approval(rejected, _topology()) is None


def test_took_is_the_wall_time_with_the_approval_wait_apart() -> None:
    record = _record(
        PREFLIGHT,
        ("approval", "2026-12-03T10:05:02+00:00", "2026-12-03T10:05:02+00:00"),
        ("fence", "2026-12-03T10:05:04+00:00", "2026-12-03T10:05:05+00:00"),
        ("record", "2026-12-03T10:05:14+00:00", "2026-12-03T10:05:15+00:00"),
    )
    assert sum(record.step_seconds().values()) < 1  # what "took" once showed
    spent = took(record)
    assert (spent.wall_seconds, spent.awaiting_approval_seconds) == (15.0, 300.0)
    assert spent.describe() == "15.0s (+300.0s awaiting approval)"
    assert took(_record()).describe() == "-"
