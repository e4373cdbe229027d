"""Client writes during a schedule, and the record of which ones were acknowledged.

Two clients write all along, as an ML platform's do:
- a *service* client resolves the DNS name before every write and writes to the region it
  answers (an inference service logging features through the failover name);
- a *pinned* client writes to the primary region's bucket by name (a training pipeline
  configured with a regional endpoint: the client a healed old primary would accept).
Both write new keys and, now and then, one of a few shared *hot* keys, so a write that wins
silently over another shows up. Every acknowledged write is kept (region, key, SHA-256, when,
which region was active); the invariants decide afterwards whether each one survived.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from mldr.cloud import Cloud
from mldr.cloud.calls import PROBE_TIMEOUTS
from mldr.errors import MldrError
from mldr.topology import Topology

log = logging.getLogger(__name__)

HOT_KEYS = 3


@dataclass(frozen=True)
class AckedWrite:
    client: str
    region: str
    key: str
    sha256: str
    acked_at: float
    active_region: str | None  # the lease's active region when the write was acknowledged


class Writers:
    """The two clients, in threads, until `stop()`."""

    def __init__(
        self,
        cloud: Cloud,
        topology: Topology,
        *,
        prefix: str,
        resolve: Callable[[], str | None],
        active_region: Callable[[], str | None],
        interval: float = 0.25,
    ) -> None:
        self.cloud, self.topology, self.prefix = cloud, topology, prefix
        self.resolve, self.active_region, self.interval = resolve, active_region, interval
        self.dataset = topology.datasets[0]
        self.acked: list[AckedWrite] = []
        self.refused = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, args=("service", self._service_region), daemon=True),
            threading.Thread(
                target=self._loop, args=("pinned", lambda: topology.primary_region), daemon=True
            ),
        ]

    def _service_region(self) -> str | None:
        return self.resolve()

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> list[AckedWrite]:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)
        return list(self.acked)

    def _loop(self, client: str, region_of: Callable[[], str | None]) -> None:
        for n in itertools.count():
            if self._stop.wait(self.interval):
                return
            region = region_of()
            if region is None:
                continue
            key = f"{self.prefix}/hot-{n % HOT_KEYS}" if n % 5 == 4 else f"{self.prefix}/{client}-{n:06d}"
            self._write(client, region, key)

    def _write(self, client: str, region: str, key: str) -> None:
        body = os.urandom(32) + key.encode()
        digest = hashlib.sha256(body).digest()
        store = self.cloud.objects(region, timeouts=PROBE_TIMEOUTS)
        try:
            store.put(self.dataset.buckets[region], key, body, sha256=base64.b64encode(digest).decode())
        except MldrError as exc:  # fenced (AccessDenied), region down: not acknowledged
            self.refused += 1
            log.debug("%s write of %s to %s refused: %s", client, key, region, exc)
            return
        write = AckedWrite(client, region, key, digest.hex(), time.time(), self.active_region())
        with self._lock:
            self.acked.append(write)
