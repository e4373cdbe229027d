"""Fixed seeds of the schedule tester (bench/chaos.py runs any seed): randomized fault schedules
against the sandbox must break no safety promise. A failure prints the violations and the
command that replays the schedule. Heavy (minutes): `make test-heavy` runs it."""

from __future__ import annotations

import json

import pytest

from mldr.chaos.runner import ChaosRunner
from mldr.chaos.schedule import generate
from mldr.cloud.aws.cloud import AwsCloud
from mldr.sandbox.manager import Sandbox
from mldr.topology import load_topology

pytestmark = [pytest.mark.sandbox, pytest.mark.slow, pytest.mark.heavy]

#: (seed, schedule index): fixed, so CI replays the same schedules every run.
CI_SCHEDULES = [(1, 0), (2, 0)]


@pytest.mark.parametrize(("seed", "index"), CI_SCHEDULES)
def test_a_fault_schedule_breaks_no_safety_promise(sandbox: Sandbox, seed: int, index: int) -> None:
    topology = load_topology(use_airflow=False)
    state = sandbox.running_state()
    runner = ChaosRunner(sandbox, topology, AwsCloud.from_environment(topology), say=print)
    schedule = generate(seed, index, primary=state.primary, secondary=state.secondary, events=6)
    result = runner.run(schedule)
    assert not result.violations, json.dumps(result.public(), indent=2)
