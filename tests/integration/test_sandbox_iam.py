"""The sandbox enforces IAM: the runbooks run as the DR operator, with infra/'s declared policy."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from mldr import http
from mldr.cli import main
from mldr.cloud.aws.clients import ClientFactory, connection_env_var, parse_airflow_connection
from mldr.sandbox import declared
from mldr.sandbox.iam import ADMIN, ADMIN_KEYS, OPERATOR, POLICY_NAME
from mldr.sandbox.manager import Sandbox, SandboxState
from mldr.topology import Topology, load_topology

pytestmark = pytest.mark.sandbox


@pytest.fixture
def topology(sandbox: Sandbox) -> Topology:
    return load_topology(use_airflow=False)


def _client(service: str, endpoint: str, region: str, keys: tuple[str, str]) -> Any:
    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=keys[0],
        aws_secret_access_key=keys[1],
        config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
    )


def _operator_keys(state: SandboxState) -> tuple[str, str]:
    keys = state.principals[OPERATOR]
    return keys["access_key_id"], keys["secret_access_key"]


def _put_operator_policy(state: SandboxState, policy: dict[str, Any]) -> None:
    for endpoint in state.moto.values():
        _client("iam", endpoint, "us-east-1", ADMIN_KEYS).put_user_policy(
            UserName=OPERATOR, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(policy)
        )


@pytest.fixture
def declared_policy(sandbox_state: SandboxState, topology: Topology) -> Iterator[dict[str, Any]]:
    """The operator's policy as provisioned; put back after the test, whatever it changed."""
    policy = declared.operator_policy(json.loads(topology.to_json()))
    yield policy
    _put_operator_policy(sandbox_state, policy)


