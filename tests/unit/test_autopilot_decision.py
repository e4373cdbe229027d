"""Autopilot's decision on synthetic observation histories: when the primary is declared dead,
and every rule that keeps it from failing over (or back) when it should not."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest

from mldr.checks.observers import Observation, ObserverName
from mldr.runbooks.autopilot.decision import (
    Decision,
    Policy,
    Round,
    Situation,
    Verdict,
    decide,
)
from mldr.topology import AutopilotMode

PRIMARY, STANDBY = "us-east-1", "us-west-2"
ALL = tuple(ObserverName)
T0 = 1_800_000_000.0


def policy(mode: AutopilotMode = AutopilotMode.ACT, **changes: float) -> Policy:
    settings = {
        "observers_required": 3,
        "for_seconds": 60.0,
        "block_after_seconds": 3600.0,
        "max_per_day": 1,
        **changes,
    }
    return Policy(
        mode=mode,
        observers_required=int(settings["observers_required"]),
        for_seconds=settings["for_seconds"],
        block_after_seconds=settings["block_after_seconds"],
        max_per_day=int(settings["max_per_day"]),
    )


def round_at(at: float, failing: Sequence[ObserverName] = (), region: str = PRIMARY) -> Round:
    return Round(
        at=at,
        region=region,
        observations=tuple(
            Observation(o, o not in failing, "failing" if o in failing else "ok") for o in ALL
        ),
    )


def situation(now: float, **changes: object) -> Situation:
    fields: dict[str, object] = {
        "now": now,
        "primary_region": PRIMARY,
        "standby_region": STANDBY,
        "active_region": PRIMARY,
        **changes,
    }
    return Situation(**fields)  # type: ignore[arg-type]


def outage(
    start: float, end: float, every: float = 10.0, failing: Sequence[ObserverName] = ALL
) -> list[Round]:
    rounds, at = [], start
    while at <= end:
        rounds.append(round_at(at, failing))
        at += every
    return rounds


def test_all_observers_failing_for_the_window_fails_over_with_the_command() -> None:
    rounds = outage(T0, T0 + 60)
    decision = decide(policy(), rounds, situation(T0 + 60))
    assert decision.verdict is Verdict.FAILOVER
    assert decision.command is not None
    assert decision.command.startswith(f"mldr failover --to {STANDBY} --mode unplanned --reason ")
    assert "4 of 4 observers failing" in decision.why


def test_enough_observers_not_yet_long_enough_is_suspect() -> None:
    decision = decide(policy(), outage(T0, T0 + 50), situation(T0 + 50))
    assert decision.verdict is Verdict.SUSPECT
    assert "dead after 60s" in decision.why


def test_exactly_the_required_number_of_observers_is_enough() -> None:
    three = ALL[:3]
    assert (
        decide(policy(), outage(T0, T0 + 60, failing=three), situation(T0 + 60)).verdict is Verdict.FAILOVER
    )
    two = ALL[:2]
    assert decide(policy(), outage(T0, T0 + 600, failing=two), situation(T0 + 600)).verdict is Verdict.SUSPECT


def test_healthy_round_in_the_middle_restarts_the_window() -> None:
    rounds = [*outage(T0, T0 + 40), round_at(T0 + 50), *outage(T0 + 60, T0 + 100)]
    decision = decide(policy(), rounds, situation(T0 + 100))
    assert decision.verdict is Verdict.SUSPECT, decision.why


def test_a_gap_in_the_rounds_breaks_the_streak() -> None:
    """Rounds an hour old say nothing of now: the DAG was paused in between."""
    rounds = [round_at(T0, ALL), round_at(T0 + 3600, ALL)]
    assert decide(policy(for_seconds=60), rounds, situation(T0 + 3600)).verdict is Verdict.SUSPECT
    stale = [round_at(T0, ALL), round_at(T0 + 60, ALL)]
    assert decide(policy(), stale, situation(T0 + 3600)).verdict is not Verdict.FAILOVER


def _blip(rng: random.Random, start: float, p: Policy) -> list[Round]:
    """A blip: one observer failing for minutes, or every observer failing for less than
    `for_seconds`, with healthy rounds around it."""
    rounds = [round_at(start - 10), round_at(start - 5)]
    if rng.random() < 0.5:
        one = (rng.choice(ALL),)
        rounds += outage(start, start + rng.uniform(p.for_seconds, 5 * p.for_seconds), 5.0, one)
    else:
        rounds += outage(start, start + rng.uniform(0, p.for_seconds - 5.1), 5.0, ALL)
        rounds.append(round_at(rounds[-1].at + 5))
    return rounds


def test_twenty_blips_never_fail_over() -> None:
    """One observer failing (for any time), or all failing for less than for_seconds: at every
    evaluation along the way, no failover."""
    rng = random.Random(16)
    p = policy(observers_required=2, for_seconds=30)
    for blip in range(20):
        rounds = _blip(rng, T0 + blip * 1000, p)
        for i in range(1, len(rounds) + 1):
            decision = decide(p, rounds[:i], situation(rounds[i - 1].at))
            assert decision.verdict in (Verdict.HEALTHY, Verdict.SUSPECT), (blip, i, decision.why)


def test_recommend_mode_alerts_with_the_command_instead() -> None:
    decision = decide(policy(AutopilotMode.RECOMMEND), outage(T0, T0 + 60), situation(T0 + 60))
    assert decision.verdict is Verdict.RECOMMEND_FAILOVER
    assert decision.command and decision.command.startswith(f"mldr failover --to {STANDBY} --mode unplanned")


def test_a_topology_that_requires_approval_only_recommends() -> None:
    decision = decide(policy(), outage(T0, T0 + 60), situation(T0 + 60, approval_required=True))
    assert decision.verdict is Verdict.RECOMMEND_FAILOVER
    assert "approval" in decision.why


def test_off_decides_nothing() -> None:
    assert decide(policy(AutopilotMode.OFF), outage(T0, T0 + 600), situation(T0 + 600)).verdict is Verdict.OFF


def test_inside_the_block_window_no_failover_but_the_command() -> None:
    rounds = outage(T0, T0 + 60)
    blocked = decide(policy(), rounds, situation(T0 + 60, last_recovery_at=T0 - 100))
    assert blocked.verdict is Verdict.BLOCKED
    assert "block window" in blocked.why
    assert blocked.command and blocked.command.startswith(f"mldr failover --to {STANDBY}")
    after = decide(policy(), rounds, situation(T0 + 60, last_recovery_at=T0 + 60 - 3601))
    assert after.verdict is Verdict.FAILOVER


def test_never_more_than_max_per_day() -> None:
    rounds = outage(T0, T0 + 60)
    earlier = (T0 - 20_000, T0 - 90_000)  # one within 24 h, one older
    decision = decide(policy(max_per_day=1), rounds, situation(T0 + 60, autopilot_failovers=earlier))
    assert decision.verdict is Verdict.BLOCKED and "max_per_day 1" in decision.why
    assert decide(policy(max_per_day=2), rounds, situation(T0 + 60, autopilot_failovers=earlier)).verdict is (
        Verdict.FAILOVER
    )


def test_an_operation_in_flight_is_left_alone() -> None:
    decision = decide(policy(), outage(T0, T0 + 60), situation(T0 + 60, operation_in_progress="failover-x"))
    assert decision.verdict is Verdict.BUSY


@pytest.mark.parametrize(
    ("failing", "verdict"),
    [((), Verdict.RECOMMEND_FAILBACK), ((ObserverName.ROUTE53,), Verdict.FAILED_OVER)],
)
def test_failed_over_it_never_fails_back_only_recommends_the_preflight(
    failing: tuple[ObserverName, ...], verdict: Verdict
) -> None:
    decision = decide(policy(), [round_at(T0, failing)], situation(T0, active_region=STANDBY))
    assert decision.verdict is verdict
    if verdict is Verdict.RECOMMEND_FAILBACK:
        assert decision.command is not None
        assert decision.command.startswith("mldr failback --reason ") and decision.command.endswith(
            "--dry-run"
        )
    else:
        assert decision.command is None


def test_decision_public_form() -> None:
    d = Decision(Verdict.HEALTHY, "fine")
    assert d.public() == {"verdict": "healthy", "why": "fine", "command": None}


def test_one_round_is_one_observation_however_long_its_look_took() -> None:
    """A blip that lasted one slow evaluation (timeouts on a busy machine) is seen once: never
    `for_seconds` of agreement, whatever the clock says when the evaluation ends."""
    decision = decide(policy(for_seconds=3), [round_at(T0, ALL)], situation(T0 + 5))
    assert decision.verdict is Verdict.SUSPECT, decision.why
