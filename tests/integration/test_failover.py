"""Failover and failback against the real sandbox processes. Nothing is lost: every test counts
objects and compares checksums before and after."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from mldr import http
from mldr.cloud.aws.clients import ClientFactory
from mldr.cloud.aws.cloud import AwsCloud
from mldr.cloud.control import Lease
from mldr.cloud.traffic import RouteRole
from mldr.errors import (
    ConfigurationError,
    FailoverPreconditionFailed,
    LeaseHeld,
    SimulatedCrash,
    UnknownRegion,
)
from mldr.runbooks import failback, failover
from mldr.runbooks.at_risk import DataAtRisk, load_full_list
from mldr.runbooks.audit import AuditLog
from mldr.runbooks.engine import CRASH_AFTER_ENV, OperationStatus, step_name
from mldr.runbooks.operations import execute, open_operation
from mldr.runbooks.params import Mode, OperationParams
from mldr.sandbox.manager import Sandbox, SandboxState
from mldr.topology import Topology, load_topology
from tests.sandbox_rules import expected_rule, stored_rules

pytestmark = pytest.mark.sandbox


@pytest.fixture
def topology(sandbox: Sandbox) -> Topology:
    return load_topology(use_airflow=False)


@pytest.fixture
def factory(topology: Topology) -> ClientFactory:
    return ClientFactory.from_environment(topology)


def lease(factory: ClientFactory) -> Lease:
    return AwsCloud(factory).control().read_lease()


def params(kind: str, target: str, mode: str = "planned", **extra: Any) -> OperationParams:
    return OperationParams(
        kind=kind,
        target_region=target,
        mode=Mode(mode),
        reason="integration test of the runbook",
        requested_by="pytest",
        require_approval=False,
        **extra,
    )


def run(
    topology: Topology,
    factory: ClientFactory,
    kind: str,
    target: str,
    mode: str = "planned",
    *,
    resume: str | None = None,
    **extra: Any,
):
    ctx = open_operation(
        topology,
        AwsCloud(factory),
        params(kind, target, mode, **extra),
        operation_id=resume,
        resume=resume is not None,
    )
    return execute(ctx)


def crashed_run(topology: Topology, factory: ClientFactory, kind: str, target: str, step: str) -> str:
    """Run until a crash after `step`; returns the operation's id, for an explicit resume."""
    ctx = open_operation(topology, AwsCloud(factory), params(kind, target, "planned"))
    os.environ[CRASH_AFTER_ENV] = step
    try:
        with pytest.raises(SimulatedCrash):
            execute(ctx)
    finally:
        del os.environ[CRASH_AFTER_ENV]
    return ctx.record.id


def snapshot(factory: ClientFactory, topology: Topology, region: str) -> dict[str, str]:
    """Every current key of every dataset in a region, with the SHA-256 of its bytes.

    mldr's own scratch objects under `<prefix>_mldr/` (lag canaries, drill data, autopilot
    heartbeats) are left out, as verification leaves them out: background checks of the session
    write and delete them (with delete markers that replicate a moment later), and they are no
    one's data."""
    from mldr.checks.verification.model import RESERVED_PREFIX

    out: dict[str, str] = {}
    s3 = factory.client("s3", region)
    for dataset in topology.datasets:
        bucket = dataset.buckets[region]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                if obj["Key"].startswith(dataset.prefix + RESERVED_PREFIX):
                    continue
                seen = (bucket, obj["Key"], obj["ETag"])
                if seen not in _SHA256_OF:
                    body = s3.get_object(Bucket=bucket, Key=obj["Key"], IfMatch=obj["ETag"])["Body"].read()
                    _SHA256_OF[seen] = hashlib.sha256(body).hexdigest()
                out[f"{dataset.name}/{obj['Key']}"] = _SHA256_OF[seen]
    return out


#: SHA-256 of the bytes read under (bucket, key, ETag). A key whose ETag is unchanged holds the
#: same bytes (the ETag is the content's MD5, or for SSE-KMS a digest of key, version and MD5;
#: the read is conditional on it), so a snapshot reads only what changed since the last one: the
#: session's buckets grow with every test, and reading all of them again was minutes of the suite.
_SHA256_OF: dict[tuple[str, str, str], str] = {}


