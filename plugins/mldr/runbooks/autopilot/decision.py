"""Autopilot's decision: a pure function of the policy, what the observers saw, and the past.

No clock, no cloud: `decide` is given `now` and every fact it needs, so each rule is tested on
synthetic histories (tests/unit/test_autopilot_decision.py). The rules:

- the primary is dead only when at least `observers_required` observers saw it failing in every
  round of an unbroken streak whose first and latest rounds are at least `for_seconds` apart
  (a gap in the rounds longer than `for_seconds` + `MAX_ROUND_GAP` breaks the streak: old
  rounds prove nothing about now);
- never again within `block_after_seconds` of the last failover or failback (anti-flapping);
- never more than `max_per_day` automatic failovers in 24 hours;
- never while another operation holds the DR lease;
- never a failback: once failed over, it recommends the failback's preflight when the old
  primary looks healthy again.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from mldr.checks.observers import Observation
from mldr.topology import AutopilotMode

DAY_SECONDS = 86_400.0
#: Slack on the spacing of rounds: the DAG runs every minute, late by a scheduler's delay.
MAX_ROUND_GAP = 180.0


class Verdict(StrEnum):
    OFF = "off"
    HEALTHY = "healthy"
    #: some observers see the primary failing, not enough of them or not for long enough
    SUSPECT = "suspect"
    FAILOVER = "failover"  # act: start the unplanned failover now
    RECOMMEND_FAILOVER = "recommend-failover"  # recommend: alert with the command
    BLOCKED = "blocked"  # dead, but the block window or the daily limit forbids acting: alert
    BUSY = "busy"  # an operation holds the DR lease: nothing to decide
    FAILED_OVER = "failed-over"  # the standby serves; the old primary is not healthy yet
    RECOMMEND_FAILBACK = "recommend-failback"  # the old primary looks healthy: alert, never act


#: Verdicts that send an alert when autopilot comes to them.
ALERTING = frozenset(
    {Verdict.FAILOVER, Verdict.RECOMMEND_FAILOVER, Verdict.BLOCKED, Verdict.RECOMMEND_FAILBACK}
)


@dataclass(frozen=True)
class Policy:
    mode: AutopilotMode
    observers_required: int
    for_seconds: float
    block_after_seconds: float
    max_per_day: int


@dataclass(frozen=True)
class Round:
    """One evaluation's observations of the watched region."""

    at: float
    region: str
    observations: tuple[Observation, ...]

    @property
    def failing(self) -> tuple[str, ...]:
        return tuple(o.observer.value for o in self.observations if not o.ok)


@dataclass(frozen=True)
class Situation:
    """Facts about the DR state at `now`, read by the caller."""

    now: float
    primary_region: str
    standby_region: str
    active_region: str
    operation_in_progress: str | None = None  # the id of the operation holding the lease
    last_recovery_at: float | None = None  # when the last failover or failback completed
    autopilot_failovers: tuple[float, ...] = ()  # when autopilot started its failovers
    approval_required: bool = False  # the topology's approval.required: a person must decide


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    why: str
    command: str | None = None  # the exact command an operator would run (alerts name it)

    def public(self) -> dict[str, object]:
        return {"verdict": self.verdict.value, "why": self.why, "command": self.command}


def failover_command(situation: Situation, why: str) -> str:
    reason = f"autopilot: {situation.primary_region} declared dead ({why})"
    return (
        f"mldr failover --to {situation.standby_region} --mode unplanned --reason {shlex.quote(reason[:300])}"
    )


def failback_preflight_command(situation: Situation) -> str:
    reason = f"{situation.primary_region} healthy again (autopilot recommends failback)"
    return f"mldr failback --reason {shlex.quote(reason)} --dry-run"


