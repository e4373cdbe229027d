"""Fault schedules: seeded, replayable sequences of operations and faults.

A schedule is a list of events generated from `(seed, index)` alone, so anyone can replay the
one that produced a violation: `bench/chaos.py --seed S --only INDEX`. What the events do is
`mldr.chaos.runner`'s job; this module only decides what happens, in which order.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

#: Where an operation runs: the CLI (a process of its own, like an operator's shell) or a DAG
#: run (its steps called one by one in this process, as Airflow tasks would).
Caller = Literal["cli", "dag"]

#: The steps a run may die after (a worker killed, a laptop closed). None: runs to its end.
FAILOVER_STEPS = ("preflight", "approval", "fence", "drain", "scale", "switch", "protect", "verify")
FAILBACK_STEPS = (
    "failback_preflight",
    "approval",
    "failback_fence",
    "resync",
    "freeze",
    "scale",
    "failback_switch",
    "failback_protect",
    "failback_verify",
)


@dataclass(frozen=True)
class Event:
    kind: str  # failover | failback | resume | abort | concurrent | outage | heal | partition | ...
    args: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        details = " ".join(f"{k}={v}" for k, v in sorted(self.args.items()) if v not in (None, False))
        return f"{self.kind} {details}".strip()

    def public(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Schedule:
    seed: int
    index: int
    events: tuple[Event, ...]

    def public(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "index": self.index,
            "replay": f"uv run python bench/chaos.py --seed {self.seed} --only {self.index}",
            "events": [e.describe() for e in self.events],
        }


@dataclass
class _World:
    """What the generator believes about the sandbox, to pick events that mean something."""

    primary: str
    secondary: str
    down: set[str] = field(default_factory=set)
    partitioned: bool = False
    stalled: bool = False


def _operation(rng: random.Random, kind: str, world: _World) -> Event:
    steps = FAILOVER_STEPS if kind == "failover" else FAILBACK_STEPS
    crash_after = rng.choice(steps) if rng.random() < 0.4 else None
    args: dict[str, Any] = {
        "caller": rng.choice(("cli", "dag")),
        "crash_after": crash_after,
        "dry_run": rng.random() < 0.1,
    }
    if kind == "failover":
        # An operator fails over to the standby; now and then, by mistake, to the region that
        # already serves or was fenced (the runbook must refuse and change nothing).
        args["to"] = world.secondary if rng.random() < 0.85 else world.primary
        args["mode"] = "unplanned" if (world.primary in world.down or rng.random() < 0.35) else "planned"
    return Event(kind, args)


def generate(seed: int, index: int, *, primary: str, secondary: str, events: int = 8) -> Schedule:
    """The `index`-th schedule of `seed`: the same arguments give the same events, always."""
    rng = random.Random(f"mldr-chaos:{seed}:{index}")
    world = _World(primary, secondary)
    out: list[Event] = []
    while len(out) < events:
        roll = rng.random()
        if roll < 0.22:
            event = _operation(rng, "failover", world)
        elif roll < 0.40:
            event = _operation(rng, "failback", world)
        elif roll < 0.50:
            event = Event("resume", {"caller": rng.choice(("cli", "dag"))})
        elif roll < 0.56:
            event = Event("abort")
        elif roll < 0.62:
            event = Event("concurrent", {"kind": rng.choice(("failover", "failback"))})
        elif roll < 0.72:
            region = world.primary if rng.random() < 0.75 else world.secondary
            if region in world.down:
                world.down.discard(region)
                event = Event("heal", {"region": region})
            else:
                world.down.add(region)
                event = Event("outage", {"region": region})
        elif roll < 0.78:
            world.partitioned = not world.partitioned
            event = Event("partition" if world.partitioned else "unpartition")
        elif roll < 0.82:
            world.stalled = not world.stalled
            event = Event("stall_control" if world.stalled else "unstall_control")
        elif roll < 0.92:
            event = Event("lag")
        else:
            event = Event("writes", {"seconds": rng.choice((1, 2, 3))})
        out.append(event)
    return Schedule(seed, index, tuple(out))
