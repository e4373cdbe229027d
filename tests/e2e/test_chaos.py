"""Fixed seeds of the schedule tester (bench/chaos.py runs any seed): randomized fault schedules
against the sandbox must break no safety promise. A failure prints the violations and the
command that replays the schedule. Heavy (minutes): `make test-heavy` runs them. Seed 1's
schedule 0 broke "nothing lost" once in five clean-clone runs (2026-12-03, a write acknowledged
by us-west-2 during an aborted failover and the wind-down failback): under investigation, so it
is not in `make test`, where it would fail CI at random."""

from __future__ import annotations

import json

import pytest

from mldr.chaos.runner import ChaosRunner
from mldr.chaos.schedule import generate
from mldr.cloud.aws.cloud import AwsCloud
from mldr.sandbox.manager import Sandbox
from mldr.topology import load_topology

pytestmark = [pytest.mark.sandbox, pytest.mark.slow, pytest.mark.heavy]

#: (seed, schedule index): fixed, so every run replays the same schedules. Seed 1's first
#: schedule crashes a CLI failover after `protect`, meets it with a second caller (refused, naming
#: the holder), aborts it and winds down through lag and failback.
SCHEDULES = [(1, 0), (2, 0)]


@pytest.mark.parametrize(("seed", "index"), SCHEDULES)
def test_a_fault_schedule_breaks_no_safety_promise(sandbox: Sandbox, seed: int, index: int) -> None:
    topology = load_topology(use_airflow=False)
    state = sandbox.running_state()
    runner = ChaosRunner(sandbox, topology, AwsCloud.from_environment(topology), say=print)
    schedule = generate(seed, index, primary=state.primary, secondary=state.secondary, events=6)
    result = runner.run(schedule)
    assert not result.violations, json.dumps(result.public(), indent=2)
