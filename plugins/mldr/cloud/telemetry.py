"""Measurements published and read back per region (CloudWatch, Azure Monitor, Cloud Monitoring),
and messages to the people on call (SNS, Event Grid, Pub/Sub)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class Unit(StrEnum):
    SECONDS = "Seconds"
    COUNT = "Count"
    BYTES = "Bytes"


class Statistic(StrEnum):
    """How the points of one period are combined."""

    MAXIMUM = "Maximum"
    AVERAGE = "Average"
    MINIMUM = "Minimum"
    SUM = "Sum"


@dataclass(frozen=True)
class MetricId:
    """One time series: a name in a namespace, told apart by its dimensions."""

    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Sample:
    metric: MetricId
    value: float
    unit: Unit
    at: datetime


#: A series read back: (epoch seconds at the period's start, value), oldest first.
Points = tuple[tuple[float, float], ...]


class Metrics(Protocol):
    """Measurements published and read back per region (CloudWatch, Azure Monitor, Cloud Monitoring)."""

    def publish(self, samples: Sequence[Sample]) -> None: ...

    def series(
        self,
        metrics: Sequence[MetricId],
        *,
        start: datetime,
        end: datetime,
        period_seconds: int,
        statistic: Statistic,
    ) -> Mapping[MetricId, Points]:
        """Each metric's points in [start, end), one per period; a metric without points maps
        to an empty series."""
        ...


class Alerts(Protocol):
    """Messages to the people on call, per region (SNS, Event Grid, Pub/Sub)."""

    def send(self, *, subject: str, message: str) -> None:
        """Publish to the region's alert topic (a long subject is shortened to what fits)."""
        ...
