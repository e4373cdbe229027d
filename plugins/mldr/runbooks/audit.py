"""The audit log: every step's start and end, who, why, the token, the data at risk.

Events are JSON objects written to the ops bucket of both regions (`audit/<operation>/...`),
so the record survives the loss of either region. A region that does not answer gets its
events queued in the control-state table and delivered by the next write that reaches it
(`reconcile`), so both copies end up complete. The queue is an item per event (DynamoDB items
hold at most 400 KB, and an outage can last for many events) behind a small header item.
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
    """The queue's header: the positions of its oldest and next event, when the region went silent."""
    return f"audit-pending#{region}"


def _queued_key(region: str, position: int) -> str:
    """One queued event: an item each, so the queue never outgrows DynamoDB's 400 KB per item."""
    return f"audit-pending#{region}#{position:012d}"


#: A queued event larger than this (a step result that grew with the data) is queued without its
#: bulky fields: the full event is in the other region's copy, its result in the operation record.
MAX_QUEUED_BYTES = 300_000
_IDENTITY = ("operation_id", "event", "at", "at_ms", "seq", "step", "kind", "token", "by", "reason")


def _queued_form(entry: dict[str, Any]) -> str:
    text = json.dumps(entry, default=str)
    if len(text.encode()) <= MAX_QUEUED_BYTES:
        return text
    slim = {name: entry[name] for name in _IDENTITY if name in entry}
    slim["truncated"] = (
        f"the event was {len(text.encode())} bytes, too large to queue in the control-state table; "
        "the other region's copy has it whole"
    )
    return json.dumps(slim, default=str)


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

    def _header(self, region: str) -> dict[str, RecordValue]:
        return self.store.get_record(_pending_key(region)) or {}

    def _put_header(self, region: str, header: dict[str, RecordValue], **changes: RecordValue) -> None:
        record: dict[str, RecordValue] = {
            name: value for name, value in header.items() if name in ("first", "next", "events")
        }
        record.update(changes)
        if (since := self.silent.since(region)) is not None:
            record["silent_since"] = since
        self.store.put_record(_pending_key(region), record)

    def _enqueue(self, region: str, entry: dict[str, Any]) -> None:
        """Append one event to the region's queue: the event's own item, then the header."""
        header = self._header(region)
        position = int(header.get("next", 0))
        self.store.put_record(_queued_key(region, position), {"event": _queued_form(entry)})
        self._put_header(region, header, next=position + 1)

    def _recall_silent_regions(self) -> None:
        """Start with what an earlier process learned: a region found silent moments ago is
        queued to at once, not timed out on again."""
        if self._recalled:
            return
        self._recalled = True
        for region in self.topology.region_names:
            item = self._header(region)
            if "silent_since" in item:
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
            self._enqueue(region, entry)
            self._maybe_queued.add(region)
        return entry

    def _flush(self, region: str) -> int:
        """Deliver the region's queued events, oldest first, each removed once it is delivered
        (a crash in between delivers it again, to the same key: one object per event)."""
        if region not in self._maybe_queued:
            return 0
        header = self._header(region)
        first, end = int(header.get("first", 0)), int(header.get("next", 0))
        # A queue written as one item (before an item per event): its events go first.
        legacy: list[dict[str, Any]] = json.loads(str(header["events"])) if "events" in header else []
        if first >= end and not legacy:
            self._maybe_queued.discard(region)
            return 0
        delivered = 0
        for entry in list(legacy):
            try:
                self._put(region, entry)
            except MldrError:
                break
            legacy.pop(0)
            delivered += 1
        position = first
        while not legacy and position < end:
            item = self.store.get_record(_queued_key(region, position))
            if item is not None:  # None: delivered and removed by a run that stopped before the header
                try:
                    self._put(region, json.loads(str(item["event"])))
                except MldrError:
                    break
                self.store.delete_record(_queued_key(region, position))
                delivered += 1
            position += 1
        # Read again: another process may have queued more meanwhile; only `first` moves here.
        now = self._header(region)
        rest: dict[str, RecordValue] = {"events": json.dumps(legacy)} if legacy else {}
        self._put_header(region, {"next": now.get("next", end), **rest}, first=position)
        if not legacy and position >= int(now.get("next", end)):
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
