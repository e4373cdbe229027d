"""A DynamoDB table as the DR control store (`mldr.cloud.ControlStore`).

The table is named by the topology and has a replica per region (a global table; the sandbox
keeps two on its global server, copied last-writer-wins), so it stays readable while either
data region is down. Reads try each replica in order. Where writes go depends on how the
replicas agree (`control_state.consistency`): with multi-Region strong consistency (what
`infra/` declares) any replica, in order; with a last-writer-wins table only the write replica,
never the next one - two replicas could each accept a compare-and-set the other has not seen.
Every lease change is a conditional write on the fencing token and the holder (operation and
run); operation records are written conditionally on their `version`. Items are keyed by `pk`;
the lease is the item `lease`, the seed `infra/` and the sandbox write (`initial_lease_item`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

from mldr.cloud.aws.clients import PROBE_TIMEOUTS, ClientFactory
from mldr.cloud.aws.errors import aws_call
from mldr.cloud.calls import Timeouts
from mldr.cloud.control import Lease, Operation, Record, RecordValue
from mldr.errors import FencingConflict, MldrError, PreconditionFailed, RegionUnreachable, StaleRecord
from mldr.topology import ControlConsistency

LEASE_KEY = "lease"


def _operation_attribute(value: object) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    return {"S": str(value)}


def operation_item(operation: Operation) -> dict[str, Any]:
    return {"M": {k: _operation_attribute(v) for k, v in asdict(operation).items()}}


def operation_from_item(item: dict[str, Any]) -> Operation:
    values: dict[str, Any] = {
        k: v["BOOL"] if "BOOL" in v else int(v["N"]) if "N" in v else v["S"] for k, v in item["M"].items()
    }
    return Operation(**values)


def lease_item(lease: Lease) -> dict[str, Any]:
    return {
        "pk": {"S": LEASE_KEY},
        "active_region": {"S": lease.active_region},
        "fencing_token": {"N": str(lease.fencing_token)},
        "updated_at": {"S": lease.updated_at},
        "fenced_regions": {"L": [{"S": r} for r in lease.fenced_regions]},
        "operation": operation_item(lease.operation) if lease.operation else {"NULL": True},
        # The holder again, flat: what every conditional write compares (`Lease.holder`).
        "holder": {"S": lease.holder},
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

    def _replicas(self, timeouts: Timeouts | None, *, write: bool = False) -> Iterator[tuple[str, Any]]:
        control = self.factory.topology.control_state
        if control.consistency is ControlConsistency.STRONG:
            return self.factory.control_clients(timeouts=timeouts)
        writer = control.writer_region
        others = [r.region for r in control.replicas if r.region != writer]
        # Last-writer-wins: writes to the write replica only; reads there first, where they are
        # current, then the others (a lease read while it is down may be a moment old).
        return self.factory.control_clients(
            timeouts=timeouts, regions=[writer] if write else [writer, *others]
        )

    def _first_answering(self, call: str, *, write: bool = False, **kwargs: Any) -> dict[str, Any]:
        errors = []
        for region, client in self._replicas(self.timeouts or PROBE_TIMEOUTS, write=write):
            try:
                with aws_call(self.resource, region=region):
                    result: dict[str, Any] = getattr(client, call)(TableName=self.table, **kwargs)
                    return result
            except RegionUnreachable as exc:
                errors.append(str(exc))
        control = self.factory.topology.control_state
        if write and control.consistency is ControlConsistency.EVENTUAL:
            raise RegionUnreachable(
                f"the write replica of the control-state table ({control.writer_region}) did not answer: "
                f"{'; '.join(errors)}. The table is last-writer-wins, so lease and operation changes are "
                "written there only and wait until it answers again (README: The control state)",
                resource=self.resource,
            )
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

    def compare_and_set(self, *, expected: Lease, lease: Lease) -> Lease:
        holder = "holder = :holder"
        if not expected.holder:  # a lease seeded before the holder was written has none
            holder = f"({holder} OR attribute_not_exists(holder))"
        try:
            self._first_answering(
                "put_item",
                write=True,
                Item=lease_item(lease),
                ConditionExpression=f"fencing_token = :token AND {holder}",
                ExpressionAttributeValues={
                    ":token": {"N": str(expected.fencing_token)},
                    ":holder": {"S": expected.holder},
                },
            )
        except PreconditionFailed as exc:
            # A strongly consistent table retries on the next replica when one times out: if
            # the first had applied the write, what is stored now is exactly ours.
            if self.read_lease() == lease:
                return lease
            raise FencingConflict(
                f"the DR lease changed since it was read (fencing token {expected.fencing_token}, "
                f"holder {expected.holder or 'nobody'}): another operation or run changed it first; "
                "run `mldr status` to see who holds it"
            ) from exc
        return lease

    def put_record(self, key: str, fields: Record, *, expected_version: int | None = None) -> None:
        item = {"pk": {"S": key}, **{name: _attribute(value) for name, value in fields.items()}}
        if expected_version is None:
            self._first_answering("put_item", write=True, Item=item)
            return
        item["version"] = {"N": str(expected_version + 1)}
        try:
            self._first_answering(
                "put_item",
                write=True,
                Item=item,
                **(
                    {"ConditionExpression": "attribute_not_exists(version)"}
                    if expected_version == 0
                    else {
                        "ConditionExpression": "version = :version",
                        "ExpressionAttributeValues": {":version": {"N": str(expected_version)}},
                    }
                ),
            )
        except PreconditionFailed as exc:
            stored = self.get_record(key)
            if stored == _record(item):  # our own write, applied by a replica that then timed out
                return
            now = stored.get("version", "?") if stored else "deleted"
            raise StaleRecord(
                f"record {key} was saved by another writer since this one read it "
                f"(expected version {expected_version}, stored version {now})"
            ) from exc

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
        # this serves `mldr history` and the dashboard, not a runbook step. The first replica
        # that answers, with the probe timeouts of every other call (not botocore's: 11 s).
        errors = []
        for region, client in self._replicas(self.timeouts or PROBE_TIMEOUTS):
            out = []
            try:
                with aws_call(self.resource, region=region):
                    pages = client.get_paginator("scan").paginate(
                        TableName=self.table,
                        FilterExpression="begins_with(pk, :prefix)",
                        ExpressionAttributeValues={":prefix": {"S": prefix}},
                    )
                    for page in pages:
                        out += [_record(item) for item in page.get("Items", [])]
                return out
            except RegionUnreachable as exc:
                errors.append(str(exc))
        raise RegionUnreachable(
            "no replica of the control-state table answered: " + "; ".join(errors), resource=self.resource
        )
