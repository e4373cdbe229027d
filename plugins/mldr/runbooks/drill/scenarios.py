"""The drill's scenarios: a module of its own so the CLI can offer them without importing the drill."""

from __future__ import annotations

from enum import StrEnum


class Scenario(StrEnum):
    REGION_OUTAGE = "region-outage"
    REPLICATION_STALL = "replication-stall"
    PLANNED_SWITCHOVER = "planned-switchover"

    @property
    def injects_outage(self) -> bool:
        return self is not Scenario.PLANNED_SWITCHOVER
