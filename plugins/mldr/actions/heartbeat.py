"""The replication heartbeat autopilot listens for: a tiny canary written into the primary.

Its one write is under the reserved canary prefix (as the lag check's canaries are), which
verification, resync and drills ignore and the lag check's cleanup removes after an hour. The
observer (`mldr.checks.observers.heartbeat`) then reads whether the older heartbeats reached
the standby.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime

from mldr.checks.observers import heartbeat_dataset, heartbeat_prefix
from mldr.cloud import Cloud
from mldr.cloud.calls import PROBE_TIMEOUTS
from mldr.errors import MldrError
from mldr.topology import Topology

log = logging.getLogger(__name__)


def write_heartbeat(cloud: Cloud, topology: Topology, region: str) -> str | None:
    """Write one heartbeat into `region`'s first dataset bucket: its key, or None when the
    region did not take it (down, unreachable, or fenced) - which is what autopilot observes."""
    now = datetime.now(UTC)
    key = f"{heartbeat_prefix(topology)}{now.strftime('%Y%m%dT%H%M%S.%fZ')}-{uuid.uuid4().hex[:8]}.json"
    body = json.dumps({"written_at": now.isoformat(), "purpose": "mldr autopilot heartbeat"}).encode()
    try:
        # A region that does not answer is marked silent: the alert, the audit and the failover's
        # own steps that follow in this evaluation skip it instead of waiting for it again.
        with cloud.silent.watch(region):
            cloud.objects(region, timeouts=PROBE_TIMEOUTS).put(
                heartbeat_dataset(topology).buckets[region], key, body, content_type="application/json"
            )
    except MldrError as exc:
        log.info("autopilot heartbeat not written to %s: %s", region, exc)
        return None
    cloud.silent.clear(region)  # it answers now: later work of this process may use it again
    return key