def test_status_lists_the_principals_and_the_connections_carry_the_operators_keys(
    sandbox: Sandbox, sandbox_state: SandboxState, topology: Topology, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sandbox", "status", "--json"]) == 0
    principals = json.loads(capsys.readouterr().out)["principals"]
    assert set(principals) >= {ADMIN, OPERATOR}
    for name, principal in principals.items():
        assert principal["arn"] == f"arn:aws:iam::123456789012:user/{name}"
        assert principal["access_key_id"] and principal["secret_access_key"]
    for region in topology.region_names:
        settings = parse_airflow_connection(
            os.environ[connection_env_var(topology.region(region).connection_id)]
        )
        assert settings.aws_access_key_id == principals[OPERATOR]["access_key_id"]
    # the operator may do what the runbooks do, not what an admin may
    s3 = _client(
        "s3",
        sandbox_state.moto[topology.primary_region],
        topology.primary_region,
        _operator_keys(sandbox_state),
    )
    s3.list_objects_v2(Bucket=topology.datasets[0].buckets[topology.primary_region], MaxKeys=1)
    with pytest.raises(s3.exceptions.ClientError, match="s3:CreateBucket"):
        s3.create_bucket(Bucket=f"not-the-operators-{uuid.uuid4().hex[:6]}")


def test_the_operator_never_destroys_history_not_even_through_a_bucket_policy_it_writes(
    sandbox_state: SandboxState, topology: Topology, declared_policy: dict[str, Any]
) -> None:
    region = topology.primary_region
    bucket = topology.datasets[0].buckets[region]
    s3 = _client("s3", sandbox_state.moto[region], region, _operator_keys(sandbox_state))
    admin = _client("s3", sandbox_state.moto[region], region, ADMIN_KEYS)
    replica_region = topology.secondary_region
    replica = _client("s3", sandbox_state.moto[replica_region], replica_region, ADMIN_KEYS)
    replica_bucket = topology.datasets[0].buckets[replica_region]
    key = f"iam-test/{uuid.uuid4().hex[:8]}.txt"
    version = s3.put_object(Bucket=bucket, Key=key, Body=b"kept")["VersionId"]
    # replicated before its version is deleted below: a version deleted first stays FAILED in the
    # replication status, and later tests of the session read the backlog
    deadline = time.monotonic() + 60
    while not replica.list_objects_v2(Bucket=replica_bucket, Prefix=key).get("Contents"):
        assert time.monotonic() < deadline, f"{key} not replicated within 60 s"
        time.sleep(0.2)
    try:
        before: str | None = admin.get_bucket_policy(Bucket=bucket)["Policy"]
    except admin.exceptions.ClientError:  # NoSuchBucketPolicy: the sandbox's buckets have none yet
        before = None
    operator_arn = f"arn:aws:iam::123456789012:user/{OPERATOR}"
    # PutBucketPolicy is the write fence's: the operator may write one granting itself everything
    s3.put_bucket_policy(
        Bucket=bucket,
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": operator_arn},
                        "Action": "s3:*",
                        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                    }
                ],
            }
        ),
    )
    try:
        attempts = {
            "s3:DeleteObjectVersion": lambda: s3.delete_object(Bucket=bucket, Key=key, VersionId=version),
            "s3:PutBucketVersioning": lambda: s3.put_bucket_versioning(
                Bucket=bucket, VersioningConfiguration={"Status": "Suspended"}
            ),
            "s3:PutLifecycleConfiguration": lambda: s3.put_bucket_lifecycle_configuration(
                Bucket=bucket,
                LifecycleConfiguration={
                    "Rules": [
                        {
                            "ID": "gone",
                            "Status": "Enabled",
                            "Filter": {"Prefix": ""},
                            "NoncurrentVersionExpiration": {"NoncurrentDays": 1},
                        }
                    ]
                },
            ),
            "s3:DeleteBucket": lambda: s3.delete_bucket(Bucket=bucket),
        }
        for action, attempt in attempts.items():
            with pytest.raises(s3.exceptions.ClientError, match=f"AccessDenied.*{action} on resource"):
                attempt()
        assert admin.get_object(Bucket=bucket, Key=key, VersionId=version)["Body"].read() == b"kept"
        assert admin.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"

        # Without the role's explicit Deny, that bucket policy would have let it: the grant is real.
        allows_only = [st for st in declared_policy["Statement"] if st["Effect"] == "Allow"]
        _put_operator_policy(sandbox_state, {**declared_policy, "Statement": allows_only})
        s3.delete_object(Bucket=bucket, Key=key, VersionId=version)
        with pytest.raises(admin.exceptions.ClientError, match=r"NoSuchVersion|404"):
            admin.get_object(Bucket=bucket, Key=key, VersionId=version)
    finally:
        # the bucket as it was (its TLS-only policy), and no trace of the test in either region
        if before is None:
            admin.delete_bucket_policy(Bucket=bucket)
        else:
            admin.put_bucket_policy(Bucket=bucket, Policy=before)
        for client, name in ((admin, bucket), (replica, replica_bucket)):
            listed = client.list_object_versions(Bucket=name, Prefix=key)
            for v in [*listed.get("Versions", []), *listed.get("DeleteMarkers", [])]:
                client.delete_object(Bucket=name, Key=v["Key"], VersionId=v["VersionId"])


