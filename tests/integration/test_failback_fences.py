"""Failback keeps exactly one region writable, keeps both versions of a conflict, and `mldr abort`
gets out of any stopped operation. Against the real sandbox processes; every test counts objects
and compares checksums before and after."""

# ruff: noqa: F811 - test_failover's fixtures (topology, factory, on_primary) are parameters here

from __future__ import annotations

import json
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from mldr.actions import fencing, write_fence
from mldr.checks.replication_status import status_source
from mldr.cli import main
from mldr.cloud.aws.clients import ClientFactory
from mldr.cloud.aws.cloud import AwsCloud
from mldr.cloud.control import Operation, now_iso
from mldr.errors import AccessDenied, ConfigurationError
from mldr.runbooks import failback, failover
from mldr.runbooks.abort import abort
from mldr.runbooks.audit import AuditLog
from mldr.runbooks.engine import OperationStatus, OperationStore, step_name
from mldr.runbooks.operations import open_operation
from mldr.sandbox.manager import SandboxState
from mldr.topology import Topology
from tests.admin import admin_factory
from tests.integration.test_failover import (  # noqa: F401 - fixtures, used by name
    crashed_run,
    dns_answer,
    factory,
    lease,
    on_primary,
    params,
    run,
    snapshot,
    topology,
    wait_replicated,
    write,
)

pytestmark = pytest.mark.sandbox


def writable(factory: ClientFactory, topology: Topology, region: str) -> bool:
    """Does every dataset bucket of `region` take a client's write? (The probe object is removed.)"""
    s3 = factory.client("s3", region)
    results = []
    for dataset in topology.datasets:
        key = f"probe/{uuid.uuid4().hex}"
        try:
            s3.put_object(Bucket=dataset.buckets[region], Key=key, Body=b"probe")
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "AccessDenied", exc
            results.append(False)
            continue
        s3.delete_object(Bucket=dataset.buckets[region], Key=key)
        results.append(True)
        # the probe and its delete marker replicate: wait, so no later snapshot lists a key that
        # vanishes before it is read
        source = status_source(topology, AwsCloud(factory))
        deadline = time.monotonic() + 30
        while any(i.key == key for i in source.backlog(region=region, bucket=dataset.buckets[region])):
            assert time.monotonic() < deadline, f"probe {key} not replicated from {region} in 30s"
            time.sleep(0.2)
    assert len(set(results)) == 1, f"{region}: some buckets fenced, some not: {results}"
    return results[0]


def without_probes(snap: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in snap.items() if "/probe/" not in k}


def test_a_failback_stopped_after_its_resync_keeps_the_primary_fenced(
    topology: Topology, factory: ClientFactory, sandbox_state: SandboxState, on_primary: None
) -> None:
    """The primary's fence used to be lifted by failback_fence: both regions took writes until the
    switch. Now only the resync copies into the fenced primary; the fence goes at the switch."""
    primary, secondary = topology.primary_region, topology.secondary_region
    assert run(topology, factory, "failover", secondary, "planned").status is OperationStatus.COMPLETED
    during = write(factory, topology, secondary, f"fb-during-{uuid.uuid4().hex[:8]}", 12)
    crashed = crashed_run(topology, factory, "failback", primary, step_name(failback.resync))

    assert not writable(factory, topology, primary), "a client's write to the primary is refused"
    assert writable(factory, topology, secondary) and dns_answer(sandbox_state) == secondary
    primary_now = snapshot(factory, topology, primary)
    assert {k: primary_now.get(k) for k in during} == during, "the resync copied into the fenced primary"
    assert lease(factory).fenced_regions == (primary,)

    back = run(topology, factory, "failback", primary, resume=crashed)
    assert back.status is OperationStatus.COMPLETED, back.message
    assert "CONFLICT" not in back.message, "keys written on one side only are no conflict"
    p, s = snapshot(factory, topology, primary), snapshot(factory, topology, secondary)
    assert {k: p.get(k) for k in during} == during and p == s
    assert writable(factory, topology, primary) and dns_answer(sandbox_state) == primary


