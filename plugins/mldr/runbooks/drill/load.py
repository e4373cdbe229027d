"""The drill's load generator: inference requests through the DNS name and canary writes.

Two independent threads record everything with wall-clock times (epoch seconds, the clock
the edge and the replicator stamp their events with):

- `InferenceLoad` sends the golden set to `POST /predict` on the client URL every `interval`
  seconds. Each request runs in its own worker, so one hanging on a stopped region does not
  delay the next: steady arrivals, like a population of clients, and a timeline without gaps.
- `CanaryWriter` writes a small object `<prefix>_mldr/drill/<drill-id>/<seq>.json` every
  `interval` seconds to the region the DR lease says is active (an application that follows
  the lease), recording whether and when it was acknowledged and the SHA-256 of its bytes.
  Keys under `_mldr/` are ignored by backup verification; resync copies them like any data,
  which is what lets the drill prove nothing is lost after failback.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import httpx

from mldr import http
from mldr.cloud import Cloud
from mldr.cloud.calls import Timeouts
from mldr.cloud.control import ControlStore
from mldr.errors import MldrError
from mldr.runbooks.drill.metrics import CanaryWrite, RequestSample

log = logging.getLogger(__name__)

SERVED_BY_HEADER = "x-mldr-served-by"
#: A canary write to a stopped region must fail within a second, not stall the timeline.
CANARY_TIMEOUTS = Timeouts(connect=1.0, read=1.0, max_attempts=1)


def canary_prefix(dataset_prefix: str, drill_id: str) -> str:
    return f"{dataset_prefix}_mldr/drill/{drill_id}/"


class InferenceLoad:
    """Steady prediction requests; `samples()` is what every client saw."""

    def __init__(
        self,
        url: str,
        instances: list[list[float]],
        *,
        interval: float = 0.2,
        timeout: float = 1.0,
        workers: int = 16,
    ) -> None:
        self.url = url
        self.payload = {"instances": instances}
        self.interval = interval
        self.timeout = timeout
        self._samples: list[RequestSample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="drill-request")
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="drill-inference-load", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            self._pool.submit(self._one)
            next_at += self.interval
            delay = next_at - time.monotonic()
            if delay < 0:  # starved (2 busy cores): skip the missed slots rather than burst
                next_at, delay = time.monotonic(), 0.0
            self._stop.wait(delay)

    def kick(self) -> None:
        """One extra request now: sent at the fault instant, it bounds the start of the outage
        by the fault itself rather than by the request interval."""
        self._pool.submit(self._one)

    def _one(self) -> None:
        sent = time.time()
        try:
            response = http.post(self.url, json=self.payload, timeout=self.timeout)
        except httpx.HTTPError as exc:
            sample = RequestSample(sent, time.time(), False, None, None, type(exc).__name__)
        else:
            done = time.time()
            try:
                body: Any = response.json()
            except ValueError:
                body = None
            body = body if isinstance(body, dict) else {}
            ok = response.status_code == 200 and body.get("predictions") is not None
            region = body.get("region") or response.headers.get(SERVED_BY_HEADER)
            error = None if ok else f"HTTP {response.status_code}: {response.text[:120]}"
            sample = RequestSample(sent, done, ok, response.status_code, region, error)
        with self._lock:
            self._samples.append(sample)

    def samples(self) -> list[RequestSample]:
        with self._lock:
            return sorted(self._samples, key=lambda s: s.sent_at)

    def first_success(self, region: str, *, after: float) -> RequestSample | None:
        return next((s for s in self.samples() if s.ok and s.region == region and s.sent_at >= after), None)

    def stop(self) -> list[RequestSample]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._pool.shutdown(wait=True)  # in-flight requests end within their timeout
        return self.samples()


class LeaseFollower:
    """The active region from the DR lease, as an application routing its writes would read it.

    If the control-state table does not answer, the last known region is used (and a write to
    it fails or succeeds on its own merits)."""

    def __init__(self, control: ControlStore, initial: str) -> None:
        self.control = control
        self.region = initial

    def __call__(self) -> str:
        try:
            self.region = self.control.read_lease().active_region
        except MldrError as exc:
            log.debug("lease not readable, writing to %s: %s", self.region, exc)
        return self.region


class CanaryWriter:
    """Timestamped canaries to the active region's bucket; `writes()` is what was acknowledged."""

    def __init__(
        self,
        *,
        cloud: Cloud,
        bucket_of: Callable[[str], str],
        key_prefix: str,
        drill_id: str,
        active_region: Callable[[], str],
        interval: float = 0.25,
    ) -> None:
        self.cloud = cloud
        self.bucket_of = bucket_of
        self.key_prefix = key_prefix
        self.drill_id = drill_id
        self.active_region = active_region
        self.interval = interval
        self._writes: list[CanaryWrite] = []
        self._lock = threading.Lock()
        # Held for the whole of each write: whoever takes it knows no write is in flight.
        self._gate = threading.Lock()
        self._paused = False
        self._stop = threading.Event()
        self._seq = 0
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="drill-canary-writer", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            with self._gate:
                if not self._paused and not self._stop.is_set():
                    self._write_one()
            next_at += self.interval
            delay = next_at - time.monotonic()
            if delay < 0:
                next_at, delay = time.monotonic(), 0.0
            self._stop.wait(delay)

    def _write_one(self) -> None:
        seq, self._seq = self._seq, self._seq + 1
        key = f"{self.key_prefix}{seq:06d}.json"
        region = self.active_region()
        body = json.dumps(
            {"drill": self.drill_id, "seq": seq, "written_at": time.time(), "region": region}
        ).encode()
        sha256 = hashlib.sha256(body)
        digest = sha256.hexdigest()
        sent = time.time()
        acked: float | None = None
        error: str | None = None
        bucket = self.bucket_of(region)
        try:
            self.cloud.objects(region, timeouts=CANARY_TIMEOUTS).put(
                bucket,
                key,
                body,
                content_type="application/json",
                sha256=base64.b64encode(sha256.digest()).decode(),
            )
            acked = time.time()
        except MldrError as exc:
            error = str(exc)[:200]
        with self._lock:
            self._writes.append(CanaryWrite(seq, key, region, sent, acked, digest, error))

    def pause(self) -> None:
        """Stop writing; returns once no write is in flight."""
        with self._gate:
            self._paused = True

    def resume(self) -> None:
        with self._gate:
            self._paused = False

    @contextmanager
    def between_writes(self) -> Iterator[None]:
        """Run the body with no write in flight, so every canary is acknowledged either
        before the body starts or attempted after it ends: a crisp boundary for the fault."""
        with self._gate:
            yield

    def writes(self) -> list[CanaryWrite]:
        with self._lock:
            return list(self._writes)

    def last_acked(self) -> CanaryWrite | None:
        return next((w for w in reversed(self.writes()) if w.acked), None)

    def stop(self) -> list[CanaryWrite]:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        return self.writes()


