"""Point-in-time restore against the sandbox: exactly the earlier state, in both regions, with
nothing deleted for good; undone by restoring to the moment before; beside the live data with
--into-prefix; refused while another operation holds the DR lease; resumed after a crash."""

from __future__ import annotations

import base64
import hashlib
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from mldr.actions import fencing
from mldr.cloud.aws.clients import ClientFactory
from mldr.cloud.aws.cloud import AwsCloud
from mldr.cloud.control import Operation, now_iso
from mldr.errors import LeaseHeld, SimulatedCrash
from mldr.runbooks.engine import CRASH_AFTER_ENV, OperationRecord, OperationStatus
from mldr.runbooks.operations import execute, open_operation
from mldr.runbooks.params import Mode, OperationParams, RestoreTarget
from mldr.sandbox.manager import Sandbox
from mldr.topology import Topology, load_topology
from tests.admin import admin_factory

pytestmark = pytest.mark.sandbox

DATASET = "training-data"


@pytest.fixture
def topology(sandbox: Sandbox) -> Topology:
    return load_topology(use_airflow=False)


@pytest.fixture
def factory(topology: Topology) -> ClientFactory:
    return ClientFactory.from_environment(topology)


@pytest.fixture(autouse=True)
def no_operation_left(topology: Topology, factory: ClientFactory) -> Iterator[None]:
    """A test that fails mid-restore leaves its operation holding the DR lease (resumable, by
    design): abort it, so the tests after it in the shared sandbox start clean."""
    yield
    from mldr.runbooks.abort import abort

    cloud = AwsCloud(factory)
    op = cloud.control().read_lease().operation
    if op is not None and op.kind in ("restore", "rollback"):
        abort(
            topology, cloud, operation_id=op.id, reason="test cleanup after a failure", requested_by="pytest"
        )


def _params(topology: Topology, target: RestoreTarget, **extra: Any) -> OperationParams:
    return OperationParams(
        kind="restore",
        target_region=topology.primary_region,
        mode=Mode.PLANNED,
        reason="integration test of the restore",
        requested_by="pytest",
        require_approval=False,
        restore=target,
        **extra,
    )


def restore(
    topology: Topology, factory: ClientFactory, target: RestoreTarget, **extra: Any
) -> OperationRecord:
    ctx = open_operation(topology, AwsCloud(factory), _params(topology, target, **extra))
    return execute(ctx)


def state(factory: ClientFactory, topology: Topology, region: str, prefix: str) -> dict[str, str]:
    """Every current key under `prefix` with the SHA-256 of its bytes."""
    s3 = factory.client("s3", region)
    bucket = topology.dataset(DATASET).buckets[region]
    out = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            try:
                body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            except s3.exceptions.NoSuchKey:
                continue  # deleted (a replicated delete marker) between the listing and the read
            out[obj["Key"]] = hashlib.sha256(body).hexdigest()
    return out


def versions(factory: ClientFactory, topology: Topology, region: str, prefix: str) -> set[str]:
    s3 = factory.client("s3", region)
    bucket = topology.dataset(DATASET).buckets[region]
    out = set()
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        out |= {f"{v['Key']}@{v['VersionId']}" for v in page.get("Versions", [])}
        out |= {f"{m['Key']}@{m['VersionId']}" for m in page.get("DeleteMarkers", [])}
    return out


def wait_for(
    factory: ClientFactory, topology: Topology, region: str, prefix: str, expected: dict[str, str]
) -> None:
    deadline = time.monotonic() + 30
    while (have := state(factory, topology, region, prefix)) != expected:
        if time.monotonic() > deadline:
            missing = sorted(set(expected) ^ set(have))[:5]
            raise AssertionError(f"{region} did not reach the expected state in 30s; differing: {missing}")
        time.sleep(0.3)


def _tick() -> float:
    """A moment between two batches: stores keep a version's time to the second."""
    time.sleep(1.1)
    moment = time.time()
    time.sleep(1.1)
    return moment


