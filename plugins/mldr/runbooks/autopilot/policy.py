"""The autopilot policy in force and its memory, kept in the DR control store.

The topology's `autopilot` block seeds the policy; after that the record `autopilot#policy` is
what counts, so a team switches autopilot (`mldr autopilot enable|disable`) without a deploy.
Every change is audited. `autopilot#state` keeps the recent observation rounds (bounded: a
DynamoDB item holds at most 400 KB), the last decision and the autopilot's own failovers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace

from mldr.checks.observers import Observation
from mldr.cloud import Cloud
from mldr.cloud.control import ControlStore, now_iso
from mldr.errors import ConfigurationError
from mldr.runbooks.audit import AuditLog
from mldr.runbooks.autopilot.decision import DAY_SECONDS, Decision, Policy, Round, Verdict
from mldr.topology import AUTOPILOT_OBSERVERS, Autopilot, AutopilotMode, Topology

POLICY_KEY = "autopilot#policy"
STATE_KEY = "autopilot#state"
#: The audit log's operation id for autopilot's own events (`audit/autopilot/...`).
AUDIT_ID = "autopilot"
#: Rounds kept: enough to span `for_seconds` at one round a second, far below 400 KB
#: (a round is ~1 KB: four observations of at most 240 characters each).
MAX_ROUNDS = 120


@dataclass(frozen=True)
class PolicyRecord:
    policy: Policy
    changed_by: str
    changed_at: str
    source: str  # "topology" (seeded) or "control store" (changed since)

    def public(self) -> dict[str, object]:
        p = self.policy
        return {
            "mode": p.mode.value,
            "observers_required": p.observers_required,
            "observers": AUTOPILOT_OBSERVERS,
            "for_seconds": p.for_seconds,
            "block_after_seconds": p.block_after_seconds,
            "max_per_day": p.max_per_day,
            "changed_by": self.changed_by,
            "changed_at": self.changed_at,
            "source": self.source,
        }


def from_topology(settings: Autopilot) -> Policy:
    return Policy(
        mode=settings.mode,
        observers_required=settings.observers_required,
        for_seconds=float(settings.for_seconds),
        block_after_seconds=float(settings.block_after_seconds),
        max_per_day=settings.max_per_day,
    )


def validated(policy: Policy) -> Policy:
    """The same bounds as the topology's `autopilot` block, for a policy changed by a command."""
    try:
        Autopilot(
            mode=policy.mode,
            observers_required=policy.observers_required,
            for_seconds=int(policy.for_seconds),
            block_after_seconds=int(policy.block_after_seconds),
            max_per_day=policy.max_per_day,
        )
    except ValueError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
            for e in getattr(exc, "errors", lambda: [])()  # pydantic's ValidationError
        )
        raise ConfigurationError(
            f"autopilot policy not valid: {problems or exc}. Nothing was changed"
        ) from None
    return policy


def read_policy(control: ControlStore, topology: Topology) -> PolicyRecord:
    item = control.get_record(POLICY_KEY)
    if item is None:
        return PolicyRecord(from_topology(topology.autopilot), "topology", "", "topology")
    return PolicyRecord(
        Policy(
            mode=AutopilotMode(str(item["mode"])),
            observers_required=int(item["observers_required"]),
            for_seconds=float(item["for_seconds"]),
            block_after_seconds=float(item["block_after_seconds"]),
            max_per_day=int(item["max_per_day"]),
        ),
        changed_by=str(item.get("changed_by", "")),
        changed_at=str(item.get("changed_at", "")),
        source="control store",
    )


def change_policy(
    cloud: Cloud,
    topology: Topology,
    *,
    by: str,
    reason: str = "",
    mode: AutopilotMode,
    observers_required: int | None = None,
    for_seconds: float | None = None,
    block_after_seconds: float | None = None,
    max_per_day: int | None = None,
) -> PolicyRecord:
    """Set the policy in force (the ones not given stay as they are) and audit the change."""
    control = cloud.control()
    before = read_policy(control, topology)
    changes: dict[str, object] = {"mode": mode}
    for name, value in (
        ("observers_required", observers_required),
        ("for_seconds", for_seconds),
        ("block_after_seconds", block_after_seconds),
        ("max_per_day", max_per_day),
    ):
        if value is not None:
            changes[name] = value
    policy = validated(replace(before.policy, **changes))  # type: ignore[arg-type]
    at = now_iso()
    control.put_record(
        POLICY_KEY,
        {
            "mode": policy.mode.value,
            "observers_required": policy.observers_required,
            "for_seconds": policy.for_seconds,
            "block_after_seconds": policy.block_after_seconds,
            "max_per_day": policy.max_per_day,
            "changed_by": by,
            "changed_at": at,
        },
    )
    after = PolicyRecord(policy, by, at, "control store")
    AuditLog(cloud, topology, control).record(
        AUDIT_ID, "policy-changed", by=by, reason=reason, before=before.public(), after=after.public()
    )
    return after


@dataclass
class State:
    """What autopilot remembers between evaluations."""

    rounds: list[Round] = field(default_factory=list)
    last: Decision | None = None
    decided_at: str = ""
    failovers: list[float] = field(default_factory=list)  # when autopilot started its failovers
    #: the alerting verdict whose alert reached a topic: until one does, every evaluation tries again
    alerted: str = ""

    def add(self, new: Round, *, required: int) -> None:
        """Keep `new`; over `MAX_ROUNDS`, thin out the middle of runs alike (each round with
        `required` failing observers or not, as its neighbours): no streak's start or end
        moves, so rounds evaluated every second still prove `for_seconds` of agreement."""
        rounds = [*self.rounds, new]
        while len(rounds) > MAX_ROUNDS:
            dead = [len(r.failing) >= required for r in rounds]
            alike = next(
                (i for i in range(1, len(rounds) - 1) if dead[i - 1] == dead[i] == dead[i + 1]), None
            )
            del rounds[alike if alike is not None else 0]
        self.rounds = rounds

    def keep_recent(self, now: float, horizon: float) -> None:
        self.rounds = [r for r in self.rounds if now - r.at <= horizon]
        self.failovers = [t for t in self.failovers if now - t < DAY_SECONDS]


def _round_public(r: Round) -> dict[str, object]:
    return {"at": r.at, "region": r.region, "observations": [o.public() for o in r.observations]}


def _round_from(data: dict[str, object]) -> Round:
    raw = data.get("observations")
    return Round(
        float(str(data["at"])),
        str(data["region"]),
        tuple(Observation.from_public(o) for o in (raw if isinstance(raw, list) else [])),
    )


def read_state(control: ControlStore) -> State:
    item = control.get_record(STATE_KEY)
    if item is None:
        return State()
    last = json.loads(str(item.get("last", "null")))
    return State(
        rounds=[_round_from(r) for r in json.loads(str(item.get("rounds", "[]")))],
        last=Decision(Verdict(last["verdict"]), last["why"], last.get("command")) if last else None,
        decided_at=str(item.get("decided_at", "")),
        failovers=[float(t) for t in json.loads(str(item.get("failovers", "[]")))],
        alerted=str(item.get("alerted", "")),
    )


def save_state(control: ControlStore, state: State) -> None:
    control.put_record(
        STATE_KEY,
        {
            "rounds": json.dumps([_round_public(r) for r in state.rounds]),
            "last": json.dumps(state.last.public() if state.last else None),
            "decided_at": state.decided_at,
            "failovers": json.dumps(state.failovers),
            "alerted": state.alerted,
        },
    )


def latest_round(state: State) -> Round | None:
    return max(state.rounds, key=lambda r: r.at, default=None)
