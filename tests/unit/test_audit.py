"""The audit log during a region outage: one timeout, not one per step, even across processes
(each Airflow task is a new process), and nothing lost: queued events reach the region later."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mldr.cloud.calls import SilentRegions
from mldr.errors import RegionUnreachable
from mldr.runbooks.audit import AuditLog, event_key
from mldr.topology import Topology

FIXTURE = Path(__file__).parents[1] / "fixtures" / "topology.json"
DOWN = "us-east-1"
UP = "us-west-2"


class FakeStore:
    """One region's object store, as `mldr.cloud` hands it out: a region that does not answer
    raises `RegionUnreachable` (after its timeout, in the real one)."""

    def __init__(self, region: str, world: World) -> None:
        self.region, self.world = region, world

    def put_json(self, bucket: str, key: str, document: Any, **_: Any) -> None:
        self.world.attempts[self.region] += 1
        if self.region in self.world.silent:
            raise RegionUnreachable(
                "no answer (ReadTimeoutError)", resource=f"s3://{bucket}", region=self.region
            )
        self.world.objects[self.region][key] = json.loads(json.dumps(document, default=str))


class World:
    """Both regions' ops buckets and the control-state table, shared by every 'process'."""

    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self.silent: set[str] = set()
        self.attempts = dict.fromkeys(topology.region_names, 0)
        self.objects: dict[str, dict[str, Any]] = {r: {} for r in topology.region_names}
        self.records: dict[str, dict[str, Any]] = {}

    def objects_of(self, region: str, **_: Any) -> FakeStore:
        return FakeStore(region, self)

    def put_record(self, key: str, attributes: dict[str, Any]) -> None:
        self.records[key] = attributes

    def get_record(self, key: str) -> dict[str, Any] | None:
        return self.records.get(key)

    def new_process(self) -> AuditLog:
        return AuditLog(ProcessCloud(self), self.topology, self)  # type: ignore[arg-type]


class ProcessCloud:
    """One process's cloud handle: the shared world, its own memory of silent regions."""

    def __init__(self, world: World) -> None:
        self.objects = world.objects_of
        self.silent = SilentRegions()


def test_a_silent_region_costs_one_timeout_across_processes_and_gets_every_event_later() -> None:
    world = World(Topology.model_validate_json(FIXTURE.read_text()))
    world.silent.add(DOWN)

    first = world.new_process()  # the preflight task
    events = [first.record("op-1", "preflight.start"), first.record("op-1", "preflight.end")]
    assert world.attempts[DOWN] == 1, "the second event does not wait for the same timeout"

    for step in ("fence", "drain", "switch"):  # each a new Airflow task, moments later
        task = world.new_process()
        events += [task.record("op-1", f"{step}.start"), task.record("op-1", f"{step}.end")]
    assert world.attempts[DOWN] == 1, "later processes remember the region was silent"
    assert len(world.objects[UP]) == len(events), "the reachable region has every event at once"
    assert world.objects[DOWN] == {}

    world.silent.clear()  # the region is back
    delivered = world.new_process().reconcile()
    assert delivered[DOWN] == len(events)
    assert set(world.objects[DOWN]) == {event_key(e) for e in events} == set(world.objects[UP])
    assert world.new_process().reconcile()[DOWN] == 0, "delivered once, not again"
