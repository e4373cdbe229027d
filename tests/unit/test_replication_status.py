"""The per-version status reader: what it cannot read is not replicated."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mldr.checks.replication_status import S3StatusSource
from mldr.cloud.objects import ObjectHead, ObjectVersion, ReplicationState
from mldr.errors import AwsError


class _Store:
    """One bucket of three fresh versions; reading the status of `v-broken` fails."""

    def __init__(self, now: float) -> None:
        self.now = now

    def versions(self, bucket: str, *, prefix: str = "") -> Iterator[ObjectVersion]:
        for key, version in (("a", "v-done"), ("b", "v-broken"), ("c", "v-pending")):
            yield ObjectVersion(key=key, version_id=version, modified=self.now, etag="e", size=3, latest=True)

    def head(self, bucket: str, key: str, *, version_id: str | None = None, **_: Any) -> ObjectHead:
        if version_id == "v-broken":
            raise AwsError("HeadObject: InternalError", resource=f"s3://{bucket}/{key}", region="r1")
        state = ReplicationState.COMPLETED if version_id == "v-done" else ReplicationState.PENDING
        return ObjectHead(key=key, size=3, etag="e", version_id=version_id, replication=state)


class _Cloud:
    def __init__(self, store: _Store) -> None:
        self.store = store

    def objects(self, region: str, **_: Any) -> _Store:
        return self.store


def test_a_version_whose_status_cannot_be_read_stays_in_the_backlog() -> None:
    import time

    source = S3StatusSource(_Cloud(_Store(time.time())))  # type: ignore[arg-type]

    backlog = source.backlog(region="r1", bucket="data")

    by_key = {item.key: item for item in backlog}
    assert set(by_key) == {"b", "c"}, "a drain waits for the unreadable one; only a COMPLETED one is done"
    assert by_key["b"].state is ReplicationState.UNKNOWN
    assert by_key["b"].error is not None and "InternalError" in by_key["b"].error
    assert by_key["c"].state is ReplicationState.PENDING
