"""Limits on calls to a cloud, and the regions that stopped answering: cloud-neutral.

Every implementation of `mldr.cloud` takes a `Timeouts` per call and marks a region that did not
answer in a `SilentRegions`, so a runbook step pays a dead region's timeout once, not per call.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from mldr.errors import RegionUnreachable


@dataclass(frozen=True)
class Timeouts:
    """Per-call limits. The defaults keep a dead region's worst case near connect + 2 x read."""

    connect: float = 2.0
    read: float = 5.0
    max_attempts: int = 2  # total attempts, the first included


DEFAULT_TIMEOUTS = Timeouts()
#: For health probes and preflight: one attempt, short read; a stopped region answers "no" fast.
PROBE_TIMEOUTS = Timeouts(connect=1.0, read=2.0, max_attempts=1)
#: For large transfers where a single read may legitimately take longer.
TRANSFER_TIMEOUTS = Timeouts(connect=2.0, read=30.0, max_attempts=3)


class SilentRegions:
    """Regions that did not answer moments ago, as this process (or an earlier step of the same
    operation, via the audit log's queue) saw them.

    Work that can wait - an audit copy, an alert, a replication change on a region that is down -
    skips a silent region instead of paying the same timeout again; each runbook step of a
    failover during an outage would otherwise wait seconds for it. A check asked for the truth
    (`s3_reachable(recheck=True)`) still asks the region, and clears the mark when it answers.
    """

    WINDOW_SECONDS = 30.0

    def __init__(self) -> None:
        self._since: dict[str, float] = {}
        self._lock = threading.Lock()

    def mark(self, region: str, at: float | None = None) -> None:
        with self._lock:
            self._since[region] = max(self._since.get(region, 0.0), at if at is not None else time.time())

    def clear(self, region: str) -> None:
        with self._lock:
            self._since.pop(region, None)

    def since(self, region: str) -> float | None:
        """When `region` was last found silent, if within the window; else None."""
        with self._lock:
            at = self._since.get(region)
        return at if at is not None and time.time() - at < self.WINDOW_SECONDS else None

    def describe(self, region: str) -> str | None:
        at = self.since(region)
        return None if at is None else f"{region} did not answer {time.time() - at:.0f}s ago"

    @contextmanager
    def watch(self, region: str) -> Iterator[None]:
        """Mark `region` silent when a call inside does not answer (the error is re-raised)."""
        try:
            yield
        except RegionUnreachable:
            self.mark(region)
            raise

    @contextmanager
    def guard(self, region: str) -> Iterator[None]:
        """For work that can wait or go elsewhere (a report copy, metrics, an alert): refuse at
        once with `RegionUnreachable` when `region` was found silent moments ago, instead of
        paying its timeout again; otherwise `watch` the calls inside."""
        at = self.since(region)
        if at is not None:
            raise RegionUnreachable(
                f"did not answer {time.time() - at:.0f}s ago; not asked again", resource=region
            )
        with self.watch(region):
            yield
