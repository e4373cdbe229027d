"""Move the inference DNS name to a region: make its route the primary one, then confirm.

We swap which route is PRIMARY rather than flip health checks: after an outage the healed
old primary must not take traffic back on its own (its data is stale until failback resyncs
it), and a planned switchover must move traffic while both regions are healthy. Health
checks keep doing their job on top: if the new primary dies, DNS still answers the
SECONDARY.
"""

from __future__ import annotations

import time

from mldr.cloud import Cloud
from mldr.errors import MldrError
from mldr.topology import Topology


def switch(cloud: Cloud, topology: Topology, target: str, *, timeout: float = 120.0) -> dict[str, object]:
    """Make `target` the PRIMARY route, wait until the change is in effect, and confirm the answer."""
    topology.require_region(target)
    started = time.monotonic()
    traffic = cloud.traffic()
    changed = traffic.make_primary(target, timeout=timeout)
    answer = None
    while time.monotonic() - started < timeout:
        answer = traffic.answer()
        if answer == target:
            break
        time.sleep(0.2)
    else:
        raise MldrError(
            f"the DNS name still answers {answer} {timeout:.0f}s after the switch to {target}: "
            f"check {target}'s health check (an unhealthy PRIMARY is skipped)"
        )
    return {"changed": changed, "answer": answer, "seconds": round(time.monotonic() - started, 3)}
