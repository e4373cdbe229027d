"""The DR control state: the lease compare-and-set and the operation records.

One small table that stays reachable while either data region is down (a DynamoDB global
table, a Cosmos DB account with a replica per region, a multi-region Firestore/Spanner): the
lease - which region is active, the fencing token, the operation holding it - written only by
compare-and-set on the token, and records under string keys (operation progress, queued
audit events, the drill's state). The lease semantics (take, advance, release) live in
`mldr.actions.fencing`.

Two writers must never both win: every lease change is conditional on the token *and* on the
holder (the operation and the run of it: a nonce per process run), and a record saved with an
`expected_version` is written only if nobody saved it since (see `ControlStore`).
"""

from __future__ import annotations

import os
import secrets
import socket
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


def new_run_id() -> str:
    """A nonce naming one process run of an operation: host and pid say where a zombie lives."""
    return f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(4)}"


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
    run: str = ""  # which run of the operation holds the lease (`new_run_id`); resuming takes it over
    run_rank: int = 0  # that run's rank: a run takes the lease over only from a lower one


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

    @property
    def holder(self) -> str:
        """Who may change the lease: "" when free, else the operation and the run of it."""
        return f"{self.operation.id}/{self.operation.run}" if self.operation else ""


#: A record's fields: text (JSON documents included) or numbers.
RecordValue = str | int | float
Record = Mapping[str, RecordValue]


class ControlStore(Protocol):
    """The DR control state: the lease compare-and-set and the operation records.

    Writes go where they cannot be lost to a concurrent writer on another replica (a strongly
    consistent table: the first replica that answers; an eventually consistent one: its one
    write replica only); reads to the first replica that answers. `RegionUnreachable` when no
    replica a call may use answers.
    """

    def read_lease(self) -> Lease:
        """The lease, read consistently; an `MldrError` naming the provisioning step when the
        store was never seeded."""
        ...

    def compare_and_set(self, *, expected: Lease, lease: Lease) -> Lease:
        """Write `lease` only if the stored fencing token and holder (`Lease.holder`) are still
        `expected`'s; else raise `FencingConflict`. Returns `lease`."""
        ...

    def put_record(self, key: str, fields: Record, *, expected_version: int | None = None) -> None:
        """Write (replace) the record under `key`. With `expected_version`, only if its stored
        `version` is still that (0: the record does not exist yet) - the record is then written
        with `version` one higher - else raise `StaleRecord`."""
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
