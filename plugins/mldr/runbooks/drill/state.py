"""The drill's own progress in the DR control-state table (item `drill#current`).

Written before every change the drill makes (the fault it is about to inject, replication it
is about to pause, the operations it starts), so that if its process is killed at any point
the next drill, `mldr drill --recover` or the DAG's teardown knows exactly what to undo.
The table stays reachable while either data region is down, which is the point. Who may act
on it is the drill lock's business (`lock`): this record says what was done, not who runs.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from mldr.cloud.control import ControlStore, now_iso
from mldr.runbooks.drill.lock import host_id

DRILL_KEY = "drill#current"


class Phase(StrEnum):
    STARTING = "starting"
    QUIESCE = "quiesce"
    STALL = "replication-stalled"
    FAULT = "fault-injected"
    FAILOVER = "failover"
    HOLD = "hold"
    HEALED = "healed"
    FAILBACK = "failback"
    RESTORE = "restore"  # logical-corruption: the point-in-time restore and model rollback
    CHECK = "check"
    DONE = "done"
    FAILED = "failed"  # stopped at an error; its own recovery ran (see message)
    RECOVERED = "recovered"

    @property
    def finished(self) -> bool:
        return self in (Phase.DONE, Phase.RECOVERED)


@dataclass
class DrillState:
    drill_id: str
    scenario: str
    source: str
    target: str
    phase: Phase = Phase.STARTING
    pid: int = field(default_factory=os.getpid)
    host: str = field(default_factory=host_id)
    started_at: str = field(default_factory=now_iso)
    updated_at: str = field(default_factory=now_iso)
    fault_region: str | None = None  # set *before* the outage is injected
    replication_paused: bool = False  # set *before* replication is paused
    operations: dict[str, str] = field(default_factory=dict)  # kind -> operation id
    restore_to: float | None = None  # logical-corruption: the recovery point's time (epoch seconds)
    damaged: bool = False  # logical-corruption: set *before* the bad run writes
    broken_version: str | None = None  # logical-corruption: the version the bad run registers (set before)
    message: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> DrillState:
        data: dict[str, Any] = json.loads(text)
        data["phase"] = Phase(data["phase"])
        return cls(**data)


class DrillStateStore:
    def __init__(self, control: ControlStore) -> None:
        self.control = control

    def load(self) -> DrillState | None:
        item = self.control.get_record(DRILL_KEY)
        return DrillState.from_json(str(item["doc"])) if item else None

    def save(self, state: DrillState) -> None:
        state.updated_at = now_iso()
        self.control.put_record(DRILL_KEY, {"doc": state.to_json(), "drill_id": state.drill_id})
