"""Traffic switch, scaling and alerts over a fake `Cloud`: what an operator relies on - the
switch is confirmed by the DNS answer, scaling waits for running capacity, an alert never fails
a run and a region found silent is not waited for again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mldr.actions import compute, traffic
from mldr.cloud.calls import SilentRegions
from mldr.cloud.compute import PoolCounts
from mldr.cloud.traffic import DetectionWindow, Route, RouteRole
from mldr.errors import MldrError, RegionUnreachable
from mldr.runbooks.notify import notify
from mldr.topology import Topology

FIXTURE = Path(__file__).parents[1] / "fixtures" / "topology.json"
TOPOLOGY = Topology.model_validate_json(FIXTURE.read_text())
PRIMARY, SECONDARY = TOPOLOGY.primary_region, TOPOLOGY.secondary_region


class FakeTraffic:
    def __init__(self, primary: str, *, follows: bool = True) -> None:
        self.primary, self.follows, self.answered = primary, follows, primary
        self.changes = 0

    def routes(self) -> list[Route]:
        return [
            Route(r, RouteRole.PRIMARY if r == self.primary else RouteRole.SECONDARY)
            for r in (PRIMARY, SECONDARY)
        ]

    def answer(self) -> str:
        return self.primary if self.follows else self.answered

    def make_primary(self, region: str, *, timeout: float) -> bool:
        changed, self.primary = region != self.primary, region
        self.changes += changed
        return changed

    def checker_healthy(self, region: str) -> bool:
        return True

    def detection_window(self, region: str) -> DetectionWindow:
        return DetectionWindow(10.0, 3)


class FakePool:
    def __init__(self, desired: int, *, starts_per_read: int = 1) -> None:
        self.desired, self.running, self.starts_per_read = desired, desired, starts_per_read
        self.sets: list[int] = []

    def counts(self) -> PoolCounts:
        counts = PoolCounts(self.desired, self.running)
        self.running = min(self.desired, self.running + self.starts_per_read)  # tasks start over time
        return counts

    def set_desired(self, capacity: int) -> None:
        self.sets.append(capacity)
        self.desired = capacity


class FakeAlerts:
    def __init__(self, region: str, cloud: FakeCloud) -> None:
        self.region, self.cloud = region, cloud

    def send(self, *, subject: str, message: str) -> None:
        self.cloud.alert_attempts.append(self.region)
        if self.region in self.cloud.down:
            raise RegionUnreachable("no answer", resource="SNS topic", region=self.region)
        self.cloud.sent.append((self.region, subject, message))


class FakeCloud:
    def __init__(self, traffic: FakeTraffic | None = None, pools: dict[str, FakePool] | None = None) -> None:
        self.topology = TOPOLOGY
        self.silent = SilentRegions()
        self._traffic = traffic or FakeTraffic(PRIMARY)
        self.pools = pools or {}
        self.down: set[str] = set()
        self.sent: list[tuple[str, str, str]] = []
        self.alert_attempts: list[str] = []

    def traffic(self, **_: Any) -> FakeTraffic:
        return self._traffic

    def compute(self, region: str, **_: Any) -> FakePool:
        return self.pools[region]

    def alerts(self, region: str, **_: Any) -> FakeAlerts:
        return FakeAlerts(region, self)


def test_switch_moves_the_primary_and_confirms_the_answer() -> None:
    cloud = FakeCloud()
    result = traffic.switch(cloud, TOPOLOGY, SECONDARY, timeout=5)  # type: ignore[arg-type]
    assert (result["changed"], result["answer"]) == (True, SECONDARY)
    again = traffic.switch(cloud, TOPOLOGY, SECONDARY, timeout=5)  # type: ignore[arg-type]
    assert (again["changed"], again["answer"], cloud.traffic().changes) == (False, SECONDARY, 1)


def test_switch_fails_with_the_health_check_hint_when_the_answer_does_not_follow() -> None:
    cloud = FakeCloud(FakeTraffic(PRIMARY, follows=False))
    with pytest.raises(MldrError, match=f"still answers {PRIMARY}.*{SECONDARY}'s health check"):
        traffic.switch(cloud, TOPOLOGY, SECONDARY, timeout=0.5)  # type: ignore[arg-type]


def test_scale_to_active_waits_for_running_capacity(monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr(compute, "endpoint_healthy", lambda topology, region: (True, "ok"))
    monkeypatch.setattr(compute.time, "sleep", sleeps.append)
    config = TOPOLOGY.region(SECONDARY).compute
    pool = FakePool(desired=config.standby_capacity)
    pool.running = 0  # a task starts per read of the counts
    cloud = FakeCloud(pools={SECONDARY: pool})
    result = compute.scale_to_active(cloud, TOPOLOGY, SECONDARY, timeout=5)  # type: ignore[arg-type]
    assert pool.sets == [config.active_capacity] and result["changed"] is True
    assert pool.running >= config.active_capacity and sleeps, "returned only once the capacity ran"
    assert compute.scale_to_active(cloud, TOPOLOGY, SECONDARY)["changed"] is False  # type: ignore[arg-type]
    assert pool.sets == [config.active_capacity], "already at capacity: not set again"


def test_an_alert_reaches_every_region_that_answers_and_skips_a_silent_one() -> None:
    cloud = FakeCloud()
    cloud.down.add(PRIMARY)
    assert notify(cloud, TOPOLOGY, subject="s", message="m") == [SECONDARY]  # type: ignore[arg-type]
    assert notify(cloud, TOPOLOGY, subject="s", message="m") == [SECONDARY]  # type: ignore[arg-type]
    assert cloud.alert_attempts.count(PRIMARY) == 1, "found silent once, not asked again moments later"
    assert cloud.sent == [(SECONDARY, "s", "m"), (SECONDARY, "s", "m")]


def test_a_pilot_light_target_is_healthy_for_preflight_but_a_silent_warm_standby_is_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """0 tasks by design (standby capacity 0) is not a reason to refuse a failover: its scale step
    starts them. A standby that should have tasks and does not answer is."""
    from mldr.checks import health

    monkeypatch.setattr(health, "s3_reachable", lambda cloud, topology, region: (True, "ok"))
    monkeypatch.setattr(health, "endpoint_healthy", lambda topology, region: (False, "HTTP 503 0 tasks"))
    region = TOPOLOGY.regions[SECONDARY]
    pilot = TOPOLOGY.model_copy(
        update={
            "regions": {
                **TOPOLOGY.regions,
                SECONDARY: region.model_copy(
                    update={"compute": region.compute.model_copy(update={"standby_capacity": 0})}
                ),
            }
        }
    )

    seen = health.region_health(FakeCloud(pools={SECONDARY: FakePool(desired=0)}), pilot, SECONDARY)  # type: ignore[arg-type]
    assert seen.healthy and seen.pilot_light and seen.problems == []
    assert "pilot light" in seen.summary()

    warm = health.region_health(FakeCloud(pools={SECONDARY: FakePool(desired=1)}), TOPOLOGY, SECONDARY)  # type: ignore[arg-type]
    assert not warm.healthy and warm.problems == ["endpoint: HTTP 503 0 tasks"]
    scaled_to_zero = health.region_health(
        FakeCloud(pools={SECONDARY: FakePool(desired=0)}), TOPOLOGY, SECONDARY
    )  # type: ignore[arg-type]
    assert not scaled_to_zero.healthy, "0 tasks where the topology wants a warm standby is a problem"
