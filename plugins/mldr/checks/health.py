"""Is a region able to take traffic? Read-only probes with short timeouts."""

from __future__ import annotations

from dataclasses import dataclass, field

import httpx

from mldr import http
from mldr.cloud import Cloud
from mldr.cloud.aws.clients import PROBE_TIMEOUTS
from mldr.errors import MldrError
from mldr.topology import Topology


@dataclass
class RegionHealth:
    region: str
    s3_reachable: bool = False
    endpoint_healthy: bool = False
    compute_desired: int | None = None
    compute_running: int | None = None
    #: A pilot-light standby: 0 tasks by design, so a silent endpoint is expected; the failover's
    #: scale step starts the tasks and waits for them to serve.
    pilot_light: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return self.s3_reachable and (self.endpoint_healthy or self.pilot_light)

    def summary(self) -> str:
        if self.healthy and self.pilot_light:
            return f"{self.region}: healthy (pilot light: 0 tasks until scaled up)"
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


def region_health(cloud: Cloud, topology: Topology, region: str) -> RegionHealth:
    health = RegionHealth(region=region)
    health.s3_reachable, why = s3_reachable(cloud, topology, region)
    if not health.s3_reachable:
        health.problems.append(f"S3: {why}")
    health.endpoint_healthy, endpoint_why = endpoint_healthy(topology, region)
    try:
        counts = cloud.compute(region, timeouts=PROBE_TIMEOUTS).counts()
        health.compute_desired, health.compute_running = counts.desired, counts.running
    except MldrError as exc:
        health.problems.append(f"compute: {exc}")
    if not health.endpoint_healthy:
        health.pilot_light = (
            health.compute_desired == 0 and topology.region(region).compute.standby_capacity == 0
        )
        if not health.pilot_light:
            health.problems.append(f"endpoint: {endpoint_why}")
    return health
