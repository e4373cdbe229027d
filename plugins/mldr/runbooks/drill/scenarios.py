"""The drill's scenarios: a module of its own so the CLI can offer them without importing the drill."""

from __future__ import annotations

from enum import StrEnum


class Scenario(StrEnum):
    REGION_OUTAGE = "region-outage"
    REPLICATION_STALL = "replication-stall"
    PLANNED_SWITCHOVER = "planned-switchover"
    LOGICAL_CORRUPTION = "logical-corruption"

    @property
    def injects_outage(self) -> bool:
        return self in (Scenario.REGION_OUTAGE, Scenario.REPLICATION_STALL)

    @property
    def fails_over(self) -> bool:
        """A logical corruption is undone by a restore, in place: no failover would help."""
        return self is not Scenario.LOGICAL_CORRUPTION
