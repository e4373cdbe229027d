"""The sandbox behaves like two AWS regions: replication, faults, DNS failover, clean shutdown."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from mldr.checks.replication_status import ReplicationState, SandboxStatusSource
from mldr.sandbox import provision as prov
from mldr.sandbox.manager import Sandbox, SandboxState
from mldr.topology import load_topology_file, parse_topology
from tests.sandbox_rules import as_stored, expected_rule, stored_rules

pytestmark = pytest.mark.sandbox

LAG = 1.0  # the sandbox's default replication lag
MARGIN = 3.0  # replicator poll (0.1 s) + copy + slow CI machine


def s3(state: SandboxState, region: str) -> Any:
    return prov.client("s3", state.moto[region], region)


def wait_for(what: str, check: Callable[[], bool], timeout: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if check():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"{what}: not true after {timeout}s")


def exists(client: Any, bucket: str, key: str) -> bool:
    try:
        client.head_object(Bucket=bucket, Key=key)
    except client.exceptions.ClientError:
        return False
    return True


@pytest.fixture
def buckets(sandbox_state: SandboxState) -> tuple[str, str]:
    return (
        prov.bucket_name("training-data", sandbox_state.primary),
        prov.bucket_name("training-data", sandbox_state.secondary),
    )


@pytest.fixture
def clean_replication(sandbox: Sandbox) -> Iterator[None]:
    yield
    sandbox.replication("clear")


def test_status_reports_a_running_sandbox(sandbox: Sandbox, sandbox_state: SandboxState) -> None:
    status = sandbox.status()
    assert status["running"] is True
    assert status["dns_answer"] == sandbox_state.primary
    assert status["edge_url"].startswith("http://127.0.0.1:")
    for region in sandbox_state.regions:
        assert status["regions"][region]["healthy"] is True
        assert status["regions"][region]["s3_endpoint"] == sandbox_state.moto[region]
    # up on a running sandbox is a no-op that says so
    again, started = sandbox.up()
    assert started is False
    assert again.edge_url == sandbox_state.edge_url


def test_model_is_served_through_the_edge_from_the_primary(sandbox_state: SandboxState) -> None:
    model = httpx.get(f"{sandbox_state.edge_url}/model", timeout=5).json()
    response = httpx.post(
        f"{sandbox_state.edge_url}/predict", json={"instances": [model["example_instance"]]}, timeout=5
    )
    assert response.status_code == 200
    body = response.json()
    assert body["region"] == sandbox_state.primary
    assert len(body["predictions"]) == 1


def test_provisioned_replication_rules_are_the_builders(sandbox_state: SandboxState) -> None:
    """The sandbox replicates every dataset primary -> secondary under the rule infra/ declares and
    the runbooks write (same id, so infra/'s alarms would watch it), and only that way."""
    topology = load_topology_file(sandbox_state.topology_path)
    primary, secondary = sandbox_state.primary, sandbox_state.secondary
    for dataset in topology.datasets:
        rules = stored_rules(sandbox_state.moto[primary], dataset.buckets[primary])
        assert rules == [expected_rule(dataset, source=primary, target=secondary)], (
            f"{dataset.buckets[primary]} ({primary}): {rules}"
        )
        assert rules[0]["ID"] == f"{dataset.name}-to-{secondary}"
        # A failback leaves the reverse rule in place, disabled (so `pulumi up --refresh` cannot
        # bring it back enabled): a disabled rule replicates nothing.
        back = stored_rules(sandbox_state.moto[secondary], dataset.buckets[secondary])
        assert [r for r in back if r.get("Status") != "Disabled"] == [], (
            f"{dataset.buckets[secondary]} ({secondary}) replicates back"
        )


def test_write_replicates_within_the_lag(sandbox_state: SandboxState, buckets: tuple[str, str]) -> None:
    src, dst = buckets
    key = f"it/{uuid.uuid4()}.bin"
    body = uuid.uuid4().bytes * 100
    s3(sandbox_state, sandbox_state.primary).put_object(
        Bucket=src, Key=key, Body=body, Metadata={"owner": "it"}, ChecksumAlgorithm="SHA256"
    )
    replica = s3(sandbox_state, sandbox_state.secondary)
    took = wait_for("replica appears", lambda: exists(replica, dst, key), LAG + MARGIN)
    assert took >= LAG * 0.8, f"replicated in {took:.2f}s, faster than the configured lag"
    got = replica.get_object(Bucket=dst, Key=key, ChecksumMode="ENABLED")
    assert got["Body"].read() == body
    assert got["Metadata"] == {"owner": "it"}
    assert hashlib.sha256(body).digest().hex() == hashlib.sha256(body).hexdigest()


def _kms_bucket_pair(state: SandboxState) -> tuple[dict[str, str], dict[str, str]]:
    """A fresh bucket per region, versioned, default SSE-KMS with its own key: (buckets, keys)."""
    suffix = uuid.uuid4().hex[:8]
    buckets, keys = {}, {}
    for region in state.regions:
        buckets[region] = f"it-kms-{suffix}-{region}"
        keys[region] = prov.client("kms", state.moto[region], region).create_key()["KeyMetadata"]["Arn"]
        client = s3(state, region)
        location = (
            {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        )
        client.create_bucket(Bucket=buckets[region], **location)
        client.put_bucket_versioning(Bucket=buckets[region], VersioningConfiguration={"Status": "Enabled"})
        by_default = {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": keys[region]}
        client.put_bucket_encryption(
            Bucket=buckets[region],
            ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": by_default}]},
        )
    return buckets, keys


@contextmanager
def _replication_role_for(state: SandboxState, buckets: dict[str, str]) -> Iterator[str]:
    """A replication role allowed to replicate between `buckets` (the first dataset's role, with
    an extra inline policy while the block runs): the replicator copies with the rule's role."""
    import json

    from mldr.sandbox.iam import replication_principal

    topology = load_topology_file(state.topology_path)
    dataset = topology.datasets[0]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["s3:GetObjectVersionForReplication", "s3:ReplicateObject", "s3:ReplicateDelete"],
                "Resource": [f"arn:aws:s3:::{b}/*" for b in buckets.values()],
            }
        ],
    }
    servers = [prov.client("iam", state.moto[r], "us-east-1") for r in state.regions]
    user = replication_principal(dataset.name)
    for iam in servers:
        iam.put_user_policy(UserName=user, PolicyName="it-buckets", PolicyDocument=json.dumps(policy))
    try:
        yield dataset.replication[state.primary].role_arn
    finally:
        for iam in servers:
            iam.delete_user_policy(UserName=user, PolicyName="it-buckets")


