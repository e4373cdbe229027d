"""Measurements published and read back per region (CloudWatch, Azure Monitor, Cloud Monitoring)."""

from __future__ import annotations

from typing import Protocol


class Metrics(Protocol):
    """Measurements published and read back per region (CloudWatch, Azure Monitor, Cloud Monitoring)."""


class Alerts(Protocol):
    """Messages to the people on call, per region (SNS, Event Grid, Pub/Sub)."""
