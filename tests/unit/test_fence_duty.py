"""A fence duty is never done over an operation in flight, and never outlives a failback."""

from __future__ import annotations

from typing import Any

from mldr.actions import fence_duty
from mldr.checks.fence_duty import pending_fence_duties
from mldr.cloud.control import Lease, Operation, RecordValue
from mldr.runbooks.fence_duty import complete_one


class _Control:
    def __init__(self, lease: Lease) -> None:
        self.lease = lease
        self.items: dict[str, dict[str, RecordValue]] = {}

    def read_lease(self) -> Lease:
        return self.lease

    def put_record(self, key: str, fields: Any) -> None:
        self.items[key] = dict(fields)

    def get_record(self, key: str) -> dict[str, RecordValue] | None:
        return self.items.get(key)

    def records(self, prefix: str) -> list[dict[str, RecordValue]]:
        return [v for k, v in self.items.items() if k.startswith(prefix)]


class _Cloud:
    def __init__(self, control: _Control) -> None:
        self._control = control

    def control(self) -> _Control:
        return self._control

    def objects(self, region: str, **_: Any) -> Any:
        raise AssertionError(f"nothing may be fenced or changed in {region} here")


FAILBACK = Operation(
    id="failback-1",
    kind="failback",
    source="us-west-2",
    target="us-east-1",
    mode="planned",
    started_by="oncall",
    reason="return home",
    started_at="2026-12-03T00:00:00Z",
)


def test_a_duty_waits_while_a_failback_holds_the_lease_and_status_shows_it() -> None:
    control = _Control(Lease(active_region="us-west-2", fencing_token=7, operation=FAILBACK))
    duty = fence_duty.record(control, region="us-east-1", operation_id="failover-1", pending=["down"])  # type: ignore[arg-type]

    outcome = complete_one(_Cloud(control), None, duty, by="pytest")  # type: ignore[arg-type]

    assert not outcome.done and "failback-1" in outcome.message
    assert [d.region for d in pending_fence_duties(control, control.lease)] == ["us-east-1"]  # type: ignore[arg-type]


def test_no_duty_is_pending_for_a_region_that_is_active_again() -> None:
    control = _Control(Lease(active_region="us-east-1", fencing_token=8))
    fence_duty.record(control, region="us-east-1", operation_id="failover-1", pending=["down"])  # type: ignore[arg-type]

    assert pending_fence_duties(control, control.lease) == []  # type: ignore[arg-type]