def test_a_key_changed_on_both_sides_is_a_conflict_both_versions_kept(
    topology: Topology, factory: ClientFactory, sandbox_state: SandboxState, on_primary: None
) -> None:
    """After an unplanned failover the old primary still took a write of a key the active region
    had changed too: failback used to copy the active region's version over it, unreported, and
    lifecycle later expired the primary's. Now it is a conflict, kept and listed."""
    primary, secondary = topology.primary_region, topology.secondary_region
    dataset = topology.datasets[0]
    key = f"conflict-{uuid.uuid4().hex[:8]}/model.bin"
    name = f"{dataset.name}/{key}"
    base = write(factory, topology, primary, f"cf-base-{uuid.uuid4().hex[:8]}", 4)
    wait_replicated(factory, topology, base, secondary)
    assert run(topology, factory, "failover", secondary, "unplanned").status is OperationStatus.COMPLETED
    s3p, s3s = factory.client("s3", primary), factory.client("s3", secondary)
    active_body, primary_body = b"written in the active region", b"written in the old primary"
    s3s.put_object(Bucket=dataset.buckets[secondary], Key=key, Body=active_body)
    wait_replicated(factory, topology, {name: _sha(active_body)}, primary)
    # A stray writer changes the key on the old primary. Whether or not the failover fenced it
    # (a fence duty, issue 14 item 5), someone lifted that fence by hand: the key is changed there.
    write_fence.lift(AwsCloud(factory).objects(primary), dataset.buckets[primary])
    put = s3p.put_object(Bucket=dataset.buckets[primary], Key=key, Body=primary_body)
    primary_version = put["VersionId"]
    before_p, before_s = snapshot(factory, topology, primary), snapshot(factory, topology, secondary)

    back = run(topology, factory, "failback", primary)

    assert back.status is OperationStatus.COMPLETED, back.message
    assert "CONFLICT" in back.message and key in back.message, "the summary lists the conflict"
    found = failback.conflicts(_context(topology, factory, back.id))
    assert [(c.key, c.standby_version) for c in found] == [(key, primary_version)]
    (conflict,) = found
    assert conflict.active_etag and conflict.active_version and conflict.standby_etag
    assert conflict.kept_at in back.message
    # neither version is lost: the active region's is current in both, the primary's is kept
    p, s = snapshot(factory, topology, primary), snapshot(factory, topology, secondary)
    assert p[name] == s[name] == _sha(active_body)
    ops = topology.region(primary).ops_bucket
    kept_key = conflict.kept_at.removeprefix(f"s3://{ops}/")
    assert s3p.get_object(Bucket=ops, Key=kept_key)["Body"].read() == primary_body
    old = s3p.get_object(Bucket=dataset.buckets[primary], Key=key, VersionId=primary_version)
    assert old["Body"].read() == primary_body, "the primary's version is still in its history too"
    # nothing else changed: every other key is where it was, with the same bytes
    for snap, before in ((p, before_p), (s, before_s)):
        assert {k: v for k, v in snap.items() if k != name} == {k: v for k, v in before.items() if k != name}
    events = AuditLog(AwsCloud(factory), topology, AwsCloud(factory).control()).events(primary, back.id)
    listed = [e for e in events if e["event"] == "conflicts"]
    assert [c["key"] for c in listed[0]["conflicts"]] == [key]


def _sha(body: bytes) -> str:
    import hashlib

    return hashlib.sha256(body).hexdigest()


def _context(topology: Topology, factory: ClientFactory, operation_id: str):  # type: ignore[no-untyped-def]
    return open_operation(
        topology, AwsCloud(factory), params("failback", topology.primary_region), operation_id=operation_id
    )


ABORT_AFTER = [
    ("failover", step_name(s)) for s in (failover.fence, failover.scale, failover.switch, failover.protect)
] + [
    ("failback", step_name(s))
    for s in (
        failback.failback_fence,
        failback.resync,
        failback.freeze,
        failback.scale,
        failback.failback_switch,
        failback.failback_protect,
    )
]


