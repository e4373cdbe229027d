"""The AWS traffic, compute pool, control store and alerts behind `mldr.cloud`, against moto:
what a runbook relies on - a lost compare-and-set raises, records round-trip, the DNS primary
moves and only the role changes - with AWS errors arriving as `mldr.errors`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError
from moto import mock_aws

from mldr.actions import fencing
from mldr.cloud.aws.clients import ClientFactory, EnvironmentSource
from mldr.cloud.aws.cloud import AwsCloud
from mldr.cloud.aws.dynamodb import initial_lease_item
from mldr.cloud.compute import PoolCounts
from mldr.cloud.control import Lease, Operation
from mldr.cloud.traffic import Route, RouteRole
from mldr.errors import FencingConflict, MldrError, NotFound, RegionUnreachable, StaleRecord
from mldr.runbooks.engine import OperationRecord, OperationStore
from mldr.runbooks.params import Mode, OperationParams
from mldr.topology import ControlConsistency, Topology

FIXTURE = Path(__file__).parents[1] / "fixtures" / "topology.json"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        yield


@pytest.fixture
def topology() -> Topology:
    return Topology.model_validate_json(FIXTURE.read_text())


def control_table(cloud: AwsCloud, *, seeded: bool = True, region: str | None = None) -> None:
    replica = region or cloud.topology.control_state.replicas[0].region
    ddb = cloud.factory.client("dynamodb", replica)
    table = cloud.topology.control_state.table
    ddb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    if seeded:
        ddb.put_item(TableName=table, Item=initial_lease_item(cloud.topology.primary_region))


def operation(op_id: str) -> Operation:
    return Operation(op_id, "failover", "us-east-1", "us-west-2", "planned", "pytest", "a test", "now")


def test_the_lease_is_a_compare_and_set_two_operations_cannot_both_win(aws: None, topology: Topology) -> None:
    cloud = AwsCloud.from_environment(topology)
    control_table(cloud)
    store = cloud.control()
    seed = store.read_lease()
    assert (seed.active_region, seed.fencing_token, seed.operation) == (topology.primary_region, 0, None)

    first = Lease(topology.primary_region, 1, operation("op-1"), fenced_regions=("us-east-1",))
    store.compare_and_set(expected=seed, lease=first)
    with pytest.raises(FencingConflict, match="changed since it was read"):
        store.compare_and_set(expected=seed, lease=Lease(topology.primary_region, 1, operation("op-2")))
    assert AwsCloud.from_environment(topology).control().read_lease() == first


def test_records_round_trip_and_are_found_by_prefix(aws: None, topology: Topology) -> None:
    cloud = AwsCloud.from_environment(topology)
    control_table(cloud)
    store = cloud.control()
    store.put_record("op#a", {"doc": json.dumps({"id": "a"}), "started_epoch": 1764756000.25})
    store.put_record("op#b", {"doc": "{}", "count": 3})
    store.put_record("audit-pending#us-east-1", {"events": "[]"})
    assert store.get_record("op#a") == {"doc": '{"id": "a"}', "started_epoch": 1764756000.25}
    assert store.get_record("op#b") == {"doc": "{}", "count": 3}
    assert store.get_record("op#missing") is None
    assert sorted(r["doc"] for r in store.records("op#")) == ['{"id": "a"}', "{}"]
    store.delete_record("op#b")
    store.delete_record("op#missing")  # nothing to delete is no error
    assert store.get_record("op#b") is None and store.get_record("op#a") is not None


def test_an_unseeded_table_says_how_to_provision_it(aws: None, topology: Topology) -> None:
    cloud = AwsCloud.from_environment(topology)
    control_table(cloud, seeded=False)
    with pytest.raises(MldrError, match=r"no lease item.*sandbox up"):
        cloud.control().read_lease()


class FakeEcs:
    """An ECS service in one region (moto's create_cluster alone takes ~10 s)."""

    def __init__(self, services: dict[tuple[str, str], dict[str, int]]) -> None:
        self.services = services

    def describe_services(self, *, cluster: str, services: list[str]) -> dict[str, Any]:
        return {
            "services": [dict(self.services[(cluster, s)]) for s in services if (cluster, s) in self.services]
        }

    def update_service(self, *, cluster: str, service: str, desiredCount: int) -> None:
        self.services[(cluster, service)]["desiredCount"] = desiredCount


class FakeEcsSource:
    def __init__(self, by_region: dict[str, FakeEcs]) -> None:
        self.by_region = by_region

    def make(self, *, service: str, region: str, conn_id: str, config: Any) -> FakeEcs:
        assert service == "ecs"
        return self.by_region[region]


def test_compute_pool_counts_and_scales_an_ecs_service(topology: Topology) -> None:
    region = topology.primary_region
    compute = topology.region(region).compute
    ecs = FakeEcs({(compute.cluster, compute.service): {"desiredCount": 1, "runningCount": 1}})
    cloud = AwsCloud(ClientFactory(topology, source=FakeEcsSource({region: ecs, "us-west-2": FakeEcs({})})))
    pool = cloud.compute(region)
    assert pool.counts() == PoolCounts(desired=1, running=1)
    pool.set_desired(compute.active_capacity)
    assert pool.counts() == PoolCounts(desired=compute.active_capacity, running=1)
    with pytest.raises(NotFound, match="ECS service inference"):
        cloud.compute(topology.secondary_region).counts()


def test_alerts_reach_the_topic_and_a_missing_topic_is_an_mldr_error(aws: None, topology: Topology) -> None:
    cloud = AwsCloud.from_environment(topology)
    region = topology.primary_region
    sns = cloud.factory.client("sns", region)
    sqs = cloud.factory.client("sqs", region)
    topic = sns.create_topic(Name="mldr-alerts")["TopicArn"]
    assert topic == topology.region(region).alert_topic_arn
    queue = sqs.create_queue(QueueName="alerts")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    cloud.alerts(region).send(subject="x" * 150, message="failover completed")
    (message,) = sqs.receive_message(QueueUrl=queue)["Messages"]
    body = json.loads(message["Body"])
    assert (body["Subject"], body["Message"]) == ("x" * 100, "failover completed")
    with pytest.raises(MldrError, match="mldr-alerts"):
        cloud.alerts(topology.secondary_region).send(subject="s", message="m")  # no topic there


def test_making_a_region_primary_swaps_only_the_failover_roles(aws: None, topology: Topology) -> None:
    route53 = AwsCloud.from_environment(topology).factory.route53()
    zone = route53.create_hosted_zone(Name="example.com.", CallerReference="t")["HostedZone"]["Id"]
    zone_id = zone.rsplit("/", 1)[-1]
    topology = topology.model_copy(
        update={"inference": topology.inference.model_copy(update={"hosted_zone_id": zone_id})}
    )
    name = topology.inference.record_name

    def record(region: str, role: str, ip: str) -> dict[str, object]:
        return {
            "Name": name,
            "Type": "A",
            "SetIdentifier": region,
            "Failover": role,
            "TTL": 30,
            "ResourceRecords": [{"Value": ip}],
        }

    route53.change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={
            "Changes": [
                {"Action": "CREATE", "ResourceRecordSet": record("us-east-1", "PRIMARY", "10.0.0.1")},
                {"Action": "CREATE", "ResourceRecordSet": record("us-west-2", "SECONDARY", "10.0.0.2")},
            ]
        },
    )
    traffic = AwsCloud.from_environment(topology).traffic()
    assert sorted(traffic.routes(), key=lambda r: r.region) == [
        Route("us-east-1", RouteRole.PRIMARY),
        Route("us-west-2", RouteRole.SECONDARY),
    ]
    assert traffic.make_primary("us-west-2", timeout=10) is True
    assert sorted(traffic.routes(), key=lambda r: r.region) == [
        Route("us-east-1", RouteRole.SECONDARY),
        Route("us-west-2", RouteRole.PRIMARY),
    ]
    assert traffic.make_primary("us-west-2", timeout=10) is False, "already primary: nothing changed"
    sets = route53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]
    by_region = {s["SetIdentifier"]: s for s in sets if s.get("SetIdentifier")}
    assert by_region["us-west-2"]["ResourceRecords"] == [{"Value": "10.0.0.2"}], "only the role changed"
    with pytest.raises(MldrError, match="no failover record for eu-west-1"):
        traffic.make_primary("eu-west-1", timeout=10)


