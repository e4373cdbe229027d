"""What the runbooks ask of a cloud, as small typed protocols.

`Cloud` is the one handle checks, actions and runbooks receive: per region an object store, a
compute pool, metrics and alerts; globally the traffic (DNS) switch and the DR control store.
`mldr.cloud.aws` implements it; nothing outside `mldr.cloud` (but the sandbox and the example
workload in `mldr.ml`) makes a cloud client or sees a cloud SDK's error. The protocols speak in
regions, buckets, keys and versions - nothing AWS-only - so an Azure (Blob, Traffic Manager) or
a GCP (Cloud Storage, Cloud DNS) implementation could satisfy them.
"""

from __future__ import annotations

from typing import Protocol

from mldr.cloud.calls import SilentRegions, Timeouts
from mldr.cloud.compute import ComputePool
from mldr.cloud.control import ControlStore
from mldr.cloud.objects import ObjectStore
from mldr.cloud.telemetry import Alerts, Metrics
from mldr.cloud.traffic import Traffic
from mldr.topology import Topology

__all__ = ["Alerts", "Cloud", "ComputePool", "ControlStore", "Metrics", "ObjectStore", "Traffic"]


class Cloud(Protocol):
    """One account's services for one topology, as the runbooks use them."""

    @property
    def topology(self) -> Topology: ...

    @property
    def silent(self) -> SilentRegions:
        """Regions that did not answer moments ago (shared by every service of this handle)."""
        ...

    def objects(self, region: str, *, timeouts: Timeouts | None = None) -> ObjectStore: ...

    def compute(self, region: str, *, timeouts: Timeouts | None = None) -> ComputePool: ...

    def metrics(self, region: str, *, timeouts: Timeouts | None = None) -> Metrics: ...

    def alerts(self, region: str, *, timeouts: Timeouts | None = None) -> Alerts: ...

    def traffic(self, *, timeouts: Timeouts | None = None) -> Traffic: ...

    def control(self, *, timeouts: Timeouts | None = None) -> ControlStore: ...
