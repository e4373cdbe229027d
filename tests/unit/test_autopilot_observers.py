"""The heartbeat observer on synthetic listings: a stalled replica stream fails it, an old
heartbeat orphaned by an earlier outage does not keep it failing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mldr.checks.observers import heartbeat, heartbeat_prefix
from mldr.cloud.objects import ListedObject
from mldr.topology import Topology, parse_topology

FIXTURE = Path(__file__).parents[1] / "fixtures" / "topology.json"
NOW = 1_800_000_000.0


def stamp(at: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class Objects:
    def __init__(self, listed: dict[str, float]) -> None:
        self.listed = listed

    def list_objects(self, bucket: str, *, prefix: str = "", **_: Any) -> list[ListedObject]:
        return [
            ListedObject(k, 10, "e", stamp(at))
            for k, at in sorted(self.listed.items())
            if k.startswith(prefix)
        ]


class Cloud:
    def __init__(self, topology: Topology, primary: dict[str, float], standby: dict[str, float]) -> None:
        self.by_region = {
            topology.primary_region: Objects(primary),
            topology.secondary_region: Objects(standby),
        }

    def objects(self, region: str, **_: Any) -> Objects:
        return self.by_region[region]


def topology() -> Topology:
    return parse_topology(json.loads(FIXTURE.read_text()))


def look(primary: dict[str, float], standby: dict[str, float]) -> tuple[bool, str]:
    t = topology()
    seen = heartbeat(Cloud(t, primary, standby), t, t.primary_region, written="new", now=NOW)  # type: ignore[arg-type]
    return seen.ok, seen.detail


def test_heartbeats_that_stop_arriving_fail_the_observer_after_the_rpo() -> None:
    t = topology()
    rpo = t.datasets[0].rpo_seconds
    p = heartbeat_prefix(t)
    arrived = {f"{p}a": NOW - rpo - 100}
    ok, detail = look({**arrived, f"{p}b": NOW - rpo - 10, f"{p}c": NOW - 1}, arrived)
    assert not ok and "1 heartbeat(s) not in us-west-2" in detail
    assert look({**arrived, f"{p}b": NOW - rpo + 10}, arrived)[0], "within the RPO: still on its way"


def test_an_orphan_from_an_earlier_outage_is_ignored_once_newer_ones_arrive() -> None:
    t = topology()
    p = heartbeat_prefix(t)
    orphan = {f"{p}orphan": NOW - 3600}
    arrived = {f"{p}x": NOW - 5}
    ok, detail = look({**orphan, **arrived}, arrived)
    assert ok, detail


def test_a_primary_that_takes_no_heartbeat_fails_it() -> None:
    t = topology()
    seen = heartbeat(Cloud(t, {}, {}), t, t.primary_region, written=None, now=NOW)  # type: ignore[arg-type]
    assert not seen.ok and "did not accept" in seen.detail