def test_a_record_saved_by_another_run_since_it_was_read_is_not_overwritten(
    aws: None, topology: Topology
) -> None:
    """Two runs of one operation read its record; the second to save must not silently
    overwrite the first's progress."""
    cloud = AwsCloud.from_environment(topology)
    control_table(cloud)
    first, second = OperationStore(cloud.control()), OperationStore(cloud.control())
    params = OperationParams(
        kind="failover",
        target_region="us-west-2",
        mode=Mode.PLANNED,
        reason="a unit test",
        requested_by="pytest",
    )
    first.save(OperationRecord(id="op-1", kind="failover", params=params))
    a, b = first.load("op-1"), second.load("op-1")
    assert a is not None and b is not None
    a.message = "progress of the run that saved first"
    first.save(a)
    b.message = "a stale run's view"
    with pytest.raises(StaleRecord, match=f"saved by run {first.run.id}"):
        second.save(b)
    stored = first.load("op-1")
    assert stored is not None and stored.message == "progress of the run that saved first"


class _Unreachable:
    """A client whose every call fails as an endpoint that does not answer."""

    def __getattr__(self, name: str) -> Any:
        def call(*_: Any, **__: Any) -> Any:
            raise EndpointConnectionError(endpoint_url="https://cut-off.invalid")

        return call


