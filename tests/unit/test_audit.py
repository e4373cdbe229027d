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

    def delete_record(self, key: str) -> None:
        self.records.pop(key, None)

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


ITEM_LIMIT = 400 * 1024


class LimitedWorld(World):
    """The control-state table refuses an item over DynamoDB's 400 KB, as DynamoDB does."""

    def __init__(self, topology: Topology) -> None:
        super().__init__(topology)
        self.delivered: list[str] = []  # event keys in the order they reached DOWN
        self.answers_for: int | None = None  # DOWN stops answering after this many deliveries

    def put_record(self, key: str, attributes: dict[str, Any]) -> None:
        size = len(key) + sum(len(name) + len(str(value).encode()) for name, value in attributes.items())
        if size > ITEM_LIMIT:
            raise AssertionError(
                f"ValidationException: Item size has exceeded the maximum allowed size ({key})"
            )
        super().put_record(key, attributes)

    def objects_of(self, region: str, **_: Any) -> FakeStore:
        world = self

        class Recording(FakeStore):
            def put_json(self, bucket: str, key: str, document: Any, **kw: Any) -> None:
                stopped = world.answers_for is not None and len(world.delivered) >= world.answers_for
                if region == DOWN and stopped:
                    raise RegionUnreachable("no answer", resource=bucket, region=DOWN)
                super().put_json(bucket, key, document, **kw)
                if region == DOWN:
                    world.delivered.append(key)

        return Recording(region, self)


def test_a_long_outage_queues_every_event_in_items_that_fit_and_delivers_them_in_order_once() -> None:
    """The queue used to be one item that grew with every event: a long outage (or big step
    results) broke DynamoDB's item limit, and with it every later step of the failover."""
    world = LimitedWorld(Topology.model_validate_json(FIXTURE.read_text()))
    world.silent.add(DOWN)
    log = world.new_process()
    events = [log.record("op-1", "step-end", step=f"s{i}", result={"pad": "x" * 2_000}) for i in range(400)]
    assert len(world.objects[UP]) == len(events)
    queued = [k for k in world.records if k.startswith(f"audit-pending#{DOWN}#")]
    assert len(queued) == len(events), "one item per queued event"

    world.silent.clear()
    assert world.new_process().reconcile()[DOWN] == len(events)
    assert world.delivered == [event_key(e) for e in events], "every event, oldest first"
    assert not [k for k in world.records if k.startswith(f"audit-pending#{DOWN}#")], "delivered ones are gone"
    assert world.new_process().reconcile()[DOWN] == 0, "delivered once, not again"
    assert len(world.delivered) == len(events)


def test_delivery_stopped_midway_resumes_where_it_stopped() -> None:
    world = LimitedWorld(Topology.model_validate_json(FIXTURE.read_text()))
    world.silent.add(DOWN)
    log = world.new_process()
    events = [log.record("op-1", f"e{i}") for i in range(5)]
    world.silent.clear()
    stop_after = 2
    world.answers_for = stop_after  # the region stops answering again, midway

    flaky = world.new_process()
    assert flaky.reconcile()[DOWN] == stop_after
    world.answers_for = None
    assert world.new_process().reconcile()[DOWN] == len(events) - stop_after
    assert world.delivered == [event_key(e) for e in events]


def test_a_queue_written_as_one_item_is_still_delivered_first() -> None:
    world = LimitedWorld(Topology.model_validate_json(FIXTURE.read_text()))
    old = [{"operation_id": "op-0", "event": f"old{i}", "at_ms": 1000 + i, "seq": i + 1} for i in range(3)]
    world.records[f"audit-pending#{DOWN}"] = {"events": json.dumps(old)}
    world.silent.add(DOWN)
    new = world.new_process().record("op-1", "new")
    world.silent.clear()
    assert world.new_process().reconcile()[DOWN] == 4
    assert world.delivered == [event_key(e) for e in [*old, new]]
    assert "events" not in world.records[f"audit-pending#{DOWN}"]


def test_an_event_too_large_for_an_item_is_queued_without_its_bulk() -> None:
    world = LimitedWorld(Topology.model_validate_json(FIXTURE.read_text()))
    world.silent.add(DOWN)
    event = world.new_process().record("op-1", "step-end", step="drain", result={"keys": ["k" * 200] * 3_000})
    assert world.objects[UP][event_key(event)]["result"] == event["result"], "the reachable copy is whole"
    world.silent.clear()
    world.new_process().reconcile()
    late = world.objects[DOWN][event_key(event)]
    assert late["step"] == "drain" and "result" not in late
    assert "too large to queue" in late["truncated"]