def write(factory: ClientFactory, topology: Topology, region: str, prefix: str, n: int) -> dict[str, str]:
    s3 = factory.client("s3", region)
    written = {}
    for i in range(n):
        dataset = topology.datasets[i % len(topology.datasets)]
        key = f"{prefix}/{i:04d}.bin"
        body = os.urandom(64 + i)
        s3.put_object(Bucket=dataset.buckets[region], Key=key, Body=body, ChecksumAlgorithm="SHA256")
        written[f"{dataset.name}/{key}"] = hashlib.sha256(body).hexdigest()
    return written


def wait_replicated(
    factory: ClientFactory, topology: Topology, expected: dict[str, str], region: str
) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        have = snapshot(factory, topology, region)
        if all(have.get(k) == v for k, v in expected.items()):
            return
        time.sleep(0.3)
    raise AssertionError(f"not replicated to {region} within 20s")


def dns_answer(state: SandboxState) -> str:
    return str(http.get(f"{state.edge_url}/resolve").json()["answer"])


@pytest.fixture
def on_primary(topology: Topology, factory: ClientFactory, sandbox: Sandbox) -> Iterator[None]:
    """Each test starts and ends with the primary active and healthy, and no fault left."""
    assert lease(factory).active_region == topology.primary_region
    yield
    for region in topology.region_names:
        sandbox.heal(region)
    sandbox.replication("clear")
    os.environ.pop(CRASH_AFTER_ENV, None)
    current = lease(factory)
    if (
        current.operation is not None
        or current.active_region != topology.primary_region
        or current.fenced_regions
    ):
        op = current.operation
        if op is not None:  # a test left an operation unfinished: finish it first, as an operator would
            run(topology, factory, op.kind, op.target, op.mode, resume=op.id)
        ctx = open_operation(topology, AwsCloud(factory), params("failback", topology.primary_region))
        execute(ctx)
    assert lease(factory).active_region == topology.primary_region


def test_planned_failover_and_failback_lose_nothing(
    topology: Topology, factory: ClientFactory, sandbox_state: SandboxState, on_primary: None
) -> None:
    primary, secondary = topology.primary_region, topology.secondary_region
    token = lease(factory).fencing_token
    written = write(factory, topology, primary, f"planned-{uuid.uuid4().hex[:8]}", 30)
    before = snapshot(factory, topology, primary)

    record = run(topology, factory, "failover", secondary, "planned")

    assert record.status is OperationStatus.COMPLETED, record.message
    after = snapshot(factory, topology, secondary)
    assert {k: after.get(k) for k in before} == before, (
        "RPO 0: every object written before the fence is there"
    )
    assert len(before) >= len(written)
    current = lease(factory)
    assert current.active_region == secondary
    assert current.fencing_token == token + 1
    assert current.operation is None
    assert dns_answer(sandbox_state) == secondary
    with pytest.raises(factory.client("s3", primary).exceptions.ClientError, match="AccessDenied"):
        factory.client("s3", primary).put_object(
            Bucket=topology.datasets[0].buckets[primary], Key="x", Body=b"x"
        )
    assert record.result(failover.verify).served_by == secondary
    assert record.result(failover.verify).parity is True
    # protect turned replication around with the builder's rule for that direction
    for dataset in topology.datasets:
        rules = stored_rules(sandbox_state.moto[secondary], dataset.buckets[secondary])
        assert rules == [expected_rule(dataset, source=secondary, target=primary)], dataset.name
        # the old direction's rule is kept, disabled: deleted, a `pulumi up --refresh` would
        # create infra's declared configuration again, enabled, while failed over
        (old,) = stored_rules(sandbox_state.moto[primary], dataset.buckets[primary])
        assert old == {**expected_rule(dataset, source=primary, target=secondary), "Status": "Disabled"}

    # rerunning the finished failover changes nothing and says so
    again = run(topology, factory, "failover", secondary, "planned")
    assert again.status is OperationStatus.NOOP
    assert "already the active region" in again.message
    assert lease(factory).fencing_token == token + 1

    # writes while failed over, then failback: every key and checksum in both regions
    during = write(factory, topology, secondary, f"during-{uuid.uuid4().hex[:8]}", 25)
    back = run(topology, factory, "failback", primary)
    assert back.status is OperationStatus.COMPLETED, back.message
    expected = {**before, **during}
    for region in (primary, secondary):
        wait_replicated(factory, topology, expected, region)
    p, s = snapshot(factory, topology, primary), snapshot(factory, topology, secondary)
    assert {k: p.get(k) for k in expected} == expected
    assert p == s, "both regions hold the same current objects after failback"
    current = lease(factory)
    assert (current.active_region, current.fencing_token, current.fenced_regions) == (primary, token + 2, ())
    assert dns_answer(sandbox_state) == primary
    factory.client("s3", primary).put_object(
        Bucket=topology.datasets[0].buckets[primary], Key="ok.txt", Body=b"ok"
    )
    from mldr.actions.replication import direction_of

    assert direction_of(AwsCloud(factory), topology, topology.datasets[0].name) == [primary]
    # failback wrote back the rule the sandbox was provisioned with (infra/'s id and prefix)
    for dataset in topology.datasets:
        rules = stored_rules(sandbox_state.moto[primary], dataset.buckets[primary])
        assert rules == [expected_rule(dataset, source=primary, target=secondary)], dataset.name
    events = AuditLog(AwsCloud(factory), topology, AwsCloud(factory).control()).events(secondary, record.id)
    assert [e["step"] for e in events if e["event"] == "step-end"] == [step_name(s) for s in failover.STEPS]
    assert all(e.get("by") == "pytest" for e in events if e["event"] == "step-start")


