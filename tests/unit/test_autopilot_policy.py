"""Autopilot's policy and memory in the control store: seeded from the topology, changed only
within bounds, and kept far below DynamoDB's 400 KB per item however long it runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mldr.checks.observers import MAX_DETAIL, Observation, ObserverName
from mldr.errors import ConfigurationError
from mldr.runbooks.autopilot import policy as store
from mldr.runbooks.autopilot.decision import Decision, Policy, Round, Verdict
from mldr.topology import AutopilotMode, Topology, parse_topology

FIXTURE = Path(__file__).parents[1] / "fixtures" / "topology.json"
ITEM_LIMIT = 400 * 1024


class Control:
    """The records part of a control store, in memory; every item's size as DynamoDB counts it
    (names and values, roughly) is checked on write."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}

    def put_record(self, key: str, fields: dict[str, Any], **_: Any) -> None:
        size = sum(len(k) + len(str(v).encode()) for k, v in fields.items())
        assert size < ITEM_LIMIT, f"{key}: {size} bytes"
        self.items[key] = dict(fields)

    def get_record(self, key: str) -> dict[str, Any] | None:
        return self.items.get(key)


def topology(**autopilot: Any) -> Topology:
    doc = json.loads(FIXTURE.read_text())
    if autopilot:
        doc["autopilot"] = autopilot
    return parse_topology(doc)


def test_the_topology_seeds_the_policy_until_it_is_changed() -> None:
    control = Control()
    seeded = store.read_policy(control, topology(mode="recommend", for_seconds=30))  # type: ignore[arg-type]
    assert (seeded.policy.mode, seeded.policy.for_seconds, seeded.source) == (
        AutopilotMode.RECOMMEND,
        30.0,
        "topology",
    )
    assert store.read_policy(control, topology()).policy.mode is AutopilotMode.OFF  # type: ignore[arg-type]


def test_a_policy_out_of_bounds_is_refused_naming_the_setting() -> None:
    good = Policy(AutopilotMode.ACT, 3, 60.0, 3600.0, 1)
    assert store.validated(good) == good
    for bad, name in (
        (Policy(AutopilotMode.ACT, 1, 60.0, 3600.0, 1), "observers_required"),
        (Policy(AutopilotMode.ACT, 3, 0.0, 3600.0, 1), "for_seconds"),
        (Policy(AutopilotMode.ACT, 3, 60.0, 3600.0, 0), "max_per_day"),
    ):
        with pytest.raises(ConfigurationError, match=rf"{name}: .*Nothing was changed"):
            store.validated(bad)


def test_the_memory_stays_bounded_and_round_trips() -> None:
    control = Control()
    state = store.State()
    long = "x" * (MAX_DETAIL * 3)
    for i in range(store.MAX_ROUNDS * 3):  # far more rounds than are kept
        observations = tuple(Observation(o, i % 2 == 0, long[:MAX_DETAIL]) for o in ObserverName)
        state.add(Round(at=1000.0 + i, region="us-east-1", observations=observations), required=3)
    state.last = Decision(Verdict.SUSPECT, "why " * 100, None)
    state.failovers = [1000.0]
    store.save_state(control, state)  # type: ignore[arg-type]
    assert len(state.rounds) == store.MAX_ROUNDS
    back = store.read_state(control)  # type: ignore[arg-type]
    assert back.rounds == state.rounds and back.last == state.last and back.failovers == [1000.0]
    size = sum(len(str(v).encode()) for v in control.items[store.STATE_KEY].values())
    assert size < ITEM_LIMIT / 2, f"well under 400 KB: {size} bytes"


def test_rounds_every_second_still_prove_a_long_for_seconds() -> None:
    """Far more rounds than are kept (an evaluation a second, for_seconds 600): the thinned
    history still shows the whole streak, and a healthy round inside it still breaks it."""
    from mldr.runbooks.autopilot.decision import Situation, decide

    p = Policy(AutopilotMode.ACT, 3, 600.0, 0.0, 1)
    failing = tuple(Observation(o, False, "down") for o in ObserverName)
    healthy = tuple(Observation(o, True, "ok") for o in ObserverName)

    def run(healthy_at: int | None) -> Verdict:
        state = store.State()
        for i in range(700):
            seen = healthy if i == healthy_at else failing
            state.add(Round(at=1000.0 + i, region="us-east-1", observations=seen), required=3)
        assert len(state.rounds) == store.MAX_ROUNDS
        now = Situation(
            now=1699.0, primary_region="us-east-1", standby_region="us-west-2", active_region="us-east-1"
        )
        return decide(p, state.rounds, now).verdict

    assert run(None) is Verdict.FAILOVER
    assert run(200) is Verdict.SUSPECT, "the healthy round at 200 s is kept: only 499 s of agreement"
