"""The control-state table is a global table with two replicas, copied asynchronously, last
writer wins (the sandbox models it: `mldr.sandbox.control_replicas`). A compare-and-set that
moves on to the next replica when the first does not answer could win there too - two
failovers both holding the lease. Lease and record writes go to the write replica only, so
exactly one wins. Nothing is lost: objects and checksums are counted before and after."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError

from mldr.cloud.aws.clients import ClientFactory, EnvironmentSource
from mldr.cloud.aws.cloud import AwsCloud
from mldr.cloud.aws.dynamodb import LEASE_KEY, lease_from_item
from mldr.cloud.control import Lease
from mldr.errors import MldrError
from mldr.runbooks import failover
from mldr.runbooks.engine import OperationStatus
from mldr.runbooks.operations import execute, open_operation, run_one
from mldr.sandbox.manager import Sandbox
from mldr.topology import Topology
from tests.integration import test_failover as base
from tests.integration.test_failover import lease, params, snapshot, wait_replicated, write

# The failover tests' fixtures: the sandbox's topology, its clients, the primary active around each test.
topology, factory, on_primary = base.topology, base.factory, base.on_primary

pytestmark = pytest.mark.sandbox


class _Unreachable:
    """A client whose every call fails as a timed-out endpoint does."""

    def __getattr__(self, name: str) -> Any:
        def call(*_: Any, **__: Any) -> Any:
            raise EndpointConnectionError(endpoint_url="http://cut-off.invalid")

        return call


class CutOffFrom(EnvironmentSource):
    """This process cannot reach one replica of the control-state table (a partition)."""

    def __init__(self, region: str) -> None:
        super().__init__()
        self.region = region

    def make(self, *, service: str, region: str, conn_id: str, config: Config) -> Any:
        if service == "dynamodb" and region == self.region:
            return _Unreachable()
        return super().make(service=service, region=region, conn_id=conn_id, config=config)


def replica_leases(factory: ClientFactory) -> dict[str, Lease]:
    """The lease as each replica holds it, read from that replica alone."""
    control = factory.topology.control_state
    out = {}
    for region, client in factory.control_clients():
        item = client.get_item(TableName=control.table, Key={"pk": {"S": LEASE_KEY}}, ConsistentRead=True)
        out[region] = lease_from_item(item["Item"])
    return out


def test_two_lease_takes_against_split_replicas_exactly_one_wins(
    topology: Topology, factory: ClientFactory, sandbox: Sandbox, on_primary: None
) -> None:
    primary, secondary = topology.primary_region, topology.secondary_region
    written = write(factory, topology, primary, "split-replicas", 6)
    wait_replicated(factory, topology, written, secondary)
    before = snapshot(factory, topology, primary)
    token = lease(factory).fencing_token
    # Operator A reaches every replica; operator B, a moment later, not the first one (where
    # a compare-and-set is tried first; B's would move on to the next replica).
    a = open_operation(topology, AwsCloud(factory), params("failover", secondary))
    cut_off = ClientFactory(topology, source=CutOffFrom(topology.control_state.replicas[0].region))
    b = open_operation(topology, AwsCloud(cut_off), params("failover", secondary))
    sandbox.replication("control-split")  # the replicas stop copying each other
    won, refused = [], []
    for ctx in (a, b):
        try:
            run_one(ctx, failover.preflight)
            run_one(ctx, failover.fence)
            won.append(ctx.record.id)
        except MldrError as exc:
            refused.append(str(exc))
    assert won == [a.record.id], f"exactly one take may win; won: {won}, refused: {refused}"
    assert f"held by operation {a.record.id}" in refused[0], refused
    sandbox.replication("control-join")
    deadline = time.monotonic() + 20
    while len({(v.fencing_token, v.holder) for v in replica_leases(factory).values()}) != 1:
        assert time.monotonic() < deadline, f"replicas never converged: {replica_leases(factory)}"
        time.sleep(0.2)
    held = lease(factory)
    assert held.operation is not None and held.operation.id == a.record.id
    assert held.fencing_token == token + 1, "the token goes up once, by the one take that won"

    done = execute(a)
    assert done.status is OperationStatus.COMPLETED, done.message
    assert snapshot(factory, topology, secondary) == before, "objects or checksums changed"