def list_canary_keys(
    cloud: Cloud, *, region: str, bucket: str, prefix: str, timeouts: Timeouts | None = None
) -> set[str]:
    return {obj.key for obj in cloud.objects(region, timeouts=timeouts).list_objects(bucket, prefix=prefix)}


def read_canaries(
    cloud: Cloud, *, region: str, bucket: str, prefix: str, timeouts: Timeouts | None = None
) -> dict[str, str]:
    """key -> SHA-256 of the current bytes of every canary under `prefix` in one bucket.

    Reads each object (they are ~100 bytes): the checksum compared is of the bytes the region
    would serve, not of metadata. Raises `MldrError` if the region does not answer."""
    store = cloud.objects(region, timeouts=timeouts)
    keys = sorted(list_canary_keys(cloud, region=region, bucket=bucket, prefix=prefix, timeouts=timeouts))

    def digest(key: str) -> tuple[str, str]:
        return key, hashlib.sha256(store.get(bucket, key).body).hexdigest()

    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="drill-read") as pool:
        return dict(pool.map(digest, keys))


def delete_canaries(cloud: Cloud, *, region: str, bucket: str, prefix: str) -> int:
    """Delete the drill's canaries in one bucket (delete markers: the DR operator role may not
    destroy history; the bucket's lifecycle rule for `_mldr/` expires the versions). Each region
    is cleaned on its own: replication may be paused or reversed after a drill's failure."""
    store = cloud.objects(region)
    doomed = [listed.key for listed in store.list_objects(bucket, prefix=prefix)]
    store.delete_keys(bucket, doomed)
    return len(doomed)
