"""A DynamoDB table as the DR control store (`mldr.cloud.ControlStore`)."""

from __future__ import annotations

from mldr.cloud.aws.clients import ClientFactory
from mldr.cloud.calls import Timeouts


class DynamoControlStore:
    def __init__(self, factory: ClientFactory, *, timeouts: Timeouts | None = None) -> None:
        self.factory = factory
        self.timeouts = timeouts
