"""Which region answers the service's DNS name; switch it and confirm the answer."""

from __future__ import annotations

from typing import Protocol


class Traffic(Protocol):
    """Which region answers the service's DNS name; switch it and confirm the answer."""
