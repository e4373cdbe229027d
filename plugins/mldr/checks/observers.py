"""What autopilot's observers see of a region: four independent views, read-only.

A dead primary is declared only when several observers that should see it agree (as MySQL's
orchestrator does), never on one probe: each of these can fail alone while the region is fine
(a checker's network path, the standby's own link, a replication hiccup, a slow client path).

- `route53`: Route 53's health checkers of the region's endpoint, each checker's last report;
  failing as Route 53 counts it (at most 18% of the checkers healthy);
- `standby_probe`: an HTTP probe of the region's endpoint from here, the standby region;
- `heartbeat`: the replication heartbeat - a heartbeat canary the primary accepted (written by
  `mldr.actions.heartbeat` just before) and the older ones all arrived in the standby within
  the dataset's RPO;
- `dns_inference`: requests through the service's DNS name, as clients make them: their
  error rate.

Each returns an `Observation`: ok or failing, and what it saw, short enough to keep a history
of them in the control store.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum

import httpx

from mldr import http
from mldr.checks.health import endpoint_healthy
from mldr.cloud import Cloud
from mldr.cloud.calls import PROBE_TIMEOUTS
from mldr.cloud.traffic import healthy_by_share
from mldr.errors import MldrError
from mldr.topology import Dataset, Topology

#: Heartbeat canaries live beside the lag check's canaries (reserved prefix: verification, resync
#: and drills ignore them; the lag check's cleanup removes them after an hour).
HEARTBEAT_PREFIX = "_mldr/canary/heartbeat-"
#: A detail is what an operator reads in the audit and on the dashboard, kept per round.
MAX_DETAIL = 240
#: Requests through the DNS name per observation, and the error rate that counts as failing.
DNS_REQUESTS = 4
DNS_FAILING_RATE = 0.5


class ObserverName(StrEnum):
    ROUTE53 = "route53"
    STANDBY_PROBE = "standby_probe"
    HEARTBEAT = "heartbeat"
    DNS_INFERENCE = "dns_inference"


@dataclass(frozen=True)
class Observation:
    observer: ObserverName
    ok: bool
    detail: str

    def public(self) -> dict[str, object]:
        return {"observer": self.observer.value, "ok": self.ok, "detail": self.detail}

    @classmethod
    def from_public(cls, data: dict[str, object]) -> Observation:
        return cls(ObserverName(str(data["observer"])), bool(data["ok"]), str(data.get("detail", "")))


def _short(text: str) -> str:
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 3] + "..."


def heartbeat_dataset(topology: Topology) -> Dataset:
    """The dataset whose buckets carry the heartbeat: the first (every dataset replicates)."""
    return topology.datasets[0]


def heartbeat_prefix(topology: Topology) -> str:
    return heartbeat_dataset(topology).prefix + HEARTBEAT_PREFIX


def route53_checkers(cloud: Cloud, topology: Topology, region: str) -> Observation:
    try:
        reports = cloud.traffic(timeouts=PROBE_TIMEOUTS).checker_reports(region)
    except MldrError as exc:
        return Observation(ObserverName.ROUTE53, False, _short(f"health check status not read: {exc}"))
    healthy = [r for r in reports if r.healthy]
    ok = healthy_by_share(reports)
    each = "; ".join(f"{r.checker}: {'ok' if r.healthy else r.status}" for r in reports)
    return Observation(
        ObserverName.ROUTE53, ok, _short(f"{len(healthy)}/{len(reports)} checkers healthy ({each})")
    )


def standby_probe(topology: Topology, region: str) -> Observation:
    ok, why = endpoint_healthy(topology, region, timeout=PROBE_TIMEOUTS.read)
    return Observation(ObserverName.STANDBY_PROBE, ok, _short("endpoint answers healthy" if ok else why))


def heartbeat(
    cloud: Cloud, topology: Topology, region: str, *, written: str | None, now: float | None = None
) -> Observation:
    """`written`: the heartbeat key the primary just accepted, or None when it did not (the
    caller's write failed: the primary's S3 does not take writes from here)."""
    now = time.time() if now is None else now
    dataset = heartbeat_dataset(topology)
    if written is None:
        return Observation(ObserverName.HEARTBEAT, False, "the primary did not accept the heartbeat write")
    standby = topology.other_region(region)
    prefix = heartbeat_prefix(topology)
    try:
        sent = {
            o.key: o.last_modified
            for o in cloud.objects(region, timeouts=PROBE_TIMEOUTS).list_objects(
                dataset.buckets[region], prefix=prefix
            )
        }
        arrived = {
            o.key
            for o in cloud.objects(standby, timeouts=PROBE_TIMEOUTS).list_objects(
                dataset.buckets[standby], prefix=prefix
            )
        }
    except MldrError as exc:
        return Observation(ObserverName.HEARTBEAT, False, _short(f"heartbeats not listed: {exc}"))
    # Only heartbeats sent after the newest that arrived: one orphaned by an earlier outage (taken
    # by the primary as it stopped, never replicated) must not keep this observer failing.
    newest = max((at for k, at in sent.items() if k in arrived), default=None)
    late = sorted(
        k
        for k, at in sent.items()
        if k not in arrived and now - at > dataset.rpo_seconds and (newest is None or at > newest)
    )
    if late:
        oldest = now - min(sent[k] for k in late)
        return Observation(
            ObserverName.HEARTBEAT,
            False,
            _short(
                f"{len(late)} heartbeat(s) not in {standby} after {oldest:.0f}s (RPO {dataset.rpo_seconds}s)"
            ),
        )
    age = "none arrived yet" if newest is None else f"newest arrived is {now - newest:.0f}s old"
    return Observation(ObserverName.HEARTBEAT, True, f"primary takes heartbeats; {age}")


def dns_inference(topology: Topology, *, requests: int = DNS_REQUESTS) -> Observation:
    url = topology.inference.client_url.rstrip("/") + topology.inference.health_path

    def one(_: int) -> str | None:
        try:
            response = http.get(url, timeout=PROBE_TIMEOUTS.read)
        except httpx.HTTPError as exc:
            return type(exc).__name__
        return f"HTTP {response.status_code}" if response.status_code >= 500 else None

    # at once, as clients come: a dead path costs one timeout, not one per request
    with ThreadPoolExecutor(max_workers=requests, thread_name_prefix="dns-probe") as pool:
        errors = [e for e in pool.map(one, range(requests)) if e is not None]
    rate = len(errors) / requests
    detail = f"{len(errors)}/{requests} requests through {url} failed" + (
        f" ({', '.join(sorted(set(errors)))})" if errors else ""
    )
    return Observation(ObserverName.DNS_INFERENCE, rate < DNS_FAILING_RATE, _short(detail))


def observe(
    cloud: Cloud,
    topology: Topology,
    region: str,
    *,
    send_heartbeat: Callable[[], str | None],
    serving: bool = True,
) -> tuple[Observation, ...]:
    """Every observer's view of `region`, looked at concurrently: a dead region makes several of
    them wait for a timeout, and an evaluation must not take the sum of those.

    `serving=False` (the region is failed away from, fenced: it takes no heartbeat and the DNS
    name leads elsewhere): only the views of the region itself, Route 53's checkers and the probe.
    `send_heartbeat` writes the heartbeat this look reads (the one write, made by the caller's
    action) and returns its key, or None when the region did not take it."""
    looks: list[Callable[[], Observation]] = [
        lambda: route53_checkers(cloud, topology, region),
        lambda: standby_probe(topology, region),
    ]
    if serving:
        looks += [
            lambda: heartbeat(cloud, topology, region, written=send_heartbeat()),
            lambda: dns_inference(topology),
        ]
    with ThreadPoolExecutor(max_workers=len(looks), thread_name_prefix="observer") as pool:
        return tuple(pool.map(lambda look: look(), looks))
