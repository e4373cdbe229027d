"""The audit log: every step's start and end, who, why, the token, the data at risk.

Events are JSON objects written to the ops bucket of both regions (`audit/<operation>/...`),
so the record survives the loss of either region. A region that does not answer gets its
events queued in the control-state table and delivered by the next write that reaches it
(`reconcile`), so both copies end up complete.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from mldr.cloud import Cloud
from mldr.cloud.calls import PROBE_TIMEOUTS
from mldr.cloud.control import ControlStore, RecordValue, now_iso
from mldr.errors import MldrError, RegionUnreachable
from mldr.topology import Topology

log = logging.getLogger(__name__)

PREFIX = "audit"


def _pending_key(region: str) -> str:
    return f"audit-pending#{region}"


def event_key(event: dict[str, Any]) -> str:
    return f"{PREFIX}/{event['operation_id']}/{event['at_ms']:015d}-{event['seq']:04d}-{event['event']}.json"


class AuditLog:
    def __init__(self, cloud: Cloud, topology: Topology, store: ControlStore) -> None:
        self.cloud = cloud
        self.topology = topology
        self.store = store
        self._seq = 0
        # A region that did not answer is skipped for a while (`cloud.silent`): one timeout
        # per operation, not per event. The time it was last found silent is kept with its
        # queue, for the processes that run the next steps (each Airflow task is one).
        self.silent = cloud.silent
        # Regions whose queue of undelivered events may not be empty: all of them until we have
        # looked once, then only those this log queued to. Saves a table read per event.
        self._maybe_queued: set[str] = set(topology.region_names)
        self._recalled = False

    def _put(self, region: str, event: dict[str, Any]) -> None:
        bucket = self.topology.region(region).ops_bucket
        self.cloud.objects(region, timeouts=PROBE_TIMEOUTS).put_json(bucket, event_key(event), event)

    def _queued(self, region: str) -> list[dict[str, Any]]:
        item = self.store.get_record(_pending_key(region))
        return json.loads(str(item["events"])) if item else []

    def _set_queued(self, region: str, events: list[dict[str, Any]]) -> None:
        record: dict[str, RecordValue] = {"events": json.dumps(events, default=str)}
        if (since := self.silent.since(region)) is not None:
            record["silent_since"] = since
        self.store.put_record(_pending_key(region), record)

    def _recall_silent_regions(self) -> None:
        """Start with what an earlier process learned: a region found silent moments ago is
        queued to at once, not timed out on again."""
        if self._recalled:
            return
        self._recalled = True
        for region in self.topology.region_names:
            item = self.store.get_record(_pending_key(region))
            if item and "silent_since" in item:
                self.silent.mark(region, at=float(item["silent_since"]))

    def record(self, operation_id: str, event: str, **fields: Any) -> dict[str, Any]:
        self._seq += 1
        entry = {
            "operation_id": operation_id,
            "event": event,
            "at": now_iso(),
            "at_ms": int(time.time() * 1000),
            "seq": self._seq,
            **fields,
        }
        self._recall_silent_regions()
        for region in self.topology.region_names:
            if self.silent.since(region) is None:
                try:
                    with self.silent.watch(region):
                        self._put(region, entry)
                except RegionUnreachable as exc:
                    log.warning("audit: %s unreachable, events queued for later delivery (%s)", region, exc)
                except MldrError as exc:
                    log.warning("audit: %s refused the event, queued for later delivery (%s)", region, exc)
                else:
                    self._flush(region)
                    continue
            self._set_queued(region, [*self._queued(region), entry])
            self._maybe_queued.add(region)
        return entry

    def _flush(self, region: str) -> int:
        if region not in self._maybe_queued:
            return 0
        queued = self._queued(region)
        if not queued:
            self._maybe_queued.discard(region)
            return 0
        delivered = 0
        for entry in queued:
            try:
                self._put(region, entry)
            except MldrError:
                break
            delivered += 1
        self._set_queued(region, queued[delivered:])
        if delivered == len(queued):
            self._maybe_queued.discard(region)
        if delivered:
            log.info("audit: delivered %d queued event(s) to %s", delivered, region)
        return delivered

    def reconcile(self) -> dict[str, int]:
        """Deliver queued events to every region that answers now."""
        out = {}
        self._maybe_queued = set(self.topology.region_names)
        for region in self.topology.region_names:
            try:
                out[region] = self._flush(region)
            except MldrError:
                out[region] = 0
        return out

    def events(self, region: str, operation_id: str) -> list[dict[str, Any]]:
        """Read one region's copy of an operation's events, oldest first."""
        store = self.cloud.objects(region)
        bucket = self.topology.region(region).ops_bucket
        out = [
            store.get_json(bucket, obj.key)
            for obj in store.list_objects(bucket, prefix=f"{PREFIX}/{operation_id}/")
        ]
        return sorted(out, key=lambda e: (e["at_ms"], e["seq"]))
