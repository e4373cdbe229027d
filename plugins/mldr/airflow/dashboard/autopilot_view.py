"""The dashboard's autopilot section: the policy in force, the last verdict, what each observer saw."""

from __future__ import annotations

from dataclasses import dataclass

from mldr.cloud import ControlStore
from mldr.topology import Topology


@dataclass(frozen=True)
class ObserverView:
    observer: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class AutopilotView:
    mode: str
    observers_required: int
    observers: int
    for_seconds: float
    block_after_seconds: float
    max_per_day: int
    changed_by: str
    verdict: str | None
    why: str
    command: str | None
    decided_at: str | None
    watched_region: str | None
    observations: tuple[ObserverView, ...]


def read_autopilot(control: ControlStore, topology: Topology) -> AutopilotView:
    from mldr.runbooks.autopilot.policy import latest_round, read_policy, read_state

    policy = read_policy(control, topology)
    state = read_state(control)
    seen = latest_round(state)
    p = policy.public()
    return AutopilotView(
        mode=str(p["mode"]),
        observers_required=policy.policy.observers_required,
        observers=int(str(p["observers"])),
        for_seconds=policy.policy.for_seconds,
        block_after_seconds=policy.policy.block_after_seconds,
        max_per_day=policy.policy.max_per_day,
        changed_by=policy.changed_by,
        verdict=state.last.verdict.value if state.last else None,
        why=state.last.why if state.last else "",
        command=state.last.command if state.last else None,
        decided_at=state.decided_at or None,
        watched_region=seen.region if seen else None,
        observations=tuple(ObserverView(o.observer.value, o.ok, o.detail) for o in seen.observations)
        if seen
        else (),
    )
