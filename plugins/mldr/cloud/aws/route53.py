"""Route 53 failover records as the runbooks' traffic switch (`mldr.cloud.Traffic`)."""

from __future__ import annotations

from mldr.cloud.aws.clients import ClientFactory
from mldr.cloud.calls import Timeouts


class Route53Traffic:
    def __init__(self, factory: ClientFactory, *, timeouts: Timeouts | None = None) -> None:
        self.factory = factory
        self.timeouts = timeouts
