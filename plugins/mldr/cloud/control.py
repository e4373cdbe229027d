"""The DR control state: the lease compare-and-set and the operation records.

One small table that stays reachable while either data region is down (a DynamoDB global
table, a Cosmos DB account with a replica per region, a multi-region Firestore/Spanner): the
lease - which region is active, the fencing token, the operation holding it - written only by
compare-and-set on the token, and records under string keys (operation progress, queued
audit events, the drill's state). The lease semantics (take, advance, release) live in
`mldr.actions.fencing`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def wait_seconds_since(iso: str) -> float:
    try:
        then = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return max(0.0, time.time() - then.timestamp())


@dataclass(frozen=True)
class Operation:
    """An operation holding the lease: a failover or failback in progress."""

    id: str
    kind: str  # failover | failback | drill
    source: str
    target: str
    mode: str
    started_by: str
    reason: str
    started_at: str
    step: str = "preflight"
    force: bool = False


@dataclass(frozen=True)
class Lease:
    active_region: str
    fencing_token: int
    operation: Operation | None = None
    updated_at: str = field(default_factory=now_iso)
    fenced_regions: tuple[str, ...] = ()

    def public(self) -> dict[str, Any]:
        return {
            "active_region": self.active_region,
            "fencing_token": self.fencing_token,
            "operation": asdict(self.operation) if self.operation else None,
            "fenced_regions": list(self.fenced_regions),
            "updated_at": self.updated_at,
        }


#: A record's fields: text (JSON documents included) or numbers.
RecordValue = str | int | float
Record = Mapping[str, RecordValue]


class ControlStore(Protocol):
    """The DR control state: the lease compare-and-set and the operation records.

    Reads and writes go to the first replica that answers; `RegionUnreachable` only when none
    does.
    """

    def read_lease(self) -> Lease:
        """The lease, read consistently; an `MldrError` naming the provisioning step when the
        store was never seeded."""
        ...

    def compare_and_set(self, *, expected_token: int, lease: Lease) -> Lease:
        """Write `lease` only if the stored fencing token is still `expected_token`; else raise
        `FencingConflict`. Returns `lease`."""
        ...

    def put_record(self, key: str, fields: Record) -> None:
        """Write (replace) the record under `key`."""
        ...

    def get_record(self, key: str) -> dict[str, RecordValue] | None:
        """The record under `key`, read consistently, or None."""
        ...

    def put_record_if(self, key: str, fields: Record, *, expected: Record | None) -> None:
        """Write (replace) the record under `key` only if it is absent (`expected` None: a
        conditional create) or its stored fields equal `expected`; else raise
        `PreconditionFailed`, writing nothing. The drill lock is taken and refreshed this way."""
        ...

    def records(self, prefix: str) -> list[dict[str, RecordValue]]:
        """Every record whose key starts with `prefix` (in no particular order)."""
        ...

    def delete_record(self, key: str) -> None:
        """Remove the record under `key` (nothing happens when there is none)."""
        ...
