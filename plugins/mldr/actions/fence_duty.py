"""State changes behind a fence duty: fence a region that was the primary, stop its outgoing
replication, and record or close the duty (read back by `mldr.checks.fence_duty`).

The order matters. Fence first: from then on the old primary takes no client write. Then
disable its rule: nothing it took before the fence is delivered by a rule switched off
afterwards (the active region's replica guard already refuses it meanwhile).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from mldr.actions import replication, write_fence
from mldr.checks.fence_duty import DONE, PENDING, FenceDuty, duty_key
from mldr.checks.health import s3_reachable
from mldr.cloud import Cloud
from mldr.cloud.control import ControlStore, now_iso
from mldr.errors import RegionUnreachable
from mldr.topology import Topology

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Fenced:
    """What fencing a former primary did, and what is still to do (empty: nothing)."""

    region: str
    fenced: tuple[str, ...]
    changed: tuple[str, ...]
    pending: tuple[str, ...]

    @property
    def done(self) -> bool:
        return not self.pending


def fence_and_stop(cloud: Cloud, topology: Topology, *, region: str, active: str) -> Fenced:
    """Write-fence every dataset bucket of `region`, then turn replication to `active` -> `region`
    (its own rule kept, disabled). A region that does not answer leaves everything pending."""
    reachable, why = s3_reachable(cloud, topology, region, recheck=False)
    if not reachable:
        return Fenced(region=region, fenced=(), changed=(), pending=(f"{region} unreachable ({why})",))
    store = cloud.objects(region)
    fenced: list[str] = []
    try:
        with cloud.silent.watch(region):
            for dataset in topology.datasets:
                write_fence.fence(store, dataset.buckets[region])
                fenced.append(dataset.buckets[region])
    except RegionUnreachable as exc:
        # Not fenced: do not touch its rule either, the order is fence first.
        return Fenced(region=region, fenced=tuple(fenced), changed=(), pending=(f"fence {region}: {exc}",))
    result = replication.set_direction(cloud, topology, source=active, target=region)
    return Fenced(
        region=region,
        fenced=tuple(fenced),
        changed=tuple(result["changed"]),
        pending=tuple(result["pending"]),
    )


def record(control: ControlStore, *, region: str, operation_id: str, pending: list[str]) -> FenceDuty:
    """Leave the duty for whoever reaches `region` next (one per region: a newer one replaces it)."""
    fields = {
        "region": region,
        "operation_id": operation_id,
        "recorded_at": now_iso(),
        "status": PENDING,
        "pending": json.dumps(pending),
    }
    control.put_record(duty_key(region), fields)
    log.warning(
        "fence duty recorded: %s could not be fenced and its outgoing replication stopped (%s); the next "
        "`mldr lag` or dr_replication_lag run that reaches it does it",
        region,
        "; ".join(pending),
    )
    return FenceDuty.from_record(fields)  # type: ignore[arg-type]


def close(control: ControlStore, duty: FenceDuty, *, by: str, outcome: str) -> FenceDuty:
    fields = {
        **{k: v for k, v in duty.public().items() if k in ("region", "operation_id", "recorded_at")},
        "pending": json.dumps(list(duty.pending)),
        "status": DONE,
        "completed_at": now_iso(),
        "completed_by": by,
        "outcome": outcome,
    }
    control.put_record(duty_key(duty.region), fields)  # type: ignore[arg-type]
    log.info("fence duty for %s done by %s: %s", duty.region, by, outcome)
    return FenceDuty.from_record(fields)  # type: ignore[arg-type]
