"""The inference compute in one region: scale it, read its counts, wait until healthy.

An ECS service, an Auto Scaling group, an Azure scale set or a GCP managed instance group: a
desired count the runbooks set, and a count of members that are running. Waiting until the
region serves (`mldr.actions.compute`) combines these counts with the endpoint's own health.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class PoolCounts:
    desired: int
    running: int  # members in service (ECS running tasks, Auto Scaling InService instances)


class ComputePool(Protocol):
    """The inference compute in one region: scale it, read its counts, wait until healthy."""

    def counts(self) -> PoolCounts:
        """How many members the pool should have and how many are running."""
        ...

    def set_desired(self, capacity: int) -> None:
        """Ask for `capacity` members (at once, ignoring any scaling cooldown)."""
        ...