def test_a_permission_removed_from_the_role_fails_the_step_that_needs_it_by_name(
    sandbox_state: SandboxState,
    topology: Topology,
    declared_policy: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    removed = "dynamodb:Scan"  # `mldr history` lists past operations with it
    statements = []
    for statement in declared_policy["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        statements.append({**statement, "Action": [a for a in actions if a != removed]})
    _put_operator_policy(sandbox_state, {**declared_policy, "Statement": statements})

    code = main(["history", "--json"])

    out = capsys.readouterr()
    assert code != 0
    said = out.out + out.err
    assert f"not authorized to perform: {removed} on resource: " in said, said
    assert f"table/{topology.control_state.table}" in said, said


def test_factory_clients_are_the_operators(topology: Topology, sandbox_state: SandboxState) -> None:
    """What the CLI and DAG tasks build from the connections runs as the operator, not as admin."""
    s3 = ClientFactory.from_environment(topology).client("s3", topology.primary_region)
    with pytest.raises(s3.exceptions.ClientError, match=f"user/{OPERATOR} is not authorized"):
        s3.put_bucket_versioning(
            Bucket=topology.datasets[0].buckets[topology.primary_region],
            VersioningConfiguration={"Status": "Suspended"},
        )


#: Declared actions no sandbox server sees used: S3 checks `iam:PassRole` (putting a replication
#: configuration) and uses the KMS keys on the caller's behalf, and moto checks neither; the edge,
#: not moto, answers Route 53's data plane; moto answers a record change INSYNC at once (Route 53:
#: PENDING first, then `GetChange` until INSYNC).
UNOBSERVABLE = frozenset(
    {
        "route53:GetChange",
        "iam:PassRole",
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "route53:TestDNSAnswer",
        "route53:GetHealthCheckStatus",
    }
)


#: Used by the runbooks in runs too long to repeat here; each named test fails if it is missing.
EXERCISED_ELSEWHERE = {
    # the audit queue drained once the region is back
    "dynamodb:DeleteItem": "test_failover.py, the unplanned failover during an outage",
    # a restore removes what was created after the point in time
    "s3:DeleteObject": "test_restore.py",
    # a restore (and a model rollback) reads the versions it brings back
    "s3:GetObjectVersion": "test_restore.py",
    # a restore's plan lists each key's versions (point in time)
    "s3:ListBucketVersions": "test_restore.py",
}


def _decisions(state: SandboxState) -> dict[str, Counter[str]]:
    """The operator's allowed and denied actions so far, over every moto server."""
    out: dict[str, Counter[str]] = {"authorized": Counter(), "denied": Counter()}
    arn = f"arn:aws:iam::123456789012:user/{OPERATOR}"
    for endpoint in state.moto.values():
        seen = http.get(f"{endpoint}/_mldr/authorized").json()
        for outcome, counts in out.items():
            for entry in seen[outcome]:
                if entry["principal"] == arn:
                    counts[entry["action"]] += entry["count"]
    return out


def _allowed_actions(policy: dict[str, Any]) -> set[str]:
    actions: set[str] = set()
    for statement in policy["Statement"]:
        if statement["Effect"] == "Allow":
            listed = statement["Action"]
            actions |= set(listed if isinstance(listed, list) else [listed])
    return actions


def test_the_operator_policy_allows_exactly_what_the_runbooks_use(
    sandbox: Sandbox,
    sandbox_state: SandboxState,
    topology: Topology,
    declared_policy: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    from mldr.airflow.dashboard.data import metric_series
    from mldr.cloud.aws.cloud import AwsCloud
    from tests.integration.test_failover import run, snapshot, wait_replicated, write

    factory = ClientFactory.from_environment(topology)
    primary, secondary = topology.primary_region, topology.secondary_region
    before_run = _decisions(sandbox_state)
    written = write(factory, topology, primary, f"iam-{uuid.uuid4().hex[:8]}", 6)
    wait_replicated(factory, topology, written, secondary)
    before = snapshot(factory, topology, primary)

    assert run(topology, factory, "failover", secondary, "planned").status.value == "completed"
    during = write(factory, topology, secondary, f"iam-during-{uuid.uuid4().hex[:8]}", 3)
    assert run(topology, factory, "failback", primary).status.value == "completed"
    expected = {**before, **during}
    for region in (primary, secondary):
        wait_replicated(factory, topology, expected, region)
    capsys.readouterr()
    # The lag check's verdict depends on how fast its canary replicates on a busy machine; what
    # matters here is that it checked every dataset without a denial (any denial also fails below).
    assert main(["lag", "--json"]) in (0, 1)
    printed = capsys.readouterr().out
    assert len(json.loads(printed)["datasets"]) == len(topology.datasets), printed
    assert "AccessDenied" not in printed, printed
    for argv in (["verify", "--json"], ["history", "--json"], ["status", "--json"]):
        assert main(argv) == 0, f"mldr {' '.join(argv)}: {capsys.readouterr()}"
    # what the drill's monitor and the dashboard read, through the same cloud layer
    cloud = AwsCloud(factory)
    cloud.traffic().detection_window(primary)
    metric_series(cloud, topology, primary)
    # what verification reads of a dataset under Object Lock (the sandbox's datasets are not)
    cloud.objects(primary).object_lock_days(topology.datasets[-1].buckets[primary])

    after_run = _decisions(sandbox_state)
    used = set(after_run["authorized"] - before_run["authorized"])
    denied = set(after_run["denied"] - before_run["denied"])
    allowed = _allowed_actions(declared_policy)
    assert not denied, f"the runbooks needed permissions the DR operator role lacks: {sorted(denied)}"
    unused = allowed - used - UNOBSERVABLE - set(EXERCISED_ELSEWHERE)
    assert not unused, f"the DR operator role grants what no runbook used: {sorted(unused)}"


def test_the_replicator_copies_with_the_replication_role_so_a_missing_permission_fails_the_version(
    sandbox: Sandbox, sandbox_state: SandboxState, topology: Topology
) -> None:
    """S3 replicates with the rule's role: the replicator runs with that role's declared policy,
    so a permission the role lacks fails replication of that dataset (FAILED, naming the action),
    while another dataset's role still replicates."""
    from mldr.sandbox.iam import replication_principal

    primary, secondary = topology.primary_region, topology.secondary_region
    denied, other = topology.datasets[1], topology.datasets[0]
    user = replication_principal(denied.name)
    policy = declared.replication_policy(json.loads(topology.to_json()), denied.name)
    without = [
        {**s, "Action": [a for a in s["Action"] if a != "s3:ReplicateObject"]} for s in policy["Statement"]
    ]
    admin_iam = _client("iam", sandbox_state.moto[secondary], "us-east-1", ADMIN_KEYS)
    admin_iam.put_user_policy(
        UserName=user, PolicyName=POLICY_NAME, PolicyDocument=json.dumps({**policy, "Statement": without})
    )
    s3 = _client("s3", sandbox_state.moto[primary], primary, ADMIN_KEYS)
    key = f"iam-replication/{uuid.uuid4().hex}.bin"

    def status(bucket: str) -> dict[str, Any]:
        found = http.get(f"{sandbox_state.replicator_url}/status", params={"bucket": bucket, "key": key})
        return found.json() if found.status_code == 200 else {}

    try:
        for dataset in (denied, other):
            s3.put_object(Bucket=dataset.buckets[primary], Key=key, Body=b"replicated by its role")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if status(denied.buckets[primary]).get("status") == "FAILED" and (
                status(other.buckets[primary]).get("status") == "COMPLETED"
            ):
                break
            time.sleep(0.2)
        failed = status(denied.buckets[primary])
        assert failed.get("status") == "FAILED", failed
        assert f"user/{user} is not authorized to perform: s3:ReplicateObject" in failed["error"], failed
        assert status(other.buckets[primary]).get("status") == "COMPLETED"
    finally:
        admin_iam.put_user_policy(UserName=user, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(policy))
        sandbox.replication("clear")  # re-queues the FAILED version, as a Batch Replication job
    replica = _client("s3", sandbox_state.moto[secondary], secondary, ADMIN_KEYS)
    deadline = time.monotonic() + 30
    while status(denied.buckets[primary]).get("status") != "COMPLETED" and time.monotonic() < deadline:
        time.sleep(0.2)
    for dataset in (denied, other):
        got = replica.get_object(Bucket=dataset.buckets[secondary], Key=key)
        assert got["Body"].read() == b"replicated by its role"