def dead_streak(policy: Policy, rounds: Sequence[Round], now: float) -> tuple[float | None, str]:
    """When the current streak of rounds with enough failing observers began (None: no streak),
    and what the latest round saw."""
    ordered = sorted(rounds, key=lambda r: r.at)
    if not ordered:
        return None, "no observation yet"
    latest = ordered[-1]
    seen = f"{len(latest.failing)} of {len(latest.observations)} observers failing"
    seen += f" ({', '.join(latest.failing)})" if latest.failing else ""
    start: float | None = None
    later = now
    for r in reversed(ordered):
        if len(r.failing) < policy.observers_required or later - r.at > policy.for_seconds + MAX_ROUND_GAP:
            break
        start, later = r.at, r.at
    return start, seen


def decide(policy: Policy, rounds: Sequence[Round], situation: Situation) -> Decision:
    """What autopilot does now. `rounds`: the recent observations of the watched region."""
    s = situation
    if policy.mode is AutopilotMode.OFF:
        return Decision(Verdict.OFF, "autopilot is off")
    if s.operation_in_progress:
        return Decision(Verdict.BUSY, f"operation {s.operation_in_progress} holds the DR lease")
    watched = [r for r in rounds if r.region == s.primary_region]
    if s.active_region != s.primary_region:
        latest = max(watched, key=lambda r: r.at, default=None)
        if latest is not None and not latest.failing:
            return Decision(
                Verdict.RECOMMEND_FAILBACK,
                f"{s.active_region} serves; every observer sees {s.primary_region} healthy again. "
                "Autopilot never fails back: run the failback's preflight, then the failback",
                failback_preflight_command(s),
            )
        failing = ", ".join(latest.failing) if latest else "not observed yet"
        return Decision(Verdict.FAILED_OVER, f"{s.active_region} serves; {s.primary_region}: {failing}")
    start, seen = dead_streak(policy, watched, s.now)
    if start is None:
        latest = max(watched, key=lambda r: r.at, default=None)
        if latest is None or not latest.failing:
            return Decision(Verdict.HEALTHY, f"{s.primary_region}: {seen}")
        return Decision(
            Verdict.SUSPECT,
            f"{s.primary_region}: {seen}; {policy.observers_required} must agree to declare it dead",
        )
    # From the first round of the streak to the latest: one round, however long its look took,
    # is one observation, never `for_seconds` of agreement.
    lasted = max(r.at for r in watched) - start
    if lasted < policy.for_seconds:
        return Decision(
            Verdict.SUSPECT,
            f"{s.primary_region}: {seen} for {lasted:.0f}s; dead after {policy.for_seconds:g}s",
        )
    dead = f"{seen} for {lasted:.0f}s"
    command = failover_command(s, dead)
    if s.last_recovery_at is not None and s.now - s.last_recovery_at < policy.block_after_seconds:
        return Decision(
            Verdict.BLOCKED,
            f"{s.primary_region} dead ({dead}), but the last failover or failback ended "
            f"{s.now - s.last_recovery_at:.0f}s ago, inside the {policy.block_after_seconds:g}s "
            "block window: "
            "not failing over automatically. Decide, and run the command if the region is down",
            command,
        )
    today = [t for t in s.autopilot_failovers if s.now - t < DAY_SECONDS]
    if len(today) >= policy.max_per_day:
        return Decision(
            Verdict.BLOCKED,
            f"{s.primary_region} dead ({dead}), but autopilot already failed over {len(today)} time(s) in "
            f"24 h (max_per_day {policy.max_per_day}): not failing over automatically",
            command,
        )
    if policy.mode is AutopilotMode.RECOMMEND or s.approval_required:
        who = " (the topology requires a person's approval of every failover)" if s.approval_required else ""
        return Decision(
            Verdict.RECOMMEND_FAILOVER,
            f"{s.primary_region} dead ({dead}); autopilot recommends: fail over to {s.standby_region}{who}",
            command,
        )
    return Decision(
        Verdict.FAILOVER,
        f"{s.primary_region} dead ({dead}): failing over to {s.standby_region} (unplanned)",
        command,
    )