def test_an_sse_kms_object_replicates_only_under_a_rule_that_selects_it(
    sandbox_state: SandboxState,
) -> None:
    """As S3: a rule without the SSE-KMS selection skips KMS objects silently; with it, the replica
    is encrypted with the rule's replica key. And, as S3, a KMS object's ETag is no content MD5."""
    buckets, keys = _kms_bucket_pair(sandbox_state)
    with _replication_role_for(sandbox_state, buckets) as role:
        _sse_kms_replication(sandbox_state, buckets, keys, role)


def _sse_kms_replication(
    state: SandboxState, buckets: dict[str, str], keys: dict[str, str], role: str
) -> None:
    from mldr.cloud.aws.replication_rule import build_replication_rule

    sandbox_state = state
    primary, secondary = state.primary, state.secondary
    src, dst = s3(state, primary), s3(state, secondary)

    def rule(replica_key: str | None) -> dict[str, Any]:
        return {
            "Role": role,
            "Rules": [
                build_replication_rule(
                    dataset="it-kms",
                    prefix="",
                    source_region=primary,
                    destination_region=secondary,
                    destination_bucket=buckets[secondary],
                    replica_kms_key_arn=replica_key,
                )
            ],
        }

    def skipped() -> int:
        stats = httpx.get(f"{sandbox_state.replicator_url}/stats", timeout=5).json()
        return int(stats["skipped"]) if "skipped" in stats else 0

    src.put_bucket_replication(Bucket=buckets[primary], ReplicationConfiguration=rule(None))
    before = skipped()
    key = f"it/kms/{uuid.uuid4()}.bin"
    body = uuid.uuid4().bytes * 20
    put = src.put_object(Bucket=buckets[primary], Key=key, Body=body, ChecksumAlgorithm="SHA256")
    assert put["ServerSideEncryption"] == "aws:kms" and put["SSEKMSKeyId"] == keys[primary]
    assert put["ETag"] != f'"{hashlib.md5(body).hexdigest()}"', "an SSE-KMS ETag is not the MD5 of the bytes"
    wait_for(
        "the replicator settles the SSE-KMS object",
        lambda: exists(dst, buckets[secondary], key) or skipped() > before,
        LAG + MARGIN + 5,
    )
    assert not exists(dst, buckets[secondary], key), (
        "an SSE-KMS object replicated under a rule that does not select SSE-KMS objects (S3 skips it)"
    )

    src.put_bucket_replication(Bucket=buckets[primary], ReplicationConfiguration=rule(keys[secondary]))
    key = f"it/kms/{uuid.uuid4()}.bin"
    put = src.put_object(Bucket=buckets[primary], Key=key, Body=body, ChecksumAlgorithm="SHA256")
    wait_for(
        "the selected SSE-KMS object replicates", lambda: exists(dst, buckets[secondary], key), LAG + MARGIN
    )
    replica = dst.head_object(Bucket=buckets[secondary], Key=key, ChecksumMode="ENABLED")
    assert (replica["ServerSideEncryption"], replica["SSEKMSKeyId"]) == ("aws:kms", keys[secondary])
    assert replica["ChecksumSHA256"] == put["ChecksumSHA256"]
    assert replica["ETag"] != put["ETag"], "replicas of SSE-KMS objects have ETags of their own"


