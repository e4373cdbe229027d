"""Progress of a long operation in the log: n of N, rate and ETA, for the operator at 3 a.m.

One helper for the verification's partitions and the resync's transfers. The total may be
unknown until late - the resync learns it only once both listings have been read, while the
copies already run - so until `planned` says it, a line gives what is done and the rate only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


def duration(seconds: float) -> str:
    """A short human duration: 45s, 12m05s, 2h03m."""
    seconds = max(0, round(seconds))
    if seconds < 90:
        return f"{seconds}s"
    if seconds < 90 * 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """Counts units of work as they end and logs a line at most every `every` seconds, and
    always for the last one.

    A unit is what N counts (a partition, a transfer). When `items` names a finer count (keys
    compared in a partition), the rate is in items and each `tick` says how many it covered;
    otherwise the rate is in units. The ETA is the time so far scaled by the units left, so it
    holds when units differ in size only as long as they are alike on average.
    Thread-safe: the workers of a pool call `tick` as they finish.
    """

    def __init__(
        self,
        what: str,
        *,
        unit: str = "objects",
        items: str | None = None,
        total: int | None = None,
        until_total: str = "total not known yet",
        every: float = 2.0,
        logger: logging.Logger = log,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what, self.unit, self.items_name = what, unit, items
        self.total = total
        self.until_total = until_total
        self.every = every
        self.logger = logger
        self.clock = clock
        self.done = 0
        self.items = 0
        self.started = self.last = clock()
        self.lock = threading.Lock()

    def planned(self, total: int) -> None:
        """N is known now; when every unit has already ended, say so once."""
        with self.lock:
            self.total = total
            if total and self.done >= total:
                self.logger.info("%s", self.line(self.clock()))

    def tick(self, items: int = 1) -> None:
        """One unit ended (covering `items` items, when they are counted)."""
        with self.lock:
            self.done += 1
            self.items += items
            now = self.clock()
            if now - self.last >= self.every or self.done == self.total:
                self.last = now
                self.logger.info("%s", self.line(now))

    def line(self, now: float) -> str:
        """What the log says at `now`."""
        elapsed = max(now - self.started, 1e-6)
        counted = self.items if self.items_name else self.done
        rate = f"{counted / elapsed:.0f} {self.items_name or self.unit}/s"
        compared = f", {self.items} {self.items_name}" if self.items_name else ""
        if self.total is None:
            return f"{self.what}: {self.done} {self.unit} done{compared}, {self.until_total} ({rate})"
        if self.done >= self.total:
            when = f"in {duration(elapsed)}"
        else:
            left = elapsed * (self.total - self.done) / self.done if self.done else None
            when = f"ETA {duration(left)}" if left is not None else "ETA unknown"
        return f"{self.what}: {self.done} of {self.total} {self.unit}{compared} ({rate}, {when})"
