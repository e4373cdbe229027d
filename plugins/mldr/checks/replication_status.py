"""Per-version replication status, the one place that knows where to read it.

In AWS, S3 reports it on the source object (`HeadObject` -> `ReplicationStatus`: PENDING,
COMPLETED, FAILED; REPLICA on the copy). moto does not set it, so in the sandbox the
replicator serves the same statuses over HTTP (`/status`, `/backlog`). Everything else in
mldr asks through `status_source(...)` and never cares which one answers.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Protocol

from mldr.cloud import Cloud
from mldr.cloud.aws import lean_http
from mldr.cloud.objects import ReplicationState
from mldr.errors import AwsError, RegionUnreachable, SandboxError
from mldr.topology import Topology

__all__ = [
    "BacklogItem",
    "ReplicationState",
    "S3StatusSource",
    "SandboxStatusSource",
    "StatusSource",
    "status_source",
]


@dataclass(frozen=True)
class BacklogItem:
    """A source version whose replica is not there (yet)."""

    bucket: str
    key: str
    version_id: str
    state: ReplicationState
    size: int
    created_at: float
    is_delete_marker: bool = False
    error: str | None = None

    @property
    def age_seconds(self) -> float:
        return max(0.0, time.time() - self.created_at)


class StatusSource(Protocol):
    def status(
        self, *, region: str, bucket: str, key: str, version_id: str | None = None
    ) -> ReplicationState: ...

    def backlog(self, *, region: str, bucket: str) -> list[BacklogItem]: ...


class SandboxStatusSource:
    """The sandbox replicator's status channel."""

    def __init__(self, replicator_url: str, timeout: float = 5.0) -> None:
        self.url = replicator_url.rstrip("/")
        self.timeout = lean_http.timeout(connect=timeout, read=timeout)

    def _get(self, path: str, params: dict[str, str]) -> tuple[int, Any]:
        """(HTTP status, decoded JSON body or None); the replicator not answering is an error."""
        try:
            response = lean_http.pool().request(
                "GET", f"{self.url}{path}", fields=params, timeout=self.timeout
            )
        except lean_http.TransportError as exc:
            raise RegionUnreachable(
                f"sandbox replicator did not answer ({exc}); is the sandbox up?", resource="replicator"
            ) from exc
        if response.status == 404:
            return 404, None
        if response.status != 200:
            raise SandboxError(
                f"sandbox replicator answered {path} with HTTP {response.status}: {response.data[:200]!r}"
            )
        return 200, json.loads(response.data)

    def status(
        self, *, region: str, bucket: str, key: str, version_id: str | None = None
    ) -> ReplicationState:
        params = {"bucket": bucket, "key": key}
        if version_id:
            params["version_id"] = version_id
        code, body = self._get("/status", params)
        if code == 404:
            return ReplicationState.UNKNOWN
        return ReplicationState(body["status"])

    def backlog(self, *, region: str, bucket: str) -> list[BacklogItem]:
        code, body = self._get("/backlog", {"bucket": bucket})
        if code == 404:
            raise SandboxError(f"sandbox replicator has no /backlog for {bucket}")
        return [
            BacklogItem(
                bucket=e["bucket"],
                key=e["key"],
                version_id=e["version_id"],
                state=ReplicationState(e["status"]),
                size=int(e["size"]),
                created_at=float(e["created_at"]),
                is_delete_marker=bool(e["is_delete_marker"]),
                error=e.get("error"),
            )
            for e in body["backlog"]
        ]


class S3StatusSource:
    """The object store's own per-version status (S3: `HeadObject` -> `ReplicationStatus`).

    A backlog needs one HEAD per recent version, so it looks only at versions younger than
    `window_seconds` (anything older and still pending is already an RTC alarm in CloudWatch).
    """

    def __init__(self, cloud: Cloud, window_seconds: float = 3600.0) -> None:
        self.cloud = cloud
        self.window = window_seconds

    def status(
        self, *, region: str, bucket: str, key: str, version_id: str | None = None
    ) -> ReplicationState:
        return self.cloud.objects(region).head(bucket, key, version_id=version_id).replication

    def backlog(self, *, region: str, bucket: str) -> list[BacklogItem]:
        cutoff = time.time() - self.window
        items = []
        for v in self.cloud.objects(region).versions(bucket):
            if v.deleted or v.modified < cutoff:
                continue
            try:
                state = self.status(region=region, bucket=bucket, key=v.key, version_id=v.version_id)
            except AwsError as exc:
                # Not known to be replicated is not replicated: a drain keeps waiting for it and
                # the data at risk lists it, instead of both passing over it in silence.
                items.append(
                    BacklogItem(
                        bucket,
                        v.key,
                        v.version_id,
                        ReplicationState.UNKNOWN,
                        v.size,
                        v.modified,
                        error=f"status unreadable: {exc}",
                    )
                )
                continue
            if state in (ReplicationState.PENDING, ReplicationState.FAILED):
                items.append(BacklogItem(bucket, v.key, v.version_id, state, v.size, v.modified))
        return items


def status_source(topology: Topology, cloud: Cloud) -> StatusSource:
    if topology.sandbox is not None:
        return SandboxStatusSource(topology.sandbox.replicator_url)
    return S3StatusSource(cloud)
