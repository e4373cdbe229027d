"""Where may a pipeline write right now? The active region, from the DR lease, and its fences.

Workloads that DR protects (the training pipeline) never name a region in their configuration:
they ask the control state at run time, so the run after a failover writes to the new region with
no change anywhere. Before writing they check, read-only, that the region is not fenced:

- the lease lists it in `fenced_regions` (a failover or failback is moving away from it), or
- one of its buckets carries the write-fence policy statement (`MldrWriteFence`), which a runbook
  puts on before it updates the lease, so a run that checks between the two still stops.

A write there would be denied by S3 anyway, half-way through a run; this check fails first, with
a message that names the fence, the region and what to do.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mldr.cloud import Cloud
from mldr.cloud.control import Lease
from mldr.cloud.objects import WRITE_FENCE
from mldr.errors import ActiveRegionChanged, WriteFenced
from mldr.topology import Topology


@dataclass(frozen=True)
class ActiveRegion:
    """The region to write to, as the DR lease says at the time of asking."""

    region: str
    fencing_token: int
    operation: str | None  # "<id> (<kind> <source> -> <target>, step <step>)" while one runs

    def to_dict(self) -> dict[str, object]:
        return {"region": self.region, "fencing_token": self.fencing_token, "operation": self.operation}


def _describe_operation(lease: Lease) -> str | None:
    op = lease.operation
    if op is None:
        return None
    return f"{op.id} ({op.kind} {op.source} -> {op.target}, step {op.step})"


def fenced_buckets(cloud: Cloud, region: str, buckets: Iterable[str]) -> list[str]:
    """The buckets among `buckets` (in `region`) that carry the write fence. Read-only."""
    store = cloud.objects(region)
    return [bucket for bucket in buckets if store.is_fenced(bucket)]


def require_writable(
    cloud: Cloud,
    topology: Topology,
    *,
    datasets: Iterable[str],
    expected_region: str | None = None,
) -> ActiveRegion:
    """The active region, if the named datasets may be written there now; else a clear error.

    `expected_region` is the region an earlier task of the same run wrote to: if a failover moved
    the active region since, the run stops rather than leave half its outputs in each region.
    """
    lease = cloud.control().read_lease()
    region = lease.active_region
    operation = _describe_operation(lease)
    buckets = [topology.dataset(name).buckets[region] for name in datasets]
    fenced = fenced_buckets(cloud, region, buckets)
    if region in lease.fenced_regions or fenced:
        reasons = []
        if region in lease.fenced_regions:
            reasons.append(f"the DR lease lists it in fenced_regions ({', '.join(lease.fenced_regions)})")
        if fenced:
            reasons.append(f"write fence {WRITE_FENCE} is on {', '.join(fenced)}")
        raise WriteFenced(
            f"refusing to write: the active region {region} is fenced - {'; '.join(reasons)} "
            f"(fencing token {lease.fencing_token}"
            + (f", operation {operation}" if operation else ", no operation in progress")
            + "). A failover or failback is moving writes away from this region; check `mldr status` "
            "or the DR dashboard and rerun once it has finished (never lift a fence by hand while an "
            "operation holds the lease)"
        )
    if expected_region is not None and region != expected_region:
        raise ActiveRegionChanged(
            f"the active region changed from {expected_region} to {region} during this run "
            f"(fencing token now {lease.fencing_token}); its earlier outputs are in {expected_region}, "
            "so it stops here - trigger a new run, which will work entirely in "
            f"{region}"
        )
    return ActiveRegion(region=region, fencing_token=lease.fencing_token, operation=operation)
