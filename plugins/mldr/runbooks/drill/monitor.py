"""Watching detection during a drill: the health checks and the DNS answer, as transitions.

Detection is what the health checker itself reports, not a configured value: in the sandbox
the edge's `/resolve` (polled every 0.1 s) gives each check's status and the edge's own time
of its last change; in AWS, Route 53's `GetHealthCheckStatus` (what its checkers observe,
polled every second: the API is rate limited) and `TestDNSAnswer`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from mldr import http
from mldr.cloud import Cloud
from mldr.cloud.calls import PROBE_TIMEOUTS
from mldr.cloud.traffic import DetectionWindow
from mldr.errors import MldrError
from mldr.topology import Topology

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Transition:
    at: float
    what: str  # "answer" | "check"
    region: str | None
    value: str | None

    def public(self) -> dict[str, Any]:
        return {"at": self.at, "what": self.what, "region": self.region, "value": self.value}


class HealthMonitor(Protocol):
    def window(self, region: str) -> DetectionWindow: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def transitions(self) -> list[Transition]: ...

    def status(self, region: str) -> str | None: ...

    def answer(self) -> str | None: ...


class _Poller:
    """Polls in a thread; subclasses implement `_poll` returning (answer, {region: (status, at)})."""

    poll_seconds = 0.1

    def __init__(self) -> None:
        self._transitions: list[Transition] = []
        self._answer: str | None = None
        self._status: dict[str, str | None] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _poll(self) -> tuple[str | None, dict[str, tuple[str | None, float]]]:
        raise NotImplementedError

    def poll_once(self) -> None:
        try:
            answer, checks = self._poll()
        except (MldrError, httpx.HTTPError, ValueError, KeyError) as exc:
            log.debug("health monitor poll failed: %s", exc)
            return
        now = time.time()
        with self._lock:
            if answer != self._answer:
                self._transitions.append(Transition(now, "answer", answer, answer))
                self._answer = answer
            for region, (status, changed_at) in checks.items():
                if status != self._status.get(region):
                    self._transitions.append(Transition(changed_at, "check", region, status))
                    self._status[region] = status

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.poll_once()
            self._stop.wait(self.poll_seconds)

    def start(self) -> None:
        self.poll_once()
        self._thread = threading.Thread(target=self._loop, name="drill-health-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def transitions(self) -> list[Transition]:
        with self._lock:
            return sorted(self._transitions, key=lambda t: t.at)

    def status(self, region: str) -> str | None:
        with self._lock:
            return self._status.get(region)

    def answer(self) -> str | None:
        with self._lock:
            return self._answer


class EdgeMonitor(_Poller):
    """The sandbox edge's view: each check's status with the edge's own change time."""

    poll_seconds = 0.1

    def __init__(self, edge_url: str) -> None:
        super().__init__()
        self.url = edge_url.rstrip("/") + "/resolve"

    def _resolve(self) -> dict[str, Any]:
        doc: dict[str, Any] = http.get(self.url, timeout=1.0).json()
        return doc

    def _poll(self) -> tuple[str | None, dict[str, tuple[str | None, float]]]:
        doc = self._resolve()
        checks = {
            region: (check.get("status"), float(check.get("last_change_at") or time.time()))
            for region, check in doc.get("checks", {}).items()
        }
        return doc.get("answer"), checks

    def window(self, region: str) -> DetectionWindow:
        check = self._resolve()["checks"][region]
        return DetectionWindow(float(check["interval_seconds"]), int(check["failure_threshold"]))


class Route53Monitor(_Poller):
    """The cloud's view in a real account: its health checkers and the DNS answer, every second
    (Route 53's `GetHealthCheckStatus` is rate limited)."""

    poll_seconds = 1.0

    def __init__(self, cloud: Cloud, topology: Topology) -> None:
        super().__init__()
        self.traffic = cloud.traffic(timeouts=PROBE_TIMEOUTS)
        self.topology = topology
        self.cloud = cloud

    def _poll(self) -> tuple[str | None, dict[str, tuple[str | None, float]]]:
        checks: dict[str, tuple[str | None, float]] = {}
        for region in self.topology.region_names:
            status = "healthy" if self.traffic.checker_healthy(region) else "unhealthy"
            checks[region] = (status, time.time())
        return self.cloud.traffic().answer(), checks

    def window(self, region: str) -> DetectionWindow:
        return self.cloud.traffic().detection_window(region)


def health_monitor(cloud: Cloud, topology: Topology) -> HealthMonitor:
    if topology.sandbox is not None:
        return EdgeMonitor(topology.sandbox.edge_url)
    return Route53Monitor(cloud, topology)


def first_transition(
    transitions: list[Transition], *, what: str, value: str, region: str | None = None, after: float
) -> float | None:
    for t in transitions:
        if t.what == what and t.value == value and t.at >= after and (region is None or t.region == region):
            return t.at
    return None