def _replica_encryption(factory: ClientFactory, bucket: str, key: str, region: str) -> tuple[str, str]:
    """(key ARN, stored SHA-256) of `key` in `region`, once replication has brought it there."""
    s3 = factory.client("s3", region)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
        except s3.exceptions.ClientError:
            time.sleep(0.3)
            continue
        return str(head.get("SSEKMSKeyId")), str(head.get("ChecksumSHA256"))
    raise AssertionError(f"s3://{bucket}/{key} not replicated to {region} within 20s")


def test_sse_kms_objects_replicate_back_after_failover_and_forward_after_failback(
    topology: Topology,
    factory: ClientFactory,
    on_primary: None,
    tmp_path: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The rule protect and failback write replicates the SSE-KMS dataset buckets, as in AWS:
    each replica encrypted with its region's key; `mldr verify` then finds nothing wrong and
    says what it compared the KMS objects on (their stored SHA-256: no ETag is a content hash)."""
    from mldr.cli import main
    from tests.dp_support import scoped, write_topology

    primary, secondary = topology.primary_region, topology.secondary_region
    dataset = topology.dataset("training-data")
    prefix = f"kms-{uuid.uuid4().hex[:8]}/"
    before = snapshot(factory, topology, primary)

    assert run(topology, factory, "failover", secondary, "planned").status is OperationStatus.COMPLETED
    after_failover = write(factory, topology, secondary, f"{prefix}after-failover", 1)
    key = f"{prefix}after-failover/0000.bin"
    put = factory.client("s3", secondary).head_object(
        Bucket=dataset.buckets[secondary], Key=key, ChecksumMode="ENABLED"
    )
    assert put["SSEKMSKeyId"] == dataset.replication[secondary].kms_key_arn
    # replicated by S3 (the replicator) into the fenced old primary, before any failback resync
    assert _replica_encryption(factory, dataset.buckets[primary], key, primary) == (
        dataset.replication[primary].kms_key_arn,
        put["ChecksumSHA256"],
    )

    assert run(topology, factory, "failback", primary).status is OperationStatus.COMPLETED
    after_failback = write(factory, topology, primary, f"{prefix}after-failback", 1)
    key = f"{prefix}after-failback/0000.bin"
    put = factory.client("s3", primary).head_object(
        Bucket=dataset.buckets[primary], Key=key, ChecksumMode="ENABLED"
    )
    assert _replica_encryption(factory, dataset.buckets[secondary], key, secondary) == (
        dataset.replication[secondary].kms_key_arn,
        put["ChecksumSHA256"],
    )

    # nothing lost: every object from before and both new ones, same bytes, in both regions
    expected = {**before, **after_failover, **after_failback}
    for region in (primary, secondary):
        wait_replicated(factory, topology, expected, region)
    p, s = snapshot(factory, topology, primary), snapshot(factory, topology, secondary)
    assert {k: p.get(k) for k in expected} == expected and {k: s.get(k) for k in expected} == expected

    monkeypatch.setenv("MLDR_TOPOLOGY", str(write_topology(scoped(topology, dataset.name, prefix), tmp_path)))
    code = main(["verify", "--dataset", dataset.name, "--sample", "2", "--json", "--no-report"])
    doc = json.loads(capsys.readouterr().out)
    [d] = doc["datasets"]
    assert code == 0 and d["ok"], json.dumps(d, indent=1)[:3000]
    assert d["objects_checked"] == 2
    assert d["basis"] == {"sha256": 2}, "SSE-KMS objects are compared on their stored SHA-256, never ETag"
    assert sorted(d["basis_keys"]["sha256"]) == sorted(k.split("/", 1)[1] for k in expected if prefix in k)


def test_unplanned_failover_during_outage_reports_exact_data_at_risk(
    topology: Topology,
    factory: ClientFactory,
    sandbox: Sandbox,
    sandbox_state: SandboxState,
    on_primary: None,
) -> None:
    primary, secondary = topology.primary_region, topology.secondary_region
    base = write(factory, topology, primary, f"base-{uuid.uuid4().hex[:8]}", 6)
    wait_replicated(factory, topology, base, secondary)
    sandbox.replication("pause")
    tag = f"unrepl-{uuid.uuid4().hex[:8]}"
    at_risk = write(factory, topology, primary, tag, 7)
    # S3 marks a version PENDING as it acknowledges the write: the region may stop right away.
    sandbox.region_outage(primary)

    started = time.monotonic()
    record = run(topology, factory, "failover", secondary, "unplanned")
    took = time.monotonic() - started

    assert record.status is OperationStatus.COMPLETED, record.message
    drained = record.result(failover.drain)
    assert isinstance(drained, failover.NotDrained)
    risk = drained.data_at_risk
    assert isinstance(risk, DataAtRisk) and risk.measured is True
    reported = {f"{k.bucket}/{k.key}" for k in load_full_list(AwsCloud(factory), topology, risk)}
    expected = set()
    for name in at_risk:
        dataset_name, key = name.split("/", 1)
        expected.add(f"{topology.dataset(dataset_name).buckets[primary]}/{key}")
    assert reported == expected
    assert risk.objects == 7 and risk.bytes == sum(64 + i for i in range(7))
    assert lease(factory).active_region == secondary
    assert dns_answer(sandbox_state) == secondary
    assert record.result(failover.verify).served_by == secondary
    assert took < 45, f"unplanned failover took {took:.1f}s"

    # heal, fail back: the data at risk survives in the primary and reaches the secondary too
    sandbox.heal(primary)
    back = run(topology, factory, "failback", primary)
    assert back.status is OperationStatus.COMPLETED, back.message
    p, s = snapshot(factory, topology, primary), snapshot(factory, topology, secondary)
    for name, digest in {**base, **at_risk}.items():
        assert p.get(name) == digest and s.get(name) == digest, name


def _crash_and_resume(
    topology: Topology, factory: ClientFactory, state: SandboxState, kind: str, target: str, step: str
) -> None:
    token = lease(factory).fencing_token
    crashed = crashed_run(topology, factory, kind, target, step)
    assert lease(factory).active_region in topology.region_names, "exactly one active region at every point"
    record = run(topology, factory, kind, target, "planned", resume=crashed)  # resumes where it stopped
    # A crash after the last step leaves nothing to resume: the rerun finds the work done.
    expected = (
        {OperationStatus.COMPLETED, OperationStatus.NOOP}
        if step == step_name(failover.record)
        else {OperationStatus.COMPLETED}
    )
    assert record.status in expected, f"{kind}, crash after {step}: {record.message}"
    done = lease(factory)
    assert (done.active_region, done.operation) == (target, None), f"{kind}, crash after {step}"
    assert done.fencing_token == token + 1, f"{kind}, crash after {step}: the token must go up exactly once"
    assert dns_answer(state) == target
    other = topology.other_region(target)
    if kind == "failover":
        s3 = factory.client("s3", other)
        policy = json.loads(s3.get_bucket_policy(Bucket=topology.datasets[0].buckets[other])["Policy"])
        assert [st["Sid"] for st in policy["Statement"]].count("MldrWriteFence") == 1, "one fence, not two"


def test_crash_after_each_failover_step_converges(
    topology: Topology, factory: ClientFactory, sandbox_state: SandboxState, on_primary: None
) -> None:
    # Each iteration: one crashed run, its resumption, and a failback to the primary (a failover
    # back to the fenced old primary is refused: see test_a_failover_to_a_fenced_region_is_refused).
    primary, target = topology.primary_region, topology.secondary_region
    for step in [step_name(s) for s in failover.STEPS]:
        _crash_and_resume(topology, factory, sandbox_state, "failover", target, step)
        back = run(topology, factory, "failback", primary)
        assert back.status is OperationStatus.COMPLETED, (
            f"failback after a crash after {step}: {back.message}"
        )


@pytest.mark.parametrize(
    "step",
    [
        step_name(s)
        for s in (
            failback.failback_fence,
            failback.resync,
            failback.freeze,
            failback.failback_switch,
            failback.failback_protect,
        )
    ],
)
def test_crash_during_failback_converges(
    topology: Topology, factory: ClientFactory, sandbox_state: SandboxState, on_primary: None, step: str
) -> None:
    run(topology, factory, "failover", topology.secondary_region, "planned")
    _crash_and_resume(topology, factory, sandbox_state, "failback", topology.primary_region, step)
    assert lease(factory).fenced_regions == ()


def test_a_dry_run_or_another_call_never_runs_the_operation_in_flight(
    topology: Topology, factory: ClientFactory, sandbox_state: SandboxState, on_primary: None
) -> None:
    """A planned failover crashed after its drain. A dry run - or an unplanned failover - of the
    same target used to join it and finish it (DNS moved, replication reversed, no approval)."""
    primary, secondary = topology.primary_region, topology.secondary_region
    crashed = crashed_run(topology, factory, "failover", secondary, step_name(failover.drain))
    held = lease(factory)
    assert held.operation is not None and held.operation.id == crashed
    for mode, extra in (("unplanned", {"dry_run": True}), ("planned", {"dry_run": True}), ("unplanned", {})):
        with pytest.raises(LeaseHeld, match=f"held by operation {crashed}.*--resume {crashed}"):
            run(topology, factory, "failover", secondary, mode, **extra)
    with pytest.raises(ConfigurationError, match="a dry run changes nothing, so it cannot resume"):
        run(topology, factory, "failover", secondary, "planned", resume=crashed, dry_run=True)
    with pytest.raises(ConfigurationError, match=r"mode unplanned \(it was started with planned\)"):
        run(topology, factory, "failover", secondary, "unplanned", resume=crashed)
    after = lease(factory)
    assert (after.active_region, after.fencing_token, after.operation) == (
        primary,
        held.fencing_token,
        held.operation,
    ), "nothing may change while another call holds the lease"
    assert dns_answer(sandbox_state) == primary
    # The explicit resume finishes it, and failback brings the primary back.
    done = run(topology, factory, "failover", secondary, "planned", resume=crashed)
    assert done.status is OperationStatus.COMPLETED, done.message
    back = run(topology, factory, "failback", primary)
    assert back.status is OperationStatus.COMPLETED, back.message


def test_a_failover_to_a_fenced_region_is_refused(
    topology: Topology, factory: ClientFactory, sandbox_state: SandboxState, on_primary: None
) -> None:
    """After a planned failover the old primary is fenced. A planned failover back to it used to
    print "completed ... RPO 0" with both regions refusing writes; the way back is the failback."""
    primary, secondary = topology.primary_region, topology.secondary_region
    assert run(topology, factory, "failover", secondary, "planned").status is OperationStatus.COMPLETED
    held = lease(factory)
    assert held.fenced_regions == (primary,)
    for mode in ("planned", "unplanned"):
        with pytest.raises(FailoverPreconditionFailed, match=f"{primary} is write-fenced.*mldr failback"):
            run(topology, factory, "failover", primary, mode)
    after = lease(factory)
    assert (after.active_region, after.fencing_token, after.fenced_regions) == (
        secondary,
        held.fencing_token,
        (primary,),
    ), "a refused failover changes nothing"
    secondary_store = AwsCloud(factory).objects(secondary)
    assert not any(secondary_store.is_fenced(d.buckets[secondary]) for d in topology.datasets)
    assert dns_answer(sandbox_state) == secondary
    back = run(topology, factory, "failback", primary)
    assert back.status is OperationStatus.COMPLETED, back.message


def test_two_failovers_at_once_exactly_one_proceeds(
    topology: Topology, factory: ClientFactory, on_primary: None
) -> None:
    secondary = topology.secondary_region
    token = lease(factory).fencing_token
    outcomes: list[object] = []
    barrier = threading.Barrier(2)

    def attempt(who: str) -> None:
        ctx = open_operation(
            topology,
            AwsCloud.from_environment(topology),
            OperationParams(
                kind="failover",
                target_region=secondary,
                mode=Mode.PLANNED,
                reason=f"concurrency test by {who}",
                requested_by=who,
                require_approval=False,
            ),
        )
        barrier.wait()
        try:
            outcomes.append(execute(ctx))
        except LeaseHeld as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=attempt, args=(f"operator-{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    completed = [
        o for o in outcomes if not isinstance(o, Exception) and o.status is OperationStatus.COMPLETED
    ]
    refused = [
        o
        for o in outcomes
        if isinstance(o, LeaseHeld) or (not isinstance(o, Exception) and o.status is OperationStatus.NOOP)
    ]
    assert len(completed) == 1 and len(refused) == 1, outcomes
    if isinstance(refused[0], LeaseHeld):
        assert "held by operation" in str(refused[0]) or "took the DR lease first" in str(refused[0])
        assert "operator-" in str(refused[0])
    assert lease(factory).fencing_token == token + 1


def test_bad_input_changes_nothing(
    topology: Topology,
    factory: ClientFactory,
    sandbox: Sandbox,
    sandbox_state: SandboxState,
    on_primary: None,
) -> None:
    from mldr.cli import main

    primary, secondary = topology.primary_region, topology.secondary_region
    before = lease(factory)
    assert (
        main(["failover", "--to", "eu-west-1", "--mode", "planned", "--reason", "unknown region", "--yes"])
        == 2
    )
    assert main(["failover", "--to", secondary, "--mode", "planned", "--reason", "short", "--yes"]) == 2
    with pytest.raises(UnknownRegion):
        open_operation(topology, AwsCloud(factory), params("failover", "eu-west-1"))
    with pytest.raises(ConfigurationError, match="at least 10 characters"):
        from mldr.runbooks.params import validate_reason

        validate_reason("too short")
    # failover to the region that is already active: says so, exit 0, nothing changes
    noop = run(topology, factory, "failover", primary, "planned")
    assert noop.status is OperationStatus.NOOP and "already the active region" in noop.message
    assert (
        main(["failover", "--to", primary, "--mode", "planned", "--reason", "already active test", "--yes"])
        == 0
    )
    # planned mode with the source down: refused, suggests unplanned
    sandbox.region_outage(primary)
    try:
        with pytest.raises(FailoverPreconditionFailed, match="unplanned"):
            run(topology, factory, "failover", secondary, "planned")
    finally:
        sandbox.heal(primary)
    after = lease(factory)
    assert (after.active_region, after.fencing_token, after.operation) == (
        before.active_region,
        before.fencing_token,
        None,
    )
    routes = AwsCloud(factory).traffic().routes()
    assert [r.region for r in routes if r.role is RouteRole.PRIMARY] == [primary], (
        "the failover records were not touched"
    )
    # the outage itself made the health check fail over; once healed the answer comes back
    deadline = time.monotonic() + 15
    while dns_answer(sandbox_state) != primary:
        assert time.monotonic() < deadline, "the DNS answer did not return to the primary after heal"
        time.sleep(0.2)
    s3 = factory.client("s3", primary)
    with pytest.raises(s3.exceptions.ClientError, match="NoSuchBucketPolicy"):
        s3.get_bucket_policy(Bucket=topology.datasets[0].buckets[primary])


def _pilot_light(topology: Topology) -> Topology:
    """The same topology with standby capacity 0 in both regions: a pilot light."""
    regions = {
        name: region.model_copy(update={"compute": region.compute.model_copy(update={"standby_capacity": 0})})
        for name, region in topology.regions.items()
    }
    return topology.model_copy(update={"regions": regions})


def _set_scale_up(factory: ClientFactory, topology: Topology, seconds: dict[str, str]) -> dict[str, str]:
    """Set regions' start-up time (the sandbox's ECS service tag); returns the values they had.
    As the sandbox's admin: a setting of the sandbox, not something the DR role may change."""
    from mldr.sandbox.capacity import SCALE_UP_TAG
    from tests.admin import admin_factory

    before = {}
    admin = admin_factory(topology)
    for region, value in seconds.items():
        compute, ecs = topology.region(region).compute, admin.client("ecs", region)
        (service,) = ecs.describe_services(
            cluster=compute.cluster, services=[compute.service], include=["TAGS"]
        )["services"]
        before[region] = next((t["value"] for t in service.get("tags", []) if t["key"] == SCALE_UP_TAG), "0")
        ecs.tag_resource(resourceArn=service["serviceArn"], tags=[{"key": SCALE_UP_TAG, "value": value}])
    return before


