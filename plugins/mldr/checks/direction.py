"""Which way replication runs right now: from the active region to the standby.

Before a failover that is primary -> secondary; while the secondary is active (after a failover,
until failback) data is written there and replicated back, so a check that compared primary to
secondary would report everything new as "extra". The active region comes from the DR lease;
when the control state cannot be read, the topology's primary is assumed (and logged).
"""

from __future__ import annotations

import logging

from mldr.cloud import Cloud
from mldr.errors import MldrError
from mldr.topology import Topology

log = logging.getLogger(__name__)


def replication_direction(
    cloud: Cloud, topology: Topology, *, source_region: str | None = None
) -> tuple[str, str]:
    """(source, target): the region data is written in, and the one it must be replicated to."""
    if source_region is not None:
        return topology.require_region(source_region), topology.other_region(source_region)
    try:
        active = cloud.control().read_lease().active_region
    except MldrError as exc:
        log.warning(
            "cannot read the DR lease (%s); assuming the primary %s is active", exc, topology.primary_region
        )
        active = topology.primary_region
    if active not in topology.region_names:
        log.warning("the DR lease names %s, not a region of this topology; using the primary", active)
        active = topology.primary_region
    return active, topology.other_region(active)
