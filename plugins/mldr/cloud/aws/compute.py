"""ECS services or Auto Scaling groups as the compute pool (`mldr.cloud.ComputePool`)."""

from __future__ import annotations

from mldr.cloud.aws.clients import ClientFactory
from mldr.cloud.calls import Timeouts


class AwsComputePool:
    def __init__(self, factory: ClientFactory, region: str, *, timeouts: Timeouts | None = None) -> None:
        self.factory = factory
        self.region = region
        self.timeouts = timeouts
