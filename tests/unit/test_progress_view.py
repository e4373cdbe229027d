"""How an operation reads to a person (issue 16 item 6): awaiting approval shows who and since
when; a running operation whose run died reads stalled, with the command that resumes it;
"took" is the wall time with the wait for approval apart, not the sum of step times."""

from __future__ import annotations

import json
import shlex
from datetime import datetime
from pathlib import Path

from mldr.runbooks.engine import OperationRecord, OperationStatus, StepRecord, StepStatus
from mldr.runbooks.heartbeat import Heartbeat
from mldr.runbooks.params import Mode, OperationParams
from mldr.runbooks.progress_view import awaiting_approval, resume_command, stalled, took
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


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def test_a_running_operation_whose_run_went_silent_reads_stalled_with_the_resume_command() -> None:
    topology = _topology()
    record = _record(PREFLIGHT, ("fence", "2026-12-03T10:00:03+00:00", None), approval=False)
    record.updated_at = "2026-12-03T10:00:03+00:00"
    t = _epoch("2026-12-03T10:00:03+00:00")
    record.heard = Heartbeat(run="laptop/4242/ab12", at=t + 100, every=2.0)
    # Heard from within 6 beats (12 s): alive, whatever the record's last save.
    assert stalled(record, topology, now=t + 111) is None
    dead = stalled(record, topology, now=t + 113)
    assert dead is not None
    assert dead.since == "2026-12-03T10:01:43Z" and dead.run == "laptop/4242/ab12"
    assert dead.resume == (
        "mldr failover --to us-west-2 --mode planned --reason 'a unit test of the record view' "
        "--yes --resume failover-x"
    )
    assert dead.describe().startswith("stalled: its run (laptop/4242/ab12) was last heard from at")
    assert f"`{dead.resume}`" in dead.describe() and "mldr abort --operation failover-x" in dead.describe()
    # A run that died before its first heartbeat: its record's last save is when it was heard from,
    # judged by the default interval (10 s, 6 beats).
    record.heard = None
    assert stalled(record, topology, now=t + 59) is None
    assert stalled(record, topology, now=t + 61) is not None
    # Ended operations are never stalled.
    for status in (OperationStatus.FAILED, OperationStatus.COMPLETED, OperationStatus.ABORTED):
        record.status = status
        assert stalled(record, topology, now=t + 10_000) is None


def test_waiting_for_approval_without_a_heartbeat_is_stalled_only_after_the_response_window() -> None:
    # A DAG's await_approval task is deferred: nothing heartbeats while a person decides.
    topology = _topology(response_window_seconds=600)
    record = _record(PREFLIGHT)
    record.updated_at = PREFLIGHT[2]
    t = _epoch(PREFLIGHT[2])
    assert stalled(record, topology, now=t + 600) is None
    assert stalled(record, topology, now=t + 600 + 61) is not None


def test_the_resume_command_is_the_call_the_operation_was_started_with() -> None:
    failover = _record(PREFLIGHT)  # asked for approval: the resume prompts again (no --yes)
    assert shlex.split(resume_command(failover)) == [
        "mldr",
        "failover",
        "--to",
        "us-west-2",
        "--mode",
        "planned",
        "--reason",
        "a unit test of the record view",
        "--resume",
        "failover-x",
    ]
    params = OperationParams(
        kind="failback",
        target_region="us-east-1",
        mode=Mode.PLANNED,
        reason="it's back (INC-9)",
        requested_by="bob",
        require_approval=False,
    )
    back = OperationRecord(id="failback-y", kind="failback", params=params)
    assert (
        resume_command(back) == "mldr failback --reason 'it'\"'\"'s back (INC-9)' --yes --resume failback-y"
    )