def two_batches(
    factory: ClientFactory, topology: Topology, prefix: str
) -> tuple[float, dict[str, str], dict[str, str]]:
    """Batch one, a moment, batch two (overwrites, deletes, new keys, a same-size edit)."""
    primary = topology.primary_region
    s3 = factory.client("s3", primary)
    bucket = topology.dataset(DATASET).buckets[primary]
    for i in range(12):
        s3.put_object(Bucket=bucket, Key=f"{prefix}/k{i:02d}", Body=f"first {i}".encode() * 20)
    s3.delete_object(Bucket=bucket, Key=f"{prefix}/k11")  # deleted before the moment: stays deleted
    moment = _tick()
    before = state(factory, topology, primary, prefix)
    for i in range(4):  # overwritten
        s3.put_object(Bucket=bucket, Key=f"{prefix}/k{i:02d}", Body=f"second {i} longer".encode() * 30)
    s3.put_object(Bucket=bucket, Key=f"{prefix}/k04", Body=f"FIRST {4}".encode() * 20)  # same size, new bytes
    for i in (5, 6):  # deleted
        s3.delete_object(Bucket=bucket, Key=f"{prefix}/k{i:02d}")
    for i in range(3):  # new
        s3.put_object(Bucket=bucket, Key=f"{prefix}/new{i}", Body=os.urandom(64))
    s3.put_object(Bucket=bucket, Key=f"{prefix}/k11", Body=b"back again")  # re-created after the moment
    after = state(factory, topology, primary, prefix)
    assert before != after and len(before) == 11 and len(after) == 13
    return moment, before, after


def test_a_restore_brings_back_exactly_the_earlier_state_and_can_be_undone(
    topology: Topology, factory: ClientFactory
) -> None:
    prefix = f"pitr-{uuid.uuid4().hex[:8]}"
    moment, before, after = two_batches(factory, topology, prefix)
    for region in topology.region_names:
        wait_for(factory, topology, region, prefix, after)
    versions_before = versions(factory, topology, topology.primary_region, prefix)

    dry = restore(topology, factory, RestoreTarget(dataset=DATASET, at=moment, prefix=prefix), dry_run=True)
    assert dry.status is OperationStatus.PLANNED
    plan = dry.steps["restore_preflight"].result
    # k00-k04 revert (k04: the same-size edit), k05/k06 come back, new0-2 and k11 get delete markers
    assert (plan["to_revert"], plan["to_delete"], plan["unchanged"]) == (7, 4, 4)
    assert state(factory, topology, topology.primary_region, prefix) == after  # a dry run changes nothing

    record = restore(topology, factory, RestoreTarget(dataset=DATASET, at=moment, prefix=prefix))
    assert record.status is OperationStatus.COMPLETED, record.message
    applied = record.steps["restore_apply"].result
    assert (applied["reverted"], applied["deleted"]) == (7, 4)
    for region in topology.region_names:  # exactly the earlier state, replicated onward
        wait_for(factory, topology, region, prefix, before)
    versions_after = versions(factory, topology, topology.primary_region, prefix)
    assert versions_before < versions_after  # nothing deleted for good: the history only grows

    undo_at = record.created_epoch
    undone = restore(topology, factory, RestoreTarget(dataset=DATASET, at=undo_at, prefix=prefix))
    assert undone.status is OperationStatus.COMPLETED, undone.message
    for region in topology.region_names:
        wait_for(factory, topology, region, prefix, after)
    assert versions_after < versions(factory, topology, topology.primary_region, prefix)


def test_into_prefix_restores_beside_the_live_data(topology: Topology, factory: ClientFactory) -> None:
    prefix = f"pitr-{uuid.uuid4().hex[:8]}"
    moment, before, after = two_batches(factory, topology, prefix)
    into = f"restored-{prefix}"
    target = RestoreTarget(dataset=DATASET, at=moment, prefix=prefix, into_prefix=into)
    record = restore(topology, factory, target)
    assert record.status is OperationStatus.COMPLETED, record.message
    primary = topology.primary_region
    assert state(factory, topology, primary, prefix) == after  # the live keys are untouched
    beside = {k.replace(into, prefix, 1): v for k, v in state(factory, topology, primary, into).items()}
    assert beside == before