def test_copy_object_reads_a_bucket_in_the_other_region(
    sandbox_state: SandboxState, buckets: tuple[str, str]
) -> None:
    # S3 copies across regions when asked; moto alone knows only its own buckets
    from botocore.exceptions import ClientError

    from mldr.actions import write_fence
    from mldr.cloud.aws.cloud import AwsCloud
    from mldr.topology import load_topology

    primary_bucket, secondary_bucket = buckets
    fences = AwsCloud.from_environment(load_topology(use_airflow=False)).objects(sandbox_state.primary)
    east, west = s3(sandbox_state, sandbox_state.primary), s3(sandbox_state, sandbox_state.secondary)
    key = f"it/copy/{uuid.uuid4()} with space+plus.bin"
    body = uuid.uuid4().bytes * 50
    put = west.put_object(
        Bucket=secondary_bucket,
        Key=key,
        Body=body,
        Metadata={"owner": "it"},
        ContentType="application/x-it",
        ChecksumAlgorithm="SHA256",
    )
    copied = east.copy_object(
        Bucket=primary_bucket,
        Key=key,
        CopySource={"Bucket": secondary_bucket, "Key": key, "VersionId": put["VersionId"]},
        CopySourceIfMatch=put["ETag"],
    )
    # dataset buckets are SSE-KMS: as in AWS, neither ETag is the MD5 of the bytes, nor are they equal
    content_md5 = f'"{hashlib.md5(body).hexdigest()}"'
    assert content_md5 not in (copied["CopyObjectResult"]["ETag"], put["ETag"])
    assert copied["CopyObjectResult"]["ETag"] != put["ETag"]
    assert copied["CopySourceVersionId"] == put["VersionId"]
    got = east.get_object(Bucket=primary_bucket, Key=key)
    assert got["Body"].read() == body
    assert (got["Metadata"], got["ContentType"]) == ({"owner": "it"}, "application/x-it")
    # the source's additional checksum comes along, as S3 keeps it on a copy
    head = east.head_object(Bucket=primary_bucket, Key=key, ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == put["ChecksumSHA256"]

    # the copy is a new version of the key here, and in the change feed: it replicates
    assert copied["VersionId"] and copied["VersionId"] != put["VersionId"]

    def versions_in_secondary() -> int:
        listed = west.list_object_versions(Bucket=secondary_bucket, Prefix=key)
        return sum(v["Key"] == key for v in listed.get("Versions", []))

    wait_for("the copy replicates", lambda: versions_in_secondary() == 2, LAG + MARGIN)

    # x-amz-metadata-directive REPLACE: the request's metadata, not the source's
    east.copy_object(
        Bucket=primary_bucket,
        Key=key + ".replaced",
        CopySource={"Bucket": secondary_bucket, "Key": key},
        MetadataDirective="REPLACE",
        Metadata={"owner": "copy"},
        ContentType="text/plain",
    )
    replaced = east.head_object(Bucket=primary_bucket, Key=key + ".replaced")
    assert (replaced["Metadata"], replaced["ContentType"]) == ({"owner": "copy"}, "text/plain")

    # no such source key: S3's NoSuchKey, nothing written
    with pytest.raises(ClientError) as missing:
        east.copy_object(
            Bucket=primary_bucket,
            Key=key + ".1",
            CopySource={"Bucket": secondary_bucket, "Key": key + ".nope"},
        )
    assert missing.value.response["Error"]["Code"] == "NoSuchKey"
    assert not exists(east, primary_bucket, key + ".1")

    # the source changed since it was listed: S3 refuses the conditional copy
    with pytest.raises(ClientError) as refused:
        east.copy_object(
            Bucket=primary_bucket,
            Key=key + ".2",
            CopySource={"Bucket": secondary_bucket, "Key": key},
            CopySourceIfMatch='"00000000000000000000000000000000"',
        )
    assert refused.value.response["Error"]["Code"] == "PreconditionFailed"
    assert not exists(east, primary_bucket, key + ".2")

    # a write fence on the receiving bucket refuses a copy like any other write
    write_fence.fence(fences, primary_bucket)
    try:
        with pytest.raises(ClientError) as fenced:
            east.copy_object(
                Bucket=primary_bucket, Key=key + ".3", CopySource={"Bucket": secondary_bucket, "Key": key}
            )
        assert fenced.value.response["Error"]["Code"] == "AccessDenied"
    finally:
        write_fence.lift(fences, primary_bucket)
    assert not exists(east, primary_bucket, key + ".3")


def test_a_server_side_copy_takes_the_destination_buckets_default_kms_key(
    sandbox_state: SandboxState, buckets: tuple[str, str]
) -> None:
    """S3 encrypts a copy that names no encryption with the destination bucket's default key -
    also a copy of an older version onto its own key (how a restore brings a version back);
    moto made those AES256."""
    primary_bucket, _ = buckets
    east = s3(sandbox_state, sandbox_state.primary)
    default = east.get_bucket_encryption(Bucket=primary_bucket)["ServerSideEncryptionConfiguration"]
    bucket_key = default["Rules"][0]["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"]
    key = f"it/copy-kms/{uuid.uuid4()}.bin"
    first = east.put_object(Bucket=primary_bucket, Key=key, Body=b"version one")
    east.put_object(Bucket=primary_bucket, Key=key, Body=b"version two")
    for target in (key, key + ".elsewhere"):
        east.copy_object(
            Bucket=primary_bucket,
            Key=target,
            CopySource={"Bucket": primary_bucket, "Key": key, "VersionId": first["VersionId"]},
        )
        head = east.head_object(Bucket=primary_bucket, Key=target)
        assert (head.get("ServerSideEncryption"), head.get("SSEKMSKeyId")) == ("aws:kms", bucket_key), (
            f"copy to {target}: {head.get('ServerSideEncryption')} {head.get('SSEKMSKeyId')}"
        )
        assert east.get_object(Bucket=primary_bucket, Key=target)["Body"].read() == b"version one"


def test_delete_marker_replicates(sandbox_state: SandboxState, buckets: tuple[str, str]) -> None:
    src, dst = buckets
    key = f"it/{uuid.uuid4()}.txt"
    primary = s3(sandbox_state, sandbox_state.primary)
    replica = s3(sandbox_state, sandbox_state.secondary)
    primary.put_object(Bucket=src, Key=key, Body=b"to be deleted")
    wait_for("replica appears", lambda: exists(replica, dst, key), LAG + MARGIN)
    primary.delete_object(Bucket=src, Key=key)
    wait_for("delete marker replicates", lambda: not exists(replica, dst, key), LAG + MARGIN)
    versions = replica.list_object_versions(Bucket=dst, Prefix=key)
    assert [m["Key"] for m in versions.get("DeleteMarkers", [])] == [key]
    assert len(versions["Versions"]) == 1  # the data survives behind the marker, as in S3


def test_a_batch_delete_replicates_its_delete_markers_and_a_fenced_bucket_refuses_it(
    sandbox_state: SandboxState, buckets: tuple[str, str]
) -> None:
    """DeleteObjects makes a delete marker per key, and S3 replicates each as it does a DELETE's
    (the sandbox's change feed saw only "a bucket-level write": the markers never left the
    primary). A write-fenced bucket refuses the batch's keys as it refuses a DELETE."""
    from mldr.cloud.aws.cloud import AwsCloud

    src, dst = buckets
    primary = s3(sandbox_state, sandbox_state.primary)
    replica = s3(sandbox_state, sandbox_state.secondary)
    batch = f"it/batch-{uuid.uuid4().hex[:8]}"
    keys = [f"{batch}/{i}.txt" for i in range(3)]
    for key in keys:
        primary.put_object(Bucket=src, Key=key, Body=key.encode())
    wait_for("the batch's keys replicate", lambda: all(exists(replica, dst, k) for k in keys), 30)
    answer = primary.delete_objects(Bucket=src, Delete={"Objects": [{"Key": k} for k in keys]})
    assert answer.get("Errors", []) == [] and len(answer["Deleted"]) == len(keys), answer
    wait_for(
        "the batch's delete markers replicate", lambda: not any(exists(replica, dst, k) for k in keys), 30
    )
    versions = replica.list_object_versions(Bucket=dst, Prefix=f"{batch}/")
    assert sorted(m["Key"] for m in versions.get("DeleteMarkers", [])) == keys
    assert sorted(v["Key"] for v in versions["Versions"]) == keys, "the data survives behind the markers"

    kept = f"{batch}/fenced.txt"
    primary.put_object(Bucket=src, Key=kept, Body=b"stays")
    store = AwsCloud.from_environment(load_topology_file(sandbox_state.topology_path)).objects(
        sandbox_state.primary
    )
    assert store.fence(src)
    try:
        answer = primary.delete_objects(Bucket=src, Delete={"Objects": [{"Key": kept}]})
        assert [e["Code"] for e in answer.get("Errors", [])] == ["AccessDenied"], answer
        assert exists(primary, src, kept)
    finally:
        store.lift_fence(src)


def test_pause_leaves_key_pending_and_resume_delivers(
    sandbox: Sandbox, sandbox_state: SandboxState, buckets: tuple[str, str], clean_replication: None
) -> None:
    src, dst = buckets
    status = SandboxStatusSource(sandbox_state.replicator_url)
    key = f"it/{uuid.uuid4()}.txt"
    sandbox.replication("pause")
    put = s3(sandbox_state, sandbox_state.primary).put_object(Bucket=src, Key=key, Body=b"paused")
    replica = s3(sandbox_state, sandbox_state.secondary)
    time.sleep(LAG + 1.0)
    assert not exists(replica, dst, key)
    state = status.status(region=sandbox_state.primary, bucket=src, key=key, version_id=put["VersionId"])
    assert state is ReplicationState.PENDING
    assert key in [i.key for i in status.backlog(region=sandbox_state.primary, bucket=src)]
    sandbox.replication("resume")
    wait_for("resumed replication delivers", lambda: exists(replica, dst, key), LAG + MARGIN)

    def completed() -> bool:
        found = status.status(region=sandbox_state.primary, bucket=src, key=key, version_id=put["VersionId"])
        return found is ReplicationState.COMPLETED

    # As in S3, the source's status turns COMPLETED once the replica's write has returned: a
    # reader can see the replica a moment before (a red CI asserted it at once).
    wait_for("the source version is marked COMPLETED", completed, MARGIN)


def test_fail_keys_keeps_a_key_failed(
    sandbox: Sandbox, sandbox_state: SandboxState, buckets: tuple[str, str], clean_replication: None
) -> None:
    src, dst = buckets
    status = SandboxStatusSource(sandbox_state.replicator_url)
    tag = uuid.uuid4().hex
    sandbox.replication("fail-keys", f"it/{tag}/bad-*")
    primary = s3(sandbox_state, sandbox_state.primary)
    primary.put_object(Bucket=src, Key=f"it/{tag}/bad-1", Body=b"x")
    primary.put_object(Bucket=src, Key=f"it/{tag}/good-1", Body=b"y")
    replica = s3(sandbox_state, sandbox_state.secondary)
    wait_for("the good key replicates", lambda: exists(replica, dst, f"it/{tag}/good-1"), LAG + MARGIN)
    time.sleep(0.5)
    assert not exists(replica, dst, f"it/{tag}/bad-1")
    state = status.status(region=sandbox_state.primary, bucket=src, key=f"it/{tag}/bad-1")
    assert state is ReplicationState.FAILED
    failed = [
        i for i in status.backlog(region=sandbox_state.primary, bucket=src) if i.key == f"it/{tag}/bad-1"
    ]
    assert failed and failed[0].state is ReplicationState.FAILED


def _resolve(edge_url: str) -> dict[str, Any]:
    return httpx.get(f"{edge_url}/resolve", timeout=2).json()  # type: ignore[no-any-return]


def _snapshot(client: Any, bucket: str) -> dict[str, str]:
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            body = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            out[obj["Key"]] = hashlib.sha256(body).hexdigest()
    return out


def test_region_outage_fails_over_dns_and_heal_keeps_data(
    sandbox: Sandbox, sandbox_state: SandboxState, buckets: tuple[str, str]
) -> None:
    primary, secondary = sandbox_state.primary, sandbox_state.secondary
    src, _ = buckets
    before = _snapshot(s3(sandbox_state, primary), src)
    assert before, "the seed data should be there"
    resolved = _resolve(sandbox_state.edge_url)
    check = resolved["checks"][primary]
    window = check["interval_seconds"] * check["failure_threshold"]
    # Detection is interval x threshold; margin: one probe timeout + one interval + the edge's refresh.
    bound = window + check["interval_seconds"] + 2.0 + 0.5
    sandbox.region_outage(primary)
    started = time.monotonic()
    try:
        took = wait_for(
            "the edge answers the secondary",
            lambda: _resolve(sandbox_state.edge_url)["answer"] == secondary,
            bound,
        )
        assert took >= window * 0.8, f"failed over in {took:.1f}s, before the detection window {window}s"
        body = httpx.post(
            f"{sandbox_state.edge_url}/predict", json={"instances": [[5.1, 3.5, 1.4, 0.2]]}, timeout=5
        ).json()
        assert body["region"] == secondary
        assert sandbox.status()["regions"][primary]["outage"] is True
    finally:
        sandbox.heal(primary)
    assert time.monotonic() - started < bound + 10
    wait_for("the primary answers again", lambda: _resolve(sandbox_state.edge_url)["answer"] == primary, 15)
    after = _snapshot(s3(sandbox_state, primary), src)
    assert {k: v for k, v in after.items() if k in before} == before


#: Declared resource types the sandbox does not apply as declared yet, and why (README's table).
NOT_APPLIED = {
    "aws:s3/bucketPolicy:BucketPolicy": "TLS-only: the sandbox speaks HTTP on loopback",
    "aws:s3/bucket:Bucket": "named by the sandbox (Object Lock at creation is the declared one)",
    "aws:sns/topic:Topic": "the sandbox's own topic per region",
    "aws:route53/healthCheck:HealthCheck": "probes the sandbox's inference servers, not a load balancer",
    "aws:route53/record:Record": "A records to stand-in addresses, not aliases to load balancers",
}


def _contains(actual: Any, declared: Any, where: str) -> None:
    """Every declared field is there with the declared value (the API may add defaults)."""
    if isinstance(declared, dict):
        assert isinstance(actual, dict), f"{where}: {actual!r} is not a mapping"
        for name, value in declared.items():
            assert name in actual, f"{where}: {name} missing from {actual!r}"
            _contains(actual[name], value, f"{where}.{name}")
    elif isinstance(declared, list):
        assert isinstance(actual, list) and len(actual) == len(declared), f"{where}: {actual!r}"
        for i, (got, value) in enumerate(zip(actual, declared, strict=True)):
            _contains(got, value, f"{where}[{i}]")
    else:
        assert actual == declared, f"{where}: {actual!r}, declared {declared!r}"


def _same_shape(declared: Any, actual: Any, own: set[str], where: str) -> None:
    """The same fields with the same values (`own`: dotted paths the sandbox has its own way)."""
    if isinstance(declared, dict) and isinstance(actual, dict):
        for name in sorted(set(declared) | set(actual)):
            path = f"{where}.{name}".removeprefix("topology.")
            if path in own:
                continue
            assert name in declared, f"{path}: the sandbox's topology has it, the program's export not"
            assert name in actual, f"{path}: the program exports it, the sandbox's topology lacks it"
            _same_shape(declared[name], actual[name], own, f"{where}.{name}")
    elif isinstance(declared, list) and isinstance(actual, list):
        assert len(declared) == len(actual), f"{where}: {len(actual)} items, declared {len(declared)}"
        for i, (d, a) in enumerate(zip(declared, actual, strict=True)):
            _same_shape(d, a, own, f"{where}[{i}]")
    else:
        assert declared == actual, f"{where}: {actual!r}, exported {declared!r}"


def test_the_sandbox_holds_what_infra_declares_for_its_stack(sandbox_state: SandboxState) -> None:
    """Every bucket setting, dataset key and replication role the program declares for the
    sandbox's stack is in the running sandbox as declared (names mapped onto the sandbox's)."""
    import json

    from mldr.sandbox import declared_resources as dr
    from mldr.sandbox.declared import name_map, rewrite, snapshot

    declared = snapshot()
    topology = json.loads(load_topology_file(sandbox_state.topology_path).to_json())
    names = name_map(declared["topology"], topology)
    regions = {
        declared["topology"]["primary_region"]: sandbox_state.primary,
        declared["topology"]["secondary_region"]: sandbox_state.secondary,
    }
    applied = {*dr.BUCKET_SETTINGS, dr.KEY, dr.ROLE, dr.ROLE_POLICY, dr.TABLE, dr.TABLE_ITEM}
    kinds = {r["type"] for r in declared["resources"]}
    assert kinds - applied - set(NOT_APPLIED) == set(), "declared types the sandbox neither applies nor lists"

    settings = dr.bucket_settings(names, regions)
    assert {s.type for s in settings} >= {dr.VERSIONING, dr.ENCRYPTION, dr.REPLICATION}
    for setting in settings:
        client, where = s3(sandbox_state, setting.region), f"{setting.name} ({setting.bucket})"
        inputs = setting.inputs
        if setting.type == dr.VERSIONING:
            status = inputs["versioningConfiguration"]["status"]
            assert client.get_bucket_versioning(Bucket=setting.bucket)["Status"] == status, where
        elif setting.type == dr.ENCRYPTION:
            got = client.get_bucket_encryption(Bucket=setting.bucket)["ServerSideEncryptionConfiguration"]
            _contains(got["Rules"], dr.api_shape(inputs["rules"]), where)
        elif setting.type == dr.PUBLIC_ACCESS_BLOCK:
            got = client.get_public_access_block(Bucket=setting.bucket)["PublicAccessBlockConfiguration"]
            fields = ("blockPublicAcls", "ignorePublicAcls", "blockPublicPolicy", "restrictPublicBuckets")
            _contains(got, dr.api_shape({f: bool(inputs.get(f)) for f in fields}), where)
        elif setting.type == dr.LIFECYCLE:
            got = client.get_bucket_lifecycle_configuration(Bucket=setting.bucket)["Rules"]
            _contains(got, dr.api_shape(inputs["rules"]), where)
        elif setting.type == dr.REPLICATION:
            configuration = dr.replication_configuration(inputs)
            stored = stored_rules(sandbox_state.moto[setting.region], setting.bucket)
            assert stored == [as_stored(rule) for rule in configuration["Rules"]], where
            role = client.get_bucket_replication(Bucket=setting.bucket)["ReplicationConfiguration"]["Role"]
            assert role == configuration["Role"], where
        else:
            raise AssertionError(f"{where}: no check for {setting.type}")

    for (dataset, region), key in dr.dataset_keys(regions).items():
        arn = next(d for d in topology["datasets"] if d["name"] == dataset)["replication"][region][
            "kms_key_arn"
        ]
        kms = prov.client("kms", sandbox_state.moto[region], region)
        assert kms.describe_key(KeyId=arn)["KeyMetadata"]["Description"] == key.inputs["description"]
        tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=arn)["Tags"]}
        assert tags == key.inputs["tags"], arn
        assert json.loads(kms.get_key_policy(KeyId=arn, PolicyName="default")["Policy"]) == json.loads(
            key.inputs["policy"]
        )

    # The topology document is the program's export, names mapped, but for what the sandbox runs
    # its own way (README's sandbox section): where clients reach it, and the control state's
    # two replicas on the global server (eventual, one write region) for a strong global table.
    own = {"inference.url", "sandbox", "control_state"}
    exported = parse_topology(rewrite(declared["topology"], names), source="infra/'s export, names mapped")
    _same_shape(json.loads(exported.to_json()), topology, own, "topology")

    # the control table's schema as declared, in each of its replicas (named the sandbox's way)
    schema, _ = dr.control_table(regions)
    for region in sandbox_state.regions:
        ddb = prov.client("dynamodb", sandbox_state.moto["global"], region)
        table = ddb.describe_table(TableName=topology["control_state"]["table"])["Table"]
        _contains(table, {k: v for k, v in schema.items() if k != "BillingMode"}, f"control table ({region})")
        assert table["BillingModeSummary"]["BillingMode"] == schema["BillingMode"]

    iam = prov.client("iam", sandbox_state.moto["global"], "us-east-1")
    roles = dr.replication_roles(names)
    assert {name for name, _, _ in roles} == {
        d["replication"][sandbox_state.primary]["role_arn"].rsplit("/", 1)[-1] for d in topology["datasets"]
    }
    for name, _, role in roles:
        assert iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"] == role["assume"], name
        for policy_name, policy in role["policies"].items():
            got = iam.get_role_policy(RoleName=name, PolicyName=policy_name)["PolicyDocument"]
            assert got == policy, f"{name}/{policy_name}"
