"""Scale a region's inference compute to its active or standby capacity and wait for health."""

from __future__ import annotations

import logging
import time

from mldr.checks.health import compute_counts, endpoint_healthy
from mldr.cloud.aws.clients import ClientFactory, aws_call
from mldr.errors import MldrError
from mldr.topology import ComputeKind, Topology

log = logging.getLogger(__name__)


def set_capacity(factory: ClientFactory, topology: Topology, region: str, capacity: int) -> bool:
    """Set the desired count; returns False when it already was `capacity`."""
    compute = topology.region(region).compute
    desired, _ = compute_counts(factory, topology, region)
    if desired == capacity:
        return False
    if compute.kind == ComputeKind.ECS:
        ecs = factory.client("ecs", region)
        with aws_call(f"ECS service {compute.cluster}/{compute.service}", region=region):
            ecs.update_service(cluster=compute.cluster, service=compute.service, desiredCount=capacity)
    else:
        asg = factory.client("autoscaling", region)
        with aws_call(f"Auto Scaling group {compute.auto_scaling_group}", region=region):
            asg.set_desired_capacity(
                AutoScalingGroupName=compute.auto_scaling_group, DesiredCapacity=capacity, HonorCooldown=False
            )
    log.info("%s: compute desired capacity %d -> %d", region, desired, capacity)
    return True


def scale_to_active(
    factory: ClientFactory, topology: Topology, region: str, *, timeout: float = 600.0
) -> dict[str, object]:
    """Active capacity, then wait until the tasks run and the endpoint answers healthy.

    The sandbox's moto reports no running ECS tasks, so there the endpoint's health (what the
    load balancer's target health means in AWS) is the readiness signal.
    """
    capacity = topology.region(region).compute.active_capacity
    changed = set_capacity(factory, topology, region, capacity)
    started = time.monotonic()
    why = ""
    while time.monotonic() - started < timeout:
        _, running = compute_counts(factory, topology, region)
        tasks_ready = running >= capacity or topology.sandbox is not None
        healthy, why = endpoint_healthy(topology, region)
        if tasks_ready and healthy:
            return {"capacity": capacity, "changed": changed, "seconds": round(time.monotonic() - started, 3)}
        time.sleep(1.0 if topology.sandbox is None else 0.2)
    raise MldrError(f"{region}: compute not healthy {timeout:.0f}s after scaling to {capacity}: {why}")


def scale_to_standby(factory: ClientFactory, topology: Topology, region: str) -> bool:
    return set_capacity(factory, topology, region, topology.region(region).compute.standby_capacity)
