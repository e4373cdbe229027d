"""Helpers shared by the data-protection tests (verification, replication lag, their DAGs).

The sandbox is shared by the whole test session, so these tests isolate themselves: faults are
injected under a prefix of their own, and the checks look at that prefix through a copy of the
topology whose dataset `prefix` points there (`scoped`). Tests that check the whole sandbox
first wait until replication is quiet (`wait_quiet`).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from mldr.checks.replication_status import status_source
from mldr.cloud.aws.clients import ClientFactory
from mldr.cloud.aws.cloud import AwsCloud
from mldr.sandbox.manager import Sandbox
from mldr.topology import Dataset, Retention, Topology


def scoped(topology: Topology, dataset: str, prefix: str, **retention: int) -> Topology:
    """The topology with one dataset narrowed to `prefix` (and its retention policy changed)."""
    datasets: list[Dataset] = []
    for d in topology.datasets:
        if d.name == dataset:
            update: dict[str, Any] = {"prefix": prefix}
            if retention:
                update["retention"] = Retention(**{**d.retention.model_dump(), **retention})
            d = d.model_copy(update=update)
        datasets.append(d)
    return topology.model_copy(update={"datasets": datasets})


def write_topology(topology: Topology, directory: Path) -> Path:
    path = directory / f"topology-{uuid.uuid4().hex[:8]}.json"
    path.write_text(topology.to_json())
    return path


def unique_prefix(tag: str) -> str:
    return f"dp-{tag}-{uuid.uuid4().hex[:8]}/"


def wait_quiet(sandbox: Sandbox, factory: ClientFactory, topology: Topology, timeout: float = 30.0) -> None:
    """Lift every replication fault and wait until no dataset has a pending or failed version.

    Earlier tests in the session may have left faults or a backlog behind; a check of the whole
    sandbox is only meaningful once replication has caught up.
    """
    sandbox.replication("clear")
    source = status_source(topology, AwsCloud(factory))
    deadline = time.monotonic() + timeout
    open_items: list[Any] = []
    while time.monotonic() < deadline:
        open_items = [
            item
            for d in topology.datasets
            for item in source.backlog(
                region=topology.primary_region, bucket=d.buckets[topology.primary_region]
            )
            if not item.key.startswith("_mldr/")
        ]
        if not open_items:
            return
        time.sleep(0.3)
    raise AssertionError(f"replication did not catch up within {timeout}s: {open_items[:5]}")


def keys_in(client: Any, bucket: str, prefix: str = "") -> set[str]:
    out: set[str] = set()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        out.update(obj["Key"] for obj in page.get("Contents", []))
    return out


def ops_keys(factory: ClientFactory, topology: Topology) -> dict[str, set[str]]:
    """Every key in each region's ops bucket (reports, audit events)."""
    return {r: keys_in(factory.client("s3", r), topology.region(r).ops_bucket) for r in topology.region_names}


def wait_for(what: str, check: Any, timeout: float, interval: float = 0.1) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(interval)
    raise AssertionError(f"{what}: not true after {timeout}s")


def exists(client: Any, bucket: str, key: str) -> bool:
    try:
        client.head_object(Bucket=bucket, Key=key)
    except client.exceptions.ClientError:
        return False
    return True
