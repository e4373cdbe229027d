"""The schedule tester's own logic: schedules replay exactly; which write may be a key's final state."""

from __future__ import annotations

from mldr.chaos.invariants import _may_be_current
from mldr.chaos.schedule import FAILBACK_STEPS, FAILOVER_STEPS, generate
from mldr.chaos.writers import AckedWrite
from mldr.runbooks import failback, failover
from mldr.runbooks.engine import step_name

KINDS = {
    "failover", "failback", "resume", "abort", "concurrent", "outage", "heal", "partition",
    "unpartition", "stall_control", "unstall_control", "lag", "writes",
}  # fmt: skip


def test_a_seed_and_index_replay_the_same_schedule() -> None:
    one = generate(7, 3, primary="us-east-1", secondary="us-west-2", events=12)
    again = generate(7, 3, primary="us-east-1", secondary="us-west-2", events=12)
    other = generate(7, 4, primary="us-east-1", secondary="us-west-2", events=12)
    assert one == again
    assert one.events != other.events
    assert one.public()["replay"] == "uv run python bench/chaos.py --seed 7 --only 3"
    assert {e.kind for i in range(20) for e in generate(1, i, primary="a", secondary="b").events} == KINDS


def test_crash_points_are_the_runbooks_steps() -> None:
    # A renamed step would make the tester crash after a step that no longer exists, silently.
    assert set(FAILOVER_STEPS) <= {step_name(s) for s in failover.RUNBOOK.steps}
    assert set(FAILBACK_STEPS) <= {step_name(s) for s in failback.RUNBOOK.steps}


def _write(client: str, region: str, sha: str, at: float, active: str) -> AckedWrite:
    return AckedWrite(client, region, "k", sha, at, active)


def test_a_later_write_the_old_primary_accepted_may_not_win() -> None:
    active_write = _write("service", "us-west-2", "a" * 64, 10.0, "us-west-2")
    healed_write = _write("pinned", "us-east-1", "b" * 64, 10.8, "us-west-2")
    assert _may_be_current([active_write, healed_write]) == [active_write]


def test_writes_at_the_same_moment_may_land_in_either_order() -> None:
    first = _write("service", "us-east-1", "a" * 64, 10.0, "us-east-1")
    second = _write("pinned", "us-east-1", "b" * 64, 10.2, "us-east-1")
    later = _write("service", "us-east-1", "c" * 64, 12.0, "us-east-1")
    assert _may_be_current([first, second]) == [first, second]
    assert _may_be_current([first, second, later]) == [later]
