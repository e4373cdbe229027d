"""The DR control state: which region is active, the fencing token, the operation in progress.

It lives in a DynamoDB table named by the topology, reachable while either data region is
down (the sandbox keeps it on the global server; a real account uses a global table with a
replica per region). Reads try each replica in order. Every change is a conditional write on
the fencing token, so two operations can never both believe they hold the lease.

This module holds the item schema and the primitive reads and compare-and-set writes; the
lease semantics (take, advance, release) live in `mldr.actions.fencing`.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from mldr.cloud.aws.clients import PROBE_TIMEOUTS, ClientFactory, aws_call
from mldr.errors import AwsError, FencingConflict, MldrError, RegionUnreachable

LEASE_KEY = "lease"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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

    def to_item(self) -> dict[str, Any]:
        return {
            "M": {k: ({"BOOL": v} if isinstance(v, bool) else {"S": str(v)}) for k, v in asdict(self).items()}
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Operation:
        raw = item["M"]
        values: dict[str, Any] = {k: (v["BOOL"] if "BOOL" in v else v["S"]) for k, v in raw.items()}
        return cls(**values)


@dataclass(frozen=True)
class Lease:
    active_region: str
    fencing_token: int
    operation: Operation | None = None
    updated_at: str = field(default_factory=now_iso)
    fenced_regions: tuple[str, ...] = ()

    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "pk": {"S": LEASE_KEY},
            "active_region": {"S": self.active_region},
            "fencing_token": {"N": str(self.fencing_token)},
            "updated_at": {"S": self.updated_at},
            "fenced_regions": {"L": [{"S": r} for r in self.fenced_regions]},
            "operation": self.operation.to_item() if self.operation else {"NULL": True},
        }
        return item

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Lease:
        op = item.get("operation", {"NULL": True})
        return cls(
            active_region=item["active_region"]["S"],
            fencing_token=int(item["fencing_token"]["N"]),
            operation=None if "NULL" in op else Operation.from_item(op),
            updated_at=item.get("updated_at", {}).get("S", ""),
            fenced_regions=tuple(v["S"] for v in item.get("fenced_regions", {}).get("L", [])),
        )

    def public(self) -> dict[str, Any]:
        return {
            "active_region": self.active_region,
            "fencing_token": self.fencing_token,
            "operation": asdict(self.operation) if self.operation else None,
            "fenced_regions": list(self.fenced_regions),
            "updated_at": self.updated_at,
        }


def initial_lease_item(primary_region: str) -> dict[str, Any]:
    return Lease(active_region=primary_region, fencing_token=0).to_item()


class ControlStateStore:
    """Reads and conditional writes of the control-state table, across its replicas."""

    def __init__(self, factory: ClientFactory) -> None:
        self.factory = factory
        self.table = factory.topology.control_state.table

    def _first_answering(self, call: str, **kwargs: Any) -> dict[str, Any]:
        errors = []
        for region, client in self.factory.control_clients(timeouts=PROBE_TIMEOUTS):
            try:
                with aws_call(f"control-state table {self.table}", region=region):
                    result: dict[str, Any] = getattr(client, call)(TableName=self.table, **kwargs)
                    return result
            except RegionUnreachable as exc:
                errors.append(str(exc))
        raise RegionUnreachable(
            "no replica of the control-state table answered: " + "; ".join(errors),
            resource=f"control-state table {self.table}",
        )

    def read_lease(self) -> Lease:
        result = self._first_answering("get_item", Key={"pk": {"S": LEASE_KEY}}, ConsistentRead=True)
        if "Item" not in result:
            raise MldrError(
                f"control-state table {self.table} has no lease item: was the topology provisioned? "
                "(sandbox: `mldr sandbox up`; AWS: `pulumi up` seeds it)"
            )
        return Lease.from_item(result["Item"])

    def compare_and_set(self, *, expected_token: int, lease: Lease) -> Lease:
        """Write `lease` only if the stored token is still `expected_token`."""
        try:
            self._first_answering(
                "put_item",
                Item=lease.to_item(),
                ConditionExpression="fencing_token = :expected",
                ExpressionAttributeValues={":expected": {"N": str(expected_token)}},
            )
        except AwsError as exc:
            cause = exc.__cause__
            if isinstance(cause, ClientError) and cause.response["Error"]["Code"] == (
                "ConditionalCheckFailedException"
            ):
                raise FencingConflict(
                    f"the fencing token is no longer {expected_token}: another operation changed the "
                    "DR lease first; run `mldr status` to see who holds it"
                ) from exc
            raise
        return lease

    def put_record(self, key: str, attributes: dict[str, Any]) -> None:
        """Write an auxiliary item (operation progress, pending audit events)."""
        self._first_answering("put_item", Item={"pk": {"S": key}, **attributes})

    def get_record(self, key: str) -> dict[str, Any] | None:
        result = self._first_answering("get_item", Key={"pk": {"S": key}}, ConsistentRead=True)
        item: dict[str, Any] | None = result.get("Item")
        return item


def wait_seconds_since(iso: str) -> float:
    try:
        then = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return max(0.0, time.time() - then.timestamp())
