"""CloudWatch as the runbooks' metrics (`mldr.cloud.Metrics`)."""

from __future__ import annotations

from mldr.cloud.aws.clients import ClientFactory
from mldr.cloud.calls import Timeouts


class CloudWatchMetrics:
    def __init__(self, factory: ClientFactory, region: str, *, timeouts: Timeouts | None = None) -> None:
        self.factory = factory
        self.region = region
        self.timeouts = timeouts
