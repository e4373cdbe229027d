"""What must hold whatever the schedule did, checked while it runs and after it.

- The fencing token only increases (sampled every half second).
- With no operation in flight, no region other than the active one both takes writes and
  replicates them into the active region (the split brain of a healed old primary) - once the
  periodic lag check, which owes it its fence, has run since the region came back; and the
  active region takes writes (there is always a way out).
- After the schedule (everything healed, resumed or aborted, failed back): no operation is left
  running, and every acknowledged write is the current state of its key in both regions, or a
  report lists it (data at risk, a conflict).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from mldr.chaos.writers import AckedWrite
from mldr.checks.active_region import fenced_buckets
from mldr.cloud import Cloud
from mldr.cloud.calls import PROBE_TIMEOUTS
from mldr.cloud.control import Lease
from mldr.errors import MldrError
from mldr.topology import Topology


@dataclass(frozen=True)
class Violation:
    rule: str
    detail: str
    after: str  # the event after which it was seen ("end": after the final cleanup)

    def public(self) -> dict[str, str]:
        return {"rule": self.rule, "detail": self.detail, "after": self.after}


@dataclass
class LeaseSampler:
    """Reads the lease every `interval` seconds in a thread; keeps the newest and the tokens."""

    cloud: Cloud
    interval: float = 0.5
    latest: Lease | None = None
    decreases: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)

    def sample(self) -> Lease | None:
        try:
            lease = self.cloud.control(timeouts=PROBE_TIMEOUTS).read_lease()
        except MldrError:
            return self.latest  # a stalled control store: nothing new to learn
        if self.latest is not None and lease.fencing_token < self.latest.fencing_token:
            self.decreases.append(
                f"fencing token went from {self.latest.fencing_token} to {lease.fencing_token}"
            )
        self.latest = lease
        return lease

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def active_region(self) -> str | None:
        return self.latest.active_region if self.latest else None


def _reachable_fenced(cloud: Cloud, topology: Topology, region: str) -> list[str] | None:
    """The region's fenced dataset buckets; None when it does not answer."""
    try:
        return fenced_buckets(cloud, region, [d.buckets[region] for d in topology.datasets])
    except MldrError:
        return None


def _replicates_into(cloud: Cloud, topology: Topology, region: str) -> list[str]:
    """The region's buckets with an enabled replication rule (their writes flow to the other region)."""
    out = []
    store = cloud.objects(region, timeouts=PROBE_TIMEOUTS)
    for dataset in topology.datasets:
        try:
            configuration = store.replication(dataset.buckets[region])
        except MldrError:
            continue
        rules = (configuration or {}).get("Rules", [])
        if any(rule.get("Status") == "Enabled" for rule in rules):
            out.append(dataset.buckets[region])
    return out


def quiescent_violations(
    cloud: Cloud, topology: Topology, lease: Lease, *, lag_checked: Iterable[str], after: str
) -> list[Violation]:
    """Checks for a moment with no operation in flight. `lag_checked`: regions the lag check has
    looked at (with the region answering) since they last came back from an outage."""
    found = []
    active = lease.active_region
    fenced = _reachable_fenced(cloud, topology, active)
    if fenced:
        found.append(
            Violation(
                "a way out",
                f"no operation holds the lease, yet the active region {active} refuses writes "
                f"({', '.join(fenced)})",
                after,
            )
        )
    checked = set(lag_checked)
    for region in topology.region_names:
        if region == active or region not in checked:
            continue
        fenced_there = _reachable_fenced(cloud, topology, region)
        if fenced_there is None or fenced_there:
            continue  # down, or fenced
        replicating = _replicates_into(cloud, topology, region)
        if replicating:
            found.append(
                Violation(
                    "single writer",
                    f"{region} is not the active region ({active}) yet takes writes and replicates them "
                    f"into it ({', '.join(replicating)}): its writes would overwrite the active region's",
                    after,
                )
            )
    return found


def _listed_text(cloud: Cloud, topology: Topology, records: Iterable[dict[str, Any]]) -> str:
    """Everything a report says: operation records and the reports they point to in S3, as text
    in which a listed key can be found."""
    parts = [json.dumps(r, default=str) for r in records]
    for region in topology.region_names:
        store = cloud.objects(region, timeouts=PROBE_TIMEOUTS)
        bucket = topology.region(region).ops_bucket
        try:
            keys = [o.key for o in store.list_objects(bucket) if not o.key.startswith("audit/")]
        except MldrError:
            continue
        for key in keys:
            if key.endswith((".json", ".jsonl")) and ("risk" in key or "conflict" in key):
                try:
                    parts.append(json.dumps(store.get_json(bucket, key), default=str))
                except (MldrError, ValueError):
                    continue
    return "\n".join(parts)


def _current(cloud: Cloud, topology: Topology, region: str, prefix: str) -> dict[str, str]:
    """key -> SHA-256 of the current bytes, for every key under `prefix` in the first dataset."""
    import hashlib

    store = cloud.objects(region)
    bucket = topology.datasets[0].buckets[region]
    out = {}
    for obj in store.list_objects(bucket, prefix=prefix):
        out[obj.key] = hashlib.sha256(store.get(bucket, obj.key).body).hexdigest()
    return out


#: Two writes of one key acknowledged this close together may have been applied in either order.
SAME_MOMENT_SECONDS = 0.5


def _legitimate(write: AckedWrite) -> bool:
    """A write that may win: through the DNS name, or to the region active at the time. A write the
    pinned client got into a region that was not active (a healed old primary) may not win."""
    return write.client == "service" or write.active_region in (None, write.region)


def _may_be_current(writes: list[AckedWrite]) -> list[AckedWrite]:
    """The writes of one key any of which may be its final state: the last legitimate one and those
    acknowledged at the same moment (or the last of all, when none was legitimate)."""
    ordered = sorted(writes, key=lambda w: w.acked_at)
    legitimate = [w for w in ordered if _legitimate(w)] or ordered[-1:]
    last = legitimate[-1].acked_at
    return [w for w in legitimate if w.acked_at >= last - SAME_MOMENT_SECONDS]


def lost_writes(
    cloud: Cloud,
    topology: Topology,
    acked: list[AckedWrite],
    *,
    prefix: str,
    records: Iterable[dict[str, Any]],
) -> list[Violation]:
    """Acknowledged writes that are not the current state of their key in both regions and that
    no report lists. A key written more than once must hold its last legitimate write (a write
    the old primary accepted later must not win silently)."""
    current = {region: _current(cloud, topology, region, prefix) for region in topology.region_names}
    listed = _listed_text(cloud, topology, records)
    by_key: dict[str, list[AckedWrite]] = {}
    for write in acked:
        by_key.setdefault(write.key, []).append(write)
    found = []
    for key, writes in sorted(by_key.items()):
        accepted = _may_be_current(writes)
        missing = [
            r for r in topology.region_names if current[r].get(key) not in {w.sha256 for w in accepted}
        ]
        if missing and key not in listed:
            last = accepted[-1]
            found.append(
                Violation(
                    "nothing lost",
                    f"{key}: the write acknowledged by {last.region} ({last.client} client, active region "
                    f"{last.active_region}) is not the current state in {', '.join(missing)}, and no "
                    "report lists it",
                    "end",
                )
            )
    return found
