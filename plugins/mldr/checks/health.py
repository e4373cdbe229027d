"""Is a region able to take traffic? Read-only probes with short timeouts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from mldr import http
from mldr.cloud import Cloud
from mldr.cloud.aws.clients import PROBE_TIMEOUTS, ClientFactory, aws_call
from mldr.cloud.aws.cloud import factory_of
from mldr.errors import AwsError, MldrError
from mldr.topology import ComputeKind, Topology


@dataclass
class RegionHealth:
    region: str
    s3_reachable: bool = False
    endpoint_healthy: bool = False
    compute_desired: int | None = None
    compute_running: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return self.s3_reachable and self.endpoint_healthy

    def summary(self) -> str:
        if self.healthy:
            return f"{self.region}: healthy"
        return f"{self.region}: UNHEALTHY ({'; '.join(self.problems)})"


def endpoint_healthy(topology: Topology, region: str, timeout: float = 2.0) -> tuple[bool, str]:
    url = topology.region(region).endpoint_url.rstrip("/") + topology.inference.health_path
    try:
        response = http.get(url, timeout=timeout)
    except httpx.HTTPError as exc:
        return False, f"{url}: no answer ({type(exc).__name__})"
    if response.status_code != 200:
        return False, f"{url}: HTTP {response.status_code} {response.text[:200]}"
    return True, "ok"


def s3_reachable(cloud: Cloud, topology: Topology, region: str, *, recheck: bool = True) -> tuple[bool, str]:
    """Whether every protected bucket of `region` answers. `recheck=False` trusts a region found
    silent moments ago (`cloud.silent`) instead of waiting for another timeout."""
    if not recheck and (why := cloud.silent.describe(region)):
        return False, why
    store = cloud.objects(region, timeouts=PROBE_TIMEOUTS)
    for dataset in topology.datasets:
        try:
            with cloud.silent.watch(region):
                store.probe(dataset.buckets[region])
        except MldrError as exc:
            return False, str(exc)
    cloud.silent.clear(region)
    return True, "ok"


def compute_counts(factory: ClientFactory, topology: Topology, region: str) -> tuple[int, int]:
    """(desired, running) for the region's inference compute."""
    compute = topology.region(region).compute
    if compute.kind == ComputeKind.ECS:
        ecs = factory.client("ecs", region, timeouts=PROBE_TIMEOUTS)
        with aws_call(f"ECS service {compute.cluster}/{compute.service}", region=region):
            services: list[dict[str, Any]] = ecs.describe_services(
                cluster=compute.cluster, services=[compute.service]
            )["services"]
        if not services:
            raise AwsError("service not found", resource=f"ECS service {compute.service}", region=region)
        return int(services[0]["desiredCount"]), int(services[0]["runningCount"])
    asg = factory.client("autoscaling", region, timeouts=PROBE_TIMEOUTS)
    with aws_call(f"Auto Scaling group {compute.auto_scaling_group}", region=region):
        groups = asg.describe_auto_scaling_groups(AutoScalingGroupNames=[compute.auto_scaling_group])[
            "AutoScalingGroups"
        ]
    if not groups:
        raise AwsError(
            "group not found", resource=f"Auto Scaling group {compute.auto_scaling_group}", region=region
        )
    group = groups[0]
    in_service = sum(1 for i in group.get("Instances", []) if i.get("LifecycleState") == "InService")
    return int(group["DesiredCapacity"]), in_service


def region_health(cloud: Cloud, topology: Topology, region: str) -> RegionHealth:
    factory = factory_of(cloud)
    health = RegionHealth(region=region)
    health.s3_reachable, why = s3_reachable(cloud, topology, region)
    if not health.s3_reachable:
        health.problems.append(f"S3: {why}")
    health.endpoint_healthy, why = endpoint_healthy(topology, region)
    if not health.endpoint_healthy:
        health.problems.append(f"endpoint: {why}")
    try:
        health.compute_desired, health.compute_running = compute_counts(factory, topology, region)
    except MldrError as exc:
        health.problems.append(f"compute: {exc}")
    return health
