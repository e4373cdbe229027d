"""A DynamoDB table as the DR control store (`mldr.cloud.ControlStore`).

The table is named by the topology and has a replica per region (a global table; the sandbox
keeps it on its global server), so it stays reachable while either data region is down. Point
reads and writes try each replica in order; every lease change is a conditional write on the
fencing token. Items are keyed by `pk`; the lease is the item `lease`, the seed `infra/` and the
sandbox write (`initial_lease_item`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

from mldr.cloud.aws.clients import PROBE_TIMEOUTS, ClientFactory
from mldr.cloud.aws.errors import aws_call
from mldr.cloud.calls import Timeouts
from mldr.cloud.control import Lease, Operation, Record, RecordValue
from mldr.errors import FencingConflict, MldrError, PreconditionFailed, RegionUnreachable

LEASE_KEY = "lease"


def operation_item(operation: Operation) -> dict[str, Any]:
    return {
        "M": {
            k: ({"BOOL": v} if isinstance(v, bool) else {"S": str(v)}) for k, v in asdict(operation).items()
        }
    }


def operation_from_item(item: dict[str, Any]) -> Operation:
    values: dict[str, Any] = {k: (v["BOOL"] if "BOOL" in v else v["S"]) for k, v in item["M"].items()}
    return Operation(**values)


def lease_item(lease: Lease) -> dict[str, Any]:
    return {
        "pk": {"S": LEASE_KEY},
        "active_region": {"S": lease.active_region},
        "fencing_token": {"N": str(lease.fencing_token)},
        "updated_at": {"S": lease.updated_at},
        "fenced_regions": {"L": [{"S": r} for r in lease.fenced_regions]},
        "operation": operation_item(lease.operation) if lease.operation else {"NULL": True},
    }


def lease_from_item(item: dict[str, Any]) -> Lease:
    op = item.get("operation", {"NULL": True})
    return Lease(
        active_region=item["active_region"]["S"],
        fencing_token=int(item["fencing_token"]["N"]),
        operation=None if "NULL" in op else operation_from_item(op),
        updated_at=item.get("updated_at", {}).get("S", ""),
        fenced_regions=tuple(v["S"] for v in item.get("fenced_regions", {}).get("L", [])),
    )


def initial_lease_item(primary_region: str) -> dict[str, Any]:
    """The lease a new topology starts with (`infra/` seeds it; tests/infra holds the two equal)."""
    return lease_item(Lease(active_region=primary_region, fencing_token=0))


def _attribute(value: RecordValue) -> dict[str, str]:
    return {"S": value} if isinstance(value, str) else {"N": repr(value)}


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def _record(item: dict[str, Any]) -> dict[str, RecordValue]:
    """A record's fields without its key; attribute types other than S and N are not ours."""
    out: dict[str, RecordValue] = {}
    for name, attribute in item.items():
        if name == "pk":
            continue
        if "S" in attribute:
            out[name] = attribute["S"]
        elif "N" in attribute:
            out[name] = _number(attribute["N"])
    return out


class DynamoControlStore:
    def __init__(self, factory: ClientFactory, *, timeouts: Timeouts | None = None) -> None:
        self.factory = factory
        self.timeouts = timeouts
        self.table = factory.topology.control_state.table
        self.resource = f"control-state table {self.table}"

    def _replicas(self, timeouts: Timeouts | None) -> Iterator[tuple[str, Any]]:
        return self.factory.control_clients(timeouts=timeouts)

    def _first_answering(self, call: str, **kwargs: Any) -> dict[str, Any]:
        errors = []
        for region, client in self._replicas(self.timeouts or PROBE_TIMEOUTS):
            try:
                with aws_call(self.resource, region=region):
                    result: dict[str, Any] = getattr(client, call)(TableName=self.table, **kwargs)
                    return result
            except RegionUnreachable as exc:
                errors.append(str(exc))
        raise RegionUnreachable(
            "no replica of the control-state table answered: " + "; ".join(errors), resource=self.resource
        )

    def read_lease(self) -> Lease:
        result = self._first_answering("get_item", Key={"pk": {"S": LEASE_KEY}}, ConsistentRead=True)
        if "Item" not in result:
            raise MldrError(
                f"control-state table {self.table} has no lease item: was the topology provisioned? "
                "(sandbox: `mldr sandbox up`; AWS: `pulumi up` seeds it)"
            )
        return lease_from_item(result["Item"])

    def compare_and_set(self, *, expected_token: int, lease: Lease) -> Lease:
        try:
            self._first_answering(
                "put_item",
                Item=lease_item(lease),
                ConditionExpression="fencing_token = :expected",
                ExpressionAttributeValues={":expected": {"N": str(expected_token)}},
            )
        except PreconditionFailed as exc:
            raise FencingConflict(
                f"the fencing token is no longer {expected_token}: another operation changed the "
                "DR lease first; run `mldr status` to see who holds it"
            ) from exc
        return lease

    def put_record(self, key: str, fields: Record) -> None:
        item = {"pk": {"S": key}, **{name: _attribute(value) for name, value in fields.items()}}
        self._first_answering("put_item", Item=item)

    def put_record_if(self, key: str, fields: Record, *, expected: Record | None) -> None:
        item = {"pk": {"S": key}, **{name: _attribute(value) for name, value in fields.items()}}
        if expected is None:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            names = {f"#e{i}": name for i, name in enumerate(expected)}
            condition = {
                "ConditionExpression": " AND ".join(f"{n} = :e{i}" for i, n in enumerate(names)),
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": {
                    f":e{i}": _attribute(value) for i, value in enumerate(expected.values())
                },
            }
        self._first_answering("put_item", Item=item, **condition)

    def get_record(self, key: str) -> dict[str, RecordValue] | None:
        result = self._first_answering("get_item", Key={"pk": {"S": key}}, ConsistentRead=True)
        return _record(result["Item"]) if "Item" in result else None

    def delete_record(self, key: str) -> None:
        self._first_answering("delete_item", Key={"pk": {"S": key}})

    def records(self, prefix: str) -> list[dict[str, RecordValue]]:
        # A scan reads the whole table: it holds one item per operation and a few more, and
        # this serves `mldr history` and the dashboard, not a runbook step. The first replica.
        region, client = next(self._replicas(self.timeouts))
        out = []
        with aws_call(self.resource, region=region):
            pages = client.get_paginator("scan").paginate(
                TableName=self.table,
                FilterExpression="begins_with(pk, :prefix)",
                ExpressionAttributeValues={":prefix": {"S": prefix}},
            )
            for page in pages:
                out += [_record(item) for item in page.get("Items", [])]
        return out