def _healthz(topology: Topology, region: str) -> tuple[int, str]:
    response = http.get(topology.region(region).endpoint_url.rstrip("/") + topology.inference.health_path)
    return response.status_code, response.text


def _until(what: str, condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f}s")
        time.sleep(0.2)


def test_a_failover_to_a_pilot_light_waits_for_the_started_tasks_and_loses_nothing(
    topology: Topology, factory: ClientFactory, sandbox_state: SandboxState, on_primary: None
) -> None:
    """A standby at 0 tasks answers nothing; the failover scales it up and is not done (nor its
    RTO measured) until the new tasks serve, the configured start-up time later."""
    primary, secondary = topology.primary_region, topology.secondary_region
    pilot = _pilot_light(topology)
    scale_up = 2.0
    original = _set_scale_up(factory, topology, dict.fromkeys(topology.region_names, f"{scale_up:g}"))
    cloud = AwsCloud(factory)
    try:
        cloud.compute(secondary).set_desired(0)
        _until("the standby falls silent", lambda: _healthz(topology, secondary)[0] == 503)
        assert "pilot light" in _healthz(topology, secondary)[1]
        written = write(factory, topology, primary, f"pilot-{uuid.uuid4().hex[:8]}", 12)
        before = snapshot(factory, topology, primary)

        record = run(pilot, factory, "failover", secondary, "planned")

        assert record.status is OperationStatus.COMPLETED, record.message
        assert "pilot light" in record.result(failover.preflight).target_health
        assert record.result(failover.scale).seconds >= scale_up
        assert record.step_seconds()["scale"] >= scale_up, "the failover's timings include the start-up"
        assert record.result(failover.verify).served_by == secondary
        after = snapshot(factory, topology, secondary)
        assert len(before) >= len(written) and {k: after.get(k) for k in before} == before
        # the old primary went to the pilot light's standby capacity: it answers nothing now
        _until("the old primary falls silent", lambda: _healthz(topology, primary)[0] == 503)

        back = run(pilot, factory, "failback", primary)
        assert back.status is OperationStatus.COMPLETED, back.message
        assert back.step_seconds()["scale"] >= scale_up, "the failback waited for the primary's new tasks"
        assert dns_answer(sandbox_state) == primary
        wait_replicated(factory, topology, before, primary)
        p = snapshot(factory, topology, primary)
        assert {k: p.get(k) for k in before} == before
    finally:
        # back to the sandbox's warm standby, serving and seen healthy by the edge, for later tests
        cloud.compute(secondary).set_desired(topology.region(secondary).compute.standby_capacity)
        _until("the standby serves again", lambda: _healthz(topology, secondary)[0] == 200)
        _until(
            "the edge sees both regions healthy",
            lambda: all(
                c["healthy"] for c in http.get(f"{sandbox_state.edge_url}/resolve").json()["checks"].values()
            ),
        )
        _set_scale_up(factory, topology, original)
