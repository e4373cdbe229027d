"""The DR control state: the lease compare-and-set and the operation records."""

from __future__ import annotations

from typing import Protocol


class ControlStore(Protocol):
    """The DR control state: the lease compare-and-set and the operation records."""
