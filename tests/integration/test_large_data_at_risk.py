"""An unplanned failover with thousands of unreplicated keys: every record it keeps in the DR
control-state table stays under DynamoDB's 400 KB item limit (the sandbox's table enforces it,
as AWS does), the full list of what was at risk is in S3, and after heal and failback every key
is in both regions. Used to die with "Item size has exceeded the maximum allowed size" while the
primary was down - exactly when a DR tool is needed."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from mldr.cloud.aws.clients import ClientFactory
from mldr.cloud.aws.cloud import AwsCloud
from mldr.runbooks import failover
from mldr.runbooks.at_risk import DataAtRisk, load_full_list
from mldr.runbooks.engine import OperationStatus
from mldr.sandbox.manager import Sandbox
from mldr.topology import Topology
from tests.integration import test_failover as base
from tests.integration.test_failover import lease, run

pytestmark = [pytest.mark.sandbox, pytest.mark.slow, pytest.mark.heavy]

# the failover tests' fixtures: each test starts and ends with the primary active, no fault left
topology, factory, on_primary = base.topology, base.factory, base.on_primary

AT_RISK = 5_000
KEY_LENGTH = 200
ITEM_LIMIT = 400 * 1024  # DynamoDB's maximum item size


@pytest.fixture
def tag(topology: Topology, factory: ClientFactory) -> Iterator[str]:
    """The prefix of the test's keys. Every version under it is deleted for good afterwards, in
    both regions: other tests read every object of the dataset buckets. (Requested before
    `on_primary`, so it is torn down after it: the regions are healed by then.)"""
    prefix = f"many-{uuid.uuid4().hex[:8]}"
    yield prefix
    for region in topology.region_names:
        s3 = factory.client("s3", region)
        for dataset in topology.datasets:
            bucket = dataset.buckets[region]
            versions = [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for page in s3.get_paginator("list_object_versions").paginate(
                    Bucket=bucket, Prefix=f"{prefix}/"
                )
                for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
            ]
            for start in range(0, len(versions), 1000):
                s3.delete_objects(
                    Bucket=bucket, Delete={"Objects": versions[start : start + 1000], "Quiet": True}
                )


def _key(tag: str, i: int) -> str:
    head = f"{tag}/{i:05d}-"
    return head + "k" * (KEY_LENGTH - len(head))


def write_many(factory: ClientFactory, topology: Topology, region: str, tag: str, n: int) -> dict[str, str]:
    """`n` small objects with KEY_LENGTH-character keys, written in parallel; {dataset/key: sha256}."""
    s3 = factory.client("s3", region)

    def put(i: int) -> tuple[str, str]:
        dataset = topology.datasets[i % len(topology.datasets)]
        body = f"{i}:".encode() + os.urandom(16)
        s3.put_object(Bucket=dataset.buckets[region], Key=_key(tag, i), Body=body)
        return f"{dataset.name}/{_key(tag, i)}", hashlib.sha256(body).hexdigest()

    with ThreadPoolExecutor(max_workers=16) as pool:
        return dict(pool.map(put, range(n)))


def checksums(factory: ClientFactory, topology: Topology, region: str, tag: str) -> dict[str, str]:
    """Every current key under `tag/` in the region's dataset buckets, with the SHA-256 of its bytes."""
    s3 = factory.client("s3", region)
    listed = [
        (dataset, obj["Key"])
        for dataset in topology.datasets
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=dataset.buckets[region], Prefix=f"{tag}/"
        )
        for obj in page.get("Contents", [])
    ]

    def digest(item: tuple[Any, str]) -> tuple[str, str]:
        dataset, key = item
        body = s3.get_object(Bucket=dataset.buckets[region], Key=key)["Body"].read()
        return f"{dataset.name}/{key}", hashlib.sha256(body).hexdigest()

    with ThreadPoolExecutor(max_workers=16) as pool:
        return dict(pool.map(digest, listed))


def item_sizes(factory: ClientFactory, topology: Topology) -> dict[str, int]:
    """Every item of the control-state table with its size as DynamoDB counts it (names + values)."""
    table = topology.control_state.table
    _, client = next(factory.control_clients())
    sizes = {}
    for page in client.get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            sizes[item["pk"]["S"]] = sum(
                len(name.encode()) + len(json.dumps(value).encode()) for name, value in item.items()
            )
    return sizes


def test_unplanned_failover_with_thousands_of_keys_at_risk_keeps_records_under_the_item_limit(
    tag: str, topology: Topology, factory: ClientFactory, sandbox: Sandbox, on_primary: None
) -> None:
    primary, secondary = topology.primary_region, topology.secondary_region
    sandbox.replication("pause")
    written = write_many(factory, topology, primary, tag, AT_RISK)  # {dataset/key: sha256 of its bytes}
    sandbox.region_outage(primary)

    record = run(topology, factory, "failover", secondary, "unplanned")

    assert record.status is OperationStatus.COMPLETED, record.message
    assert lease(factory).active_region == secondary
    drained = record.result(failover.drain)
    assert isinstance(drained, failover.NotDrained)
    risk = drained.data_at_risk
    assert isinstance(risk, DataAtRisk)
    assert risk.objects == AT_RISK and len(risk.first_keys) < AT_RISK
    # the full list is in S3, in the region that answers (the primary is down), and names every key
    assert risk.full_list is not None and risk.full_list.regions == (secondary,)
    assert risk.full_list.uris[0] in record.message, "the summary says where the full list is"
    listed = load_full_list(AwsCloud(factory), topology, risk)
    expected = {
        f"{topology.dataset(name.split('/', 1)[0]).buckets[primary]}/{name.split('/', 1)[1]}"
        for name in written
    }
    assert {f"{k.bucket}/{k.key}" for k in listed} == expected
    # every item of the control-state table fits: the operation record and the queued audit events
    sizes = item_sizes(factory, topology)
    assert sizes[f"op#{record.id}"] < ITEM_LIMIT
    queued = {k: v for k, v in sizes.items() if k.startswith("audit-pending")}
    assert len(queued) > 1, "events for the silent primary are queued, one item each"
    assert max(sizes.values()) < ITEM_LIMIT, max(sizes.items(), key=lambda kv: kv[1])

    # heal, fail back: all 5,000 are in both regions, byte for byte. The healed old primary's
    # backlog does not replicate into the active region (the failover's replica guard refuses it:
    # it would overwrite what the active region took since); the failback's resync carries it.
    sandbox.heal(primary)
    sandbox.replication("resume")
    back = run(topology, factory, "failback", primary)
    assert back.status is OperationStatus.COMPLETED, back.message
    for region in (primary, secondary):
        have = checksums(factory, topology, region, tag)
        assert len(have) == AT_RISK, region
        assert have == written, region
    # the queued audit events were delivered to the primary and their items removed
    assert not [k for k in item_sizes(factory, topology) if k.startswith("audit-pending#" + primary + "#")]