@pytest.mark.parametrize(("kind", "step"), ABORT_AFTER)
def test_abort_after_each_step_leaves_one_writable_region_that_serves(
    topology: Topology,
    factory: ClientFactory,
    sandbox_state: SandboxState,
    on_primary: None,
    kind: str,
    step: str,
) -> None:
    primary, secondary = topology.primary_region, topology.secondary_region
    if kind == "failback":
        assert run(topology, factory, "failover", secondary, "planned").status is OperationStatus.COMPLETED
    writer = secondary if kind == "failback" else primary
    written = write(factory, topology, writer, f"abort-{uuid.uuid4().hex[:8]}", 6)
    target = primary if kind == "failback" else secondary
    crashed = crashed_run(topology, factory, kind, target, step)
    token = lease(factory).fencing_token
    before = without_probes(snapshot(factory, topology, writer))

    result = abort(
        topology,
        AwsCloud(factory),
        operation_id=crashed,
        reason="integration test of abort",
        requested_by="pytest",
    )

    serving = result.serving
    other = topology.other_region(serving)
    after = lease(factory)
    assert (after.operation, after.active_region, after.fencing_token) == (None, serving, token)
    assert result.pending == ()
    assert dns_answer(sandbox_state) == serving, f"{kind} aborted after {step}: traffic goes to {serving}"
    assert writable(factory, topology, serving), f"{kind} aborted after {step}: {serving} takes writes"
    # the other region receives no traffic; it refuses writes when it is the primary, failed over from
    assert writable(factory, topology, other) is (other == secondary), f"{kind} aborted after {step}"
    assert after.fenced_regions == ((other,) if other == primary else ())
    record = OperationStore(AwsCloud(factory).control()).load(crashed)
    assert record is not None and record.status is OperationStatus.ABORTED
    assert "integration test of abort" in record.message
    # nothing was lost: what the serving region held before, it holds after, byte for byte
    now = without_probes(snapshot(factory, topology, serving))
    assert {k: now.get(k) for k in written} == written
    if serving == writer:
        assert now == before
    # an aborted operation is not resumed: a new one is started instead
    with pytest.raises(ConfigurationError, match="was aborted"):
        run(topology, factory, kind, target, "planned", resume=crashed)
    events = AuditLog(AwsCloud(factory), topology, AwsCloud(factory).control()).events(serving, crashed)
    assert [e["reason"] for e in events if e["event"] == "aborted"] == ["integration test of abort"]


def test_abort_gets_out_of_the_stuck_failback_and_refuses_what_is_not_running(
    topology: Topology, factory: ClientFactory, sandbox_state: SandboxState, on_primary: None
) -> None:
    """Issue 14 item 11: writes on the primary after failback_fence, every freeze fenced the active
    region and could not copy, failover refused (lease held), and nothing lifted the fence. The
    writes are now refused; and the CLI's abort ends the crashed failback."""
    primary, secondary = topology.primary_region, topology.secondary_region
    assert run(topology, factory, "failover", secondary, "planned").status is OperationStatus.COMPLETED
    during = write(factory, topology, secondary, f"stuck-{uuid.uuid4().hex[:8]}", 6)
    assert main(["abort", "--reason", "nothing is running now", "--yes"]) == 2
    crashed = crashed_run(topology, factory, "failback", primary, step_name(failback.freeze))
    assert not writable(factory, topology, primary) and not writable(factory, topology, secondary)
    assert (
        main(["abort", "--operation", "failback-not-this-one", "--reason", "wrong operation", "--yes"]) == 2
    )
    assert lease(factory).operation is not None, "a refused abort changes nothing"

    assert (
        main(["abort", "--operation", crashed, "--reason", "stuck failback, stay on secondary", "--yes"]) == 0
    )

    held = lease(factory)
    assert (held.operation, held.active_region, held.fenced_regions) == (None, secondary, (primary,))
    assert writable(factory, topology, secondary) and dns_answer(sandbox_state) == secondary
    s = without_probes(snapshot(factory, topology, secondary))
    assert {k: s.get(k) for k in during} == during
    # a failback after the abort completes: both regions hold everything
    back = run(topology, factory, "failback", primary)
    assert back.status is OperationStatus.COMPLETED, back.message
    p = snapshot(factory, topology, primary)
    assert {k: p.get(k) for k in during} == during