class _CutOff(EnvironmentSource):
    """This process cannot reach one replica of the control-state table (a partition)."""

    def __init__(self, region: str) -> None:
        super().__init__()
        self.region = region

    def make(self, *, service: str, region: str, conn_id: str, config: Any) -> Any:
        if service == "dynamodb" and region == self.region:
            return _Unreachable()
        return super().make(service=service, region=region, conn_id=conn_id, config=config)


def test_a_last_writer_wins_table_takes_lease_writes_at_its_write_replica_only(
    aws: None, topology: Topology
) -> None:
    """Moving a compare-and-set on to the next replica of a last-writer-wins table lets two
    operations both win (each on its own replica): the write replica, or nothing."""
    assert topology.control_state.consistency is ControlConsistency.EVENTUAL
    writer = topology.control_state.writer_region
    for region in topology.region_names:  # two replicas, not copying each other yet
        control_table(AwsCloud.from_environment(topology), region=region)
    store = AwsCloud(ClientFactory(topology, source=_CutOff(writer))).control()
    seed = store.read_lease()  # a read may come from the other replica
    with pytest.raises(RegionUnreachable, match=rf"write replica of the control-state table \({writer}\)"):
        store.compare_and_set(expected=seed, lease=Lease(topology.primary_region, 1, operation("op-b")))
    for region, client in AwsCloud.from_environment(topology).factory.control_clients():
        item = client.get_item(TableName=topology.control_state.table, Key={"pk": {"S": "lease"}})["Item"]
        assert item["fencing_token"] == {"N": "0"}, f"{region}: a lease was written past the write replica"


def test_a_newer_run_takes_the_lease_over_and_an_older_one_never_takes_it_back(
    aws: None, topology: Topology
) -> None:
    cloud = AwsCloud.from_environment(topology)
    control_table(cloud)
    store = cloud.control()
    older, newer = fencing.Run(rank=1), fencing.Run(rank=2)
    with fencing.acting_as(older):
        taken = fencing.take(store, operation("op-1"))
    with fencing.acting_as(newer):
        fencing.take_over(store, "op-1")
    with fencing.acting_as(older):
        for attempt in (
            lambda: fencing.take_over(store, "op-1"),
            lambda: fencing.take(store, operation("op-1")),
            lambda: fencing.update(store, "op-1", active_region="us-west-2"),
            lambda: fencing.release(store, "op-1"),
        ):
            with pytest.raises(FencingConflict, match=f"taken over by run {newer.id}"):
                attempt()
    held = store.read_lease()
    assert held.operation is not None and (held.operation.run, held.fencing_token) == (
        newer.id,
        taken.fencing_token,
    )
    assert held.active_region == topology.primary_region
    with fencing.acting_as(newer):
        assert fencing.release(store, "op-1").operation is None


def test_outside_a_step_the_process_is_one_run_that_can_take_and_release_a_free_lease(
    aws: None, topology: Topology
) -> None:
    cloud = AwsCloud.from_environment(topology)
    control_table(cloud)
    store = cloud.control()
    held = fencing.take(store, operation("op-by-hand"))
    assert held.operation is not None and held.operation.run
    with fencing.acting_as(fencing.Run(rank=1)), pytest.raises(FencingConflict, match="taken over by run"):
        fencing.release(store, "op-by-hand")  # another run does not release it
    assert fencing.release(store, "op-by-hand").operation is None


def test_unreadable_encryption_settings_fail_closed_naming_the_permission(
    aws: None, topology: Topology
) -> None:
    """Taken as "not KMS", every SSE-KMS object would be compared on an ETag that is no content
    hash: a denied GetBucketEncryption must stop the caller, saying which permission is missing."""
    from botocore.exceptions import ClientError

    from mldr.errors import AccessDenied

    region = topology.primary_region
    store = AwsCloud.from_environment(topology).objects(region)
    s3 = store.client  # type: ignore[attr-defined]
    kms_bucket, plain_bucket = "mldr-kms-probe", "mldr-plain-probe"
    for bucket in (kms_bucket, plain_bucket):
        s3.create_bucket(Bucket=bucket)
    key = AwsCloud.from_environment(topology).factory.client("kms", region).create_key()["KeyMetadata"]["Arn"]
    s3.put_bucket_encryption(
        Bucket=kms_bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}}
            ]
        },
    )
    assert store.default_kms_key(kms_bucket) is True
    s3.delete_bucket_encryption(Bucket=plain_bucket)  # moto defaults new buckets to SSE-S3
    assert store.default_kms_key(plain_bucket) is False

    def deny(**_: Any) -> None:
        raise ClientError(
            {
                "Error": {"Code": "AccessDenied", "Message": "Access Denied"},
                "ResponseMetadata": {"HTTPStatusCode": 403},
            },
            "GetBucketEncryption",
        )

    s3.meta.events.register("before-call.s3.GetBucketEncryption", deny)
    with pytest.raises(AccessDenied, match="s3:GetEncryptionConfiguration") as denied:
        store.default_kms_key(kms_bucket)
    assert f"s3://{kms_bucket}" in str(denied.value) and region in str(denied.value)
