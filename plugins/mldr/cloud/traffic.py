"""Which region answers the service's DNS name; switch it and confirm the answer.

Route 53 failover records, Azure Traffic Manager priority routing and Cloud DNS routing
policies all come down to the same thing: one region is the primary answer, the others take
over when its health check fails. The runbooks move the primary; the cloud keeps health-checking.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class RouteRole(StrEnum):
    PRIMARY = "PRIMARY"
    SECONDARY = "SECONDARY"


@dataclass(frozen=True)
class Route:
    """One region's entry under the service's DNS name."""

    region: str
    role: RouteRole


@dataclass(frozen=True)
class DetectionWindow:
    """How the cloud's health checker decides a region is down: one probe every
    `interval_seconds`, `failure_threshold` failures in a row."""

    interval_seconds: float
    failure_threshold: int

    @property
    def seconds(self) -> float:
        """How long the checker needs, at best, to declare a dead endpoint unhealthy."""
        return self.interval_seconds * self.failure_threshold


#: Route 53 considers an endpoint healthy when more than 18% of its checkers do.
HEALTHY_CHECKER_SHARE = 0.18


@dataclass(frozen=True)
class CheckerReport:
    """One health checker's last report on a region's endpoint."""

    checker: str  # where it checks from (Route 53: the checker's region)
    healthy: bool
    status: str  # its own words: "Success: HTTP Status Code 200" / "Failure: ..."


def healthy_by_share(reports: list[CheckerReport]) -> bool:
    """The endpoint's verdict from its checkers' reports, as the DNS service counts them."""
    healthy = [r for r in reports if r.healthy]
    return bool(reports) and len(healthy) / len(reports) > HEALTHY_CHECKER_SHARE


class Traffic(Protocol):
    """Which region answers the service's DNS name; switch it and confirm the answer."""

    def routes(self) -> list[Route]:
        """The failover entries under the DNS name, one per region that has one."""
        ...

    def answer(self) -> str:
        """The region the DNS name resolves to right now, as a client would see it."""
        ...

    def make_primary(self, region: str, *, timeout: float) -> bool:
        """Make `region` the primary answer and the others secondary; return once the change is
        in effect at the DNS servers (not yet that clients resolve it: `answer` tells that).
        False when `region` already was the primary."""
        ...

    def checker_healthy(self, region: str) -> bool:
        """What the cloud's health checker thinks of `region`'s endpoint right now."""
        ...

    def checker_reports(self, region: str) -> list[CheckerReport]:
        """Each health checker's last report on `region`'s endpoint."""
        ...

    def detection_window(self, region: str) -> DetectionWindow:
        """How long the health checker takes to notice that `region` went down."""
        ...