def test_a_failback_with_nothing_to_fail_back_lifts_stale_fences_and_says_so(
    topology: Topology,
    factory: ClientFactory,
    sandbox_state: SandboxState,
    on_primary: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The primary is active, no operation runs, but fences were left (on the buckets, in the
    lease): failback used to print "us-east-1 -> us-east-1" or "nothing to fail back" and leave
    them. It lifts them and says so; a dry run only says what it would lift."""
    primary, secondary = topology.primary_region, topology.secondary_region
    cloud = AwsCloud(factory)
    before_p = snapshot(factory, topology, primary)
    for region in (primary, secondary):
        write_fence.fence(cloud.objects(region), topology.datasets[0].buckets[region])
    op = Operation(
        id="test-stale",
        kind="failover",
        source=primary,
        target=secondary,
        mode="planned",
        started_by="pytest",
        reason="leave a stale fence",
        started_at=now_iso(),
    )
    fencing.take(cloud.control(), op)
    fencing.update(cloud.control(), "test-stale", fenced_regions=(secondary,))
    fencing.release(cloud.control(), "test-stale")
    token = lease(factory).fencing_token

    dry = run(topology, factory, "failback", primary, dry_run=True)
    assert dry.status is OperationStatus.NOOP and "would lift stale write fences" in dry.message
    assert cloud.objects(secondary).is_fenced(topology.datasets[0].buckets[secondary]), (
        "a dry run changes nothing"
    )

    assert main(["failback", "--reason", "clean up stale fences", "--yes", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["status"] == "noop" and "lifted stale write fences" in doc["message"]
    assert f"{primary} -> {primary}" not in doc["message"]
    assert writable(factory, topology, primary) and writable(factory, topology, secondary)
    after = lease(factory)
    assert (after.active_region, after.fenced_regions, after.operation) == (primary, (), None)
    assert after.fencing_token == token + 1
    assert dns_answer(sandbox_state) == primary
    assert without_probes(snapshot(factory, topology, primary)) == before_p


def test_only_a_store_with_the_fences_pass_writes_into_a_fenced_bucket(
    topology: Topology, factory: ClientFactory, on_primary: None
) -> None:
    """Every way the resync writes - a put (download and upload), a delete, a cross-region
    copy - goes through a fence put with its pass; a client's write, or a stale token's, does not.
    On the ops buckets: the cross-region copy is resync's path for buckets without SSE-KMS (the
    dataset buckets are SSE-KMS, whose copies go by download and upload, the put here). As the
    sandbox's admin: the DR role fences and deletes in dataset buckets only, and a fence denies
    every principal but the pass."""
    primary, secondary = topology.primary_region, topology.secondary_region
    bucket, other = topology.region(primary).ops_bucket, topology.region(secondary).ops_bucket
    factory = admin_factory(topology)
    cloud = AwsCloud(factory)
    plain, source = cloud.objects(primary), cloud.objects(secondary)
    assert not plain.default_kms_key(bucket), "the copy below needs a bucket whose ETags are MD5s"
    key = f"pass-{uuid.uuid4().hex[:8]}"
    source.put(other, f"{key}/copied", b"from the other region")
    copied_etag = source.head(other, f"{key}/copied").etag
    s3 = factory.client("s3", primary)

    def under_key() -> dict[str, str]:
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{key}/").get("Contents", [])
        return {o["Key"]: _sha(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()) for o in listed}

    assert under_key() == {}
    token = lease(factory).fencing_token + 5
    write_fence.fence(plain, bucket, pass_token=token)
    try:
        passing, stale = plain.with_fence_pass(token), plain.with_fence_pass(token - 1)
        passing.put(bucket, f"{key}/put", b"resync upload")
        passing.copy_in(source_bucket=other, bucket=bucket, key=f"{key}/copied", etag=copied_etag)
        passing.delete(bucket, f"{key}/put")
        for store in (plain, stale):
            with pytest.raises(AccessDenied):
                store.put(bucket, f"{key}/refused", b"a client's write")
    finally:
        write_fence.lift(plain, bucket)
    # the put was deleted again, the refused writes left nothing, the copy holds the source's bytes
    assert under_key() == {f"{key}/copied": _sha(b"from the other region")}
