"""Scale a region's inference compute to its active or standby capacity and wait for health."""

from __future__ import annotations

import logging
import time

from mldr.checks.health import endpoint_healthy
from mldr.cloud import Cloud
from mldr.errors import MldrError
from mldr.topology import Topology

log = logging.getLogger(__name__)


def set_capacity(cloud: Cloud, topology: Topology, region: str, capacity: int) -> bool:
    """Set the desired count; returns False when it already was `capacity`."""
    pool = cloud.compute(region)
    desired = pool.counts().desired
    if desired == capacity:
        return False
    pool.set_desired(capacity)
    log.info("%s: compute desired capacity %d -> %d", region, desired, capacity)
    return True


def scale_to_active(
    cloud: Cloud, topology: Topology, region: str, *, timeout: float = 600.0
) -> dict[str, object]:
    """Active capacity, then wait until the tasks run and the endpoint answers healthy.

    The sandbox's moto reports no running ECS tasks, so there the endpoint's health (what the
    load balancer's target health means in AWS) is the readiness signal.
    """
    capacity = topology.region(region).compute.active_capacity
    changed = set_capacity(cloud, topology, region, capacity)
    pool = cloud.compute(region)
    started = time.monotonic()
    why = ""
    while time.monotonic() - started < timeout:
        running = pool.counts().running
        tasks_ready = running >= capacity or topology.sandbox is not None
        healthy, why = endpoint_healthy(topology, region)
        if tasks_ready and healthy:
            return {"capacity": capacity, "changed": changed, "seconds": round(time.monotonic() - started, 3)}
        time.sleep(1.0 if topology.sandbox is None else 0.2)
    raise MldrError(f"{region}: compute not healthy {timeout:.0f}s after scaling to {capacity}: {why}")


def scale_to_standby(cloud: Cloud, topology: Topology, region: str) -> bool:
    return set_capacity(cloud, topology, region, topology.region(region).compute.standby_capacity)
