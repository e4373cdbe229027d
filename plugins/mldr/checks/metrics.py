"""CloudWatch metrics for the data-protection checks (namespace `MLDR`), one series per dataset.

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

from mldr.cloud.aws.clients import PROBE_TIMEOUTS, ClientFactory, aws_call
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


UNITS: dict[Metric, str] = {
    Metric.REPLICATION_LAG_SECONDS: "Seconds",
    Metric.PENDING_OBJECTS: "Count",
    Metric.PENDING_BYTES: "Bytes",
    Metric.FAILED_OBJECTS: "Count",
    Metric.VERIFICATION_MISMATCHES: "Count",
}


def metric_data(
    topology: Topology, dataset: str, values: Mapping[Metric, float], *, at: datetime | None = None
) -> list[dict[str, object]]:
    """The `MetricData` entries for one dataset's values."""
    timestamp = at or datetime.now(UTC)
    dimensions = [{"Name": "Topology", "Value": topology.name}, {"Name": "Dataset", "Value": dataset}]
    return [
        {
            "MetricName": metric.value,
            "Dimensions": dimensions,
            "Timestamp": timestamp,
            "Value": float(value),
            "Unit": UNITS[metric],
        }
        for metric, value in values.items()
    ]


def publish(
    factory: ClientFactory, topology: Topology, *, dataset: str, values: Mapping[Metric, float]
) -> list[str]:
    """PutMetricData in each region that answers; returns the regions reached."""
    if not values:
        return []
    data = metric_data(topology, dataset, values)
    reached = []
    for region in topology.region_names:
        try:
            with factory.silent.guard(region), aws_call(f"CloudWatch namespace {NAMESPACE}", region=region):
                factory.client("cloudwatch", region, timeouts=PROBE_TIMEOUTS).put_metric_data(
                    Namespace=NAMESPACE, MetricData=data
                )
        except MldrError as exc:
            log.warning("metrics for %s not published in %s: %s", dataset, region, exc)
            continue
        reached.append(region)
    return reached