def test_a_restore_is_refused_while_another_operation_holds_the_lease(
    topology: Topology, factory: ClientFactory
) -> None:
    prefix = f"pitr-{uuid.uuid4().hex[:8]}"
    moment, _, after = two_batches(factory, topology, prefix)
    control = AwsCloud(factory).control()
    region = topology.primary_region
    holder = Operation(
        id="failover-held-by-test",
        kind="failover",
        source=region,
        target=topology.other_region(region),
        mode="planned",
        started_by="pytest",
        reason="holding the lease",
        started_at=now_iso(),
    )
    fencing.take(control, holder)
    try:
        with pytest.raises(LeaseHeld, match="failover-held-by-test"):
            restore(topology, factory, RestoreTarget(dataset=DATASET, at=moment, prefix=prefix))
    finally:
        fencing.release(control, holder.id)
    assert state(factory, topology, region, prefix) == after


def test_a_crashed_restore_resumes_and_blocks_a_failover_meanwhile(
    topology: Topology, factory: ClientFactory
) -> None:
    prefix = f"pitr-{uuid.uuid4().hex[:8]}"
    moment, before, _ = two_batches(factory, topology, prefix)
    cloud = AwsCloud(factory)
    ctx = open_operation(
        topology, cloud, _params(topology, RestoreTarget(dataset=DATASET, at=moment, prefix=prefix))
    )
    os.environ[CRASH_AFTER_ENV] = "in_place_lease"
    try:
        with pytest.raises(SimulatedCrash):
            execute(ctx)
    finally:
        del os.environ[CRASH_AFTER_ENV]
    failover = OperationParams(
        kind="failover",
        target_region=topology.other_region(topology.primary_region),
        mode=Mode.PLANNED,
        reason="failover during a restore",
        requested_by="pytest",
        require_approval=False,
    )
    with pytest.raises(LeaseHeld, match=ctx.record.id):
        open_operation(topology, cloud, failover)
    resumed = open_operation(
        topology,
        cloud,
        _params(topology, RestoreTarget(dataset=DATASET, at=moment, prefix=prefix)),
        operation_id=ctx.record.id,
        resume=True,
    )
    assert execute(resumed).status is OperationStatus.COMPLETED
    assert state(factory, topology, topology.primary_region, prefix) == before
    assert cloud.control().read_lease().operation is None


def _serves(topology: Topology, region: str) -> str | None:
    from mldr import http
    from mldr.ml.golden import golden_set

    url = topology.region(region).endpoint_url.rstrip("/") + "/predict"
    try:
        return str(http.post(url, json={"instances": golden_set()}, timeout=5.0).json()["model_version"])
    except Exception:  # not serving yet
        return None


