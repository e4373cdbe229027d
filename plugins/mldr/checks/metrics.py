"""The data-protection checks' metrics (namespace `MLDR`), one series per dataset.

Published to every region that answers, so an alarm in the standby region keeps working while
the primary is down. Dimensions: `Topology` (the topology's name, so two stacks in one account
do not mix) and `Dataset`. A region that does not answer is logged, not raised: a metric must
never fail the check that measured it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum

from mldr.cloud import Cloud
from mldr.cloud.calls import PROBE_TIMEOUTS
from mldr.cloud.telemetry import MetricId, Sample, Unit
from mldr.errors import MldrError
from mldr.topology import Topology

log = logging.getLogger(__name__)

NAMESPACE = "MLDR"


class Metric(StrEnum):
    REPLICATION_LAG_SECONDS = "ReplicationLagSeconds"
    PENDING_OBJECTS = "PendingObjects"
    PENDING_BYTES = "PendingBytes"
    FAILED_OBJECTS = "FailedObjects"
    VERIFICATION_MISMATCHES = "VerificationMismatches"


UNITS: dict[Metric, Unit] = {
    Metric.REPLICATION_LAG_SECONDS: Unit.SECONDS,
    Metric.PENDING_OBJECTS: Unit.COUNT,
    Metric.PENDING_BYTES: Unit.BYTES,
    Metric.FAILED_OBJECTS: Unit.COUNT,
    Metric.VERIFICATION_MISMATCHES: Unit.COUNT,
}


def metric_id(topology: Topology, dataset: str, metric: Metric) -> MetricId:
    """One dataset's series of `metric`."""
    return MetricId(NAMESPACE, metric.value, (("Topology", topology.name), ("Dataset", dataset)))


def samples(
    topology: Topology, dataset: str, values: Mapping[Metric, float], *, at: datetime | None = None
) -> list[Sample]:
    """One dataset's values as samples to publish."""
    timestamp = at or datetime.now(UTC)
    return [
        Sample(metric_id(topology, dataset, metric), float(value), UNITS[metric], timestamp)
        for metric, value in values.items()
    ]


def publish(cloud: Cloud, topology: Topology, *, dataset: str, values: Mapping[Metric, float]) -> list[str]:
    """Publish in each region that answers; returns the regions reached."""
    if not values:
        return []
    data = samples(topology, dataset, values)
    reached = []
    for region in topology.region_names:
        try:
            with cloud.silent.guard(region):
                cloud.metrics(region, timeouts=PROBE_TIMEOUTS).publish(data)
        except MldrError as exc:
            log.warning("metrics for %s not published in %s: %s", dataset, region, exc)
            continue
        reached.append(region)
    return reached
