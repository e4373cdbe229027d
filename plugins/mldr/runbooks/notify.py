"""Tell people: an SNS message to the alert topic of every region that answers."""

from __future__ import annotations

import logging

from mldr.cloud.aws.clients import PROBE_TIMEOUTS, ClientFactory, aws_call
from mldr.errors import MldrError
from mldr.topology import Topology

log = logging.getLogger(__name__)


def notify(factory: ClientFactory, topology: Topology, *, subject: str, message: str) -> list[str]:
    """Publish to each region's topic; returns the regions reached (an alert must not fail a run)."""
    reached = []
    for region in topology.region_names:
        topic = topology.region(region).alert_topic_arn
        try:
            with factory.silent.guard(region), aws_call(f"SNS topic {topic}", region=region):
                factory.client("sns", region, timeouts=PROBE_TIMEOUTS).publish(
                    TopicArn=topic, Subject=subject[:100], Message=message
                )
        except MldrError as exc:
            log.warning("alert not sent to %s: %s", region, exc)
            continue
        reached.append(region)
    return reached