def test_a_model_rollback_serves_the_version_of_before_with_its_recovery_point_back(
    topology: Topology, factory: ClientFactory
) -> None:
    import dataclasses

    from mldr.ml import registry
    from mldr.runbooks.params import RollbackTarget

    region = topology.primary_region
    s3 = factory.client("s3", region)
    artifacts = topology.dataset(registry.ARTIFACTS_DATASET).buckets[region]
    model = registry.DEFAULT_MODEL_NAME
    good = registry.read_current(s3, bucket=artifacts, model_name=model, region=region)
    assert good is not None
    manifest = registry.read_manifest(s3, bucket=artifacts, model_name=model, version=good, region=region)
    moment = _tick()
    # A bad run registers a new version (the same estimator: it loads, it is just not the one
    # to serve), overwrites the good version's training snapshot and deletes its feature snapshot.
    bad = f"{good}-bad-{uuid.uuid4().hex[:4]}"
    metadata = registry.read_metadata(s3, bucket=artifacts, version=good, model_name=model, region=region)
    registry.write_metadata(
        s3, bucket=artifacts, metadata=dataclasses.replace(metadata, version=bad), region=region
    )
    registry.write_current(s3, bucket=artifacts, version=bad, model_name=model, region=region)
    snapshot = manifest.training_snapshot
    snapshot_bucket = topology.dataset(snapshot.dataset).buckets[region]
    s3.put_object(Bucket=snapshot_bucket, Key=snapshot.key, Body=b"garbage from a bad run")
    assert manifest.feature_snapshot is not None
    features_bucket = topology.dataset(manifest.feature_snapshot.dataset).buckets[region]
    s3.delete_object(Bucket=features_bucket, Key=manifest.feature_snapshot.key)
    deadline = time.monotonic() + 30
    while _serves(topology, region) != bad:
        assert time.monotonic() < deadline, "the inference server did not pick up the bad version"
        time.sleep(0.5)

    params = OperationParams(
        kind="rollback",
        target_region=region,
        mode=Mode.PLANNED,
        reason="integration test of a model rollback",
        requested_by="pytest",
        require_approval=False,
        rollback=RollbackTarget(model=model, at=moment),
    )
    record = execute(open_operation(topology, AwsCloud(factory), params))
    assert record.status is OperationStatus.COMPLETED, record.message
    planned = record.steps["rollback_preflight"].result
    assert planned["version"] == good and planned["serving"] == bad
    assert sorted(planned["bring_back"]) == sorted(
        [
            f"{snapshot.dataset}/{snapshot.key}",
            f"{manifest.feature_snapshot.dataset}/{manifest.feature_snapshot.key}",
        ]
    )
    assert record.steps["rollback_verify"].result["serving"] == {r: good for r in topology.region_names}

    def digests(r: str) -> list[str]:
        out = []
        for ref in manifest.refs:
            bucket = topology.dataset(ref.dataset).buckets[r]
            try:
                body = factory.client("s3", r).get_object(Bucket=bucket, Key=ref.key)["Body"].read()
            except Exception:  # not replicated yet
                return []
            out.append(hashlib.sha256(body).hexdigest())
        return out

    expected = [ref.sha256 for ref in manifest.refs]
    for r in topology.region_names:  # the recovery point is whole again, byte for byte, in both regions
        deadline = time.monotonic() + 30
        while digests(r) != expected:
            assert time.monotonic() < deadline, f"the recovery point of {good} is not whole in {r}"
            time.sleep(0.5)


def test_versions_come_back_into_a_bucket_under_object_lock(topology: Topology) -> None:
    """Model artifacts under Object Lock (a default retention on the bucket): the restore's and the
    rollback's server-side copies and delete markers are new versions, which S3 accepts there -
    CopyObject carries no body, so no Content-MD5 - and the lock is read from the bucket."""
    region = topology.primary_region
    factory = admin_factory(topology)  # a bucket of the test's own, outside the DR role's policy
    s3 = factory.client("s3", region)
    bucket = f"mldr-locked-{uuid.uuid4().hex[:8]}"
    kwargs: dict[str, Any] = {"Bucket": bucket, "ObjectLockEnabledForBucket": True}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**kwargs)
    s3.put_object_lock_configuration(
        Bucket=bucket,
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 1}},
        },
    )
    store = AwsCloud(factory).objects(region)
    assert store.object_lock_days(bucket) == 1
    good = b"the good model"
    first = store.put(bucket, "models/m/model.pkl", good)
    store.put(bucket, "models/m/model.pkl", b"a bad run's model")
    assert first is not None
    copied = store.copy_version(bucket, "models/m/model.pkl", first, to_key="models/m/model.pkl")
    assert copied.sha256 == base64.b64encode(hashlib.sha256(good).digest()).decode()
    assert store.get(bucket, "models/m/model.pkl").body == good
    store.delete(bucket, "models/m/model.pkl")  # a delete marker: allowed under a lock
    assert len(list(store.versions(bucket, prefix="models/"))) == 4, "every version kept"
