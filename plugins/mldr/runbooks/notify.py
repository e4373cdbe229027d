"""Tell people: a message to the alert topic of every region that answers."""

from __future__ import annotations

import logging

from mldr.cloud import Cloud
from mldr.cloud.calls import PROBE_TIMEOUTS
from mldr.errors import MldrError
from mldr.topology import Topology

log = logging.getLogger(__name__)


def notify(cloud: Cloud, topology: Topology, *, subject: str, message: str) -> list[str]:
    """Publish to each region's topic; returns the regions reached (an alert must not fail a run)."""
    reached = []
    for region in topology.region_names:
        try:
            with cloud.silent.guard(region):
                cloud.alerts(region, timeouts=PROBE_TIMEOUTS).send(subject=subject, message=message)
        except MldrError as exc:
            log.warning("alert not sent to %s: %s", region, exc)
            continue
        reached.append(region)
    return reached
