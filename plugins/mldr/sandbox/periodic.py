"""A daemon thread that does one job every few seconds until stopped (the sandbox's inference
server runs two: the model loader and the ECS tasks watcher)."""

from __future__ import annotations

import threading
from collections.abc import Callable


class Periodic:
    """Calls `tick` now and then every `interval()` seconds, on a thread named `name`."""

    def __init__(self, name: str, tick: Callable[[], None], interval: Callable[[], float]) -> None:
        self.name, self.tick, self.interval = name, tick, interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self.tick()
            self._stop.wait(self.interval())

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            # a tick in flight is bounded by its client's timeouts
            self._thread.join(timeout=10)
            self._thread = None
