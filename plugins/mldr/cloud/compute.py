"""The inference compute in one region: scale it, read its counts, wait until healthy."""

from __future__ import annotations

from typing import Protocol


class ComputePool(Protocol):
    """The inference compute in one region: scale it, read its counts, wait until healthy."""
